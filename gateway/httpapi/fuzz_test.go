package httpapi

import (
	"errors"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// FuzzDecodeCanonical: any body yields an event or a ValidationError naming
// fields, never a panic.
func FuzzDecodeCanonical(f *testing.F) {
	f.Add([]byte(`{"kind":"intel","title":"t","tlp":"AMBER","source":{"name":"s"},"indicators":[{"type":"ipv4","value":"192.0.2.1"}]}`))
	f.Add([]byte(`{"kind":"intel","title":"t","tlp":"YELLOW","source":{"name":"s"},"indicators":[{"type":"ipv4","value":"300.1.2.3"}]}`))
	f.Add([]byte(`{"kind":`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"kind":"notification","title":"x","source":{"name":"s"},"indicators":[{"type":"url","value":"hxxp://a[.]b/c","port":70000}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeCanonical(body)
		if err == nil {
			if ev == nil {
				t.Fatal("nil event without error")
			}
			return
		}
		var ve *gateway.ValidationError
		if !errors.As(err, &ve) || len(ve.Fields) == 0 {
			t.Fatalf("error without field details: %v", err)
		}
	})
}
