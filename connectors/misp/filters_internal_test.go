package misp

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeListsKnownFilters keeps README's MISP filter table in step
// with knownFilters: every filter and its refusals appear there.
func TestReadmeListsKnownFilters(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range knownFilters {
		if !strings.Contains(readme, "`"+k.key+"`") {
			t.Errorf("README's MISP filter table does not list %s", k.key)
		}
	}
}

func TestIsSet(t *testing.T) {
	for raw, want := range map[string]bool{
		``: false, `null`: false, `0`: false, `"0"`: false, `false`: false, `[]`: false, `""`: false,
		`1`: true, `"x"`: true, `[0]`: true, `true`: true,
	} {
		if got := isSet([]byte(raw)); got != want {
			t.Errorf("isSet(%s) = %v, want %v", raw, got, want)
		}
	}
}
