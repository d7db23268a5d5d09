// Package golden compares a mapping's output with its golden file, the
// reviewed record of what Schakel makes of one input, and rewrites the file
// when a test runs with -update.
package golden

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Check compares got with the file at path, or writes got there when
// update is set (the caller's -update flag).
func Check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (check it, then go test -update rewrites it):\n%s", path, got)
	}
}

// Inputs lists the files matching pattern that are not outputs
// (*.golden.json), failing the test when there are none.
func Inputs(t testing.TB, pattern string) []string {
	t.Helper()
	all, err := filepath.Glob(pattern)
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
		t.Fatalf("no golden inputs match %s", pattern)
	}
	return in
}

// Run checks every input matching pattern in a subtest: decode's result,
// as indented JSON (HTML characters kept readable), against the input's
// twin "<name>.golden.json". It returns how many inputs it checked, so a
// caller can insist on its fixtures being there.
func Run(t *testing.T, pattern string, update bool, decode func(t *testing.T, path string, data []byte) any) int {
	t.Helper()
	inputs := Inputs(t, pattern)
	for _, in := range inputs {
		base := strings.TrimSuffix(in, filepath.Ext(in))
		t.Run(filepath.Base(base), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(decode(t, in, data)); err != nil {
				t.Fatal(err)
			}
			Check(t, base+".golden.json", buf.Bytes(), update)
		})
	}
	return len(inputs)
}
