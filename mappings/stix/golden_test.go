package stix

import (
	"flag"
	"strconv"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	goldenfile "github.com/schakel/schakel/mappings/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden is what a golden file records: the events as Schakel stores them
// (after normalize.Event), the mapper's FieldErrors and, per event, what
// normalisation rejected.
type golden struct {
	Events   []*gateway.Event                `json:"events"`
	Errors   []gateway.FieldError            `json:"errors,omitempty"`
	Rejected map[string][]gateway.FieldError `json:"rejected,omitempty"`
}

func decodeGolden(t *testing.T, data []byte) golden {
	t.Helper()
	events, errs, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	g := golden{Events: events, Errors: errs}
	if g.Events == nil {
		g.Events = []*gateway.Event{}
	}
	for i, ev := range events {
		if rej := normalize.Event(ev); len(rej) > 0 {
			if g.Rejected == nil {
				g.Rejected = map[string][]gateway.FieldError{}
			}
			g.Rejected[strconv.Itoa(i)] = rej
		}
	}
	return g
}

func TestGolden(t *testing.T) {
	n := goldenfile.Run(t, "testdata/golden/*.json", *update, func(t *testing.T, _ string, data []byte) any {
		return decodeGolden(t, data)
	})
	if n < 10 {
		t.Fatalf("found %d golden inputs, want at least 10", n)
	}
}
