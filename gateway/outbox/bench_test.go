package outbox_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/redistest"
)

// BenchmarkThroughput enqueues b.N deliveries while one consumer with 32
// handlers drains them with a no-op handler, and reports end-to-end
// deliveries per second (enqueue, read, handle, acknowledge).
func BenchmarkThroughput(b *testing.B) {
	r := redistest.New(b)
	o := outbox.New(r.Client, r.Prefix, outbox.Options{Consumer: "bench", Block: 50 * time.Millisecond})
	ds := make([]gateway.Delivery, b.N)
	for i := range ds {
		ds[i] = delivery(gateway.ChannelWebhook, i)
	}
	var handled atomic.Int64
	done := make(chan struct{})
	h := func(context.Context, gateway.Delivery) outbox.Result {
		if handled.Add(1) == int64(len(ds)) {
			close(done)
		}
		return outbox.Delivered()
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)

	b.ResetTimer()
	start := time.Now()
	go func() { stopped <- o.Run(ctx, gateway.ChannelWebhook, 32, h) }()
	const chunk = 500
	for i := 0; i < len(ds); i += chunk {
		if err := o.Enqueue(ctx, ds[i:min(i+chunk, len(ds))]...); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(len(ds))/elapsed.Seconds(), "deliveries/s")
	cancel()
	if err := <-stopped; err != nil {
		b.Fatal(err)
	}
}
