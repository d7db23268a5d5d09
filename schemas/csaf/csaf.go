// Package csaf holds the OASIS CSAF 2.0 JSON schema and the FIRST CVSS v2.0,
// v3.0 and v3.1 schemas it references, embedded and compiled once. Every
// remote reference is resolved from the embedded copies; nothing is ever
// fetched from the network, so validation works offline and cannot be
// steered by whoever controls those URLs.
package csaf

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/schemas"
)

// SchemaURL is the $id of the CSAF 2.0 schema.
const SchemaURL = "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json"

// SchemaURL21 is the $id of the CSAF 2.1 schema. A document is checked
// against the schema of its /document/csaf_version: "2.1" here, anything
// else the 2.0 schema.
const SchemaURL21 = "https://docs.oasis-open.org/csaf/csaf/v2.1/schema/csaf.json"

// unvendored are schemas CSAF 2.1 refers to that are served as the empty
// schema, so what they describe is accepted as it is; everything else in a
// 2.1 document is checked. FIRST's CVSS v4.0 and CERT/CC's SSVC selection
// list are not published in the CSAF repository; the extension-content
// schema's metaschema uses look-ahead patterns, which Go's regexp (RE2)
// cannot compile.
var unvendored = map[string]bool{
	"https://docs.oasis-open.org/csaf/csaf/v2.1/schema/extension-content.json":     true,
	"https://www.first.org/cvss/cvss-v4.0.json":                                    true,
	"https://certcc.github.io/SSVC/data/schema/v2/SelectionList_2_0_0.schema.json": true,
}

//go:embed *.json
var files embed.FS

// resources maps every URL the CSAF schema refers to onto its embedded file.
// The meta-schemas (draft-04, draft-07, 2020-12) are built into the
// validator library.
var resources = map[string]string{
	SchemaURL: "csaf_json_schema.json",
	"https://www.first.org/cvss/cvss-v2.0.json": "cvss-v2.0.json",
	"https://www.first.org/cvss/cvss-v3.0.json": "cvss-v3.0.json",
	"https://www.first.org/cvss/cvss-v3.1.json": "cvss-v3.1.json",
	SchemaURL21: "csaf_2.1_csaf.json",
	"https://docs.oasis-open.org/csaf/csaf/v2.1/schema/meta.json": "csaf_2.1_meta.json",
}

type compiled struct {
	schema   *jsonschema.Schema // CSAF 2.0
	schema21 *jsonschema.Schema // CSAF 2.1
	err21    error              // the 2.1 schema failing leaves 2.0 working
	raw      map[string]any     // decoded schema documents by URL, to read keywords back
	err      error
}

var state = sync.OnceValue(compile)

// maxQuotedPattern is the longest pattern quoted in a message.
const maxQuotedPattern = 80

func compile() *compiled {
	st := &compiled{raw: map[string]any{}}
	for u, name := range resources {
		data, err := files.ReadFile(name)
		if err != nil {
			st.err = fmt.Errorf("read embedded schema %s: %w", name, err)
			return st
		}
		var doc any
		if err := json.Unmarshal(data, &doc); err != nil {
			st.err = fmt.Errorf("decode embedded schema %s: %w", name, err)
			return st
		}
		st.raw[u] = doc
		// The CVSS schemas name themselves with a query ("?20170531");
		// error locations may use that form.
		if m, ok := doc.(map[string]any); ok {
			for _, k := range []string{"$id", "id"} {
				if id, ok := m[k].(string); ok && id != u {
					st.raw[strings.TrimSuffix(id, "#")] = doc
				}
			}
		}
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	// CSAF conformance includes the formats (date-time, uri).
	c.AssertFormat = true
	c.LoadURL = loadEmbedded
	s, err := c.Compile(SchemaURL)
	if err != nil {
		st.err = fmt.Errorf("compile CSAF schema: %w", err)
		return st
	}
	st.schema = s
	if st.schema21, err = c.Compile(SchemaURL21); err != nil {
		st.err21 = fmt.Errorf("compile CSAF 2.1 schema: %w", err)
	}
	return st
}

// loadEmbedded serves the schemas the CSAF schema refers to and refuses
// every other URL.
func loadEmbedded(s string) (io.ReadCloser, error) {
	u, _, _ := strings.Cut(s, "#")
	if unvendored[u] {
		return io.NopCloser(strings.NewReader(`{"$schema": "https://json-schema.org/draft/2020-12/schema"}`)), nil
	}
	name, ok := resources[u]
	if !ok {
		return nil, fmt.Errorf("refusing to load %q: only embedded schemas are used", s)
	}
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read embedded schema %s: %w", name, err)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Raw returns a copy of an embedded schema by its URL (SchemaURL or one of
// the CVSS schema URLs); nil for any other URL.
func Raw(schemaURL string) []byte {
	name, ok := resources[schemaURL]
	if !ok {
		return nil
	}
	data, err := files.ReadFile(name)
	if err != nil {
		return nil
	}
	return data
}

// Validate checks doc against the CSAF 2.0 schema and returns every
// violation sorted by pointer; nil when doc is valid. A document that is
// not JSON gives one FieldError with an empty Field.
func Validate(doc []byte) []gateway.FieldError {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return []gateway.FieldError{{Message: "invalid JSON: " + err.Error()}}
	}
	return ValidateValue(v)
}

// ValidateValue checks v, a document decoded by encoding/json into any
// (map[string]any, []any, float64, string, bool, nil), so a caller that
// also maps the document decodes it only once.
func ValidateValue(v any) []gateway.FieldError {
	st := state()
	if st.err != nil {
		return []gateway.FieldError{{Message: "CSAF schema unavailable: " + st.err.Error()}}
	}
	schema := st.schema
	if root, ok := v.(map[string]any); ok {
		if doc, ok := root["document"].(map[string]any); ok && doc["csaf_version"] == "2.1" {
			if st.err21 != nil {
				return []gateway.FieldError{{Message: "CSAF 2.1 schema unavailable: " + st.err21.Error()}}
			}
			schema = st.schema21
		}
	}
	err := schema.Validate(v)
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

// flatten appends one FieldError per leaf of the validator's error tree. For a
// failed oneOf or anyOf it reports only the alternative that came closest
// (fewest violations): a CVSS v3.1 score with a bad base score should not
// also be told that its version is not "3.0".
func (st *compiled) flatten(ve *jsonschema.ValidationError, instance any, out *[]gateway.FieldError) {
	kw := lastToken(ve.KeywordLocation)
	if len(ve.Causes) > 0 {
		if kw == "oneOf" || kw == "anyOf" {
			var best []gateway.FieldError
			for i, c := range ve.Causes {
				var errs []gateway.FieldError
				st.flatten(c, instance, &errs)
				if i == 0 || len(errs) < len(best) {
					best = errs
				}
			}
			*out = append(*out, best...)
			return
		}
		for _, c := range ve.Causes {
			st.flatten(c, instance, out)
		}
		return
	}
	ptr := pointer(ve.InstanceLocation)
	switch kw {
	case "required":
		obj, _ := lookup(instance, ptr).(map[string]any)
		names, _ := st.keyword(ve.AbsoluteKeywordLocation).([]any)
		n := len(*out)
		for _, name := range names {
			s, _ := name.(string)
			if _, ok := obj[s]; !ok {
				*out = append(*out, gateway.FieldError{Field: ptr + "/" + escapeToken(s), Message: fmt.Sprintf("missing property %q", s)})
			}
		}
		if len(*out) > n {
			return
		}
	case "format":
		f, _ := st.keyword(ve.AbsoluteKeywordLocation).(string)
		switch f {
		case "date-time":
			*out = append(*out, gateway.FieldError{Field: ptr, Message: `must be an RFC 3339 date-time such as "2026-11-20T09:14:33Z"`})
		case "uri":
			*out = append(*out, gateway.FieldError{Field: ptr, Message: "must be an absolute URI"})
		default:
			*out = append(*out, gateway.FieldError{Field: ptr, Message: "must be a valid " + f})
		}
		return
	case "minLength":
		if n, ok := st.keyword(ve.AbsoluteKeywordLocation).(float64); ok && n == 1 {
			*out = append(*out, gateway.FieldError{Field: ptr, Message: "must not be empty"})
			return
		}
	case "pattern":
		// Some patterns (CPE, CVSS vectors, language tags) run to hundreds
		// of characters; quoting them helps nobody.
		if p, ok := st.keyword(ve.AbsoluteKeywordLocation).(string); ok && len(p) > maxQuotedPattern {
			*out = append(*out, gateway.FieldError{Field: ptr, Message: "does not match the pattern the schema requires for this field"})
			return
		}
	case "minItems", "minProperties":
		if n, ok := st.keyword(ve.AbsoluteKeywordLocation).(float64); ok {
			what := map[string]string{"minItems": "item", "minProperties": "property"}[kw]
			if n != 1 {
				what = map[string]string{"minItems": "items", "minProperties": "properties"}[kw]
			}
			*out = append(*out, gateway.FieldError{Field: ptr, Message: fmt.Sprintf("must have at least %v %s", n, what)})
			return
		}
	case "type":
		*out = append(*out, gateway.FieldError{Field: ptr, Message: strings.Replace(ve.Message, ", but got ", ", got ", 1)})
		return
	}
	*out = append(*out, gateway.FieldError{Field: ptr, Message: ve.Message})
}

// keyword returns the schema value at an absolute keyword location
// ("https://…/csaf_json_schema.json#/properties/document/required").
func (st *compiled) keyword(loc string) any {
	u, frag, _ := strings.Cut(loc, "#")
	doc, ok := st.raw[u]
	if !ok {
		return nil
	}
	return lookup(doc, pointer(frag))
}

func pointer(loc string) string { return schemas.Pointer(loc) }

func lastToken(loc string) string { return loc[strings.LastIndexByte(loc, '/')+1:] }

func escapeToken(s string) string { return schemas.EscapeToken(s) }

func tokens(ptr string) []string { return schemas.Tokens(ptr) }

// lookup resolves a JSON pointer in a decoded value; nil when absent.
func lookup(v any, ptr string) any { return schemas.Lookup(v, ptr) }

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

// ComparePointers orders JSON pointers token by token, array indexes
// numerically ("/vulnerabilities/2" before "/vulnerabilities/10").
func ComparePointers(a, b string) int { return schemas.ComparePointers(a, b) }
