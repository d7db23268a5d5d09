package misp

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MISP writes numbers, ids and timestamps as JSON strings and PyMISP as
// numbers; booleans arrive as true, 1 or "1". The types below accept every
// form and never fail, so one odd field cannot make encoding/json reject a
// whole event: they remember what was wrong (bad) and Decode reports it as a
// FieldError naming the field.
//
// They keep sub-slices of the input. That is safe because Decode only calls
// json.Unmarshal, which hands UnmarshalJSON slices of the caller's buffer,
// and nothing decoded here outlives Decode.

// jstr is a string that may also arrive as a number or a boolean.
type jstr struct {
	s   string
	set bool
	bad bool // an object or array
}

func (j *jstr) UnmarshalJSON(b []byte) error {
	*j = jstr{}
	switch b[0] {
	case 'n':
	case '"':
		j.s, j.set = unquote(b), true
	case '{', '[':
		j.bad = true
	default: // number or boolean: keep the literal text
		j.s, j.set = string(b), true
	}
	return nil
}

// unquote returns the JSON string literal b as a Go string, without
// decoding when it holds no escapes and is valid UTF-8 (the common case).
func unquote(b []byte) string {
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return ""
	}
	return s
}

// jint is an integer that may arrive as a number or a numeric string.
type jint struct {
	n   int64
	set bool
	bad bool
	raw string // what was sent, for messages
}

func (j *jint) UnmarshalJSON(b []byte) error {
	*j = jint{}
	switch b[0] {
	case 'n':
		return nil
	case '"':
		s := strings.TrimSpace(unquote(b))
		if s == "" {
			return nil
		}
		j.raw = s
	case '{', '[', 't', 'f':
		j.raw, j.bad = shorten(string(b)), true
		return nil
	default:
		j.raw = string(b)
	}
	n, err := strconv.ParseInt(j.raw, 10, 64)
	if err != nil {
		// PyMISP and spreadsheets sometimes send 3.0.
		f, ferr := strconv.ParseFloat(j.raw, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			j.raw, j.bad = shorten(j.raw), true
			return nil
		}
		n = int64(f)
	}
	j.n, j.set = n, true
	return nil
}

// jbool is a boolean that may arrive as true, 1, "1", "true" (and the
// false forms).
type jbool struct {
	v   bool
	set bool
	bad bool
}

func (j *jbool) UnmarshalJSON(b []byte) error {
	*j = jbool{}
	s := string(b)
	if b[0] == '"' {
		s = strings.ToLower(strings.TrimSpace(unquote(b)))
		if s == "" {
			return nil
		}
	}
	switch s {
	case "null":
	case "true", "1":
		j.v, j.set = true, true
	case "false", "0":
		j.set = true
	default:
		j.bad = true
	}
	return nil
}

// jraw keeps a field's raw JSON for a second, separate decode.
type jraw struct{ b []byte }

func (j *jraw) UnmarshalJSON(b []byte) error {
	if b[0] == 'n' {
		j.b = nil
		return nil
	}
	j.b = b
	return nil
}

// jlist is a JSON array kept as its elements' raw JSON, at most listCap of
// them; total counts every element so limits can be reported. bad is set
// when the field is not an array.
type jlist struct {
	elems [][]byte
	total int
	bad   bool
	obj   []byte // the value when it is an object, not a list (a lone MISP object)
}

// listCap bounds the elements of one list kept in memory; Decode never maps
// more than maxAttributes attributes per event anyway.
const listCap = maxAttributes

func (j *jlist) UnmarshalJSON(b []byte) error {
	*j = jlist{}
	switch b[0] {
	case 'n':
	case '[':
		j.elems, j.total = splitArray(b, listCap)
	case '{':
		j.bad, j.obj = true, b
	default:
		j.bad = true
	}
	return nil
}

// splitArray returns up to max elements of the valid JSON array b as
// sub-slices, and the number of elements in all.
func splitArray(b []byte, max int) ([][]byte, int) {
	var elems [][]byte
	total := 0
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != ']' {
		end := skipValue(b, i)
		if total < max {
			elems = append(elems, b[i:end])
		}
		total++
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return elems, total
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipString returns the index just past the string literal at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// shorten keeps messages about hostile input short.
func shorten(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
