package csaf_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/mappings/csaf"
)

// doc builds a small CSAF document; the maps given replace or add document
// members and top-level members ("product_tree", "vulnerabilities").
func doc(t testing.TB, document map[string]any, top map[string]any) []byte {
	t.Helper()
	d := map[string]any{
		"category":     "csaf_base",
		"csaf_version": "2.0",
		"publisher":    map[string]any{"category": "coordinator", "name": "Test CERT", "namespace": "https://cert.example"},
		"title":        "Test advisory",
		"tracking": map[string]any{
			"current_release_date": "2026-01-02T00:00:00Z",
			"id":                   "TEST-1",
			"initial_release_date": "2026-01-01T00:00:00Z",
			"revision_history":     []any{map[string]any{"date": "2026-01-01T00:00:00Z", "number": "1", "summary": "s"}},
			"status":               "final",
			"version":              "1",
		},
	}
	for k, v := range document {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	root := map[string]any{"document": d}
	if d["csaf_version"] == "2.1" {
		// Required in CSAF 2.1.
		root["$schema"] = "https://docs.oasis-open.org/csaf/csaf/v2.1/schema/csaf.json"
		if _, ok := d["distribution"]; !ok {
			d["distribution"] = map[string]any{"tlp": map[string]any{"label": "CLEAR"}}
		}
	}
	for k, v := range top {
		root[k] = v
	}
	data, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func decodeOne(t testing.TB, data []byte) (*gateway.Event, []gateway.FieldError) {
	t.Helper()
	evs, errs, err := csaf.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("Decode returned %d events, want 1", len(evs))
	}
	return evs[0], errs
}

func fields(errs []gateway.FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

// The synthetic NCSC advisory (Kans high, Schade high) must reach the
// pipeline as a critical advisory with both CVEs: it is the acceptance
// case for the priority path.
func TestNCSCAdvisoryIsCritical(t *testing.T) {
	data, err := os.ReadFile("testdata/golden/ncsc-2026-0389.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, errs := decodeOne(t, data)
	if errs != nil {
		t.Errorf("unexpected problems: %v", errs)
	}
	if nerrs := normalize.Event(ev); nerrs != nil {
		t.Fatalf("normalize.Event: %v", nerrs)
	}
	if ev.Priority != gateway.PriorityCritical {
		t.Errorf("priority %q, want critical", ev.Priority)
	}
	if ev.Assessment == nil || ev.Assessment.Probability != "high" || ev.Assessment.Impact != "high" {
		t.Errorf("assessment %+v, want high/high", ev.Assessment)
	}
	var cves []string
	for _, v := range ev.Vulnerabilities {
		cves = append(cves, v.CVE)
	}
	if want := []string{"CVE-2026-12345", "CVE-2026-12346"}; !slices.Equal(cves, want) {
		t.Errorf("CVEs %q, want %q", cves, want)
	}
	if ev.Kind != gateway.KindAdvisory || ev.TLP != gateway.TLPClear || ev.Source.Ref != "NCSC-2026-0389" || ev.Source.Format != "csaf" {
		t.Errorf("kind %q tlp %q source %+v", ev.Kind, ev.TLP, ev.Source)
	}
}

func TestTLP(t *testing.T) {
	dist := func(label, text string) map[string]any {
		d := map[string]any{}
		if label != "" {
			d["tlp"] = map[string]any{"label": label}
		}
		if text != "" {
			d["text"] = text
		}
		return d
	}
	tests := []struct {
		name        string
		version     string
		label, text string
		want        gateway.TLP
		white       bool
		errs        []string
	}{
		{name: "WHITE is CLEAR and keeps its label", version: "2.0", label: "WHITE", want: gateway.TLPClear, white: true},
		{name: "GREEN", version: "2.0", label: "GREEN", want: gateway.TLPGreen},
		{name: "no label leaves the source default", version: "2.0"},
		{name: "RED refined to AMBER+STRICT by the text", version: "2.0", label: "RED", text: "TLP v2.0: TLP:AMBER+STRICT", want: gateway.TLPAmberStrict},
		{name: "AMBER refined to AMBER+STRICT", version: "2.0", label: "AMBER", text: "Distribute to the organisation only.\nTLP v2.0: TLP:AMBER+STRICT", want: gateway.TLPAmberStrict},
		{name: "WHITE restated as CLEAR", version: "2.0", label: "WHITE", text: "TLP v2.0: TLP:CLEAR", want: gateway.TLPClear, white: true},
		{name: "text written loosely", version: "2.0", label: "RED", text: "tlp v2.0 : tlp: amber + strict", want: gateway.TLPAmberStrict},
		{name: "text looser than RED is a conflict: stricter wins", version: "2.0", label: "RED", text: "TLP v2.0: TLP:CLEAR", want: gateway.TLPRed, errs: []string{"/document/distribution/text"}},
		{name: "text stricter than the label wins", version: "2.0", label: "GREEN", text: "TLP v2.0: TLP:AMBER", want: gateway.TLPAmber},
		{name: "a TLP 1.0 mention in the text is not a TLP 2.0 label", version: "2.0", label: "RED", text: "TLP:AMBER+STRICT", want: gateway.TLPRed},
		{name: "text alone", version: "2.0", text: "TLP v2.0: TLP:GREEN", want: gateway.TLPGreen},
		{name: "CSAF 2.1 CLEAR", version: "2.1", label: "CLEAR", want: gateway.TLPClear, errs: nil},
		{name: "CSAF 2.1 AMBER+STRICT", version: "2.1", label: "AMBER+STRICT", want: gateway.TLPAmberStrict, errs: nil},
		{name: "CSAF 2.1 labels are TLP 2.0 already: no refinement", version: "2.1", label: "RED", text: "TLP v2.0: TLP:AMBER+STRICT", want: gateway.TLPRed, errs: []string{"/document/distribution/text"}},
		{name: "unknown label reads as RED", version: "2.1", label: "PURPLE", want: gateway.TLPRed, errs: []string{"/document/distribution/tlp/label"}},
		{name: "unknown label in 2.0 is a schema error and RED", version: "2.0", label: "PURPLE", want: gateway.TLPRed, errs: []string{"/document/distribution/tlp/label"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := map[string]any{"csaf_version": tt.version, "distribution": dist(tt.label, tt.text)}
			if tt.label == "" && tt.text == "" {
				d["distribution"] = nil // an empty object breaks the schema
			}
			ev, errs := decodeOne(t, doc(t, d, nil))
			if ev.TLP != tt.want {
				t.Errorf("TLP %q, want %q", ev.TLP, tt.want)
			}
			if got := slices.Contains(ev.Labels, "tlp:white"); got != tt.white {
				t.Errorf("label tlp:white present %v, want %v (labels %q)", got, tt.white, ev.Labels)
			}
			if got := fields(errs); !slices.Equal(got, tt.errs) {
				t.Errorf("problems at %q, want %q (%v)", got, tt.errs, errs)
			}
		})
	}
}

func TestAssessment(t *testing.T) {
	note := func(title, text string) map[string]any {
		return map[string]any{"category": "other", "title": title, "text": text}
	}
	tests := []struct {
		name     string
		notes    []any
		want     *gateway.Assessment
		priority gateway.Priority
		desc     string
		errs     []string
	}{
		{name: "Kans hoog, Schade hoog is critical", notes: []any{note("Kans", "hoog"), note("Schade", "Hoog")},
			want: &gateway.Assessment{Probability: "high", Impact: "high"}, priority: gateway.PriorityCritical},
		{name: "midden/hoog is not critical", notes: []any{note("Kans", "midden"), note("Schade", "hoog")},
			want: &gateway.Assessment{Probability: "medium", Impact: "high"}},
		{name: "English high/high is critical", notes: []any{note("Probability", "High"), note("Impact", "HIGH.")},
			want: &gateway.Assessment{Probability: "high", Impact: "high"}, priority: gateway.PriorityCritical},
		{name: "urgent is critical", notes: []any{note("Urgentie", "Urgent")},
			want: &gateway.Assessment{Urgency: "urgent"}, priority: gateway.PriorityCritical},
		{name: "normaal is not", notes: []any{note("Urgency", "Normaal")},
			want: &gateway.Assessment{Urgency: "normal"}},
		{name: "first word counts", notes: []any{note("Kans:", "Laag - geen misbruik bekend"), note("Schade", "M")},
			want: &gateway.Assessment{Probability: "low", Impact: "medium"}},
		{name: "unreadable Kans is reported and left out", notes: []any{note("Kans", "onbekend"), note("Schade", "hoog")},
			want: &gateway.Assessment{Impact: "high"}, errs: []string{"/document/notes/0/text"}},
		{name: "prose under Impact stays in the description", notes: []any{
			map[string]any{"category": "general", "title": "Impact", "text": "Attackers can read mail."},
		}, desc: "Impact\nAttackers can read mail."},
		{name: "assessment notes are not repeated in the description", notes: []any{
			map[string]any{"category": "general", "title": "Kans", "text": "hoog"},
			map[string]any{"category": "summary", "title": "Samenvatting", "text": "Tekst."},
		}, want: &gateway.Assessment{Probability: "high"}, desc: "Samenvatting\nTekst."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, errs := decodeOne(t, doc(t, map[string]any{"notes": tt.notes}, nil))
			switch {
			case tt.want == nil && ev.Assessment != nil:
				t.Errorf("assessment %+v, want none", *ev.Assessment)
			case tt.want != nil && (ev.Assessment == nil || *ev.Assessment != *tt.want):
				t.Errorf("assessment %+v, want %+v", ev.Assessment, *tt.want)
			}
			if ev.Priority != tt.priority {
				t.Errorf("priority %q, want %q", ev.Priority, tt.priority)
			}
			if ev.Description != tt.desc {
				t.Errorf("description %q, want %q", ev.Description, tt.desc)
			}
			if got := fields(errs); !slices.Equal(got, tt.errs) {
				t.Errorf("problems at %q, want %q (%v)", got, tt.errs, errs)
			}
		})
	}
}

func TestVulnerabilities(t *testing.T) {
	score := func(v float64) map[string]any {
		return map[string]any{"cvss_v3": map[string]any{"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": v, "baseSeverity": "HIGH"}, "products": []any{"A"}}
	}
	tree := map[string]any{
		"full_product_names": []any{map[string]any{"name": "Alpha 1.0", "product_id": "A"}},
		"branches": []any{map[string]any{"category": "vendor", "name": "V", "branches": []any{
			map[string]any{"category": "product_version", "name": "2", "product": map[string]any{"name": "Beta 2", "product_id": "B"}},
		}}},
		"relationships": []any{map[string]any{"category": "installed_on", "product_reference": "A", "relates_to_product_reference": "B",
			"full_product_name": map[string]any{"name": "Alpha 1.0 on Beta 2", "product_id": "AB"}}},
	}
	vulns := []any{
		map[string]any{"cve": "CVE-2026-1000", "scores": []any{score(5.0), score(7.2)},
			"product_status": map[string]any{"known_affected": []any{"A", "AB"}, "fixed": []any{"B"}, "last_affected": []any{"A"}}},
		map[string]any{"cve": "CVE-2026-2000", "product_status": map[string]any{"first_affected": []any{"B", "X"}}},
		map[string]any{"ids": []any{map[string]any{"system_name": "t", "text": "no CVE"}}},
	}
	ev, errs := decodeOne(t, doc(t, nil, map[string]any{"product_tree": tree, "vulnerabilities": vulns}))
	want := []gateway.Vulnerability{
		{CVE: "CVE-2026-1000", CVSS: 7.2, Products: []string{"Alpha 1.0", "Alpha 1.0 on Beta 2"}},
		{CVE: "CVE-2026-2000", Products: []string{"Beta 2", "X"}},
	}
	got, _ := json.Marshal(ev.Vulnerabilities)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("vulnerabilities\n got %s\nwant %s", got, exp)
	}
	if f := fields(errs); !slices.Equal(f, []string{"/vulnerabilities/1/product_status/first_affected/1"}) {
		t.Errorf("problems %v", errs)
	}
}

// A CVE listed twice is merged, a score outside 0..10 is ignored (and
// reported by the CSAF 2.1 schema).
func TestVulnerabilitiesMergedAndScoresChecked(t *testing.T) {
	vectors := map[string]map[string]any{
		"cvss_v3": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "baseSeverity": "MEDIUM"},
		"cvss_v2": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
		"cvss_v4": {},
	}
	metric := func(key string, v float64) map[string]any {
		m := map[string]any{"baseScore": v}
		for k, x := range vectors[key] {
			m[k] = x
		}
		return map[string]any{"content": map[string]any{key: m}, "products": []any{"A"}}
	}
	vulns := []any{
		map[string]any{"cve": "CVE-2026-1000", "metrics": []any{metric("cvss_v3", 6.0)}, "product_status": map[string]any{"known_affected": []any{"A"}}},
		map[string]any{"cve": "cve-2026-1000", "metrics": []any{metric("cvss_v4", 8.7), metric("cvss_v2", 11)}, "product_status": map[string]any{"known_affected": []any{"A", "B"}}},
	}
	tree := map[string]any{"full_product_names": []any{
		map[string]any{"name": "Alpha", "product_id": "A"}, map[string]any{"name": "Beta", "product_id": "B"},
	}}
	ev, errs := decodeOne(t, doc(t, map[string]any{"csaf_version": "2.1"}, map[string]any{"product_tree": tree, "vulnerabilities": vulns}))
	if len(ev.Vulnerabilities) != 1 {
		t.Fatalf("vulnerabilities %+v, want one merged entry", ev.Vulnerabilities)
	}
	v := ev.Vulnerabilities[0]
	if v.CVE != "CVE-2026-1000" || v.CVSS != 8.7 || !slices.Equal(v.Products, []string{"Alpha", "Beta"}) {
		t.Errorf("merged %+v", v)
	}
	want := []string{"/vulnerabilities/1/cve", "/vulnerabilities/1/metrics/1/content/cvss_v2/baseScore"}
	if f := fields(errs); !slices.Equal(f, want) {
		t.Errorf("problems at %q, want %q (%v)", f, want, errs)
	}
}

func TestDeepBranchesAreCapped(t *testing.T) {
	leaf := map[string]any{"category": "product_version", "name": "deep", "product": map[string]any{"name": "Deep", "product_id": "D"}}
	b := leaf
	for range csaf.MaxBranchDepth + 5 {
		b = map[string]any{"category": "vendor", "name": "n", "branches": []any{b}}
	}
	tree := map[string]any{"branches": []any{b}}
	vulns := []any{map[string]any{"cve": "CVE-2026-1000", "product_status": map[string]any{"known_affected": []any{"D"}}}}
	ev, errs := decodeOne(t, doc(t, map[string]any{"csaf_version": "2.1"}, map[string]any{"product_tree": tree, "vulnerabilities": vulns}))
	var capped bool
	for _, e := range errs {
		if strings.Contains(e.Message, "nested deeper than") && strings.Count(e.Field, "/branches") == csaf.MaxBranchDepth+1 {
			capped = true
		}
	}
	if !capped {
		t.Errorf("no depth problem reported: %v", errs)
	}
	if got := ev.Vulnerabilities[0].Products; !slices.Equal(got, []string{"D"}) {
		t.Errorf("products %q: the unread product should appear by id", got)
	}
}

func TestDecodeUnreadable(t *testing.T) {
	tests := []struct {
		in      string
		notCSAF bool
	}{
		{in: ``},
		{in: `{"document":`},
		{in: "\xff"},
		{in: `[]`, notCSAF: true},
		{in: `{}`, notCSAF: true},
		{in: `{"document": "x"}`, notCSAF: true},
		{in: `null`, notCSAF: true},
	}
	for _, tt := range tests {
		evs, errs, err := csaf.Decode([]byte(tt.in))
		if err == nil || evs != nil || errs != nil {
			t.Errorf("Decode(%q) = %v, %v, %v; want only an error", tt.in, evs, errs, err)
		}
		if got := errors.Is(err, csaf.ErrNotCSAF); got != tt.notCSAF {
			t.Errorf("Decode(%q): errors.Is(ErrNotCSAF) = %v, want %v (%v)", tt.in, got, tt.notCSAF, err)
		}
	}
}

func TestDates(t *testing.T) {
	tests := []struct {
		in   string
		want string
		errs []string
	}{
		{in: "2026-09-24T09:14:33.175708+00:00", want: "2026-09-24T09:14:33.175708Z"},
		{in: "2026-09-24T11:14:33+02:00", want: "2026-09-24T09:14:33Z"},
		{in: "2026-09-24 09:14:33Z", want: "2026-09-24T09:14:33Z", errs: []string{"/document/tracking/current_release_date"}},
		{in: "2026-09-24t09:14:33z", want: "2026-09-24T09:14:33Z"}, // RFC 3339 §5.6 allows lower case
		{in: "yesterday", want: "0001-01-01T00:00:00Z", errs: []string{"/document/tracking/current_release_date"}},
	}
	for _, tt := range tests {
		tracking := map[string]any{
			"current_release_date": tt.in, "id": "T", "initial_release_date": "2026-01-01T00:00:00Z",
			"revision_history": []any{map[string]any{"date": "2026-01-01T00:00:00Z", "number": "1", "summary": "s"}},
			"status":           "final", "version": "1",
		}
		ev, errs := decodeOne(t, doc(t, map[string]any{"tracking": tracking}, nil))
		if got := ev.Modified.Format("2006-01-02T15:04:05.999999999Z07:00"); got != tt.want {
			t.Errorf("%q: modified %s, want %s", tt.in, got, tt.want)
		}
		// Dates the mapping tolerates still break the schema; the source decides.
		if got := fields(errs); !slices.Equal(got, tt.errs) {
			t.Errorf("%q: problems at %q, want %q", tt.in, got, tt.errs)
		}
	}
}

func TestValid(t *testing.T) {
	valid, err := os.ReadFile("testdata/golden/cisa_va-24-262-01.json")
	if err != nil {
		t.Fatal(err)
	}
	if errs := csaf.Valid(valid); errs != nil {
		t.Errorf("Valid(CISA advisory) = %v", errs)
	}
	broken, err := os.ReadFile("testdata/golden/synthetic-broken.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/document/distribution/tlp/label", "/document/publisher", "/document/tracking/current_release_date", "/vulnerabilities/1/cve", "/vulnerabilities/2/cve"}
	if got := fields(csaf.Valid(broken)); !slices.Equal(got, want) {
		t.Errorf("Valid(broken) at %q, want %q", got, want)
	}
	// CSAF 2.1 is checked against the 2.1 schema: valid as built, and
	// TLP 1.0's WHITE is not a 2.1 label.
	if got := csaf.Valid(doc(t, map[string]any{"csaf_version": "2.1"}, nil)); got != nil {
		t.Errorf("Valid(CSAF 2.1) = %v", got)
	}
	white := doc(t, map[string]any{"csaf_version": "2.1", "distribution": map[string]any{"tlp": map[string]any{"label": "WHITE"}}}, nil)
	if got := fields(csaf.Valid(white)); !slices.Equal(got, []string{"/document/distribution/tlp/label"}) {
		t.Errorf("Valid(CSAF 2.1 with WHITE) at %q", got)
	}
	if got := csaf.Valid([]byte("{")); len(got) != 1 || got[0].Field != "" || !strings.HasPrefix(got[0].Message, "invalid JSON") {
		t.Errorf("Valid(not JSON) = %v", got)
	}
}

func TestFileName(t *testing.T) {
	tests := []struct{ id, want string }{
		// The examples of CSAF §5.1.
		{"cisco-sa-20190513-secureboot", "cisco-sa-20190513-secureboot.json"},
		{"Example Company - 2019-YH3234", "example_company_-_2019-yh3234.json"},
		{"RHBA-2019:0024", "rhba-2019_0024.json"},
		{"2022_#01-A", "2022_01-a.json"},
		{"NCSC-2026-0389", "ncsc-2026-0389.json"},
		{"VA-24-262-01", "va-24-262-01.json"},
		{"a+b  c", "a+b_c.json"},
		{"Ünïcode/ID", "_n_code_id.json"},
		{"", ".json"},
	}
	for _, tt := range tests {
		if got := csaf.FileName(tt.id); got != tt.want {
			t.Errorf("FileName(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestTitleFallback(t *testing.T) {
	ev, _ := decodeOne(t, doc(t, map[string]any{"title": "  "}, nil))
	if ev.Title != "TEST-1" {
		t.Errorf("title %q, want the tracking id", ev.Title)
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := os.ReadFile("testdata/golden/ncsc-2026-0389.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		evs, _, err := csaf.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs)
	}
	// Advisories carry vulnerabilities, not indicators: documents/s is the
	// figure that matters for a CSAF feed.
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "docs/s")
}

// Remediations, references, CWEs and threats reach the canonical event; a
// remediation CSAF repeats per CVE is one entry with the products merged.
func TestAdvice(t *testing.T) {
	tree := map[string]any{"full_product_names": []any{
		map[string]any{"name": "Alpha 1.0", "product_id": "A"}, map[string]any{"name": "Beta 2.0", "product_id": "B"},
	}}
	fix := func(ids ...any) map[string]any {
		return map[string]any{"category": "vendor_fix", "details": "Update to 1.1.", "url": "https://vendor.example/fix", "product_ids": ids}
	}
	vulns := []any{
		map[string]any{
			"cve": "CVE-2026-1000", "cwe": map[string]any{"id": "CWE-787", "name": "Out-of-bounds Write"},
			"product_status": map[string]any{"known_affected": []any{"A"}},
			"remediations":   []any{fix("A"), map[string]any{"category": "workaround", "details": "Block port 8443.", "product_ids": []any{"A"}}},
			"references":     []any{map[string]any{"url": "https://nvd.example/CVE-2026-1000", "summary": "NVD"}},
			"threats":        []any{map[string]any{"category": "exploit_status", "details": "Exploited in the wild."}},
		},
		map[string]any{
			"cve": "CVE-2026-1001", "cwe": map[string]any{"id": "CWE-787", "name": "Out-of-bounds Write"},
			"product_status": map[string]any{"known_affected": []any{"B"}},
			"remediations":   []any{fix("B")},
		},
	}
	d := map[string]any{
		"notes":      []any{map[string]any{"category": "summary", "text": "Two flaws."}},
		"references": []any{map[string]any{"url": "https://cert.example/TEST-1", "summary": "Advisory", "category": "self"}},
	}
	ev, errs := decodeOne(t, doc(t, d, map[string]any{"product_tree": tree, "vulnerabilities": vulns}))
	if errs != nil {
		t.Errorf("problems %v", errs)
	}
	wantRem := []gateway.Remediation{
		{Category: "vendor_fix", Text: "Update to 1.1.", URL: "https://vendor.example/fix", Products: []string{"Alpha 1.0", "Beta 2.0"}},
		{Category: "workaround", Text: "Block port 8443.", Products: []string{"Alpha 1.0"}},
	}
	if fmt.Sprint(ev.Remediations) != fmt.Sprint(wantRem) {
		t.Errorf("remediations %+v\nwant %+v", ev.Remediations, wantRem)
	}
	wantRefs := []gateway.Reference{{URL: "https://cert.example/TEST-1", Summary: "Advisory"}, {URL: "https://nvd.example/CVE-2026-1000", Summary: "NVD"}}
	if !slices.Equal(ev.References, wantRefs) {
		t.Errorf("references %+v", ev.References)
	}
	if n := strings.Count(strings.Join(ev.Labels, ","), csaf.LabelCWEPrefix+"CWE-787"); n != 1 {
		t.Errorf("labels %q: want cwe:CWE-787 once", ev.Labels)
	}
	if !strings.HasPrefix(ev.Description, "Two flaws.") || !strings.Contains(ev.Description, "CVE-2026-1000 exploit_status: Exploited in the wild.") {
		t.Errorf("description %q", ev.Description)
	}
}
