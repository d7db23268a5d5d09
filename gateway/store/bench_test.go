package store

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPutEvent stores distinct 10-indicator events from 8 goroutines,
// the ingest path's shape. Run against real Redis with REDIS_URL set.
func BenchmarkPutEvent(b *testing.B) {
	s, _, _ := newStore(b)
	s.now = time.Now
	tmpl := testEvent("", t0, 10)
	const workers = 8
	var (
		next     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				ev := *tmpl
				ev.ID = "bench-" + strconv.FormatInt(i, 10)
				if _, err := s.PutEvent(b.Context(), &ev, time.Now()); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N*len(tmpl.Indicators))/elapsed.Seconds(), "indicators/s")
}
