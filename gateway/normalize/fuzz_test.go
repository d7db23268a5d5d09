package normalize

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

func FuzzIndicator(f *testing.F) {
	seeds := []struct {
		typ gateway.IndicatorType
		v   string
	}{
		{"ipv4", "1.2.3[.]4"}, {"ipv4", "010.1.1.1"}, {"ipv6", "2001:DB8:0:0::1"},
		{"ipv6", "::ffff:1.2.3.4"}, {"cidr", "192.0.2.10/24"}, {"domain", "bücher.example"},
		{"domain", "EXAMPLE.COM."}, {"hostname", "r3---sn-abc"}, {"url", "hxxps://evil[.]example(.)com/x"},
		{"url", "http://[fe80::1%25eth0]:080/a"}, {"email", "user[@]example[.]com"},
		{"md5", "D41D8CD98F00B204E9800998ECF8427E"}, {"asn", "as1.10"}, {"cve", "cve-2026-12345"},
		{"filename", "invoice.pdf.exe"}, {"mutex", "Global\\x"}, {"other", "hxxp://x[.]y"},
		{"other", "::ffff:1.2.3.4"}, {"ja3", "e7d705a3286e19ea42f587b344ee6865"},
	}
	index := make(map[gateway.IndicatorType]uint8, len(gateway.IndicatorTypes))
	for i, t := range gateway.IndicatorTypes {
		index[t] = uint8(i)
	}
	for _, s := range seeds {
		f.Add(index[s.typ], s.v)
	}
	f.Fuzz(func(t *testing.T, ti uint8, v string) {
		typ := gateway.IndicatorTypes[int(ti)%len(gateway.IndicatorTypes)]
		got, err := Indicator(gateway.Indicator{Type: typ, Value: v})
		if err != nil {
			var ie *IndicatorError
			if !errors.As(err, &ie) || ie.Field != "value" || err.Error() == "" {
				t.Fatalf("Indicator(%s %q): error %#v, want a value IndicatorError with a message", typ, v, err)
			}
			return
		}
		if got.Value == "" || !utf8.ValidString(got.Value) || len(got.Value) > MaxValueBytes {
			t.Fatalf("Indicator(%s %q) = %q: empty, invalid UTF-8 or too long", typ, v, got.Value)
		}
		if !got.Type.Valid() {
			t.Fatalf("Indicator(%s %q) gave type %q", typ, v, got.Type)
		}
		again, err := Indicator(got)
		if err != nil {
			t.Fatalf("%s %q normalised to %s %q, which fails: %v", typ, v, got.Type, got.Value, err)
		}
		if again.Type != got.Type || again.Value != got.Value || again.ASN != got.ASN {
			t.Fatalf("not idempotent: %s %q → %s %q → %s %q", typ, v, got.Type, got.Value, again.Type, again.Value)
		}
	})
}

func FuzzRefang(f *testing.F) {
	for _, s := range []string{
		"hxxps[:]//evil[.]example(.)com/x", "user [at] example [dot] com", "<'\"x\"'>",
		"fxp://a", "hXXp[://]a{.}b", "\u201c1.2.3[.]4\u201d", "[[.].]", "a [.] [.] b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Refang(s)
		if again := Refang(r); again != r {
			t.Fatalf("not idempotent: %q → %q → %q", s, r, again)
		}
		if len(r) > len(s) {
			t.Fatalf("Refang(%q) = %q grew", s, r)
		}
		if utf8.ValidString(s) && !utf8.ValidString(r) {
			t.Fatalf("Refang(%q) = %q is not valid UTF-8", s, r)
		}
	})
}
