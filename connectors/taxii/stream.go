package taxii

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/views"
	"github.com/schakel/schakel/mappings/stix"
)

// A collection is the viewer's pull view (gateway/views) with every event
// version expanded to the STIX objects it encodes to. Objects are ordered by
// (view entry, offset in the encoding). An object's date_added is its
// entry's added time plus its offset in microseconds, clamped below the
// next entry's added time and spread over at most spreadCap microseconds:
// so date_added never decreases, is strictly increasing wherever events are
// further apart than their object counts, and only the last entry at or
// before a timestamp can hold objects added after it.
const spreadCap = 10_000 // µs

// Work bounds for one request. A page that hits them comes back short,
// with more=true and a next that continues where it stopped.
const (
	listChunk      = 256    // view entries read per round trip
	maxLoadBatch   = 32     // events loaded concurrently
	maxScanEntries = 20_000 // view entries examined per request
)

// position names one object of a collection: its view entry (added time in
// µs and "id|version") and its offset in the event's encoding. Encoded, it
// is the opaque, stateless `next` a client sends back — valid across
// restarts and replicas for as long as the entry exists, and still a good
// place to continue from after it is gone.
type position struct {
	added  int64
	member string
	offset int
}

const positionPrefix = "1."

func (p position) encode() string {
	raw := strconv.FormatInt(p.added, 10) + "|" + strconv.Itoa(p.offset) + "|" + p.member
	return positionPrefix + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

var errCursor = errors.New("is not a next value this server issued")

func decodePosition(s string) (position, error) {
	rest, ok := strings.CutPrefix(s, positionPrefix)
	if !ok {
		return position{}, errCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return position{}, errCursor
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 {
		return position{}, errCursor
	}
	added, err1 := strconv.ParseInt(parts[0], 10, 64)
	offset, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || added <= 0 || offset < 0 || parts[2] == "" {
		return position{}, errCursor
	}
	return position{added: added, member: parts[2], offset: offset}, nil
}

func entryPosition(e views.Entry, offset int) position {
	return position{added: e.Added.UnixMicro(), member: e.ID + "|" + e.Version, offset: offset}
}

// after reports whether p lies after entry e, so e comes before the place
// p names.
func (p position) after(e views.Entry) bool {
	a := e.Added.UnixMicro()
	return a < p.added || (a == p.added && e.ID+"|"+e.Version < p.member)
}

func (p position) names(e views.Entry) bool {
	return e.Added.UnixMicro() == p.added && e.ID+"|"+e.Version == p.member
}

// dateAdded is the date_added (µs) of object k of an entry added at a,
// given the added time of the entry that follows it, if any.
func dateAdded(a int64, k int, next int64, hasNext bool) int64 {
	d := int64(min(k, spreadCap-1))
	if hasNext {
		d = min(d, max(next-a-1, 0))
	}
	return a + d
}

// item is one object as a collection serves it.
type item struct {
	obj       stix.Object
	version   string // TAXII version: modified, else created, else the event's version
	dateAdded int64  // µs
	pos       position
}

// loaded is one view entry encoded for the viewer.
type loaded struct {
	objs          []stix.Object
	reportVersion string
	added         int64 // the entry's added time, µs
	eventID       string
	indexKey      string // what the object index remembers having recorded
}

func (l *loaded) version(o stix.Object) string {
	if o.Version != "" {
		return o.Version
	}
	return l.reportVersion
}

// load encodes one entry for who. An event the viewer may no longer see, or
// that is gone, has no objects; an event that does not encode is logged and
// skipped rather than failing everyone's page.
func (s *Server) load(ctx context.Context, who views.Viewer, e views.Entry) (*loaded, error) {
	ev, err := s.events.EventVersion(ctx, e.ID, e.Version)
	if errors.Is(err, gateway.ErrNotFound) {
		return &loaded{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load event %s: %w", e.ID, err)
	}
	p, err := s.views.Project(who, ev)
	if errors.Is(err, gateway.ErrNotFound) {
		return &loaded{}, nil
	}
	if err != nil {
		return nil, err
	}
	objs, err := stix.EncodeObjects(p, stix.EncodeOptions{})
	if err != nil {
		s.log.WarnContext(ctx, "event does not encode as STIX; left out of TAXII", "event", e.ID, "version", e.Version, "error", err)
		return &loaded{}, nil
	}
	l := &loaded{objs: objs, added: e.Added.UnixMicro(), eventID: e.ID, indexKey: e.ID + "|" + e.Version}
	if ev.Kind == gateway.KindNotification {
		// Each viewer gets its own indicators of a notification.
		l.indexKey += "|" + strconv.Itoa(int(who.Audience)) + "|" + who.Constituent
	}
	for _, o := range objs {
		if o.Type == "report" {
			l.reportVersion = o.Version
		}
	}
	return l, nil
}

// walker reads a viewer's entries in order, a chunk at a time, and loads
// their events ahead of use, several at once.
type walker struct {
	s      *Server
	who    views.Viewer
	q      views.Query // the first List call
	cursor string
	done   bool
	buf    []views.Entry
	loads  map[string]*loaded // by entry member
	used   []*loaded          // loaded entries, in order, for the object index
	listed int
}

func (s *Server) newWalker(who views.Viewer, after time.Time) *walker {
	return &walker{s: s, who: who, q: views.Query{After: after, Limit: listChunk}, loads: map[string]*loaded{}}
}

// fill makes sure at least n entries are buffered unless the view ends.
func (w *walker) fill(ctx context.Context, n int) error {
	for len(w.buf) < n && !w.done {
		q := w.q
		if w.listed > 0 {
			q = views.Query{From: w.cursor, Limit: listChunk}
		}
		es, next, err := w.s.views.List(ctx, w.who, q)
		if err != nil {
			return fmt.Errorf("read view: %w", err)
		}
		w.listed++
		w.buf = append(w.buf, es...)
		w.cursor = next
		w.done = next == ""
	}
	return nil
}

// next pops the next entry and peeks at the one after it.
func (w *walker) next(ctx context.Context) (e, following views.Entry, ok, hasFollowing bool, err error) {
	if err := w.fill(ctx, 2); err != nil {
		return e, following, false, false, err
	}
	if len(w.buf) == 0 {
		return e, following, false, false, nil
	}
	e, w.buf = w.buf[0], w.buf[1:]
	if len(w.buf) > 0 {
		return e, w.buf[0], true, true, nil
	}
	return e, following, true, false, nil
}

// load returns e encoded, loading it together with up to batch-1 of the
// entries that follow it.
func (w *walker) load(ctx context.Context, e views.Entry, batch int) (*loaded, error) {
	key := e.ID + "|" + e.Version
	if l, ok := w.loads[key]; ok {
		delete(w.loads, key)
		w.used = append(w.used, l)
		return l, nil
	}
	todo := []views.Entry{e}
	for _, x := range w.buf {
		if len(todo) >= batch {
			break
		}
		if _, ok := w.loads[x.ID+"|"+x.Version]; !ok {
			todo = append(todo, x)
		}
	}
	res := make([]*loaded, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, x := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = w.s.load(ctx, w.who, x)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, x := range todo[1:] {
		w.loads[x.ID+"|"+x.Version] = res[i+1]
	}
	w.used = append(w.used, res[0])
	return res[0], nil
}

// pageQuery is one objects or manifest request, parsed.
type pageQuery struct {
	from  *position
	after *time.Time
	limit int
	match match
}

type page struct {
	items []item
	more  bool
	next  position
}

// page collects up to q.limit objects the viewer may see.
func (s *Server) page(ctx context.Context, who views.Viewer, q pageQuery) (page, error) {
	var out page
	if q.match.none() {
		return out, nil
	}
	var start time.Time
	var afterUs int64
	switch {
	case q.from != nil:
		start = time.UnixMicro(q.from.added - 1)
	case q.after != nil:
		if us := q.after.UnixMicro() - spreadCap; us > 0 {
			start = time.UnixMicro(us)
		}
	}
	if q.after != nil {
		// Dates are whole µs: strictly after t is strictly after floor(t).
		afterUs = q.after.UnixMicro()
	}
	w := s.newWalker(who, start)
	defer func() { s.index.record(context.WithoutCancel(ctx), w.used) }()
	examined := 0
	perEntry := 8.0 // objects per entry so far, to size load batches
	// Every event carries the definitions and identities it uses, and
	// pass-through objects may recur: a page holds each object version
	// once, where it first occurs.
	onPage := map[string]struct{}{}
	for {
		e, nextE, ok, hasNext, err := w.next(ctx)
		if err != nil {
			return page{}, err
		}
		if !ok {
			return out, nil
		}
		if q.from != nil && q.from.after(e) {
			continue
		}
		a := e.Added.UnixMicro()
		if q.after != nil && a <= afterUs && hasNext && nextE.Added.UnixMicro() <= afterUs {
			continue // every object of e lies at or before added_after
		}
		if examined >= maxScanEntries {
			out.more, out.next = true, entryPosition(e, 0)
			return out, nil
		}
		examined++
		want := float64(q.limit-len(out.items)) / perEntry
		l, err := w.load(ctx, e, max(1, min(maxLoadBatch, int(want)+1)))
		if err != nil {
			return page{}, err
		}
		if len(l.objs) > 0 {
			perEntry = (perEntry*float64(examined-1) + float64(len(l.objs))) / float64(examined)
		}
		k0 := 0
		if q.from != nil && q.from.names(e) {
			k0 = q.from.offset
		}
		for k := k0; k < len(l.objs); k++ {
			if len(out.items) == q.limit {
				out.more, out.next = true, entryPosition(e, k)
				return out, nil
			}
			o := l.objs[k]
			da := dateAdded(a, k, nextE.Added.UnixMicro(), hasNext)
			if q.after != nil && da <= afterUs {
				continue
			}
			v := l.version(o)
			if !q.match.ok(o, v) {
				continue
			}
			key := o.ID + "|" + v
			if _, dup := onPage[key]; dup {
				continue
			}
			onPage[key] = struct{}{}
			out.items = append(out.items, item{obj: o, version: v, dateAdded: da, pos: entryPosition(e, k)})
		}
		if len(out.items) == q.limit && hasNext {
			// The page is full at an entry's end: say so without loading the
			// next one; a follow-up page may turn out empty, which TAXII allows.
			out.more, out.next = true, entryPosition(nextE, 0)
			return out, nil
		}
	}
}

// objectAt finds object oid in the entry of event occ.eventID added at
// occ.added, as the viewer sees it.
func (s *Server) objectAt(ctx context.Context, who views.Viewer, occ occurrence, oid string) (item, bool, error) {
	w := s.newWalker(who, time.UnixMicro(occ.added-1))
	w.q.Limit = 8
	defer func() { s.index.record(context.WithoutCancel(ctx), w.used) }()
	for {
		e, nextE, ok, hasNext, err := w.next(ctx)
		if err != nil || !ok {
			return item{}, false, err
		}
		a := e.Added.UnixMicro()
		if a < occ.added || (a == occ.added && e.ID != occ.eventID) {
			continue
		}
		if a != occ.added {
			return item{}, false, nil // the entry is gone (updated, or no longer visible)
		}
		l, err := w.load(ctx, e, 1)
		if err != nil {
			return item{}, false, err
		}
		for k, o := range l.objs {
			if o.ID == oid {
				return item{obj: o, version: l.version(o), dateAdded: dateAdded(a, k, nextE.Added.UnixMicro(), hasNext), pos: entryPosition(e, k)}, true, nil
			}
		}
		return item{}, false, nil
	}
}
