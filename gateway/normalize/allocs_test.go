//go:build !race

// The race detector changes allocation counts, so this runs only without it.

package normalize

import (
	"testing"

	"github.com/schakel/schakel/gateway"
)

// Feeds carry millions of IPs and hashes; normalising one must not cost more
// than one allocation (none when the value is already canonical).
func TestIndicatorAllocs(t *testing.T) {
	tests := []struct {
		ind gateway.Indicator
		max float64
	}{
		{gateway.Indicator{Type: "ipv4", Value: "192.0.2.10"}, 0},
		{gateway.Indicator{Type: "ipv4", Value: "192.0.2[.]10"}, 1},
		{gateway.Indicator{Type: "ipv6", Value: "2001:db8::1"}, 0},
		{gateway.Indicator{Type: "ipv6", Value: "2001:DB8:0:0::1"}, 1},
		{gateway.Indicator{Type: "cidr", Value: "192.0.2.10/24"}, 1},
		{gateway.Indicator{Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e"}, 0},
		{gateway.Indicator{Type: "sha256", Value: "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}, 1},
		{gateway.Indicator{Type: "domain", Value: "evil.example.com"}, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.ind.Type)+" "+tt.ind.Value, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				if _, err := Indicator(tt.ind); err != nil {
					t.Fatal(err)
				}
			})
			if got > tt.max {
				t.Errorf("%v allocations, want at most %v", got, tt.max)
			}
		})
	}
}
