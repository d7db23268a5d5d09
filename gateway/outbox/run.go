package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// opTimeout bounds one Redis call made on behalf of a finished attempt; those
// calls outlive Run's ctx so that a stop does not strand settled work.
const opTimeout = 5 * time.Second

// promoteLimit is how many due delayed entries one script run moves.
const promoteLimit = 256

// Run consumes ch with n concurrent handlers until ctx is done, then stops
// reading, lets in-flight handlers finish (their context is cancelled Grace
// after ctx is done), and returns. Entries it did not finish stay pending and
// are reclaimed later by any consumer. It also promotes due delayed entries
// and reclaims entries that stayed pending longer than ReclaimIdle. Run creates
// the group (MKSTREAM) if needed. It returns an error only when it cannot start.
func (o *Outbox) Run(ctx context.Context, ch gateway.Channel, n int, h Handler) error {
	if err := checkChannel(ch); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if n <= 0 {
		return fmt.Errorf("run %s: n: must be positive, got %d", ch, n)
	}
	if h == nil {
		return fmt.Errorf("run %s: handler: must not be nil", ch)
	}
	base := context.WithoutCancel(ctx)
	hctx, hcancel := context.WithCancel(base)
	defer hcancel()
	r := &runner{
		o:     o,
		ch:    ch,
		k:     o.keys(ch),
		h:     h,
		log:   o.log.With("channel", string(ch)),
		base:  base,
		hctx:  hctx,
		slots: make(chan struct{}, n),
		acks:  make(chan string, n),
		nudge: make(chan time.Time, 1),
		held:  make(map[string]bool),
	}
	if err := r.createGroup(ctx); err != nil {
		return fmt.Errorf("run %s: %w", ch, err)
	}
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		r.ackLoop()
	}()
	var bg sync.WaitGroup
	bg.Go(func() { r.maintain(ctx) })
	r.read(ctx)
	bg.Wait()

	done := make(chan struct{})
	go func() {
		r.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(o.opts.Grace):
		r.log.Warn("grace period over, cancelling handlers", "grace", o.opts.Grace)
		hcancel()
		<-done
	}
	close(r.acks)
	<-ackDone
	r.retire()
	return nil
}

// runner is the state of one Run.
type runner struct {
	o    *Outbox
	ch   gateway.Channel
	k    keys
	h    Handler
	log  *slog.Logger
	base context.Context // Run's ctx without its cancellation, for settling work after a stop
	hctx context.Context // handlers' ctx, cancelled Grace after the stop

	slots    chan struct{} // one token per running handler
	handlers sync.WaitGroup
	acks     chan string    // entry ids to XACK+XDEL in a batch
	nudge    chan time.Time // due time of an entry this runner just delayed

	mu   sync.Mutex
	held map[string]bool // entries with a running handler

	cursor string // XAUTOCLAIM cursor, used by read only
}

func (r *runner) createGroup(ctx context.Context) error {
	// Start at 0 so deliveries enqueued before the first consumer are not skipped.
	err := r.o.rdb.XGroupCreateMkStream(ctx, r.k.stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group: %w", err)
	}
	return nil
}

// acquire takes one handler slot, waiting for it, and up to max-1 more if free.
func (r *runner) acquire(ctx context.Context, want int) int {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	return 1 + r.tryAcquire(want-1)
}

func (r *runner) tryAcquire(want int) int {
	got := 0
	for got < want {
		select {
		case r.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

func (r *runner) release(n int) {
	for range n {
		<-r.slots
	}
}

// read fetches entries, only as many as there are free handlers, so no entry
// waits in this process while it could be worked on elsewhere. Every
// ReclaimIdle/2 it first takes over entries that other consumers left pending.
func (r *runner) read(ctx context.Context) {
	pause := newPause()
	reclaimEvery := max(r.o.opts.ReclaimIdle/2, 10*time.Millisecond)
	var nextReclaim time.Time
	for ctx.Err() == nil {
		n := r.acquire(ctx, r.o.opts.Batch)
		if n == 0 {
			return
		}
		if now := time.Now(); !now.Before(nextReclaim) {
			used, more := r.reclaim(ctx, n)
			// A crashed replica may leave a long backlog: keep sweeping
			// until the whole pending list was scanned, then pause.
			if !more {
				nextReclaim = now.Add(reclaimEvery)
			}
			if n -= used; n == 0 {
				continue
			}
		}
		res, err := r.o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    group,
			Consumer: r.o.opts.Consumer,
			Streams:  []string{r.k.stream, ">"},
			Count:    int64(n),
			Block:    r.o.opts.Block,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			r.release(n)
			if ctx.Err() != nil {
				return
			}
			r.log.Error("read stream", "error", err)
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream was deleted under us (FLUSHDB, an operator); start over.
				if err := r.createGroup(ctx); err != nil {
					r.log.Error("recreate consumer group", "error", err)
				}
			}
			pause.wait(ctx)
			continue
		}
		pause.reset()
		var msgs []redis.XMessage
		for _, s := range res {
			msgs = append(msgs, s.Messages...)
		}
		// Entries read as ctx ended are handled too: they are ours now.
		r.release(n - r.dispatch(msgs, n))
	}
}

// reclaim takes over up to n entries that stayed pending longer than
// ReclaimIdle. It returns how many handler slots it used and whether the
// pending list may hold more such entries.
func (r *runner) reclaim(ctx context.Context, n int) (used int, more bool) {
	start := r.cursor
	if start == "" {
		start = "0-0"
	}
	msgs, next, err := r.o.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   r.k.stream,
		Group:    group,
		Consumer: r.o.opts.Consumer,
		MinIdle:  r.o.opts.ReclaimIdle,
		Start:    start,
		Count:    int64(n),
	}).Result()
	if err != nil {
		if ctx.Err() == nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
			r.log.Error("reclaim pending entries", "error", err)
		}
		return 0, false
	}
	r.cursor = next
	if len(msgs) > 0 {
		r.log.Info("reclaimed pending entries", "count", len(msgs))
	}
	return r.dispatch(msgs, n), len(msgs) == n || next != "0-0"
}

// dispatch starts a handler for each message, on slots the caller took, and
// returns how many slots it used.
func (r *runner) dispatch(msgs []redis.XMessage, n int) int {
	used := 0
	for _, m := range msgs {
		if used == n {
			break // cannot happen: both reads ask for at most n entries
		}
		r.mu.Lock()
		// XAUTOCLAIM may hand back an entry a slow handler of ours still works on.
		dup := r.held[m.ID]
		r.held[m.ID] = true
		r.mu.Unlock()
		if dup {
			continue
		}
		used++
		r.handlers.Add(1)
		go r.handle(m)
	}
	return used
}

func (r *runner) handle(m redis.XMessage) {
	defer r.handlers.Done()
	defer func() {
		r.mu.Lock()
		delete(r.held, m.ID)
		r.mu.Unlock()
		<-r.slots
	}()
	d, err := decode(m)
	if err != nil {
		r.deadUndecodable(m, err)
		return
	}
	log := r.log.With("delivery_id", d.ID, "entry_id", m.ID, "attempt", d.Attempt)
	start := time.Now()
	res := r.call(d, log)
	r.settle(m.ID, d, res, time.Since(start), log)
}

// call runs the handler; a panic counts as a failed attempt, not a crash that
// would repeat on every replica that reclaims the entry.
func (r *runner) call(d gateway.Delivery, log *slog.Logger) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(p))
			res = Retry(fmt.Errorf("handler panicked: %v", p), 0)
		}
	}()
	return r.h(r.hctx, d)
}

func (r *runner) settle(id string, d gateway.Delivery, res Result, took time.Duration, log *slog.Logger) {
	out := Outcome{Attempt: d.Attempt, Err: res.err, Duration: took}
	now := time.Now()
	switch res.kind {
	case kindDelivered:
		out.Status = StatusDelivered
		// Record the outcome before the ack: a crash in between leaves the
		// entry pending (redelivered under the same id, audited twice), never
		// a delivery the audit trail does not show.
		r.report(d, out, log)
		r.acks <- id
		return
	case kindDefer:
		out.Status = StatusDeferred
		out.Next = res.until
		r.delay(id, d, res.until, log)
	case kindPermanent:
		out.Status = StatusDead
		r.dead(id, d, reason(res.err, "permanent failure"), log)
	default: // kindRetry, kindNone
		if res.kind == kindNone {
			out.Err = errors.New("handler returned no result")
		}
		if r.hctx.Err() != nil {
			// The stop cut this attempt short; it is not the receiver's failure.
			// Leave the entry pending for another consumer to reclaim.
			log.Info("attempt interrupted by shutdown, left pending", "error", out.Err)
			return
		}
		if d.Attempt >= r.o.opts.MaxAttempts {
			out.Status = StatusDead
			r.dead(id, d, fmt.Sprintf("gave up after %d attempts: %s", d.Attempt, reason(out.Err, "retry requested")), log)
			break
		}
		out.Status = StatusRetry
		out.Next = now.Add(r.o.backoff(d.Attempt, res.after))
		next := d
		next.Attempt++
		r.delay(id, next, out.Next, log)
	}
	r.report(d, out, log)
}

func reason(err error, fallback string) string {
	if err == nil {
		return fallback
	}
	return err.Error()
}

func (r *runner) report(d gateway.Delivery, out Outcome, log *slog.Logger) {
	if r.o.opts.OnOutcome == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("outcome hook panicked", "panic", fmt.Sprint(p))
		}
	}()
	r.o.opts.OnOutcome(r.base, d, out)
}

// backoff is the wait before attempt+1: full jitter over BaseBackoff·2^(attempt-1)
// capped at MaxBackoff, but never less than floor.
func (o *Outbox) backoff(attempt int, floor time.Duration) time.Duration {
	ceil := o.opts.BaseBackoff
	for i := 1; i < attempt && ceil < o.opts.MaxBackoff; i++ {
		if ceil > o.opts.MaxBackoff/2 {
			ceil = o.opts.MaxBackoff
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, o.opts.MaxBackoff)
	return max(rand.N(ceil+1), floor)
}

func (r *runner) delay(id string, d gateway.Delivery, due time.Time, log *slog.Logger) {
	b, err := json.Marshal(d)
	if err != nil {
		log.Error("encode delivery", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.base, opTimeout)
	defer cancel()
	moved, err := moveDelayed.Run(ctx, r.o.rdb, []string{r.k.stream, r.k.delayed},
		group, id, ceilMilli(due), b).Int()
	switch {
	case err != nil:
		// The entry stays pending and is reclaimed and attempted again.
		log.Error("move to delayed", "error", err)
	case moved == 0:
		log.Debug("entry already settled by another consumer")
	default:
		select {
		case r.nudge <- due:
		default:
		}
	}
}

// ceilMilli rounds up, so an entry is never promoted before it is due.
func ceilMilli(t time.Time) int64 {
	return (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

func (r *runner) dead(id string, d gateway.Delivery, why string, log *slog.Logger) {
	b, err := json.Marshal(d)
	if err != nil {
		log.Error("encode delivery", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.base, opTimeout)
	defer cancel()
	moved, err := moveDead.Run(ctx, r.o.rdb, []string{r.k.stream, r.k.dead, r.k.deadidx},
		group, id, d.ID, b, why, d.Attempt, time.Now().UTC().Format(time.RFC3339Nano)).Int()
	switch {
	case err != nil:
		log.Error("move to dead letters", "error", err)
	case moved == 0:
		log.Debug("entry already settled by another consumer")
	default:
		log.Warn("dead letter", "reason", why)
	}
}

// deadUndecodable parks an entry this package cannot read under a made-up
// delivery id, with its raw payload in the reason, so an operator sees it.
func (r *runner) deadUndecodable(m redis.XMessage, cause error) {
	d := gateway.Delivery{ID: "undecodable-" + m.ID, Channel: r.ch}
	raw := fmt.Sprint(m.Values)
	if len(raw) > 512 {
		raw = raw[:512] + "…"
	}
	log := r.log.With("delivery_id", d.ID, "entry_id", m.ID)
	why := fmt.Sprintf("undecodable stream entry: %v: %s", cause, raw)
	r.dead(m.ID, d, why, log)
	r.report(d, Outcome{Status: StatusDead, Err: cause}, log)
}

func decode(m redis.XMessage) (gateway.Delivery, error) {
	var d gateway.Delivery
	s, ok := m.Values["d"].(string)
	if !ok {
		return d, errors.New("field d: missing")
	}
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return d, fmt.Errorf("field d: %w", err)
	}
	if d.ID == "" {
		return d, errors.New("field d: delivery_id: must not be empty")
	}
	d.Attempt = max(d.Attempt, 1)
	return d, nil
}

// ackLoop acknowledges and deletes delivered entries, as many per round trip
// as have piled up, so a busy channel costs one round trip per batch.
func (r *runner) ackLoop() {
	const maxBatch = 1024
	batch := make([]string, 0, 64)
	for id := range r.acks {
		batch = append(batch[:0], id)
	drain:
		for len(batch) < maxBatch {
			select {
			case id, ok := <-r.acks:
				if !ok {
					break drain
				}
				batch = append(batch, id)
			default:
				break drain
			}
		}
		r.flushAcks(batch)
	}
}

func (r *runner) flushAcks(ids []string) {
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 100 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(r.base, opTimeout)
		// MULTI/EXEC: an acked entry is also deleted, or the stream would keep it.
		_, err = r.o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.XAck(ctx, r.k.stream, group, ids...)
			p.XDel(ctx, r.k.stream, ids...)
			return nil
		})
		cancel()
		if err == nil {
			return
		}
	}
	// They stay pending and are delivered again after ReclaimIdle: a duplicate, never a loss.
	r.log.Error("acknowledge delivered entries", "count", len(ids), "error", err)
}

// maintain promotes due delayed entries until ctx is done.
func (r *runner) maintain(ctx context.Context) {
	at := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			at = time.Now().Add(r.promote(ctx))
			timer.Reset(time.Until(at))
		case due := <-r.nudge:
			if due.Before(at) {
				at = due
				timer.Reset(time.Until(at))
			}
		}
	}
}

// promote moves due delayed entries to the stream and returns how long to
// wait before the next promotion: until the next entry is due, but no longer
// than Block, as other replicas add entries this one does not hear about.
func (r *runner) promote(ctx context.Context) time.Duration {
	wait := r.o.opts.Block
	for ctx.Err() == nil {
		now := time.Now()
		v, err := promote.Run(ctx, r.o.rdb, []string{r.k.stream, r.k.delayed}, now.UnixMilli(), promoteLimit).Slice()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("promote delayed entries", "error", err)
			}
			return wait
		}
		if len(v) != 2 {
			r.log.Error("promote delayed entries: unexpected reply", "reply", fmt.Sprint(v))
			return wait
		}
		if moved, _ := v[0].(int64); moved >= promoteLimit {
			continue
		}
		if s, _ := v[1].(string); s != "" {
			if ms, err := strconv.ParseFloat(s, 64); err == nil {
				wait = min(wait, max(time.UnixMilli(int64(ms)).Sub(now), 0))
			}
		}
		return wait
	}
	return wait
}

// retire removes this consumer from the group when it holds no pending
// entries, so restarts do not pile up dead consumer names.
func (r *runner) retire() {
	ctx, cancel := context.WithTimeout(r.base, opTimeout)
	defer cancel()
	pend, err := r.o.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: r.k.stream, Group: group, Start: "-", End: "+", Count: 1, Consumer: r.o.opts.Consumer,
	}).Result()
	if err != nil || len(pend) > 0 {
		return
	}
	if err := r.o.rdb.XGroupDelConsumer(ctx, r.k.stream, group, r.o.opts.Consumer).Err(); err != nil {
		r.log.Debug("remove consumer", "error", err)
	}
}

// pause backs off after Redis errors: 100ms doubling to 5s.
type pause struct{ d time.Duration }

func newPause() *pause { return &pause{d: 100 * time.Millisecond} }

func (p *pause) reset() { p.d = 100 * time.Millisecond }

func (p *pause) wait(ctx context.Context) {
	t := time.NewTimer(p.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	p.d = min(p.d*2, 5*time.Second)
}
