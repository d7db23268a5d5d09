package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/redistest"
)

// TestDeliveredRecordedBeforeAck: the outcome hook (the audit record) runs
// while the entry is still pending, so a process killed between the two
// redelivers it rather than leaving a delivery the audit trail never shows.
func TestDeliveredRecordedBeforeAck(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	opts := fast(t, "c1")
	var (
		mu      sync.Mutex
		pending []int64
		o       *outbox.Outbox
	)
	opts.OnOutcome = func(ctx context.Context, _ gateway.Delivery, out outbox.Outcome) {
		if out.Status != outbox.StatusDelivered {
			return
		}
		// Give an already-queued ack ample time to reach Redis.
		time.Sleep(100 * time.Millisecond)
		s, err := o.Stats(ctx, gateway.ChannelWebhook)
		if err != nil {
			t.Errorf("Stats: %v", err)
		}
		mu.Lock()
		pending = append(pending, s.Pending)
		mu.Unlock()
	}
	o = outbox.New(r.Client, r.Prefix, opts) // the hook reads o's queue
	if err := o.Enqueue(ctx, delivery(gateway.ChannelWebhook, 1)); err != nil {
		t.Fatal(err)
	}
	run(t, o, gateway.ChannelWebhook, 1, delivered)
	waitFor(t, "the outcome hook", func() bool { mu.Lock(); defer mu.Unlock(); return len(pending) == 1 })
	if pending[0] != 1 {
		t.Fatalf("pending entries while the delivered outcome was recorded: %d, want 1 (acked before the audit record)", pending[0])
	}
	waitFor(t, "the ack after the record", func() bool { return stats(t, o, gateway.ChannelWebhook) == outbox.Stats{} })
}
