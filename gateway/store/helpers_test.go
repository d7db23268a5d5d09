package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
)

// clock is a settable time source for the Store under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func newStore(t testing.TB) (*Store, *redistest.Redis, *clock) {
	t.Helper()
	r := redistest.New(t)
	c := &clock{t: t0}
	s := New(r.Client, r.Prefix)
	s.now = c.Now
	return s, r, c
}

func testEvent(id string, modified time.Time, indicators int) *gateway.Event {
	ev := &gateway.Event{
		ID:       id,
		Kind:     gateway.KindAdvisory,
		Title:    "Kwetsbaarheden verholpen in Example VPN " + id,
		TLP:      gateway.TLPAmber,
		Source:   gateway.SourceRef{Name: "ncsc-csaf", Org: "NCSC-NL", Format: "csaf"},
		Created:  modified,
		Modified: modified,
		Priority: gateway.PriorityHigh,
		Sectors:  []string{"health"},
	}
	for i := range indicators {
		ev.Indicators = append(ev.Indicators, gateway.Indicator{
			Type: gateway.TypeIPv4, Value: fmt.Sprintf("192.0.2.%d", i%250), Detect: true,
		})
	}
	return ev
}

func ctx(t testing.TB) context.Context { return t.Context() }

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}
