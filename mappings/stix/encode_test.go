package stix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	stixschema "github.com/schakel/schakel/schemas/stix"
)

var (
	t0 = time.Date(2026, 11, 20, 9, 14, 33, 0, time.UTC)
	t1 = time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
)

// richEvent holds every indicator type and the fields Encode writes.
func richEvent() *gateway.Event {
	return &gateway.Event{
		ID: "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11", Kind: gateway.KindAdvisory, Title: "Kwetsbaarheden verholpen in Example VPN",
		Description: "free text", TLP: gateway.TLPAmber,
		Source:  gateway.SourceRef{Name: "ncsc-csaf", Org: "NCSC-NL", Format: "csaf", Ref: "NCSC-2026-0389"},
		Created: t0, Modified: t1, Priority: gateway.PriorityHigh,
		Assessment: &gateway.Assessment{Probability: "medium", Impact: "high"},
		Sectors:    []string{"health"}, Labels: []string{"ransomware", "tlp:white"},
		Indicators: []gateway.Indicator{
			{Type: "ipv4", Value: "192.0.2.10", Detect: true, Port: 443, Observed: t0, Comment: "c2", Attributes: map[string]string{"tag": "exchange"}},
			{Type: "ipv4", Value: "192.0.2.11", Detect: true},
			{Type: "ipv4", Value: "198.51.100.1", Port: 22, Attributes: map[string]string{gateway.AttrDirection: gateway.DirectionSource}},
			{Type: "ipv6", Value: "2001:db8::1", Detect: true},
			{Type: "ipv6", Value: "2001:db8::2"},
			{Type: "cidr", Value: "192.0.2.0/24", Detect: true},
			{Type: "cidr", Value: "2001:db8::/32"},
			{Type: "domain", Value: "example.org", Detect: true},
			{Type: "domain", Value: "seen.example.org", Comment: "resolver logs"},
			{Type: "url", Value: "https://example.org/it's\\here", Detect: true},
			{Type: "url", Value: "https://example.org/seen"},
			{Type: "email", Value: "phish@example.org", Detect: true},
			{Type: "email", Value: "victim@example.org"},
			{Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e", Detect: true},
			{Type: "sha1", Value: "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
			{Type: "sha256", Value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Detect: true},
			{Type: "sha512", Value: strings.Repeat("cf", 64)},
			{Type: "asn", Value: "AS64500", ASN: 64500, Detect: true},
			{Type: "asn", Value: "AS64501", ASN: 64501},
			{Type: "filename", Value: "factuur.pdf.exe", Detect: true},
			{Type: "filename", Value: "readme.txt"},
			{Type: "mutex", Value: `Global\m'x`, Detect: true},
			{Type: "mutex", Value: "seen-mutex"},
			{Type: "ja3", Value: "e7d705a3286e19ea42f587b344ee6865", Detect: true},
			{Type: "ja3", Value: "6734f37431670b3ab4292b8f60f29984"},
			{Type: "other", Value: "+31 20 123 4567", Detect: true},
			{Type: "other", Value: "free-form note"},
			{Type: "other", Value: "rule x { condition: true }", Detect: true, Attributes: map[string]string{AttrPattern: "rule x { condition: true }", AttrPatternType: "yara"}},
		},
		Vulnerabilities: []gateway.Vulnerability{{CVE: "CVE-2026-12345", CVSS: 9.8, Products: []string{"Example VPN < 5.2"}}},
	}
}

func TestEncodeValidatesAndRoundTrips(t *testing.T) {
	ev := richEvent()
	if errs := normalize.Event(ev); len(errs) > 0 {
		t.Fatalf("fixture does not normalise: %v", errs)
	}
	objs, err := EncodeObjects(ev, EncodeOptions{IdentityName: "CSIRT Example"})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, o := range objs {
		types[o.Type]++
		if errs := stixschema.ValidateObject(o.JSON); errs != nil {
			t.Errorf("%s: %v\n%s", o.ID, errs, o.JSON)
		}
	}
	want := map[string]int{
		"extension-definition": 1, "marking-definition": 1, "identity": 1, "report": 1, "vulnerability": 1,
		"indicator":     15,                            // every detect=true indicator, one each
		"observed-data": 11, "x-schakel-observable": 2, // the detect=false ones

		"ipv4-addr": 1, "ipv6-addr": 2, "network-traffic": 1, "domain-name": 1, "url": 1, "email-addr": 1,
		"file": 3, "autonomous-system": 1, "mutex": 1,
	}
	for k, n := range want {
		if types[k] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", types[k], k, n, types)
		}
	}

	out, err := Encode(ev, EncodeOptions{IdentityName: "CSIRT Example"})
	if err != nil {
		t.Fatal(err)
	}
	evs, errs, err := Decode(out)
	if err != nil || len(errs) > 0 || len(evs) != 1 {
		t.Fatalf("Decode: %v %v, %d events", err, errs, len(evs))
	}
	back := evs[0]
	if rej := normalize.Event(back); len(rej) > 0 {
		t.Fatalf("decoded event does not normalise: %v", rej)
	}
	if back.ID != ev.ID || back.Source.Ref != "report--"+ev.ID || back.Source.Org != "CSIRT Example" || back.TLP != ev.TLP ||
		back.Kind != ev.Kind || back.Title != ev.Title || back.Description != ev.Description || back.Priority != ev.Priority ||
		!back.Created.Equal(ev.Created) || !back.Modified.Equal(ev.Modified) || *back.Assessment != *ev.Assessment ||
		!slices.Equal(back.Labels, ev.Labels) || !slices.Equal(back.Sectors, ev.Sectors) {
		t.Errorf("event fields changed:\n got %+v\nwant %+v", back, ev)
	}
	if len(back.Vulnerabilities) != 1 || back.Vulnerabilities[0].CVE != "CVE-2026-12345" || back.Vulnerabilities[0].CVSS != 9.8 ||
		!slices.Equal(back.Vulnerabilities[0].Products, ev.Vulnerabilities[0].Products) {
		t.Errorf("vulnerabilities %+v", back.Vulnerabilities)
	}
	type key struct {
		Type   gateway.IndicatorType
		Value  string
		Port   int
		Detect bool
	}
	got := map[key]gateway.Indicator{}
	for _, i := range back.Indicators {
		got[key{i.Type, i.Value, i.Port, i.Detect}] = i
	}
	if len(got) != len(ev.Indicators) {
		t.Errorf("%d indicators came back, want %d", len(got), len(ev.Indicators))
	}
	for _, i := range ev.Indicators {
		g, ok := got[key{i.Type, i.Value, i.Port, i.Detect}]
		if !ok {
			t.Errorf("indicator %s %q port %d detect %v did not come back", i.Type, i.Value, i.Port, i.Detect)
			continue
		}
		// STIX requires valid_from and first_observed: the event's time
		// stands in. x-schakel-observable has no such rule.
		wantObserved := orTime(i.Observed, t0)
		if !i.Detect && !hasObservable(i) {
			wantObserved = i.Observed
		}
		if g.Comment != i.Comment || !g.Observed.Equal(wantObserved) {
			t.Errorf("%s %q: comment %q observed %v, want %q %v", i.Type, i.Value, g.Comment, g.Observed, i.Comment, wantObserved)
		}
		for k, v := range i.Attributes {
			if g.Attributes[k] != v {
				t.Errorf("%s %q: attribute %s = %q, want %q", i.Type, i.Value, k, g.Attributes[k], v)
			}
		}
	}
	// Second trip: a fixed point.
	again, err := Encode(back, EncodeOptions{IdentityName: "CSIRT Example"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Errorf("re-encoding the decoded event changed the bundle")
	}
}

func orTime(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

func TestEncodeDeterministic(t *testing.T) {
	first, err := Encode(richEvent(), EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := Encode(richEvent(), EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("the same event encoded to different bytes")
		}
	}
}

func TestEncodePatternEscaping(t *testing.T) {
	ev := &gateway.Event{Title: "t", Created: t0, Indicators: []gateway.Indicator{
		{Type: "url", Value: `http://a.example/it's\x`, Detect: true},
	}}
	objs, err := EncodeObjects(ev, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pattern string
	for _, o := range objs {
		if o.Type == "indicator" {
			var m struct{ Pattern string }
			_ = json.Unmarshal(o.JSON, &m)
			pattern = m.Pattern
		}
	}
	if want := `[url:value = 'http://a.example/it\'s\\x']`; pattern != want {
		t.Errorf("pattern %s, want %s", pattern, want)
	}
}

func TestEncodeIDs(t *testing.T) {
	tests := []struct {
		name, id, wantReport string
	}{
		{"uuid event id is kept", "8D5C0B9E-2F0C-4F57-9D3E-2B6A3C1F0A11", "report--8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11"},
		{"uuid v7 is not a STIX id", "01890a5d-ac96-774b-bcce-b302099a8057", ""},
		{"not a uuid", "NCSC-2026-0389", ""},
		{"no id", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &gateway.Event{ID: tc.id, Title: "t", Created: t0, Source: gateway.SourceRef{Name: "s", Ref: "r"}}
			objs, err := EncodeObjects(ev, EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := objs[3]
			if r.Type != "report" {
				t.Fatalf("object 3 is %s", r.Type)
			}
			if tc.wantReport != "" && r.ID != tc.wantReport {
				t.Errorf("report id %s, want %s", r.ID, tc.wantReport)
			}
			if errs := stixschema.ValidateObject(r.JSON); errs != nil {
				t.Errorf("%s: %v", r.ID, errs)
			}
			again, _ := EncodeObjects(ev, EncodeOptions{})
			if again[3].ID != r.ID {
				t.Errorf("derived id not stable: %s then %s", r.ID, again[3].ID)
			}
		})
	}
}

// TestObservableIDs checks STIX 2.1 §2.9 ids against values computed
// independently (python uuid5 over json.dumps(sort_keys, compact,
// ensure_ascii=False)) and the ids in the OASIS examples.
func TestObservableIDs(t *testing.T) {
	port := 443
	tests := []struct {
		sco  sco
		want string
	}{
		{sco{Type: "ipv4-addr", Value: "149.13.33.14"}, "ipv4-addr--74bacc73-b29e-50f3-9b10-6ed6fc0f18b4"},
		{sco{Type: "domain-name", Value: "circl.lu"}, "domain-name--4f2ea360-1460-5a03-afb8-4cbce15a9cf0"},
		{sco{Type: "url", Value: "a\"b\\c\n\x01<>&\u2028é"}, "url--afb8c59c-0907-53e6-9dc3-a46e3db62fdd"},
		{sco{Type: "autonomous-system", Number: 174}, "autonomous-system--55d86c46-4ca5-59db-b240-d082106bbcf5"},
		{sco{Type: "mutex", Name: `Global\m`}, "mutex--59790132-c297-56b1-8b9d-3cf96ee21b8a"},
		{sco{Type: "file", Name: "resume.pdf", Hashes: map[string]string{"MD5": "1717b7fff97d37a1e1a0029d83492de1", "SHA-1": "c79a326f8411e9488bdc3779753e1e3489aaedea"}},
			"file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d"}, // oasis-sighting.json
		{sco{Type: "network-traffic", DstRef: "ipv4-addr--74bacc73-b29e-50f3-9b10-6ed6fc0f18b4", DstPort: &port, Protocols: []string{"ipv4"}},
			"network-traffic--6c4df873-2d49-51bf-a3da-29621f90b3dd"},
	}
	for _, tc := range tests {
		if got := scoID(tc.sco.Type, idProps(&tc.sco)); got != tc.want {
			t.Errorf("%s %s: id %s, want %s (props %s)", tc.sco.Type, tc.sco.Value, got, tc.want, idProps(&tc.sco))
		}
	}
}

func TestEncodeTLP(t *testing.T) {
	for _, tc := range []struct {
		in   gateway.TLP
		want gateway.TLP
	}{{"", gateway.TLPAmber}, {"WHITE", gateway.TLPClear}, {"CLEAR", gateway.TLPClear}, {"GREEN", gateway.TLPGreen},
		{"AMBER", gateway.TLPAmber}, {"AMBER+STRICT", gateway.TLPAmberStrict}, {"RED", gateway.TLPRed}} {
		ev := &gateway.Event{Title: "t", Created: t0, TLP: tc.in, Indicators: []gateway.Indicator{{Type: "domain", Value: "a.example"}}}
		out, err := Encode(ev, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		evs, _, err := Decode(out)
		if err != nil || len(evs) != 1 || evs[0].TLP != tc.want {
			t.Errorf("TLP %q: decoded %v %v", tc.in, err, evs)
		}
		id, _ := TLPMarkingID(tc.want)
		if !bytes.Contains(out, []byte(`"tlp_2_0":"`+strings.ToLower(string(tc.want))+`"`)) || !bytes.Contains(out, []byte(id)) {
			t.Errorf("TLP %q: bundle lacks the %s marking definition", tc.in, tc.want)
		}
	}
}

func TestEncodeObjectsVersions(t *testing.T) {
	ev := &gateway.Event{ID: "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11", Title: "t", Created: t0, Modified: t1,
		Indicators: []gateway.Indicator{{Type: "domain", Value: "a.example"}}}
	objs, err := EncodeObjects(ev, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range objs {
		got[o.Type] = o.Version
	}
	want := map[string]string{
		"extension-definition": "2022-10-01T00:00:00.000Z", "marking-definition": "2022-10-01T00:00:00.000Z",
		"identity": "1970-01-01T00:00:00.000Z", "report": "2026-11-21T10:00:00.123456Z",
		"observed-data": "2026-11-21T10:00:00.123456Z", "domain-name": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s version %q, want %q", k, got[k], v)
		}
	}
	all, _ := json.Marshal(objs)
	if !bytes.HasPrefix(all, []byte(`[{"type":"extension-definition"`)) {
		t.Errorf("[]Object does not marshal as the objects: %.60s", all)
	}
}

func TestEncodeEmptyEvent(t *testing.T) {
	objs, err := EncodeObjects(&gateway.Event{Title: "nothing", Created: t0}, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if errs := stixschema.ValidateObject(o.JSON); errs != nil {
			t.Errorf("%s: %v", o.ID, errs)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		ev   *gateway.Event
		want string
	}{
		{"nil", nil, "event is missing"},
		{"no title", &gateway.Event{Created: t0}, "title is missing"},
		{"bad tlp", &gateway.Event{Title: "t", Created: t0, TLP: "PURPLE"}, "tlp: unknown TLP label"},
		{"no time", &gateway.Event{Title: "t"}, "created is missing"},
		{"bad type", &gateway.Event{Title: "t", Created: t0, Indicators: []gateway.Indicator{{Type: "phone", Value: "1"}}}, "indicators/0/type"},
		{"empty value", &gateway.Event{Title: "t", Created: t0, Indicators: []gateway.Indicator{{Type: "url"}}}, "indicators/0/value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(tc.ev, EncodeOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// Advice travels: remediations become course-of-action objects in the
// report, references its external_references, and both validate; a feed
// row's host is the source side of its traffic, the counterpart the
// destination.
func TestEncodeAdviceAndDirection(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	ev := &gateway.Event{ID: "7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", Kind: gateway.KindNotification, Title: "Sinkhole", TLP: gateway.TLPAmber,
		Source: gateway.SourceRef{Name: "shadowserver"}, Created: at, Modified: at,
		Remediations: []gateway.Remediation{{Category: "vendor_fix", Text: "Update to 5.2", URL: "https://vendor.example/fix", Products: []string{"Example VPN"}}},
		References:   []gateway.Reference{{URL: "https://advisories.example/2026-1", Summary: "Advisory"}},
		Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.7", Port: 51000, ASN: 64500,
			Attributes: map[string]string{gateway.AttrDirection: gateway.DirectionSource, "dst_ip": "198.51.100.1", "dst_port": "80", "infection": "andromeda"}}},
	}
	objs, err := EncodeObjects(ev, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	var report, coa, nt map[string]any
	for _, o := range objs {
		if errs := stixschema.ValidateObject(o.JSON); errs != nil {
			t.Errorf("%s: %v\n%s", o.ID, errs, o.JSON)
		}
		var m map[string]any
		if err := json.Unmarshal(o.JSON, &m); err != nil {
			t.Fatal(err)
		}
		byID[o.ID] = m
		switch o.Type {
		case "report":
			report = m
		case "course-of-action":
			coa = m
		case "network-traffic":
			nt = m
		}
	}
	if coa == nil || coa["description"] != "Update to 5.2" || !strings.Contains(fmt.Sprint(coa["external_references"]), "https://vendor.example/fix") {
		t.Fatalf("course-of-action = %v", coa)
	}
	if !strings.Contains(fmt.Sprint(report["object_refs"]), coa["id"].(string)) {
		t.Error("the course-of-action is not in the report's object_refs")
	}
	if !strings.Contains(fmt.Sprint(report["external_references"]), "https://advisories.example/2026-1") {
		t.Errorf("report external_references = %v", report["external_references"])
	}
	if nt == nil {
		t.Fatal("no network-traffic object")
	}
	src, _ := nt["src_ref"].(string)
	dst, _ := nt["dst_ref"].(string)
	if byID[src]["value"] != "192.0.2.7" || nt["src_port"] != float64(51000) {
		t.Errorf("source side = %v port %v, want the row's host 192.0.2.7:51000", byID[src], nt["src_port"])
	}
	if byID[dst]["value"] != "198.51.100.1" || nt["dst_port"] != float64(80) {
		t.Errorf("destination side = %v port %v, want the sinkhole 198.51.100.1:80", byID[dst], nt["dst_port"])
	}
}
