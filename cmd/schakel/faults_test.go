//go:build faults

// The fault suite (make test-faults): the gateway binary runs as a
// subprocess against redis-server processes of its own while each test
// kills, restarts, starves or fills something under ingest load, then checks
// that every accepted event reached every receiver it was due to, duplicates
// only under one delivery id, and that the audit trail says so.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const faultEvents = 300

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "schakel-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	faultBin = filepath.Join(dir, "schakel")
	build := exec.Command("go", "build", "-o", faultBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "fault suite: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	printFaultReport(os.Stdout)
	os.RemoveAll(dir)
	os.Exit(code)
}

func faultIDs(prefix string, from, to int) []string {
	ids := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		ids = append(ids, faultEventID(prefix, i))
	}
	return ids
}

// waitAccepted blocks until the client has n accepted events.
func waitAccepted(t *testing.T, st *ingestStats, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for st.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events accepted", st.n.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFaultKill9 kills the gateway with SIGKILL while it ingests and while
// slow receivers hold deliveries in flight, then starts it again.
func TestFaultKill9(t *testing.T) {
	e := newFaultEnv(t, faultPeers{hooks: 2})
	slow := func(int) (int, int) { time.Sleep(100 * time.Millisecond); return 200, 0 }
	for _, rc := range e.hooks {
		rc.Respond(slow)
	}
	st := newIngestStats()
	done := make(chan struct{})
	go func() { e.gw.ingestAll(e.key, faultIDs("f1000000", 0, faultEvents), st); close(done) }()
	waitAccepted(t, st, faultEvents/2)
	e.gw.kill9()
	inFlight := 0
	for _, rc := range e.hooks {
		inFlight += len(rc.Unique())
	}
	time.Sleep(300 * time.Millisecond)
	e.gw.start()
	<-done
	if inFlight >= int(st.n.Load())*2 {
		t.Fatalf("every delivery was done before the kill; nothing was in flight")
	}
	e.verify("kill -9 mid-delivery", st, 120*time.Second)
}

// TestFaultRedisRestart stops Redis (SIGTERM, AOF kept) and later freezes it
// (SIGSTOP: connections hang) while events are ingested; the source retries
// failed calls with the same event id.
func TestFaultRedisRestart(t *testing.T) {
	e := newFaultEnv(t, faultPeers{hooks: 2})
	slow := func(int) (int, int) { time.Sleep(20 * time.Millisecond); return 200, 0 }
	for _, rc := range e.hooks {
		rc.Respond(slow)
	}
	st := newIngestStats()
	done := make(chan struct{})
	go func() { e.gw.ingestAll(e.key, faultIDs("f2000000", 0, faultEvents), st); close(done) }()

	waitAccepted(t, st, 100)
	e.redis.stop()
	if !e.gw.waitStatus(503, 10*time.Second) {
		t.Error("/readyz did not answer 503 while Redis was down")
	}
	time.Sleep(time.Second)
	e.redis.start()
	if !e.gw.waitStatus(200, 20*time.Second) {
		t.Fatal("/readyz did not answer 200 after Redis came back")
	}

	waitAccepted(t, st, 200)
	// Frozen, Redis accepts connections but answers nothing: calls time out.
	_ = e.redis.cmd.Process.Signal(syscall.SIGSTOP)
	frozen := time.Now()
	if !e.gw.waitStatus(503, 15*time.Second) {
		t.Error("/readyz did not answer 503 while Redis was frozen")
	}
	time.Sleep(4*time.Second - time.Since(frozen))
	_ = e.redis.cmd.Process.Signal(syscall.SIGCONT)
	<-done
	if !e.gw.waitStatus(200, 20*time.Second) {
		t.Fatal("/readyz did not answer 200 after Redis resumed")
	}
	failed := 0
	for status, n := range st.statuses {
		if status != 200 && status != 202 {
			failed += n
		}
	}
	t.Logf("ingest answers: %v (%d failed calls retried)", st.statuses, failed)
	e.verify("redis restarted / unreachable", st, 120*time.Second)
}

// TestFaultReceivers runs every push channel against peers that misbehave:
// a webhook receiver that flaps and times out, one that answers 429 with
// Retry-After, an SMTP relay that answers 451 before 250 and a constituent
// MISP that answers 500 for a while.
func TestFaultReceivers(t *testing.T) {
	e := newFaultEnv(t, faultPeers{hooks: 2, email: true, misp: true})
	// h0 flaps: every other request 503, every seventh sleeps past the 1s timeout.
	e.hooks["h0"].Respond(func(n int) (int, int) {
		switch {
		case n%7 == 3:
			time.Sleep(1500 * time.Millisecond)
			return 200, 0
		case n%2 == 1:
			return 503, 0
		}
		time.Sleep(10 * time.Millisecond)
		return 200, 0
	})
	// h1 is slow and throttles: every fourth request 429 with Retry-After: 1.
	e.hooks["h1"].Respond(func(n int) (int, int) {
		if n%4 == 0 {
			return 429, 1
		}
		time.Sleep(30 * time.Millisecond)
		return 200, 0
	})
	e.relay.Reject("soc@m.example", 451, 40)
	e.misp.failing.Store(true)
	var failingFor atomic.Int64
	go func() {
		start := time.Now()
		time.Sleep(4 * time.Second)
		e.misp.failing.Store(false)
		failingFor.Store(int64(time.Since(start)))
	}()

	st := newIngestStats()
	e.gw.ingestAll(e.key, faultIDs("f3000000", 0, faultEvents), st)
	e.verify("slow/flapping/429/451/500 peers", st, 180*time.Second)
	// Each channel met its fault: some deliveries needed more than one attempt.
	retried := map[string]int{}
	for _, id := range st.ids() {
		for _, s := range e.deliveriesOf(id) {
			if s.Attempts > 1 {
				retried[string(s.Delivery.Channel)+"/"+s.Delivery.Recipient.String()]++
			}
		}
	}
	t.Logf("deliveries that needed retries: %v", retried)
	for _, k := range []string{"webhook/h0", "webhook/h1", "email/m", "misp_push/p"} {
		if retried[k] == 0 {
			t.Errorf("no %s delivery was retried: the fault did not happen", k)
		}
	}
	if e.misp.errors == 0 {
		t.Error("the constituent MISP never answered 500: the fault did not happen")
	}
	if e.hooks["h1"].Requests() <= len(e.hooks["h1"].Unique()) {
		t.Error("h1 never answered 429")
	}
}

// TestFaultRedisFull lowers Redis' maxmemory under the gateway: ingest must
// answer 503 with Retry-After (not 500), leave no half-written event, and
// recover when memory is raised.
func TestFaultRedisFull(t *testing.T) {
	e := newFaultEnv(t, faultPeers{hooks: 2})
	st := newIngestStats()
	e.gw.ingestAll(e.key, faultIDs("f4000000", 0, 100), st)
	// Slow receivers: deliveries of events accepted just before Redis fills
	// up finish while it is full, when their records cannot be written.
	for _, rc := range e.hooks {
		rc.Respond(func(int) (int, int) { time.Sleep(300 * time.Millisecond); return 200, 0 })
	}

	ctx := context.Background()
	rc := e.redis.client()
	defer rc.Close()
	info, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	used := infoField(info, "used_memory")
	if err := rc.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used+256<<10, 10)).Err(); err != nil {
		t.Fatal(err)
	}

	// While full: one attempt per event, no retries.
	var refused []string
	for _, id := range faultIDs("f4000000", 100, faultEvents) {
		status, retryAfter := e.gw.ingestOnce(e.key, id, st)
		switch status {
		case 200, 202:
		case 503:
			if retryAfter == "" {
				t.Errorf("ingest %s: 503 without Retry-After", id)
			}
			refused = append(refused, id)
		default:
			t.Errorf("ingest %s while Redis is full: status %d, want 202 or 503", id, status)
		}
	}
	if len(refused) == 0 {
		t.Fatal("no ingest was refused: Redis never filled up")
	}
	// A refused event is absent, or stored with all its deliveries, or
	// stored and not yet routed (no deliveries, nothing in any pull view):
	// the 503 told the source to retry, and its retry (below) finishes the
	// routing. After the retries verify demands every delivery of every one.
	absent, complete, pending := 0, 0, 0
	for _, id := range refused {
		switch status, _, _ := e.gw.call("GET", "/api/v1/events/"+id, testAdminKey, nil); status {
		case 404:
			absent++
		case 200:
			if len(e.deliveriesOf(id)) == e.expectedPerEvent() {
				complete++
			} else {
				pending++
			}
		default:
			t.Errorf("GET event %s while full: status %d", id, status)
		}
	}
	t.Logf("refused while full: %d of %d (absent %d, complete %d, stored and awaiting routing %d)",
		len(refused), faultEvents-100, absent, complete, pending)

	// Stay full a moment longer: the events accepted just before the limit
	// hit are delivered now, and their records must still be written.
	time.Sleep(1500 * time.Millisecond)
	if err := rc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// The source retries every refused event, as it would after a 503.
	e.gw.ingestAll(e.key, refused, st)
	e.verify("redis full (maxmemory)", st, 120*time.Second)
}

func infoField(info, name string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
