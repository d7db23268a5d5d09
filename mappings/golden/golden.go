// Package golden compares a mapping's output with its golden file, the
// reviewed record of what Schakel makes of one input, and rewrites the file
// when a test runs with -update.
package golden

import (
	"bytes"
	"os"
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
