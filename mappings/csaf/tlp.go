package csaf

import (
	"regexp"
	"slices"

	"github.com/schakel/schakel/gateway"
)

// tlpV2Text finds a TLP 2.0 label stated in /document/distribution/text, in
// the form the CSAF 2.0→2.1 conversion rules read: "TLP v2.0: TLP:AMBER+STRICT".
var tlpV2Text = regexp.MustCompile(`(?i)\bTLP\s*v?\s*2\.0\s*:\s*TLP\s*:\s*(AMBER\s*\+\s*STRICT|CLEAR|GREEN|AMBER|RED)\b`)

// refinements lists, per CSAF 2.0 (TLP 1.0) label, the TLP 2.0 labels a
// document may state in its distribution text to say precisely what it
// meant. CSAF 2.0 cannot express AMBER+STRICT, so publishers mark such
// documents AMBER or RED and state "TLP v2.0: TLP:AMBER+STRICT" in the
// text; the CSAF 2.1 converter takes that text label (see
// reference/feeds-csaf-tlp.md §2). Any other disagreement is a conflict
// and resolves to the stricter label (ARCHITECTURE §3).
var refinements = map[gateway.TLP][]gateway.TLP{
	gateway.TLPClear: {gateway.TLPClear},
	gateway.TLPGreen: {gateway.TLPGreen},
	gateway.TLPAmber: {gateway.TLPAmber, gateway.TLPAmberStrict},
	gateway.TLPRed:   {gateway.TLPRed, gateway.TLPAmberStrict},
}

const (
	ptrTLPLabel = "/document/distribution/tlp/label"
	ptrDistText = "/document/distribution/text"
)

// tlp reads the document's TLP: /document/distribution/tlp/label (CSAF 2.0
// WHITE/GREEN/AMBER/RED, CSAF 2.1 CLEAR/GREEN/AMBER/AMBER+STRICT/RED),
// refined by a TLP 2.0 label in /document/distribution/text. white reports
// a WHITE label, which is read as CLEAR and kept as the label "tlp:white".
// An unknown label is read as RED, so that a typo never shares more widely
// than the publisher meant (a RED event is held until an analyst looks).
// No label at all returns "": the source's default TLP applies.
func (m *mapper) tlp(doc map[string]any) (t gateway.TLP, white bool) {
	dist := obj(doc, "distribution")
	raw := str(obj(dist, "tlp"), "label")
	var label gateway.TLP
	if raw != "" {
		var err error
		label, white, err = gateway.ParseTLP(raw)
		if err != nil {
			m.add(ptrTLPLabel, "unknown TLP label %q; read as RED", raw)
			label = gateway.TLPRed
		}
	}
	var text gateway.TLP
	if sm := tlpV2Text.FindStringSubmatch(str(dist, "text")); sm != nil {
		text, _, _ = gateway.ParseTLP(sm[1]) // the pattern admits only valid labels
	}
	switch {
	case text == "":
		return label, white
	case label == "":
		return text, false
	}
	v21 := str(doc, "csaf_version") == "2.1"
	if !v21 && slices.Contains(refinements[label], text) {
		return text, white
	}
	if s := gateway.Stricter(label, text); s != text {
		m.add(ptrDistText, "TLP v2.0 label TLP:%s contradicts the document's TLP label %s; the stricter %s applies", text, raw, s)
		return s, white
	}
	return text, white
}
