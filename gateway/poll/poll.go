// Package poll runs a poll function now and then every interval until its
// context ends: the one loop behind every polling source (CSAF, CSV, MISP,
// TAXII, a mailbox without IDLE).
package poll

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// DefaultRetryMin is the first wait after a failed poll.
const DefaultRetryMin = 5 * time.Second

// Options configure Run.
type Options struct {
	// Interval is the pause between the end of one poll and the start of
	// the next, so a slow upstream is never polled back to back; required.
	Interval time.Duration
	// RetryMin is the wait after a failed poll. Each failure in a row
	// doubles it, never beyond Interval, and a good poll starts over: a
	// passing fault is retried soon, a lasting one no more often than
	// usual. Default DefaultRetryMin.
	RetryMin time.Duration
	// Log receives failed polls; the poll function logs its own results.
	Log *slog.Logger

	after func(time.Duration) <-chan time.Time // time.After; tests replace it
}

// Stop marks err as ending the loop: Run returns it instead of retrying.
func Stop(err error) error { return stopError{err} }

type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }

// Run calls poll at once and then as Options say until ctx ends, and
// returns nil then. Failed polls are logged and retried; a poll that
// returns Stop(err) ends the loop and Run returns err. Every wait is up to
// a tenth shorter than computed, so sources started together drift apart.
func Run(ctx context.Context, o Options, poll func(ctx context.Context) error) error {
	if o.Interval <= 0 {
		return errors.New("poll: interval must be positive")
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.after == nil {
		o.after = time.After
	}
	failures := 0
	for {
		start := time.Now()
		err := poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if se, ok := errors.AsType[stopError](err); ok {
			return se.err
		}
		wait := o.Interval
		if err != nil {
			failures++
			wait = backoff(o.RetryMin, o.Interval, failures)
			o.Log.WarnContext(ctx, "poll failed; retrying", "error", err, "failures", failures,
				"took_ms", time.Since(start).Milliseconds(), "retry_in", wait.Round(time.Millisecond).String())
		} else {
			failures = 0
		}
		wait -= rand.N(wait/10 + 1)
		select {
		case <-ctx.Done():
			return nil
		case <-o.after(wait):
		}
	}
}

// backoff is lo doubled for every failure after the first, at most hi.
func backoff(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
