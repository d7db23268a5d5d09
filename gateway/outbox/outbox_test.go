package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/redistest"
)

// fast returns options with millisecond timings so the package's tests stay quick.
func fast(t *testing.T, consumer string) outbox.Options {
	return outbox.Options{
		Consumer:    consumer,
		ReclaimIdle: 5 * time.Second,
		MaxAttempts: 12,
		BaseBackoff: time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		Batch:       16,
		Block:       20 * time.Millisecond,
		Grace:       time.Second,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func delivery(ch gateway.Channel, i int) gateway.Delivery {
	recipient := fmt.Sprintf("constituent-%d", i)
	target := "https://hooks.example/" + recipient
	return gateway.Delivery{
		ID:        gateway.DeliveryID("ev-1", "v1", gateway.ConstituentRecipient(recipient), ch, target),
		EventID:   "ev-1",
		Version:   "v1",
		Recipient: gateway.ConstituentRecipient(recipient),
		Channel:   ch,
		Target:    target,
		TLP:       gateway.TLP("AMBER"),
		Rule:      "sector",
	}
}

// call is one handler invocation.
type call struct {
	d        gateway.Delivery
	at       time.Time
	consumer string
}

// recorder collects handler calls and outcomes.
type recorder struct {
	mu       sync.Mutex
	calls    []call
	outcomes []outcome
}

type outcome struct {
	id string
	o  outbox.Outcome
}

func (r *recorder) handler(consumer string, h outbox.Handler) outbox.Handler {
	return func(ctx context.Context, d gateway.Delivery) outbox.Result {
		r.mu.Lock()
		r.calls = append(r.calls, call{d: d, at: time.Now(), consumer: consumer})
		r.mu.Unlock()
		return h(ctx, d)
	}
}

func (r *recorder) onOutcome(_ context.Context, d gateway.Delivery, o outbox.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes = append(r.outcomes, outcome{d.ID, o})
}

func (r *recorder) callsFor(id string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if c.d.ID == id {
			out = append(out, c)
		}
	}
	return out
}

func (r *recorder) outcomesFor(id string) []outbox.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []outbox.Outcome
	for _, o := range r.outcomes {
		if o.id == id {
			out = append(out, o.o)
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// run starts o.Run in the background and returns a stop function that
// cancels it and waits for it; the test's cleanup stops it too.
func run(t *testing.T, o *outbox.Outbox, ch gateway.Channel, n int, h outbox.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, ch, n, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stats(t *testing.T, o *outbox.Outbox, ch gateway.Channel) outbox.Stats {
	t.Helper()
	s, err := o.Stats(context.Background(), ch)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func delivered(context.Context, gateway.Delivery) outbox.Result { return outbox.Delivered() }

func TestEveryDeliveryHandledOnce(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}
	opts := fast(t, "c1")
	opts.OnOutcome = rec.onOutcome
	o := outbox.New(r.Client, r.Prefix, opts)

	var want []gateway.Delivery
	for i := range 60 {
		want = append(want, delivery(gateway.ChannelWebhook, i))
	}
	// Half before any consumer exists, half while one runs.
	if err := o.Enqueue(ctx, want[:30]...); err != nil {
		t.Fatal(err)
	}
	stop := run(t, o, gateway.ChannelWebhook, 4, rec.handler("c1", delivered))
	if err := o.Enqueue(ctx, want[30:]...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every delivery handled", func() bool { return rec.count() >= len(want) })
	waitFor(t, "queue drained", func() bool { return stats(t, o, gateway.ChannelWebhook) == outbox.Stats{} })

	for _, d := range want {
		calls := rec.callsFor(d.ID)
		if len(calls) != 1 {
			t.Errorf("%s handled %d times, want once", d.ID, len(calls))
			continue
		}
		got := calls[0].d
		if got.Attempt != 1 || got.Recipient != d.Recipient || got.Target != d.Target || got.TLP != d.TLP || got.Created.IsZero() {
			t.Errorf("handled %+v, want %+v with attempt 1 and a creation time", got, d)
		}
		if outs := rec.outcomesFor(d.ID); len(outs) != 1 || outs[0].Status != outbox.StatusDelivered || outs[0].Attempt != 1 {
			t.Errorf("%s outcomes %+v, want one delivered", d.ID, outs)
		}
	}
	// Delivered entries are deleted, not just acknowledged, so the stream does not grow.
	stream := r.Prefix + ":outbox:{webhook}:stream"
	if n := r.Client.XLen(ctx, stream).Val(); n != 0 {
		t.Errorf("%s holds %d entries after delivery, want 0", stream, n)
	}
	// A consumer that stops with nothing pending leaves the group, so
	// restarts do not pile up consumer names.
	stop()
	consumers, err := r.Client.XInfoConsumers(ctx, stream, "schakel").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 0 {
		t.Errorf("consumers after a clean stop: %+v, want none", consumers)
	}
}

func TestRetryBacksOffWithFloor(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}
	opts := fast(t, "c1")
	opts.OnOutcome = rec.onOutcome
	o := outbox.New(r.Client, r.Prefix, opts)

	const floor = 80 * time.Millisecond
	h := func(_ context.Context, d gateway.Delivery) outbox.Result {
		if d.Attempt < 3 {
			return outbox.Retry(errors.New("503 service unavailable"), floor)
		}
		return outbox.Delivered()
	}
	d := delivery(gateway.ChannelWebhook, 1)
	if err := o.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	run(t, o, gateway.ChannelWebhook, 2, rec.handler("c1", h))
	waitFor(t, "third attempt", func() bool { return len(rec.callsFor(d.ID)) >= 3 })
	waitFor(t, "queue drained", func() bool { return stats(t, o, gateway.ChannelWebhook) == outbox.Stats{} })

	calls := rec.callsFor(d.ID)
	if len(calls) != 3 {
		t.Fatalf("handled %d times, want 3", len(calls))
	}
	for i, c := range calls {
		if c.d.Attempt != i+1 {
			t.Errorf("call %d: attempt %d, want %d", i, c.d.Attempt, i+1)
		}
		if i > 0 {
			if gap := c.at.Sub(calls[i-1].at); gap < floor {
				t.Errorf("call %d came %s after the previous one, before the Retry-After floor %s", i, gap, floor)
			}
		}
	}
	outs := rec.outcomesFor(d.ID)
	if len(outs) != 3 {
		t.Fatalf("outcomes %+v, want 3", outs)
	}
	for i, st := range []outbox.Status{outbox.StatusRetry, outbox.StatusRetry, outbox.StatusDelivered} {
		if outs[i].Status != st || outs[i].Attempt != i+1 {
			t.Errorf("outcome %d: %s attempt %d, want %s attempt %d", i, outs[i].Status, outs[i].Attempt, st, i+1)
		}
	}
	if outs[0].Err == nil || !strings.Contains(outs[0].Err.Error(), "503") {
		t.Errorf("retry outcome error %v, want the handler's", outs[0].Err)
	}
	if next := outs[0].Next; next.Before(calls[0].at.Add(floor)) || next.After(calls[1].at) {
		t.Errorf("retry outcome Next %s, want between %s and the second call %s",
			next.Format(time.StampMilli), calls[0].at.Add(floor).Format(time.StampMilli), calls[1].at.Format(time.StampMilli))
	}
}

func TestDeferKeepsAttemptAndNeverDies(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}
	opts := fast(t, "c1")
	opts.MaxAttempts = 1 // a deferral is not an attempt, so this must not dead-letter
	opts.OnOutcome = rec.onOutcome
	o := outbox.New(r.Client, r.Prefix, opts)

	const wait = 40 * time.Millisecond
	var mu sync.Mutex
	var until []time.Time
	h := func(_ context.Context, d gateway.Delivery) outbox.Result {
		mu.Lock()
		defer mu.Unlock()
		if len(until) < 3 {
			until = append(until, time.Now().Add(wait))
			return outbox.Defer(until[len(until)-1])
		}
		return outbox.Delivered()
	}
	d := delivery(gateway.ChannelEmail, 1)
	if err := o.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	run(t, o, gateway.ChannelEmail, 1, rec.handler("c1", h))
	waitFor(t, "fourth call", func() bool { return len(rec.callsFor(d.ID)) >= 4 })
	waitFor(t, "queue drained", func() bool { return stats(t, o, gateway.ChannelEmail) == outbox.Stats{} })

	calls := rec.callsFor(d.ID)
	for i, c := range calls {
		if c.d.Attempt != 1 {
			t.Errorf("call %d: attempt %d, want 1 (deferrals are not attempts)", i, c.d.Attempt)
		}
		if i > 0 && c.at.Before(until[i-1]) {
			t.Errorf("call %d at %s, before the deferral's due time %s", i, c.at.Format(time.StampMilli), until[i-1].Format(time.StampMilli))
		}
	}
	outs := rec.outcomesFor(d.ID)
	for i, st := range []outbox.Status{outbox.StatusDeferred, outbox.StatusDeferred, outbox.StatusDeferred, outbox.StatusDelivered} {
		if i >= len(outs) || outs[i].Status != st {
			t.Fatalf("outcomes %+v, want 3 deferred then delivered", outs)
		}
	}
	if !outs[0].Next.Equal(until[0]) {
		t.Errorf("deferred outcome Next %s, want %s", outs[0].Next, until[0])
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		h           outbox.Handler
		attempts    int
		reason      string
	}{
		{"permanent", 12, func(context.Context, gateway.Delivery) outbox.Result {
			return outbox.Permanent(errors.New("410 gone"))
		}, 1, "410 gone"},
		{"retries exhausted", 3, func(context.Context, gateway.Delivery) outbox.Result {
			return outbox.Retry(errors.New("503 service unavailable"), 0)
		}, 3, "503 service unavailable"},
		{"no result", 2, func(context.Context, gateway.Delivery) outbox.Result {
			return outbox.Result{}
		}, 2, "no result"},
		{"panic", 2, func(context.Context, gateway.Delivery) outbox.Result {
			panic("boom")
		}, 2, "panicked: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := redistest.New(t)
			ctx := context.Background()
			rec := &recorder{}
			opts := fast(t, "c1")
			opts.MaxAttempts = tt.maxAttempts
			opts.OnOutcome = rec.onOutcome
			opts.Logger = slog.New(slog.DiscardHandler) // panics and dead letters are expected here
			o := outbox.New(r.Client, r.Prefix, opts)
			d := delivery(gateway.ChannelWebhook, 7)
			if err := o.Enqueue(ctx, d); err != nil {
				t.Fatal(err)
			}
			run(t, o, gateway.ChannelWebhook, 1, rec.handler("c1", tt.h))
			waitFor(t, "dead letter", func() bool { return stats(t, o, gateway.ChannelWebhook).Dead == 1 })
			time.Sleep(30 * time.Millisecond) // would reveal an attempt after the dead letter

			if n := len(rec.callsFor(d.ID)); n != tt.attempts {
				t.Errorf("handled %d times, want %d", n, tt.attempts)
			}
			if s := stats(t, o, gateway.ChannelWebhook); s != (outbox.Stats{Dead: 1}) {
				t.Errorf("stats %+v, want only one dead letter", s)
			}
			for _, ch := range []gateway.Channel{gateway.ChannelWebhook, ""} {
				dls, err := o.DeadLetters(ctx, ch, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(dls) != 1 {
					t.Fatalf("DeadLetters(%q) = %d, want 1", ch, len(dls))
				}
				dl := dls[0]
				if dl.Delivery.ID != d.ID || dl.Delivery.Target != d.Target {
					t.Errorf("dead delivery %+v, want %+v", dl.Delivery, d)
				}
				if dl.Attempts != tt.attempts {
					t.Errorf("Attempts = %d, want %d", dl.Attempts, tt.attempts)
				}
				if !strings.Contains(dl.Reason, tt.reason) {
					t.Errorf("Reason = %q, want it to contain %q", dl.Reason, tt.reason)
				}
				if time.Since(dl.FailedAt) > 5*time.Second {
					t.Errorf("FailedAt = %s, want just now", dl.FailedAt)
				}
			}
			outs := rec.outcomesFor(d.ID)
			if len(outs) != tt.attempts || outs[len(outs)-1].Status != outbox.StatusDead {
				t.Errorf("outcomes %+v, want %d ending in dead", outs, tt.attempts)
			}
		})
	}
}

func TestRetryDead(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}
	opts := fast(t, "c1")
	opts.Logger = slog.New(slog.DiscardHandler)
	o := outbox.New(r.Client, r.Prefix, opts)

	var mu sync.Mutex
	refuse := true
	h := func(context.Context, gateway.Delivery) outbox.Result {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			return outbox.Permanent(errors.New("401 unauthorized"))
		}
		return outbox.Delivered()
	}
	d := delivery(gateway.ChannelMISPPush, 3)
	if err := o.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	run(t, o, gateway.ChannelMISPPush, 1, rec.handler("c1", h))
	waitFor(t, "dead letter", func() bool { return stats(t, o, gateway.ChannelMISPPush).Dead == 1 })

	// The receiver's key was fixed; the admin retries the dead letter.
	mu.Lock()
	refuse = false
	mu.Unlock()
	got, err := o.RetryDead(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != d.ID || got.Attempt != 1 {
		t.Errorf("RetryDead returned %+v, want %s with attempt 1", got, d.ID)
	}
	waitFor(t, "second handling", func() bool { return len(rec.callsFor(d.ID)) == 2 })
	waitFor(t, "queue drained", func() bool { return stats(t, o, gateway.ChannelMISPPush) == outbox.Stats{} })
	if c := rec.callsFor(d.ID)[1]; c.d.Attempt != 1 {
		t.Errorf("retried dead letter handled with attempt %d, want 1", c.d.Attempt)
	}
	dls, err := o.DeadLetters(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 0 {
		t.Errorf("dead letters after retry: %+v", dls)
	}
	for _, id := range []string{d.ID, "dlv_unknown"} {
		if _, err := o.RetryDead(ctx, id); !errors.Is(err, gateway.ErrNotFound) {
			t.Errorf("RetryDead(%s) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestDeadLettersNewestFirstAcrossChannels(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	opts := fast(t, "c1")
	opts.Logger = slog.New(slog.DiscardHandler)
	o := outbox.New(r.Client, r.Prefix, opts)
	permanent := func(context.Context, gateway.Delivery) outbox.Result { return outbox.Permanent(errors.New("no")) }
	run(t, o, gateway.ChannelWebhook, 1, permanent)
	run(t, o, gateway.ChannelEmail, 1, permanent)

	// Alternate channels so only a merge by time gives the right order.
	var order []string
	for i, ch := range []gateway.Channel{gateway.ChannelWebhook, gateway.ChannelEmail, gateway.ChannelWebhook, gateway.ChannelEmail} {
		d := delivery(ch, i)
		if err := o.Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dead letter "+d.ID, func() bool { return stats(t, o, ch).Dead == int64(i/2+1) })
		time.Sleep(2 * time.Millisecond)
		order = append([]string{d.ID}, order...)
	}
	dls, err := o.DeadLetters(ctx, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 3 {
		t.Fatalf("DeadLetters limit 3 returned %d", len(dls))
	}
	for i, dl := range dls {
		if dl.Delivery.ID != order[i] {
			t.Errorf("dead letter %d is %s, want %s (newest first)", i, dl.Delivery.ID, order[i])
		}
	}
	email, err := o.DeadLetters(ctx, gateway.ChannelEmail, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(email) != 2 || email[0].Delivery.Channel != gateway.ChannelEmail {
		t.Errorf("email dead letters %+v, want the 2 e-mail ones", email)
	}
	if _, err := o.DeadLetters(ctx, "pigeon", 1); err == nil || !strings.Contains(err.Error(), "channel") {
		t.Errorf("unknown channel: err = %v, want one naming the channel", err)
	}
}

func TestTwoConsumersShareAStream(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}
	a := outbox.New(r.Client, r.Prefix, fast(t, "a"))
	b := outbox.New(r.Client, r.Prefix, fast(t, "b"))
	slow := func(context.Context, gateway.Delivery) outbox.Result {
		time.Sleep(time.Millisecond)
		return outbox.Delivered()
	}
	run(t, a, gateway.ChannelWebhook, 3, rec.handler("a", slow))
	run(t, b, gateway.ChannelWebhook, 3, rec.handler("b", slow))

	var ds []gateway.Delivery
	for i := range 300 {
		ds = append(ds, delivery(gateway.ChannelWebhook, i))
	}
	for i := 0; i < len(ds); i += 50 {
		if err := a.Enqueue(ctx, ds[i:i+50]...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all handled", func() bool { return rec.count() >= len(ds) })
	waitFor(t, "queue drained", func() bool { return stats(t, a, gateway.ChannelWebhook) == outbox.Stats{} })
	time.Sleep(20 * time.Millisecond)
	if n := rec.count(); n != len(ds) {
		t.Errorf("%d handler calls for %d deliveries, want each exactly once", n, len(ds))
	}
	for _, d := range ds {
		if n := len(rec.callsFor(d.ID)); n != 1 {
			t.Errorf("%s handled %d times", d.ID, n)
		}
	}
}

func TestCrashedConsumerIsReclaimed(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}

	// Consumer a reads the entries and hangs, as a crashed process would:
	// nothing is acknowledged and its Run is abandoned.
	hang := make(chan struct{})
	aOpts := fast(t, "a")
	aOpts.ReclaimIdle = time.Minute
	aOpts.Batch = 20
	a := outbox.New(r.Client, r.Prefix, aOpts)
	run(t, a, gateway.ChannelWebhook, 20, rec.handler("a", func(context.Context, gateway.Delivery) outbox.Result {
		<-hang
		return outbox.Delivered()
	}))
	t.Cleanup(func() { close(hang) }) // runs before a's stop, registered earlier
	var ds []gateway.Delivery
	for i := range 20 {
		ds = append(ds, delivery(gateway.ChannelWebhook, i))
	}
	if err := a.Enqueue(ctx, ds...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to take all entries", func() bool { return rec.count() == len(ds) })
	if s := stats(t, a, gateway.ChannelWebhook); s.Pending != int64(len(ds)) {
		t.Fatalf("stats %+v, want %d pending", s, len(ds))
	}

	// b has only 2 handlers, so it must sweep the backlog in 10 rounds
	// without waiting ReclaimIdle/2 between them.
	const idle = 400 * time.Millisecond
	bOpts := fast(t, "b")
	bOpts.ReclaimIdle = idle
	b := outbox.New(r.Client, r.Prefix, bOpts)
	run(t, b, gateway.ChannelWebhook, 2, rec.handler("b", delivered))
	waitFor(t, "b to reclaim all entries", func() bool { return rec.count() == 2*len(ds) })
	waitFor(t, "queue drained", func() bool { return stats(t, b, gateway.ChannelWebhook) == outbox.Stats{} })

	first, last := time.Now(), time.Time{}
	for _, d := range ds {
		calls := rec.callsFor(d.ID)
		if len(calls) != 2 || calls[0].consumer != "a" || calls[1].consumer != "b" {
			t.Errorf("%s calls %+v, want one by a then one by b", d.ID, calls)
			continue
		}
		// a's handler starts right after a read the entry, so this is at most
		// a little less than the idle time Redis measured.
		if early := calls[1].at.Sub(calls[0].at); early < idle-20*time.Millisecond {
			t.Errorf("%s reclaimed %s after a took it, before ReclaimIdle %s", d.ID, early, idle)
		}
		if calls[1].d.Attempt != 1 {
			t.Errorf("reclaimed %s has attempt %d, want 1 (a crash is not a failed attempt)", d.ID, calls[1].d.Attempt)
		}
		if calls[1].at.Before(first) {
			first = calls[1].at
		}
		if calls[1].at.After(last) {
			last = calls[1].at
		}
	}
	if took := last.Sub(first); took > idle*2 {
		t.Errorf("reclaiming the backlog took %s, want it swept without pausing between rounds", took)
	}
}

func TestGracefulStop(t *testing.T) {
	t.Run("in-flight handler finishes", func(t *testing.T) {
		r := redistest.New(t)
		ctx := context.Background()
		o := outbox.New(r.Client, r.Prefix, fast(t, "c1"))
		started := make(chan struct{})
		var finished sync.WaitGroup
		finished.Add(1)
		stop := run(t, o, gateway.ChannelWebhook, 1, func(context.Context, gateway.Delivery) outbox.Result {
			close(started)
			time.Sleep(100 * time.Millisecond)
			finished.Done()
			return outbox.Delivered()
		})
		if err := o.Enqueue(ctx, delivery(gateway.ChannelWebhook, 1)); err != nil {
			t.Fatal(err)
		}
		<-started
		stop()
		finished.Wait()
		if s := stats(t, o, gateway.ChannelWebhook); s != (outbox.Stats{}) {
			t.Errorf("stats after stop %+v, want the finished delivery acknowledged", s)
		}
	})

	t.Run("unfinished entry stays pending", func(t *testing.T) {
		r := redistest.New(t)
		ctx := context.Background()
		rec := &recorder{}
		opts := fast(t, "c1")
		opts.Grace = 50 * time.Millisecond
		opts.OnOutcome = rec.onOutcome
		o := outbox.New(r.Client, r.Prefix, opts)
		stop := run(t, o, gateway.ChannelWebhook, 1, rec.handler("c1", func(ctx context.Context, d gateway.Delivery) outbox.Result {
			<-ctx.Done() // a receiver that does not answer in time
			return outbox.Retry(ctx.Err(), 0)
		}))
		d := delivery(gateway.ChannelWebhook, 1)
		if err := o.Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "handler start", func() bool { return rec.count() == 1 })
		begin := time.Now()
		stop()
		if took := time.Since(begin); took > time.Second {
			t.Errorf("stop took %s with a 50ms grace period", took)
		}
		if s := stats(t, o, gateway.ChannelWebhook); s != (outbox.Stats{Pending: 1}) {
			t.Errorf("stats after stop %+v, want the unfinished entry pending", s)
		}
		if outs := rec.outcomesFor(d.ID); len(outs) != 0 {
			t.Errorf("outcomes %+v for an interrupted attempt, want none", outs)
		}

		// Another process picks it up once it has been idle long enough.
		nOpts := fast(t, "c2")
		nOpts.ReclaimIdle = 50 * time.Millisecond
		next := outbox.New(r.Client, r.Prefix, nOpts)
		run(t, next, gateway.ChannelWebhook, 1, rec.handler("c2", delivered))
		waitFor(t, "reclaim", func() bool { return rec.count() == 2 })
		if c := rec.callsFor(d.ID)[1]; c.consumer != "c2" || c.d.Attempt != 1 {
			t.Errorf("second call %+v, want c2 with attempt 1", c)
		}
	})
}

func TestUndecodableEntryIsDeadLettered(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	rec := &recorder{}
	opts := fast(t, "c1")
	opts.Logger = slog.New(slog.DiscardHandler)
	o := outbox.New(r.Client, r.Prefix, opts)
	stream := r.Prefix + ":outbox:{webhook}:stream"
	for _, vals := range [][]any{{"d", "{not json"}, {"x", "1"}, {"d", `{"delivery_id":""}`}} {
		if err := r.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: vals}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good := delivery(gateway.ChannelWebhook, 1)
	if err := o.Enqueue(ctx, good); err != nil {
		t.Fatal(err)
	}
	run(t, o, gateway.ChannelWebhook, 2, rec.handler("c1", delivered))
	waitFor(t, "good delivery", func() bool { return len(rec.callsFor(good.ID)) == 1 })
	waitFor(t, "dead letters", func() bool { return stats(t, o, gateway.ChannelWebhook).Dead == 3 })
	if n := rec.count(); n != 1 {
		t.Errorf("handler called %d times, want only for the good delivery", n)
	}
	dls, err := o.DeadLetters(ctx, gateway.ChannelWebhook, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range dls {
		if !strings.HasPrefix(dl.Reason, "undecodable") || !strings.HasPrefix(dl.Delivery.ID, "undecodable-") {
			t.Errorf("dead letter %+v, want an undecodable one", dl)
		}
	}
}

func TestEnqueueRejectsBadDeliveries(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	o := outbox.New(r.Client, r.Prefix, fast(t, "c1"))
	good := delivery(gateway.ChannelWebhook, 1)
	noID := delivery(gateway.ChannelWebhook, 2)
	noID.ID = ""
	badCh := delivery(gateway.ChannelWebhook, 3)
	badCh.Channel = "pigeon"
	tests := []struct {
		name  string
		ds    []gateway.Delivery
		field string
	}{
		{"empty id", []gateway.Delivery{good, noID}, "/1/delivery_id"},
		{"unknown channel", []gateway.Delivery{badCh}, "/0/channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := o.Enqueue(ctx, tt.ds...)
			var verr *gateway.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("err = %v, want it to name %s", err, tt.field)
			}
			if s := stats(t, o, gateway.ChannelWebhook); s != (outbox.Stats{}) {
				t.Errorf("stats %+v: a rejected batch wrote deliveries", s)
			}
		})
	}
	if err := o.Enqueue(ctx); err != nil {
		t.Errorf("empty Enqueue: %v", err)
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	r := redistest.New(t)
	o := outbox.New(r.Client, r.Prefix, fast(t, "c1"))
	tests := []struct {
		name  string
		ch    gateway.Channel
		n     int
		h     outbox.Handler
		field string
	}{
		{"unknown channel", "pigeon", 1, delivered, "channel"},
		{"no handlers", gateway.ChannelWebhook, 0, delivered, "n:"},
		{"nil handler", gateway.ChannelWebhook, 1, nil, "handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := o.Run(ctx, tt.ch, tt.n, tt.h)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("err = %v, want one naming %q", err, tt.field)
			}
		})
	}
}

func TestStatsBeforeAnyConsumer(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	o := outbox.New(r.Client, r.Prefix, fast(t, "c1"))
	for i := range 3 {
		if err := o.Enqueue(ctx, delivery(gateway.ChannelEmail, i)); err != nil {
			t.Fatal(err)
		}
	}
	if s := stats(t, o, gateway.ChannelEmail); s != (outbox.Stats{Ready: 3}) {
		t.Errorf("stats %+v, want 3 ready", s)
	}
	if s := stats(t, o, gateway.ChannelWebhook); s != (outbox.Stats{}) {
		t.Errorf("webhook stats %+v, want empty", s)
	}
	if _, err := o.Stats(ctx, "pigeon"); err == nil {
		t.Error("Stats of an unknown channel: no error")
	}
}

func TestDiscardDead(t *testing.T) {
	r := redistest.New(t)
	o := outbox.New(r.Client, r.Prefix, outbox.Options{})
	ctx := context.Background()
	d := gateway.Delivery{ID: "dlv-x", EventID: "e", Version: "v", Recipient: gateway.ConstituentRecipient("a"), Channel: gateway.ChannelWebhook, TLP: gateway.TLPAmber, Rule: "r"}
	if err := o.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = o.Run(rctx, gateway.ChannelWebhook, 1, func(context.Context, gateway.Delivery) outbox.Result { return outbox.Permanent(errors.New("gone")) })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, _ := o.Stats(ctx, gateway.ChannelWebhook); st.Dead == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never dead-lettered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	got, err := o.DiscardDead(ctx, "dlv-x")
	if err != nil || got.ID != "dlv-x" {
		t.Fatalf("discard: %+v %v", got, err)
	}
	if st, _ := o.Stats(ctx, gateway.ChannelWebhook); st.Dead != 0 || st.Ready != 0 {
		t.Fatalf("after discard: %+v", st)
	}
	if _, err := o.DiscardDead(ctx, "dlv-x"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("second discard: %v", err)
	}
	if _, err := o.RetryDead(ctx, "dlv-x"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("retry after discard: %v", err)
	}
}
