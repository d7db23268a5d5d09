package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// DeadLetter is a delivery that was given up on.
type DeadLetter struct {
	Delivery gateway.Delivery
	Reason   string
	Attempts int
	FailedAt time.Time
}

// defaultDeadLimit applies when DeadLetters is asked for limit <= 0.
const defaultDeadLimit = 100

// DeadLetters lists up to limit dead letters of ch, newest first; ch "" lists
// all channels (gateway.Channels). limit <= 0 means 100.
func (o *Outbox) DeadLetters(ctx context.Context, ch gateway.Channel, limit int) ([]DeadLetter, error) {
	chans := gateway.Channels
	if ch != "" {
		if err := checkChannel(ch); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		chans = []gateway.Channel{ch}
	}
	if limit <= 0 {
		limit = defaultDeadLimit
	}
	cmds := make([]*redis.XMessageSliceCmd, len(chans))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range chans {
			cmds[i] = p.XRevRangeN(ctx, o.keys(c).dead, "+", "-", int64(limit))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	type item struct {
		dl    DeadLetter
		entry string
	}
	var items []item
	for i, cmd := range cmds {
		for _, m := range cmd.Val() {
			dl, err := decodeDead(m)
			if err != nil {
				// Still listed, so an operator can see and delete it.
				o.log.Warn("unreadable dead letter", "channel", string(chans[i]), "entry_id", m.ID, "error", err)
			}
			items = append(items, item{dl, m.ID})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := b.dl.FailedAt.Compare(a.dl.FailedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.entry, a.entry)
	})
	out := make([]DeadLetter, 0, min(limit, len(items)))
	for _, it := range items[:min(limit, len(items))] {
		out = append(out, it.dl)
	}
	return out, nil
}

func decodeDead(m redis.XMessage) (DeadLetter, error) {
	var dl DeadLetter
	var errs []error
	if s, ok := m.Values["d"].(string); !ok {
		errs = append(errs, errors.New("field d: missing"))
	} else if err := json.Unmarshal([]byte(s), &dl.Delivery); err != nil {
		errs = append(errs, fmt.Errorf("field d: %w", err))
	}
	dl.Reason, _ = m.Values["reason"].(string)
	if s, _ := m.Values["attempts"].(string); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("field attempts: %w", err))
		}
		dl.Attempts = n
	}
	if s, _ := m.Values["failed_at"].(string); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("field failed_at: %w", err))
		}
		dl.FailedAt = t
	}
	return dl, errors.Join(errs...)
}

// RetryDead moves the dead letter of deliveryID back to its stream with its
// attempt count reset, and returns the delivery; gateway.ErrNotFound if there
// is no such dead letter.
func (o *Outbox) RetryDead(ctx context.Context, deliveryID string) (gateway.Delivery, error) {
	return o.onDead(ctx, deliveryID, false)
}

// DiscardDead removes a dead letter an analyst decided not to deliver, and
// returns it so the caller can audit the decision; gateway.ErrNotFound if
// unknown. Nothing else ever removes a dead letter.
func (o *Outbox) DiscardDead(ctx context.Context, deliveryID string) (gateway.Delivery, error) {
	return o.onDead(ctx, deliveryID, true)
}

func (o *Outbox) onDead(ctx context.Context, deliveryID string, discard bool) (gateway.Delivery, error) {
	if deliveryID == "" {
		return gateway.Delivery{}, errors.New("dead letter: delivery_id: must not be empty")
	}
	// A concurrent change (another retry, a new dead letter for the same id)
	// makes the script refuse; look again a few times.
	for range 3 {
		d, ok, err := o.deadOnce(ctx, deliveryID, discard)
		if err != nil || ok {
			return d, err
		}
	}
	return gateway.Delivery{}, fmt.Errorf("dead letter %q: changed concurrently, try again", deliveryID)
}

func (o *Outbox) deadOnce(ctx context.Context, deliveryID string, discard bool) (gateway.Delivery, bool, error) {
	notFound := fmt.Errorf("dead letter %q: %w", deliveryID, gateway.ErrNotFound)
	cmds := make([]*redis.StringCmd, len(gateway.Channels))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range gateway.Channels {
			cmds[i] = p.HGet(ctx, o.keys(c).deadidx, deliveryID)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return gateway.Delivery{}, false, fmt.Errorf("retry dead letter %q: %w", deliveryID, err)
	}
	i := slices.IndexFunc(cmds, func(c *redis.StringCmd) bool { return c.Err() == nil })
	if i < 0 {
		return gateway.Delivery{}, false, notFound
	}
	k := o.keys(gateway.Channels[i])
	entry := cmds[i].Val()
	msgs, err := o.rdb.XRangeN(ctx, k.dead, entry, entry, 1).Result()
	if err != nil {
		return gateway.Delivery{}, false, fmt.Errorf("retry dead letter %q: %w", deliveryID, err)
	}
	if len(msgs) == 0 {
		// The index points at nothing: clean it up only if it still does.
		dropStaleIndex.Run(ctx, o.rdb, []string{k.deadidx}, deliveryID, entry)
		return gateway.Delivery{}, false, notFound
	}
	dl, err := decodeDead(msgs[0])
	if err != nil && dl.Delivery.ID == "" {
		return gateway.Delivery{}, false, fmt.Errorf("retry dead letter %q: %w", deliveryID, err)
	}
	d := dl.Delivery
	if discard {
		ok, err := discardDead.Run(ctx, o.rdb, []string{k.dead, k.deadidx}, deliveryID, entry).Int()
		if err != nil {
			return gateway.Delivery{}, false, fmt.Errorf("discard dead letter %q: %w", deliveryID, err)
		}
		return d, ok == 1, nil
	}
	d.Attempt = 1
	b, err := json.Marshal(d)
	if err != nil {
		return gateway.Delivery{}, false, fmt.Errorf("retry dead letter %q: %w", deliveryID, err)
	}
	ok, err := retryDead.Run(ctx, o.rdb, []string{k.stream, k.dead, k.deadidx}, deliveryID, entry, b).Int()
	if err != nil {
		return gateway.Delivery{}, false, fmt.Errorf("retry dead letter %q: %w", deliveryID, err)
	}
	return d, ok == 1, nil
}

// Stats are a channel's queue depths, for metrics.
type Stats struct {
	Ready   int64 // in the stream, not yet read by any consumer
	Pending int64 // read by a consumer and not yet settled: in flight, or left by a stopped or crashed consumer
	Delayed int64 // waiting for a retry or a deferral
	Dead    int64 // dead letters
}

// Stats returns ch's queue depths in one round trip.
func (o *Outbox) Stats(ctx context.Context, ch gateway.Channel) (Stats, error) {
	if err := checkChannel(ch); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	k := o.keys(ch)
	var (
		length, delayed, dead *redis.IntCmd
		pending               *redis.XPendingCmd
	)
	_, _ = o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		length = p.XLen(ctx, k.stream)
		pending = p.XPending(ctx, k.stream, group)
		delayed = p.ZCard(ctx, k.delayed)
		dead = p.XLen(ctx, k.dead)
		return nil
	})
	var s Stats
	var errs []error
	for _, c := range []struct {
		cmd *redis.IntCmd
		dst *int64
	}{{length, &s.Ready}, {delayed, &s.Delayed}, {dead, &s.Dead}} {
		if err := c.cmd.Err(); err != nil {
			errs = append(errs, err)
		}
		*c.dst = c.cmd.Val()
	}
	// No group yet (no consumer ever ran) means nothing is pending.
	if err := pending.Err(); err != nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
		errs = append(errs, err)
	} else if err == nil {
		s.Pending = pending.Val().Count
	}
	if err := errors.Join(errs...); err != nil {
		return Stats{}, fmt.Errorf("stats %s: %w", ch, err)
	}
	// Delivered and moved entries are deleted, so the stream holds exactly the
	// unread and the pending ones.
	s.Ready = max(s.Ready-s.Pending, 0)
	return s, nil
}
