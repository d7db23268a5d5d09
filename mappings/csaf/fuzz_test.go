package csaf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/mappings/csaf"
	csafschema "github.com/schakel/schakel/schemas/csaf"
)

// FuzzDecode: any input either fails as a whole or gives exactly one
// advisory that the pipeline's normaliser accepts without complaint, with
// problems sorted by pointer. It never panics.
func FuzzDecode(f *testing.F) {
	inputs, err := filepath.Glob("testdata/golden/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"document":{"distribution":{"text":"TLP v2.0: TLP:AMBER+STRICT","tlp":{"label":"white"}},"notes":[{"title":"Kans","text":"h"},{"title":"Schade","text":"hoog"}]},"vulnerabilities":[{"cve":"CVE-2026-1234","scores":[{"cvss_v3":{"baseScore":-1}}],"product_status":{"known_affected":["x"]}}]}`))
	f.Add([]byte(`{"document":{"csaf_version":"2.1","title":" ","tracking":{"id":"","current_release_date":"9999-12-31T23:59:59.999999999-23:59"}}}`))
	f.Add([]byte(`{"document":{},"product_tree":{"branches":[{"branches":[{"branches":[{"product":{"product_id":"a"}}]}]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, errs, err := csaf.Decode(data)
		if err != nil {
			if evs != nil || errs != nil {
				t.Fatalf("error %v came with events or problems", err)
			}
			return
		}
		if len(evs) != 1 {
			t.Fatalf("%d events, want 1", len(evs))
		}
		for i := 1; i < len(errs); i++ {
			if csafschema.ComparePointers(errs[i-1].Field, errs[i].Field) > 0 {
				t.Fatalf("problems not sorted: %v before %v", errs[i-1], errs[i])
			}
		}
		ev := evs[0]
		if ev.Kind != gateway.KindAdvisory || ev.Source.Format != csaf.Format {
			t.Fatalf("kind %q format %q", ev.Kind, ev.Source.Format)
		}
		if nerrs := normalize.Event(ev); nerrs != nil {
			t.Fatalf("the normaliser rejects the mapped event: %v", nerrs)
		}
		if ev.TLP != "" && !ev.TLP.Valid() {
			t.Fatalf("TLP %q", ev.TLP)
		}
	})
}
