package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/store"
)

// record is one attempt's bookkeeping: its delivery state and audit record.
type record struct {
	st   store.DeliveryState
	rec  audit.Record
	done chan error
}

// maxGroup bounds how many attempts share one round trip.
const maxGroup = 256

// Run writes attempt records in groups: whoever is waiting when a round trip
// ends goes out together in the next, so under load N concurrent outcomes cost
// one Redis round trip instead of N, and when idle a record waits for nobody.
// Without Run, OnOutcome writes each record in its own round trip.
func (d *Dispatcher) Run(ctx context.Context) {
	d.running.Store(true)
	defer func() {
		d.running.Store(false)
		// Drain what was submitted before the stop.
		for {
			select {
			case r := <-d.recs:
				d.write(context.WithoutCancel(ctx), []record{r})
			default:
				return
			}
		}
	}()
	group := make([]record, 0, maxGroup)
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-d.recs:
			group = append(group[:0], r)
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-d.recs:
				group = append(group, r)
			default:
				break more
			}
		}
		d.write(ctx, group)
	}
}

func (d *Dispatcher) write(ctx context.Context, group []record) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pipe := d.rdb.Pipeline()
	var err error
	for _, r := range group {
		err = errors.Join(err, d.states.QueueDeliveryStates(ctx, pipe, r.st), d.audit.Queue(ctx, pipe, r.rec))
	}
	if err == nil {
		_, err = pipe.Exec(ctx)
	}
	for _, r := range group {
		r.done <- err
	}
}

// submit records one attempt, grouped when Run is active.
func (d *Dispatcher) submit(ctx context.Context, st store.DeliveryState, rec audit.Record) error {
	done := make(chan error, 1)
	if !d.running.Load() {
		d.write(ctx, []record{{st: st, rec: rec, done: done}})
		return <-done
	}
	select {
	case d.recs <- record{st: st, rec: rec, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Run may stop between the check and the send: after a short wait,
	// write it ourselves (a duplicate state write is harmless; a lost one
	// is not).
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		if d.running.Load() {
			return <-done
		}
		d.write(ctx, []record{{st: st, rec: rec, done: make(chan error, 1)}})
		return nil
	}
}
