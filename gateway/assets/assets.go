// Package assets answers "whose is this?" for indicators: it indexes the
// prefixes, ASNs and domains that constituents own and finds the owners of an
// address, a prefix, an ASN, a domain, a URL or an e-mail address.
//
// A Matcher is built once from the registry and never changes; a Table holds
// the current one and swaps a rebuild in atomically, so lookups never block.
package assets

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// Matcher is immutable once built; safe for concurrent use. A nil *Matcher
// owns nothing.
type Matcher struct {
	// sets holds every distinct owner set, sorted ids; sets[0] is the empty
	// set so that a zero value in any index means "nobody".
	sets [][]string

	v4 v4Table
	v6 v6Table

	// exact prefixes by length, for cidr containment (which the flattened
	// ranges cannot answer: two sibling /25s of one owner are not a /24).
	exact4  [33]map[uint32]uint32
	exact6  [129]map[u128]uint32
	lens4   uint64    // bit l set when some prefix has length l
	lens6   [3]uint64 // same, for 0..128
	asns    map[int64]uint32
	domains map[string]uint32
	stats   Stats
}

// Stats describes what a Matcher indexed, for metrics and logs.
type Stats struct {
	Constituents int // distinct constituent ids given to Build
	Prefixes     int // distinct prefixes (a prefix at two constituents counts once)
	ASNs         int // distinct ASNs
	Domains      int // distinct domain suffixes
}

// EntryError is one asset entry (or constituent) that Build could not index.
type EntryError struct {
	Constituent string // constituent id; empty when the id itself is the problem
	Index       int    // position of the constituent in Build's input
	Field       string // "assets.prefixes[2]"
	Err         error
}

func (e *EntryError) Error() string {
	if e.Constituent == "" {
		return fmt.Sprintf("constituents[%d]: %s: %v", e.Index, e.Field, e.Err)
	}
	return fmt.Sprintf("constituent %q: %s: %v", e.Constituent, e.Field, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// prefixEntry is one (prefix, owner) pair from the registry.
type prefixEntry struct {
	first u128 // IPv4 addresses live in first.lo
	bits  uint8
	v6    bool
	owner int32 // index into the sorted id list
}

// Build indexes the constituents' assets. Bad entries are reported as
// *EntryError values in a joined error, and the good ones are still indexed:
// the returned Matcher is usable even when err != nil.
func Build(cs []gateway.Constituent) (*Matcher, error) {
	var errs []error
	bad := func(i int, id, field string, err error) {
		errs = append(errs, &EntryError{Constituent: id, Index: i, Field: field, Err: err})
	}

	// Owner indices follow id order, so owner lists sorted by index are
	// sorted by id too.
	ids := make([]string, 0, len(cs))
	for i := range cs {
		if cs[i].ID == "" {
			bad(i, "", "id", errors.New("must not be empty; its assets are not indexed"))
			continue
		}
		ids = append(ids, cs[i].ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	owner := func(id string) int32 {
		i, _ := slices.BinarySearch(ids, id)
		return int32(i)
	}

	nPrefixes := 0
	for i := range cs {
		nPrefixes += len(cs[i].Assets.Prefixes)
	}
	entries := make([]prefixEntry, 0, nPrefixes)
	asnOwners := map[int64][]int32{}
	domainOwners := map[string][]int32{}
	for i := range cs {
		c := &cs[i]
		if c.ID == "" {
			continue
		}
		o := owner(c.ID)
		for j, s := range c.Assets.Prefixes {
			p, err := parseConfigPrefix(s)
			if err != nil {
				bad(i, c.ID, fmt.Sprintf("assets.prefixes[%d]", j), err)
				continue
			}
			entries = append(entries, newPrefixEntry(p, o))
		}
		for j, asn := range c.Assets.ASNs {
			if asn < 1 || asn > maxASN {
				bad(i, c.ID, fmt.Sprintf("assets.asns[%d]", j), fmt.Errorf("%d is not an AS number (1 to %d)", asn, int64(maxASN)))
				continue
			}
			asnOwners[asn] = append(asnOwners[asn], o)
		}
		for j, s := range c.Assets.Domains {
			d, err := parseConfigDomain(s)
			if err != nil {
				bad(i, c.ID, fmt.Sprintf("assets.domains[%d]", j), err)
				continue
			}
			domainOwners[d] = append(domainOwners[d], o)
		}
	}

	in := newInterner(ids)
	m := &Matcher{}
	m.buildPrefixes(entries, in)
	m.asns = make(map[int64]uint32, len(asnOwners))
	for asn, os := range asnOwners {
		m.asns[asn] = in.get(sortedUnique(os))
	}
	m.domains = make(map[string]uint32, len(domainOwners))
	for d, os := range domainOwners {
		m.domains[d] = in.get(sortedUnique(os))
	}
	m.sets = in.sets
	m.stats.Constituents = len(ids)
	m.stats.ASNs = len(m.asns)
	m.stats.Domains = len(m.domains)
	return m, errors.Join(errs...)
}

func newPrefixEntry(p netip.Prefix, owner int32) prefixEntry {
	e := prefixEntry{bits: uint8(p.Bits()), owner: owner}
	if p.Addr().Is4() {
		b := p.Addr().As4()
		e.first = u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	} else {
		e.v6 = true
		e.first = addr6(p.Addr())
	}
	return e
}

// buildPrefixes groups identical prefixes, fills the exact-length maps and
// flattens the nesting into the range tables.
func (m *Matcher) buildPrefixes(entries []prefixEntry, in *interner) {
	slices.SortFunc(entries, func(a, b prefixEntry) int {
		if a.v6 != b.v6 {
			if a.v6 {
				return 1
			}
			return -1
		}
		if c := a.first.cmp(b.first); c != 0 {
			return c
		}
		if c := cmp.Compare(a.bits, b.bits); c != 0 {
			return c
		}
		return cmp.Compare(a.owner, b.owner)
	})

	// Entries are sorted IPv4 first, so the groups split at one index.
	groups := make([]group, 0, len(entries))
	n4 := 0
	var count4 [33]int
	var count6 [129]int
	var owners []int32
	for i := 0; i < len(entries); {
		e := entries[i]
		owners = owners[:0]
		j := i
		for ; j < len(entries) && entries[j].v6 == e.v6 && entries[j].first == e.first && entries[j].bits == e.bits; j++ {
			if len(owners) == 0 || owners[len(owners)-1] != entries[j].owner {
				owners = append(owners, entries[j].owner)
			}
		}
		i = j
		groups = append(groups, group{first: e.first, bits: e.bits, val: in.get(owners)})
		if e.v6 {
			count6[e.bits]++
		} else {
			count4[e.bits]++
			n4++
		}
	}
	groups4, groups6 := groups[:n4], groups[n4:]

	// Maps sized once: growing them was most of Build's garbage.
	for l, n := range count4 {
		if n > 0 {
			m.exact4[l] = make(map[uint32]uint32, n)
			m.lens4 |= 1 << l
		}
	}
	for l, n := range count6 {
		if n > 0 {
			m.exact6[l] = make(map[u128]uint32, n)
			m.lens6[l/64] |= 1 << (l % 64)
		}
	}
	for _, g := range groups4 {
		m.exact4[g.bits][uint32(g.first.lo)] = g.val
	}
	for _, g := range groups6 {
		m.exact6[g.bits][g.first] = g.val
	}
	m.stats.Prefixes = len(groups4) + len(groups6)
	m.v4 = newV4Table(flatten(groups4, 32))
	m.v6 = newV6Table(flatten(groups6, 128))
}

// parseConfigPrefix accepts what people write in a registry: non-canonical
// prefixes ("192.0.2.10/24", "2001:DB8::/32"), a bare address (one host) and
// IPv4-mapped IPv6 prefixes, which become IPv4 prefixes.
func parseConfigPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP prefix: %w", err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP prefix or address: %w", err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be an asset", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p = canonicalPrefix(p)
	if p.Bits() == 0 {
		// A typo here would make one constituent the owner of every
		// observation, and so the recipient of everyone's victim data.
		return netip.Prefix{}, fmt.Errorf("%q: a /0 prefix would own every address", s)
	}
	return p, nil
}

// canonicalPrefix masks p and turns an IPv4-mapped IPv6 prefix of /96 or
// longer into the IPv4 prefix it denotes, as lookups unmap addresses too.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// maxASN is the largest 32-bit AS number.
const maxASN = 1<<32 - 1

// interner gives every distinct owner set one index into sets.
type interner struct {
	ids    []string
	sets   [][]string
	single []uint32 // per owner: index of the set holding only that owner
	multi  map[string]uint32
	key    []byte
}

func newInterner(ids []string) *interner {
	return &interner{
		ids:    ids,
		sets:   [][]string{nil},
		single: make([]uint32, len(ids)),
		multi:  map[string]uint32{},
	}
}

// get returns the index of the set of owners (sorted, unique), adding it
// when new.
func (in *interner) get(owners []int32) uint32 {
	if len(owners) == 0 {
		return 0
	}
	if len(owners) == 1 {
		if v := in.single[owners[0]]; v != 0 {
			return v
		}
		v := in.add(owners)
		in.single[owners[0]] = v
		return v
	}
	in.key = in.key[:0]
	for _, o := range owners {
		in.key = binary.LittleEndian.AppendUint32(in.key, uint32(o))
	}
	if v, ok := in.multi[string(in.key)]; ok {
		return v
	}
	v := in.add(owners)
	in.multi[string(in.key)] = v
	return v
}

func (in *interner) add(owners []int32) uint32 {
	set := make([]string, len(owners))
	for i, o := range owners {
		set[i] = in.ids[o]
	}
	in.sets = append(in.sets, set[:len(set):len(set)])
	return uint32(len(in.sets) - 1)
}

func sortedUnique(os []int32) []int32 {
	slices.Sort(os)
	return slices.Compact(os)
}

// Stats reports what m indexed.
func (m *Matcher) Stats() Stats {
	if m == nil {
		return Stats{}
	}
	return m.stats
}

// Owners returns the ids of the constituents that own what ind points at,
// sorted, no duplicates; nil when nobody does. The returned slice is shared
// and must not be modified. Rules per indicator type:
//
//   - ipv4, ipv6: the owners of the longest matching prefix (the value's own
//     family decides; IPv4-mapped IPv6 is IPv4); when no prefix matches, or
//     the value is no address, and ind.ASN != 0, the owners of that ASN.
//   - cidr: the owners of the longest prefix that contains the whole
//     indicator prefix.
//   - domain, hostname: the owners of the longest registered suffix on a
//     label boundary.
//   - url: its host, by the ipv4/ipv6 rule (ASN fallback included) or the
//     domain rule.
//   - email: its domain part, or the address in a literal ("x@[192.0.2.1]").
//   - asn: the value ("AS64500", "64500", "AS1.10"), else ind.ASN.
//   - anything else: nil.
func (m *Matcher) Owners(ind *gateway.Indicator) []string {
	if m == nil || ind == nil {
		return nil
	}
	switch ind.Type {
	case gateway.TypeIPv4, gateway.TypeIPv6:
		return m.ownersOfIPValue(ind.Value, ind.ASN)
	case gateway.TypeCIDR:
		p, ok := parseIndicatorPrefix(ind.Value)
		if !ok {
			return nil
		}
		return m.OwnersOfPrefix(p)
	case gateway.TypeDomain, gateway.TypeHostname:
		return m.OwnersOfDomain(ind.Value)
	case gateway.TypeURL:
		host := urlHost(ind.Value)
		if a, ok := parseHostAddr(host); ok {
			return m.ipOrASN(a, ind.ASN)
		}
		return m.OwnersOfDomain(host)
	case gateway.TypeEmail:
		at := strings.LastIndexByte(ind.Value, '@')
		if at < 0 {
			return nil
		}
		host := ind.Value[at+1:]
		if a, ok := parseHostAddr(host); ok {
			return m.OwnersOfIP(a)
		}
		return m.OwnersOfDomain(host)
	case gateway.TypeASN:
		if asn, ok := parseASN(ind.Value); ok {
			return m.OwnersOfASN(asn)
		}
		return m.OwnersOfASN(ind.ASN)
	}
	return nil
}

func (m *Matcher) ownersOfIPValue(v string, asn int64) []string {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return m.OwnersOfASN(asn)
	}
	return m.ipOrASN(a, asn)
}

func (m *Matcher) ipOrASN(a netip.Addr, asn int64) []string {
	if owners := m.OwnersOfIP(a); owners != nil {
		return owners
	}
	return m.OwnersOfASN(asn)
}

// OwnersOfIP returns the owners of the longest registered prefix holding a.
// IPv4-mapped IPv6 addresses are looked up as IPv4; a zone is ignored.
func (m *Matcher) OwnersOfIP(a netip.Addr) []string {
	if m == nil {
		return nil
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return m.sets[m.v4.lookup(binary.BigEndian.Uint32(b[:]))]
	}
	if a.Is6() {
		k := addr6(a)
		return m.sets[m.v6.lookup(k.hi, k.lo)]
	}
	return nil
}

// OwnersOfPrefix returns the owners of the longest registered prefix that
// contains all of p; constituents whose prefixes merely lie inside p do not
// count.
func (m *Matcher) OwnersOfPrefix(p netip.Prefix) []string {
	if m == nil || !p.IsValid() {
		return nil
	}
	p = canonicalPrefix(p)
	bits := p.Bits()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		a := binary.BigEndian.Uint32(b[:])
		for l := bits; l >= 0; l-- {
			if m.lens4&(1<<l) == 0 {
				continue
			}
			if v, ok := m.exact4[l][a&mask32(l)]; ok {
				return m.sets[v]
			}
		}
		return nil
	}
	a := addr6(p.Addr())
	for l := bits; l >= 0; l-- {
		if m.lens6[l/64]&(1<<(l%64)) == 0 {
			continue
		}
		if v, ok := m.exact6[l][a.and(mask128(l))]; ok {
			return m.sets[v]
		}
	}
	return nil
}

// OwnersOfASN returns the constituents that registered asn.
func (m *Matcher) OwnersOfASN(asn int64) []string {
	if m == nil || asn == 0 {
		return nil
	}
	return m.sets[m.asns[asn]]
}

// parseIndicatorPrefix reads a cidr value; a bare address counts as a host
// prefix, since some sources put single hosts in cidr fields.
func parseIndicatorPrefix(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') < 0 {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a.WithZone(""), a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// parseASN reads "AS64500", "as64500", "64500" or asdot "AS1.10" without
// allocating.
func parseASN(s string) (int64, bool) {
	if len(s) >= 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's') {
		s = s[2:]
	}
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		hi, ok1 := parseDecimal(s[:dot], 0xffff)
		lo, ok2 := parseDecimal(s[dot+1:], 0xffff)
		if !ok1 || !ok2 || hi<<16|lo == 0 {
			return 0, false
		}
		return hi<<16 | lo, true
	}
	n, ok := parseDecimal(s, maxASN)
	return n, ok && n != 0
}

// parseDecimal reads digits only; limit is at most 1<<32, so n*10 cannot
// overflow before the check stops it.
func parseDecimal(s string, limit int64) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n = n*10 + int64(c-'0'); n > limit {
			return 0, false
		}
	}
	return n, true
}
