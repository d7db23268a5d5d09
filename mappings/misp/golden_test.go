package misp

import (
	"flag"
	"strconv"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/mappings/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenResult is what a golden file records for one input: the events as
// Schakel stores them (after normalize.Event), Decode's field errors and
// the normaliser's, the latter prefixed with the event's index.
type goldenResult struct {
	Error           string               `json:"error,omitempty"`
	Errors          []gateway.FieldError `json:"errors,omitempty"`
	Events          []*gateway.Event     `json:"events,omitempty"`
	NormalizeErrors []gateway.FieldError `json:"normalize_errors,omitempty"`
}

func decodeForGolden(data []byte) goldenResult {
	evs, errs, err := Decode(data)
	res := goldenResult{Errors: errs, Events: evs}
	if err != nil {
		res.Error = err.Error()
	}
	for i, ev := range evs {
		for _, fe := range normalize.Event(ev) {
			fe.Field = "/events/" + strconv.Itoa(i) + fe.Field
			res.NormalizeErrors = append(res.NormalizeErrors, fe)
		}
	}
	return res
}

func goldenInputs(t *testing.T) []string {
	t.Helper()
	return golden.Inputs(t, "testdata/golden/*.json")
}

func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/golden/*.json", *update, func(_ *testing.T, _ string, data []byte) any {
		return decodeForGolden(data)
	})
}
