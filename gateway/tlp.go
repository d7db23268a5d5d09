package gateway

import (
	"fmt"
	"strings"
)

// TLP is a Traffic Light Protocol 2.0 label in its canonical upper-case form.
type TLP string

const (
	TLPClear       TLP = "CLEAR"
	TLPGreen       TLP = "GREEN"
	TLPAmber       TLP = "AMBER"
	TLPAmberStrict TLP = "AMBER+STRICT"
	TLPRed         TLP = "RED"
)

// TLPs lists the labels from least to most strict.
var TLPs = []TLP{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed}

// Rank orders labels by strictness: CLEAR 1 … RED 5. An unknown label ranks
// above RED so that code comparing ranks fails closed.
func (t TLP) Rank() int {
	switch t {
	case TLPClear:
		return 1
	case TLPGreen:
		return 2
	case TLPAmber:
		return 3
	case TLPAmberStrict:
		return 4
	case TLPRed:
		return 5
	}
	return 6
}

// Valid reports whether t is one of the five canonical labels.
func (t TLP) Valid() bool { return t.Rank() <= 5 }

// Label is the form FIRST prescribes for text: "TLP:AMBER+STRICT".
func (t TLP) Label() string { return "TLP:" + string(t) }

// MachineTag is the MISP taxonomy tag: "tlp:amber+strict".
func (t TLP) MachineTag() string { return "tlp:" + strings.ToLower(string(t)) }

// Stricter returns the stricter of a and b; an invalid label wins, so a
// conflict never loosens. An empty label means "not labelled" and yields the
// other.
func Stricter(a, b TLP) TLP {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// ParseTLP accepts the canonical labels and the synonyms sources use:
// "WHITE" (TLP 1.0), "TLP:AMBER", "tlp:amber+strict", "TLP: RED", "amber strict".
// legacy reports whether the input was a TLP 1.0 WHITE label, which callers keep
// in the event's labels.
func ParseTLP(s string) (t TLP, legacy bool, err error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	v = strings.TrimPrefix(v, "TLP")
	v = strings.TrimLeft(v, ": ")
	v = strings.Join(strings.Fields(v), " ")
	switch v {
	case "CLEAR":
		return TLPClear, false, nil
	case "WHITE":
		return TLPClear, true, nil
	case "GREEN":
		return TLPGreen, false, nil
	case "AMBER":
		return TLPAmber, false, nil
	case "AMBER+STRICT", "AMBER STRICT", "AMBER + STRICT", "AMBER-STRICT":
		return TLPAmberStrict, false, nil
	case "RED":
		return TLPRed, false, nil
	}
	return "", false, fmt.Errorf("unknown TLP label %q", s)
}
