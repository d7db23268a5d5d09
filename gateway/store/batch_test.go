package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redisconn"
	"github.com/schakel/schakel/gateway/redistest"
)

// streamWrites stands in for the outbox: it appends each delivery id to one
// stream, so a test can see what a batch enqueued.
type streamWrites struct {
	key string
	ids []string
	err error // returned before anything is queued
}

func (w streamWrites) Queue(ctx context.Context, pipe redis.Pipeliner) error {
	if w.err != nil {
		return w.err
	}
	for _, id := range w.ids {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: w.key, Values: []any{"d", id}})
	}
	return nil
}

// pipelineHook counts pipelines and can fail or hold the ones it is told to.
type pipelineHook struct {
	pipelines atomic.Int64
	// fail makes every pipeline holding a command with this name fail.
	fail atomic.Value // string
	// gate, when set, holds every pipeline until it is closed.
	gate chan struct{}
}

func (h *pipelineHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

func (h *pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		if h.gate != nil {
			<-h.gate
		}
		if name, _ := h.fail.Load().(string); name != "" {
			for _, c := range cmds {
				if strings.EqualFold(c.Name(), name) {
					err := errors.New("injected: connection reset")
					for _, c := range cmds {
						c.SetErr(err)
					}
					return err
				}
			}
		}
		return next(ctx, cmds)
	}
}

func newHookedStore(t *testing.T) (*Store, *pipelineHook, redis.UniversalClient) {
	t.Helper()
	s, r, _ := newStore(t)
	h := &pipelineHook{}
	r.Client.AddHook(h)
	return s, h, r.Client
}

func routedBatch(s *Store, ev *gateway.Event, stream string, ids ...string) *Batch {
	b := NewBatch(ev, t0)
	b.Enqueue(streamWrites{key: s.key(stream), ids: ids})
	var ds []gateway.Delivery
	for _, id := range ids {
		ds = append(ds, gateway.Delivery{ID: id, EventID: ev.ID, Version: ev.Version(), Recipient: gateway.ConstituentRecipient("c1"), Channel: gateway.ChannelWebhook})
	}
	b.Deliveries(ds)
	return b
}

func TestBatchCommitStoresEnqueuesAndMarksRouted(t *testing.T) {
	s, _, rdb := newHookedStore(t)
	ctx := context.Background()
	ev := testEvent("ev-1", t0, 2)
	res, err := s.Commit(ctx, routedBatch(s, ev, "out", "d1", "d2"))
	if err != nil || res != Created {
		t.Fatalf("Commit = %v, %v; want created", res, err)
	}
	if n := rdb.XLen(ctx, s.key("out")).Val(); n != 2 {
		t.Errorf("outbox holds %d entries, want 2", n)
	}
	if routed, err := s.Routed(ctx, ev.ID, ev.Version()); err != nil || !routed {
		t.Errorf("Routed = %v, %v; want true", routed, err)
	}
	states, err := s.Deliveries(ctx, ev.ID, "")
	if err != nil || len(states) != 2 || states[0].State != StateQueued {
		t.Errorf("delivery states = %+v, %v; want two queued", states, err)
	}
	if refs, _ := s.Unrouted(ctx, 0, 10); len(refs) != 0 {
		t.Errorf("Unrouted = %v after a full commit", refs)
	}
	// The same version again: a duplicate that enqueues nothing more.
	res, err = s.Commit(ctx, routedBatch(s, ev, "out", "d1", "d2"))
	if err != nil || res != Duplicate {
		t.Fatalf("second Commit = %v, %v; want duplicate", res, err)
	}
	if n := rdb.XLen(ctx, s.key("out")).Val(); n != 2 {
		t.Errorf("outbox holds %d entries after a duplicate, want 2", n)
	}
}

// Concurrent commits share round trips: 64 batches that queue while the
// first pipelines are held take far fewer than 3 pipelines each, and every
// one of them is answered with its own result.
func TestBatchGroupCommitSharesRoundTrips(t *testing.T) {
	s, h, rdb := newHookedStore(t)
	ctx := context.Background()
	const n = 64
	h.gate = make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]PutResult, n)
	for i := range n {
		wg.Go(func() {
			ev := testEvent(fmt.Sprintf("ev-%d", i), t0, 1)
			results[i], errs[i] = s.Commit(ctx, routedBatch(s, ev, "out", fmt.Sprintf("d%d", i)))
		})
	}
	// Release the held pipelines once every batch is queued or in flight.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.group.mu.Lock()
		waiting := len(s.group.queue)
		s.group.mu.Unlock()
		if waiting+maxLeaders >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(h.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] != Created {
			t.Fatalf("batch %d: %v, %v", i, results[i], errs[i])
		}
	}
	if got := rdb.XLen(ctx, s.key("out")).Val(); got != n {
		t.Errorf("outbox holds %d entries, want %d", got, n)
	}
	t.Logf("%d batches took %d pipelines", n, h.pipelines.Load())
	// One at a time would take 3 pipelines per batch (put, enqueue, route).
	if p := h.pipelines.Load(); p >= n {
		t.Errorf("%d batches took %d pipelines; group commit should need fewer than one per batch", n, p)
	}
}

// A failure after the put leaves the version stored, unrouted and offered to
// recovery; nothing is marked routed that is not enqueued; a route batch
// then finishes it.
func TestBatchFailureHalfwayLeavesVersionForRecovery(t *testing.T) {
	s, h, rdb := newHookedStore(t)
	ctx := context.Background()
	ev := testEvent("ev-half", t0, 1)
	h.fail.Store("xadd")
	if _, err := s.Commit(ctx, routedBatch(s, ev, "out", "d1")); err == nil {
		t.Fatal("Commit succeeded though the enqueue step failed")
	}
	h.fail.Store("")
	if _, err := s.EventVersion(ctx, ev.ID, ev.Version()); err != nil {
		t.Fatalf("the version is not stored after a failed enqueue: %v", err)
	}
	if routed, _ := s.Routed(ctx, ev.ID, ev.Version()); routed {
		t.Fatal("a version whose deliveries were never enqueued is marked routed")
	}
	refs, err := s.Unrouted(ctx, 0, 10)
	if err != nil || len(refs) != 1 || refs[0].ID != ev.ID {
		t.Fatalf("Unrouted = %v, %v; want the half-committed version", refs, err)
	}
	// A resend is a duplicate that says the version still needs routing.
	if res, err := s.Commit(ctx, routedBatch(s, ev, "out", "d1")); err != nil || res != Duplicate {
		t.Fatalf("resend = %v, %v; want duplicate", res, err)
	}
	rb := RouteBatch(ev, t0)
	rb.Enqueue(streamWrites{key: s.key("out"), ids: []string{"d1"}})
	if _, err := s.Commit(ctx, rb); err != nil {
		t.Fatalf("route batch: %v", err)
	}
	if routed, _ := s.Routed(ctx, ev.ID, ev.Version()); !routed {
		t.Error("the route batch did not mark the version routed")
	}
	if n := rdb.XLen(ctx, s.key("out")).Val(); n != 1 {
		t.Errorf("outbox holds %d entries, want 1", n)
	}
	if refs, _ := s.Unrouted(ctx, 0, 10); len(refs) != 0 {
		t.Errorf("Unrouted still offers %v", refs)
	}
}

// The route step failing after the enqueue leaves deliveries in the outbox
// and the version unrouted: recovery routes it again (at least once, never
// lost).
func TestBatchRouteStepFailureIsRecovered(t *testing.T) {
	s, h, _ := newHookedStore(t)
	ctx := context.Background()
	ev := testEvent("ev-route", t0, 1)
	h.fail.Store("hsetnx") // the queued delivery states travel with the routed mark
	if _, err := s.Commit(ctx, routedBatch(s, ev, "out", "d1")); err == nil {
		t.Fatal("Commit succeeded though the route step failed")
	}
	h.fail.Store("")
	if routed, _ := s.Routed(ctx, ev.ID, ev.Version()); routed {
		t.Fatal("marked routed though the route step failed")
	}
	if refs, _ := s.Unrouted(ctx, 0, 10); len(refs) != 1 {
		t.Fatalf("Unrouted = %v; want the version", refs)
	}
}

// One batch that cannot queue its writes fails alone; the others in the
// same group commit.
func TestBatchFailureIsIsolatedWithinAGroup(t *testing.T) {
	s, _, rdb := newHookedStore(t)
	ctx := context.Background()
	var group []*Batch
	for i := range 5 {
		b := routedBatch(s, testEvent(fmt.Sprintf("ev-g%d", i), t0, 1), "out", fmt.Sprintf("d%d", i))
		if i == 2 {
			b.Enqueue(streamWrites{err: errors.New("bad delivery")})
		}
		if err := s.check(b); err != nil {
			t.Fatal(err)
		}
		group = append(group, b)
	}
	s.commitGroup(ctx, group)
	for i, b := range group {
		if (b.err != nil) != (i == 2) {
			t.Errorf("batch %d: err = %v", i, b.err)
		}
	}
	if n := rdb.XLen(ctx, s.key("out")).Val(); n != 4 {
		t.Errorf("outbox holds %d entries, want the 4 of the good batches", n)
	}
	if routed, _ := s.Routed(ctx, "ev-g2", group[2].version); routed {
		t.Error("the failed batch is marked routed")
	}
}

// A batch whose caller gives up still commits or fails as a whole; the
// caller is answered at once.
func TestBatchCallerCancelDoesNotBlock(t *testing.T) {
	s, h, _ := newHookedStore(t)
	h.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Another caller leads (and is held in Redis); ours waits in the queue.
	go func() { _, _ = s.Commit(context.Background(), routedBatch(s, testEvent("ev-lead", t0, 1), "out", "a")) }()
	for h.pipelines.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.group.mu.Lock()
	s.group.leaders = maxLeaders // no free leader slot: ours must wait
	s.group.mu.Unlock()
	go func() {
		_, err := s.Commit(ctx, routedBatch(s, testEvent("ev-wait", t0, 1), "out", "b"))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Commit = %v; want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a cancelled caller was not answered")
	}
	s.group.mu.Lock()
	s.group.leaders = 1
	s.group.mu.Unlock()
	close(h.gate)
}

// On Redis Cluster each step is split across nodes: a group whose batches
// hash to every node commits whole, and a step that fails on the cluster
// leaves each batch stored, unrouted and recoverable, never routed without
// its deliveries.
func TestBatchOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three redis-server nodes")
	}
	url := redistest.Cluster(t)
	rdb, err := redisconn.New(url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	h := &pipelineHook{}
	rdb.AddHook(h)
	s := New(rdb, "cl")
	ctx := context.Background()
	const n = 48 // enough ids to land on all three nodes
	var group []*Batch
	for i := range n {
		b := routedBatch(s, testEvent(fmt.Sprintf("cl-%d", i), t0, 1), "out", fmt.Sprintf("d%d", i))
		if err := s.check(b); err != nil {
			t.Fatal(err)
		}
		group = append(group, b)
	}
	s.commitGroup(ctx, group)
	for i, b := range group {
		if b.err != nil || b.res != Created {
			t.Fatalf("batch %d: %v, %v", i, b.res, b.err)
		}
		if routed, err := s.Routed(ctx, b.ev.ID, b.version); err != nil || !routed {
			t.Fatalf("batch %d not routed: %v", i, err)
		}
	}
	if got := rdb.XLen(ctx, s.key("out")).Val(); got != n {
		t.Errorf("outbox holds %d entries, want %d", got, n)
	}

	// The enqueue step fails on the cluster: every batch stays stored and
	// unrouted, offered to recovery.
	h.fail.Store("xadd")
	var failed []*Batch
	for i := range n {
		b := routedBatch(s, testEvent(fmt.Sprintf("cl-fail-%d", i), t0, 1), "out2", fmt.Sprintf("f%d", i))
		if err := s.check(b); err != nil {
			t.Fatal(err)
		}
		failed = append(failed, b)
	}
	s.commitGroup(ctx, failed)
	h.fail.Store("")
	for i, b := range failed {
		if b.err == nil {
			t.Fatalf("batch %d succeeded though its enqueue failed", i)
		}
		if _, err := s.EventVersion(ctx, b.ev.ID, b.version); err != nil {
			t.Errorf("batch %d not stored: %v", i, err)
		}
		if routed, _ := s.Routed(ctx, b.ev.ID, b.version); routed {
			t.Errorf("batch %d marked routed without its deliveries", i)
		}
	}
	refs, err := s.Unrouted(ctx, -time.Hour, 1000)
	if err != nil || len(refs) != n {
		t.Errorf("Unrouted = %d refs, %v; want %d", len(refs), err, n)
	}
}
