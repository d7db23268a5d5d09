package csv_test

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
	"github.com/schakel/schakel/mappings/csv"
	goldenfile "github.com/schakel/schakel/mappings/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden is what a golden file holds: the event as Schakel stores it
// (after normalize.Event), DecodeReport's problems, and any the normaliser
// adds.
type golden struct {
	Event           *gateway.Event       `json:"event"`
	Errors          []gateway.FieldError `json:"errors"`
	NormalizeErrors []gateway.FieldError `json:"normalize_errors"`
}

// Each testdata/golden/<name>.csv is decoded with the Shadowserver profile
// under its own file name.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 4 {
		t.Fatalf("found %d golden inputs, want the 3 shared Shadowserver fixtures and the event report", len(inputs))
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: name, Data: data})
			if err != nil {
				t.Fatalf("DecodeReport: %v", err)
			}
			g := golden{Event: ev, Errors: errs, NormalizeErrors: normalize.Event(ev)}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(g); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := strings.TrimSuffix(in, ".csv") + ".golden.json"
			goldenfile.Check(t, path, got, *update)
		})
	}
}
