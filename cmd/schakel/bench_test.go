package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/redistest"
)

// benchReceiver is a SOC endpoint reduced to what costs: it verifies every
// signature, decodes the payload and notes when each event arrived.
type benchReceiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	at     map[string]time.Time // event id → first arrival
	n      atomic.Int64
	bad    atomic.Int64
}

func newBenchReceiver(b *testing.B) *benchReceiver {
	secret, _ := webhook.NewSecret()
	r := &benchReceiver{secret: secret, at: make(map[string]time.Time)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify(r.secret, req.Header.Get, body, time.Now(), 5*time.Minute); err != nil {
			r.bad.Add(1)
			w.WriteHeader(401)
			return
		}
		var p struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		_ = json.Unmarshal(body, &p)
		now := time.Now()
		r.mu.Lock()
		if _, ok := r.at[p.Event.ID]; !ok {
			r.at[p.Event.ID] = now
			r.n.Add(1)
		}
		r.mu.Unlock()
		w.WriteHeader(204)
	}))
	b.Cleanup(r.srv.Close)
	return r
}

// startBenchGateway runs a gateway with nConst constituents, all pointing
// their webhooks at rcv, with limits out of the way.
func startBenchGateway(b *testing.B, rcv *benchReceiver, nConst int) (base, key string) {
	r := redistest.New(b)
	dir := b.TempDir()
	var cons bytes.Buffer
	for i := range nConst {
		fmt.Fprintf(&cons, "- {id: c%d, name: C%d, assets: {prefixes: [\"10.%d.0.0/16\"]}, webhooks: [{url: %q, secret: %q}]}\n", i, i, i, rcv.srv.URL+fmt.Sprintf("/c%d", i), rcv.secret)
	}
	_ = os.WriteFile(filepath.Join(dir, "constituents.yaml"), cons.Bytes(), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "admin.keys"), []byte(testAdminKey+"\n"), 0o600)
	cfgPath := filepath.Join(dir, "schakel.yaml")
	_ = os.WriteFile(cfgPath, fmt.Appendf(nil, `
listen: 127.0.0.1:0
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
limits: {webhook_per_minute: 100000000, ingest_per_minute: 100000000}
sources: [{name: bench, type: api}]
constituents_file: constituents.yaml
`, r.URL, r.Prefix), 0o600)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, err := start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	// The no-op route shares the listener, fiber app and middleware with
	// ingest, so http_noop_posts_per_s is what the HTTP stack alone allows.
	g.HTTP.Mount(func(app *fiber.App, _ *httpapi.Auth) {
		app.Post(noopPath, func(c *fiber.Ctx) error {
			_ = c.Body()
			return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted"})
		})
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx, ln, 5*time.Second); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	base = "http://" + ln.Addr().String()
	req, _ := http.NewRequest("POST", base+"/api/v1/sources/bench/keys", nil)
	req.Header.Set("Authorization", testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var out struct{ Key string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	return base, out.Key
}

// benchEvent is an AMBER notification with 10 indicators, all owned by one
// constituent: one delivery per event.
func benchEvent(i, nConst int) []byte {
	c := i % nConst
	inds := make([]map[string]any, 10)
	for j := range inds {
		inds[j] = map[string]any{"type": "ipv4", "value": fmt.Sprintf("10.%d.%d.%d", c, j, 1+i%250), "port": 443}
	}
	b, _ := json.Marshal(map[string]any{
		"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "kind": "notification", "title": "bench", "tlp": "AMBER",
		"source": map[string]any{"name": "bench"}, "modified": "2026-11-20T09:00:00Z", "indicators": inds,
	})
	return b
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// noopPath answers 202 without doing anything: the baseline of the load
// generator and the HTTP stack.
const noopPath = "/bench/noop"

func post(b *testing.B, base, key string, body []byte) { postTo(b, base+"/api/v1/events", key, body) }

// load posts bodies from senders concurrent clients and returns how long it took.
func load(b *testing.B, url, key string, bodies [][]byte, senders int) time.Duration {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				postTo(b, url, key, bodies[i])
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func postTo(b *testing.B, url, key string, body []byte) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		b.Errorf("ingest status %d", resp.StatusCode)
	}
}

func waitCount(b *testing.B, rcv *benchReceiver, n int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for rcv.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d events arrived", rcv.n.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkIngestWebhookThroughput: events/s from POST /api/v1/events to a
// signature-verifying receiver, 10 indicators each, 32 concurrent senders.
func BenchmarkIngestWebhookThroughput(b *testing.B) {
	const nConst, events, senders = 10, 10000, 128
	rcv := newBenchReceiver(b)
	base, key := startBenchGateway(b, rcv, nConst)
	bodies := make([][]byte, events)
	for i := range bodies {
		bodies[i] = benchEvent(i, nConst)
	}
	// The same load against the no-op route first, in the same process.
	noop := load(b, base+noopPath, key, bodies, senders)
	b.ResetTimer()
	start := time.Now()
	load(b, base+"/api/v1/events", key, bodies, senders)
	ingested := time.Since(start)
	waitCount(b, rcv, events, 2*time.Minute)
	total := time.Since(start)
	b.StopTimer()
	if rcv.bad.Load() > 0 {
		b.Fatalf("%d bad signatures", rcv.bad.Load())
	}
	b.ReportMetric(float64(events)/total.Seconds(), "ingest_webhook_events_per_s")
	b.ReportMetric(float64(events*10)/total.Seconds(), "ingest_webhook_indicators_per_s")
	b.ReportMetric(float64(events)/ingested.Seconds(), "ingest_accept_events_per_s")
	noopRate := float64(events) / noop.Seconds()
	b.ReportMetric(noopRate, "http_noop_posts_per_s")
	b.ReportMetric(float64(events)/total.Seconds()/noopRate, "ingest_to_noop_ratio")
}

// BenchmarkIngestWebhookLatency: ingest → webhook-received latency at a
// steady 1,000 events/s for 5 s.
func BenchmarkIngestWebhookLatency(b *testing.B) {
	const nConst, rate, seconds = 10, 1000, 5
	rcv := newBenchReceiver(b)
	base, key := startBenchGateway(b, rcv, nConst)
	events := rate * seconds
	sent := make([]time.Time, events)
	bodies := make([][]byte, events)
	for i := range bodies {
		bodies[i] = benchEvent(i, nConst)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range events {
		due := start.Add(time.Duration(i) * time.Second / rate)
		time.Sleep(time.Until(due))
		sem <- struct{}{}
		sent[i] = time.Now()
		wg.Go(func() {
			post(b, base, key, bodies[i])
			<-sem
		})
	}
	wg.Wait()
	waitCount(b, rcv, int64(events), time.Minute)
	b.StopTimer()
	lat := make([]float64, 0, events)
	rcv.mu.Lock()
	for i := range events {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		lat = append(lat, float64(rcv.at[id].Sub(sent[i]).Microseconds())/1000)
	}
	rcv.mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "ingest_webhook_p50_ms")
	b.ReportMetric(lat[len(lat)*99/100], "ingest_webhook_p99_ms")
}
