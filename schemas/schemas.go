// Package schemas holds Schakel's JSON Schemas (draft 2020-12) — the
// canonical event as accepted on ingest, the constituent and the YAML
// configuration — embedded in the binary and compiled once. Validation
// reports every violation with the JSON pointer of the offending field, so
// an API client or an operator can fix all problems of one document at once.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/schakel/schakel/gateway"
)

// Name names one embedded schema document.
type Name string

const (
	Event       Name = "event.schema.json"
	Constituent Name = "constituent.schema.json"
	Config      Name = "config.schema.json"
)

// Names lists every embedded schema.
var Names = []Name{Event, Constituent, Config}

// baseURL is where the documents claim to live ($id); they are never fetched.
const baseURL = "https://github.com/schakel/schakel/schemas/"

//go:embed *.schema.json
var files embed.FS

// compiled is the state shared by all validations, built on first use.
type compiled struct {
	schemas map[Name]*jsonschema.Schema
	fast    map[Name]checker // see fastpath.go
	fastErr map[Name]error   // why a schema has no fast path (a bug; tests fail on it)
	raw     map[string]any   // decoded documents by $id, to read keywords back
	err     error
}

var state = sync.OnceValue(compile)

func compile() *compiled {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(s string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("schemas: refusing to load %q: only embedded schemas are used", s)
	}
	st := &compiled{schemas: map[Name]*jsonschema.Schema{}, fast: map[Name]checker{}, fastErr: map[Name]error{}, raw: map[string]any{}}
	for _, n := range Names {
		data := Raw(n)
		if err := c.AddResource(baseURL+string(n), bytes.NewReader(data)); err != nil {
			st.err = fmt.Errorf("add schema %s: %w", n, err)
			return st
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			st.err = fmt.Errorf("decode schema %s: %w", n, err)
			return st
		}
		st.raw[baseURL+string(n)] = doc
	}
	for _, n := range Names {
		s, err := c.Compile(baseURL + string(n))
		if err != nil {
			st.err = fmt.Errorf("compile schema %s: %w", n, err)
			return st
		}
		st.schemas[n] = s
		if f, err := compileFast(st.raw[baseURL+string(n)]); err != nil {
			st.fastErr[n] = err
		} else {
			st.fast[n] = f
		}
	}
	return st
}

// Raw returns a copy of the schema document (for serving or for other
// packages to embed); nil for an unknown name.
func Raw(name Name) []byte {
	if !slices.Contains(Names, name) {
		return nil
	}
	data, err := files.ReadFile(string(name))
	if err != nil {
		return nil
	}
	return data
}

// ValidateJSON decodes data (numbers kept exact) and validates it. A syntax
// error is returned as one FieldError with Field "" and the byte offset in
// the message.
func ValidateJSON(name Name, data []byte) []gateway.FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []gateway.FieldError{{Message: syntaxMessage(err, dec.InputOffset(), len(data))}}
	}
	if off := dec.InputOffset(); off >= 0 && off <= int64(len(data)) {
		rest := data[off:]
		if trimmed := bytes.TrimLeft(rest, " \t\r\n"); len(trimmed) > 0 {
			at := off + int64(len(rest)-len(trimmed))
			return []gateway.FieldError{{Message: fmt.Sprintf("invalid JSON at byte offset %d: unexpected data after the top-level value", at)}}
		}
	}
	return Validate(name, v)
}

func syntaxMessage(err error, offset int64, size int) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// Offset counts the offending byte itself; report its 0-based position.
		return fmt.Sprintf("invalid JSON at byte offset %d: %s", max(se.Offset-1, 0), se.Error())
	case errors.Is(err, io.EOF):
		return "invalid JSON at byte offset 0: empty document"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("invalid JSON at byte offset %d: unexpected end of input", size)
	}
	return fmt.Sprintf("invalid JSON at byte offset %d: %s", offset, err.Error())
}

// Validate checks v, a value as decoded by encoding/json into any
// (map[string]any, []any, json.Number or float64, string, bool, nil), and
// returns every leaf violation, one per distinct pointer and message,
// sorted by pointer. It returns nil when v is valid. Each FieldError's Field
// is the JSON pointer (RFC 6901) of the offending field ("" for the root);
// a missing required property is reported at the pointer it would have, an
// unexpected one at its own.
func Validate(name Name, v any) []gateway.FieldError {
	st := state()
	if st.err != nil {
		return []gateway.FieldError{{Message: "schema unavailable: " + st.err.Error()}}
	}
	s, ok := st.schemas[name]
	if !ok {
		return []gateway.FieldError{{Message: fmt.Sprintf("unknown schema %q", string(name))}}
	}
	if name == Event {
		// Refuse an oversized event before validating each of its
		// indicators, which would take seconds.
		if errs := st.tooMany(v, "/indicators", baseURL+string(Event)+"#/properties/indicators/maxItems"); errs != nil {
			return errs
		}
	}
	// The validator turns numbers into big.Rat and panics on values it
	// cannot convert; reject those first.
	if errs := checkValues(v, "", nil); len(errs) > 0 {
		return sortErrors(errs)
	}
	if f := st.fast[name]; f != nil && f(v) == valid {
		return nil
	}
	err := s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []gateway.FieldError{{Message: strings.TrimPrefix(err.Error(), "jsonschema: ")}}
	}
	var out []gateway.FieldError
	st.flatten(ve, v, &out)
	return sortErrors(out)
}

// tooMany reports an array at ptr longer than the maxItems at loc.
func (st *compiled) tooMany(v any, ptr, loc string) []gateway.FieldError {
	arr, ok := Lookup(v, ptr).([]any)
	if !ok {
		return nil
	}
	if n := st.intKeyword(loc); n >= 0 && len(arr) > n {
		return []gateway.FieldError{{Field: ptr, Message: fmt.Sprintf("must have at most %d items", n)}}
	}
	return nil
}

// maxNumberLen bounds the text of a number: longer ones are absurd in our
// documents and would make big.Rat arithmetic slow.
const maxNumberLen = 64

// checkValues rejects values the validator cannot handle: non-JSON Go
// types, non-finite floats and malformed or absurdly large json.Numbers.
// The pointer is built only for a value that fails, so a valid document
// costs no allocation.
func checkValues(v any, ptr string, errs []gateway.FieldError) []gateway.FieldError {
	return checkValue(v, func() string { return ptr }, errs)
}

func checkValue(v any, ptr func() string, errs []gateway.FieldError) []gateway.FieldError {
	switch v := v.(type) {
	case nil, bool, string, int, int8, int32, int64, uint, uint8, uint32, uint64:
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, gateway.FieldError{Field: ptr(), Message: "number must be finite"})
		}
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			errs = append(errs, gateway.FieldError{Field: ptr(), Message: "number must be finite"})
		}
	case json.Number:
		if len(v) > maxNumberLen || !validNumber(string(v)) {
			errs = append(errs, gateway.FieldError{Field: ptr(), Message: "number is malformed or out of range"})
		}
	case map[string]any:
		for k, e := range v {
			switch e.(type) {
			case string, bool, nil:
				continue // the common leaves, without a closure
			}
			errs = checkValue(e, func() string { return ptr() + "/" + EscapeToken(k) }, errs)
		}
	case []any:
		for i, e := range v {
			switch e.(type) {
			case string, bool, nil:
				continue
			}
			errs = checkValue(e, func() string { return ptr() + "/" + strconv.Itoa(i) }, errs)
		}
	default:
		errs = append(errs, gateway.FieldError{Field: ptr(), Message: fmt.Sprintf("unsupported value of Go type %T", v)})
	}
	return errs
}

// validNumber reports whether s is a JSON number whose exponent stays
// within ±1000, which big.Rat parses quickly.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		if digits() == 0 {
			return false
		}
		exp, err := strconv.Atoi(s[start:i])
		if err != nil || exp > 1000 {
			return false
		}
	}
	return i == len(s)
}

// flatten walks the validator's error tree and appends one FieldError per leaf,
// rewritten into a readable message. Wrapper nodes ("doesn't validate
// with", "allOf failed", "if-then failed") are dropped. A failed anyOf or
// oneOf whose schema carries an "errorMessage" is reported once with that
// message instead of one line per alternative.
func (st *compiled) flatten(ve *jsonschema.ValidationError, instance any, out *[]gateway.FieldError) {
	kw := lastToken(ve.KeywordLocation)
	ptr := Pointer(ve.InstanceLocation)
	if len(ve.Causes) > 0 {
		if kw == "anyOf" || kw == "oneOf" {
			if msg, ok := st.errorMessage(ve.AbsoluteKeywordLocation); ok {
				*out = append(*out, gateway.FieldError{Field: ptr, Message: msg})
				return
			}
		}
		for _, c := range ve.Causes {
			st.flatten(c, instance, out)
		}
		return
	}
	switch kw {
	case "required":
		obj, _ := Lookup(instance, ptr).(map[string]any)
		names, _ := st.keyword(ve.AbsoluteKeywordLocation).([]any)
		for _, n := range names {
			name, _ := n.(string)
			if _, ok := obj[name]; !ok {
				*out = append(*out, gateway.FieldError{Field: ptr + "/" + EscapeToken(name), Message: fmt.Sprintf("missing property %q", name)})
			}
		}
		return
	case "additionalProperties":
		names := quotedNames(ve.Message)
		if len(names) == 0 {
			*out = append(*out, gateway.FieldError{Field: ptr, Message: "additional properties are not allowed"})
		}
		for _, name := range names {
			*out = append(*out, gateway.FieldError{Field: ptr + "/" + EscapeToken(name), Message: fmt.Sprintf("additional property %q is not allowed", name)})
		}
		return
	}
	if msg, ok := st.errorMessage(ve.AbsoluteKeywordLocation); ok {
		*out = append(*out, gateway.FieldError{Field: ptr, Message: msg})
		return
	}
	*out = append(*out, gateway.FieldError{Field: ptr, Message: st.message(kw, ve)})
}

// message rewrites the validator's leaf message so that it never echoes the
// instance value (it may be a secret) and reads as plain English.
func (st *compiled) message(kw string, ve *jsonschema.ValidationError) string {
	switch kw {
	case "format":
		f, _ := st.keyword(ve.AbsoluteKeywordLocation).(string)
		switch f {
		case "date-time":
			return `must be an RFC 3339 date-time such as "2026-11-20T09:14:33Z"`
		case "email":
			return "must be an e-mail address"
		case "uri":
			return "must be an absolute URI"
		}
		return "must be a valid " + f
	case "minLength":
		if n := st.intKeyword(ve.AbsoluteKeywordLocation); n == 1 {
			return "must not be empty"
		} else if n > 1 {
			return fmt.Sprintf("must be at least %d characters long", n)
		}
	case "maxLength":
		if n := st.intKeyword(ve.AbsoluteKeywordLocation); n >= 0 {
			return fmt.Sprintf("must be at most %d characters long", n)
		}
	case "pattern":
		if p, ok := st.keyword(ve.AbsoluteKeywordLocation).(string); ok {
			return "must match the pattern " + strconv.Quote(p)
		}
	case "maxItems":
		if n := st.intKeyword(ve.AbsoluteKeywordLocation); n >= 0 {
			return fmt.Sprintf("must have at most %d items", n)
		}
	case "minItems":
		if n := st.intKeyword(ve.AbsoluteKeywordLocation); n >= 0 {
			return fmt.Sprintf("must have at least %d items", n)
		}
	case "minProperties":
		if n := st.intKeyword(ve.AbsoluteKeywordLocation); n == 1 {
			return "must have at least one property"
		} else if n >= 0 {
			return fmt.Sprintf("must have at least %d properties", n)
		}
	case "type":
		return strings.Replace(ve.Message, ", but got ", ", got ", 1)
	case "not":
		return "is not allowed here"
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		// The validator prints limits as floats ("1.073741824e+09").
		if n, ok := st.keyword(ve.AbsoluteKeywordLocation).(json.Number); ok {
			rel := map[string]string{"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than", "exclusiveMaximum": "less than"}[kw]
			return "must be " + rel + " " + n.String()
		}
	case "multipleOf":
		return "is not a multiple of " + fmt.Sprint(st.keyword(ve.AbsoluteKeywordLocation))
	}
	return ve.Message
}

// keyword returns the schema value at an absolute keyword location
// ("https://…/event.schema.json#/properties/tlp/enum").
func (st *compiled) keyword(loc string) any {
	u, frag, _ := strings.Cut(loc, "#")
	v, ok := st.raw[u]
	if !ok {
		return nil
	}
	return Lookup(v, Pointer(frag))
}

func (st *compiled) intKeyword(loc string) int {
	n, ok := st.keyword(loc).(json.Number)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		return -1
	}
	return i
}

// errorMessage returns the "errorMessage" annotation of the schema that
// holds the failing keyword, if it has one.
func (st *compiled) errorMessage(loc string) (string, bool) {
	i := strings.LastIndexByte(loc, '/')
	if i < 0 {
		return "", false
	}
	sch, ok := st.keyword(loc[:i]).(map[string]any)
	if !ok {
		return "", false
	}
	msg, ok := sch["errorMessage"].(string)
	return msg, ok
}

// Pointer turns the validator's locations, whose tokens are URL-path
// escaped, into an RFC 6901 JSON pointer.
func Pointer(loc string) string {
	if loc == "" || loc == "/" {
		return ""
	}
	if !strings.Contains(loc, "%") {
		return loc
	}
	toks := strings.Split(loc, "/")
	for i, t := range toks {
		if u, err := url.PathUnescape(t); err == nil {
			toks[i] = u
		}
	}
	return strings.Join(toks, "/")
}

func lastToken(loc string) string {
	return loc[strings.LastIndexByte(loc, '/')+1:]
}

// EscapeToken escapes one reference token of a JSON pointer.
func EscapeToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapeToken(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// Tokens splits a JSON pointer into its unescaped reference tokens; the
// root "" has none.
func Tokens(ptr string) []string {
	if ptr == "" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range toks {
		toks[i] = unescapeToken(t)
	}
	return toks
}

// Lookup resolves a JSON pointer in a decoded JSON value; nil when absent.
func Lookup(v any, ptr string) any {
	for _, t := range Tokens(ptr) {
		switch c := v.(type) {
		case map[string]any:
			v = c[t]
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// quotedNames extracts the property names the validator quotes in a
// message like `additionalProperties 'a', 'b' not allowed`. Its quoting is
// Go %q with \" turned into " and ' escaped as \'; this undoes it.
func quotedNames(msg string) []string {
	var names []string
	for i := 0; i < len(msg); i++ {
		if msg[i] != '\'' {
			continue
		}
		var b strings.Builder
		j := i + 1
		for ; j < len(msg) && msg[j] != '\''; j++ {
			if msg[j] == '\\' && j+1 < len(msg) {
				b.WriteByte(msg[j])
				j++
			}
			b.WriteByte(msg[j])
		}
		if j >= len(msg) {
			break
		}
		body := strings.ReplaceAll(b.String(), `\'`, `'`)
		body = strings.ReplaceAll(body, `"`, `\"`)
		name, err := strconv.Unquote(`"` + body + `"`)
		if err != nil {
			name = b.String()
		}
		names = append(names, name)
		i = j
	}
	return names
}

// sortErrors orders by pointer (array indexes numerically), then message,
// and drops duplicates.
func sortErrors(errs []gateway.FieldError) []gateway.FieldError {
	slices.SortFunc(errs, func(a, b gateway.FieldError) int {
		if c := ComparePointers(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return slices.Compact(errs)
}

// ComparePointers orders JSON pointers token by token, comparing tokens
// that are both array indexes numerically, so "/indicators/2" comes before
// "/indicators/10".
func ComparePointers(a, b string) int {
	ta, tb := Tokens(a), Tokens(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if ta[i] == tb[i] {
			continue
		}
		na, ea := strconv.Atoi(ta[i])
		nb, eb := strconv.Atoi(tb[i])
		if ea == nil && eb == nil && na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
		return strings.Compare(ta[i], tb[i])
	}
	return len(ta) - len(tb)
}
