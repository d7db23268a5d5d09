package mail

import (
	"strings"

	"github.com/schakel/schakel/gateway"
)

// label is one TLP label found in text: s[start:end] is the label itself.
type label struct {
	start, end int
	tlp        gateway.TLP
	white      bool // written as the TLP 1.0 label WHITE
}

var colours = []struct {
	word string
	tlp  gateway.TLP
}{
	{"clear", gateway.TLPClear}, {"white", gateway.TLPClear}, {"green", gateway.TLPGreen},
	{"amber", gateway.TLPAmber}, {"red", gateway.TLPRed},
}

// findLabels returns the TLP labels in s in order: "TLP:AMBER",
// "tlp: amber+strict", "TLP:AMBER + STRICT", "TLP:WHITE". A colon is
// required ("TLP red" in prose is not a label); case does not matter.
func findLabels(s string) []label {
	var out []label
	for i := 0; i+len("tlp:red") <= len(s); {
		j := indexFold(s[i:], "tlp")
		if j < 0 {
			break
		}
		p := i + j
		i = p + 3
		if p > 0 && isWordByte(s[p-1]) {
			continue
		}
		if l, ok := labelAt(s, p); ok {
			out = append(out, l)
			i = l.end
		}
	}
	return out
}

// labelAt reads a label starting at s[p:] ("tlp" already matched there).
func labelAt(s string, p int) (label, bool) {
	k := skipBlanks(s, p+3)
	if k >= len(s) || s[k] != ':' {
		return label{}, false
	}
	k = skipBlanks(s, k+1)
	for _, c := range colours {
		if !hasPrefixFold(s[k:], c.word) {
			continue
		}
		end := k + len(c.word)
		if end < len(s) && isWordByte(s[end]) {
			return label{}, false // "TLP:REDACTED"
		}
		l := label{start: p, end: end, tlp: c.tlp, white: c.word == "white"}
		if c.tlp == gateway.TLPAmber {
			if e, ok := strictSuffix(s, end); ok {
				l.end, l.tlp = e, gateway.TLPAmberStrict
			}
		}
		return l, true
	}
	return label{}, false
}

// strictSuffix matches "+STRICT", " + STRICT", "-STRICT" or " STRICT" after
// AMBER and returns the offset after it.
func strictSuffix(s string, p int) (int, bool) {
	k := skipBlanks(s, p)
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		k = skipBlanks(s, k+1)
	} else if k == p {
		return 0, false // "AMBERSTRICT" is not a label, and nothing else follows
	}
	if !hasPrefixFold(s[k:], "strict") {
		return 0, false
	}
	end := k + len("strict")
	if end < len(s) && isWordByte(s[end]) {
		return 0, false
	}
	return end, true
}

func skipBlanks(s string, k int) int {
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	return k
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }

// strictest folds labels into the strictest; "" when there are none.
func strictest(ts ...gateway.TLP) gateway.TLP {
	var out gateway.TLP
	for _, t := range ts {
		if t == "" {
			continue
		}
		if out == "" || t.Rank() > out.Rank() {
			out = t
		}
	}
	return out
}

// stripLabels removes the TLP labels from a subject, with the brackets or
// parentheses that held only the label ("[TLP:AMBER]", "(TLP:RED)").
func stripLabels(s string, labels []label) string {
	if len(labels) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range labels {
		start, end := l.start, l.end
		ls := strings.TrimRight(s[last:start], " \t")
		rs := skipBlanks(s, end)
		if len(ls) > 0 && rs < len(s) && closes(ls[len(ls)-1], s[rs]) {
			start = len(strings.TrimRight(s[:start], " \t")) - 1
			end = rs + 1
		}
		if start < last {
			start = last
		}
		b.WriteString(s[last:start])
		b.WriteByte(' ')
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

func closes(open, close byte) bool {
	return open == '[' && close == ']' || open == '(' && close == ')' || open == '{' && close == '}'
}
