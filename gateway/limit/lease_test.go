package limit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/redistest"
)

func TestLeasingKeepsLowLimitsExact(t *testing.T) {
	r := redistest.New(t)
	p := NewLeasing(New(r.Client, r.Prefix))
	ctx := context.Background()
	allowed := 0
	for range 10 {
		d, err := p.Allow(ctx, "k", PerMinute(5))
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("5/min allowed %d of 10", allowed)
	}
}

func TestLeasingHighLimitsNeverExceedBudget(t *testing.T) {
	r := redistest.New(t)
	p := NewLeasing(New(r.Client, r.Prefix))
	ctx := context.Background()
	// 6,000/min with a burst of 6,000: within one second at most the burst
	// plus what refills may pass, never more.
	lim := PerMinute(6000)
	allowed := 0
	start := time.Now()
	for range 7000 {
		d, err := p.Allow(ctx, "hot", lim)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	refill := int(time.Since(start).Seconds()*100) + 1
	if allowed > 6000+refill || allowed < 5900 {
		t.Fatalf("allowed %d of 7000 against a burst of 6000 (+%d refill)", allowed, refill)
	}
}

// Deliveries and ingest requests share one Leasing from many goroutines;
// run with -race this catches unlocked access to a lease, and the count
// proves tokens taken from shared leases are all honoured.
func TestLeasingConcurrentTakers(t *testing.T) {
	r := redistest.New(t)
	p := NewLeasing(New(r.Client, r.Prefix))
	ctx := context.Background()
	lim := PerMinute(60000) // leased 50 at a time; the burst covers every call
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 500 {
				d, err := p.Allow(ctx, "shared", lim)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 8000 {
		t.Fatalf("allowed %d of 8000 within the burst", allowed)
	}
}
