package assets

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/schakel/schakel/gateway"
)

// Synthetic registries for benchmarks and tests. The shape follows what a
// national CSIRT sees: about nine in ten prefixes IPv4 between /16 and /32,
// the rest IPv6 between /32 and /64 inside the few /12s the RIRs hand out,
// so nesting (an ISP block holding customer blocks) occurs naturally.

// v6Blocks are the top 16 bits synthetic IPv6 prefixes and addresses use:
// a skewed, realistic spread rather than the whole 2000::/3.
var v6Blocks = func() []uint16 {
	bs := []uint16{0x2001, 0x2003}
	for _, base := range []uint16{0x2400, 0x2600, 0x2800, 0x2a00, 0x2a10} {
		for i := range uint16(16) {
			bs = append(bs, base+i)
		}
	}
	return append(bs, 0x2c0f)
}()

// RandomConstituents makes n constituents owning prefixes in total,
// deterministic for seed; for benchmarks and tests. Constituent i has id
// "c%06d", one private ASN (4200000000+i) and the domain "<id>.example";
// every tenth also owns "sub.<next id>.example", nested in another's.
func RandomConstituents(seed int64, n, prefixes int) []gateway.Constituent {
	if n <= 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x5343484b4c))
	cs := make([]gateway.Constituent, n)
	for i := range cs {
		id := fmt.Sprintf("c%06d", i)
		cs[i] = gateway.Constituent{
			ID:   id,
			Name: "Constituent " + id,
			Assets: gateway.Assets{
				ASNs:    []int64{4200000000 + int64(i)},
				Domains: []string{id + ".example"},
			},
		}
		if i%10 == 9 {
			cs[i].Assets.Domains = append(cs[i].Assets.Domains, fmt.Sprintf("sub.c%06d.example", (i+1)%n))
		}
	}
	for range prefixes {
		c := &cs[r.IntN(n)]
		c.Assets.Prefixes = append(c.Assets.Prefixes, randomPrefix(r).String())
	}
	return cs
}

func randomPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(10) < 9 {
		return netip.PrefixFrom(randomAddr4(r), 16+r.IntN(17)).Masked()
	}
	return netip.PrefixFrom(randomAddr6(r), 32+r.IntN(33)).Masked()
}

// RandomAddrs makes n lookup addresses, deterministic for seed: half IPv4
// drawn from all unicast space (1.0.0.0 to 223.255.255.255), half IPv6 from
// the same /16s RandomConstituents uses.
func RandomAddrs(seed int64, n int) []netip.Addr {
	r := rand.New(rand.NewPCG(uint64(seed), 0x4144445253))
	as := make([]netip.Addr, n)
	for i := range as {
		if i%2 == 0 {
			as[i] = randomAddr4(r)
		} else {
			as[i] = randomAddr6(r)
		}
	}
	return as
}

func randomAddr4(r *rand.Rand) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 1<<24+r.Uint32N(223<<24))
	return netip.AddrFrom4(b)
}

func randomAddr6(r *rand.Rand) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(v6Blocks[r.IntN(len(v6Blocks))])<<48|r.Uint64()>>16)
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	return netip.AddrFrom16(b)
}
