package stix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSchemasCompileWithoutNetwork(t *testing.T) {
	// compile refuses every URL that is not embedded, so reaching this point
	// with all types means every $ref resolved locally.
	st := state()
	if st.err != nil {
		t.Fatal(st.err)
	}
	types := Types()
	for _, want := range []string{"indicator", "report", "grouping", "observed-data", "identity", "vulnerability",
		"marking-definition", "extension-definition", "relationship", "sighting", "ipv4-addr", "file", "network-traffic"} {
		found := false
		for _, got := range types {
			found = found || got == want
		}
		if !found {
			t.Errorf("no schema for %s (have %v)", want, types)
		}
	}
}

// TestFixturesValidate: the shared fixtures are valid STIX, object by
// object and as bundles (with groupings, which bundle.json alone rejects).
func TestFixturesValidate(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if errs := ValidateObject(data); errs != nil {
			t.Errorf("%s as a bundle: %v", f, errs)
		}
		var b struct{ Objects []json.RawMessage }
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		for i, o := range b.Objects {
			if errs := ValidateObject(o); errs != nil {
				t.Errorf("%s object %d: %v", f, i, errs)
			}
		}
	}
}

func TestValidateObject(t *testing.T) {
	indicator := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
		"created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z",
		"pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix","valid_from":"2016-01-01T00:00:00Z"}`
	tests := []struct {
		name string
		obj  string
		want []string // "pointer: message" substrings, in order; nil = valid
	}{
		{"valid indicator", indicator, nil},
		{"missing pattern and bad id", strings.Replace(strings.Replace(indicator, `"pattern":"[ipv4-addr:value = '192.0.2.1']",`, "", 1), "indicator--8e2e", "indicator--xe2e", 1),
			[]string{"/id: does not match", "/pattern: missing property \"pattern\""}},
		{"created without milliseconds", strings.Replace(indicator, `"created":"2016-04-06T20:03:48.000Z"`, `"created":"2016-04-06T20:03:48Z"`, 1),
			[]string{"/created: does not match"}},
		{"wrong type for labels", strings.Replace(indicator, `"pattern_type"`, `"labels":"x","pattern_type"`, 1),
			[]string{"/labels: "}},
		{"custom object checked against core only", `{"type":"x-acme-thing","spec_version":"2.1","id":"x-acme-thing--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
			"created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","x_acme":"anything"}`, nil},
		{"custom object missing core property", `{"type":"x-acme-thing","spec_version":"2.1","id":"x-acme-thing--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}`,
			[]string{"/created: missing property", "/modified: missing property"}},
		{"observable", `{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--74bacc73-b29e-50f3-9b10-6ed6fc0f18b4","value":"149.13.33.14"}`, nil},
		{"observable without value", `{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--74bacc73-b29e-50f3-9b10-6ed6fc0f18b4"}`,
			[]string{"/value: missing property"}},
		{"TLP 2.0 marking definition", `{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
			"created":"2022-10-01T00:00:00.000Z","name":"TLP:AMBER+STRICT","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":
			{"extension_type":"property-extension","tlp_2_0":"amber+strict"}}}`, nil},
		{"bundle reports objects under their index", `{"type":"bundle","id":"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","objects":[` + indicator + `,{"type":"grouping"}]}`,
			[]string{"/objects/1/context: missing", "/objects/1/created: missing"}},
		{"bundle objects not an array", `{"type":"bundle","id":"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","objects":{}}`, []string{"/objects: must be an array"}},
		{"not JSON", `{"type":`, []string{"invalid JSON"}},
		{"trailing data", indicator + ` {}`, []string{"unexpected data after the object"}},
		{"not an object", `["indicator"]`, []string{"must be a JSON object"}},
		{"absurd number", `{"type":"x-a","n":1e999999999}`, []string{"/n: number is malformed or out of range"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateObject([]byte(tc.obj))
			if tc.want == nil {
				if errs != nil {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("want errors %q, got none", tc.want)
			}
			all := make([]string, len(errs))
			for i, e := range errs {
				all[i] = e.Error()
			}
			joined := strings.Join(all, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("missing %q in:\n%s", w, joined)
				}
			}
		})
	}
}

func TestErrorsAreSortedAndUnique(t *testing.T) {
	errs := ValidateObject([]byte(`{"type":"indicator","id":"bad","created":"x","modified":"x"}`))
	for i := 1; i < len(errs); i++ {
		if errs[i].Field < errs[i-1].Field {
			t.Errorf("not sorted: %v", errs)
		}
		for j := 0; j < i; j++ {
			if errs[i] == errs[j] {
				t.Errorf("repeated %v", errs[i])
			}
		}
	}
}

func FuzzValidateObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"type":"bundle","objects":[{"type":"file"}]}`, `{"type":"marking-definition"}`, `[1e400]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, e := range ValidateObject(data) {
			if e.Message == "" {
				t.Fatalf("error without message: %+v", e)
			}
			if e.Field != "" && e.Field[0] != '/' {
				t.Fatalf("pointer %q is not a JSON pointer", e.Field)
			}
		}
	})
}
