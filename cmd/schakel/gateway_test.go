package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
)

const testAdminKey = "AdminKey0123456789abcdefghijklmnopqrstuv"

// harness is a gateway running in-process against the test's Redis, with
// constituents A (192.0.2.0/24, a.example) and B (198.51.100.0/24, health),
// each with a signature-verifying webhook receiver.
type harness struct {
	t         *testing.T
	base      string
	g         *Gateway
	a, b      *webhooktest.Receiver
	sourceKey string
	dir       string
	redis     *redistest.Redis
}

type harnessOpts struct {
	limitA int // webhook_per_minute for A; 0 = default
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// harnessConfig writes a configuration and constituents file for the test.
func harnessConfig(t *testing.T, dir, redisURL, prefix, listen string, a, b *webhooktest.Receiver, o harnessOpts) string {
	t.Helper()
	writeFile(t, dir, "admin.keys", testAdminKey+"\n")
	writeFile(t, dir, "hook.secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
	limitA := ""
	if o.limitA > 0 {
		limitA = fmt.Sprintf("\n  limits: {webhook_per_minute: %d}", o.limitA)
	}
	writeFile(t, dir, "constituents.yaml", fmt.Sprintf(`
- id: a
  name: Constituent A
  assets: {prefixes: ["192.0.2.0/24"], domains: ["a.example"]}
  contacts: [{email: soc@a.example, name: SOC A}]
  webhooks: [{url: %q, secret: %q}]%s
- id: b
  name: Constituent B
  sectors: [health]
  assets: {prefixes: ["198.51.100.0/24"]}
  contacts: [{email: soc@b.example, name: SOC B}]
  webhooks: [{url: %q, secret: %q}]
`, a.URL, a.Secret, limitA, b.URL, b.Secret))
	return writeFile(t, dir, "schakel.yaml", fmt.Sprintf(`
listen: %s
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
tlp: {default: AMBER}
sources:
  - {name: partner-api, type: api, default_tlp: AMBER, own: true}  # own: the tests' AMBER+STRICT reaches owners only from an own source
  - {name: partner-hook, type: webhook, secret_file: hook.secret, format: canonical}
channels:
  webhook: {timeout: 2s, max_attempts: 4}
outbox: {reclaim_idle: 3s, base_backoff: 200ms, poll_interval: 100ms}  # a stopping gateway waits poll_interval for its queue readers
constituents_file: constituents.yaml
`, listen, redisURL, prefix))
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	r := redistest.New(t)
	h := &harness{t: t, dir: t.TempDir(), redis: r}
	h.a = webhooktest.New(t, "")
	h.b = webhooktest.New(t, "")
	path := harnessConfig(t, h.dir, r.URL, r.Prefix, "127.0.0.1:0", h.a, h.b, o)
	g := startFromConfig(t, path)
	g.a, g.b, g.dir, g.redis = h.a, h.b, h.dir, r
	return g
}

// startFromConfig runs a gateway in-process from a configuration file and
// issues a key for the partner-api source.
func startFromConfig(t *testing.T, path string) *harness {
	t.Helper()
	live := runLive(t, path)
	h := &harness{t: t, g: live.g, base: live.base}
	var out struct{ Key string }
	h.do("POST", "/api/v1/sources/partner-api/keys", testAdminKey, nil, 201, &out)
	h.sourceKey = out.Key
	return h
}

// do sends a request and checks the status; out receives the JSON body.
func (h *harness) do(method, path, key string, body any, want int, out any) []byte {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				h.t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.base+path, rd)
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return data
}

type ingestResult struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Held     bool   `json:"held"`
	Rejected []gateway.FieldError
}

func (h *harness) ingest(ev map[string]any, want int) ingestResult {
	h.t.Helper()
	var r ingestResult
	h.do("POST", "/api/v1/events", h.sourceKey, ev, want, &r)
	return r
}

func event(id, kind, tlp string, extra map[string]any) map[string]any {
	ev := map[string]any{
		"id": id, "kind": kind, "title": "test " + id, "tlp": tlp,
		"source":   map[string]any{"name": "partner-api"},
		"modified": "2026-11-20T09:00:00Z", "created": "2026-11-20T09:00:00Z",
	}
	for k, v := range extra {
		ev[k] = v
	}
	return ev
}

// settle waits until no new delivery arrives for a moment, so "did not
// receive" assertions are not racing the outbox.
func settle(rs ...*webhooktest.Receiver) {
	last := -1
	for range 40 {
		n := 0
		for _, r := range rs {
			n += r.Requests()
		}
		if n == last {
			return
		}
		last = n
		time.Sleep(150 * time.Millisecond)
	}
}

func byEvent(r *webhooktest.Receiver, id string) []webhooktest.Received {
	var out []webhooktest.Received
	for _, x := range r.Received() {
		if x.Event.ID == id {
			out = append(out, x)
		}
	}
	return out
}

func values(ev gateway.Event) []string {
	var out []string
	for _, i := range ev.Indicators {
		out = append(out, i.Value)
	}
	return out
}

func TestAcceptancePolicyRouting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	const (
		notif  = "11111111-1111-4111-8111-111111111111"
		green  = "22222222-2222-4222-8222-222222222222"
		health = "33333333-3333-4333-8333-333333333333"
		red    = "44444444-4444-4444-8444-444444444444"
		strict = "55555555-5555-4555-8555-555555555555"
	)
	h.ingest(event(notif, "notification", "AMBER", map[string]any{"indicators": []any{
		map[string]any{"type": "ipv4", "value": "192.0.2.10"},
		map[string]any{"type": "ipv4", "value": "198.51.100.7"},
	}}), 202)
	h.ingest(event(green, "advisory", "GREEN", nil), 202)
	h.ingest(event(health, "intel", "AMBER", map[string]any{"sectors": []any{"health"}}), 202)
	if r := h.ingest(event(red, "incident", "RED", nil), 202); !r.Held {
		t.Errorf("RED event not reported as held: %+v", r)
	}
	h.ingest(event(strict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}), 202)

	if err := h.a.WaitFor(3, 10*time.Second); err != nil {
		t.Fatalf("A: %v", err)
	}
	if err := h.b.WaitFor(3, 10*time.Second); err != nil {
		t.Fatalf("B: %v", err)
	}
	settle(h.a, h.b)

	// 1. each constituent sees only its own indicators of the notification.
	if got := byEvent(h.a, notif); len(got) != 1 || strings.Join(values(got[0].Event), ",") != "192.0.2.10" {
		t.Errorf("A notification: %+v", got)
	}
	if got := byEvent(h.b, notif); len(got) != 1 || strings.Join(values(got[0].Event), ",") != "198.51.100.7" {
		t.Errorf("B notification: %+v", got)
	}
	// 2. GREEN advisory to both.
	if len(byEvent(h.a, green)) != 1 || len(byEvent(h.b, green)) != 1 {
		t.Errorf("GREEN advisory: A %d, B %d", len(byEvent(h.a, green)), len(byEvent(h.b, green)))
	}
	// 3. AMBER for the health sector: B only.
	if len(byEvent(h.a, health)) != 0 || len(byEvent(h.b, health)) != 1 {
		t.Errorf("AMBER health: A %d, B %d", len(byEvent(h.a, health)), len(byEvent(h.b, health)))
	}
	// 4. RED: no webhook; held.
	if len(byEvent(h.a, red))+len(byEvent(h.b, red)) != 0 {
		t.Error("RED delivered over a webhook")
	}
	var held struct {
		Held []struct {
			EventID string `json:"EventID"`
		} `json:"held"`
	}
	body := h.do("GET", "/api/v1/held", testAdminKey, nil, 200, &held)
	if !bytes.Contains(body, []byte(red)) {
		t.Errorf("RED event not listed under /api/v1/held: %s", body)
	}
	// 5. AMBER+STRICT addressed to A: A only.
	if len(byEvent(h.a, strict)) != 1 || len(byEvent(h.b, strict)) != 0 {
		t.Errorf("AMBER+STRICT: A %d, B %d", len(byEvent(h.a, strict)), len(byEvent(h.b, strict)))
	}
	if h.a.Rejected()+h.b.Rejected() != 0 {
		t.Error("a receiver rejected a signature")
	}

	// explain says why.
	var ex struct {
		Concern  string `json:"concern"`
		Channels []struct{ Channel, Verdict, Rule string }
	}
	h.do("GET", "/api/v1/explain?event="+health+"&constituent=a", testAdminKey, nil, 200, &ex)
	if ex.Concern != "community" || len(ex.Channels) == 0 {
		t.Errorf("explain A/health: %+v", ex)
	}
	for _, c := range ex.Channels {
		if c.Verdict == "deliver" {
			t.Errorf("explain lets A receive an AMBER health event over %s", c.Channel)
		}
	}
	h.do("GET", "/api/v1/explain?event="+health+"&constituent=b", testAdminKey, nil, 200, &ex)
	if ex.Concern != "sector" {
		t.Errorf("explain B/health concern %q", ex.Concern)
	}
	// It says deliver only where something is sent: B has a webhook, but
	// this gateway has no e-mail relay and B no MISP push URL.
	want := map[string]string{"webhook": "deliver", "email": "deny: no e-mail relay configured", "misp_push": "deny: no MISP push URL"}
	for _, c := range ex.Channels {
		w, ok := want[c.Channel]
		if !ok {
			continue
		}
		delete(want, c.Channel)
		if got := c.Verdict + ": " + c.Rule; !strings.HasPrefix(got, w) {
			t.Errorf("explain B/health over %s: %q, want %q…", c.Channel, got, w)
		}
	}
	if len(want) > 0 {
		t.Errorf("explain B/health lacks %v", want)
	}

	// 6. the same version again is a duplicate and delivers nothing; a newer one is delivered.
	if r := h.ingest(event(green, "advisory", "GREEN", nil), 200); r.Status != "duplicate" {
		t.Errorf("re-ingest: %+v", r)
	}
	settle(h.a, h.b)
	if len(byEvent(h.a, green)) != 1 {
		t.Errorf("duplicate delivered again: %d", len(byEvent(h.a, green)))
	}
	h.ingest(event(green, "advisory", "GREEN", map[string]any{"modified": "2026-11-21T10:00:00Z"}), 202)
	if err := h.a.WaitFor(4, 10*time.Second); err != nil {
		t.Fatalf("update not delivered: %v", err)
	}
	if got := byEvent(h.a, green); len(got) != 2 || got[0].DeliveryID == got[1].DeliveryID {
		t.Errorf("update deliveries: %+v", got)
	}

	// deliveries and audit are visible to admins.
	var dl struct {
		Deliveries []struct{ State string }
		Audit      []struct{ Action string }
	}
	h.do("GET", "/api/v1/deliveries?event="+notif, testAdminKey, nil, 200, &dl)
	if len(dl.Deliveries) != 2 {
		t.Errorf("deliveries of the notification: %+v", dl)
	}
	for _, d := range dl.Deliveries {
		if d.State != "delivered" {
			t.Errorf("delivery state %q", d.State)
		}
	}
}

func TestAcceptanceRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ev := event("66666666-6666-4666-8666-666666666666", "intel", "YELLOW", map[string]any{"indicators": []any{
		map[string]any{"type": "ipv4", "value": "192.0.2.10"},
		map[string]any{"type": "ipv4", "value": "300.1.2.3"},
	}})
	var e struct {
		Error   string
		Details []gateway.FieldError
	}
	h.do("POST", "/api/v1/events", h.sourceKey, ev, 400, &e)
	fields := map[string]bool{}
	for _, d := range e.Details {
		fields[d.Field] = true
	}
	if !fields["/tlp"] || !fields["/indicators/1/value"] {
		t.Fatalf("400 does not name both fields: %+v", e)
	}
	h.do("GET", "/api/v1/events/66666666-6666-4666-8666-666666666666", testAdminKey, nil, 404, nil)
	var list struct{ Events []any }
	h.do("GET", "/api/v1/events", testAdminKey, nil, 200, &list)
	if len(list.Events) != 0 {
		t.Fatalf("something was stored: %+v", list)
	}

	// A malformed indicator alone does not stop the event: it is reported.
	ev["tlp"] = "GREEN"
	r := h.ingest(ev, 202)
	if len(r.Rejected) != 1 || r.Rejected[0].Field != "/indicators/1/value" {
		t.Fatalf("rejected indicators: %+v", r)
	}
	var stored gateway.Event
	h.do("GET", "/api/v1/events/"+r.ID, testAdminKey, nil, 200, &stored)
	if len(stored.Indicators) != 1 || stored.Indicators[0].Value != "192.0.2.10" {
		t.Fatalf("stored indicators: %+v", stored.Indicators)
	}

	// Auth and shape errors.
	h.do("POST", "/api/v1/events", "", ev, 401, nil)
	h.do("POST", "/api/v1/events", "wrongwrongwrongwrongwrongwrongwrongwrong", ev, 401, nil)
	h.do("GET", "/api/v1/events", h.sourceKey, nil, 403, nil)
	h.do("POST", "/api/v1/events", h.sourceKey, []byte(`{"kind":`), 400, nil)
}

func TestAcceptanceSignedWebhookIngest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	body, _ := json.Marshal(event("77777777-7777-4777-8777-777777777777", "advisory", "CLEAR", nil))
	post := func(secret string) (int, string) {
		req, _ := http.NewRequest("POST", h.base+"/api/v1/ingest/partner-hook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		signWebhook(t, req, secret, "msg_1", body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if got, _ := post("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); got != 401 {
		t.Fatalf("wrong secret: %d", got)
	}
	if got, _ := post("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); got != 202 {
		t.Fatalf("signed webhook: %d", got)
	}
	// The same message again is a replay, answered without ingesting.
	if got, b := post("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); got != 200 || b != `{"status":"duplicate"}` {
		t.Fatalf("replayed webhook: %d %s", got, b)
	}
	if err := h.a.WaitFor(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
