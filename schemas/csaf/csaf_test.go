package csaf_test

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/schemas/csaf"
)

func readDoc(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// edit sets (or, for a nil value with del, removes) the value at a JSON
// pointer whose parents exist.
func edit(t testing.TB, doc any, ptr string, val any, del bool) {
	t.Helper()
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	cur := doc
	for i, tok := range toks {
		last := i == len(toks)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if del {
					delete(c, tok)
				} else {
					c[tok] = val
				}
				return
			}
			cur = c[tok]
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || n >= len(c) {
				t.Fatalf("bad pointer %s", ptr)
			}
			if last {
				c[n] = val
				return
			}
			cur = c[n]
		default:
			t.Fatalf("bad pointer %s", ptr)
		}
	}
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestValidate(t *testing.T) {
	type change struct {
		ptr string
		val any
		del bool
	}
	cvss2 := map[string]any{"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "baseScore": 7.5}
	cvss30 := map[string]any{"version": "3.0", "vectorString": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": 9.8, "baseSeverity": "CRITICAL"}
	tests := []struct {
		name    string
		doc     string
		changes []change
		want    []gateway.FieldError
	}{
		{name: "synthetic NCSC advisory is valid", doc: "ncsc-2026-0389.json"},
		{name: "CISA VEX advisory is valid", doc: "cisa_va-24-262-01.json"},
		{
			name:    "CVSS v2 score is resolved and accepted",
			doc:     "ncsc-2026-0389.json",
			changes: []change{{ptr: "/vulnerabilities/0/scores/0/cvss_v2", val: cvss2}},
		},
		{
			name:    "CVSS v3.0 alternative is accepted",
			doc:     "ncsc-2026-0389.json",
			changes: []change{{ptr: "/vulnerabilities/0/scores/0/cvss_v3", val: cvss30}},
		},
		{
			name:    "unknown TLP label",
			doc:     "ncsc-2026-0389.json",
			changes: []change{{ptr: "/document/distribution/tlp/label", val: "AMBER+STRICT"}},
			want:    []gateway.FieldError{{Field: "/document/distribution/tlp/label", Message: `value must be one of "AMBER", "GREEN", "RED", "WHITE"`}},
		},
		{
			name:    "missing title and tracking id",
			doc:     "ncsc-2026-0389.json",
			changes: []change{{ptr: "/document/title", del: true}, {ptr: "/document/tracking/id", del: true}},
			want: []gateway.FieldError{
				{Field: "/document/title", Message: `missing property "title"`},
				{Field: "/document/tracking/id", Message: `missing property "id"`},
			},
		},
		{
			name:    "CVSS v3.1 base score out of range reports only the 3.1 problem",
			doc:     "ncsc-2026-0389.json",
			changes: []change{{ptr: "/vulnerabilities/0/scores/0/cvss_v3/baseScore", val: 11.0}},
			want:    []gateway.FieldError{{Field: "/vulnerabilities/0/scores/0/cvss_v3/baseScore", Message: "must be <= 10 but found 11"}},
		},
		{
			name: "CVSS v2 vector is checked by the FIRST schema",
			doc:  "ncsc-2026-0389.json",
			changes: []change{{ptr: "/vulnerabilities/0/scores/0/cvss_v2", val: map[string]any{
				"version": "2.0", "vectorString": "AV:X", "baseScore": 7.5,
			}}},
			want: []gateway.FieldError{{Field: "/vulnerabilities/0/scores/0/cvss_v2/vectorString", Message: "does not match the pattern the schema requires for this field"}},
		},
		{
			name: "bad date-time, empty title and bad CVE",
			doc:  "ncsc-2026-0389.json",
			changes: []change{
				{ptr: "/document/tracking/current_release_date", val: "2026-11-21 10:00"},
				{ptr: "/document/title", val: ""},
				{ptr: "/vulnerabilities/1/cve", val: "CVE-26-1"},
			},
			want: []gateway.FieldError{
				{Field: "/document/title", Message: "must not be empty"},
				{Field: "/document/tracking/current_release_date", Message: `must be an RFC 3339 date-time such as "2026-11-20T09:14:33Z"`},
				{Field: "/vulnerabilities/1/cve", Message: `does not match pattern '^CVE-[0-9]{4}-[0-9]{4,}$'`},
			},
		},
		{
			name:    "wrong type",
			doc:     "ncsc-2026-0389.json",
			changes: []change{{ptr: "/document/notes", val: "text"}},
			want:    []gateway.FieldError{{Field: "/document/notes", Message: "expected array, got string"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := readDoc(t, tt.doc)
			for _, c := range tt.changes {
				edit(t, doc, c.ptr, c.val, c.del)
			}
			got := csaf.Validate(marshal(t, doc))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateSortsArrayIndexesNumerically(t *testing.T) {
	doc := readDoc(t, "ncsc-2026-0389.json")
	v0 := doc["vulnerabilities"].([]any)[1]
	var vulns []any
	for range 11 {
		vulns = append(vulns, clone(t, v0))
	}
	doc["vulnerabilities"] = vulns
	edit(t, doc, "/vulnerabilities/10/cve", "bad", false)
	edit(t, doc, "/vulnerabilities/2/cve", "bad", false)
	got := csaf.Validate(marshal(t, doc))
	var ptrs []string
	for _, e := range got {
		ptrs = append(ptrs, e.Field)
	}
	want := []string{"/vulnerabilities/2/cve", "/vulnerabilities/10/cve"}
	if !slices.Equal(ptrs, want) {
		t.Errorf("pointers %q, want %q", ptrs, want)
	}
}

func clone(t testing.TB, v any) any {
	var c any
	if err := json.Unmarshal(marshal(t, v), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidateNotJSON(t *testing.T) {
	for _, in := range []string{"", "{", "[1,2", "\xff", `{"document": }`} {
		got := csaf.Validate([]byte(in))
		if len(got) != 1 || got[0].Field != "" || !strings.HasPrefix(got[0].Message, "invalid JSON") {
			t.Errorf("Validate(%q) = %q, want one invalid-JSON error at the root", in, got)
		}
	}
}

func TestValidateNotAnObject(t *testing.T) {
	got := csaf.Validate([]byte(`[]`))
	want := []gateway.FieldError{{Field: "", Message: "expected object, got array"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRaw(t *testing.T) {
	for _, u := range []string{csaf.SchemaURL, "https://www.first.org/cvss/cvss-v2.0.json", "https://www.first.org/cvss/cvss-v3.0.json", "https://www.first.org/cvss/cvss-v3.1.json"} {
		data := csaf.Raw(u)
		if !json.Valid(data) {
			t.Errorf("Raw(%s) is not a JSON document", u)
		}
	}
	if csaf.Raw("https://example.org/schema.json") != nil {
		t.Error("Raw returned a document for an unknown URL")
	}
	// A caller writing to its copy must not change the next caller's.
	data := csaf.Raw(csaf.SchemaURL)
	clear(data)
	if !json.Valid(csaf.Raw(csaf.SchemaURL)) {
		t.Error("Raw hands out shared bytes")
	}
}

func TestErrorString(t *testing.T) {
	if got := (gateway.FieldError{Field: "/document/title", Message: "must not be empty"}).Error(); got != "/document/title: must not be empty" {
		t.Errorf("got %q", got)
	}
	if got := (gateway.FieldError{Message: "invalid JSON"}).Error(); got != "invalid JSON" {
		t.Errorf("got %q", got)
	}
}

func BenchmarkValidate(b *testing.B) {
	data := marshal(b, readDoc(b, "ncsc-2026-0389.json"))
	b.ReportAllocs()
	for b.Loop() {
		if errs := csaf.Validate(data); errs != nil {
			b.Fatal(errs)
		}
	}
}

func TestValidateEmptyCollections(t *testing.T) {
	doc := readDoc(t, "ncsc-2026-0389.json")
	edit(t, doc, "/document/distribution", map[string]any{}, false)
	edit(t, doc, "/vulnerabilities/0/product_status/known_affected", []any{}, false)
	got := csaf.Validate(marshal(t, doc))
	want := []gateway.FieldError{
		{Field: "/document/distribution", Message: "must have at least 1 property"},
		{Field: "/vulnerabilities/0/product_status/known_affected", Message: "must have at least 1 item"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A CSAF 2.1 document is checked against the 2.1 schema, chosen by
// /document/csaf_version: the OASIS 2.1 example passes, and the same
// document with a 2.0-only property fails there.
func TestValidateCSAF21(t *testing.T) {
	data, err := os.ReadFile("testdata/csaf21-bsi-2022-0001.json")
	if err != nil {
		t.Fatal(err)
	}
	if errs := csaf.Validate(data); errs != nil {
		t.Fatalf("OASIS 2.1 example: %v", errs)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "$schema") // required in 2.1, unknown in 2.0
	errs := csaf.ValidateValue(doc)
	if len(errs) != 1 || errs[0].Field != "/$schema" {
		t.Errorf("2.1 document without $schema: %v, want one error at /$schema", errs)
	}
}
