package csv_test

import (
	"flag"
	"path/filepath"
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
	n := goldenfile.Run(t, "testdata/golden/*.csv", *update, func(t *testing.T, path string, data []byte) any {
		ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: filepath.Base(path), Data: data})
		if err != nil {
			t.Fatalf("DecodeReport: %v", err)
		}
		return golden{Event: ev, Errors: errs, NormalizeErrors: normalize.Event(ev)}
	})
	if n < 4 {
		t.Fatalf("found %d golden inputs, want the 3 shared Shadowserver fixtures and the event report", n)
	}
}
