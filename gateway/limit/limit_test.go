package limit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/redistest"
)

func TestAllowFiveAMinute(t *testing.T) {
	r := redistest.New(t)
	l := limit.New(r.Client, r.Prefix)
	ctx := context.Background()

	for i := range 5 {
		d, err := l.Allow(ctx, "webhook:acme", limit.PerMinute(5))
		if err != nil {
			t.Fatalf("allow %d: %v", i, err)
		}
		if !d.Allowed {
			t.Fatalf("allow %d: denied, want allowed", i)
		}
		if d.RetryAfter != 0 {
			t.Errorf("allow %d: RetryAfter = %s, want 0 when allowed", i, d.RetryAfter)
		}
		if want := 4 - i; d.Remaining != want {
			t.Errorf("allow %d: Remaining = %d, want %d", i, d.Remaining, want)
		}
	}
	d, err := l.Allow(ctx, "webhook:acme", limit.PerMinute(5))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatal("sixth event in a minute allowed, want denied")
	}
	// One token every 12s: the sixth waits for the first emission interval.
	if d.RetryAfter < 11*time.Second || d.RetryAfter > 12*time.Second {
		t.Errorf("RetryAfter = %s, want about 12s", d.RetryAfter)
	}
	if d.Remaining != 0 {
		t.Errorf("Remaining = %d, want 0", d.Remaining)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	r := redistest.New(t)
	l := limit.New(r.Client, r.Prefix)
	ctx := context.Background()

	lim := limit.PerHour(1)
	for _, key := range []string{"email:a", "email:b", "webhook:a"} {
		d, err := l.Allow(ctx, key, lim)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			t.Errorf("%s: first event denied", key)
		}
	}
	d, err := l.Allow(ctx, "email:a", lim)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Error("email:a: second event in an hour allowed")
	}
	if d.RetryAfter < 59*time.Minute {
		t.Errorf("email:a: RetryAfter = %s, want about 1h", d.RetryAfter)
	}
}

func TestPrefixesAreIndependent(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	a := limit.New(r.Client, r.Prefix+"a")
	b := limit.New(r.Client, r.Prefix+"b")
	if d, _ := a.Allow(ctx, "k", limit.PerHour(1)); !d.Allowed {
		t.Fatal("prefix a: first event denied")
	}
	if d, _ := b.Allow(ctx, "k", limit.PerHour(1)); !d.Allowed {
		t.Error("prefix b: first event denied although only prefix a used its budget")
	}
	// The key lives under the prefix, where redistest (and an operator) can find it.
	n, err := r.Client.Exists(ctx, "rate:"+r.Prefix+"a:limit:k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("key rate:%sa:limit:k not found", r.Prefix)
	}
}

func TestUnlimited(t *testing.T) {
	r := redistest.New(t)
	l := limit.New(r.Client, r.Prefix)
	ctx := context.Background()
	for _, lim := range []limit.Limit{{}, {Rate: 0, Period: time.Minute}, {Rate: -1}} {
		for range 100 {
			d, err := l.Allow(ctx, "k", lim)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || d.Remaining != -1 {
				t.Fatalf("limit %+v: got %+v, want allowed and unlimited", lim, d)
			}
		}
	}
	keys, err := r.Client.Keys(ctx, "rate:"+r.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("unlimited keys wrote %v to Redis", keys)
	}
}

func TestBurstAndRecovery(t *testing.T) {
	r := redistest.New(t)
	l := limit.New(r.Client, r.Prefix)
	ctx := context.Background()

	// 20 a second with a burst of 2: two at once, then one every 50ms.
	lim := limit.Limit{Rate: 20, Period: time.Second, Burst: 2}
	for i, want := range []bool{true, true, false} {
		d, err := l.Allow(ctx, "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != want {
			t.Fatalf("event %d: allowed = %v, want %v", i, d.Allowed, want)
		}
		if !want && (d.RetryAfter <= 0 || d.RetryAfter > 50*time.Millisecond) {
			t.Errorf("event %d: RetryAfter = %s, want in (0, 50ms]", i, d.RetryAfter)
		}
	}
	time.Sleep(60 * time.Millisecond)
	d, err := l.Allow(ctx, "k", lim)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed {
		t.Errorf("after one emission interval: denied, want allowed (%+v)", d)
	}
}

func TestBadInput(t *testing.T) {
	r := redistest.New(t)
	l := limit.New(r.Client, r.Prefix)
	tests := []struct {
		name  string
		key   string
		lim   limit.Limit
		field string
	}{
		{"empty key", "", limit.PerMinute(1), "key"},
		{"no period", "k", limit.Limit{Rate: 5}, "period"},
		{"negative period", "k", limit.Limit{Rate: 5, Period: -time.Second}, "period"},
		{"negative burst", "k", limit.Limit{Rate: 5, Period: time.Second, Burst: -1}, "burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Allow(context.Background(), tt.key, tt.lim)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestRedisUnreachable(t *testing.T) {
	r := redistest.New(t)
	l := limit.New(r.Client, r.Prefix)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := l.Allow(ctx, "k", limit.PerMinute(1))
	if err == nil {
		t.Fatal("no error when Redis cannot be asked")
	}
	if d.Allowed {
		t.Error("failed check reports allowed")
	}
}
