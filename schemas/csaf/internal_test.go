package csaf

import (
	"io"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// The schema and every schema it refers to must come from the embedded
// files: the library's default loader (which would use the network) is
// replaced by one that fails the test.
func TestCompileUsesNoNetwork(t *testing.T) {
	saved := jsonschema.LoadURL
	t.Cleanup(func() { jsonschema.LoadURL = saved })
	jsonschema.LoadURL = func(s string) (io.ReadCloser, error) {
		t.Errorf("default loader asked for %s", s)
		return nil, io.EOF
	}
	st := compile()
	if st.err != nil {
		t.Fatal(st.err)
	}
	if st.schema == nil {
		t.Fatal("no schema compiled")
	}
	if st.err21 != nil || st.schema21 == nil {
		t.Fatalf("CSAF 2.1 schema: %v", st.err21)
	}
}

func TestLoadEmbedded(t *testing.T) {
	for u := range resources {
		rc, err := loadEmbedded(u + "#/definitions/x")
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		rc.Close()
	}
	for _, u := range []string{"https://www.first.org/cvss/cvss-v5.0.json", "http://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json", "file:///etc/passwd"} {
		if _, err := loadEmbedded(u); err == nil || !strings.Contains(err.Error(), "only embedded schemas") {
			t.Errorf("loadEmbedded(%s) = %v, want a refusal", u, err)
		}
	}
}
