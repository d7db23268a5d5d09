package csaf

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"testing"
)

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha512Hex(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }

func FuzzParseChanges(f *testing.F) {
	f.Add([]byte(`"2026/ncsc-2026-0389.json","2026-09-24T09:14:33.175708+00:00"` + "\n"))
	if b, err := os.ReadFile("testdata/cisa_IT_white_changes.csv"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\"a,b\n,,,\n"))
	dir, _ := url.Parse("https://p.example/csaf/")
	f.Fuzz(func(t *testing.T, data []byte) {
		es, _ := parseChanges(data, dir)
		for _, e := range es {
			if e.URL == "" || e.Updated.IsZero() {
				t.Fatalf("entry without url or time: %+v", e)
			}
		}
	})
}

func FuzzParseROLIE(f *testing.F) {
	if b, err := os.ReadFile("testdata/cisa_IT_white_rolie_feed.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"feed":{"entry":[{"updated":"2024-01-01T00:00:00Z","link":[{"rel":"self","href":"a.json"}]}]}}`))
	base, _ := url.Parse("https://p.example/feed.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		es, _, err := parseROLIE(data, base, "")
		if err != nil && len(es) > 0 {
			t.Fatal("entries with an error")
		}
		for _, e := range es {
			if e.URL == "" || e.Updated.IsZero() {
				t.Fatalf("entry without url or time: %+v", e)
			}
		}
	})
}

func FuzzStrictJSON(f *testing.F) {
	if b, err := os.ReadFile("testdata/ncsc-2026-0389.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[[[[]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Never panics; whatever it accepts, encoding/json accepts too.
		if strictJSON(data) == nil && !jsonValid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}

func jsonValid(b []byte) bool { return json.Valid(b) }
