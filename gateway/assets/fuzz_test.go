package assets

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// fuzzRegistry decodes fuzz bytes into up to four constituents. Addresses
// come from few top bits so prefixes nest and collide; prefixes are written
// unmasked and sometimes IPv4-mapped, and raw is added as a prefix and a
// domain so junk registry entries are exercised too.
func fuzzRegistry(data []byte, raw string) []gateway.Constituent {
	cs := make([]gateway.Constituent, 4)
	for i := range cs {
		cs[i].ID = fmt.Sprintf("c%d", i)
	}
	next := func(n int) []byte {
		if len(data) < n {
			data = append(data, make([]byte, n-len(data))...)
		}
		b := data[:n]
		data = data[n:]
		return b
	}
	labels := []string{"a", "b", "example", "nl", "shop", "A", "ba"}
	for len(data) > 0 {
		h := next(2)
		op, c := h[0], &cs[h[1]%4]
		switch op % 5 {
		case 0:
			b := next(3)
			a := netip.AddrFrom4([4]byte{10, b[0] & 3, b[1], b[2]})
			p := netip.PrefixFrom(a, int(op/5)%33)
			c.Assets.Prefixes = append(c.Assets.Prefixes, p.String())
		case 1:
			b := next(4)
			var a16 [16]byte
			copy(a16[:], []byte{0x20, 0x01, 0x0d, 0xb8, b[0] & 3, b[1], 0, 0, b[2], 0, 0, 0, 0, 0, 0, b[3]})
			p := netip.PrefixFrom(netip.AddrFrom16(a16), int(op/5)%129)
			c.Assets.Prefixes = append(c.Assets.Prefixes, p.String())
		case 2:
			b := next(3)
			a := netip.AddrFrom16(netip.AddrFrom4([4]byte{10, b[0] & 3, b[1], b[2]}).As16())
			c.Assets.Prefixes = append(c.Assets.Prefixes, netip.PrefixFrom(a, 96+int(op/5)%33).String())
		case 3:
			c.Assets.ASNs = append(c.Assets.ASNs, 64500+int64(op/5%4))
		case 4:
			b := next(3)
			d := labels[b[0]%7] + "." + labels[b[1]%7]
			if b[2]&1 == 1 {
				d = labels[b[2]>>1%7] + "." + d
			}
			if b[2]&2 == 2 {
				d = "*." + d
			}
			c.Assets.Domains = append(c.Assets.Domains, d)
		}
	}
	cs[0].Assets.Prefixes = append(cs[0].Assets.Prefixes, raw)
	cs[0].Assets.Domains = append(cs[0].Assets.Domains, raw)
	return cs
}

// FuzzOwners builds a Matcher from a random registry and checks Owners for
// a random indicator, and OwnersOfIP around every registered prefix, against
// the linear-scan reference. It also proves nothing panics on junk.
func FuzzOwners(f *testing.F) {
	f.Add([]byte{5 * 16, 0, 1, 2, 3, 1, 1, 0, 0, 0}, uint8(0), "10.1.2.3", int64(0))
	f.Add([]byte{5*24 + 0, 1, 1, 2, 0, 5*16 + 0, 2, 1, 0, 0}, uint8(2), "10.1.2.0/25", int64(0))
	f.Add([]byte{5*48 + 1, 0, 0, 0, 0, 0, 3, 1}, uint8(1), "2001:db8::1", int64(64500))
	f.Add([]byte{5*20 + 2, 3, 1, 2, 3}, uint8(1), "::ffff:10.1.2.3", int64(0))
	f.Add([]byte{4, 1, 2, 3, 3, 4, 2, 2, 0, 0}, uint8(3), "x.a.example", int64(0))
	f.Add([]byte{4, 1, 1, 0, 2}, uint8(5), "https://u@Shop.NL:443/p?q", int64(0))
	f.Add([]byte{4, 1, 1, 0, 2, 0, 0, 1, 2, 3}, uint8(6), "ciso@[10.1.2.3]", int64(0))
	f.Add([]byte{3, 2, 8, 1}, uint8(11), "as64501", int64(64500))
	f.Add([]byte{}, uint8(0), "0.0.0.0/0", int64(0))

	f.Fuzz(func(t *testing.T, data []byte, typ uint8, value string, asn int64) {
		if len(data) > 512 {
			return // keep each input cheap; size adds nothing the bytes do not
		}
		cs := fuzzRegistry(data, value)
		m, _ := Build(cs)
		ref := newReference(cs)

		ind := gateway.Indicator{Type: gateway.IndicatorTypes[int(typ)%len(gateway.IndicatorTypes)], Value: value, ASN: asn}
		got := m.Owners(&ind)
		if want, ok := ref.owners(ind); ok && !slices.Equal(got, want) {
			t.Fatalf("Owners(%s %q, asn %d) = %q, want %q", ind.Type, ind.Value, ind.ASN, got, want)
		}

		var probes []netip.Addr
		for _, e := range ref.prefixes {
			probes = append(probes, e.p.Addr(), e.p.Addr().Prev(), lastAddr(e.p), lastAddr(e.p).Next())
		}
		if a, err := netip.ParseAddr(value); err == nil {
			probes = append(probes, a)
		}
		if len(data) >= 4 {
			probes = append(probes, netip.AddrFrom4([4]byte{10, data[0] & 3, data[1], data[2]}))
		}
		for _, a := range probes {
			if !a.IsValid() {
				continue
			}
			if got, want := m.OwnersOfIP(a), ref.ip(a); !slices.Equal(got, want) {
				t.Fatalf("OwnersOfIP(%v) = %q, want %q", a, got, want)
			}
			q := netip.PrefixFrom(a.Unmap(), int(binary.BigEndian.Uint16(append(data, 0, 0)[:2]))%(a.Unmap().BitLen()+1))
			if got, want := m.OwnersOfPrefix(q), ref.cidr(q); !slices.Equal(got, want) {
				t.Fatalf("OwnersOfPrefix(%v) = %q, want %q", q, got, want)
			}
		}
	})
}
