package csaf

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 9, 24, 9, 14, 33, 175708000, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-09-24T09:14:33.175708+00:00", want, true}, // NCSC
		{"2026-09-24T09:14:33.175708Z", want, true},
		{"2026-09-24 09:14:33.175708", want, true},
		{"2026-09-24t09:14:33.175708z", want, true},
		{"2026-09-24T11:14:33.175708+0200", want, true},
		{" 2026-09-24T09:14:33.175708+00:00 ", want, true},
		{"2024-10-03T16:03:00.000Z", time.Date(2024, 10, 3, 16, 3, 0, 0, time.UTC), true}, // CISA
		{"2024-10-03T16:03", time.Date(2024, 10, 3, 16, 3, 0, 0, time.UTC), true},
		{"2024-10-03", time.Date(2024, 10, 3, 0, 0, 0, 0, time.UTC), true},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2024-13-03T16:03:00Z", time.Time{}, false},
		{"0001-01-01", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := ParseTime(tc.in)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseChanges(t *testing.T) {
	dir, _ := url.Parse("https://advisories.example/csaf/v2/")
	cisa, err := os.ReadFile("testdata/cisa_IT_white_changes.csv")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		in       string
		urls     []string
		problems int
	}{
		{"ncsc quoted with microseconds", `"2026/ncsc-2026-0389.json","2026-09-24T09:14:33.175708+00:00"` + "\n" + `"2026/ncsc-2026-0388.json","2026-09-23T09:14:33.175708+00:00"` + "\n",
			[]string{"https://advisories.example/csaf/v2/2026/ncsc-2026-0389.json", "https://advisories.example/csaf/v2/2026/ncsc-2026-0388.json"}, 0},
		{"cisa unquoted with ms and Z", string(cisa), []string{
			"https://advisories.example/csaf/v2/csaf_files/IT/white/2024/va-24-254-02.json",
			"https://advisories.example/csaf/v2/csaf_files/IT/white/2024/va-24-262-01.json",
			"https://advisories.example/csaf/v2/csaf_files/IT/white/2024/va-24-201-01.json",
			"https://advisories.example/csaf/v2/csaf_files/IT/white/2024/va-24-254-01.json"}, 0},
		{"bad lines skipped and reported", "a.json,not-a-time\nb.json\n\nc.json,2024-01-01T00:00:00Z\n\"d.json,2024\n",
			[]string{"https://advisories.example/csaf/v2/c.json"}, 3},
		{"crlf and blank lines", "a.json,2024-01-01T00:00:00Z\r\n\r\nb.json, 2024-01-02T00:00:00Z\r\n",
			[]string{"https://advisories.example/csaf/v2/a.json", "https://advisories.example/csaf/v2/b.json"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es, problems := parseChanges([]byte(tc.in), dir)
			var urls []string
			for _, e := range es {
				urls = append(urls, e.URL)
				if e.Updated.IsZero() {
					t.Errorf("%s: no time", e.URL)
				}
			}
			if strings.Join(urls, " ") != strings.Join(tc.urls, " ") || len(problems) != tc.problems {
				t.Errorf("urls %v problems %q; want %v and %d problems", urls, problems, tc.urls, tc.problems)
			}
			for _, p := range problems {
				if !strings.HasPrefix(p, "line ") {
					t.Errorf("problem %q does not name its line", p)
				}
			}
		})
	}
}

func TestParseROLIECISAFeed(t *testing.T) {
	data, err := os.ReadFile("testdata/cisa_IT_white_rolie_feed.json")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("https://www.cisa.gov/feed.json")
	es, problems, err := parseROLIE(data, base, gateway.TLPClear)
	if err != nil || len(problems) != 0 {
		t.Fatalf("%v %v", err, problems)
	}
	if len(es) == 0 {
		t.Fatal("no entries")
	}
	e := es[0]
	// CISA writes "ref": "hash" / "ref": "signature"; both are honoured.
	if !strings.HasSuffix(e.URL, "/va-24-254-02.json") || len(e.HashURLs) != 1 || !strings.HasSuffix(e.HashURLs[0], ".sha512") ||
		!strings.HasSuffix(e.SigURL, ".asc") || e.FeedTLP != gateway.TLPClear || !e.Updated.Equal(time.Date(2024, 10, 3, 16, 3, 0, 0, time.UTC)) {
		t.Errorf("first entry %+v", e)
	}
}

func TestParseROLIEProblems(t *testing.T) {
	base, _ := url.Parse("https://p.example/feed.json")
	feed := map[string]any{"feed": map[string]any{"entry": []any{
		map[string]any{"id": "no-link", "updated": "2024-01-01T00:00:00Z"},
		map[string]any{"id": "bad-time", "updated": "soon", "link": []any{map[string]any{"rel": "self", "href": "a.json"}}},
		map[string]any{"id": "ok", "updated": "2024-01-01T00:00:00Z", "content": map[string]any{"src": "b.json"}},
	}}}
	data, _ := json.Marshal(feed)
	es, problems, err := parseROLIE(data, base, "")
	if err != nil || len(es) != 1 || es[0].URL != "https://p.example/b.json" || len(problems) != 2 {
		t.Fatalf("entries %+v problems %v err %v", es, problems, err)
	}
	if !strings.HasPrefix(problems[0], "/feed/entry/0") || !strings.HasPrefix(problems[1], "/feed/entry/1/updated") {
		t.Errorf("problems do not name the entry: %v", problems)
	}
	if _, _, err := parseROLIE([]byte("{"), base, ""); err == nil {
		t.Error("broken feed accepted")
	}
}

func TestStrictJSON(t *testing.T) {
	cases := []struct {
		in   string
		want string // substring of the error; "" = valid
	}{
		{`{"a": [1, {"b": null}], "c": "d"}`, ""},
		{`{"a": 1, "a": 2}`, `(root): duplicate key "a"`},
		{`{"x": {"y~/": 1, "y~/": 2}}`, `/x: duplicate key`},
		{`{"a": 1} {"b": 2}`, "after the top-level value"},
		{`{"a": 1`, "invalid JSON"},
		{"{\"a\": \"\xff\"}", "UTF-8"},
		{strings.Repeat("[", 300) + strings.Repeat("]", 300), "nested deeper"},
		{``, "invalid JSON"},
	}
	for _, tc := range cases {
		err := strictJSON([]byte(tc.in))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("strictJSON(%.40q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestCheckHash(t *testing.T) {
	data := []byte("advisory")
	const s256 = "1d4bbde6b8e4ba9d8bf9e08aa1a5c8b1e2ef9c4d0a6c4b5e0c6c9d2f3c9b8a71" // not the digest
	cases := []struct {
		name, sidecar, url string
		ok                 bool
	}{
		{"sha256sum form, other digest", "b0a4cb1a5be4adc6b1d4c4d3a6b79bf74bc6e43ce6cd6c9eaea4c6a0e85f5d39  x.json\n", "x.json.sha256", false},
		{"wrong digest", s256 + "  x.json", "x.json.sha256", false},
		{"not hex", "zz  x.json", "x.json.sha256", false},
		{"empty", "", "x.json.sha512", false},
		{"wrong length", "abcd", "x.json.sha512", false},
	}
	for _, tc := range cases {
		if err := checkHash(data, []byte(tc.sidecar), tc.url); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The real digest in either file passes.
	if err := checkHash(data, []byte(sha256Hex(data)+"  x.json\n"), "x.json.sha256"); err != nil {
		t.Error(err)
	}
	if err := checkHash(data, []byte(strings.ToUpper(sha512Hex(data))), "x.json.sha512"); err != nil {
		t.Error(err)
	}
	// The CISA sidecar matches the CISA advisory.
	doc, _ := os.ReadFile("testdata/cisa_va-24-254-02.json")
	side, _ := os.ReadFile("testdata/cisa_va-24-254-02.json.sha512")
	if err := checkHash(doc, side, "va-24-254-02.json.sha512"); err != nil {
		t.Error(err)
	}
}

func TestMetadataURL(t *testing.T) {
	cases := map[string]string{
		"https://advisories.ncsc.nl":                                           "https://advisories.ncsc.nl/.well-known/csaf/provider-metadata.json",
		"https://advisories.ncsc.nl/":                                          "https://advisories.ncsc.nl/.well-known/csaf/provider-metadata.json",
		"http://mirror.internal:8080":                                          "http://mirror.internal:8080/.well-known/csaf/provider-metadata.json",
		"https://www.cisa.gov/sites/default/files/csaf/provider-metadata.json": "https://www.cisa.gov/sites/default/files/csaf/provider-metadata.json",
	}
	for in, want := range cases {
		u, err := MetadataURL(in)
		if err != nil || u.String() != want {
			t.Errorf("MetadataURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
}

func TestApplyFeedTLP(t *testing.T) {
	cases := []struct{ doc, feed, want gateway.TLP }{
		{gateway.TLPClear, "", gateway.TLPClear},
		{gateway.TLPClear, gateway.TLPAmber, gateway.TLPAmber},
		{gateway.TLPRed, gateway.TLPGreen, gateway.TLPRed},
		{"", gateway.TLPGreen, gateway.TLPGreen},
		{"", "", ""},
	}
	for _, tc := range cases {
		ev := &gateway.Event{TLP: tc.doc}
		applyFeedTLP(ev, tc.feed)
		if ev.TLP != tc.want {
			t.Errorf("document %q in feed %q: %q, want %q", tc.doc, tc.feed, ev.TLP, tc.want)
		}
	}
}
