package limit

import (
	"context"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Leasing takes tokens from Redis a few at a time for high limits and hands
// them out locally, so a key allowed thousands of events a minute costs one
// Redis round trip per lease instead of one per event. Low limits stay exact:
// below leaseMinRate per second every event asks Redis. A replica holds at
// most one lease per key, valid for leaseTTL, so across replicas a limit can
// be exceeded by at most (replicas × lease size) within that window.
type Leasing struct {
	l  *Limiter
	mu sync.Mutex
	m  map[string]*lease
}

type lease struct {
	tokens  int
	expires time.Time
}

const (
	leaseMinRate = 20.0 // events per second
	leaseTTL     = time.Second
	leaseMax     = 50
)

// NewLeasing wraps l.
func NewLeasing(l *Limiter) *Leasing { return &Leasing{l: l, m: make(map[string]*lease)} }

// Allow takes one token for key, from a local lease when one is held.
func (p *Leasing) Allow(ctx context.Context, key string, lim Limit) (Decision, error) {
	perSec := float64(lim.Rate) / lim.Period.Seconds()
	if lim.Unlimited() || lim.Period <= 0 || perSec < leaseMinRate {
		return p.l.Allow(ctx, key, lim)
	}
	now := time.Now()
	p.mu.Lock()
	if ls := p.m[key]; ls != nil && ls.tokens > 0 && now.Before(ls.expires) {
		ls.tokens--
		left := ls.tokens // read under the lock: other callers take from the same lease
		p.mu.Unlock()
		return Decision{Allowed: true, Remaining: left}, nil
	}
	p.mu.Unlock()
	n := min(int(perSec*leaseTTL.Seconds()/10), leaseMax)
	if n > 1 {
		got, err := p.l.allowN(ctx, key, lim, n)
		if err != nil {
			return Decision{}, err
		}
		if got.Allowed {
			p.mu.Lock()
			if len(p.m) > 100000 {
				clear(p.m) // bound memory under key floods; leases are an optimisation
			}
			p.m[key] = &lease{tokens: n - 1, expires: now.Add(leaseTTL)}
			p.mu.Unlock()
			return Decision{Allowed: true, Remaining: got.Remaining}, nil
		}
	}
	// Near the limit: one token at a time, exactly.
	return p.l.Allow(ctx, key, lim)
}

// allowN takes n tokens at once, all or none.
func (l *Limiter) allowN(ctx context.Context, key string, lim Limit, n int) (Decision, error) {
	burst := lim.Burst
	if burst == 0 {
		burst = lim.Rate
	}
	if n > burst {
		n = burst
	}
	res, err := l.rl.AllowN(ctx, l.prefix+":limit:"+key, redis_rate.Limit{Rate: lim.Rate, Period: lim.Period, Burst: burst}, n)
	if err != nil {
		return Decision{}, err
	}
	return Decision{Allowed: res.Allowed >= n, Remaining: res.Remaining, RetryAfter: res.RetryAfter}, nil
}
