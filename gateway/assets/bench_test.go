package assets

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// The benchmark registry: 10,000 constituents, 1,000,000 prefixes (~900k
// IPv4 /16–/32, ~100k IPv6 /32–/64), built once per process.
var (
	bench1MConstituents = sync.OnceValue(func() []gateway.Constituent {
		return RandomConstituents(1, 10000, 1000000)
	})
	bench1M = sync.OnceValues(func() (*Matcher, error) {
		return Build(bench1MConstituents())
	})
)

// ownedAddrs picks n addresses inside registered prefixes, as in a
// notification feed about the constituents' own networks.
func ownedAddrs(cs []gateway.Constituent, n int) []netip.Addr {
	r := rand.New(rand.NewPCG(3, 4))
	as := make([]netip.Addr, 0, n)
	for len(as) < n {
		ps := cs[r.IntN(len(cs))].Assets.Prefixes
		if len(ps) == 0 {
			continue
		}
		p := netip.MustParsePrefix(ps[r.IntN(len(ps))])
		b := p.Addr().AsSlice()
		for i := p.Bits(); i < len(b)*8; i++ {
			b[i/8] |= byte(r.IntN(2)) << (7 - i%8)
		}
		a, _ := netip.AddrFromSlice(b)
		as = append(as, a)
	}
	return as
}

func BenchmarkOwnersOfIP_1M(b *testing.B) {
	m, err := bench1M()
	if err != nil {
		b.Fatal(err)
	}
	all := RandomAddrs(2, 1<<16)
	var v4, v6 []netip.Addr
	for _, a := range all {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	for _, bc := range []struct {
		name  string
		addrs []netip.Addr
	}{{"mixed", all}, {"ipv4", v4}, {"ipv6", v6}, {"owned", ownedAddrs(bench1MConstituents(), 1<<16)}} {
		b.Run(bc.name, func(b *testing.B) {
			addrs := bc.addrs
			owned := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if m.OwnersOfIP(addrs[i%len(addrs)]) != nil {
					owned++
				}
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "lookups/s")
			b.ReportMetric(float64(owned)/float64(i), "hit-ratio")
		})
	}
}

func BenchmarkBuild_1M(b *testing.B) {
	cs := RandomConstituents(1, 10000, 1000000)
	b.ReportAllocs()
	var m *Matcher
	for b.Loop() {
		var err error
		if m, err = Build(cs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// The Matcher's own size: live heap with it minus live heap without.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	prefixes := m.Stats().Prefixes
	runtime.KeepAlive(m)
	m = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(with.HeapAlloc-without.HeapAlloc)/(1<<20), "matcher-MiB")
	b.ReportMetric(float64(prefixes), "prefixes")
	runtime.KeepAlive(cs)
}

func BenchmarkOwnersOfDomain(b *testing.B) {
	m, err := bench1M()
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, 4096)
	for i := range names {
		switch i % 4 {
		case 0:
			names[i] = fmt.Sprintf("www.c%06d.example", i)
		case 1:
			names[i] = fmt.Sprintf("a.b.sub.c%06d.example", i)
		case 2:
			names[i] = fmt.Sprintf("mail.notregistered-%d.nl", i)
		default:
			names[i] = fmt.Sprintf("c%06d.example", i)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.OwnersOfDomain(names[i%len(names)])
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "lookups/s")
}
