package normalize

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// mark is a defang mark and the text it stands for. Marks are matched
// case-insensitively; every mark is longer than its replacement, so repeated
// refanging always ends.
type mark struct{ from, to string }

var marks = []mark{
	{"[://]", "://"},
	{"[:]", ":"},
	{"[/]", "/"},
	{"[.]", "."}, {"(.)", "."}, {"{.}", "."},
	{"[dot]", "."}, {"(dot)", "."}, {"{dot}", "."},
	{"[@]", "@"}, {"(@)", "@"}, {"{@}", "@"},
	{"[at]", "@"}, {"(at)", "@"}, {"{at}", "@"},
}

// pairs are the wrappers analysts and mail clients put around a value.
var pairs = [][2]string{
	{"<", ">"}, {`"`, `"`}, {"'", "'"}, {"`", "`"},
	{"\u201c", "\u201d"}, {"\u2018", "\u2019"}, {"\u00ab", "\u00bb"},
}

// schemes maps defanged URL schemes (matched case-insensitively, followed by
// ':') to the real ones.
var schemes = []mark{
	{"hxxps", "https"}, {"hxxp", "http"},
	{"fxps", "ftps"}, {"fxp", "ftp"},
}

// Refang undoes common defanging: hxxp/hXXp/hxxps → http/https, [.] (.) {.}
// [dot] (dot) → ".", [@] [at] (at) → "@", [:]// → "://", "[://]" → "://",
// fxp → ftp, spaces around defang marks, and strips surrounding angle
// brackets and quotes. A value without defanging is returned as is, without
// allocating. Refang(Refang(s)) == Refang(s).
func Refang(s string) string {
	// Each pass shortens s or fixes the scheme (which happens once), so
	// this ends; repeating gives a fixed point, e.g. for "<'x'>".
	for {
		r := refangOnce(s)
		if r == s {
			return r
		}
		s = r
	}
}

func refangOnce(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range pairs {
		if len(s) >= len(p[0])+len(p[1]) && strings.HasPrefix(s, p[0]) && strings.HasSuffix(s, p[1]) {
			return s[len(p[0]) : len(s)-len(p[1])]
		}
	}
	if strings.ContainsAny(s, "[({") {
		s = replaceMarks(s)
	}
	for _, m := range schemes {
		if len(s) > len(m.from) && s[len(m.from)] == ':' && hasPrefixFold(s, m.from) {
			return m.to + s[len(m.from):]
		}
	}
	return s
}

// replaceMarks replaces every defang mark in s and drops the blanks around
// it ("example [.] com" → "example.com").
func replaceMarks(s string) string {
	var b strings.Builder
	last := 0 // s[last:i] is not yet copied to b
	for i := 0; i < len(s); {
		c := s[i]
		if c != '[' && c != '(' && c != '{' {
			i++
			continue
		}
		m, ok := markAt(s[i:])
		if !ok {
			i++
			continue
		}
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		// Blanks before the mark end the pending segment: the previous
		// mark already skipped the blanks after it.
		b.WriteString(strings.TrimRight(s[last:i], " \t"))
		b.WriteString(m.to)
		i += len(m.from)
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		last = i
	}
	if b.Cap() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func markAt(s string) (mark, bool) {
	for _, m := range marks {
		if hasPrefixFold(s, m.from) {
			return m, true
		}
	}
	return mark{}, false
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix,
// ignoring ASCII case only (strings.EqualFold would also fold runes such as
// U+017F to 's').
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Quote renders s for an error message, shortened so that a hostile 8 KiB
// value does not end up whole in logs and API responses.
func Quote(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
