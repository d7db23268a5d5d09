package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
)

// lockedBuffer is an io.Writer the sink writes to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the printed lines that contain every one of subs.
func (l *lockedBuffer) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(l.b.String(), "\n") {
		ok := ln != ""
		for _, s := range subs {
			ok = ok && strings.Contains(ln, s)
		}
		if ok {
			out = append(out, ln)
		}
	}
	return out
}

func (l *lockedBuffer) waitFor(t *testing.T, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ls := l.lines(subs...); len(ls) > 0 {
			return ls[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no line with %q printed; sink printed:\n%s", subs, l.b.String())
	return ""
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startSink runs the sink in-process on free ports until the test ends.
func startSink(t *testing.T, secret string) (hook, smtp string, out *lockedBuffer) {
	t.Helper()
	out = &lockedBuffer{}
	o := sinkOptions{webhook: listenLoopback(t), secret: secret, smtp: listenLoopback(t)}
	hook, smtp = o.webhook.Addr().String(), o.smtp.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveSink(ctx, o, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
	})
	return hook, smtp, out
}

// quickstartSecret is org-a's webhook secret in examples/quickstart-constituents.yaml.
const quickstartSecret = "whsec_C3WXVDT39Gs7yuBhgXKtmEUpUeQ6exAvpjihRsd1gkA="

// TestQuickstartFirstFiveMinutes walks the README's "First five minutes"
// with the shipped example files, only the ports replaced by free ones: the
// sink prints the verified webhook and the mail, explain names the rule, and
// posting the same event again is a duplicate that delivers nothing new.
func TestQuickstartFirstFiveMinutes(t *testing.T) {
	hookAddr, smtpAddr, out := startSink(t, quickstartSecret)

	dir := t.TempDir()
	copyExample := func(name string, replace ...string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer(replace...).Replace(string(b))
		return writeFile(t, dir, name, s)
	}
	copyExample("admin.keys")
	consts := copyExample("quickstart-constituents.yaml", "127.0.0.1:9090", hookAddr)
	if b, _ := os.ReadFile(consts); !strings.Contains(string(b), quickstartSecret) {
		t.Fatalf("examples/quickstart-constituents.yaml no longer holds the secret the README gives the sink")
	}
	path := copyExample("quickstart.yaml", "127.0.0.1:2526", smtpAddr, "127.0.0.1:8080", "127.0.0.1:0")

	live := runLive(t, path)
	admin := firstKey(t, filepath.Join(dir, "admin.keys"))
	h := &harness{t: t, base: live.base}

	// keys create --role source, as the README does it.
	var key bytes.Buffer
	var errb bytes.Buffer
	if code := run([]string{"keys", "create", "--role", "source", "--name", "partner-api", "--url", live.base, "--key", admin}, &key, &errb); code != 0 {
		t.Fatalf("keys create: %d %s", code, errb.String())
	}
	h.sourceKey = strings.TrimSpace(key.String())

	const id = "2a94320e-b821-460a-8b4e-6670f69a8eca"
	ev := map[string]any{
		"id": id, "kind": "advisory", "title": "Example VPN: patch now", "tlp": "AMBER",
		"sectors": []string{"government"}, "source": map[string]any{"name": "partner-api"},
		"created": "2026-11-20T09:00:00Z", "modified": "2026-11-20T09:00:00Z",
	}
	if r := h.ingest(ev, http.StatusAccepted); r.Status != "accepted" {
		t.Fatalf("first post: status %q, want accepted", r.Status)
	}
	line := out.waitFor(t, "webhook verified", "event="+id)
	for _, want := range []string{"type=event.published", "delivery_id=", "tlp=AMBER", `title="Example VPN: patch now"`} {
		if !strings.Contains(line, want) {
			t.Errorf("webhook line %q lacks %q", line, want)
		}
	}
	t.Log(line)
	t.Log(out.waitFor(t, "mail from=", "to=soc@a.example", "[TLP:AMBER]"))
	if rej := out.lines("REJECTED"); len(rej) > 0 {
		t.Errorf("the sink rejected deliveries: %q", rej)
	}

	var ex bytes.Buffer
	errb.Reset()
	if code := run([]string{"explain", "--url", live.base, "--key", admin, "--event", id, "--constituent", "org-a"}, &ex, &errb); code != 0 ||
		!strings.Contains(ex.String(), "concern sector") {
		t.Fatalf("explain org-a: %d %q %s", code, ex.String(), errb.String())
	}

	if r := h.ingest(ev, http.StatusOK); r.Status != "duplicate" {
		t.Fatalf("second post: status %q, want duplicate", r.Status)
	}
	// A duplicate is decided at ingest; give the outbox time to show that
	// nothing new was queued.
	time.Sleep(1500 * time.Millisecond)
	if n := len(out.lines("webhook verified", "event="+id)); n != 1 {
		t.Errorf("webhook deliveries of %s printed: %d, want 1", id, n)
	}
	if n := len(out.lines("mail from=", "to=soc@a.example")); n != 1 {
		t.Errorf("mails to soc@a.example printed: %d, want 1", n)
	}
}

func firstKey(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if ln = strings.TrimSpace(ln); ln != "" && !strings.HasPrefix(ln, "#") {
			return ln
		}
	}
	t.Fatalf("%s: no key", path)
	return ""
}

// A webhook signed with another secret is refused and reported, not printed
// as a delivery.
func TestSinkRejectsWrongSignature(t *testing.T) {
	hookAddr, _, out := startSink(t, quickstartSecret)
	other, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"event.published","delivery_id":"d1","event":{"id":"e1","title":"t","tlp":"CLEAR"}}`)
	for _, tc := range []struct {
		name   string
		secret string
		status int
		line   string
	}{
		{"right secret", quickstartSecret, http.StatusNoContent, "webhook verified type=event.published delivery_id=d1 event=e1 tlp=CLEAR"},
		{"other secret", other, http.StatusUnauthorized, "webhook REJECTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := time.Now()
			sig, err := webhook.Sign(tc.secret, "msg_"+strings.ReplaceAll(tc.name, " ", "_"), ts, body)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+hookAddr+"/", bytes.NewReader(body))
			req.Header.Set(webhook.HeaderID, "msg_"+strings.ReplaceAll(tc.name, " ", "_"))
			req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
			req.Header.Set(webhook.HeaderSignature, sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			out.waitFor(t, tc.line)
		})
	}
}

func TestSinkFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give --webhook"},
		{[]string{"--webhook", "127.0.0.1:0"}, "--secret: is required"},
		{[]string{"--webhook", "127.0.0.1:0", "--secret", "whsec_!!"}, "--secret: secret: not base64"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"sink"}, tc.args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("sink %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
