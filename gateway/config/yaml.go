package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/schakel/schakel/schemas"
)

// Error is one problem in a configuration or constituents file. It names
// where the problem is: the YAML path and line, the CSV line and column, or
// the environment variable a value came from. It never holds a secret.
type Error struct {
	Path    string // "sources[1].type"; "" for the whole document or row
	Line    int    // 1-based; 0 when unknown
	Column  int    // 1-based; CSV only
	ID      string // the constituent the problem belongs to, when known
	Env     string // the environment variable that supplied the value
	Message string
	Err     error // the underlying error, for errors.Is
}

func (e *Error) Error() string {
	var where []string
	if e.Line > 0 {
		where = append(where, "line "+strconv.Itoa(e.Line))
	}
	if e.Column > 0 {
		where = append(where, "column "+strconv.Itoa(e.Column))
	}
	if e.ID != "" {
		where = append(where, "id "+strconv.Quote(e.ID))
	}
	if e.Env != "" {
		where = append(where, "from "+e.Env)
	}
	var b strings.Builder
	b.WriteString(e.Path)
	if len(where) > 0 {
		if b.Len() > 0 {
			b.WriteString(" (" + strings.Join(where, ", ") + ")")
		} else {
			b.WriteString(strings.Join(where, ", "))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// maxAliasValues bounds how many values alias expansion may produce, so a
// "billion laughs" document cannot exhaust memory.
const maxAliasValues = 1_000_000

// parseYAML reads exactly one YAML document.
func parseYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Message: "document is empty"}
		}
		return nil, yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(err)
	default:
		return nil, &Error{Line: next.Line, Message: "more than one YAML document; put everything in one"}
	}
	return &root, nil
}

// yamlParserErrors are the problems yaml.v3 reports from its parser, not
// its scanner. For those it gives the 0-based line of the enclosing
// construct, so one is added to report the line a person sees.
var yamlParserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"found incompatible YAML document":       true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
}

// yamlError turns "yaml: line 3: did not find expected key" into an Error
// with that line.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Message: "invalid YAML: " + msg, Err: err}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				if yamlParserErrors[tail] {
					line++
				}
				e.Line, e.Message = line, "invalid YAML: "+tail
			}
		}
	} else if yamlParserErrors[msg] {
		// yaml.v3 leaves out line 0, which is the first line.
		e.Line = 1
	}
	return e
}

// converter turns a YAML node tree into the values encoding/json would
// produce (map[string]any, []any, json.Number, string, bool, nil), so the
// JSON Schema applies to YAML exactly as to JSON.
type converter struct {
	aliased int // values produced by alias expansion
	depth   int
	stopped bool // a limit was hit and reported
	errs    []error
}

// maxDepth bounds nesting, which also stops an alias that contains itself.
const maxDepth = 200

func (c *converter) value(n *yaml.Node, inAlias bool) any {
	c.depth++
	defer func() { c.depth-- }()
	if c.stopped {
		return nil
	}
	if c.depth > maxDepth {
		c.stop(&Error{Line: n.Line, Message: fmt.Sprintf("nested more than %d levels deep", maxDepth)})
		return nil
	}
	if inAlias {
		if c.aliased++; c.aliased > maxAliasValues {
			c.stop(&Error{Line: n.Line, Message: fmt.Sprintf("aliases expand to more than %d values", maxAliasValues)})
			return nil
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return c.value(n.Content[0], inAlias)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil
		}
		return c.value(n.Alias, true)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			out = append(out, c.value(e, inAlias))
		}
		return out
	case yaml.MappingNode:
		return c.mapping(n, inAlias)
	case yaml.ScalarNode:
		return c.scalar(n)
	}
	return nil
}

func (c *converter) stop(err error) {
	c.stopped = true
	c.errs = append(c.errs, err)
}

func (c *converter) mapping(n *yaml.Node, inAlias bool) map[string]any {
	out := make(map[string]any, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			c.errs = append(c.errs, &Error{Line: k.Line, Message: "mapping keys must be plain strings"})
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if !inAlias {
				c.errs = append(c.errs, &Error{Line: k.Line, Message: fmt.Sprintf("key %q is repeated; first set on line %d", k.Value, first)})
			}
			continue
		}
		seen[k.Value] = k.Line
		out[k.Value] = c.value(v, inAlias)
	}
	// Merged keys (<<: *defaults) never override keys set explicitly.
	for _, m := range merges {
		for _, src := range mergeSources(m) {
			sub, ok := c.value(src, true).(map[string]any)
			if !ok {
				c.errs = append(c.errs, &Error{Line: m.Line, Message: "a merge key (<<) must refer to mappings"})
				continue
			}
			for k, v := range sub {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
	return out
}

func mergeSources(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return []*yaml.Node{n}
}

func (c *converter) scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			// Integral floats (600.0, 1e3) become integers so that they
			// decode into int fields the schema already accepted.
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return json.Number(strconv.FormatInt(int64(f), 10))
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case "!!str", "!!timestamp", "!!binary":
		return n.Value
	default:
		c.errs = append(c.errs, &Error{Line: n.Line, Message: fmt.Sprintf("unsupported YAML tag %q", n.Tag)})
		return nil
	}
	// A value YAML tagged but cannot represent as JSON (.inf, .nan, an
	// integer beyond 64 bits) stays text; the schema then names the field.
	return n.Value
}

// toValue converts a parsed YAML document; conversion problems are
// returned with their lines. fatal reports that a limit was hit and the
// value is incomplete; otherwise it is still worth validating, so that
// every problem is reported at once.
func toValue(root *yaml.Node) (v any, errs []error, fatal bool) {
	c := &converter{}
	v = c.value(root, false)
	return v, c.errs, c.stopped
}

// locate returns the line of the node a JSON pointer names in a YAML
// document: the key's line for a mapping member, the item's line for a
// sequence element. For a member that does not exist (a missing required
// property) it returns the line of the closest existing parent.
func locate(root *yaml.Node, ptr string) int {
	n := root
	line := 0
	if n != nil {
		line = n.Line
	}
	for _, tok := range schemas.Tokens(ptr) {
		n = deref(n)
		if n == nil {
			break
		}
		line = n.Line
		var next *yaml.Node
		var keyLine int
		switch n.Kind {
		case yaml.MappingNode:
			next, keyLine = member(n, tok, 0)
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				keyLine = next.Line
			}
		}
		if next == nil {
			return line
		}
		n, line = next, keyLine
	}
	return line
}

// deref steps through document and alias nodes.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// member finds key in a mapping, including keys merged in with <<.
func member(m *yaml.Node, key string, depth int) (*yaml.Node, int) {
	if depth > 20 {
		return nil, 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key && k.ShortTag() != "!!merge" {
			return m.Content[i+1], k.Line
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].ShortTag() != "!!merge" {
			continue
		}
		for _, src := range mergeSources(m.Content[i+1]) {
			if src = deref(src); src != nil && src.Kind == yaml.MappingNode {
				if v, line := member(src, key, depth+1); v != nil {
					return v, line
				}
			}
		}
	}
	return nil, 0
}

// displayPath renders a JSON pointer the way people write YAML paths:
// "/sources/1/type" → "sources[1].type". Indexes are recognised by the
// document's shape. base prefixes the result ("constituents[2]").
func displayPath(doc any, ptr, base string) string {
	var b strings.Builder
	b.WriteString(base)
	v := doc
	for _, tok := range schemas.Tokens(ptr) {
		switch c := v.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				v = c[i]
			} else {
				v = nil
			}
			continue
		case map[string]any:
			v = c[tok]
		default:
			v = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if plainKey(tok) {
			b.WriteString(tok)
		} else {
			b.WriteString(strconv.Quote(tok))
		}
	}
	return b.String()
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
