package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// Writes is part of a unit of work whose keys another package owns (the
// outbox's streams, the pull-view index, the audit stream). The store
// queues it into the round trip the batch names and reports its failure as
// the batch's failure.
type Writes interface {
	Queue(ctx context.Context, pipe redis.Pipeliner) error
}

// Preparer is Writes that must read before writing, once it is known what
// the put did: update says an earlier version may have left entries to
// replace (the version is not the event's first).
type Preparer interface {
	Prepare(ctx context.Context, update bool) error
}

// Batch is the unit of work that takes one event version from received to
// routed. It is committed in three ordered steps, each one Redis round trip
// shared with the other batches committed at the same time:
//
//  1. put: the version, its summary and a routing-queue entry (one slot);
//  2. enqueue: the global indexes and the version's deliveries (Enqueue);
//  3. route: the deliveries' queued states, the hold, the pull-view index
//     (Index) and the routed mark.
//
// A step runs only when the one before it succeeded, so a version is never
// marked routed unless its deliveries are in the outbox. A failure after
// step 1 leaves the version stored, unrouted and in the routing queue:
// Unrouted finds it and a resend heals it (a duplicate that is still
// unrouted is reported as such). On Redis Cluster each step is split by
// slot; a step counts as done only when every one of its commands
// succeeded on every node.
type Batch struct {
	ev       *gateway.Event
	received time.Time
	// stored: the version is already stored (recovery, a healed
	// duplicate); step 1 is skipped and the global indexes are only filled
	// in where missing.
	stored bool
	// putOnly: store and index the version but leave it unrouted (tools
	// and tests that route by hand).
	putOnly bool

	// content hashes what the version says, without its times; with
	// sameContentIsDuplicate (the times were assigned on receipt) a resend
	// of the current content is a duplicate rather than a new version.
	content                string
	sameContentIsDuplicate bool

	deliveries []DeliveryState
	held       *HeldItem
	enqueue    []Writes
	index      []Writes

	// Filled by the commit.
	res     PutResult
	heal    bool
	oldTLP  string
	oldSrc  string
	queued  *redis.IntCmd
	put     *redis.Cmd
	mark    *redis.Cmd
	err     error
	done    chan struct{}
	version string
}

// NewBatch starts the unit of work for a new version of ev received at
// received (now when zero).
func NewBatch(ev *gateway.Event, received time.Time) *Batch {
	return &Batch{ev: ev, received: received}
}

// RouteBatch is the unit of work for a version that is already stored and
// still has to be routed (recovery after a crash between the steps).
func RouteBatch(ev *gateway.Event, received time.Time) *Batch {
	return &Batch{ev: ev, received: received, stored: true}
}

// Enqueue adds writes that must be durable before the version counts as
// routed: the outbox entries of its deliveries.
func (b *Batch) Enqueue(w Writes) { b.enqueue = append(b.enqueue, w) }

// Index adds writes that go with the routed mark: the pull-view index.
func (b *Batch) Index(w Writes) { b.index = append(b.index, w) }

// Deliveries records the deliveries routing enqueued, as queued, so the admin
// API shows them before the first attempt.
func (b *Batch) Deliveries(ds []gateway.Delivery) {
	for _, d := range ds {
		b.deliveries = append(b.deliveries, DeliveryState{Delivery: d, State: StateQueued, Updated: b.received})
	}
}

// Content sets the hash of what the version says (without its times).
// duplicateBySame says the version's times were assigned on receipt, so the
// same content as the current version is a duplicate: the batch then takes
// the current version's time (the event's Modified is set to it).
func (b *Batch) Content(hash string, duplicateBySame bool) {
	b.content, b.sameContentIsDuplicate = hash, duplicateBySame
}

// Hold records that nobody may receive the version (ARCHITECTURE §4).
func (b *Batch) Hold(h HeldItem) { b.held = &h }

// Commit commits b, sharing its round trips with the batches other callers
// commit at the same time (group commit). It returns once b's own writes
// are done or have failed; a Duplicate wrote nothing but, when the version
// is still unrouted, the queue entry that lets recovery finish it.
func (s *Store) Commit(ctx context.Context, b *Batch) (PutResult, error) {
	if err := s.check(b); err != nil {
		return 0, err
	}
	return s.group.commit(ctx, s, b)
}

// check validates and encodes what step 1 needs, in the caller's goroutine.
func (s *Store) check(b *Batch) error {
	if err := checkEvent(b.ev); err != nil {
		return err
	}
	if b.received.IsZero() {
		b.received = s.now()
	}
	b.received = b.received.UTC()
	if !stampInRange(b.received) {
		return invalid("received", "must lie between 1970 and 2262")
	}
	b.version = b.ev.Version()
	return nil
}

// groupCommit lets concurrent commits share round trips without a
// background goroutine: the first caller to find no free leader slot waits;
// a leader takes every batch queued so far (up to maxGroup) and commits
// them together, then keeps leading until its own batch is done. Batches
// that arrive while a group is in flight form the next group, so under load
// groups grow by themselves and a lone request never waits for company.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*Batch
	leaders int
}

const (
	// maxGroup bounds one group's pipeline (and so its reply buffer).
	maxGroup = 128
	// maxLeaders bounds the groups in flight; more would only queue on Redis.
	maxLeaders = 4
	// commitTimeout bounds a group's round trips: a group serves several
	// requests, so it does not end when one of them gives up.
	commitTimeout = 30 * time.Second
)

func (g *groupCommit) commit(ctx context.Context, s *Store, b *Batch) (PutResult, error) {
	b.done = make(chan struct{})
	g.mu.Lock()
	g.queue = append(g.queue, b)
	lead := g.leaders < maxLeaders
	if lead {
		g.leaders++
	}
	g.mu.Unlock()
	if lead {
		g.lead(ctx, s, b)
	}
	select {
	case <-b.done:
		return b.res, b.err
	case <-ctx.Done():
		// The batch may still commit; a resend is then a duplicate.
		return 0, ctx.Err()
	}
}

// lead commits groups until own is done (or taken by another leader).
func (g *groupCommit) lead(ctx context.Context, s *Store, own *Batch) {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		group := make([]*Batch, n)
		copy(group, g.queue)
		g.queue = g.queue[n:]
		if n == 0 {
			g.leaders--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		s.commitGroup(cctx, group)
		cancel()
		for _, b := range group {
			close(b.done)
		}
		select {
		case <-own.done:
			// Hand the rest of the queue to the next leader only if one is
			// needed: keep leading while batches wait, so they are not left
			// behind when every other leader has gone.
			g.mu.Lock()
			if len(g.queue) == 0 {
				g.leaders--
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
		default:
		}
	}
}

// commitGroup runs the three steps for every batch of group.
func (s *Store) commitGroup(ctx context.Context, group []*Batch) {
	live := s.stepPut(ctx, group)
	live = s.prepare(ctx, live)
	live = s.stepEnqueue(ctx, live)
	live = s.stepHold(ctx, live)
	s.stepRoute(ctx, live)
}

// cmdRange is where one batch's commands sit in a pipeline's replies.
type cmdRange struct{ from, to int }

// exec runs pipe and gives each batch the first error among its own
// commands, so one batch's bad write does not fail the others.
func exec(ctx context.Context, pipe redis.Pipeliner, batches []*Batch, ranges []cmdRange, step string) []*Batch {
	if pipe.Len() == 0 {
		return batches
	}
	cmds, _ := pipe.Exec(ctx)
	ok := batches[:0]
	for i, b := range batches {
		r := ranges[i]
		var err error
		for _, c := range cmds[r.from:r.to] {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
				err = e
				break
			}
		}
		if err != nil {
			b.err = fmt.Errorf("%s event %s: %w", step, b.ev.ID, err)
			continue
		}
		ok = append(ok, b)
	}
	return ok
}

// stepPut stores each new version; it returns the batches that go on to be
// routed or indexed.
func (s *Store) stepPut(ctx context.Context, group []*Batch) []*Batch {
	pipe := s.rdb.Pipeline()
	var puts []*Batch
	var ranges []cmdRange
	for _, b := range group {
		if b.stored {
			continue
		}
		blob, err := json.Marshal(b.ev)
		if err != nil {
			b.err = fmt.Errorf("encode event %s: %w", b.ev.ID, err)
			continue
		}
		ev := b.ev
		sum, err := json.Marshal(Summary{
			ID: ev.ID, Title: ev.Title, Kind: ev.Kind, TLP: ev.TLP, Source: ev.Source.Name,
			Priority: ev.Priority, Modified: ev.Modified, Received: b.received, Indicators: len(ev.Indicators),
		})
		if err != nil {
			b.err = fmt.Errorf("encode summary %s: %w", ev.ID, err)
			continue
		}
		from := pipe.Len()
		// The routing-queue entry goes first: if the version is stored but
		// a later step never happens (Redis full or gone), recovery still
		// finds it. Eval, not EvalSha: a pipeline cannot fall back on
		// NOSCRIPT.
		b.queued = pipe.ZAddNX(ctx, s.key("routing"), redis.Z{Score: float64(b.received.UnixMilli()), Member: routingMember(ev.ID, b.version)})
		b.put = putEventScript.Eval(ctx, pipe, []string{
			s.eventKey(ev.ID, "cur"), s.eventKey(ev.ID, "v", b.version),
			s.eventKey(ev.ID, "versions"), s.eventKey(ev.ID, "sum"),
		}, b.version, nanos(ev.Modified), nanos(b.received), blob, sum, string(ev.TLP), ev.Source.Name,
			b.content, flag(b.sameContentIsDuplicate))
		puts = append(puts, b)
		ranges = append(ranges, cmdRange{from, pipe.Len()})
	}
	stored := exec(ctx, pipe, puts, ranges, "store")
	var next []*Batch
	var unneeded []any
	for _, b := range group {
		if b.err != nil {
			continue
		}
		if b.stored {
			b.res = Duplicate
			next = append(next, b)
		}
	}
	for _, b := range stored {
		reply, err := b.put.Slice()
		if err != nil {
			b.err = fmt.Errorf("store event %s: %w", b.ev.ID, err)
			continue
		}
		code, _ := reply[0].(int64)
		heal, _ := reply[1].(int64)
		if len(reply) == 4 {
			b.oldTLP, _ = reply[2].(string)
			b.oldSrc, _ = reply[3].(string)
		}
		queuedMember := routingMember(b.ev.ID, b.version)
		switch code {
		case 0:
			b.res = Duplicate
			if len(reply) == 3 {
				// The same content under a time assigned on receipt: the
				// duplicate is the current version.
				if err := b.takeVersion(reply[2]); err != nil {
					b.err = err
					continue
				}
			}
			if heal == 0 {
				if b.queued.Val() == 1 {
					// The entry added in advance is not needed.
					unneeded = append(unneeded, queuedMember)
				}
				continue
			}
			b.heal = true
			next = append(next, b)
		case 1:
			b.res = Created
			next = append(next, b)
		case 2:
			b.res = Updated
			next = append(next, b)
		case 3:
			b.err = fmt.Errorf("%w: event %s was delivered by source %q; a source may only update its own events", ErrOtherSource, b.ev.ID, b.oldSrc)
		default:
			b.err = fmt.Errorf("store event %s: unexpected script reply %v", b.ev.ID, reply)
		}
	}
	if len(unneeded) > 0 {
		// Best effort: Unrouted drops a stale entry anyway.
		s.rdb.ZRem(ctx, s.key("routing"), unneeded...)
	}
	return next
}

// takeVersion makes the batch (and its event) the stored version v.
func (b *Batch) takeVersion(v any) error {
	version, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, version)
	if err != nil {
		return fmt.Errorf("store event %s: current version %q: %w", b.ev.ID, version, err)
	}
	b.ev.Modified, b.version = t, version
	return nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// routes reports whether b goes on past the global indexes: a new version,
// or a stored one being routed. A healed duplicate only gets its indexes
// back; the caller decides whether it still needs routing.
func (b *Batch) routes() bool {
	return !b.putOnly && (b.res != Duplicate || (b.stored && !b.heal))
}

// prepare lets Preparers read what they replace.
func (s *Store) prepare(ctx context.Context, live []*Batch) []*Batch {
	ok := live[:0]
	for _, b := range live {
		if b.routes() {
			if err := b.prepareAll(ctx); err != nil {
				b.err = err
				continue
			}
		}
		ok = append(ok, b)
	}
	return ok
}

func (b *Batch) prepareAll(ctx context.Context) error {
	for _, list := range [][]Writes{b.enqueue, b.index} {
		for _, w := range list {
			if p, ok := w.(Preparer); ok {
				if err := p.Prepare(ctx, b.res != Created); err != nil {
					return fmt.Errorf("prepare event %s: %w", b.ev.ID, err)
				}
			}
		}
	}
	return nil
}

// stepEnqueue writes the global indexes and the deliveries.
func (s *Store) stepEnqueue(ctx context.Context, live []*Batch) []*Batch {
	pipe := s.rdb.Pipeline()
	ranges := make([]cmdRange, 0, len(live))
	ok := live[:0]
	for _, b := range live {
		from := pipe.Len()
		ev := b.ev
		score := float64(b.received.UnixMilli())
		zadd := pipe.ZAdd
		if b.res == Duplicate {
			// Only fill in what a crash between the steps lost.
			zadd = pipe.ZAddNX
		}
		member := redis.Z{Score: score, Member: ev.ID}
		zadd(ctx, s.key("events"), member)
		zadd(ctx, s.key("events", "src", ev.Source.Name), member)
		zadd(ctx, s.key("events", "tlp", string(ev.TLP)), member)
		if b.stored {
			// The put step wrote the routing-queue entry for every other
			// batch; a stored version routed again gets it back here.
			pipe.ZAddNX(ctx, s.key("routing"), redis.Z{Score: score, Member: routingMember(ev.ID, b.version)})
		}
		if b.oldTLP != "" && b.oldTLP != string(ev.TLP) {
			pipe.ZRem(ctx, s.key("events", "tlp", b.oldTLP), ev.ID)
		}
		if b.oldSrc != "" && b.oldSrc != ev.Source.Name {
			pipe.ZRem(ctx, s.key("events", "src", b.oldSrc), ev.ID)
		}
		if b.routes() {
			if err := queueAll(ctx, pipe, b.enqueue); err != nil {
				// Nothing of this batch may run: drop what it queued.
				b.err = fmt.Errorf("enqueue event %s: %w", ev.ID, err)
				truncate(pipe, from)
				continue
			}
		}
		ok = append(ok, b)
		ranges = append(ranges, cmdRange{from, pipe.Len()})
	}
	return exec(ctx, pipe, ok, ranges, "index")
}

// stepHold records holds; they are rare and take their own round trips.
func (s *Store) stepHold(ctx context.Context, live []*Batch) []*Batch {
	ok := live[:0]
	for _, b := range live {
		if b.routes() && b.held != nil {
			if err := s.Hold(ctx, *b.held); err != nil {
				b.err = err
				continue
			}
		}
		ok = append(ok, b)
	}
	return ok
}

// stepRoute writes the queued states and the pull-view index, and marks the
// versions routed.
func (s *Store) stepRoute(ctx context.Context, live []*Batch) {
	pipe := s.rdb.Pipeline()
	ranges := make([]cmdRange, 0, len(live))
	var routed []*Batch
	for _, b := range live {
		if !b.routes() {
			continue
		}
		from := pipe.Len()
		err := s.QueueDeliveryStates(ctx, pipe, b.deliveries...)
		if err == nil {
			err = queueAll(ctx, pipe, b.index)
		}
		if err != nil {
			b.err = fmt.Errorf("route event %s: %w", b.ev.ID, err)
			truncate(pipe, from)
			continue
		}
		id := b.ev.ID
		b.mark = markRoutedScript.Eval(ctx, pipe,
			[]string{s.eventKey(id, "cur"), s.eventKey(id, "routed"), s.eventKey(id, "v", b.version)}, b.version)
		pipe.ZRem(ctx, s.key("routing"), routingMember(id, b.version))
		routed = append(routed, b)
		ranges = append(ranges, cmdRange{from, pipe.Len()})
	}
	for _, b := range exec(ctx, pipe, routed, ranges, "mark routed") {
		if n, _ := b.mark.Int64(); n == 0 {
			b.err = fmt.Errorf("event %q version %q: %w", b.ev.ID, b.version, gateway.ErrNotFound)
		}
	}
}

func queueAll(ctx context.Context, pipe redis.Pipeliner, ws []Writes) error {
	for _, w := range ws {
		if err := w.Queue(ctx, pipe); err != nil {
			return err
		}
	}
	return nil
}

// truncate drops the commands queued after the first n, so a batch whose
// writes could not all be queued leaves nothing behind in a shared pipeline.
func truncate(pipe redis.Pipeliner, n int) {
	if pipe.Len() == n {
		return
	}
	kept := append([]redis.Cmder(nil), pipe.Cmds()[:n]...)
	pipe.Discard()
	_ = pipe.BatchProcess(context.Background(), kept...)
}
