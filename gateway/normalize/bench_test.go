package normalize

import (
	"testing"

	"github.com/schakel/schakel/gateway"
)

var benchIndicators = []struct {
	name string
	ind  gateway.Indicator
}{
	{"ipv4", gateway.Indicator{Type: "ipv4", Value: "192.0.2.10"}},
	{"ipv4_defanged", gateway.Indicator{Type: "ipv4", Value: "192.0.2[.]10"}},
	{"ipv6", gateway.Indicator{Type: "ipv6", Value: "2001:db8::1"}},
	{"ipv6_upper", gateway.Indicator{Type: "ipv6", Value: "2001:DB8:0:0::1"}},
	{"cidr", gateway.Indicator{Type: "cidr", Value: "192.0.2.0/24"}},
	{"md5", gateway.Indicator{Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e"}},
	{"sha256", gateway.Indicator{Type: "sha256", Value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
	{"sha256_upper", gateway.Indicator{Type: "sha256", Value: "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}},
	{"domain", gateway.Indicator{Type: "domain", Value: "evil.example.com"}},
	{"domain_idn", gateway.Indicator{Type: "domain", Value: "bücher.example"}},
	{"url", gateway.Indicator{Type: "url", Value: "https://evil.example.com/login?x=1"}},
	{"url_defanged", gateway.Indicator{Type: "url", Value: "hxxps://evil[.]example[.]com/login"}},
	{"email", gateway.Indicator{Type: "email", Value: "user@example.com"}},
	{"other", gateway.Indicator{Type: "other", Value: "192.0.2.10"}},
}

func BenchmarkIndicator(b *testing.B) {
	for _, bi := range benchIndicators {
		b.Run(bi.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Indicator(bi.ind); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("mix", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			for _, bi := range benchIndicators {
				if _, err := Indicator(bi.ind); err != nil {
					b.Fatal(err)
				}
			}
			n += len(benchIndicators)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/indicator")
	})
}
