package misp

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/google/uuid"

	mispmap "github.com/schakel/schakel/mappings/misp"
)

// PartSize is the most attributes one served MISP event carries. Larger
// events are cut into parts: MISP itself fails on events far above this
// (MISP#10753, #3381), and every client copes with 10,000.
//
// Part 1 keeps the event's uuid; part n ≥ 2 has the uuid
// UUIDv5(event uuid, "schakel-part:n") and extends_uuid = the event's uuid,
// so MISP shows the parts together as an extended event. Each part's info
// says "(part n of N)". Attributes are cut in the order Encode writes them
// (top-level attributes, then whole objects), so a growing event keeps the
// attributes it had in the parts they were in; only attributes behind the
// growth point can move.
const PartSize = 10000

// cut is one part: a range of top-level attributes, a range of objects and
// the attributes they hold together.
type cut struct{ a0, a1, o0, o1, n int }

// plan cuts e into parts of at most size attributes; an object is never
// split (one larger than size is a part of its own). There is always at
// least one part.
func plan(e *mispmap.Event, size int) []cut {
	var cuts []cut
	cur := cut{}
	closeIf := func(add int) {
		if cur.n > 0 && cur.n+add > size {
			cuts = append(cuts, cur)
			cur = cut{a0: cur.a1, a1: cur.a1, o0: cur.o1, o1: cur.o1}
		}
	}
	for range e.Attribute {
		closeIf(1)
		cur.a1++
		cur.n++
	}
	for _, o := range e.Object {
		n := max(len(o.Attribute), 1)
		closeIf(n)
		cur.o1++
		cur.n += len(o.Attribute)
	}
	return append(cuts, cur)
}

// sizes lists the attribute count of each cut.
func sizes(cuts []cut) []int {
	out := make([]int, len(cuts))
	for i, c := range cuts {
		out[i] = c.n
	}
	return out
}

// part returns part k (0-based) of e as its own MISP event. It shares the
// attribute and object slices with e, which must not change afterwards.
func part(e *mispmap.Event, cuts []cut, k int) *mispmap.Event {
	c := cuts[k]
	p := *e
	p.Attribute = e.Attribute[c.a0:c.a1:c.a1]
	p.Object = e.Object[c.o0:c.o1:c.o1]
	if p.Attribute == nil {
		p.Attribute = []mispmap.Attribute{}
	}
	if p.Object == nil {
		p.Object = []mispmap.Object{}
	}
	p.AttributeCount = strconv.Itoa(c.n)
	if len(cuts) > 1 {
		p.Info = partInfo(e.Info, k+1, len(cuts))
		if k > 0 {
			p.UUID = partUUID(e.UUID, k+1)
			p.ExtendsUUID = e.UUID
			p.EventReport = nil
		}
	}
	return &p
}

func partInfo(info string, n, of int) string {
	if of <= 1 {
		return info
	}
	return fmt.Sprintf("%s (part %d of %d)", info, n, of)
}

// partUUID is the uuid of part n (1-based) of the event with uuid eventUUID.
func partUUID(eventUUID string, n int) string {
	if n <= 1 {
		return eventUUID
	}
	ns, err := uuid.Parse(eventUUID)
	if err != nil {
		// Encode only writes valid uuids; fall back to a name-based one.
		ns = uuid.NewSHA1(uuid.NameSpaceURL, []byte(eventUUID))
	}
	return uuid.NewSHA1(ns, []byte("schakel-part:"+strconv.Itoa(n))).String()
}

// numID is the numeric id MISP clients expect beside the uuid ("id"),
// stable for a uuid and below 2^53 so every JSON reader keeps it exact.
// It names, never authorises: a lookup by numeric id still goes through
// the viewer's view. FNV-1a keeps it cheap for every attribute served.
func numID(u string) string {
	return strconv.FormatUint(numIDValue(u), 10)
}

func numIDValue(u string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(u))
	n := h.Sum64() & (1<<53 - 1)
	if n == 0 {
		n = 1
	}
	return n
}
