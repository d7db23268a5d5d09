// Package retention deletes what Schakel should no longer keep: events
// whose current version was received longer ago than retention.events, and
// audit records older than retention.audit. Audit records and events hold
// IP addresses and e-mail addresses, which are personal data.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Events is the part of the store retention needs.
type Events interface {
	ExpiredEvents(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
	DeleteEvent(ctx context.Context, id string, cutoff time.Time) (bool, error)
	EachEventID(ctx context.Context, fn func(id string) error) error
}

// Options configure a Sweeper. A zero duration keeps that kind forever.
type Options struct {
	Redis  redis.UniversalClient
	Prefix string
	Events Events
	// EventsAfter and AuditAfter are retention.events and retention.audit.
	EventsAfter time.Duration
	AuditAfter  time.Duration
	Log         *slog.Logger
	Now         func() time.Time // for tests; time.Now when nil
}

// Sweeper deletes expired data; several replicas may sweep at once (every
// step is idempotent).
type Sweeper struct{ o Options }

// New returns a Sweeper.
func New(o Options) *Sweeper {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Prefix == "" {
		o.Prefix = "schakel"
	}
	return &Sweeper{o: o}
}

// Enabled reports whether anything ever expires.
func (s *Sweeper) Enabled() bool { return s.o.EventsAfter > 0 || s.o.AuditAfter > 0 }

// Result counts what one sweep deleted.
type Result struct {
	Events       int
	AuditRecords int64
	AuditStreams int // per-event audit streams that lost records
}

const batch = 500

// Sweep deletes everything expired at the time of the call.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	now := s.o.Now()
	if s.o.EventsAfter > 0 {
		cutoff := now.Add(-s.o.EventsAfter)
		for {
			ids, err := s.o.Events.ExpiredEvents(ctx, cutoff, batch)
			if err != nil {
				return res, err
			}
			for _, id := range ids {
				ok, err := s.o.Events.DeleteEvent(ctx, id, cutoff)
				if err != nil {
					return res, err
				}
				if ok {
					res.Events++
				}
			}
			if len(ids) < batch {
				break
			}
		}
	}
	if s.o.AuditAfter > 0 {
		minID := strconv.FormatInt(now.Add(-s.o.AuditAfter).UnixMilli(), 10)
		n, err := s.o.Redis.XTrimMinID(ctx, s.o.Prefix+":audit", minID).Result()
		if err != nil {
			return res, fmt.Errorf("trim audit stream: %w", err)
		}
		res.AuditRecords += n
		// Each event's own audit stream (gateway/audit's layout), in
		// pipelined batches.
		pipe := s.o.Redis.Pipeline()
		var cmds []*redis.IntCmd
		flush := func() error {
			if pipe.Len() == 0 {
				return nil
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("trim event audit streams: %w", err)
			}
			for _, c := range cmds {
				if c.Val() > 0 {
					res.AuditRecords += c.Val()
					res.AuditStreams++
				}
			}
			cmds = cmds[:0]
			return nil
		}
		err = s.o.Events.EachEventID(ctx, func(id string) error {
			cmds = append(cmds, pipe.XTrimMinID(ctx, s.o.Prefix+":{"+id+"}:audit", minID))
			if len(cmds) >= batch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		if err := flush(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Run sweeps at start and then every interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	if !s.Enabled() {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.o.Log.WarnContext(ctx, "retention sweep failed", "error", err)
		case res.Events > 0 || res.AuditRecords > 0:
			s.o.Log.InfoContext(ctx, "retention sweep deleted expired data", "events", res.Events, "audit_records", res.AuditRecords)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
