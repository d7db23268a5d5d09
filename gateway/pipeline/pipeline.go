// Package pipeline takes an event from any source through normalisation,
// defaults, dedupe and storage to routing: one delivery per (recipient,
// channel) that the policy allows, appended to the outbox before the source
// is told the event was accepted.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

// Store is what the pipeline needs of the event store. Commit is the one
// write path of routing: the store owns the unit of work (store.Batch) and
// commits concurrent ones together.
type Store interface {
	Commit(ctx context.Context, b *store.Batch) (store.PutResult, error)
	EventVersion(ctx context.Context, id, version string) (*gateway.Event, error)
	Routed(ctx context.Context, id, version string) (bool, error)
	Unrouted(ctx context.Context, olderThan time.Duration, limit int) ([]store.VersionRef, error)
	Held(ctx context.Context, eventID string) (store.HeldItem, error)
	Release(ctx context.Context, eventID, by string, to []gateway.Addressee) (store.HeldItem, error)
}

// Outbox is where deliveries wait for their channel: routing hands them to
// the store's batch, a release enqueues them directly.
type Outbox interface {
	Entries(ds ...gateway.Delivery) outbox.Entries
	Enqueue(ctx context.Context, ds ...gateway.Delivery) error
}

// Indexer records who may see an event version in the pull views.
type Indexer interface {
	Index(a *policy.Assessment, snap *registry.Snapshot, added time.Time) *views.Placement
}

// Auditor records what happened.
type Auditor interface {
	Append(ctx context.Context, recs ...audit.Record) error
}

// MailingList is a configured list and the audience it reaches.
type MailingList struct {
	Address  string
	Audience gateway.Channel // ChannelCommunityList or ChannelPublic
}

// Config is the routing configuration.
type Config struct {
	DefaultTLP gateway.TLP
	// Push lists the push channels that have a sink; routing creates
	// deliveries only for these.
	Push         map[gateway.Channel]bool
	MailingLists []MailingList
	// Routed, when set, is told how many deliveries of an event version are
	// being enqueued (and, with a negative count, when fewer were), so the
	// in-process dispatcher can keep it instead of reading it back.
	Routed func(ev *gateway.Event, deliveries int)
	// Views, when set, indexes every routed version for the pull views.
	Views Indexer
}

// Pipeline is safe for concurrent use.
type Pipeline struct {
	store   Store
	outbox  Outbox
	audit   Auditor
	reg     *registry.Registry
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time
}

// New wires a pipeline.
func New(st Store, ob Outbox, au Auditor, reg *registry.Registry, cfg Config, m *metrics.Metrics, log *slog.Logger) *Pipeline {
	if cfg.DefaultTLP == "" {
		cfg.DefaultTLP = gateway.TLPAmber
	}
	return &Pipeline{store: st, outbox: ob, audit: au, reg: reg, cfg: cfg, log: log, metrics: m, now: time.Now}
}

// Ingest normalises, stores and routes ev. A *gateway.ValidationError means
// nothing was stored; indicator problems alone do not stop the event and are
// returned in Result.Rejected.
func (p *Pipeline) Ingest(ctx context.Context, src gateway.Source, ev *gateway.Event) (gateway.Result, error) {
	start := p.now()
	received := start.UTC()
	rejected, stamped, err := p.prepare(src, ev, received)
	if err != nil {
		p.metrics.Rejected.WithLabelValues(src.Name, "invalid").Inc()
		return gateway.Result{}, err
	}
	hash, err := contentHash(ev)
	if err != nil {
		return gateway.Result{}, err
	}
	r := p.planRoute(ev, received)
	// Announce the deliveries before they exist, so a consumer that takes
	// one before Commit returns finds the event in memory; take the
	// announcement back when nothing was routed. announced keeps the
	// version announced: a duplicate by content takes the stored one.
	announced := *ev
	p.announce(&announced, len(r.ds))
	b := p.batch(store.NewBatch(ev, received), r, received)
	b.Content(hash, stamped)
	res, err := p.store.Commit(ctx, b)
	if err != nil || res == store.Duplicate {
		p.announce(&announced, -len(r.ds))
	}
	if err != nil {
		return gateway.Result{}, fmt.Errorf("store event %s: %w", ev.ID, err)
	}
	out := gateway.Result{ID: ev.ID, Version: ev.Version(), Rejected: rejected}
	switch res {
	case store.Duplicate:
		out.Status = gateway.StatusDuplicate
		routed, err := p.store.Routed(ctx, ev.ID, ev.Version())
		if err != nil {
			return gateway.Result{}, fmt.Errorf("routing state of %s: %w", ev.ID, err)
		}
		p.metrics.Ingested.WithLabelValues(src.Name, string(gateway.StatusDuplicate)).Inc()
		if routed {
			return out, nil
		}
		// An earlier attempt stored this version but crashed before routing
		// finished: finish it now rather than lose it.
		stored, err := p.store.EventVersion(ctx, ev.ID, ev.Version())
		if err != nil {
			return gateway.Result{}, fmt.Errorf("load unrouted %s: %w", ev.ID, err)
		}
		n, held, err := p.Route(ctx, stored, received)
		if err != nil {
			return gateway.Result{}, err
		}
		out.Deliveries, out.Held = n, held
		return out, nil
	case store.Updated:
		out.Status, out.Update = gateway.StatusAccepted, true
		p.metrics.Ingested.WithLabelValues(src.Name, "updated").Inc()
	default:
		out.Status = gateway.StatusAccepted
		p.metrics.Ingested.WithLabelValues(src.Name, string(gateway.StatusAccepted)).Inc()
	}
	p.routed(ctx, r)
	out.Deliveries, out.Held = len(r.ds), r.held != nil
	p.metrics.IngestDuration.WithLabelValues(src.Name).Observe(p.now().Sub(start).Seconds())
	return out, nil
}

// prepare applies normalisation and the ingest defaults of ARCHITECTURE §3.
// It returns the indicator problems that did not stop the event, and whether
// the version's time was assigned on receipt (the event carried none).
func (p *Pipeline) prepare(src gateway.Source, ev *gateway.Event, received time.Time) ([]gateway.FieldError, bool, error) {
	problems := normalize.Event(ev)
	var fatal bool
	for _, fe := range problems {
		if !strings.HasPrefix(fe.Field, "/indicators/") {
			fatal = true
		}
	}
	if fatal {
		return nil, false, &gateway.ValidationError{Fields: problems}
	}
	stamped := ev.Created.IsZero() && ev.Modified.IsZero()
	if src.DefaultTLP == "" {
		src.DefaultTLP = p.cfg.DefaultTLP
	}
	Defaults(ev, src, received)
	if len(problems) > 0 {
		p.metrics.Rejected.WithLabelValues(src.Name, "indicator").Add(float64(len(problems)))
		p.log.Warn("indicators rejected", "source", src.Name, "event", ev.ID, "problems", len(problems), "first", problems[0].Error())
	}
	return problems, stamped, nil
}

// Defaults applies the ingest defaults of ARCHITECTURE §3 to a normalised
// event from src received at received: the source speaks only for itself,
// the source's TLP when the event has none, a UUIDv5 id when it has none,
// the receive time when it has no times, priority normal. schakel convert
// applies the same defaults offline.
func Defaults(ev *gateway.Event, src gateway.Source, received time.Time) {
	ev.Source.Name = src.Name // a source can only speak for itself
	ev.Source.Own = src.Own   // and cannot claim to be the relay
	if ev.Source.Format == "" {
		ev.Source.Format = src.Format
	}
	if ev.TLP == "" {
		ev.TLP = src.DefaultTLP
	}
	if ev.ID == "" {
		ev.ID = derivedID(ev)
	}
	if ev.Created.IsZero() {
		ev.Created = received
	}
	if ev.Modified.IsZero() {
		ev.Modified = ev.Created
	}
	ev.Created, ev.Modified = ev.Created.UTC(), ev.Modified.UTC()
	if ev.Priority == "" {
		ev.Priority = gateway.PriorityNormal
	}
}

// contentHash is what a version says, without its times: a resend of the
// same content whose time was assigned on receipt is then a duplicate,
// not an update.
func contentHash(ev *gateway.Event) (string, error) {
	c := *ev
	c.Created, c.Modified = time.Time{}, time.Time{}
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("hash event %s: %w", ev.ID, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// namespace is Schakel's UUIDv5 namespace for derived event ids.
var namespace = [16]byte{0x6b, 0x1f, 0x3e, 0x52, 0x8a, 0x0c, 0x4d, 0x3a, 0x9e, 0x27, 0x51, 0x04, 0xc3, 0x9b, 0x6d, 0x11}

// derivedID gives an event without an id a stable UUIDv5 from its source and
// source ref, or from its content when it has no ref, so a resent copy is a
// duplicate rather than a new event.
func derivedID(ev *gateway.Event) string {
	name := ev.Source.Name + "\x00" + ev.Source.Ref
	if ev.Source.Ref == "" {
		body, _ := json.Marshal(struct {
			T string
			D string
			I []gateway.Indicator
		}{ev.Title, ev.Description, ev.Indicators})
		name = ev.Source.Name + "\x00content\x00" + string(body)
	}
	return gateway.UUIDv5(namespace, name)
}

// Route creates the deliveries for one stored event version, or holds it
// when the policy lets nobody receive it, then marks the version routed.
func (p *Pipeline) Route(ctx context.Context, ev *gateway.Event, received time.Time) (int, bool, error) {
	r := p.planRoute(ev, received)
	p.announce(ev, len(r.ds))
	if _, err := p.store.Commit(ctx, p.batch(store.RouteBatch(ev, received), r, received)); err != nil {
		p.announce(ev, -len(r.ds))
		return 0, false, fmt.Errorf("route %s: %w", ev.ID, err)
	}
	p.routed(ctx, r)
	return len(r.ds), r.held != nil, nil
}

// routing is the plan for one event version under one registry snapshot.
type routing struct {
	snap *registry.Snapshot
	a    *policy.Assessment
	ds   []gateway.Delivery
	held *store.HeldItem
}

func (p *Pipeline) planRoute(ev *gateway.Event, received time.Time) routing {
	snap := p.reg.Current()
	a := policy.Assess(ev, snap)
	r := routing{snap: snap, a: a, ds: p.plan(a, snap, received)}
	if hold, reason := a.Held(snap.Constituents, len(r.ds), p.cfg.Push); hold {
		r.held = &store.HeldItem{EventID: ev.ID, Version: ev.Version(), TLP: ev.TLP, Title: ev.Title, Reason: reason, HeldAt: received}
	}
	return r
}

// batch fills b with the plan: deliveries into the outbox, their queued
// states, the hold and the pull-view entry.
func (p *Pipeline) batch(b *store.Batch, r routing, received time.Time) *store.Batch {
	if len(r.ds) > 0 {
		b.Enqueue(p.outbox.Entries(r.ds...))
		b.Deliveries(r.ds)
	}
	if r.held != nil {
		b.Hold(*r.held)
	}
	if p.cfg.Views != nil {
		b.Index(p.cfg.Views.Index(r.a, r.snap, received))
	}
	return b
}

// announce tells the in-process dispatcher how many deliveries of ev are
// coming (negative: fewer than announced).
func (p *Pipeline) announce(ev *gateway.Event, deliveries int) {
	if deliveries != 0 && p.cfg.Routed != nil {
		p.cfg.Routed(ev, deliveries)
	}
}

// routed runs once a version's batch is committed: the hold is audited and
// metrics counted.
func (p *Pipeline) routed(ctx context.Context, r routing) {
	ev := r.a.Event()
	if r.held != nil {
		p.metrics.Held.Inc()
		p.auditEvent(ctx, ev, "event.held", r.held.Reason)
	}
	if ev.Kind == gateway.KindNotification {
		p.metrics.Unowned.Add(float64(r.a.Unowned()))
	}
	p.metrics.Routed.Add(float64(len(r.ds)))
}

// plan lists the push deliveries the policy allows and subscriptions want.
func (p *Pipeline) plan(a *policy.Assessment, snap *registry.Snapshot, received time.Time) []gateway.Delivery {
	ev := a.Event()
	version := ev.Version()
	var ds []gateway.Delivery
	add := func(recipient gateway.Recipient, ch gateway.Channel, target string, d policy.Decision) {
		ds = append(ds, gateway.Delivery{
			ID: gateway.DeliveryID(ev.ID, version, recipient, ch, target), EventID: ev.ID, Version: version,
			Recipient: recipient, Channel: ch, Target: target, TLP: ev.TLP, Priority: ev.Priority,
			Rule: d.Rule, Created: received,
		})
	}
	for i := range snap.Constituents {
		c := &snap.Constituents[i]
		if ok, _ := policy.Subscribed(ev, c); !ok {
			continue
		}
		if p.cfg.Push[gateway.ChannelWebhook] && len(c.Webhooks) > 0 {
			if d := a.Decide(c, gateway.ChannelWebhook); d.Verdict == policy.Deliver {
				for _, w := range c.Webhooks {
					add(gateway.ConstituentRecipient(c.ID), gateway.ChannelWebhook, w.URL, d)
				}
			}
		}
		if p.cfg.Push[gateway.ChannelMISPPush] && c.MISPPush != nil {
			if d := a.Decide(c, gateway.ChannelMISPPush); d.Verdict == policy.Deliver {
				add(gateway.ConstituentRecipient(c.ID), gateway.ChannelMISPPush, c.MISPPush.URL, d)
			}
		}
		if p.cfg.Push[gateway.ChannelEmail] {
			for _, ct := range c.Contacts {
				if d := a.DecideContact(c, ct); d.Verdict == policy.Deliver {
					add(gateway.ConstituentRecipient(c.ID), gateway.ChannelEmail, ct.Email, d)
				}
			}
		}
	}
	if p.cfg.Push[gateway.ChannelEmail] {
		for _, l := range p.cfg.MailingLists {
			if d := policy.DecideAudience(ev, l.Audience); d.Verdict == policy.Deliver {
				add(gateway.ListRecipient(l.Address), gateway.ChannelEmail, l.Address, d)
			}
		}
	}
	return ds
}

func (p *Pipeline) auditEvent(ctx context.Context, ev *gateway.Event, action, detail string) {
	rec := audit.Record{Time: p.now().UTC(), Actor: "system", Action: action, EventID: ev.ID, Version: ev.Version(), TLP: ev.TLP, Rule: detail}
	if err := p.audit.Append(ctx, rec); err != nil {
		p.log.WarnContext(ctx, "audit append failed", "action", action, "event", ev.ID, "error", err)
	}
}

// Recover re-routes versions that were stored but not routed (a crash between
// the two). Run it at start-up and now and then.
func (p *Pipeline) Recover(ctx context.Context, olderThan time.Duration) (int, error) {
	refs, err := p.store.Unrouted(ctx, olderThan, 1000)
	if err != nil {
		return 0, fmt.Errorf("list unrouted: %w", err)
	}
	n := 0
	for _, r := range refs {
		ev, err := p.store.EventVersion(ctx, r.ID, r.Version)
		if errors.Is(err, gateway.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("load %s: %w", r.ID, err)
		}
		if _, _, err := p.Route(ctx, ev, p.now().UTC()); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ErrRelease is returned when a release asks for something the policy never
// allows, even on an analyst's word.
var ErrRelease = errors.New("release not allowed")

// Release sends a held event to the recipients an admin names, and records it.
// The policy decides which channels a release may use (TLP:RED goes only to
// named e-mail addresses; other levels may also go to constituents' webhooks
// and MISP push).
func (p *Pipeline) Release(ctx context.Context, eventID, by string, to []gateway.Addressee) (store.HeldItem, int, error) {
	h, err := p.store.Held(ctx, eventID)
	if err != nil {
		return store.HeldItem{}, 0, err
	}
	if len(to) == 0 {
		return store.HeldItem{}, 0, fmt.Errorf("%w: recipients: name at least one recipient", ErrRelease)
	}
	ev, err := p.store.EventVersion(ctx, h.EventID, h.Version)
	if err != nil {
		return store.HeldItem{}, 0, fmt.Errorf("load held event: %w", err)
	}
	snap := p.reg.Current()
	version := ev.Version()
	now := p.now().UTC()
	rule := gateway.ReleasedRule(by)
	var ds []gateway.Delivery
	add := func(r gateway.Recipient, ch gateway.Channel, target string) {
		ds = append(ds, gateway.Delivery{ID: gateway.DeliveryID(ev.ID, version, r, ch, target),
			EventID: ev.ID, Version: version, Recipient: r, Channel: ch, Target: target,
			TLP: ev.TLP, Priority: ev.Priority, Rule: rule, Released: true, Created: now})
	}
	for i, ad := range to {
		var r gateway.Recipient
		switch {
		case ad.Email != "":
			r = gateway.PersonRecipient(ad.Email)
		case ad.Constituent != "":
			r = gateway.ConstituentRecipient(ad.Constituent)
		default:
			return store.HeldItem{}, 0, fmt.Errorf("%w: recipients[%d]: needs email or constituent", ErrRelease, i)
		}
		chs, err := policy.ReleaseChannels(ev, r)
		if err != nil {
			return store.HeldItem{}, 0, fmt.Errorf("%w: recipients[%d]: %w", ErrRelease, i, err)
		}
		if r.Kind == gateway.RecipientPerson {
			for _, ch := range chs {
				if !p.cfg.Push[ch] {
					return store.HeldItem{}, 0, fmt.Errorf("%w: recipients[%d]: the %s channel is not configured", ErrRelease, i, channelName(ch))
				}
				add(r, ch, ad.Email)
			}
			continue
		}
		c, ok := snap.Get(r.ID)
		if !ok {
			return store.HeldItem{}, 0, fmt.Errorf("%w: recipients[%d].constituent: unknown constituent %q", ErrRelease, i, ad.Constituent)
		}
		for _, ch := range chs {
			if !p.cfg.Push[ch] {
				continue
			}
			switch ch {
			case gateway.ChannelWebhook:
				for _, w := range c.Webhooks {
					add(r, ch, w.URL)
				}
			case gateway.ChannelMISPPush:
				if c.MISPPush != nil {
					add(r, ch, c.MISPPush.URL)
				}
			}
		}
	}
	if len(ds) == 0 {
		return store.HeldItem{}, 0, fmt.Errorf("%w: recipients: none of them has a configured channel", ErrRelease)
	}
	if err := p.outbox.Enqueue(ctx, ds...); err != nil {
		return store.HeldItem{}, 0, fmt.Errorf("enqueue release: %w", err)
	}
	released, err := p.store.Release(ctx, eventID, by, to)
	if err != nil {
		return store.HeldItem{}, 0, err
	}
	recs := make([]audit.Record, 0, len(ds))
	for _, d := range ds {
		recs = append(recs, audit.Record{Time: now, Actor: by, Action: "held.released", EventID: ev.ID, Version: version,
			DeliveryID: d.ID, Recipient: d.Recipient.String(), Channel: d.Channel, TLP: ev.TLP, Rule: rule})
	}
	if err := p.audit.Append(ctx, recs...); err != nil {
		return released, len(ds), fmt.Errorf("audit release: %w", err)
	}
	return released, len(ds), nil
}

// Push returns the push channels that have a sink, for explanations.
func (p *Pipeline) Push() policy.Push {
	out := make(policy.Push, len(p.cfg.Push))
	for ch, ok := range p.cfg.Push {
		out[ch] = ok
	}
	return out
}

// channelName is ch as the admin API's messages name it.
func channelName(ch gateway.Channel) string {
	if ch == gateway.ChannelEmail {
		return "e-mail"
	}
	return string(ch)
}
