//go:build faults

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/store"
)

// faultBin is the gateway binary TestMain builds once for every scenario.
var faultBin string

// redisProc is a redis-server of the suite's own, with an AOF directory that
// survives restarts, so a restart loses nothing the server acknowledged.
type redisProc struct {
	t    *testing.T
	port string
	dir  string
	cmd  *exec.Cmd
	log  *os.File
}

func startRedis(t *testing.T) *redisProc {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("fault suite: redis-server is not on PATH; install it to run the fault tests")
	}
	r := &redisProc{t: t, port: freePort(t), dir: t.TempDir()}
	var err error
	if r.log, err = os.Create(filepath.Join(r.dir, "redis.log")); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(func() {
		if r.cmd != nil {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
		r.log.Close()
	})
	return r
}

func (r *redisProc) URL() string { return "redis://127.0.0.1:" + r.port + "/0" }

func (r *redisProc) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir, "--save", "")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	c := r.client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %s did not start", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends Redis the way an orchestrator does: SIGTERM, which flushes the AOF.
func (r *redisProc) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *redisProc) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + r.port})
}

// gatewayProc is the schakel binary serving one configuration.
type gatewayProc struct {
	t    *testing.T
	cfg  string
	dir  string
	port string
	base string
	cmd  *exec.Cmd
	log  *os.File
}

func startGateway(t *testing.T, dir, cfg, port string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{t: t, cfg: cfg, dir: dir, port: port, base: "http://127.0.0.1:" + port}
	var err error
	if g.log, err = os.Create(filepath.Join(dir, "gateway.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if g.cmd != nil {
			_ = g.cmd.Process.Signal(syscall.SIGTERM)
			_ = g.cmd.Wait()
		}
		g.log.Close()
		if t.Failed() {
			tail(t, filepath.Join(dir, "gateway.log"), 40)
		}
	})
	g.start()
	return g
}

func (g *gatewayProc) start() {
	g.t.Helper()
	g.cmd = exec.Command(faultBin, "serve", "--config", g.cfg)
	g.cmd.Dir = g.dir
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	waitReady(g.t, g.base)
}

func (g *gatewayProc) kill9() {
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	_ = g.cmd.Wait()
	g.cmd = nil
}

func tail(t *testing.T, path string, n int) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("last lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

// readyz answers the gateway's readiness status, 0 when it does not answer.
func (g *gatewayProc) readyz() int {
	// Long enough for the gateway's own Redis timeouts to answer first.
	c := http.Client{Timeout: 8 * time.Second}
	resp, err := c.Get(g.base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls /readyz until it answers want.
func (g *gatewayProc) waitStatus(want int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if g.readyz() == want {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// call sends one request and returns the status (0 on a transport error),
// the Retry-After header and the body.
func (g *gatewayProc) call(method, path, key string, body []byte) (int, string, []byte) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, g.base+path, rd)
	req.Header.Set("Authorization", key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), data
}

func (g *gatewayProc) sourceKey() string {
	g.t.Helper()
	status, _, body := g.call("POST", "/api/v1/sources/partner-api/keys", testAdminKey, nil)
	if status != 201 {
		g.t.Fatalf("source key: %d %s", status, body)
	}
	var out struct{ Key string }
	_ = json.Unmarshal(body, &out)
	return out.Key
}

// ingestStats is what the source client saw.
type ingestStats struct {
	mu       sync.Mutex
	accepted map[string]bool
	statuses map[int]int // every answer, failures included; 0 = transport error
	n        atomic.Int64
}

func newIngestStats() *ingestStats {
	return &ingestStats{accepted: map[string]bool{}, statuses: map[int]int{}}
}

func (s *ingestStats) saw(status int) {
	s.mu.Lock()
	s.statuses[status]++
	s.mu.Unlock()
}

func (s *ingestStats) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.accepted))
	for id := range s.accepted {
		out = append(out, id)
	}
	return out
}

func faultEventID(prefix string, i int) string {
	return fmt.Sprintf("%s-0000-4000-8000-%012d", prefix, i)
}

func faultEvent(id string) []byte {
	b, _ := json.Marshal(event(id, "advisory", "GREEN", nil))
	return b
}

// ingestOnce posts one event and reports its status.
func (g *gatewayProc) ingestOnce(key, id string, st *ingestStats) (int, string) {
	status, retryAfter, _ := g.call("POST", "/api/v1/events", key, faultEvent(id))
	st.saw(status)
	if status == 200 || status == 202 {
		st.mu.Lock()
		st.accepted[id] = true
		st.mu.Unlock()
		st.n.Add(1)
	}
	return status, retryAfter
}

// ingestRetrying posts one event as a well-behaved source does: on a
// transport error, 5xx or 429 it retries the same event (same id) after a
// pause, until accepted or the deadline passes. A 4xx other than 429 fails
// the test: the events are valid.
func (g *gatewayProc) ingestRetrying(key, id string, st *ingestStats, deadline time.Time) {
	for {
		status, retryAfter := g.ingestOnce(key, id, st)
		switch {
		case status == 200 || status == 202:
			return
		case status != 0 && status != 429 && status < 500:
			g.t.Errorf("ingest %s: status %d", id, status)
			return
		}
		if time.Now().After(deadline) {
			g.t.Errorf("ingest %s: still failing (status %d) at the deadline", id, status)
			return
		}
		pause := 100 * time.Millisecond
		if s, err := strconv.Atoi(retryAfter); err == nil && s > 0 {
			pause = min(time.Duration(s)*time.Second, time.Second)
		}
		time.Sleep(pause)
	}
}

// ingestAll posts ids with a few concurrent clients, retrying failures.
func (g *gatewayProc) ingestAll(key string, ids []string, st *ingestStats) {
	deadline := time.Now().Add(90 * time.Second)
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range work {
				g.ingestRetrying(key, id, st, deadline)
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
}

// mispPeer is a constituent MISP with the endpoints the misp_push sink calls:
// getVersion, HEAD /events/view/{uuid}, /events/add and /events/edit. It
// answers 500 to everything while failing is set.
type mispPeer struct {
	srv     *httptest.Server
	failing atomic.Bool
	mu      sync.Mutex
	saves   map[string]int // event uuid -> successful add/edit posts
	errors  int
}

func newMISPPeer(t *testing.T) *mispPeer {
	m := &mispPeer{saves: map[string]int{}}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mispPeer) serve(w http.ResponseWriter, r *http.Request) {
	if m.failing.Load() {
		m.mu.Lock()
		m.errors++
		m.mu.Unlock()
		http.Error(w, `{"message":"Internal error"}`, 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/servers/getVersion":
		_, _ = io.WriteString(w, `{"version":"2.5.0","perm_sync":true,"perm_sighting":true,"uuid":"5f1b1c1e-0000-4000-8000-000000000001"}`)
	case r.Method == http.MethodHead && strings.HasPrefix(r.URL.Path, "/events/view/"):
		uuid := strings.TrimPrefix(r.URL.Path, "/events/view/")
		m.mu.Lock()
		_, ok := m.saves[uuid]
		m.mu.Unlock()
		if !ok {
			w.WriteHeader(404)
		}
	case r.Method == http.MethodPost && (strings.HasPrefix(r.URL.Path, "/events/add") || strings.HasPrefix(r.URL.Path, "/events/edit/")):
		body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		var e struct {
			Event struct {
				UUID string `json:"uuid"`
			}
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Event.UUID == "" {
			http.Error(w, `{"message":"Event.uuid missing"}`, 400)
			return
		}
		m.mu.Lock()
		m.saves[e.Event.UUID]++
		m.mu.Unlock()
		_, _ = w.Write(body)
	default:
		http.Error(w, `{"message":"not found"}`, 404)
	}
}

func (m *mispPeer) got(uuid string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves[uuid]
}

// faultEnv is one scenario's world: its Redis, its gateway and its peers.
type faultEnv struct {
	t     *testing.T
	dir   string
	redis *redisProc
	gw    *gatewayProc
	key   string
	hooks map[string]*webhooktest.Receiver // constituent id -> its receiver
	relay *mailtest.Relay
	mails map[string]string // contact address -> constituent id
	misp  *mispPeer
	mispC string // the constituent that pushes to misp
}

type faultPeers struct {
	hooks int  // constituents with a webhook (h0, h1, …)
	email bool // a constituent "m" with one contact, and the e-mail channel
	misp  bool // a constituent "p" pushing to a constituent MISP
}

func newFaultEnv(t *testing.T, p faultPeers) *faultEnv {
	t.Helper()
	e := &faultEnv{t: t, dir: t.TempDir(), hooks: map[string]*webhooktest.Receiver{}, mails: map[string]string{}}
	e.redis = startRedis(t)
	writeFile(t, e.dir, "admin.keys", testAdminKey+"\n")
	var cons, channels strings.Builder
	for i := range p.hooks {
		id := fmt.Sprintf("h%d", i)
		rc := webhooktest.New(t, "")
		e.hooks[id] = rc
		fmt.Fprintf(&cons, "- {id: %s, name: Hook %d, webhooks: [{url: %q, secret: %q}]}\n", id, i, rc.URL, rc.Secret)
	}
	if p.email {
		e.relay = mailtest.NewRelay(t, mailtest.RelayOptions{})
		e.mails["soc@m.example"] = "m"
		cons.WriteString("- {id: m, name: Mail M, contacts: [{email: soc@m.example, name: SOC M}]}\n")
		fmt.Fprintf(&channels, "  email: {relay: %q, tls: none, from: warnings@schakel.example}\n", e.relay.Addr)
	}
	if p.misp {
		e.misp = newMISPPeer(t)
		e.mispC = "p"
		fmt.Fprintf(&cons, "- {id: p, name: MISP P, misp_push: {url: %q, key: %q}}\n", e.misp.srv.URL, "MispKey0123456789abcdefghijklmnopqrstuvw")
	}
	writeFile(t, e.dir, "constituents.yaml", cons.String())
	port := freePort(t)
	cfg := writeFile(t, e.dir, "schakel.yaml", fmt.Sprintf(`
listen: 127.0.0.1:%s
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
redis: {url: %q, prefix: fault}
admin: {keys_file: admin.keys}
tlp: {default: AMBER}
limits: {webhook_per_minute: 1000000, email_per_hour: 1000000, misp_push_per_minute: 1000000, ingest_per_minute: 1000000}
sources:
  - {name: partner-api, type: api, default_tlp: AMBER}
channels:
%s  webhook: {timeout: 1s, max_attempts: 40}
outbox: {reclaim_idle: 2s, base_backoff: 100ms, max_backoff: 1s}
constituents_file: constituents.yaml
shutdown_timeout: 5s
`, port, e.redis.URL(), channels.String()))
	e.gw = startGateway(t, e.dir, cfg, port)
	e.key = e.gw.sourceKey()
	return e
}

// expectedPerEvent is how many push deliveries each GREEN advisory owes.
func (e *faultEnv) expectedPerEvent() int {
	n := len(e.hooks) + len(e.mails)
	if e.misp != nil {
		n++
	}
	return n
}

// mailIDs counts accepted messages by the delivery id in their Message-ID.
func (e *faultEnv) mailIDs() map[string]int {
	out := map[string]int{}
	if e.relay == nil {
		return out
	}
	for _, m := range e.relay.Messages() {
		msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(m.Data)))
		if err != nil {
			continue
		}
		id := strings.Trim(msg.Header.Get("Message-Id"), "<> ")
		if at := strings.IndexByte(id, '@'); at > 0 {
			id = id[:at]
		}
		out[id]++
	}
	return out
}

// faultRow is one line of the suite's report.
type faultRow struct {
	Fault      string
	Accepted   int
	Due        int
	Delivered  int
	Duplicates int
	Lost       int
}

var (
	reportMu sync.Mutex
	report   []faultRow
)

func printFaultReport(w io.Writer) {
	reportMu.Lock()
	defer reportMu.Unlock()
	if len(report) == 0 {
		return
	}
	fmt.Fprintf(w, "\nfault report\n%-34s %9s %9s %10s %11s %5s\n", "fault", "accepted", "due", "delivered", "duplicates", "lost")
	for _, r := range report {
		fmt.Fprintf(w, "%-34s %9d %9d %10d %11d %5d\n", r.Fault, r.Accepted, r.Due, r.Delivered, r.Duplicates, r.Lost)
	}
}

type deliveriesReply struct {
	Deliveries []store.DeliveryState `json:"deliveries"`
	Audit      []audit.Record        `json:"audit"`
}

// deliveriesOf lists the deliveries the gateway has for an event.
func (e *faultEnv) deliveriesOf(id string) []store.DeliveryState {
	status, _, body := e.gw.call("GET", "/api/v1/deliveries?event="+id, testAdminKey, nil)
	var r deliveriesReply
	if status != 200 || json.Unmarshal(body, &r) != nil {
		return nil
	}
	return r.Deliveries
}

// delivered reports whether the peer of d accepted it.
func (e *faultEnv) delivered(d gateway.Delivery, mails map[string]int) bool {
	switch d.Channel {
	case gateway.ChannelWebhook:
		rc := e.hooks[d.Recipient.String()]
		if rc == nil {
			return false
		}
		_, ok := rc.Unique()[d.ID]
		return ok
	case gateway.ChannelEmail:
		return mails[d.ID] > 0
	case gateway.ChannelMISPPush:
		return e.misp != nil && e.misp.got(d.EventID) > 0
	}
	return false
}

// verify waits until every accepted event's deliveries reached their peers
// (or timeout), then checks the receivers and the audit trail and records the
// fault's row.
func (e *faultEnv) verify(fault string, st *ingestStats, timeout time.Duration) {
	t := e.t
	t.Helper()
	ids := st.ids()
	per := e.expectedPerEvent()
	row := faultRow{Fault: fault, Accepted: len(ids), Due: len(ids) * per}
	type check struct {
		states []store.DeliveryState
		audit  []audit.Record
	}
	fetch := func(id string) (check, bool) {
		status, _, body := e.gw.call("GET", "/api/v1/deliveries?event="+id, testAdminKey, nil)
		if status != 200 {
			return check{}, false
		}
		var r deliveriesReply
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("deliveries of %s: %v", id, err)
		}
		return check{r.Deliveries, r.Audit}, true
	}
	pending := func() (int, map[string]check) {
		mails := e.mailIDs()
		missing, all := 0, map[string]check{}
		for _, id := range ids {
			c, ok := fetch(id)
			if !ok {
				missing += per
				continue
			}
			all[id] = c
			if len(c.states) < per {
				missing += per - len(c.states)
			}
			// Done means both sides agree: the peer has it and the gateway
			// recorded it delivered (a timed-out attempt the peer accepted
			// anyway is retried before the gateway records it).
			for _, s := range c.states {
				if !e.delivered(s.Delivery, mails) || s.State != store.StateDelivered {
					missing++
				}
			}
		}
		return missing, all
	}
	deadline := time.Now().Add(timeout)
	missing, all := pending()
	for missing > 0 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		missing, all = pending()
	}
	// Let stragglers (redeliveries) land before counting duplicates.
	rcs := make([]*webhooktest.Receiver, 0, len(e.hooks))
	for _, rc := range e.hooks {
		rcs = append(rcs, rc)
	}
	settle(rcs...)
	if e.relay != nil {
		e.relay.Settle(300*time.Millisecond, 5*time.Second)
	}
	_, all = pending()
	mails := e.mailIDs()

	for _, id := range ids {
		c := all[id]
		if len(c.states) != per {
			t.Errorf("event %s: gateway lists %d deliveries, want %d", id, len(c.states), per)
		}
		deliveredAudit := map[string]bool{}
		for _, r := range c.audit {
			if r.Action == audit.ActionDeliveryDelivered {
				deliveredAudit[r.DeliveryID] = true
			}
		}
		for _, s := range c.states {
			d := s.Delivery
			if !e.delivered(d, mails) {
				row.Lost++
				t.Errorf("lost: event %s delivery %s to %s over %s (state %s, attempts %d, last error %q)",
					id, d.ID, d.Recipient, d.Channel, s.State, s.Attempts, s.LastError)
				continue
			}
			row.Delivered++
			if !deliveredAudit[d.ID] {
				t.Errorf("audit: event %s delivery %s reached %s over %s but the audit trail has no delivered record", id, d.ID, d.Recipient, d.Channel)
			}
		}
		row.Lost += max(per-len(c.states), 0)
	}
	// Duplicates are allowed only under one delivery id per event and peer.
	for cid, rc := range e.hooks {
		got := rc.Received()
		row.Duplicates += len(got) - len(rc.Unique())
		seen := map[string]string{}
		for _, x := range got {
			if prev, ok := seen[x.Event.ID]; ok && prev != x.DeliveryID {
				t.Errorf("%s got event %s under two delivery ids (%s, %s)", cid, x.Event.ID, prev, x.DeliveryID)
			}
			seen[x.Event.ID] = x.DeliveryID
		}
	}
	for _, n := range mails {
		row.Duplicates += n - 1
	}
	if e.misp != nil {
		for _, id := range ids {
			if n := e.misp.got(id); n > 1 {
				row.Duplicates += n - 1
			}
		}
	}
	reportMu.Lock()
	report = append(report, row)
	reportMu.Unlock()
	t.Logf("%s: accepted %d, due %d, delivered %d, duplicates %d, lost %d", row.Fault, row.Accepted, row.Due, row.Delivered, row.Duplicates, row.Lost)
	if row.Lost != 0 {
		t.Errorf("%s: %d deliveries lost", fault, row.Lost)
	}
}
