package misp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// params are the filters of one request: the JSON body (bare or wrapped in
// {"request":{…}}, as MISP's RestSearch accepts) merged with CakePHP named
// parameters from the path (/k:v, /k[]:v), which win. Keys are matched
// case-sensitively, as MISP does; unknown keys are ignored.
type params map[string]json.RawMessage

// splitPath separates the path after a route prefix into its positional
// argument and named parameters, dropping a ".json" suffix anywhere MISP
// clients put one: "/5f0c…/deleted[]:0/excludeGalaxy:1.json" → "5f0c…",
// {"deleted": ["0"], "excludeGalaxy": ["1"]}.
func splitPath(rest string) (string, map[string][]string) {
	rest = strings.TrimSuffix(rest, ".json")
	named := map[string][]string{}
	arg := ""
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" {
			continue
		}
		seg = strings.TrimSuffix(seg, ".json")
		if s, err := url.PathUnescape(seg); err == nil {
			seg = s
		}
		k, v, ok := strings.Cut(seg, ":")
		if !ok {
			if arg == "" {
				arg = seg
			}
			continue
		}
		k = strings.TrimSuffix(k, "[]")
		named[k] = append(named[k], v)
	}
	return arg, named
}

// parseParams reads a request body (which may be empty) and merges named
// parameters into it. A body that is not a JSON object is an error that
// names the body.
func parseParams(body []byte, named map[string][]string) (params, error) {
	p := params{}
	body = bytes.TrimSpace(body)
	if len(body) > 0 {
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("body: not a JSON object of filters: %w", err)
		}
		if inner, ok := p["request"]; ok && len(p) == 1 {
			q := params{}
			if err := json.Unmarshal(inner, &q); err != nil {
				return nil, fmt.Errorf("body: request: not a JSON object of filters: %w", err)
			}
			p = q
		}
	}
	for k, vs := range named {
		if len(vs) == 1 {
			p[k], _ = json.Marshal(vs[0])
		} else {
			p[k], _ = json.Marshal(vs)
		}
	}
	return p, nil
}

// has reports whether key is present with a non-null value.
func (p params) has(key string) bool {
	raw, ok := p[key]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// strings returns the values of key: a list, a single string or number,
// or "a|b" (MISP's shorthand for a list in named parameters and bodies).
func (p params) strings(key string) ([]string, error) {
	raw, ok := p[key]
	if !ok {
		return nil, nil
	}
	vals, err := flatStrings(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	var out []string
	for _, v := range vals {
		for _, part := range strings.Split(v, "|") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out, nil
}

// flatStrings accepts a string, a number, a boolean or a list of these.
func flatStrings(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		var out []string
		for _, it := range items {
			s, err := scalar(it)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(raw)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func scalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return "", nil
	case raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case bytes.Equal(raw, []byte("true")):
		return "1", nil
	case bytes.Equal(raw, []byte("false")):
		return "0", nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		var n json.Number
		err := json.Unmarshal(raw, &n)
		return n.String(), err
	}
	return "", fmt.Errorf("expected a string, number or list, got %.20s", raw)
}

// bool reads a MISP flag: true/false, 1/0, "1"/"0", "true"/"false".
// present is false when the key is absent or null.
func (p params) bool(key string) (value, present bool, err error) {
	if !p.has(key) {
		return false, false, nil
	}
	s, err := scalar(p[key])
	if err != nil {
		return false, true, fmt.Errorf("%s: %w", key, err)
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, true, nil
	case "0", "false", "no", "off", "":
		return false, true, nil
	}
	return false, true, fmt.Errorf("%s: %q is not a boolean (use 0 or 1)", key, s)
}

// flags reads a MISP boolean filter that may name both values: 0, 1, or
// [0, 1] (PyMISP sends lists for published and deleted). It reports which
// values were asked for.
func (p params) flags(key string) (zero, one, present bool, err error) {
	if !p.has(key) {
		return false, false, false, nil
	}
	raw := bytes.TrimSpace(p[key])
	items := []json.RawMessage{raw}
	if len(raw) > 0 && raw[0] == '[' {
		// A fresh slice: unmarshalling into items would write over raw,
		// which is the caller's parameter.
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return false, false, true, fmt.Errorf("%s: not a list of 0 and 1", key)
		}
		items = list
	}
	for _, it := range items {
		v, _, err := params{key: it}.bool(key)
		if err != nil {
			return false, false, true, err
		}
		zero, one = zero || !v, one || v
	}
	return zero, one, true, nil
}

// int reads a non-negative integer; 0 when absent.
func (p params) int(key string) (int, error) {
	if !p.has(key) {
		return 0, nil
	}
	s, err := scalar(p[key])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative integer", key, s)
	}
	return n, nil
}

// timeRange is an inclusive window of Unix seconds; zero bounds are open.
type timeRange struct{ from, to int64 }

func (r timeRange) open() bool { return r.from == 0 && r.to == 0 }

func (r timeRange) contains(ts int64) bool {
	return (r.from == 0 || ts >= r.from) && (r.to == 0 || ts <= r.to)
}

// timeRange reads a MISP time filter: an epoch ("1700000000"), a relative
// window ("5d", "12h", "30m", "90s", "2w": that long before now), or a
// [from, to] pair of either. A single value is a lower bound.
func (p params) timeRange(key string, now time.Time) (timeRange, error) {
	if !p.has(key) {
		return timeRange{}, nil
	}
	vals, err := flatStrings(p[key])
	if err != nil {
		return timeRange{}, fmt.Errorf("%s: %w", key, err)
	}
	if len(vals) == 1 && strings.Contains(vals[0], "|") {
		vals = strings.SplitN(vals[0], "|", 2)
	}
	var r timeRange
	for i, v := range vals {
		if i > 1 {
			return timeRange{}, fmt.Errorf("%s: at most two values (from, to)", key)
		}
		t, err := parseTime(v, now)
		if err != nil {
			return timeRange{}, fmt.Errorf("%s: %w", key, err)
		}
		if i == 0 {
			r.from = t
		} else {
			r.to = t
		}
	}
	return r, nil
}

// parseTime reads an epoch, a relative window or a YYYY-MM-DD date.
func parseTime(v string, now time.Time) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "0" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", v)
		}
		return n, nil
	}
	if d, ok := relative(v); ok {
		return now.Add(-d).Unix(), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t.Unix(), nil
	}
	return 0, fmt.Errorf("%q is not an epoch, a date or a window such as 5d, 12h, 30m", v)
}

// relative reads MISP's time deltas: a number and one of s, m, h, d, w.
func relative(v string) (time.Duration, bool) {
	if len(v) < 2 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, false
	}
	if n > int64(math.MaxInt64/unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// tagFilter is MISP's tag condition: any of OR, all of AND, none of NOT.
// Names match case-insensitively; "%" is a wildcard.
type tagFilter struct{ or, and, not []string }

func (f tagFilter) empty() bool { return len(f.or) == 0 && len(f.and) == 0 && len(f.not) == 0 }

// tagFilter reads a list with "!" for NOT, "a|b", or {"OR":[],"AND":[],"NOT":[]}.
func (p params) tagFilter(keys ...string) (tagFilter, error) {
	var f tagFilter
	for _, key := range keys {
		raw, ok := p[key]
		if !ok {
			continue
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '{' {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				return f, fmt.Errorf("%s: %w", key, err)
			}
			for k, v := range obj {
				vals, err := flatStrings(v)
				if err != nil {
					return f, fmt.Errorf("%s.%s: %w", key, k, err)
				}
				switch strings.ToUpper(k) {
				case "OR":
					f.or = append(f.or, vals...)
				case "AND":
					f.and = append(f.and, vals...)
				case "NOT":
					f.not = append(f.not, vals...)
				default:
					return f, fmt.Errorf("%s: unknown operator %q (use OR, AND, NOT)", key, k)
				}
			}
			continue
		}
		vals, err := p.strings(key)
		if err != nil {
			return f, err
		}
		for _, v := range vals {
			if neg, ok := strings.CutPrefix(v, "!"); ok {
				f.not = append(f.not, neg)
			} else {
				f.or = append(f.or, v)
			}
		}
	}
	return f, nil
}

// match reports whether a set of tag names satisfies the filter.
func (f tagFilter) match(names []string) bool {
	has := func(pattern string) bool {
		for _, n := range names {
			if like(pattern, n) {
				return true
			}
		}
		return false
	}
	for _, t := range f.not {
		if has(t) {
			return false
		}
	}
	for _, t := range f.and {
		if !has(t) {
			return false
		}
	}
	if len(f.or) == 0 {
		return true
	}
	for _, t := range f.or {
		if has(t) {
			return true
		}
	}
	return false
}

// valueFilter matches values with "!" negation and "%" wildcards: any of
// in, all of and, none of out.
type valueFilter struct{ in, and, out []string }

// valueFilter reads a list with "!" for NOT, "a|b", or MISP's operator
// object {"OR":[],"AND":[],"NOT":[]}.
func (p params) valueFilter(key string) (valueFilter, error) {
	raw := bytes.TrimSpace(p[key])
	if len(raw) == 0 || raw[0] != '{' {
		vals, err := p.strings(key)
		return newValueFilter(vals), err
	}
	t, err := p.tagFilter(key)
	return valueFilter{in: t.or, and: t.and, out: t.not}, err
}

// add merges g into f (several keys naming one filter).
func (f *valueFilter) add(g valueFilter) {
	f.in = append(f.in, g.in...)
	f.and = append(f.and, g.and...)
	f.out = append(f.out, g.out...)
}

// contains makes every pattern a substring match, as MISP's index
// matches eventinfo and attribute.
func (f valueFilter) contains() valueFilter {
	wrap := func(vs []string) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = "%" + v + "%"
		}
		return out
	}
	return valueFilter{in: wrap(f.in), and: wrap(f.and), out: wrap(f.out)}
}

func newValueFilter(vals []string) valueFilter {
	var f valueFilter
	for _, v := range vals {
		if neg, ok := strings.CutPrefix(v, "!"); ok {
			f.out = append(f.out, neg)
		} else {
			f.in = append(f.in, v)
		}
	}
	return f
}

func (f valueFilter) empty() bool { return len(f.in) == 0 && len(f.and) == 0 && len(f.out) == 0 }

func (f valueFilter) match(vals ...string) bool {
	for _, o := range f.out {
		for _, v := range vals {
			if like(o, v) {
				return false
			}
		}
	}
	for _, a := range f.and {
		hit := false
		for _, v := range vals {
			if like(a, v) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if len(f.in) == 0 {
		return true
	}
	for _, i := range f.in {
		for _, v := range vals {
			if like(i, v) {
				return true
			}
		}
	}
	return false
}

// like is SQL LIKE with "%" (any run) as MISP uses it, case-insensitive.
func like(pattern, s string) bool {
	if !strings.Contains(pattern, "%") {
		return strings.EqualFold(pattern, s)
	}
	p, v := strings.ToLower(pattern), strings.ToLower(s)
	parts := strings.Split(p, "%")
	if !strings.HasPrefix(v, parts[0]) {
		return false
	}
	v = v[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(v, mid)
		if i < 0 {
			return false
		}
		v = v[i+len(mid):]
	}
	return strings.HasSuffix(v, last)
}
