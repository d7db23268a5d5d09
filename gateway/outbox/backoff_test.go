package outbox

import (
	"errors"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	o := New(nil, "", Options{BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	tests := []struct {
		attempt  int
		floor    time.Duration
		min, max time.Duration
	}{
		{1, 0, 0, 100 * time.Millisecond},
		{2, 0, 0, 200 * time.Millisecond},
		{4, 0, 0, 800 * time.Millisecond},
		{5, 0, 0, time.Second}, // 1.6s capped
		{1000, 0, 0, time.Second},
		{1, 3 * time.Second, 3 * time.Second, 3 * time.Second}, // Retry-After above the cap still holds
		{4, 500 * time.Millisecond, 500 * time.Millisecond, 800 * time.Millisecond},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := o.backoff(tt.attempt, tt.floor)
			if d < tt.min || d > tt.max {
				t.Fatalf("backoff(%d, %s) = %s, want in [%s, %s]", tt.attempt, tt.floor, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		// Full jitter spreads retries of many deliveries that failed together.
		if tt.min != tt.max && len(seen) < 10 {
			t.Errorf("backoff(%d, %s) took only %d distinct values in 200 draws", tt.attempt, tt.floor, len(seen))
		}
	}
}

func TestCeilMilli(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	for _, tt := range []struct {
		t    time.Time
		want int64
	}{
		{base, base.UnixMilli()},
		{base.Add(time.Nanosecond), base.UnixMilli() + 1},
		{base.Add(999 * time.Microsecond), base.UnixMilli() + 1},
	} {
		if got := ceilMilli(tt.t); got != tt.want {
			t.Errorf("ceilMilli(%s) = %d, want %d", tt.t, got, tt.want)
		}
	}
}

func TestResultAccessors(t *testing.T) {
	errGone := errors.New("410 gone")
	until := time.Unix(1_800_000_000, 0)
	tests := []struct {
		r      Result
		status Status
		err    error
		after  time.Duration
		until  time.Time
	}{
		{Delivered(), StatusDelivered, nil, 0, time.Time{}},
		{Retry(errGone, 30*time.Second), StatusRetry, errGone, 30 * time.Second, time.Time{}},
		{Defer(until), StatusDeferred, nil, 0, until},
		{Permanent(errGone), StatusDead, errGone, 0, time.Time{}},
		{Result{}, "", nil, 0, time.Time{}},
	}
	for _, tt := range tests {
		if tt.r.Status() != tt.status || tt.r.Err() != tt.err || tt.r.After() != tt.after || !tt.r.Until().Equal(tt.until) {
			t.Errorf("%+v: got (%q, %v, %s, %s), want (%q, %v, %s, %s)", tt.r,
				tt.r.Status(), tt.r.Err(), tt.r.After(), tt.r.Until(), tt.status, tt.err, tt.after, tt.until)
		}
	}
}

// The status words are written to audit records ("delivery.<status>"),
// delivery states and metrics labels: renaming one breaks dashboards and
// stored history.
func TestStatusWords(t *testing.T) {
	for st, want := range map[Status]string{StatusDelivered: "delivered", StatusRetry: "retry", StatusDeferred: "deferred", StatusDead: "dead"} {
		if string(st) != want {
			t.Errorf("status %q, want %q", st, want)
		}
	}
}
