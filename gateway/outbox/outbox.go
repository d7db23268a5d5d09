// Package outbox queues deliveries in Redis Streams, one stream per channel,
// consumed by a consumer group so several gateway replicas share the work.
//
// Delivery is at-least-once: an entry is acknowledged only after the handler
// reports that the receiver accepted it, or after it was moved to the delayed
// set (retry, deferral) or the dead-letter stream by a Lua script that also
// acknowledges it, so a crash between the two steps can neither lose nor
// duplicate it. Entries of crashed consumers are reclaimed with XAUTOCLAIM.
//
// Keys, per channel (the hash tag keeps one channel's keys in one cluster slot):
//
//	<prefix>:outbox:{<channel>}:stream   stream, field "d" = delivery JSON
//	<prefix>:outbox:{<channel>}:delayed  ZSET, member = delivery JSON, score = due unix ms
//	<prefix>:outbox:{<channel>}:dead     stream: d, reason, attempts, failed_at
//	<prefix>:outbox:{<channel>}:deadidx  HASH delivery_id → dead entry id
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// group is the consumer group every replica joins.
const group = "schakel"

// Status is what became of an attempt. Its words are also the audit
// outcome ("delivery.<status>") and the metrics label.
type Status string

// Outcome statuses. (Delivered, Retry, Defer and Permanent are the Result
// constructors a handler returns; these name what the outbox then did.)
const (
	StatusDelivered Status = "delivered"
	StatusRetry     Status = "retry"
	StatusDeferred  Status = "deferred"
	StatusDead      Status = "dead"
)

// Options tune an Outbox. Zero values take the defaults named per field.
type Options struct {
	Consumer    string        // unique per process; default hostname-pid-random
	ReclaimIdle time.Duration // pending entries idle longer are reclaimed; default 30s. Keep it above the longest handler run.
	MaxAttempts int           // then dead-letter; default 12
	BaseBackoff time.Duration // default 1s; exponential ×2 per attempt with full jitter, capped by MaxBackoff
	MaxBackoff  time.Duration // default 1h
	Batch       int           // XREADGROUP COUNT; default 64
	Block       time.Duration // XREADGROUP BLOCK; default 1s (bounds shutdown latency and delayed-entry polling)
	Grace       time.Duration // how long in-flight handlers may finish after Run's ctx is done; default 10s
	Logger      *slog.Logger
	// OnOutcome is the audit and metrics hook; it is called once per attempt outcome.
	OnOutcome func(ctx context.Context, d gateway.Delivery, o Outcome)
}

// Outcome is what became of one attempt.
type Outcome struct {
	Status   Status
	Attempt  int
	Err      error
	Next     time.Time // when a retried or deferred delivery is due again
	Duration time.Duration
}

// Outbox is the delivery queue of one gateway process.
type Outbox struct {
	rdb    redis.UniversalClient
	prefix string
	opts   Options
	log    *slog.Logger
}

// New returns an Outbox whose keys live under prefix (default "schakel").
func New(rdb redis.UniversalClient, prefix string, opts Options) *Outbox {
	if prefix == "" {
		prefix = "schakel"
	}
	if opts.Consumer == "" {
		opts.Consumer = defaultConsumer()
	}
	if opts.ReclaimIdle <= 0 {
		opts.ReclaimIdle = 30 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 12
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Hour
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.BaseBackoff)
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	// BLOCK 0 would wait forever, and go-redis sends whole milliseconds.
	opts.Block = max(opts.Block, time.Millisecond)
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{rdb: rdb, prefix: prefix, opts: opts, log: log.With("consumer", opts.Consumer)}
}

func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "schakel"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// keys of one channel.
type keys struct{ stream, delayed, dead, deadidx string }

func (o *Outbox) keys(ch gateway.Channel) keys {
	base := o.prefix + ":outbox:{" + string(ch) + "}:"
	return keys{stream: base + "stream", delayed: base + "delayed", dead: base + "dead", deadidx: base + "deadidx"}
}

func checkChannel(ch gateway.Channel) error {
	if !slices.Contains(gateway.Channels, ch) {
		return fmt.Errorf("channel: unknown channel %q", ch)
	}
	return nil
}

// Enqueue appends deliveries to their channels' streams in one pipelined round
// trip. A delivery's Attempt starts at 1 and Created at now when unset. Either
// every delivery is valid or none is written; on a Redis error some may have
// been written, and enqueueing all again only risks duplicates, which
// receivers drop by delivery_id.
func (o *Outbox) Enqueue(ctx context.Context, ds ...gateway.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	pipe := o.rdb.Pipeline()
	if err := o.Entries(ds...).Queue(ctx, pipe); err != nil {
		return err
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("enqueue %d deliveries: %w", len(ds), err)
	}
	return nil
}

// Entries are deliveries to append as part of a caller's unit of work: the
// store commits them in the round trip that routes an event version
// (store.Batch.Enqueue), and a failure there is a failed enqueue.
type Entries struct {
	o  *Outbox
	ds []gateway.Delivery
}

// Entries returns ds as writes for a store batch.
func (o *Outbox) Entries(ds ...gateway.Delivery) Entries { return Entries{o: o, ds: ds} }

// Queue adds the appends to pipe; it checks every delivery before adding any.
func (e Entries) Queue(ctx context.Context, pipe redis.Pipeliner) error {
	o, ds := e.o, e.ds
	now := time.Now().UTC()
	payloads := make([][]byte, len(ds))
	var verr gateway.ValidationError
	for i, d := range ds {
		if d.ID == "" {
			verr.Add(fmt.Sprintf("/%d/delivery_id", i), "must not be empty")
		}
		if err := checkChannel(d.Channel); err != nil {
			verr.Add(fmt.Sprintf("/%d/channel", i), fmt.Sprintf("unknown channel %q", d.Channel))
		}
		d.Attempt = max(d.Attempt, 1)
		if d.Created.IsZero() {
			d.Created = now
		}
		b, err := json.Marshal(d)
		if err != nil {
			verr.Add(fmt.Sprintf("/%d", i), err.Error())
		}
		payloads[i] = b
	}
	if err := verr.Err(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	for i, d := range ds {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: o.keys(d.Channel).stream, Values: []any{"d", payloads[i]}})
	}
	return nil
}

type resultKind uint8

const (
	kindNone resultKind = iota // a handler that returned Result{}: treated as a retry, never as success
	kindDelivered
	kindRetry
	kindDefer
	kindPermanent
)

// Result is what a handler says about one attempt. Build it with Delivered,
// Retry, Defer or Permanent; the zero Result counts as a failed attempt.
type Result struct {
	kind  resultKind
	err   error
	after time.Duration
	until time.Time
}

// Delivered: the receiver accepted the delivery.
func Delivered() Result { return Result{kind: kindDelivered} }

// Retry: the attempt failed and may succeed later. after > 0 is a floor (the
// receiver's Retry-After), else the exponential back-off alone decides.
func Retry(err error, after time.Duration) Result {
	return Result{kind: kindRetry, err: err, after: after}
}

// Defer: rate limited; the delivery is due again at until. This is not an
// attempt (its count stays) and a deferred delivery is never dead-lettered.
func Defer(until time.Time) Result { return Result{kind: kindDefer, until: until} }

// Permanent: the receiver refused for good; the delivery becomes a dead letter at once.
func Permanent(err error) Result { return Result{kind: kindPermanent, err: err} }

// Handler attempts one delivery. It should return when ctx is cancelled.
type Handler func(ctx context.Context, d gateway.Delivery) Result

// Status names what r asks for: delivered, retry, deferred or dead ("" for
// the zero Result). It lets connector tests check how a response maps.
func (r Result) Status() Status {
	switch r.kind {
	case kindDelivered:
		return StatusDelivered
	case kindRetry:
		return StatusRetry
	case kindDefer:
		return StatusDeferred
	case kindPermanent:
		return StatusDead
	}
	return ""
}

// Err is the failure a Retry or Permanent result carries.
func (r Result) Err() error { return r.err }

// After is a Retry's floor (the receiver's Retry-After), 0 if none.
func (r Result) After() time.Duration { return r.after }

// Until is when a deferred delivery is due again.
func (r Result) Until() time.Time { return r.until }
