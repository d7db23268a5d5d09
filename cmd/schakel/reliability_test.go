package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/redistest"
)

func signWebhook(t *testing.T, req *http.Request, secret, id string, body []byte) {
	t.Helper()
	now := time.Now()
	sig, err := webhook.Sign(secret, id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
}

func TestAcceptanceReceiverRecoversAndDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	// A answers 503 (with Retry-After: 1) for its first 3 requests, then recovers.
	h.a.Respond(func(n int) (int, int) {
		if n < 3 {
			return 503, 1
		}
		return 200, 0
	})
	// B answers 410 Gone: permanent, straight to the dead letters.
	gone := true
	h.b.Respond(func(n int) (int, int) {
		if gone {
			return 410, 0
		}
		return 200, 0
	})
	const id = "88888888-8888-4888-8888-888888888888"
	h.ingest(event(id, "advisory", "GREEN", nil), 202)
	if err := h.a.WaitFor(1, 30*time.Second); err != nil {
		t.Fatalf("A never received after recovering: %v (requests %d)", err, h.a.Requests())
	}
	var dead struct {
		DeadLetters []struct {
			ID       string
			Reason   string
			Delivery struct{ Recipient string }
		} `json:"dead_letters"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(dead.DeadLetters) == 0 && time.Now().Before(deadline) {
		h.do("GET", "/api/v1/dead-letters", testAdminKey, nil, 200, &dead)
		time.Sleep(100 * time.Millisecond)
	}
	if len(dead.DeadLetters) != 1 || dead.DeadLetters[0].Delivery.Recipient != "b" {
		t.Fatalf("dead letters: %+v", dead)
	}
	if len(h.b.Received()) != 0 {
		t.Fatal("B recorded a delivery it refused")
	}
	gone = false
	h.do("POST", "/api/v1/dead-letters/"+dead.DeadLetters[0].ID+"/retry", testAdminKey, nil, 200, nil)
	if err := h.b.WaitFor(1, 10*time.Second); err != nil {
		t.Fatalf("admin retry did not deliver: %v", err)
	}
	h.do("POST", "/api/v1/dead-letters/"+dead.DeadLetters[0].ID+"/retry", testAdminKey, nil, 404, nil)
	if got := h.a.Unique(); len(got) != 1 {
		t.Fatalf("A unique deliveries: %d", len(got))
	}
}

func TestAcceptanceRateLimitDefersNeverDrops(t *testing.T) {
	t.Parallel()
	// A may receive 60 per minute (one per second after a burst of 60).
	h := newHarness(t, harnessOpts{limitA: 60})
	const n = 64
	for i := range n {
		h.ingest(event(fmt.Sprintf("99999999-9999-4999-8999-%012d", i), "advisory", "GREEN", nil), 202)
	}
	if err := h.a.WaitFor(60, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	settle(h.a)
	if got := len(h.a.Unique()); got >= n {
		t.Fatalf("all %d delivered at once: the limit did not defer", got)
	}
	// The rest arrive as the limiter allows, none dropped.
	if err := h.a.WaitFor(n, 30*time.Second); err != nil {
		t.Fatalf("deferred deliveries never arrived: %v", err)
	}
	// With the limit exhausted by ten more warnings, a critical one still
	// goes out at once.
	for i := range 10 {
		h.ingest(event(fmt.Sprintf("bbbbbbbb-9999-4999-8999-%012d", i), "advisory", "GREEN", nil), 202)
	}
	const critical = "aaaaaaaa-9999-4999-8999-000000000001"
	h.ingest(event(critical, "advisory", "GREEN", map[string]any{"priority": "critical"}), 202)
	deadline := time.Now().Add(3 * time.Second)
	for len(byEvent(h.a, critical)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(byEvent(h.a, critical)) != 1 {
		t.Fatal("critical event waited for the rate limit")
	}
	if got := len(h.a.Unique()); got >= n+11 {
		t.Fatalf("the ten normal warnings were not deferred (%d delivered)", got)
	}
	if err := h.a.WaitFor(n+11, 30*time.Second); err != nil {
		t.Fatalf("deferred warnings lost: %v", err)
	}
}

// TestAcceptanceKill9 runs the real binary, kills it with SIGKILL while
// deliveries are in flight, restarts it and checks every accepted delivery
// arrives (duplicates only with the same delivery_id).
func TestAcceptanceKill9(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("needs SIGKILL")
	}
	r := redistest.New(t)
	a := webhooktest.New(t, "")
	b := webhooktest.New(t, "")
	// Slow receivers keep deliveries in flight when the process dies.
	slow := func(n int) (int, int) { time.Sleep(150 * time.Millisecond); return 200, 0 }
	a.Respond(slow)
	b.Respond(slow)
	dir := t.TempDir()
	port := freePort(t)
	cfg := harnessConfig(t, dir, r.URL, r.Prefix, "127.0.0.1:"+port, a, b, harnessOpts{})
	startProc := func() *exec.Cmd {
		cmd := gatewayCommand(t, "serve", "--config", cfg)
		cmd.Dir = dir
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitReady(t, "http://127.0.0.1:"+port)
		return cmd
	}
	p := startProc()
	h := &harness{t: t, base: "http://127.0.0.1:" + port}
	var key struct{ Key string }
	h.do("POST", "/api/v1/sources/partner-api/keys", testAdminKey, nil, 201, &key)
	h.sourceKey = key.Key
	const n = 200
	for i := range n {
		h.ingest(event(fmt.Sprintf("cccccccc-0000-4000-8000-%012d", i), "advisory", "GREEN", nil), 202)
	}
	// Every event goes to both A and B: 2n deliveries accepted.
	_ = p.Process.Signal(syscall.SIGKILL)
	_ = p.Wait()
	before := len(a.Unique()) + len(b.Unique())
	if before >= 2*n {
		t.Fatalf("all %d deliveries were done before the kill: the test did not kill anything in flight", before)
	}
	p2 := startProc()
	defer func() { _ = p2.Process.Signal(syscall.SIGTERM); _ = p2.Wait() }()
	if err := a.WaitFor(n, 90*time.Second); err != nil {
		t.Fatalf("A after restart: %v (had %d before)", err, before)
	}
	if err := b.WaitFor(n, 90*time.Second); err != nil {
		t.Fatalf("B after restart: %v", err)
	}
	for _, rc := range []*webhooktest.Receiver{a, b} {
		seen := map[string]string{}
		for _, x := range rc.Received() {
			if prev, ok := seen[x.Event.ID]; ok && prev != x.DeliveryID {
				t.Fatalf("event %s delivered twice under different delivery ids", x.Event.ID)
			}
			seen[x.Event.ID] = x.DeliveryID
		}
	}
	t.Logf("before kill: %d unique; after restart: A %d, B %d unique, %d+%d received", before, len(a.Unique()), len(b.Unique()), len(a.Received()), len(b.Received()))
}

// gatewayCommand runs this test binary as the schakel command with args,
// through TestRunAsGateway: a gateway in a process of its own, which a test
// may SIGKILL, without building the binary first (the test binary already
// holds all of it, race detector included).
func gatewayCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, append([]string{"-test.run=^TestRunAsGateway$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), runAsGatewayEnv+"=1")
	return cmd
}

const runAsGatewayEnv = "SCHAKEL_TEST_RUN_AS_GATEWAY"

// TestRunAsGateway is not a test but the entry point of gatewayCommand's
// processes: it runs main's run with the arguments after "--" and exits.
func TestRunAsGateway(t *testing.T) {
	if os.Getenv(runAsGatewayEnv) != "1" {
		t.Skip("entry point of gatewayCommand subprocesses")
	}
	os.Exit(run(flag.Args(), os.Stdout, os.Stderr))
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway at %s never became ready", base)
}
