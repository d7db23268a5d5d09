package normalize

import (
	"strconv"
	"strings"
)

// Visible returns s with control and direction-changing characters written
// as \uXXXX escapes, for showing text from a source to a person. A right-to-
// left override in a title can make "exe.pdf" read as "fdp.exe", and C0/C1
// controls can move a terminal's cursor or hide text; escaping shows them
// for what they are. The stored event keeps them unchanged.
func Visible(s string) string { return visible(s, false) }

// VisibleText is Visible for text with lines: tab, line feed and carriage
// return are kept as they are.
func VisibleText(s string) string { return visible(s, true) }

func visible(s string, keepLines bool) string {
	i := strings.IndexFunc(s, func(r rune) bool { return hidden(r, keepLines) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if !hidden(r, keepLines) {
			b.WriteRune(r)
			continue
		}
		h := strconv.FormatInt(int64(r), 16)
		b.WriteString(`\u` + strings.Repeat("0", 4-len(h)) + h)
	}
	return b.String()
}

// hidden reports the characters Visible escapes: C0 and C1 controls, DEL,
// the bidirectional marks, embeddings, overrides and isolates, and the
// Unicode line and paragraph separators.
func hidden(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\t' || r == '\n' || r == '\r'):
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
