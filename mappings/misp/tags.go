package misp

import "strings"

// JoinTags joins tag names with commas for Indicator.Attributes["tags"].
// A name that holds a comma, starts with a double quote or has blanks at
// either end is quoted CSV-style ("a, b" becomes "\"a, b\"", inner quotes
// doubled), so SplitTags gives back exactly the names joined, while galaxy
// tags such as misp-galaxy:x="y" stay readable.
func JoinTags(tags []string) string {
	var b strings.Builder
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		if strings.Contains(t, ",") || strings.HasPrefix(t, `"`) || t != strings.TrimSpace(t) {
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(t, `"`, `""`))
			b.WriteByte('"')
			continue
		}
		b.WriteString(t)
	}
	return b.String()
}

// SplitTags reverses JoinTags. Unquoted names are trimmed and empty ones
// dropped, so hand-written lists ("a, b") work too.
func SplitTags(s string) []string {
	var out []string
	for i := 0; i <= len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			j := i + 1
			for j < len(s) {
				if s[j] == '"' {
					if j+1 < len(s) && s[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					j++
					break
				}
				b.WriteByte(s[j])
				j++
			}
			if b.Len() > 0 {
				out = append(out, b.String())
			}
			// Skip to the next separator; text after a closing quote is
			// not part of any name JoinTags writes.
			k := strings.IndexByte(s[j:], ',')
			if k < 0 {
				break
			}
			i = j + k + 1
			continue
		}
		k := strings.IndexByte(s[i:], ',')
		end := len(s)
		if k >= 0 {
			end = i + k
		}
		if t := strings.TrimSpace(s[i:end]); t != "" {
			out = append(out, t)
		}
		if k < 0 {
			break
		}
		i = end + 1
	}
	return out
}
