package mail

import (
	"bytes"
	"html"
	"strings"
	"unicode/utf8"
)

// rawTextElements hold text that is never shown (or, for title, shown only
// in a window bar): their content is dropped.
var rawTextElements = map[string]bool{"script": true, "style": true, "title": true, "template": true, "xml": true}

// blockElements start a new line in the text rendering, so words from two
// paragraphs or list items are never glued into one token.
var blockElements = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true, "dd": true,
	"div": true, "dl": true, "dt": true, "fieldset": true, "figcaption": true, "figure": true,
	"footer": true, "form": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true,
	"h6": true, "header": true, "hr": true, "li": true, "main": true, "nav": true, "ol": true,
	"p": true, "pre": true, "section": true, "table": true, "tr": true, "ul": true, "body": true,
	"html": true, "caption": true, "thead": true, "tbody": true, "tfoot": true,
}

// htmlText renders HTML as plain text: tags removed, script and style
// content dropped, entities decoded, block elements on their own lines and
// table cells separated by tabs. It runs in one linear pass and never
// fails; a tag that is not closed makes the rest of the input text.
func htmlText(s string) string {
	b := make([]byte, 0, len(s)/2)
	pending := false // whitespace seen but not yet written
	// newline ends the current line; br may also leave one empty line,
	// block elements only start a new line.
	newline := func(br bool) {
		pending = false
		for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
			b = b[:len(b)-1]
		}
		if len(b) == 0 || bytes.HasSuffix(b, []byte("\n\n")) || !br && b[len(b)-1] == '\n' {
			return
		}
		b = append(b, '\n')
	}
	text := func(t string) {
		if strings.IndexByte(t, '&') >= 0 {
			t = html.UnescapeString(t)
		}
		for _, r := range t {
			if isBlankRune(r) {
				pending = true
				continue
			}
			if isInvisible(r) {
				continue
			}
			if pending {
				if len(b) > 0 && b[len(b)-1] != '\n' {
					b = append(b, ' ')
				}
				pending = false
			}
			b = utf8.AppendRune(b, r)
		}
	}
	for i := 0; i < len(s); {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			text(s[i:])
			break
		}
		text(s[i : i+lt])
		i += lt
		rest := s[i:]
		if strings.HasPrefix(rest, "<!--") {
			end := strings.Index(rest[4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		if strings.HasPrefix(rest, "<!") || strings.HasPrefix(rest, "<?") {
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				break
			}
			i += end + 1
			continue
		}
		name, closing, end, ok := parseTag(rest)
		if !ok {
			// A lone "<" (as in "a < b") is text.
			text("<")
			i++
			continue
		}
		if end < 0 {
			break // an unclosed tag: browsers show nothing after it either
		}
		i += end
		if !closing && rawTextElements[name] {
			// Skip to the matching end tag; without one the rest is dropped.
			j := indexFold(s[i:], "</"+name)
			if j < 0 {
				break
			}
			i += j
			continue
		}
		switch {
		case name == "br":
			newline(true)
		case blockElements[name]:
			newline(false)
		case (name == "td" || name == "th") && !closing:
			pending = false
			if len(b) > 0 && b[len(b)-1] != '\n' {
				b = append(b, '\t')
			}
		}
	}
	return finish(string(b))
}

// parseTag reads the tag at the start of s ("<a href='x'>", "</p>"). ok is
// false when s does not start a tag; end is the offset after ">", or -1 when
// the tag is never closed. Quoted attribute values may contain ">".
func parseTag(s string) (name string, closing bool, end int, ok bool) {
	i := 1
	if i < len(s) && s[i] == '/' {
		closing = true
		i++
	}
	start := i
	for i < len(s) && isAlnum(s[i]) {
		i++
	}
	if i == start {
		return "", false, 0, false
	}
	name = strings.ToLower(s[start:i])
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return name, closing, i + 1, true
		}
	}
	return name, closing, -1, true
}

// finish trims each line and drops leading and trailing blank lines.
func finish(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

func isBlankRune(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', '\u2007', '\u202f':
		return true
	}
	return false
}

// isInvisible reports zero-width characters, which senders use to keep mail
// clients from linking an indicator; dropping them rejoins the value.
func isInvisible(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad':
		return true
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// indexFold is strings.Index ignoring ASCII case of sub, which must be
// lower-case.
func indexFold(s, sub string) int {
	if len(sub) == 0 {
		return 0
	}
	first := sub[0]
	for i := 0; i+len(sub) <= len(s); i++ {
		if lowerByte(s[i]) != first {
			continue
		}
		if hasPrefixFold(s[i:], sub) {
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
