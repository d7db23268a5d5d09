package assets

import (
	"net/netip"
	"reflect"
	"testing"
)

// The bench harness compares runs, so the synthetic registry must be the
// same for a seed, have the requested size and mix, and build cleanly.
func TestRandomConstituents(t *testing.T) {
	a := RandomConstituents(7, 50, 20000)
	if b := RandomConstituents(7, 50, 20000); !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different constituents")
	}
	if c := RandomConstituents(8, 50, 20000); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same constituents")
	}
	if len(a) != 50 {
		t.Fatalf("%d constituents, want 50", len(a))
	}
	v4, v6 := 0, 0
	for _, c := range a {
		for _, s := range c.Assets.Prefixes {
			p := netip.MustParsePrefix(s)
			if p.Addr().Is4() && p.Bits() >= 16 {
				v4++
			} else if p.Addr().Is6() && p.Bits() >= 32 && p.Bits() <= 64 {
				v6++
			} else {
				t.Fatalf("prefix %s outside the documented mix", s)
			}
		}
	}
	if v4+v6 != 20000 || v6 < 1500 || v6 > 2500 {
		t.Errorf("%d IPv4 and %d IPv6 prefixes, want 20000 in all, about a tenth IPv6", v4, v6)
	}
	m, err := Build(a)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if st := m.Stats(); st.Constituents != 50 || st.ASNs != 50 || st.Domains != 55 {
		t.Errorf("Stats = %+v", st)
	}
	if got := m.OwnersOfDomain("www.sub.c000000.example"); len(got) != 1 || got[0] != "c000049" {
		t.Errorf("nested synthetic domain owned by %v, want [c000049]", got)
	}
	if got := RandomAddrs(1, 10); len(got) != 10 || !got[0].Is4() || !got[1].Is6() {
		t.Errorf("RandomAddrs = %v, want alternating IPv4 and IPv6", got)
	}
}
