package csaf

import (
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// Document notes that carry the publisher's own assessment. NCSC-NL titles
// them "Kans" (probability of abuse) and "Schade" (damage), valued
// hoog/midden/laag; newer advisories state an urgency (Urgent/Normaal).
// English titles are read too, but only when their text is a rating. The values are kept on the source's scale,
// never translated into CVSS.
var assessmentNotes = map[string]struct {
	field string
	ncsc  bool // the NCSC-NL title: a value we cannot read is an error
}{
	"kans":        {"probability", true},
	"schade":      {"impact", true},
	"urgentie":    {"urgency", true},
	"probability": {"probability", false},
	"likelihood":  {"probability", false},
	"impact":      {"impact", false},
	"damage":      {"impact", false},
	"urgency":     {"urgency", false},
}

var levels = map[string]string{
	"hoog": "high", "high": "high", "h": "high",
	"midden": "medium", "middel": "medium", "gemiddeld": "medium", "medium": "medium", "moderate": "medium", "m": "medium",
	"laag": "low", "low": "low", "l": "low",
}

var urgencies = map[string]string{
	"urgent":  "urgent",
	"normaal": "normal", "normal": "normal",
}

// assess reads the assessment notes into ev.Assessment and sets priority
// critical for high/high or urgent. It returns the indexes of the notes it
// read, which the description leaves out.
func (m *mapper) assess(doc map[string]any, ev *gateway.Event) map[int]bool {
	var a gateway.Assessment
	consumed := map[int]bool{}
	for i, n := range arr(doc, "notes") {
		note, ok := n.(map[string]any)
		if !ok {
			continue
		}
		title := strings.TrimSpace(str(note, "title"))
		kind, ok := assessmentNotes[strings.ToLower(strings.TrimRight(title, ": "))]
		if !ok {
			continue
		}
		text := str(note, "text")
		table, expected := levels, "hoog, midden or laag (high, medium, low)"
		if kind.field == "urgency" {
			table, expected = urgencies, "urgent or normaal (normal)"
		}
		v, ok := lookupWord(table, text)
		if !ok {
			// Other publishers write prose under "Impact"; that stays in
			// the description. NCSC's own titles promise a rating.
			if kind.ncsc {
				consumed[i] = true
				m.add("/document/notes/"+strconv.Itoa(i)+"/text", "unknown %s value %q; expected %s", title, text, expected)
			}
			continue
		}
		consumed[i] = true
		switch kind.field {
		case "probability":
			a.Probability = v
		case "impact":
			a.Impact = v
		default:
			a.Urgency = v
		}
	}
	if a != (gateway.Assessment{}) {
		ev.Assessment = &a
		if a.Critical() {
			ev.Priority = gateway.PriorityCritical
		}
	}
	return consumed
}

// lookupWord finds text, or failing that its first word, in table,
// ignoring case and surrounding punctuation ("Hoog.", "HIGH – actief
// misbruikt").
func lookupWord(table map[string]string, text string) (string, bool) {
	clean := func(s string) string {
		return strings.ToLower(strings.Trim(s, " \t\r\n.,;:!()[]\"'"))
	}
	if v, ok := table[clean(text)]; ok {
		return v, true
	}
	if f := strings.Fields(text); len(f) > 0 {
		v, ok := table[clean(f[0])]
		return v, ok
	}
	return "", false
}
