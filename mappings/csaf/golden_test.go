package csaf_test

import (
	"flag"
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
	n := goldenfile.Run(t, "testdata/golden/*.json", *update, func(t *testing.T, _ string, data []byte) any {
		evs, errs, err := csaf.Decode(data)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		g := golden{Events: evs, Errors: errs}
		for _, ev := range evs {
			g.NormalizeErrors = append(g.NormalizeErrors, normalize.Event(ev)...)
		}
		return g
	})
	if n < 4 {
		t.Fatalf("found %d golden inputs, want at least the 4 shared CSAF fixtures", n)
	}
}
