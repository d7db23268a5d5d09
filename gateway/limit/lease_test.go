package limit

import (
	"context"
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
