// Package limit rate-limits deliveries and ingest per key with GCRA in Redis
// (github.com/go-redis/redis_rate), so every gateway replica shares one budget
// per recipient and channel.
package limit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit allows Rate events per Period, with bursts of up to Burst events.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int // 0 means Rate
}

// PerMinute allows n events a minute, all of them at once if they come together.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute} }

// PerHour allows n events an hour, all of them at once if they come together.
func PerHour(n int) Limit { return Limit{Rate: n, Period: time.Hour} }

// Unlimited reports whether l lets everything through.
func (l Limit) Unlimited() bool { return l.Rate <= 0 }

// Decision is the limiter's answer for one event.
type Decision struct {
	Allowed bool
	// RetryAfter is how long to wait before the next event is allowed; 0 when allowed.
	RetryAfter time.Duration
	// Remaining is how many more events are allowed right now; -1 when unlimited.
	Remaining int
}

// Limiter applies limits per key.
type Limiter struct {
	rl     *redis_rate.Limiter
	prefix string
}

// New returns a Limiter whose keys live under prefix (redis_rate puts its own
// "rate:" in front, so a key ends up as rate:<prefix>:limit:<key>).
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	if prefix == "" {
		prefix = "schakel"
	}
	return &Limiter{rl: redis_rate.NewLimiter(rdb), prefix: prefix}
}

// Allow takes one token for key (namespaced under prefix). A Limit with Rate <= 0 means unlimited.
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) (Decision, error) {
	if lim.Unlimited() {
		return Decision{Allowed: true, Remaining: -1}, nil
	}
	if key == "" {
		return Decision{}, errors.New("limit key: must not be empty")
	}
	if lim.Period <= 0 {
		return Decision{}, fmt.Errorf("limit period: must be positive, got %s", lim.Period)
	}
	if lim.Burst < 0 {
		return Decision{}, fmt.Errorf("limit burst: must not be negative, got %d", lim.Burst)
	}
	burst := lim.Burst
	if burst == 0 {
		burst = lim.Rate
	}
	res, err := l.rl.Allow(ctx, l.prefix+":limit:"+key, redis_rate.Limit{Rate: lim.Rate, Period: lim.Period, Burst: burst})
	if err != nil {
		return Decision{}, fmt.Errorf("limit %q: %w", key, err)
	}
	d := Decision{Allowed: res.Allowed > 0, Remaining: res.Remaining}
	if !d.Allowed && res.RetryAfter > 0 {
		d.RetryAfter = res.RetryAfter
	}
	return d, nil
}
