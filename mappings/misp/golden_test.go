package misp

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	all, err := filepath.Glob("testdata/golden/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".golden.json") {
			in = append(in, f)
		}
	}
	if len(in) == 0 {
		t.Fatal("no golden inputs")
	}
	return in
}

func TestGolden(t *testing.T) {
	for _, in := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(decodeForGolden(data), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := strings.TrimSuffix(in, ".json") + ".golden.json"
			golden.Check(t, path, got, *update)
		})
	}
}

// diffLines shows the first lines that differ, enough to see what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			continue
		}
		b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
		if shown++; shown == 10 {
			break
		}
	}
	return b.String()
}
