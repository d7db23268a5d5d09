package csaf_test

import (
	"os"
	"strings"
	"testing"

	"github.com/schakel/schakel/schemas/csaf"
)

// FuzzValidate: any input gives a sorted, duplicate-free list of errors and
// never a panic, including absurd numbers and deep nesting.
func FuzzValidate(f *testing.F) {
	for _, name := range []string{"ncsc-2026-0389.json", "cisa_va-24-262-01.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"document":{"csaf_version":"2.0"},"vulnerabilities":[{"scores":[{"cvss_v3":{"baseScore":1e308,"version":"3.1"}}]}]}`))
	f.Add([]byte(`{"document":{"tracking":{"current_release_date":"2026-13-45T99:99:99Z"}},"product_tree":{"branches":[{"branches":[{"branches":[]}]}]}}`))
	f.Add([]byte(`{"product_tree":{"branches":` + strings.Repeat(`[{"branches":`, 200) + `[]` + strings.Repeat(`}]`, 200) + `}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"document":{"a/b~c":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		errs := csaf.Validate(data)
		for i := 1; i < len(errs); i++ {
			c := csaf.ComparePointers(errs[i-1].Field, errs[i].Field)
			if c > 0 || (c == 0 && errs[i-1].Message >= errs[i].Message) {
				t.Fatalf("errors not sorted or duplicated: %q before %q", errs[i-1], errs[i])
			}
		}
		for _, e := range errs {
			if e.Message == "" {
				t.Fatalf("error without a message at %q", e.Field)
			}
		}
	})
}
