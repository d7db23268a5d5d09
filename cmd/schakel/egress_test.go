package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/redistest"
)

// TestSecurityEgressGuard: URLs that point at the gateway's own host or at
// link-local (cloud metadata) addresses are refused wherever they enter —
// the configuration, the constituents file, the admin API — and, when a
// name only resolves there at send time, by the dialer; nothing reaches the
// target and the delivery is dead-lettered with the reason.
func TestSecurityEgressGuard(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	dir := t.TempDir()
	a, b := webhooktest.New(t, ""), webhooktest.New(t, "")
	path := harnessConfig(t, dir, r.URL, r.Prefix, "127.0.0.1:0", a, b, harnessOpts{})
	full := readFile(t, path)
	allowLine := "egress: {allow: [127.0.0.0/8, \"::1\"]}  # test receivers listen on loopback\n"
	if !strings.Contains(full, allowLine) {
		t.Fatal("harness configuration no longer allows loopback the way this test expects")
	}
	guarded := strings.Replace(full, allowLine, "", 1)

	// The constituents file names loopback receivers: start-up refuses it,
	// naming the constituent and the field.
	writeFile(t, dir, "schakel.yaml", guarded)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "constituents[0] (a) /webhooks/0/url") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("start with loopback webhooks and no egress.allow: %v", err)
	}

	// With require_tls even allowed addresses must be reached over https:
	// the harness's http:// receivers are refused at start-up.
	writeFile(t, dir, "schakel.yaml", strings.Replace(full, allowLine, "egress: {allow: [127.0.0.0/8], require_tls: true}\n", 1))
	if cfg, err = config.Load(path); err != nil {
		t.Fatal(err)
	}
	_, err = start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "constituents[1] (b) /webhooks/0/url") || !strings.Contains(err.Error(), "require_tls") {
		t.Fatalf("start with http:// webhooks under require_tls: %v", err)
	}

	// A configured source pointing at the metadata service is refused by
	// the configuration check with its path.
	meta := strings.Replace(guarded, "sources:\n", "sources:\n  - {name: up, type: misp, url: \"http://169.254.169.254/latest/meta-data\", key: \"0123456789012345678901234567890123456789\"}\n", 1)
	writeFile(t, dir, "schakel.yaml", meta)
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "sources[0].url") || !strings.Contains(err.Error(), "link-local") {
		t.Fatalf("misp source at 169.254.169.254: %v, want an error naming sources[0].url", err)
	}

	// Without the file, the gateway runs; constituents arrive by the API.
	writeFile(t, dir, "schakel.yaml", strings.Replace(guarded, "constituents_file: constituents.yaml\n", "", 1))
	h := startFromConfig(t, path)

	var errResp struct {
		Details []struct{ Field, Message string }
	}
	h.do("PUT", "/api/v1/constituents/m", testAdminKey, map[string]any{
		"name": "Metadata", "assets": map[string]any{"prefixes": []string{"203.0.113.0/24"}},
		"webhooks":  []any{map[string]any{"url": "http://169.254.169.254/latest/meta-data", "secret": a.Secret}},
		"misp_push": map[string]any{"url": "http://[::ffff:127.0.0.1]:8443", "key": "0123456789012345678901234567890123456789"},
	}, 400, &errResp)
	fields := map[string]string{}
	for _, e := range errResp.Details {
		fields[e.Field] = e.Message
	}
	if !strings.Contains(fields["/webhooks/0/url"], "link-local") || !strings.Contains(fields["/misp_push/url"], "loopback") {
		t.Fatalf("PUT with metadata and loopback URLs: %+v, want both fields named", errResp)
	}

	// A name that resolves to loopback passes registration (names are
	// judged when dialled) and is then refused by the dialer.
	host, _ := os.Hostname()
	addrs, _ := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Skipf("host name %q does not resolve to loopback here (%v); the dial-time part needs one that does", host, addrs)
	}
	var hits atomic.Int32
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addrs[0].Unmap(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	target.Listener = ln
	target.Start()
	defer target.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	named := "http://" + net.JoinHostPort(host, strconv.Itoa(port))
	h.do("PUT", "/api/v1/constituents/n", testAdminKey, map[string]any{
		"name": "Named", "assets": map[string]any{"prefixes": []string{"203.0.113.0/24"}},
		"webhooks":  []any{map[string]any{"url": named + "/hook", "secret": a.Secret}},
		"misp_push": map[string]any{"url": named, "key": "0123456789012345678901234567890123456789"},
	}, 201, nil)
	h.ingest(event("77777777-7777-4777-8777-777777777777", "notification", "AMBER", map[string]any{"indicators": []any{
		map[string]any{"type": "ipv4", "value": "203.0.113.9"},
	}}), 202)

	var dead struct {
		DeadLetters []struct {
			Delivery struct{ Channel, Recipient string }
			Reason   string
			Attempts int
		} `json:"dead_letters"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		h.do("GET", "/api/v1/dead-letters", testAdminKey, nil, 200, &dead)
		if len(dead.DeadLetters) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	channels := map[string]bool{}
	for _, d := range dead.DeadLetters {
		channels[d.Delivery.Channel] = true
		if d.Delivery.Recipient != "n" || !strings.Contains(d.Reason, "loopback") || d.Attempts != 1 {
			t.Errorf("dead letter %+v: want recipient n, a loopback reason, after one attempt", d)
		}
	}
	if !channels["webhook"] || !channels["misp_push"] {
		t.Fatalf("dead letters %+v: want the webhook and the misp_push delivery", dead.DeadLetters)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback target was reached %d times", n)
	}
}
