package mail

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

// Assessment keywords in Dutch (NCSC kans/schade, urgentie) and English.
var assessKeys = map[string]string{
	"kans":               "probability",
	"probability":        "probability",
	"likelihood":         "probability",
	"waarschijnlijkheid": "probability",
	"schade":             "impact",
	"impact":             "impact",
	"damage":             "impact",
	"urgentie":           "urgency",
	"urgency":            "urgency",
}

var levelWords = map[string]string{
	"hoog": "high", "high": "high",
	"middel": "medium", "gemiddeld": "medium", "midden": "medium", "medium": "medium", "moderate": "medium",
	"laag": "low", "low": "low",
}

var urgencyWords = map[string]string{
	"urgent": "urgent", "hoog": "urgent", "high": "urgent", "spoed": "urgent",
	"normaal": "normal", "normal": "normal", "laag": "normal", "low": "normal", "medium": "normal", "middel": "normal",
}

// assess fills the empty fields of a from "Kans: hoog", "Schade: hoog",
// "Probability: high", "Impact: high", "Urgentie: urgent" and the NCSC
// shorthand "kans HIGH, schade HIGH". The first value for a field wins. A
// keyword must be followed, on the same line, by an optional ":" and a
// known level; "de kans is klein" therefore sets nothing.
func assess(a *gateway.Assessment, s string) {
	for i := 0; i < len(s); {
		w, end := nextWord(s, i)
		if w == "" {
			return
		}
		i = end
		if len(w) < 4 || len(w) > len("waarschijnlijkheid") {
			continue // no keyword is shorter or longer; skip the lower-casing
		}
		field, ok := assessKeys[strings.ToLower(w)]
		if !ok {
			continue
		}
		k := skipBlanks(s, end)
		if k < len(s) && (s[k] == ':' || s[k] == '=') {
			k = skipBlanks(s, k+1)
		}
		v, vend := nextWord(s, k)
		if vend == k || v == "" || k != wordStart(s, k) {
			continue
		}
		v = strings.ToLower(v)
		switch field {
		case "probability":
			if l, ok := levelWords[v]; ok && a.Probability == "" {
				a.Probability = l
			}
		case "impact":
			if l, ok := levelWords[v]; ok && a.Impact == "" {
				a.Impact = l
			}
		case "urgency":
			if l, ok := urgencyWords[v]; ok && a.Urgency == "" {
				a.Urgency = l
			}
		}
	}
}

// nextWord returns the next run of letters at or after i and the offset
// after it.
func nextWord(s string, i int) (string, int) {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsLetter(r) {
			break
		}
		i += n
	}
	start := i
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) {
			break
		}
		i += n
	}
	return s[start:i], i
}

// wordStart returns k when a letter starts at k, else -1, so the value must
// follow the keyword directly (after blanks and an optional colon).
func wordStart(s string, k int) int {
	if k >= len(s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(s[k:])
	if unicode.IsLetter(r) {
		return k
	}
	return -1
}

// shorthandLevels reads the NCSC subject shorthand "[M/H]" (kans/schade as
// L/M/H).
var shorthandLevels = map[byte]string{'l': "low", 'm': "medium", 'h': "high"}

func subjectShorthand(a *gateway.Assessment, subject string) {
	for i := 0; i+5 <= len(subject); i++ {
		s := subject[i:]
		if s[0] != '[' || s[2] != '/' || s[4] != ']' {
			continue
		}
		p, ok1 := shorthandLevels[lowerByte(s[1])]
		d, ok2 := shorthandLevels[lowerByte(s[3])]
		if !ok1 || !ok2 {
			continue
		}
		if a.Probability == "" {
			a.Probability = p
		}
		if a.Impact == "" {
			a.Impact = d
		}
		return
	}
}
