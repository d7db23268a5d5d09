package poll

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

var errPoll = errors.New("upstream down")

// TestRunWaits drives Run with a fake clock: every wait it asks for is
// recorded and passes at once; the poll results are scripted, and the
// context ends after the last.
func TestRunWaits(t *testing.T) {
	const interval, retry = 10 * time.Second, time.Second
	ok := error(nil)
	tests := []struct {
		name    string
		results []error
		waits   []time.Duration // nominal; each may be up to a tenth shorter
	}{
		{"first poll at once, then every interval", []error{ok, ok, ok}, []time.Duration{interval, interval}},
		{"failures back off, doubling up to the interval", []error{errPoll, errPoll, errPoll, errPoll, errPoll, errPoll, ok},
			[]time.Duration{retry, 2 * retry, 4 * retry, 8 * retry, interval, interval}},
		{"a good poll starts the back-off over", []error{errPoll, errPoll, ok, errPoll, ok},
			[]time.Duration{retry, 2 * retry, interval, retry}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var waits []time.Duration
			polls := 0
			o := Options{Interval: interval, RetryMin: retry, after: func(d time.Duration) <-chan time.Time {
				if polls == 0 {
					t.Fatal("waited before the first poll")
				}
				waits = append(waits, d)
				c := make(chan time.Time, 1)
				c <- time.Time{}
				return c
			}}
			err := Run(ctx, o, func(context.Context) error {
				err := tc.results[polls]
				polls++
				if polls == len(tc.results) {
					cancel()
				}
				return err
			})
			if err != nil {
				t.Fatalf("Run = %v, want nil once ctx ended", err)
			}
			if polls != len(tc.results) {
				t.Fatalf("polled %d times, want %d", polls, len(tc.results))
			}
			if len(waits) != len(tc.waits) {
				t.Fatalf("waits %v, want %v", waits, tc.waits)
			}
			for i, w := range tc.waits {
				if waits[i] > w || waits[i] < w-w/10 {
					t.Errorf("wait %d = %v, want %v less at most a tenth (all: %v)", i, waits[i], w, waits)
				}
			}
		})
	}
}

// TestRunRealTime runs the loop on the real clock: the first poll comes at
// once however long the interval, polls repeat at a short interval, and
// cancelling the context ends a wait at once.
func TestRunRealTime(t *testing.T) {
	t.Run("first poll at once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		polled := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- Run(ctx, Options{Interval: time.Hour}, func(context.Context) error { close(polled); return nil })
		}()
		select {
		case <-polled:
		case <-time.After(2 * time.Second):
			t.Fatal("no poll at start")
		}
		cancel() // Run is waiting an hour now
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not stop when ctx ended")
		}
	})
	t.Run("interval respected", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		var n atomic.Int32
		_ = Run(ctx, Options{Interval: 100 * time.Millisecond}, func(context.Context) error { n.Add(1); return nil })
		// Polls at 0, ~90-100, ~180-200, ... ms: 5 or 6 in half a second.
		if got := n.Load(); got < 4 || got > 7 {
			t.Fatalf("%d polls in 500ms at a 100ms interval", got)
		}
	})
	t.Run("stop ends the loop with its error", func(t *testing.T) {
		n := 0
		err := Run(t.Context(), Options{Interval: time.Millisecond}, func(context.Context) error {
			n++
			if n == 3 {
				return Stop(errPoll)
			}
			return errors.New("passing")
		})
		if !errors.Is(err, errPoll) || n != 3 {
			t.Fatalf("Run = %v after %d polls, want %v after 3", err, n, errPoll)
		}
	})
	t.Run("interval required", func(t *testing.T) {
		if err := Run(t.Context(), Options{}, func(context.Context) error { return nil }); err == nil {
			t.Fatal("Run without an interval returned nil")
		}
	})
}
