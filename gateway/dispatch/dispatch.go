// Package dispatch turns queued deliveries into attempts: it loads the event
// version, asks the policy again (the registry may have changed since
// routing), applies the recipient's rate limit, projects the event for the
// recipient and hands it to the channel's sink.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/egress"
	"github.com/schakel/schakel/gateway/httpstatus"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

// Sink delivers one projected event to one target. c is nil for recipients
// that are not constituents (mailing lists, released named persons).
// Its errors are decided by httpstatus.Classify: an *httpstatus.StatusError
// by its status, gateway.Permanent and gateway.RetryAfter as marked, and
// anything else is retried with back-off.
type Sink interface {
	Deliver(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, ev *gateway.Event, handling string) error
}

// Digester is a Sink that merges deliveries the rate limit defers into one
// message per target (e-mail digests, ARCHITECTURE §5). The dispatcher hands
// it every delivery it defers, authorised and projected, and before the limit
// asks whether a delivery already went out inside a digest, which is then
// acknowledged without spending the recipient's limit.
type Digester interface {
	Sink
	// Hold keeps a deferred delivery for the next message to its target.
	Hold(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, ev *gateway.Event, handling string) error
	// Digested reports whether d already went out inside a digest.
	Digested(ctx context.Context, d gateway.Delivery) (bool, error)
}

// Events loads stored event versions.
type Events interface {
	EventVersion(ctx context.Context, id, version string) (*gateway.Event, error)
}

// States records delivery states for the admin API, in a caller's pipeline.
type States interface {
	QueueDeliveryStates(ctx context.Context, pipe redis.Pipeliner, states ...store.DeliveryState) error
}

// Auditor records attempts, in a caller's pipeline.
type Auditor interface {
	Queue(ctx context.Context, pipe redis.Pipeliner, recs ...audit.Record) error
}

// Limiter is the per-recipient GCRA limiter.
type Limiter interface {
	Allow(ctx context.Context, key string, lim limit.Limit) (limit.Decision, error)
}

// Options configure a Dispatcher.
type Options struct {
	Redis   redis.UniversalClient // for the one round trip that records an outcome
	Events  Events
	States  States
	Audit   Auditor
	Reg     *registry.Registry
	Limiter Limiter
	Limits  gateway.Limits // the configured per-channel defaults
	// Lists maps a mailing list address to its audience channel
	// (ChannelCommunityList or ChannelPublic).
	Lists   map[string]gateway.Channel
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// Dispatcher builds outbox handlers. Safe for concurrent use.
type Dispatcher struct {
	rdb     redis.UniversalClient
	events  Events
	states  States
	audit   Auditor
	reg     *registry.Registry
	limiter Limiter
	limits  gateway.Limits
	lists   map[string]gateway.Channel
	metrics *metrics.Metrics
	log     *slog.Logger

	recs    chan record // grouped outcome writes, while Run runs
	running atomic.Bool

	mu    sync.Mutex
	cache map[string]*cached // "id\x00version" → event and assessment
}

type cached struct {
	ev      *gateway.Event
	regVer  int64
	assess  *policy.Assessment
	touched time.Time
	// pending counts the deliveries routing announced; the entry is dropped
	// after the last, so the cache holds what is in flight, not history.
	pending int
}

// New returns a Dispatcher.
func New(o Options) *Dispatcher {
	return &Dispatcher{rdb: o.Redis, events: o.Events, states: o.States, audit: o.Audit, reg: o.Reg, limiter: o.Limiter, limits: o.Limits,
		lists: o.Lists, metrics: o.Metrics, log: o.Log, cache: make(map[string]*cached), recs: make(chan record, maxGroup)}
}

const cacheMax = 16384

// assessment returns the event version and its policy assessment against the
// current registry, cached because one event fans out to many deliveries.
func (d *Dispatcher) assessment(ctx context.Context, id, version string, snap *registry.Snapshot) (*policy.Assessment, error) {
	key := id + "\x00" + version
	d.mu.Lock()
	c := d.cache[key]
	if c != nil && c.pending > 0 {
		c.pending--
		if c.pending == 0 {
			delete(d.cache, key)
		}
	}
	d.mu.Unlock()
	if c != nil && c.regVer == snap.Version {
		return c.assess, nil
	}
	var ev *gateway.Event
	if c != nil {
		ev = c.ev
	} else {
		var err error
		if ev, err = d.events.EventVersion(ctx, id, version); err != nil {
			return nil, err
		}
	}
	a := policy.Assess(ev, snap)
	d.mu.Lock()
	if c != nil && c.pending > 0 {
		c.regVer, c.assess = snap.Version, a
	} else if c == nil {
		if len(d.cache) >= cacheMax {
			d.evict()
		}
		d.cache[key] = &cached{ev: ev, regVer: snap.Version, assess: a, touched: time.Now()}
	}
	d.mu.Unlock()
	return a, nil
}

// evict drops the older half of the cache; called with mu held.
func (d *Dispatcher) evict() {
	cut := time.Now().Add(-time.Minute)
	for k, c := range d.cache {
		if c.touched.Before(cut) || len(d.cache) > cacheMax/2 {
			delete(d.cache, k)
		}
	}
}

// Prime hands the dispatcher an event version routing is storing with the
// number of deliveries it makes, so they need not read it back from Redis;
// a negative count takes back deliveries that were not made.
func (d *Dispatcher) Prime(ev *gateway.Event, deliveries int) {
	key := ev.ID + "\x00" + ev.Version()
	d.mu.Lock()
	if len(d.cache) >= cacheMax {
		d.evict()
	}
	if c, ok := d.cache[key]; ok {
		c.pending += deliveries
		if c.pending <= 0 {
			delete(d.cache, key)
		}
	} else if deliveries > 0 {
		d.cache[key] = &cached{ev: ev, regVer: -1, touched: time.Now(), pending: deliveries}
	}
	d.mu.Unlock()
}

// Handler returns the outbox handler for channel ch delivering through sink.
func (d *Dispatcher) Handler(ch gateway.Channel, sink Sink) outbox.Handler {
	dg, _ := sink.(Digester)
	return func(ctx context.Context, dl gateway.Delivery) outbox.Result {
		if dg != nil {
			done, err := dg.Digested(ctx, dl)
			if err != nil {
				return outbox.Retry(fmt.Errorf("digest state: %w", err), 0)
			}
			if done {
				return outbox.Delivered()
			}
		}
		snap := d.reg.Current()
		a, err := d.assessment(ctx, dl.EventID, dl.Version, snap)
		if errors.Is(err, gateway.ErrNotFound) {
			return outbox.Permanent(fmt.Errorf("event %s version %s is no longer stored", dl.EventID, dl.Version))
		}
		if err != nil {
			return outbox.Retry(err, 0)
		}
		c, decision, err := d.authorise(a, snap, dl)
		if err != nil {
			return outbox.Permanent(err)
		}
		ev := a.Event()
		project := func() *gateway.Event { return a.ProjectFor(dl.Recipient, c) }
		if lim := d.limitFor(ch, c); lim.Rate > 0 {
			key := string(ch) + ":" + dl.Recipient.String() + ":" + dl.Target
			dec, err := d.limiter.Allow(ctx, key, lim)
			if err != nil {
				return outbox.Retry(fmt.Errorf("rate limiter: %w", err), 0)
			}
			if !dec.Allowed {
				if ev.Priority != gateway.PriorityCritical {
					if dg != nil {
						if err := dg.Hold(ctx, dl, c, project(), decision.Handling); err != nil {
							d.log.WarnContext(ctx, "deferred delivery not held for a digest; it will go out on its own", "delivery_id", dl.ID, "error", err)
						}
					}
					return outbox.Defer(time.Now().Add(dec.RetryAfter))
				}
				d.metrics.CriticalBypass.WithLabelValues(string(ch)).Inc()
			}
		}
		if err := sink.Deliver(ctx, dl, c, project(), decision.Handling); err != nil {
			// A destination the egress policy blocks stays blocked until
			// the operator changes the policy; retrying would only wait.
			if errors.Is(err, egress.ErrBlocked) {
				return outbox.Permanent(err)
			}
			// One decision for every sink: a 410 means the same from a
			// webhook receiver as from a MISP. A receiver's Retry-After is a
			// floor on a counted attempt, not an outbox.Defer, so a receiver
			// that never stops answering 429 still ends in the dead letters.
			switch dec := httpstatus.Classify(err); dec.Class {
			case httpstatus.Permanent:
				return outbox.Permanent(err)
			case httpstatus.Defer:
				return outbox.Retry(err, dec.After)
			}
			return outbox.Retry(err, 0)
		}
		return outbox.Delivered()
	}
}

// authorise re-applies the policy at send time: a delivery routed before a
// registry change must not go out if the policy no longer allows it. Deliveries
// an admin released are held to the release rules, not the table.
func (d *Dispatcher) authorise(a *policy.Assessment, snap *registry.Snapshot, dl gateway.Delivery) (*gateway.Constituent, policy.Decision, error) {
	ev := a.Event()
	switch dl.Recipient.Kind {
	case gateway.RecipientList:
		audience, ok := d.lists[dl.Target]
		if !ok {
			return nil, policy.Decision{}, fmt.Errorf("mailing list %s is no longer configured", dl.Target)
		}
		if dec := policy.DecideAudience(ev, audience); dec.Verdict == policy.Deliver {
			return nil, dec, nil
		}
		return nil, policy.Decision{}, fmt.Errorf("policy now denies %s to list %s", ev.TLP.Label(), dl.Target)
	case gateway.RecipientPerson:
		if !dl.Released {
			return nil, policy.Decision{}, errors.New("a named-person delivery must be an admin release")
		}
		dec := policy.DecideRelease(ev, dl.Recipient, dl.Channel)
		if dec.Verdict != policy.Deliver {
			return nil, dec, fmt.Errorf("policy denies the release: %s", dec.Rule)
		}
		return nil, dec, nil
	case gateway.RecipientConstituent:
	default:
		return nil, policy.Decision{}, fmt.Errorf("no channel delivers to a recipient of kind %q", dl.Recipient.Kind)
	}
	c, ok := snap.Get(dl.Recipient.ID)
	if !ok {
		return nil, policy.Decision{}, fmt.Errorf("constituent %q is no longer registered", dl.Recipient.ID)
	}
	if dl.Released {
		dec := policy.DecideRelease(ev, dl.Recipient, dl.Channel)
		if dec.Verdict != policy.Deliver {
			return nil, dec, fmt.Errorf("policy denies the release: %s", dec.Rule)
		}
		return c, dec, nil
	}
	var dec policy.Decision
	if dl.Channel == gateway.ChannelEmail {
		dec = policy.Decision{Verdict: policy.Deny, Rule: "contact " + dl.Target + " is no longer registered"}
		for _, ct := range c.Contacts {
			if strings.EqualFold(ct.Email, dl.Target) {
				dec = a.DecideContact(c, ct)
			}
		}
	} else {
		dec = a.Decide(c, dl.Channel)
	}
	if dec.Verdict != policy.Deliver {
		return nil, dec, fmt.Errorf("policy now denies: %s", dec.Rule)
	}
	return c, dec, nil
}

func (d *Dispatcher) limitFor(ch gateway.Channel, c *gateway.Constituent) limit.Limit {
	var own gateway.Limits
	if c != nil {
		own = c.Limits
	}
	pick := func(own, def int) int {
		if own > 0 {
			return own
		}
		return def
	}
	switch ch {
	case gateway.ChannelWebhook:
		return limit.PerMinute(pick(own.WebhookPerMinute, d.limits.WebhookPerMinute))
	case gateway.ChannelEmail:
		return limit.PerHour(pick(own.EmailPerHour, d.limits.EmailPerHour))
	case gateway.ChannelMISPPush:
		return limit.PerMinute(pick(own.MISPPushPerMinute, d.limits.MISPPushPerMinute))
	}
	return limit.Limit{}
}

// OnOutcome records an attempt's outcome: delivery state, audit record and
// metrics. It is the outbox's hook.
func (d *Dispatcher) OnOutcome(ctx context.Context, dl gateway.Delivery, o outbox.Outcome) {
	now := time.Now().UTC()
	st := store.DeliveryState{Delivery: dl, State: stateOf(o.Status), Attempts: o.Attempt, Updated: now}
	rec := audit.Record{Time: now, Actor: "system", Action: "delivery." + string(o.Status), EventID: dl.EventID, Version: dl.Version,
		DeliveryID: dl.ID, Recipient: dl.Recipient.String(), Channel: dl.Channel, TLP: dl.TLP, Rule: dl.Rule, Outcome: string(o.Status), Attempt: o.Attempt}
	if o.Err != nil {
		st.LastError = o.Err.Error()
		rec.Error = o.Err.Error()
	}
	if !o.Next.IsZero() {
		rec.Details = map[string]string{"next": o.Next.UTC().Format(time.RFC3339)}
	}
	if err := d.submit(ctx, st, rec); err != nil {
		d.log.WarnContext(ctx, "delivery state or audit record not written", "delivery_id", dl.ID, "status", o.Status, "error", err)
		if o.Status == outbox.StatusDelivered {
			d.retrySubmit(ctx, st, rec)
		}
	}
	d.metrics.Deliveries.WithLabelValues(string(dl.Channel), string(o.Status)).Inc()
	if o.Status == outbox.StatusDelivered && !dl.Created.IsZero() {
		d.metrics.DeliveryLatency.WithLabelValues(string(dl.Channel)).Observe(now.Sub(dl.Created).Seconds())
	}
	if o.Status == outbox.StatusDead {
		d.log.WarnContext(ctx, "delivery dead-lettered", "delivery_id", dl.ID, "channel", dl.Channel, "recipient", dl.Recipient, "error", rec.Error)
	}
}

// deliveredRecordPatience bounds how long a delivered outcome waits for its
// record to be written (Redis full or away) before the outbox acks it anyway.
const deliveredRecordPatience = time.Minute

// retrySubmit keeps writing a delivered outcome's state and audit record:
// the outbox acks the entry when OnOutcome returns, and an acked delivery
// without its record is one the audit trail never shows. Until it is
// written the entry stays pending, so a crash meanwhile redelivers it.
func (d *Dispatcher) retrySubmit(ctx context.Context, st store.DeliveryState, rec audit.Record) {
	deadline := time.Now().Add(deliveredRecordPatience)
	wait := 50 * time.Millisecond
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := d.submit(ctx, st, rec)
		if err == nil {
			d.log.InfoContext(ctx, "delivered record written after retrying", "delivery_id", st.Delivery.ID)
			return
		}
		wait = min(2*wait, 2*time.Second)
	}
	d.log.ErrorContext(ctx, "delivered record not written; the audit trail lacks this delivery", "delivery_id", st.Delivery.ID, "recipient", st.Delivery.Recipient)
}

// stateOf is the delivery state an attempt's outcome leaves behind.
func stateOf(s outbox.Status) string {
	switch s {
	case outbox.StatusDelivered:
		return store.StateDelivered
	case outbox.StatusRetry:
		return store.StateRetrying
	case outbox.StatusDeferred:
		return store.StateDeferred
	case outbox.StatusDead:
		return store.StateDead
	}
	return string(s)
}
