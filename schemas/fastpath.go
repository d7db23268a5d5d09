package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// The general validator allocates on every value it visits, which costs
// ~150 µs for an ordinary ten-indicator event. Most documents are valid, so
// each schema is also compiled into a small allocation-free checker that
// only decides validity. It answers valid, invalid or unsure (a number it
// cannot compare exactly, say); only "valid" is trusted, everything else
// goes to the general validator, which produces the errors. The checker
// therefore can never change a result, only speed up the common case. It
// models exactly the keywords our schemas use and refuses to compile any
// other, and FuzzFastPath holds it to the general validator's verdict.

type verdict int8

const (
	unsure verdict = iota
	valid
	invalid
)

type checker func(v any) verdict

// and combines verdicts of keywords that must all hold.
func and(a, b verdict) verdict {
	switch {
	case a == invalid || b == invalid:
		return invalid
	case a == unsure || b == unsure:
		return unsure
	}
	return valid
}

func not(a verdict) verdict {
	switch a {
	case valid:
		return invalid
	case invalid:
		return valid
	}
	return unsure
}

// Keywords that carry no assertion.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$comment": true, "title": true,
	"description": true, "errorMessage": true, "default": true, "examples": true,
}

type fastCompiler struct {
	doc  any
	refs map[string]*checker // by JSON pointer, so $ref cycles resolve lazily
}

func compileFast(doc any) (checker, error) {
	fc := &fastCompiler{doc: doc, refs: map[string]*checker{}}
	return fc.schema(doc, "")
}

func (fc *fastCompiler) schema(s any, at string) (checker, error) {
	switch s := s.(type) {
	case bool:
		if s {
			return func(any) verdict { return valid }, nil
		}
		return func(any) verdict { return invalid }, nil
	case map[string]any:
		return fc.object(s, at)
	}
	return nil, fmt.Errorf("%s: schema is %T", at, s)
}

func (fc *fastCompiler) object(s map[string]any, at string) (checker, error) {
	var checks []checker
	add := func(c checker) { checks = append(checks, c) }
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic compile errors
	for _, kw := range keys {
		val := s[kw]
		loc := at + "/" + EscapeToken(kw)
		switch {
		case annotations[kw]:
		case kw == "$ref":
			c, err := fc.ref(val, loc)
			if err != nil {
				return nil, err
			}
			add(c)
		case kw == "type":
			c, err := typeCheck(val, loc)
			if err != nil {
				return nil, err
			}
			add(c)
		case kw == "enum" || kw == "const":
			c, err := enumCheck(kw, val, loc)
			if err != nil {
				return nil, err
			}
			add(c)
		case kw == "required":
			names, err := stringList(val, loc)
			if err != nil {
				return nil, err
			}
			add(func(v any) verdict {
				m, ok := v.(map[string]any)
				if !ok {
					return valid
				}
				for _, n := range names {
					if _, ok := m[n]; !ok {
						return invalid
					}
				}
				return valid
			})
		case kw == "properties", kw == "patternProperties":
			// Handled with additionalProperties below.
		case kw == "additionalProperties":
			// Handled below, with properties.
		case kw == "items":
			item, err := fc.schema(val, loc)
			if err != nil {
				return nil, err
			}
			add(func(v any) verdict {
				arr, ok := v.([]any)
				if !ok {
					return valid
				}
				r := valid
				for _, e := range arr {
					if r = and(r, item(e)); r == invalid {
						return invalid
					}
				}
				return r
			})
		case kw == "minItems", kw == "maxItems", kw == "minLength", kw == "maxLength", kw == "minProperties":
			n, err := count(val, loc)
			if err != nil {
				return nil, err
			}
			add(sizeCheck(kw, n))
		case kw == "pattern":
			p, ok := val.(string)
			if !ok {
				return nil, fmt.Errorf("%s: not a string", loc)
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", loc, err)
			}
			add(func(v any) verdict {
				if s, ok := v.(string); ok && !re.MatchString(s) {
					return invalid
				}
				return valid
			})
		case kw == "format":
			name, _ := val.(string)
			f, ok := jsonschema.Formats[name]
			if !ok {
				return nil, fmt.Errorf("%s: unknown format %q", loc, name)
			}
			add(func(v any) verdict {
				if f(v) {
					return valid
				}
				return invalid
			})
		case kw == "minimum", kw == "maximum":
			limit, err := integerLimit(val, loc)
			if err != nil {
				return nil, err
			}
			add(rangeCheck(kw == "minimum", limit))
		case kw == "anyOf", kw == "allOf":
			subs, err := fc.list(val, loc)
			if err != nil {
				return nil, err
			}
			if kw == "allOf" {
				add(func(v any) verdict {
					r := valid
					for _, c := range subs {
						if r = and(r, c(v)); r == invalid {
							return invalid
						}
					}
					return r
				})
				continue
			}
			add(func(v any) verdict {
				r := invalid
				for _, c := range subs {
					switch c(v) {
					case valid:
						return valid
					case unsure:
						r = unsure
					}
				}
				return r
			})
		case kw == "not":
			c, err := fc.schema(val, loc)
			if err != nil {
				return nil, err
			}
			add(func(v any) verdict { return not(c(v)) })
		case kw == "if":
			c, err := fc.conditional(s, loc)
			if err != nil {
				return nil, err
			}
			add(c)
		case kw == "then", kw == "else":
			// Handled with if.
		default:
			return nil, fmt.Errorf("%s: keyword not supported by the fast path", loc)
		}
	}
	if c, err := fc.members(s, at); err != nil {
		return nil, err
	} else if c != nil {
		add(c)
	}
	return func(v any) verdict {
		r := valid
		for _, c := range checks {
			if r = and(r, c(v)); r == invalid {
				return invalid
			}
		}
		return r
	}, nil
}

func (fc *fastCompiler) list(val any, loc string) ([]checker, error) {
	arr, ok := val.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an array", loc)
	}
	out := make([]checker, len(arr))
	for i, s := range arr {
		c, err := fc.schema(s, loc+"/"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func (fc *fastCompiler) ref(val any, loc string) (checker, error) {
	r, ok := val.(string)
	if !ok || !strings.HasPrefix(r, "#") {
		return nil, fmt.Errorf("%s: only local references are supported", loc)
	}
	ptr := Pointer(r[1:])
	if c, ok := fc.refs[ptr]; ok {
		return func(v any) verdict { return (*c)(v) }, nil
	}
	target := Lookup(fc.doc, ptr)
	if target == nil {
		return nil, fmt.Errorf("%s: %q not found", loc, r)
	}
	slot := new(checker)
	fc.refs[ptr] = slot
	c, err := fc.schema(target, ptr)
	if err != nil {
		return nil, err
	}
	*slot = c
	return c, nil
}

func (fc *fastCompiler) conditional(s map[string]any, loc string) (checker, error) {
	cond, err := fc.schema(s["if"], loc)
	if err != nil {
		return nil, err
	}
	branch := func(kw string) (checker, error) {
		if b, ok := s[kw]; ok {
			return fc.schema(b, strings.TrimSuffix(loc, "if")+kw)
		}
		return func(any) verdict { return valid }, nil
	}
	then, err := branch("then")
	if err != nil {
		return nil, err
	}
	els, err := branch("else")
	if err != nil {
		return nil, err
	}
	return func(v any) verdict {
		switch cond(v) {
		case valid:
			return then(v)
		case invalid:
			return els(v)
		}
		return unsure
	}, nil
}

// members compiles properties, patternProperties and additionalProperties,
// which depend on each other.
func (fc *fastCompiler) members(s map[string]any, at string) (checker, error) {
	props := map[string]checker{}
	if p, ok := s["properties"]; ok {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s/properties: not an object", at)
		}
		for name, sub := range m {
			c, err := fc.schema(sub, at+"/properties/"+EscapeToken(name))
			if err != nil {
				return nil, err
			}
			props[name] = c
		}
	}
	type pattern struct {
		re *regexp.Regexp
		c  checker
	}
	var patterns []pattern
	if p, ok := s["patternProperties"]; ok {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s/patternProperties: not an object", at)
		}
		for expr, sub := range m {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, fmt.Errorf("%s/patternProperties: %w", at, err)
			}
			c, err := fc.schema(sub, at+"/patternProperties/"+EscapeToken(expr))
			if err != nil {
				return nil, err
			}
			patterns = append(patterns, pattern{re, c})
		}
	}
	var additional checker
	if a, ok := s["additionalProperties"]; ok {
		c, err := fc.schema(a, at+"/additionalProperties")
		if err != nil {
			return nil, err
		}
		additional = c
	}
	if len(props) == 0 && len(patterns) == 0 && additional == nil {
		return nil, nil
	}
	return func(v any) verdict {
		m, ok := v.(map[string]any)
		if !ok {
			return valid
		}
		r := valid
		for name, val := range m {
			c, known := props[name]
			if known {
				if r = and(r, c(val)); r == invalid {
					return invalid
				}
			}
			for _, p := range patterns {
				if p.re.MatchString(name) {
					known = true
					if r = and(r, p.c(val)); r == invalid {
						return invalid
					}
				}
			}
			if !known && additional != nil {
				if r = and(r, additional(val)); r == invalid {
					return invalid
				}
			}
		}
		return r
	}, nil
}

func typeCheck(val any, loc string) (checker, error) {
	var types []string
	switch t := val.(type) {
	case string:
		types = []string{t}
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s: not a type name", loc)
			}
			types = append(types, s)
		}
	default:
		return nil, fmt.Errorf("%s: not a type", loc)
	}
	return func(v any) verdict {
		r := invalid
		for _, t := range types {
			switch isType(v, t) {
			case valid:
				return valid
			case unsure:
				r = unsure
			}
		}
		return r
	}, nil
}

func isType(v any, t string) verdict {
	yes := func(b bool) verdict {
		if b {
			return valid
		}
		return invalid
	}
	switch t {
	case "null":
		return yes(v == nil)
	case "boolean":
		_, ok := v.(bool)
		return yes(ok)
	case "string":
		_, ok := v.(string)
		return yes(ok)
	case "object":
		_, ok := v.(map[string]any)
		return yes(ok)
	case "array":
		_, ok := v.([]any)
		return yes(ok)
	case "number":
		_, ok := number(v)
		return yes(ok)
	case "integer":
		if _, ok := number(v); !ok {
			return invalid
		}
		if _, ok := integer(v); ok {
			return valid
		}
		return unsure // 1.0 and 1e2 are integers too; let the full validator decide
	}
	return unsure
}

// number reports whether v is a JSON number.
func number(v any) (any, bool) {
	switch v.(type) {
	case json.Number, float32, float64, int, int8, int32, int64, uint, uint8, uint32, uint64:
		return v, true
	}
	return nil, false
}

// integer returns v when it is written or stored as an exact integer that
// fits int64.
func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	}
	return 0, false
}

// compareTo compares a number with an integer limit: -1, 0, 1, or ok=false
// when that cannot be done exactly without big arithmetic.
func compareTo(v any, limit int64) (int, bool) {
	if i, ok := integer(v); ok {
		switch {
		case i < limit:
			return -1, true
		case i > limit:
			return 1, true
		}
		return 0, true
	}
	var f float64
	switch n := v.(type) {
	case json.Number:
		// With at most 15 significant digits the nearest float64 keeps the
		// order relative to any integer we use as a limit.
		if significantDigits(string(n)) > 15 {
			return 0, false
		}
		var err error
		if f, err = strconv.ParseFloat(string(n), 64); err != nil {
			return 0, false
		}
	case float64:
		f = n
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	switch l := float64(limit); {
	case f < l:
		return -1, true
	case f > l:
		return 1, true
	}
	return 0, true
}

func significantDigits(s string) int {
	mant, _, _ := strings.Cut(strings.ToLower(s), "e")
	mant = strings.TrimLeft(strings.ReplaceAll(strings.TrimPrefix(mant, "-"), ".", ""), "0")
	return len(strings.TrimRight(mant, "0"))
}

func rangeCheck(isMin bool, limit int64) checker {
	return func(v any) verdict {
		if _, ok := number(v); !ok {
			return valid
		}
		c, ok := compareTo(v, limit)
		if !ok {
			return unsure
		}
		if (isMin && c < 0) || (!isMin && c > 0) {
			return invalid
		}
		return valid
	}
}

func sizeCheck(kw string, n int) checker {
	return func(v any) verdict {
		size := -1
		switch x := v.(type) {
		case string:
			if kw == "minLength" || kw == "maxLength" {
				size = utf8.RuneCountInString(x)
			}
		case []any:
			if kw == "minItems" || kw == "maxItems" {
				size = len(x)
			}
		case map[string]any:
			if kw == "minProperties" {
				size = len(x)
			}
		}
		if size < 0 {
			return valid // the keyword does not apply to this type
		}
		if strings.HasPrefix(kw, "min") && size < n || strings.HasPrefix(kw, "max") && size > n {
			return invalid
		}
		return valid
	}
}

func enumCheck(kw string, val any, loc string) (checker, error) {
	var allowed []string
	if kw == "const" {
		val = []any{val}
	}
	arr, ok := val.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an array", loc)
	}
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: only string values are supported", loc)
		}
		allowed = append(allowed, s)
	}
	return func(v any) verdict {
		if s, ok := v.(string); ok && slices.Contains(allowed, s) {
			return valid
		}
		return invalid
	}, nil
}

func stringList(val any, loc string) ([]string, error) {
	arr, ok := val.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an array", loc)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: not a string", loc)
		}
		out[i] = s
	}
	return out, nil
}

func count(val any, loc string) (int, error) {
	n, ok := val.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s: not a number", loc)
	}
	i, err := strconv.Atoi(string(n))
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%s: not a count", loc)
	}
	return i, nil
}

func integerLimit(val any, loc string) (int64, error) {
	n, ok := val.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s: not a number", loc)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: only integer limits are supported", loc)
	}
	return i, nil
}
