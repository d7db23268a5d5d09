package misp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	mispmap "github.com/schakel/schakel/mappings/misp"
)

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		in    string
		arg   string
		named map[string][]string
	}{
		{"", "", map[string][]string{}},
		{".json", "", map[string][]string{}},
		{"/5f0c7c1e-0000-4000-8000-000000000001.json", "5f0c7c1e-0000-4000-8000-000000000001", map[string][]string{}},
		{"/abc/deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1",
			"abc", map[string][]string{"deleted": {"0", "1"}, "excludeGalaxy": {"1"}, "includeEventCorrelations": {"0"},
				"includeFeedCorrelations": {"0"}, "includeWarninglistHits": {"0"}, "excludeLocalTags": {"1"}}},
		{"/all:1/timestamp:1700000000/limit:1000/page:1/deleted%5B%5D:0.json", "", map[string][]string{
			"all": {"1"}, "timestamp": {"1700000000"}, "limit": {"1000"}, "page": {"1"}, "deleted": {"0"}}},
		{"/metadata:1", "", map[string][]string{"metadata": {"1"}}},
	} {
		arg, named := splitPath(tc.in)
		if arg != tc.arg || !reflect.DeepEqual(named, tc.named) {
			t.Errorf("splitPath(%q) = %q %v, want %q %v", tc.in, arg, named, tc.arg, tc.named)
		}
	}
}

func TestParams(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p, err := parseParams([]byte(`{"request":{"tags":["tlp:clear","!tlp:red"],"limit":"10","to_ids":true,"timestamp":["5d","1799999000"],"value":"a|b"}}`),
		map[string][]string{"page": {"3"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := p.int("limit"); n != 10 {
		t.Errorf("limit %d", n)
	}
	if n, _ := p.int("page"); n != 3 {
		t.Errorf("named page %d", n)
	}
	if v, present, _ := p.bool("to_ids"); !v || !present {
		t.Errorf("to_ids %v %v", v, present)
	}
	if r, err := p.timeRange("timestamp", now); err != nil || r.from != now.Add(-5*24*time.Hour).Unix() || r.to != 1799999000 {
		t.Errorf("timestamp %+v %v", r, err)
	}
	if vals, _ := p.strings("value"); !reflect.DeepEqual(vals, []string{"a", "b"}) {
		t.Errorf("value %v", vals)
	}
	f, _ := p.tagFilter("tags")
	if !reflect.DeepEqual(f, tagFilter{or: []string{"tlp:clear"}, not: []string{"tlp:red"}}) {
		t.Errorf("tags %+v", f)
	}

	for _, tc := range []struct {
		body, key, says string
	}{
		{`[1,2]`, "", "body"},
		{`{"limit":"ten"}`, "limit", "limit"},
		{`{"limit":-1}`, "limit", "limit"},
		{`{"to_ids":"maybe"}`, "to_ids", "to_ids"},
		{`{"timestamp":"soon"}`, "timestamp", "timestamp"},
		{`{"timestamp":[1,2,3]}`, "timestamp", "timestamp"},
		{`{"tags":{"XOR":["a"]}}`, "tags", "tags"},
		{`{"value":{"a":1}}`, "value", "value"},
		{`{"timestamp":"99999999999999999999d"}`, "timestamp", "timestamp"},
	} {
		p, err := parseParams([]byte(tc.body), nil)
		if err == nil {
			switch tc.key {
			case "limit":
				_, err = p.int(tc.key)
			case "to_ids":
				_, _, err = p.bool(tc.key)
			case "timestamp":
				_, err = p.timeRange(tc.key, now)
			case "tags":
				_, err = p.tagFilter(tc.key)
			case "value":
				_, err = p.strings(tc.key)
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: error %v, want one naming %q", tc.body, err, tc.says)
		}
	}
}

func TestTagFilterAndLike(t *testing.T) {
	names := []string{"tlp:amber", "misp-galaxy:threat-actor=\"APT 1\""}
	for _, tc := range []struct {
		f    tagFilter
		want bool
	}{
		{tagFilter{}, true},
		{tagFilter{or: []string{"TLP:AMBER"}}, true},
		{tagFilter{or: []string{"tlp:clear", "tlp:green"}}, false},
		{tagFilter{not: []string{"tlp:amber"}}, false},
		{tagFilter{and: []string{"tlp:amber", "misp-galaxy:%"}}, true},
		{tagFilter{and: []string{"tlp:amber", "x"}}, false},
		{tagFilter{or: []string{"%apt 1%"}}, true},
	} {
		if got := tc.f.match(names); got != tc.want {
			t.Errorf("%+v.match = %v", tc.f, got)
		}
	}
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"abc", "ABC", true}, {"a%", "abc", true}, {"%c", "abc", true}, {"%b%", "abc", true},
		{"a%c", "ac", true}, {"a%a", "a", false}, {"%x%x", "x", false}, {"%x%x", "xx", true}, {"%", "", true}, {"a%b%c", "abbc", true},
	} {
		if got := like(tc.p, tc.s); got != tc.want {
			t.Errorf("like(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestPlanNeverSplitsObjects(t *testing.T) {
	obj := func(n int) mispmap.Object { return mispmap.Object{Attribute: make([]mispmap.Attribute, n)} }
	for _, tc := range []struct {
		attrs int
		objs  []int
		size  int
		want  []int
	}{
		{0, nil, 10, []int{0}},
		{10, nil, 10, []int{10}},
		{11, nil, 10, []int{10, 1}},
		{5, []int{4, 4}, 10, []int{9, 4}},
		{0, []int{25, 1}, 10, []int{25, 1}},
		{3, []int{0, 0}, 3, []int{3, 0}},
	} {
		e := &mispmap.Event{Attribute: make([]mispmap.Attribute, tc.attrs)}
		for _, n := range tc.objs {
			e.Object = append(e.Object, obj(n))
		}
		cuts := plan(e, tc.size)
		if got := sizes(cuts); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("plan(%d, %v, %d) = %v, want %v", tc.attrs, tc.objs, tc.size, got, tc.want)
		}
		total := 0
		for k := range cuts {
			p := part(e, cuts, k)
			total += len(p.Attribute)
			for _, o := range p.Object {
				total += len(o.Attribute)
			}
		}
		if want := tc.attrs + sum(tc.objs); total != want {
			t.Errorf("parts hold %d attributes, want %d", total, want)
		}
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestNumIDStable(t *testing.T) {
	seen := map[string]bool{}
	for i := range 100000 {
		n := numID(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
		if seen[n] || len(n) > 16 {
			t.Fatalf("numID collision or too long at %d: %s", i, n)
		}
		seen[n] = true
	}
	if numID("x") != numID("x") {
		t.Fatal("numID not stable")
	}
}

func FuzzParams(f *testing.F) {
	for _, s := range []struct{ body, path string }{
		{`{"minimal":1,"published":1,"tag":["tlp:clear","!tlp:red"],"org":["CIRCL|!x"],"timestamp":"1700000000"}`, ""},
		{`{"request":{"returnFormat":"json","value":"%.example","type":["ip-dst","!domain"],"last":"5d","limit":50000,"page":2}}`, "/page:3.json"},
		{`{"tags":{"OR":["a"],"AND":["b"],"NOT":["c"]},"to_ids":"1","published":true,"deleted":[0,1]}`, "/deleted[]:0/deleted[]:1"},
		{`{"timestamp":["1d","2000000000"],"datefrom":"2026-01-01","dateuntil":"2026-12-31","threatlevel":1}`, "/x:/:y"},
	} {
		f.Add([]byte(s.body), s.path)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		_, named := splitPath(path)
		p, err := parseParams(body, named)
		if err != nil {
			return
		}
		ef, err := eventFilterFrom(p, now, "tag", "tags")
		if err == nil {
			m := &meta{UUID: "00000000-0000-4000-8000-000000000001", TS: 1_700_000_000, Date: "2026-01-01",
				Tags: []mispmap.Tag{{Name: "tlp:clear"}}}
			ef.matchEvent(m, Org{Name: "o", UUID: "00000000-0000-4000-8000-000000000002"})
			ef.matchPart(m.UUID)
		}
		sf, err := searchFilterFrom(p, now, true)
		if err == nil {
			sf.matchAttr(&mispmap.Attribute{Type: "ip-dst|port", Value: "192.0.2.1|443", Tag: []mispmap.Tag{{Name: "x"}}}, []string{"tlp:clear"})
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("params from valid input do not marshal: %v", err)
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{
		`[{"id":"1","timestamp":"1700000000","sighting_timestamp":"0","published":true,"uuid":"5f0c7c1e-0000-4000-8000-000000000001","orgc_uuid":"x"}]`,
		`{"response":[{"Event":{"uuid":"A","timestamp":1700000000,"published":"0"}}]}`,
		`[{"uuid":"a","timestamp":"-1"},{"uuid":"b","timestamp":"9"}]`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseIndex(data)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.UUID == "" || e.UUID != strings.ToLower(e.UUID) {
				t.Fatalf("entry %+v: uuid must be set and lower-case", e)
			}
		}
	})
}

// perByteValid replaces each invalid UTF-8 byte with U+FFFD, as
// encoding/json does.
func perByteValid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\n\r\t", "hé €", "bad\xff\xfeutf8", "\u2028<script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, out, err)
		}
		if want := perByteValid(s); got != want {
			t.Fatalf("appendString(%q) reads back as %q, want %q", s, got, want)
		}
	})
}

func TestAppendAttributeIsJSON(t *testing.T) {
	a := &mispmap.Attribute{UUID: "u", Type: "text", Category: "Other", Value: "x\"y\n\xff", ToIDs: true, Comment: "c",
		Tag: []mispmap.Tag{{Name: `misp-galaxy:x="y"`, Colour: "#fff"}}}
	e := &mispmap.Event{UUID: "e", Info: "i <b>", Distribution: "3"}
	out := appendAttribute(nil, a, "1", "0", appendEventSummary(nil, e, "1"), "e", []mispmap.Tag{{Name: "tlp:clear"}})
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if got["value"] != "x\"y\n\ufffd" || got["event_uuid"] != "e" || got["object_relation"] != nil || len(got["Tag"].([]any)) != 2 {
		t.Errorf("attribute = %v", got)
	}
}

// PyMISP sends published and deleted as 0, 1 or [0, 1]; a list is both.
func TestParamsFlags(t *testing.T) {
	tests := []struct {
		raw             string
		zero, one, fail bool
	}{
		{`0`, true, false, false}, {`"1"`, false, true, false}, {`true`, false, true, false},
		{`[0,1]`, true, true, false}, {`["0","1"]`, true, true, false}, {`[1]`, false, true, false},
		{`[0,"x"]`, false, false, true}, {`{"a":1}`, false, false, true}, {`[[0]]`, false, false, true},
	}
	for _, tt := range tests {
		zero, one, present, err := params{"published": json.RawMessage(tt.raw)}.flags("published")
		if (err != nil) != tt.fail || (!tt.fail && (zero != tt.zero || one != tt.one || !present)) {
			t.Errorf("%s: zero=%v one=%v present=%v err=%v; want %v %v fail=%v", tt.raw, zero, one, present, err, tt.zero, tt.one, tt.fail)
		}
		if err != nil && !strings.Contains(err.Error(), "published") {
			t.Errorf("%s: error %q does not name the filter", tt.raw, err)
		}
	}
}
