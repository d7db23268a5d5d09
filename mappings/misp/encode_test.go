package misp

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// describeTypes is testdata/describeTypes.json, read once.
var describeTypes = sync.OnceValue(func() (d struct {
	Result struct {
		SaneDefaults map[string]struct {
			DefaultCategory string `json:"default_category"`
			ToIDs           int    `json:"to_ids"`
		} `json:"sane_defaults"`
		CategoryTypeMappings map[string][]string `json:"category_type_mappings"`
	} `json:"result"`
},
) {
	b, err := os.ReadFile("testdata/describeTypes.json")
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	if err != nil {
		panic(err)
	}
	return d
})

// TestDefaultsTable proves defaults.go is MISP's sane_defaults; with
// -update it writes defaults.go from testdata/describeTypes.json.
func TestDefaultsTable(t *testing.T) {
	sd := describeTypes().Result.SaneDefaults
	if *update {
		var b strings.Builder
		b.WriteString("// Code generated from testdata/describeTypes.json by TestDefaultsTable -update; DO NOT EDIT.\n\n")
		b.WriteString("package misp\n\n")
		b.WriteString("// typeDefaults is MISP's sane_defaults: the default category of every\n")
		b.WriteString("// attribute type and whether it is fit for IDS (to_ids) by default.\n")
		b.WriteString("var typeDefaults = map[string]typeDefault{\n")
		for _, typ := range slices.Sorted(maps.Keys(sd)) {
			fmt.Fprintf(&b, "\t%q: {%q, %v},\n", typ, sd[typ].DefaultCategory, sd[typ].ToIDs == 1)
		}
		b.WriteString("}\n")
		src, err := format.Source([]byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("defaults.go", src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if len(sd) != len(typeDefaults) {
		t.Errorf("defaults.go has %d types, describeTypes %d", len(typeDefaults), len(sd))
	}
	for typ, want := range sd {
		got, ok := typeDefaults[typ]
		if !ok || got.category != want.DefaultCategory || got.toIDs != (want.ToIDs == 1) {
			t.Errorf("%s: defaults.go has %+v, describeTypes %+v", typ, got, want)
		}
	}
}

// checkCategories fails when MISP would refuse an attribute because its
// category does not allow its type.
func checkCategories(t *testing.T, e *Event) {
	t.Helper()
	m := describeTypes().Result.CategoryTypeMappings
	check := func(a Attribute) {
		if !slices.Contains(m[a.Category], a.Type) {
			t.Errorf("attribute %s: category %q does not allow type %q", a.UUID, a.Category, a.Type)
		}
	}
	for _, a := range e.Attribute {
		check(a)
	}
	for _, o := range e.Object {
		for _, a := range o.Attribute {
			check(a)
		}
	}
}

// canonical is an event from a non-MISP source (CSAF, CSV, e-mail) as the
// pipeline stores it.
func canonical() *gateway.Event {
	return &gateway.Event{
		ID:          "NCSC-2026-0389",
		Kind:        gateway.KindNotification,
		Title:       "Kwetsbaarheden verholpen in Example VPN",
		Description: "Example VPN before 5.2 lets a remote attacker run code.",
		TLP:         gateway.TLPAmber,
		Source:      gateway.SourceRef{Name: "ncsc-csaf", Org: "NCSC-NL", Format: "csaf", Ref: "NCSC-2026-0389"},
		Created:     time.Date(2026, 11, 20, 9, 14, 33, 0, time.UTC),
		Modified:    time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Priority:    gateway.PriorityCritical,
		Labels:      []string{"ransomware", "tlp:white", "tlp:ex:chr", `schakel:kind="advisory"`, `schakel:sector="stale"`, "needs, review"},
		Sectors:     []string{"health", "water"},
		Indicators: []gateway.Indicator{
			{Type: "ipv4", Value: "192.0.2.10", Detect: true, Port: 443, ASN: 64500, Observed: time.Date(2026, 11, 20, 8, 0, 0, 123456789, time.UTC)},
			{Type: "ipv6", Value: "2001:db8::1", Detect: true},
			{Type: "cidr", Value: "198.51.100.0/24"},
			{Type: "domain", Value: "evil.example.com", Detect: true, Comment: "phishing"},
			{Type: "hostname", Value: "vpn.example.org", Port: 8443},
			{Type: "url", Value: "https://evil.example.com/login"},
			{Type: "email", Value: "phish@example.org"},
			{Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e", Attributes: map[string]string{"filename": "a.exe"}},
			{Type: "sha1", Value: "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
			{Type: "sha256", Value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
			{Type: "sha512", Value: "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
			{Type: "asn", Value: "AS64500", ASN: 64500},
			{Type: "cve", Value: "CVE-2026-12345"},
			{Type: "filename", Value: "invoice.pdf.exe"},
			{Type: "ja3", Value: "e7d705a3286e19ea42f587b344ee6865"},
			{Type: "mutex", Value: `Global\Evil`},
			{Type: "other", Value: "free text", Attributes: map[string]string{"tags": "kill-chain:Delivery,tlp:red"}},
			{Type: "other", Value: "HKLM\\Run", Attributes: map[string]string{AttrType: "regkey", AttrCategory: "Persistence mechanism"}},
		},
		Vulnerabilities: []gateway.Vulnerability{
			{CVE: "CVE-2026-12345", CVSS: 9.8, Products: []string{"Example VPN < 5.2"}},
			{CVE: "CVE-2026-22222"},
		},
	}
}

func TestEncodeCanonical(t *testing.T) {
	ev := canonical()
	e, err := EncodeEvent(ev, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	checkCategories(t, e)
	want := map[string]string{ // value → MISP type
		"192.0.2.10|443":                           "ip-dst|port",
		"2001:db8::1":                              "ip-dst",
		"198.51.100.0/24":                          "ip-dst",
		"evil.example.com":                         "domain",
		"vpn.example.org|8443":                     "hostname|port",
		"https://evil.example.com/login":           "url",
		"phish@example.org":                        "email-dst",
		"d41d8cd98f00b204e9800998ecf8427e":         "md5",
		"da39a3ee5e6b4b0d3255bfef95601890afd80709": "sha1",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855":                                                                 "sha256",
		"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e": "sha512",
		"64500":                            "AS",
		"CVE-2026-12345":                   "vulnerability",
		"CVE-2026-22222":                   "vulnerability",
		"invoice.pdf.exe":                  "filename",
		"e7d705a3286e19ea42f587b344ee6865": "ja3-fingerprint-md5",
		`Global\Evil`:                      "mutex",
		"free text":                        "text",
		"HKLM\\Run":                        "regkey",
	}
	got := map[string]Attribute{}
	for _, a := range e.Attribute {
		if _, dup := got[a.Value]; dup {
			t.Errorf("value %q written twice", a.Value)
		}
		got[a.Value] = a
	}
	if len(got) != len(want) {
		t.Errorf("%d attributes, want %d", len(got), len(want))
	}
	for v, typ := range want {
		if got[v].Type != typ {
			t.Errorf("%q: type %q, want %q", v, got[v].Type, typ)
		}
	}
	if a := got["192.0.2.10|443"]; !a.ToIDs || a.FirstSeen != "2026-11-20T08:00:00.123456+00:00" {
		t.Errorf("ip attribute: to_ids %v first_seen %q", a.ToIDs, a.FirstSeen)
	}
	if a := got["CVE-2026-12345"]; a.Comment != "CVSS 9.8; Example VPN < 5.2" {
		t.Errorf("vulnerability comment %q", a.Comment)
	}
	if a := got["HKLM\\Run"]; a.Category != "Persistence mechanism" {
		t.Errorf("regkey category %q", a.Category)
	}
	if tags := got["free text"].Tag; len(tags) != 1 || tags[0].Name != "kill-chain:Delivery" {
		t.Errorf("attribute tags %+v: want kill-chain:Delivery only (a tlp tag on an attribute would contradict the event's)", tags)
	}

	var names []string
	for _, tg := range e.Tag {
		names = append(names, tg.Name)
		if tg.Local || !tg.Exportable {
			t.Errorf("tag %q: local %v exportable %v", tg.Name, tg.Local, tg.Exportable)
		}
	}
	wantTags := []string{"tlp:amber", "ransomware", "needs, review", `schakel:priority="critical"`, `schakel:kind="notification"`,
		`schakel:sector="health"`, `schakel:sector="water"`} // the stale sector label is not carried
	if !slices.Equal(names, wantTags) {
		t.Errorf("event tags %q, want %q", names, wantTags)
	}
	if e.ThreatLevelID != "1" || e.Distribution != "1" || e.Date != "2026-11-20" || e.Timestamp != "1795255200" ||
		e.PublishTimestamp != e.Timestamp || !e.Published || e.Analysis != "2" {
		t.Errorf("event fields: %+v", e)
	}
	if e.Orgc.Name != testOrg.OrgName || e.Org.UUID != testOrg.OrgUUID {
		t.Errorf("orgs %+v %+v", e.Orgc, e.Org)
	}
	if len(e.EventReport) != 1 || e.EventReport[0].Content != ev.Description {
		t.Errorf("event report %+v", e.EventReport)
	}
	if e.UUID != uuidV5(eventNamespace, "NCSC-2026-0389") || !validUUID(e.UUID) {
		t.Errorf("event uuid %s is not the UUIDv5 of the id", e.UUID)
	}
}

// TestEncodeDecodeCanonical: canonical → MISP → canonical keeps what the
// canonical event says (MISP has no place for ASN on an address, CVSS and
// products, or the exact creation time).
func TestEncodeDecodeCanonical(t *testing.T) {
	ev := canonical()
	normalize.Event(ev)
	b, err := Encode(ev, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	evs, ferrs, err := Decode(b)
	if err != nil || len(ferrs) > 0 || len(evs) != 1 {
		t.Fatalf("decode: %v %v (%d events)", err, ferrs, len(evs))
	}
	got := evs[0]
	normalize.Event(got)
	if got.ID != eventUUID(ev.ID) || got.Title != ev.Title || got.TLP != ev.TLP || got.Kind != ev.Kind ||
		got.Priority != ev.Priority || got.Description != ev.Description || !got.Modified.Equal(ev.Modified) {
		t.Errorf("event fields changed:\n got %+v\nwant %+v", got, ev)
	}
	if got.Created.Format("2006-01-02") != ev.Created.Format("2006-01-02") {
		t.Errorf("created %s, want the day of %s", got.Created, ev.Created)
	}
	wantLabels := []string{"ransomware", "needs, review"}
	if !slices.Equal(got.Labels, wantLabels) {
		t.Errorf("labels %q, want %q", got.Labels, wantLabels)
	}
	// Sectors travel as schakel:sector tags, not as labels.
	if !slices.Equal(got.Sectors, ev.Sectors) || len(ev.Sectors) == 0 {
		t.Errorf("sectors %q, want %q", got.Sectors, ev.Sectors)
	}
	key := func(ind gateway.Indicator) string {
		return string(ind.Type) + " " + ind.Value + " " + itoa(ind.Port) + " " + boolStr(ind.Detect) + " " + ind.Comment
	}
	var want, have []string
	for _, ind := range ev.Indicators {
		if ind.Type != gateway.TypeCVE {
			want = append(want, key(ind))
		}
	}
	for _, ind := range got.Indicators {
		have = append(have, key(ind))
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(want, have) {
		t.Errorf("indicators differ:\n got %q\nwant %q", have, want)
	}
	var cves []string
	for _, v := range got.Vulnerabilities {
		cves = append(cves, v.CVE)
	}
	if !slices.Equal(cves, []string{"CVE-2026-12345", "CVE-2026-22222"}) {
		t.Errorf("vulnerabilities %q", cves)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func boolStr(b bool) string {
	if b {
		return "detect"
	}
	return "-"
}

func TestEncodeWire(t *testing.T) {
	b, err := Encode(canonical(), EncodeOptions{OrgName: "Schakel", OrgUUID: testOrg.OrgUUID})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`{"Event":{"uuid":"`, `"timestamp":"1795255200"`, `"threat_level_id":"1"`, `"analysis":"2"`,
		`"distribution":"1"`, `"attribute_count":"19"`, `"published":false`, `"publish_timestamp":"0"`,
		`{"name":"tlp:amber","colour":"#FFC000","exportable":true,"local":false}`, `"to_ids":true`,
		`"comment":"CVSS 9.8; Example VPN < 5.2"`, // no HTML escaping of <
		`"Object":[]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	if strings.Count(s, `"name":"tlp:`) != 1 {
		t.Errorf("output has %d tlp tags, want 1", strings.Count(s, `"name":"tlp:`))
	}
}

func TestEncodeTLP(t *testing.T) {
	tests := []struct {
		tlp  gateway.TLP
		dist string
		err  error
	}{
		{gateway.TLPClear, "3", nil},
		{gateway.TLPGreen, "2", nil},
		{gateway.TLPAmber, "1", nil},
		{gateway.TLPAmberStrict, "1", nil},
		{gateway.TLPRed, "", ErrRed},
	}
	for _, tt := range tests {
		t.Run(string(tt.tlp), func(t *testing.T) {
			ev := canonical()
			ev.TLP = tt.tlp
			e, err := EncodeEvent(ev, testOrg)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if e.Distribution != tt.dist || e.Tag[0].Name != tt.tlp.MachineTag() {
				t.Errorf("distribution %s tag %s, want %s %s", e.Distribution, e.Tag[0].Name, tt.dist, tt.tlp.MachineTag())
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*gateway.Event, *EncodeOptions)
		want string
	}{
		{"nil event", nil, "event is missing"},
		{"no tlp", func(e *gateway.Event, _ *EncodeOptions) { e.TLP = "" }, "tlp"},
		{"unknown tlp", func(e *gateway.Event, _ *EncodeOptions) { e.TLP = "WHITE" }, "tlp"},
		{"no id", func(e *gateway.Event, _ *EncodeOptions) { e.ID = " " }, "id is missing"},
		{"no title", func(e *gateway.Event, _ *EncodeOptions) { e.Title = "" }, "title is empty"},
		{"no times", func(e *gateway.Event, _ *EncodeOptions) { e.Created, e.Modified = time.Time{}, time.Time{} }, "modified is missing"},
		{"before 1970", func(e *gateway.Event, _ *EncodeOptions) { e.Modified = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "modified"},
		{"no org", func(_ *gateway.Event, o *EncodeOptions) { o.OrgName = "" }, "org name is missing"},
		{"bad org uuid", func(_ *gateway.Event, o *EncodeOptions) { o.OrgUUID = "schakel" }, "org uuid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, o := canonical(), testOrg
			if tt.edit == nil {
				ev = nil
			} else {
				tt.edit(ev, &o)
			}
			_, err := Encode(ev, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestEncodeUUIDs(t *testing.T) {
	const attrUUID = "57c4448b-454c-4d17-90d1-4d2f950d210f"
	tests := []struct {
		name, id, want string
	}{
		{"uuid v4 kept", "57C4445B-C548-4654-AF0B-4BE3950D210F", "57c4445b-c548-4654-af0b-4be3950d210f"},
		{"uuid v5 kept", "2bd9a5b6-8c36-5e4f-9b43-6b5e3c1f0a11", "2bd9a5b6-8c36-5e4f-9b43-6b5e3c1f0a11"},
		{"uuid v7 derived", "01890a5d-ac96-774b-bcce-b302099a8057", uuidV5(eventNamespace, "01890a5d-ac96-774b-bcce-b302099a8057")},
		{"bad variant derived", "57c4445b-c548-4654-cf0b-4be3950d210f", uuidV5(eventNamespace, "57c4445b-c548-4654-cf0b-4be3950d210f")},
		{"not a uuid derived", "NCSC-2026-0389", uuidV5(eventNamespace, "NCSC-2026-0389")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := canonical()
			ev.ID = tt.id
			ev.Vulnerabilities = nil
			ev.Indicators = []gateway.Indicator{
				{Type: "md5", Value: "0749bae92ca336a02c83d126e04ec628", Attributes: map[string]string{AttrUUID: attrUUID, AttrType: "md5"}},
				// Same misp_uuid again (a hand-edited event): the second
				// gets a derived one.
				{Type: "md5", Value: "0749bae92ca336a02c83d126e04ec629", Attributes: map[string]string{AttrUUID: attrUUID}},
				{Type: "md5", Value: "0749bae92ca336a02c83d126e04ec62a", Attributes: map[string]string{AttrUUID: "not-a-uuid"}},
				{Type: "md5", Value: "0749bae92ca336a02c83d126e04ec62b"},
			}
			e1, err := EncodeEvent(ev, testOrg)
			if err != nil {
				t.Fatal(err)
			}
			e2, _ := EncodeEvent(ev, testOrg)
			if e1.UUID != tt.want {
				t.Errorf("event uuid %s, want %s", e1.UUID, tt.want)
			}
			seen := map[string]bool{e1.UUID: true}
			for i, a := range e1.Attribute {
				if !validUUID(a.UUID) || seen[a.UUID] {
					t.Errorf("attribute %d uuid %s invalid or reused", i, a.UUID)
				}
				seen[a.UUID] = true
				if a.UUID != e2.Attribute[i].UUID {
					t.Errorf("attribute %d uuid not stable: %s then %s", i, a.UUID, e2.Attribute[i].UUID)
				}
			}
			if e1.Attribute[0].UUID != attrUUID {
				t.Errorf("misp_uuid not kept: %s", e1.Attribute[0].UUID)
			}
			if want := uuidV5(mustUUID(t, e1.UUID), "md5|0749bae92ca336a02c83d126e04ec62b|0"); e1.Attribute[3].UUID != want {
				t.Errorf("derived uuid %s, want UUIDv5(event, type|value|port) %s", e1.Attribute[3].UUID, want)
			}
		})
	}
}

func mustUUID(t *testing.T, s string) [16]byte {
	t.Helper()
	u, ok := parseUUID(s)
	if !ok {
		t.Fatalf("%s is not a uuid", s)
	}
	return u
}

// TestEncodeKeepsTypeOnlyWhenItFits: an original MISP type that no longer
// fits the indicator (its value changed type) gives way to the default, so
// MISP never gets a value its type validation rejects.
func TestEncodeKeepsTypeOnlyWhenItFits(t *testing.T) {
	tests := []struct {
		ind  gateway.Indicator
		typ  string
		val  string
		keep bool
	}{
		{gateway.Indicator{Type: "ipv4", Value: "192.0.2.1", Attributes: map[string]string{AttrType: "ip-src"}}, "ip-src", "192.0.2.1", true},
		{gateway.Indicator{Type: "ipv4", Value: "192.0.2.1", Port: 22, Attributes: map[string]string{AttrType: "ip-src"}}, "ip-src|port", "192.0.2.1|22", true},
		{gateway.Indicator{Type: "ipv4", Value: "192.0.2.1", Attributes: map[string]string{AttrType: "domain"}}, "ip-dst", "192.0.2.1", false},
		{gateway.Indicator{Type: "url", Value: "https://x.example/", Attributes: map[string]string{AttrType: "link", normalize.AttrOriginalType: "other"}}, "link", "https://x.example/", true},
		{gateway.Indicator{Type: "url", Value: "https://x.example/", Attributes: map[string]string{AttrType: "link"}}, "url", "https://x.example/", false},
		{gateway.Indicator{Type: "other", Value: "x", Attributes: map[string]string{AttrType: "no-such-type"}}, "text", "x", false},
		{gateway.Indicator{Type: "other", Value: "example.org", Attributes: map[string]string{AttrType: "domain|ip", AttrUUID: "57c4448b-454c-4d17-90d1-4d2f950d210f"}}, "text", "example.org", false},
		{gateway.Indicator{Type: "domain", Value: "example.org", Port: 443, Attributes: map[string]string{AttrType: "domain"}}, "hostname|port", "example.org|443", true},
		{gateway.Indicator{Type: "asn", Value: "AS174", ASN: 174}, "AS", "174", false},
		// Half of a domain|ip whose other half is gone: a plain domain.
		{gateway.Indicator{Type: "domain", Value: "example.org", Attributes: map[string]string{AttrType: "domain|ip", AttrUUID: "57c4448b-454c-4d17-90d1-4d2f950d210f"}}, "domain", "example.org", false},
		// The hash half of filename|md5 carries the file name itself.
		{gateway.Indicator{Type: "md5", Value: "0749bae92ca336a02c83d126e04ec628", Attributes: map[string]string{AttrType: "filename|md5", AttrFilename: "a.exe", AttrUUID: "57c4448b-454c-4d17-90d1-4d2f950d210f"}}, "filename|md5", "a.exe|0749bae92ca336a02c83d126e04ec628", true},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.val, func(t *testing.T) {
			ev := canonical()
			ev.Vulnerabilities = nil
			ev.Indicators = []gateway.Indicator{tt.ind}
			e, err := EncodeEvent(ev, testOrg)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Attribute) != 1 {
				t.Fatalf("%d attributes", len(e.Attribute))
			}
			a := e.Attribute[0]
			if a.Type != tt.typ || a.Value != tt.val {
				t.Errorf("got %s %q, want %s %q", a.Type, a.Value, tt.typ, tt.val)
			}
			// The attribute keeps its MISP identity even when its type
			// changes.
			if u := tt.ind.Attributes[AttrUUID]; u != "" && a.UUID != u {
				t.Errorf("uuid %s, want %s", a.UUID, u)
			}
			if wantCat := category(tt.typ); !tt.keep && a.Category != wantCat {
				t.Errorf("category %q, want the default %q", a.Category, wantCat)
			}
			checkCategories(t, e)
		})
	}
}

// BenchmarkEncode encodes a 10,000-attribute event (the size of one served
// part, connectors/misp.PartSize); the target is well under 100 ms.
func BenchmarkEncode(b *testing.B) {
	ev := bigEvent(b, 10_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(ev, testOrg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/event")
}

// TestEncodeManyRepeats: a value repeated by tens of thousands of MISP
// attributes without uuids is encoded in linear time with unique uuids.
func TestEncodeManyRepeats(t *testing.T) {
	const n = 30_000
	var b strings.Builder
	b.WriteString(`{"Event":{"uuid":"` + uuidA + `","info":"x","timestamp":"1795255200","Attribute":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"md5","value":"0749bae92ca336a02c83d126e04ec628"}`)
	}
	b.WriteString(`]}}`)
	evs, _, err := Decode([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	store(t, evs[0])
	if len(evs[0].Indicators) != 1 {
		t.Fatalf("%d indicators, want the repeats folded into 1", len(evs[0].Indicators))
	}
	start := time.Now()
	e, err := EncodeEvent(evs[0], testOrg)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("encoding took %s", d)
	}
	seen := map[string]bool{}
	for _, a := range e.Attribute {
		if seen[a.UUID] {
			t.Fatalf("uuid %s repeated", a.UUID)
		}
		seen[a.UUID] = true
	}
	if len(e.Attribute) != n {
		t.Errorf("%d attributes, want %d", len(e.Attribute), n)
	}
}
