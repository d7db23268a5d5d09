package csaf_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/mappings/csaf"
	goldenfile "github.com/schakel/schakel/mappings/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden is what a golden file holds: the events as Schakel stores them
// (after normalize.Event), Decode's problems, and any the normaliser adds.
type golden struct {
	Events          []*gateway.Event     `json:"events"`
	Errors          []gateway.FieldError `json:"errors"`
	NormalizeErrors []gateway.FieldError `json:"normalize_errors"`
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.json")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			evs, errs, err := csaf.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			g := golden{Events: evs, Errors: errs}
			for _, ev := range evs {
				g.NormalizeErrors = append(g.NormalizeErrors, normalize.Event(ev)...)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // keep "<5.2.1" readable
			enc.SetIndent("", "  ")
			if err := enc.Encode(g); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := strings.TrimSuffix(in, ".json") + ".golden.json"
			goldenfile.Check(t, path, got, *update)
		})
	}
	if n < 4 {
		t.Fatalf("found %d golden inputs, want at least the 4 shared CSAF fixtures", n)
	}
}
