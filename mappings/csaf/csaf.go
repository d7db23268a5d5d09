// Package csaf maps CSAF advisories (OASIS CSAF 2.0, and the TLP labels and
// metrics of CSAF 2.1) to canonical advisory events. It is a pure
// translation: no I/O.
//
// One document becomes one event of kind advisory:
//
//   - title: /document/title; description: the document notes of category
//     summary, description and general, in document order and in the
//     document's own language (never translated);
//   - source: format "csaf", ref = /document/tracking/id (stable across
//     revisions, so a new revision is an update of the same event), org =
//     /document/publisher/name; created and modified are the tracking's
//     initial and current release dates;
//   - labels: "csaf:version=<tracking.version>", "csaf:category=…",
//     "csaf:status=…", "csaf:lang=…", "csaf:severity=<aggregate_severity>"
//     and "tlp:white" when the label was WHITE;
//   - tlp: see tlp.go; assessment and priority: see assessment.go;
//   - vulnerabilities: one per CVE with the highest CVSS base score and the
//     names of the affected products (see vulnerabilities.go);
//   - remediations, references, CWE labels ("cwe:CWE-787") and the threats
//     appended to the description: see advice.go.
package csaf

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	csafschema "github.com/schakel/schakel/schemas/csaf"
)

// Format is the value of Source.Format for events from this mapping.
const Format = "csaf"

// MaxBranchDepth bounds the nesting of /product_tree/branches that is
// walked; deeper branches are reported and not read. Real product trees use
// a handful of levels (vendor, product family, product name, version).
const MaxBranchDepth = 32

// ErrNotCSAF is returned when the input is JSON but has no /document object.
var ErrNotCSAF = errors.New("not a CSAF document: /document is missing or not an object")

// Decode maps one CSAF document to one advisory event. Schema violations
// (CSAF 2.0 and 2.1) and problems the schema does not catch (undefined product ids,
// unknown Kans/Schade values, conflicting TLP labels) are returned as
// FieldErrors with the JSON pointer into the document while everything
// readable is still mapped. err is set only when the input is not JSON or
// has no /document object; then there are no events.
func Decode(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	root, err := parse(data)
	if err != nil {
		return nil, nil, err
	}
	schemaErrs := validate(root)
	m := &mapper{}
	ev := m.event(root)
	return []*gateway.Event{ev}, merge(schemaErrs, m.errs), nil
}

// Valid checks data against the vendored CSAF schema of its
// /document/csaf_version (2.0 or 2.1) and returns every violation, sorted
// by pointer; nil when the document is valid. It is the strict path: a
// source that rejects invalid advisories uses it.
func Valid(data []byte) []gateway.FieldError {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return []gateway.FieldError{{Message: "invalid JSON: " + err.Error()}}
	}
	return validate(v)
}

func parse(data []byte) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("csaf: invalid JSON: %w", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, ErrNotCSAF
	}
	if _, ok := root["document"].(map[string]any); !ok {
		return nil, ErrNotCSAF
	}
	return root, nil
}

// validate checks v against the schema of its /document/csaf_version
// (CSAF 2.1, else 2.0).
func validate(v any) []gateway.FieldError {
	errs := csafschema.ValidateValue(v)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// merge returns the schema errors plus the mapping's own, sorted by
// pointer. A mapping error at a pointer the schema already reported says
// the same thing in other words and is dropped.
func merge(schemaErrs, own []gateway.FieldError) []gateway.FieldError {
	seen := make(map[string]bool, len(schemaErrs))
	for _, e := range schemaErrs {
		seen[e.Field] = true
	}
	out := slices.Clone(schemaErrs)
	for _, e := range own {
		if !seen[e.Field] {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b gateway.FieldError) int {
		return csafschema.ComparePointers(a.Field, b.Field)
	})
	return slices.Compact(out)
}

// mapper collects the mapping's own problems.
type mapper struct {
	errs []gateway.FieldError
}

func (m *mapper) add(field, format string, args ...any) {
	m.errs = append(m.errs, gateway.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (m *mapper) event(root map[string]any) *gateway.Event {
	doc := obj(root, "document")
	tracking := obj(doc, "tracking")
	ev := &gateway.Event{
		Kind: gateway.KindAdvisory,
		Source: gateway.SourceRef{
			Format: Format,
			Ref:    strings.TrimSpace(str(tracking, "id")),
			Org:    strings.TrimSpace(str(obj(doc, "publisher"), "name")),
		},
	}
	ev.Title = strings.TrimSpace(str(doc, "title"))
	if ev.Title == "" {
		ev.Title = ev.Source.Ref
	}
	if ev.Title == "" {
		ev.Title = "CSAF advisory"
	}
	ev.Created = m.time(tracking, "initial_release_date", "/document/tracking/initial_release_date")
	ev.Modified = m.time(tracking, "current_release_date", "/document/tracking/current_release_date")

	for _, l := range [][2]string{
		{"csaf:version=", str(tracking, "version")},
		{"csaf:category=", str(doc, "category")},
		{"csaf:status=", str(tracking, "status")},
		{"csaf:lang=", str(doc, "lang")},
		{"csaf:severity=", str(obj(doc, "aggregate_severity"), "text")},
	} {
		if v := strings.TrimSpace(l[1]); v != "" {
			ev.Labels = append(ev.Labels, l[0]+v)
		}
	}

	var white bool
	ev.TLP, white = m.tlp(doc)
	if white {
		ev.Labels = append(ev.Labels, normalize.LabelTLPWhite)
	}

	consumed := m.assess(doc, ev)
	ev.Description = description(arr(doc, "notes"), consumed)
	var names map[string]string
	if len(arr(root, "vulnerabilities")) > 0 {
		names = m.products(obj(root, "product_tree"))
	}
	ev.Vulnerabilities = m.vulnerabilities(root, names)
	m.advice(root, ev, names)
	return ev
}

// time reads a tolerant RFC 3339 date; problems are reported and leave the
// zero time (the pipeline then uses the receive time).
func (m *mapper) time(o map[string]any, key, ptr string) time.Time {
	s := strings.TrimSpace(str(o, key))
	if s == "" {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		m.add(ptr, "date %q is not an RFC 3339 date-time", s)
		return time.Time{}
	}
	return t
}

// parseTime accepts RFC 3339 with or without fractional seconds, a lower-case
// "t"/"z", a space instead of "T", and "+0000"-style offsets: providers'
// timestamps vary (NCSC's once broke a strict parser).
func parseTime(s string) (time.Time, error) {
	s = strings.ToUpper(s)
	layouts := []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"}
	var first error
	for _, l := range layouts {
		t, err := time.Parse(l, s)
		if err == nil {
			return t.UTC(), nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, first
}

// description joins the summary, description and general notes in document
// order, each under its title, leaving out notes read as the assessment.
func description(notes []any, consumed map[int]bool) string {
	var b strings.Builder
	for i, n := range notes {
		note, ok := n.(map[string]any)
		if !ok || consumed[i] {
			continue
		}
		switch str(note, "category") {
		case "summary", "description", "general":
		default:
			continue
		}
		text := strings.TrimSpace(str(note, "text"))
		if text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		if title := strings.TrimSpace(str(note, "title")); title != "" {
			b.WriteString(title)
			b.WriteString("\n")
		}
		b.WriteString(text)
	}
	return b.String()
}

// Accessors for decoded JSON: a value of the wrong type reads as absent
// (the schema check reports it).

func obj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func arr(m map[string]any, key string) []any {
	v, _ := m[key].([]any)
	return v
}

func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

// FileName returns the file name CSAF §5.1 prescribes for a tracking id:
// lower-cased, every run of characters outside [+\-a-z0-9] replaced by one
// "_", and ".json" appended ("2022_#01-A" → "2022_01-a.json"). The
// downloader compares it with the name an advisory was served under.
func FileName(trackingID string) string {
	s := strings.ToLower(trackingID)
	var b strings.Builder
	b.Grow(len(s) + len(".json"))
	run := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-' {
			b.WriteByte(c)
			run = false
			continue
		}
		if !run {
			b.WriteByte('_')
			run = true
		}
	}
	b.WriteString(".json")
	return b.String()
}
