package assets

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// reference answers the same questions as Matcher by scanning every entry,
// written for obviousness rather than speed, from the rules in the brief.
type reference struct {
	prefixes []refPrefix
	asns     map[int64][]string
	domains  []refDomain
}

type refPrefix struct {
	p     netip.Prefix
	owner string
}

type refDomain struct {
	d     string
	owner string
}

func newReference(cs []gateway.Constituent) *reference {
	r := &reference{asns: map[int64][]string{}}
	for _, c := range cs {
		if c.ID == "" {
			continue
		}
		for _, s := range c.Assets.Prefixes {
			if p, ok := refParsePrefix(s); ok {
				r.prefixes = append(r.prefixes, refPrefix{p, c.ID})
			}
		}
		for _, a := range c.Assets.ASNs {
			if a >= 1 && a <= 1<<32-1 {
				r.asns[a] = append(r.asns[a], c.ID)
			}
		}
		for _, s := range c.Assets.Domains {
			d := refLower(strings.TrimSpace(s))
			d = strings.TrimPrefix(d, "*.")
			d = strings.TrimPrefix(d, ".")
			d = strings.TrimSuffix(d, ".")
			if len(d) <= 253 && refDomainRE.MatchString(d) {
				r.domains = append(r.domains, refDomain{d, c.ID})
			}
		}
	}
	return r
}

// refDomainRE is a registrable name of two or more ASCII labels.
var refDomainRE = regexp.MustCompile(`^([a-z0-9_-]{1,63}\.)+[a-z0-9_-]{1,63}$`)

// refLower folds ASCII only, as the Matcher promises.
func refLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func refParsePrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), p.Bits() > 0
}

func finish(owners []string) []string {
	if len(owners) == 0 {
		return nil
	}
	slices.Sort(owners)
	return slices.Compact(owners)
}

// The scans below are the oracle's hot loops: single-goroutine reads of
// test data, where the race detector finds nothing and multiplies the cost.
//
//go:norace
func (r *reference) ip(a netip.Addr) []string {
	a = a.Unmap().WithZone("")
	best := -1
	var owners []string
	for _, e := range r.prefixes {
		if !e.p.Contains(a) || e.p.Bits() < best {
			continue
		}
		if e.p.Bits() > best {
			best, owners = e.p.Bits(), nil
		}
		owners = append(owners, e.owner)
	}
	return finish(owners)
}

//go:norace
func (r *reference) cidr(q netip.Prefix) []string {
	if q.Addr().Is4In6() && q.Bits() >= 96 {
		q = netip.PrefixFrom(q.Addr().Unmap(), q.Bits()-96)
	}
	q = q.Masked()
	best := -1
	var owners []string
	for _, e := range r.prefixes {
		if e.p.Bits() > q.Bits() || !e.p.Contains(q.Addr()) || e.p.Bits() < best {
			continue
		}
		if e.p.Bits() > best {
			best, owners = e.p.Bits(), nil
		}
		owners = append(owners, e.owner)
	}
	return finish(owners)
}

func (r *reference) asn(a int64) []string {
	return finish(slices.Clone(r.asns[a]))
}

//go:norace
func (r *reference) domain(name string) []string {
	name = refLower(strings.TrimSuffix(name, "."))
	best := -1
	var owners []string
	for _, e := range r.domains {
		if name != e.d && !strings.HasSuffix(name, "."+e.d) || len(e.d) < best {
			continue
		}
		if len(e.d) > best {
			best, owners = len(e.d), nil
		}
		owners = append(owners, e.owner)
	}
	return finish(owners)
}

// owners applies the per-type rules; ok is false where the reference has
// no independent answer (a URL net/url cannot read), so callers skip it.
func (r *reference) owners(ind gateway.Indicator) (owners []string, ok bool) {
	ipOrASN := func(a netip.Addr, asn int64) []string {
		if o := r.ip(a); o != nil {
			return o
		}
		return r.asn(asn)
	}
	switch ind.Type {
	case gateway.TypeIPv4, gateway.TypeIPv6:
		a, err := netip.ParseAddr(ind.Value)
		if err != nil {
			return r.asn(ind.ASN), true
		}
		return ipOrASN(a, ind.ASN), true
	case gateway.TypeCIDR:
		q, err := netip.ParsePrefix(ind.Value)
		if err != nil {
			a, err := netip.ParseAddr(ind.Value)
			if err != nil {
				return nil, true
			}
			q = netip.PrefixFrom(a.WithZone(""), a.BitLen())
		}
		return r.cidr(q), true
	case gateway.TypeDomain, gateway.TypeHostname:
		return r.domain(ind.Value), true
	case gateway.TypeURL:
		if strings.ContainsAny(ind.Value, "\\%") {
			return nil, false
		}
		u, err := url.Parse(ind.Value)
		if err != nil || u.Host == "" || u.Opaque != "" {
			return nil, false
		}
		if !strings.HasPrefix(u.Host, "[") && strings.Count(u.Host, ":") > 1 {
			return nil, false // unbracketed IPv6: net/url splits off a "port"
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			return ipOrASN(a, ind.ASN), true
		}
		return r.domain(host), true
	case gateway.TypeEmail:
		at := strings.LastIndex(ind.Value, "@")
		if at < 0 {
			return nil, true
		}
		host := ind.Value[at+1:]
		lit := host
		if strings.HasPrefix(lit, "[") && strings.HasSuffix(lit, "]") && len(lit) >= 2 {
			lit = lit[1 : len(lit)-1]
		}
		if len(lit) > 5 && strings.EqualFold(lit[:5], "ipv6:") {
			lit = lit[5:]
		}
		if a, err := netip.ParseAddr(lit); err == nil {
			return r.ip(a), true
		}
		return r.domain(host), true
	case gateway.TypeASN:
		if a, ok := refParseASN(ind.Value); ok {
			return r.asn(a), true
		}
		return r.asn(ind.ASN), true
	}
	return nil, true
}

func refParseASN(s string) (int64, bool) {
	if len(s) >= 2 && strings.EqualFold(s[:2], "as") {
		s = s[2:]
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	if hi, lo, ok := strings.Cut(s, "."); ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil || h<<16|l == 0 {
			return 0, false
		}
		return int64(h<<16 | l), true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return int64(n), err == nil && n != 0
}

// randomAddrNear returns an address inside a registered prefix (or, with
// some chance, just outside one) so random tests exercise the boundaries
// rather than mostly empty space.
func randomAddrNear(r *rand.Rand, ps []refPrefix) netip.Addr {
	p := ps[r.IntN(len(ps))].p
	b := p.Addr().AsSlice()
	// Randomise the host bits.
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	switch r.IntN(8) {
	case 0: // first address after the prefix
		a = lastAddr(p).Next()
	case 1:
		a = p.Addr().Prev()
	case 2:
		a = lastAddr(p)
	case 3:
		a = p.Addr()
	}
	if !a.IsValid() {
		a = p.Addr()
	}
	if a.Is4() && r.IntN(10) == 0 {
		a = netip.AddrFrom16(a.As16()) // IPv4-mapped form
	}
	return a
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestOwnersMatchesReference compares Owners with the linear scan on 5,000
// random, heavily nested prefixes (plus random domains and ASNs) for 50,000
// addresses, as many cidr ranges, and 10,000 domain and ASN indicators.
func TestOwnersMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cs := make([]gateway.Constituent, 300)
	for i := range cs {
		cs[i].ID = fmt.Sprintf("c%03d", i)
	}
	// Few distinct top bits so prefixes nest and collide: IPv4 in 10/8 and
	// 172.16/12, IPv6 in 2001:db8::/32, with some exact duplicates.
	var made []string
	for range 5000 {
		var p netip.Prefix
		switch k := r.IntN(20); {
		case k == 0 && len(made) > 0:
			c := &cs[r.IntN(len(cs))]
			c.Assets.Prefixes = append(c.Assets.Prefixes, made[r.IntN(len(made))])
			continue
		case k < 14:
			a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
			p = netip.PrefixFrom(a, 8+r.IntN(25))
		case k < 16:
			a := netip.AddrFrom4([4]byte{172, 16 | byte(r.IntN(16)), byte(r.IntN(256)), byte(r.IntN(256))})
			p = netip.PrefixFrom(a, 12+r.IntN(21))
		case k < 18:
			var b [16]byte
			copy(b[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(r.IntN(4))})
			for i := 6; i < 16; i++ {
				b[i] = byte(r.IntN(256))
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), 32+r.IntN(97))
		default:
			// Hundreds of ranges inside one /64, below the trie's last split.
			var b [16]byte
			copy(b[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 1})
			for i := 8; i < 16; i++ {
				b[i] = byte(r.IntN(256))
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), 64+r.IntN(65))
		}
		s := p.String() // often not masked: Build must mask
		made = append(made, s)
		c := &cs[r.IntN(len(cs))]
		c.Assets.Prefixes = append(c.Assets.Prefixes, s)
	}
	for i := range cs {
		for range r.IntN(3) {
			if d := randomName(r, 3); strings.Contains(d, ".") {
				cs[i].Assets.Domains = append(cs[i].Assets.Domains, d)
			}
		}
		if r.IntN(10) == 0 {
			cs[i].Assets.ASNs = append(cs[i].Assets.ASNs, 64500+r.Int64N(8))
		}
	}
	m, err := Build(cs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ref := newReference(cs)

	queries := 50000
	if raceDetector {
		queries = 5000
	}
	hits, misses := map[gateway.IndicatorType]int{}, map[gateway.IndicatorType]int{}
	check := func(ind gateway.Indicator) {
		t.Helper()
		want, _ := ref.owners(ind)
		if got := m.Owners(&ind); !slices.Equal(got, want) {
			t.Fatalf("Owners(%s %q, asn %d) = %q, want %q", ind.Type, ind.Value, ind.ASN, got, want)
		}
		if want != nil {
			hits[ind.Type]++
		} else {
			misses[ind.Type]++
		}
	}
	// A comparison that only ever sees nil proves nothing.
	defer func() {
		for _, typ := range []gateway.IndicatorType{"ipv4", "ipv6", "cidr", "domain", "asn"} {
			if hits[typ] == 0 || misses[typ] == 0 {
				t.Errorf("%s: %d owned and %d unowned answers; want both", typ, hits[typ], misses[typ])
			}
		}
		t.Logf("owned/unowned answers: %v / %v", hits, misses)
	}()
	for i := range queries {
		var a netip.Addr
		if i%5 == 0 {
			a = randomAddr4(r) // mostly unowned space
		} else {
			a = randomAddrNear(r, ref.prefixes)
		}
		typ := gateway.TypeIPv4
		if !a.Unmap().Is4() {
			typ = gateway.TypeIPv6
		}
		var asn int64
		if i%3 == 0 {
			asn = 64500 + r.Int64N(16) // fallback when no prefix matches
		}
		check(gateway.Indicator{Type: typ, Value: a.String(), ASN: asn})
		q := netip.PrefixFrom(a.Unmap(), r.IntN(a.Unmap().BitLen()+1))
		check(gateway.Indicator{Type: gateway.TypeCIDR, Value: q.String()})
		if i%10 == 0 {
			check(gateway.Indicator{Type: gateway.TypeDomain, Value: randomName(r, 4)})
			check(gateway.Indicator{Type: gateway.TypeASN, Value: fmt.Sprintf("AS%d", 64500+r.IntN(16))})
		}
	}
}

// randomName joins up to n labels from a tiny alphabet so that names and
// registered domains share suffixes, and sometimes only a partial label.
func randomName(r *rand.Rand, n int) string {
	labels := []string{"a", "b", "ab", "ba", "x", "nl"}
	parts := make([]string, 1+r.IntN(n))
	for i := range parts {
		parts[i] = labels[r.IntN(len(labels))]
	}
	return strings.Join(parts, ".")
}
