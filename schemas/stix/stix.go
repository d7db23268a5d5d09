// Package stix validates STIX 2.1 objects against the OASIS STIX 2.1 JSON
// Schemas (cti-stix2-json-schemas, vendored under oasis/ and embedded). The
// schemas are compiled once, on first use; every "$ref" resolves to an
// embedded file and nothing is ever loaded over the network.
package stix

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/schakel/schakel/gateway"
)

// baseURL is the prefix of every vendored schema's "$id".
const baseURL = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

// Schema documents that are not named after the type they describe.
const (
	coreSchema   = "common/core.json"
	bundleSchema = "common/bundle.json"
)

//go:embed oasis/common/*.json oasis/sdos/*.json oasis/sros/*.json oasis/observables/*.json
var files embed.FS

type compiled struct {
	byType map[string]*jsonschema.Schema // object type → its schema
	core   *jsonschema.Schema
	bundle *jsonschema.Schema
	err    error
}

var state = sync.OnceValue(compile)

func compile() *compiled {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(s string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("stix schemas: refusing to load %q: only embedded schemas are used", s)
	}
	st := &compiled{byType: map[string]*jsonschema.Schema{}}
	var names []string
	err := fs.WalkDir(files, "oasis", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "oasis/")
		names = append(names, name)
		return c.AddResource(baseURL+name, bytes.NewReader(data))
	})
	if err != nil {
		st.err = fmt.Errorf("load stix schemas: %w", err)
		return st
	}
	for _, name := range names {
		s, err := c.Compile(baseURL + name)
		if err != nil {
			st.err = fmt.Errorf("compile stix schema %s: %w", name, err)
			return st
		}
		dir, file := path.Split(name)
		typ := strings.TrimSuffix(file, ".json")
		switch {
		case name == coreSchema:
			st.core = s
		case name == bundleSchema:
			st.bundle = s
		case dir != "common/", typ == "marking-definition", typ == "extension-definition", typ == "language-content":
			st.byType[typ] = s
		}
	}
	if st.core == nil || st.bundle == nil {
		st.err = errors.New("stix schemas: core.json or bundle.json is missing")
	}
	return st
}

// Types lists the object types that have their own schema, sorted.
func Types() []string {
	st := state()
	out := make([]string, 0, len(st.byType))
	for t := range st.byType {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ValidateObject validates one STIX object (JSON) against the schema of its
// "type"; a type without a schema of its own (custom objects) is checked
// against the common core only. A bundle is checked as a bundle and each of
// its objects against its own type's schema, with pointers under
// "/objects/N" (the vendored bundle.json cannot hold groupings). It returns
// nil when the object is valid, else every leaf violation once, sorted by
// pointer; messages say what is wrong without echoing the value.
func ValidateObject(obj []byte) []gateway.FieldError {
	st := state()
	if st.err != nil {
		return []gateway.FieldError{{Message: "stix schemas unavailable: " + st.err.Error()}}
	}
	v, err := decode(obj)
	if err != nil {
		return []gateway.FieldError{{Message: err.Error()}}
	}
	if errs := checkNumbers(v, "", nil); len(errs) > 0 {
		return sortErrors(errs)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return []gateway.FieldError{{Message: "a STIX object must be a JSON object"}}
	}
	var out []gateway.FieldError
	if t, _ := m["type"].(string); t == "bundle" {
		shell := make(map[string]any, len(m))
		for k, e := range m {
			if k != "objects" {
				shell[k] = e
			}
		}
		out = st.validate(st.bundle, shell, "", out)
		if objs, ok := m["objects"].([]any); ok {
			for i, o := range objs {
				out = st.validate(st.schemaFor(o), o, "/objects/"+strconv.Itoa(i), out)
			}
		} else if _, present := m["objects"]; present {
			out = append(out, gateway.FieldError{Field: "/objects", Message: "must be an array"})
		}
		return sortErrors(out)
	}
	return sortErrors(st.validate(st.schemaFor(m), m, "", out))
}

// decode reads exactly one JSON value, keeping numbers exact.
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: unexpected data after the object")
	}
	return v, nil
}

func (st *compiled) schemaFor(v any) *jsonschema.Schema {
	m, _ := v.(map[string]any)
	t, _ := m["type"].(string)
	if s, ok := st.byType[t]; ok {
		return s
	}
	return st.core
}

func (st *compiled) validate(s *jsonschema.Schema, v any, prefix string, out []gateway.FieldError) []gateway.FieldError {
	err := s.Validate(v)
	if err == nil {
		return out
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return append(out, gateway.FieldError{Field: prefix, Message: strings.TrimPrefix(err.Error(), "jsonschema: ")})
	}
	return leaves(ve, prefix, out)
}

// leaves keeps the innermost causes: the wrapper nodes ("doesn't validate
// with …", "allOf failed") say nothing a reader can act on.
func leaves(ve *jsonschema.ValidationError, prefix string, out []gateway.FieldError) []gateway.FieldError {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			out = leaves(c, prefix, out)
		}
		return out
	}
	ptr := prefix + ve.InstanceLocation
	if strings.HasSuffix(ve.KeywordLocation, "/required") {
		// "missing properties: 'a', 'b'": one error per property, at the
		// pointer the property would have.
		if _, list, ok := strings.Cut(ve.Message, ": "); ok {
			for _, q := range strings.Split(list, ", ") {
				name := strings.Trim(q, "'")
				out = append(out, gateway.FieldError{Field: ptr + "/" + escape(name), Message: fmt.Sprintf("missing property %q", name)})
			}
			return out
		}
	}
	return append(out, gateway.FieldError{Field: ptr, Message: message(ve)})
}

// message reads the keyword that failed and words the violation without the
// instance value (the validator quotes it, and it may be long).
func message(ve *jsonschema.ValidationError) string {
	loc := ve.KeywordLocation
	kw := loc[strings.LastIndexByte(loc, '/')+1:]
	switch kw {
	case "pattern":
		return "does not match the required pattern"
	case "format":
		return "is not in the required format"
	case "enum", "const":
		return "is not one of the allowed values"
	}
	return ve.Message
}

// checkNumbers rejects numbers the validator would turn into huge big.Rat
// values (it panics on some and is slow on others); STIX has no use for them.
func checkNumbers(v any, ptr string, errs []gateway.FieldError) []gateway.FieldError {
	switch v := v.(type) {
	case json.Number:
		if !sensibleNumber(string(v)) {
			errs = append(errs, gateway.FieldError{Field: ptr, Message: "number is malformed or out of range"})
		}
	case map[string]any:
		for k, e := range v {
			switch e.(type) {
			case map[string]any, []any, json.Number:
				errs = checkNumbers(e, ptr+"/"+escape(k), errs)
			}
		}
	case []any:
		for i, e := range v {
			switch e.(type) {
			case map[string]any, []any, json.Number:
				errs = checkNumbers(e, ptr+"/"+strconv.Itoa(i), errs)
			}
		}
	}
	return errs
}

// sensibleNumber accepts JSON numbers of at most 64 characters whose
// exponent, if any, is within ±400.
func sensibleNumber(s string) bool {
	if len(s) > 64 {
		return false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		return err == nil && exp >= -400 && exp <= 400
	}
	return true
}

func escape(token string) string {
	if !strings.ContainsAny(token, "~/") {
		return token
	}
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// sortErrors orders by pointer and drops repeats (oneOf branches often fail
// the same way).
func sortErrors(errs []gateway.FieldError) []gateway.FieldError {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	seen := make(map[gateway.FieldError]bool, len(errs))
	out := errs[:0]
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}
