package stix

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// obj builds a STIX object as JSON; extra properties override the defaults.
func obj(typ, uuid string, extra map[string]any) map[string]any {
	o := map[string]any{"type": typ, "spec_version": "2.1", "id": typ + "--" + uuid}
	switch typ {
	case "indicator", "report", "grouping", "identity", "observed-data", "vulnerability", "malware":
		o["created"] = "2026-01-01T00:00:00.000Z"
		o["modified"] = "2026-01-01T00:00:00.000Z"
	}
	switch typ {
	case "indicator":
		o["pattern"] = "[ipv4-addr:value = '192.0.2.1']"
		o["pattern_type"] = "stix"
		o["valid_from"] = "2026-01-01T00:00:00Z"
	case "report":
		o["name"] = "r"
		o["published"] = "2026-01-01T00:00:00Z"
	}
	for k, v := range extra {
		if v == nil {
			delete(o, k)
			continue
		}
		o[k] = v
	}
	return o
}

func bundle(objs ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--0b3c2b6e-3b7e-4d2e-9d8e-2a1f0c9b8a7d", "objects": objs})
	return b
}

const (
	u1 = "11111111-1111-4111-8111-111111111111"
	u2 = "22222222-2222-4222-8222-222222222222"
	u3 = "33333333-3333-4333-8333-333333333333"
	u4 = "44444444-4444-4444-8444-444444444444"
)

// TLP marking ids used below.
const (
	white10  = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	green10  = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	amber10  = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	red10    = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
	clear20  = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	green20  = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	amber20  = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	strict20 = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
)

func TestDecodeTLP(t *testing.T) {
	custom := "marking-definition--" + u4
	tests := []struct {
		name      string
		report    []any // report object_marking_refs
		indicator map[string]any
		extra     []map[string]any
		want      gateway.TLP
		white     bool
	}{
		{name: "unmarked", want: ""},
		{name: "TLP 1.0 white is clear", report: []any{white10}, want: gateway.TLPClear, white: true},
		{name: "TLP 2.0 clear", report: []any{clear20}, want: gateway.TLPClear},
		{name: "TLP 1.0 green", report: []any{green10}, want: gateway.TLPGreen},
		{name: "TLP 2.0 amber+strict", report: []any{strict20}, want: gateway.TLPAmberStrict},
		{name: "1.0 red beats 2.0 amber", report: []any{amber20, red10}, want: gateway.TLPRed},
		{name: "white beaten by green: no legacy label", report: []any{white10, green20}, want: gateway.TLPGreen},
		{name: "member object marking is stricter", report: []any{green10},
			indicator: map[string]any{"object_marking_refs": []any{amber10}}, want: gateway.TLPAmber},
		{name: "granular marking counts", report: []any{clear20},
			indicator: map[string]any{"granular_markings": []any{map[string]any{"marking_ref": strict20, "selectors": []any{"pattern"}}}},
			want:      gateway.TLPAmberStrict},
		{name: "statement markings are not TLP", report: []any{custom},
			extra: []map[string]any{obj("marking-definition", u4, map[string]any{"created": "2026-01-01T00:00:00.000Z", "definition_type": "statement", "definition": map[string]any{"statement": "(c) us"}})},
			want:  ""},
		{name: "own TLP 1.0 style definition", report: []any{custom},
			extra: []map[string]any{obj("marking-definition", u4, map[string]any{"definition_type": "tlp", "definition": map[string]any{"tlp": "amber"}})},
			want:  gateway.TLPAmber},
		{name: "own TLP 2.0 style definition", report: []any{custom},
			extra: []map[string]any{obj("marking-definition", u4, map[string]any{"extensions": map[string]any{TLP20Extension: map[string]any{"extension_type": "property-extension", "tlp_2_0": "red"}}})},
			want:  gateway.TLPRed},
		{name: "unknown TLP label fails closed", report: []any{custom},
			extra: []map[string]any{obj("marking-definition", u4, map[string]any{"definition_type": "tlp", "definition": map[string]any{"tlp": "ultraviolet"}})},
			want:  gateway.TLPRed},
		{name: "a well-known id means what it is, whatever the bundle says", report: []any{green20},
			extra: []map[string]any{{"type": "marking-definition", "id": green20, "definition_type": "tlp", "definition": map[string]any{"tlp": "white"}}},
			want:  gateway.TLPGreen},
		{name: "undefined marking is ignored", report: []any{"marking-definition--" + u3}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := obj("report", u1, map[string]any{"object_refs": []any{"indicator--" + u2}})
			if tc.report != nil {
				rep["object_marking_refs"] = tc.report
			}
			objs := append([]map[string]any{rep, obj("indicator", u2, tc.indicator)}, tc.extra...)
			evs, _, err := Decode(bundle(objs...))
			if err != nil || len(evs) != 1 {
				t.Fatalf("Decode: %v, %d events", err, len(evs))
			}
			ev := evs[0]
			if ev.TLP != tc.want {
				t.Errorf("TLP = %q, want %q", ev.TLP, tc.want)
			}
			if got := slices.Contains(ev.Labels, normalize.LabelTLPWhite); got != tc.white {
				t.Errorf("labels %v: tlp:white present = %v, want %v", ev.Labels, got, tc.white)
			}
		})
	}
}

func TestDecodeInputShapes(t *testing.T) {
	ind := obj("indicator", u2, nil)
	single, _ := json.Marshal(ind)
	envelope, _ := json.Marshal(map[string]any{"more": true, "next": "abc", "objects": []any{ind}})
	tests := []struct {
		name   string
		in     string
		events int
		title  string
		ref    string
		err    string
	}{
		{name: "bundle", in: string(bundle(ind)), events: 1, title: "STIX bundle bundle--0b3c2b6e-3b7e-4d2e-9d8e-2a1f0c9b8a7d", ref: "bundle--0b3c2b6e-3b7e-4d2e-9d8e-2a1f0c9b8a7d"},
		{name: "envelope", in: string(envelope), events: 1, title: "STIX objects from a TAXII envelope"},
		{name: "single object", in: string(single), events: 1, title: "STIX indicator indicator--" + u2, ref: "indicator--" + u2},
		{name: "byte order mark and blanks", in: "\ufeff \n" + string(single), events: 1, title: "STIX indicator indicator--" + u2, ref: "indicator--" + u2},
		{name: "single 2.0 observed-data", events: 1, title: "STIX observed-data observed-data--" + u1, ref: "observed-data--" + u1,
			in: `{"objects": {"0": {"type": "domain-name", "value": "a.example"}}, "type": "observed-data", "id": "observed-data--` + u1 + `", "first_observed": "2026-01-01T00:00:00Z"}`},
		{name: "empty envelope", in: `{}`, events: 0},
		{name: "trailing data", in: `{} {}`, err: "unexpected data after the top-level object"},
		{name: "envelope without objects", in: `{"more": false}`, events: 0},
		{name: "empty bundle", in: `{"type":"bundle","id":"bundle--x","objects":[]}`, events: 0},
		{name: "only pass-through", in: string(bundle(obj("malware", u3, map[string]any{"name": "m", "is_family": true}))), events: 1, title: "STIX bundle bundle--0b3c2b6e-3b7e-4d2e-9d8e-2a1f0c9b8a7d", ref: "bundle--0b3c2b6e-3b7e-4d2e-9d8e-2a1f0c9b8a7d"},
		{name: "only shared objects", in: string(bundle(obj("identity", u3, map[string]any{"name": "CERT", "identity_class": "organization"}))), events: 0},
		{name: "empty", in: "  ", err: "input is empty"},
		{name: "array", in: `[` + string(single) + `]`, err: "must be a JSON object"},
		{name: "not JSON", in: `{"type": "bundle", `, err: "read STIX input"},
		{name: "objects not an array", in: `{"type":"bundle","objects":{"a":1}}`, err: "objects must be an array"},
		{name: "type not a string", in: `{"type": 7}`, err: "read STIX input"},
		{name: "very deep nesting", in: `{"type":"bundle","objects":[` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `]}`, err: "read STIX input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, _, err := Decode([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || evs != nil {
					t.Fatalf("got %d events, err %v; want error containing %q", len(evs), err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tc.events {
				t.Fatalf("%d events, want %d", len(evs), tc.events)
			}
			if tc.events == 0 {
				return
			}
			ev := evs[0]
			if ev.Title != tc.title || ev.Source.Ref != tc.ref || ev.Source.Format != "stix" || ev.ID != "" {
				t.Errorf("title %q ref %q format %q id %q; want title %q ref %q", ev.Title, ev.Source.Ref, ev.Source.Format, ev.ID, tc.title, tc.ref)
			}
		})
	}
}

func TestDecodeMembership(t *testing.T) {
	identity := obj("identity", u4, map[string]any{"name": " CERT-Example ", "identity_class": "organization"})
	r := obj("report", u1, map[string]any{
		"created_by_ref": "identity--" + u4, "published": "2026-02-01T10:00:00Z", "modified": "2026-02-03T00:00:00.5Z",
		"labels": []any{"ransomware"}, "x_misp_tags": []any{"tlp:green", map[string]any{"name": "misp-galaxy:x"}},
		"x_schakel_kind": "advisory", "x_schakel_sectors": []any{"health"},
		"x_schakel_assessment": map[string]any{"probability": "high", "impact": "high"},
		"object_refs":          []any{"indicator--" + u2, "vulnerability--" + u3},
	})
	g := obj("grouping", u3, map[string]any{"context": "suspicious-activity", "object_refs": []any{"indicator--" + u2}})
	vuln := obj("vulnerability", u3, map[string]any{"name": "x", "external_references": []any{
		map[string]any{"source_name": "cve", "external_id": "CVE-2026-0001"}, map[string]any{"source_name": "CVE", "external_id": "CVE-2026-0001"},
		map[string]any{"source_name": "cwe", "external_id": "CWE-79"}}, "x_schakel_cvss": 9.8})
	shared := obj("indicator", u2, nil)
	loose := obj("indicator", "55555555-5555-4555-8555-555555555555", map[string]any{"pattern": "[domain-name:value = 'loose.example']", "created_by_ref": "identity--" + u4})
	evs, errs, err := Decode(bundle(identity, r, g, vuln, shared, loose))
	// The upper-case "CVE" source name is mapped, but makes the object
	// invalid STIX, so it is not relayed verbatim.
	if err != nil || len(errs) != 1 || !strings.Contains(errs[0].Message, "not relayed") || errs[0].Field != "/objects/3/external_references/1/external_id" {
		t.Fatalf("Decode: %v %v", err, errs)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want report, grouping and the loose one", len(evs))
	}
	rep, grp, rest := evs[0], evs[1], evs[2]
	if rep.ID != u1 || rep.Source.Ref != "report--"+u1 || rep.Source.Org != "CERT-Example" || rep.Kind != gateway.KindAdvisory {
		t.Errorf("report event: id %q ref %q org %q kind %q", rep.ID, rep.Source.Ref, rep.Source.Org, rep.Kind)
	}
	if rep.Created.Format("2006-01-02T15:04:05Z") != "2026-02-01T10:00:00Z" || rep.Modified.Format("2006-01-02T15:04:05.0Z") != "2026-02-03T00:00:00.5Z" {
		t.Errorf("created %v (want published), modified %v", rep.Created, rep.Modified)
	}
	if want := []string{"ransomware", "tlp:green", "misp-galaxy:x"}; !slices.Equal(rep.Labels, want) {
		t.Errorf("labels %v, want %v", rep.Labels, want)
	}
	if len(rep.Vulnerabilities) != 1 || rep.Vulnerabilities[0].CVE != "CVE-2026-0001" || rep.Vulnerabilities[0].CVSS != 9.8 {
		t.Errorf("vulnerabilities %+v", rep.Vulnerabilities)
	}
	if rep.Assessment == nil || !rep.Assessment.Critical() || !slices.Equal(rep.Sectors, []string{"health"}) {
		t.Errorf("assessment %+v sectors %v", rep.Assessment, rep.Sectors)
	}
	if len(rep.Indicators) != 1 || len(grp.Indicators) != 1 {
		t.Errorf("an indicator shared by report and grouping belongs to both: %d, %d", len(rep.Indicators), len(grp.Indicators))
	}
	if grp.ID != u3 || grp.Title != "STIX grouping grouping--"+u3 || grp.Source.Org != "" {
		t.Errorf("grouping event: id %q title %q org %q", grp.ID, grp.Title, grp.Source.Org)
	}
	if len(rest.Indicators) != 1 || rest.Indicators[0].Value != "loose.example" || rest.Source.Org != "CERT-Example" {
		t.Errorf("loose event %+v", rest)
	}
}

func TestDecodeVersionsAndRevocation(t *testing.T) {
	older := obj("indicator", u2, map[string]any{"pattern": "[domain-name:value = 'old.example']", "modified": "2026-01-01T00:00:00.000Z"})
	newer := obj("indicator", u2, map[string]any{"pattern": "[domain-name:value = 'new.example']", "modified": "2026-01-02T00:00:00.000Z"})
	revoked := obj("indicator", u3, map[string]any{"pattern": "[domain-name:value = 'revoked.example']", "modified": "2026-01-02T00:00:00.000Z", "revoked": true})
	revokedLater := obj("indicator", u4, map[string]any{"pattern": "[domain-name:value = 'later.example']", "modified": "2026-01-03T00:00:00.000Z", "revoked": true})
	live := obj("indicator", u4, map[string]any{"pattern": "[domain-name:value = 'later.example']"})
	for _, order := range [][]map[string]any{{older, newer, revoked, live, revokedLater}, {newer, older, revokedLater, revoked, live}} {
		evs, _, err := Decode(bundle(order...))
		if err != nil || len(evs) != 1 {
			t.Fatalf("Decode: %v, %d events", err, len(evs))
		}
		var values []string
		for _, i := range evs[0].Indicators {
			values = append(values, i.Value)
		}
		if !slices.Equal(values, []string{"new.example"}) {
			t.Errorf("indicators %v, want only the newest live version", values)
		}
	}
}

func TestDecodeObservedData(t *testing.T) {
	od := obj("observed-data", u1, map[string]any{
		"first_observed": "2026-01-01T01:00:00Z", "last_observed": "2026-01-01T02:00:00Z", "number_observed": 1,
		"object_refs":       []any{"network-traffic--" + u2, "ipv4-addr--" + u3, "file--" + u4, "autonomous-system--" + u1},
		"x_schakel_comment": "seen scanning",
	})
	nt := map[string]any{"type": "network-traffic", "id": "network-traffic--" + u2, "src_ref": "ipv4-addr--" + u3, "src_port": 4444, "protocols": []any{"tcp"}}
	ip := map[string]any{"type": "ipv4-addr", "id": "ipv4-addr--" + u3, "value": "198.51.100.9"}
	file := map[string]any{"type": "file", "id": "file--" + u4, "hashes": map[string]any{"SHA256": "AA", "SHA-256": "BB", "SSDEEP": "3:x"}}
	as := map[string]any{"type": "autonomous-system", "id": "autonomous-system--" + u1, "number": 0}
	evs, errs, err := Decode(bundle(od, nt, ip, file, as))
	if err != nil || len(evs) != 1 {
		t.Fatalf("Decode: %v, %d events", err, len(evs))
	}
	got := map[string]gateway.Indicator{}
	for _, i := range evs[0].Indicators {
		got[string(i.Type)+" "+i.Value] = i
		if i.Detect || i.Comment != "seen scanning" || i.Observed.Format("15:04") != "01:00" || i.Attributes[AttrObservedDataID] != "observed-data--"+u1 {
			t.Errorf("observable %+v: want detect=false, the comment, first_observed and the observed-data id", i)
		}
	}
	if len(got) != 2 {
		t.Errorf("indicators %v, want the address once (with its port) and one sha256", got)
	}
	if i := got["ipv4 198.51.100.9"]; i.Port != 4444 || i.Attributes[gateway.AttrDirection] != gateway.DirectionSource {
		t.Errorf("address %+v, want port 4444 and direction source", i)
	}
	if _, ok := got["sha256 BB"]; !ok {
		t.Errorf("want the SHA-256 spelled SHA-256 (first in sorted order), got %v", got)
	}
	want := []string{"/objects/4/number"}
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, want) {
		t.Errorf("errors %v, want at %v", errs, want)
	}
}

func TestDecodeLimits(t *testing.T) {
	saved := limits
	t.Cleanup(func() { limits = saved })
	limits.objects, limits.indicators = 5, 3

	var objs []map[string]any
	for i := range 8 {
		objs = append(objs, obj("indicator", fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), map[string]any{"pattern": fmt.Sprintf("[ipv4-addr:value = '192.0.2.%d']", i)}))
	}
	evs, errs, err := Decode(bundle(objs...))
	if err != nil || len(evs) != 1 {
		t.Fatalf("Decode: %v, %d events", err, len(evs))
	}
	if n := len(evs[0].Indicators); n != 3 {
		t.Errorf("%d indicators, want the cap of 3", n)
	}
	want := []gateway.FieldError{
		{Field: "/objects/5", Message: "more than 5 objects; the rest are not mapped"},
		{Field: "", Message: "more than 3 indicators in one event; the rest are not mapped"},
	}
	if !slices.Equal(errs, want) {
		t.Errorf("errors %v, want %v", errs, want)
	}

	// An OR with more branches than the reader takes is kept whole.
	limits = saved
	long := strings.Repeat("[file:name = 'x'] OR ", maxComparisons) + "[file:name = 'y']"
	evs, _, _ = Decode(bundle(obj("indicator", u1, map[string]any{"pattern": long})))
	if len(evs) != 1 || len(evs[0].Indicators) != 1 || evs[0].Indicators[0].Type != gateway.TypeOther {
		t.Errorf("a %d-branch OR should be one other indicator", maxComparisons+1)
	}
	// A pattern over the size limit is refused.
	huge := "[file:name = '" + strings.Repeat("a", MaxPatternBytes) + "']"
	_, errs, _ = Decode(bundle(obj("indicator", u1, map[string]any{"pattern": huge})))
	if len(errs) != 1 || errs[0].Field != "/objects/0/pattern" {
		t.Errorf("errors %v, want the oversized pattern reported", errs)
	}
}

func TestDecodeCustomObservable(t *testing.T) {
	o := obj("indicator", u1, nil)
	o["type"], o["id"] = customObservable, customObservable+"--"+u1
	o["x_schakel_type"], o["value"], o["description"] = "ja3", "e7d705a3286e19ea42f587b344ee6865", "client"
	bad := map[string]any{"type": customObservable, "id": customObservable + "--" + u2, "x_schakel_type": "phone", "value": "x"}
	evs, errs, err := Decode(bundle(o, bad))
	if err != nil || len(evs) != 1 || len(evs[0].Indicators) != 1 {
		t.Fatalf("Decode: %v, %+v", err, evs)
	}
	i := evs[0].Indicators[0]
	if i.Type != gateway.TypeJA3 || i.Detect || i.Comment != "client" || i.Attributes[AttrID] != customObservable+"--"+u1 {
		t.Errorf("indicator %+v", i)
	}
	if len(errs) != 1 || errs[0].Field != "/objects/1/x_schakel_type" {
		t.Errorf("errors %v, want the unknown type reported", errs)
	}
}
