package assets

import (
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// The prefix set is flattened at build time into sorted, non-overlapping
// ranges that cover the whole address space, each carrying the owner set of
// the most specific prefix over it (0 where none). A lookup is then an index
// on the top bits and a short binary search: no allocation, a handful of
// cache lines, and 6 bytes per IPv4 range (20 per IPv6 range).

// u128 is a 128-bit address or key; IPv4 uses lo only.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func (a u128) and(b u128) u128 { return u128{a.hi & b.hi, a.lo & b.lo} }
func (a u128) or(b u128) u128  { return u128{a.hi | b.hi, a.lo | b.lo} }

// next returns a+1; it wraps at the top, which callers check for first.
func (a u128) next() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

func addr6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func mask32(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return math.MaxUint32 << (32 - bits)
}

func mask128(bits int) u128 {
	switch {
	case bits == 0:
		return u128{}
	case bits <= 64:
		return u128{hi: math.MaxUint64 << (64 - bits)}
	case bits == 128:
		return u128{math.MaxUint64, math.MaxUint64}
	}
	return u128{math.MaxUint64, math.MaxUint64 << (128 - bits)}
}

// group is one distinct prefix with its owner set.
type group struct {
	first u128
	bits  uint8
	val   uint32
}

// span is a range start and the owner set from there to the next start.
type span struct {
	start u128
	val   uint32
}

// flatten turns distinct prefixes of one family (width 32 or 128 bits),
// sorted by first address and then by length, into covering ranges.
// Prefixes either nest or are disjoint, so a stack of the open ones suffices.
func flatten(groups []group, width int) []span {
	spaceEnd := u128{lo: math.MaxUint32}
	if width == 128 {
		spaceEnd = u128{math.MaxUint64, math.MaxUint64}
	}
	host := func(bits uint8) u128 {
		if width == 32 {
			return u128{lo: uint64(^mask32(int(bits)))}
		}
		m := mask128(int(bits))
		return u128{^m.hi, ^m.lo}
	}

	type open struct {
		last u128
		val  uint32
	}
	var (
		out    = make([]span, 0, 2*len(groups)+1) // at most two ranges per prefix, plus the tail
		stack  []open
		cursor u128 // first address not yet assigned to a range
		done   bool // cursor passed the top of the space
	)
	emit := func(start u128, val uint32) {
		if n := len(out); n > 0 && out[n-1].val == val {
			return
		}
		out = append(out, span{start, val})
	}
	// closeTop ends the innermost open prefix: what is left of it from the
	// cursor on belongs to it.
	closeTop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if done || top.last.cmp(cursor) < 0 {
			return
		}
		emit(cursor, top.val)
		if top.last == spaceEnd {
			done = true
			return
		}
		cursor = top.last.next()
	}
	for _, g := range groups {
		for len(stack) > 0 && stack[len(stack)-1].last.cmp(g.first) < 0 {
			closeTop()
		}
		if cursor.cmp(g.first) < 0 {
			var val uint32
			if len(stack) > 0 {
				val = stack[len(stack)-1].val
			}
			emit(cursor, val)
		}
		cursor = g.first
		stack = append(stack, open{last: g.first.or(host(g.bits)), val: g.val})
	}
	for len(stack) > 0 {
		closeTop()
	}
	if !done {
		emit(cursor, 0)
	}
	return out
}

// v4Table finds the range holding an IPv4 address: bucket b (the top 16
// bits) owns starts[first[b]:first[b+1]], whose first entry is always at the
// bucket's base, so each bucket stores only the low 16 bits of its starts.
type v4Table struct {
	first  *[1<<16 + 1]uint32
	starts []uint16
	vals   []uint32
}

func newV4Table(spans []span) v4Table {
	t := v4Table{
		first:  new([1<<16 + 1]uint32),
		starts: make([]uint16, 0, len(spans)+1<<16),
		vals:   make([]uint32, 0, len(spans)+1<<16),
	}
	j := 0
	for b := range uint64(1 << 16) {
		base := b << 16
		t.first[b] = uint32(len(t.starts))
		for j+1 < len(spans) && spans[j+1].start.lo <= base {
			j++
		}
		t.starts = append(t.starts, 0)
		t.vals = append(t.vals, spans[j].val)
		for j+1 < len(spans) && spans[j+1].start.lo>>16 == b {
			j++
			t.starts = append(t.starts, uint16(spans[j].start.lo))
			t.vals = append(t.vals, spans[j].val)
		}
	}
	t.first[1<<16] = uint32(len(t.starts))
	return t
}

func (t *v4Table) lookup(a uint32) uint32 {
	b := a >> 16
	lo := t.first[b]
	s := t.starts[lo:t.first[b+1]]
	key := uint16(a)
	// Largest i with s[i] <= key; s[0] == 0 <= key.
	i, n := 0, len(s)
	for n > 1 {
		half := n >> 1
		if s[i+half] <= key {
			i += half // branch-free: a conditional move, not a jump
		}
		n -= half
	}
	return t.vals[int(lo)+i]
}

// v6Table finds the range holding an IPv6 address. IPv6 registries are
// skewed (a few /12s, one busy /32), so a fixed index on the top bits would
// leave some buckets with thousands of ranges. Instead the top 16 bits pick a
// slot, and a slot holding more than leafMax ranges becomes a node that
// splits on the next 8 bits, down to bit 64: a small adaptive stride trie
// whose leaves are short runs of the sorted range array.
type v6Table struct {
	root   *[1 << 16]uint32
	nodes  []uint32 // 256 refs per node
	leaves []leaf
	hi, lo []uint64 // range starts, split so comparisons mostly read hi
	vals   []uint32
}

// leaf is a run of ranges: lo is the range holding the slot's first address,
// hi the last one starting inside the slot.
type leaf struct{ lo, hi uint32 }

const (
	nodeBit = 1 << 31 // a ref with this bit is a node index, else a leaf index
	leafMax = 24
)

func newV6Table(spans []span) v6Table {
	t := v6Table{
		root: new([1 << 16]uint32),
		hi:   make([]uint64, len(spans)),
		lo:   make([]uint64, len(spans)),
		vals: make([]uint32, len(spans)),
	}
	for i, s := range spans {
		t.hi[i], t.lo[i], t.vals[i] = s.start.hi, s.start.lo, s.val
	}
	first := 0
	for b := range uint64(1 << 16) {
		t.root[b], first = t.slot(b<<48, 16, first)
	}
	return t
}

// slot returns the ref for the addresses whose top bits equal base's top
// bits (base has its other bits zero; only the upper half is split). first
// is the index of the first range starting at or after base; slot also
// returns that index for the next slot, so empty slots cost O(1).
func (t *v6Table) slot(base uint64, bits uint, first int) (ref uint32, end int) {
	end = first
	if end < len(t.hi) {
		if size := uint64(1) << (64 - bits); base+size == 0 {
			end = len(t.hi)
		} else if t.hi[end] < base+size {
			n, _ := slices.BinarySearch(t.hi[end+1:], base+size)
			end += 1 + n
		}
	}
	lo := first
	if lo == len(t.hi) || t.hi[lo] != base || t.lo[lo] != 0 {
		lo-- // the range holding the slot's first address starts before it
	}
	if end-lo <= leafMax || bits+8 > 64 {
		lf := leaf{uint32(lo), uint32(end - 1)}
		// Runs of empty slots inside one range share a leaf.
		if n := len(t.leaves); n > 0 && t.leaves[n-1] == lf {
			return uint32(n - 1), end
		}
		t.leaves = append(t.leaves, lf)
		return uint32(len(t.leaves) - 1), end
	}
	n := uint32(len(t.nodes) >> 8)
	t.nodes = append(t.nodes, make([]uint32, 256)...)
	for s := range uint64(256) {
		t.nodes[n<<8|uint32(s)], first = t.slot(base|s<<(64-bits-8), bits+8, first)
	}
	return nodeBit | n, end
}

func (t *v6Table) lookup(hi, lo uint64) uint32 {
	ref := t.root[hi>>48]
	for shift := uint(40); ref&nodeBit != 0; shift -= 8 {
		ref = t.nodes[(ref&^nodeBit)<<8|uint32(hi>>shift&0xff)]
	}
	lf := t.leaves[ref]
	hs := t.hi[lf.lo : lf.hi+1]
	// Largest i with hs[i] <= hi; hs[0] <= hi always.
	i, n := 0, len(hs)
	for n > 1 {
		half := n >> 1
		if hs[i+half] <= hi {
			i += half
		}
		n -= half
	}
	j := int(lf.lo) + i
	if hs[i] == hi && t.lo[j] > lo {
		// Only where ranges start inside a /64: settle on the low half too.
		j = t.searchLow(int(lf.lo), j, hi, lo)
	}
	return t.vals[j]
}

// searchLow returns the largest j in [from, to) whose start is <= (hi, lo);
// the start at from is known to be.
func (t *v6Table) searchLow(from, to int, hi, lo uint64) int {
	for to-from > 1 {
		mid := int(uint(from+to) >> 1)
		if t.hi[mid] < hi || t.hi[mid] == hi && t.lo[mid] <= lo {
			from = mid
		} else {
			to = mid
		}
	}
	return from
}
