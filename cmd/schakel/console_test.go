package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/store"
)

// chromiumPath finds Debian's chromium (installed by .ci/run).
func chromiumPath() string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("chromium")
	return p
}

// writeConsoleConfig writes a gateway with one constituent whose webhook is
// hook, and an e-mail channel through relay so released RED items go out.
func writeConsoleConfig(t *testing.T, dir string, r *redistest.Redis, hook *webhooktest.Receiver, relay *mailtest.Relay) string {
	t.Helper()
	writeFile(t, dir, "admin.keys", testAdminKey+"\n")
	writeFile(t, dir, "constituents.yaml", fmt.Sprintf(`
- id: acme
  name: Acme Water
  sectors: [water]
  assets: {prefixes: ["192.0.2.0/24"]}
  webhooks: [{url: %q, secret: %q}]
`, hook.URL, hook.Secret))
	return writeFile(t, dir, "schakel.yaml", fmt.Sprintf(`
listen: 127.0.0.1:0
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
public_url: http://127.0.0.1
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
tlp: {default: AMBER}
constituents_file: constituents.yaml
sources:
  - {name: partner-api, type: api, default_tlp: AMBER}
channels:
  webhook: {timeout: 2s, max_attempts: 3}
  email: {relay: %q, tls: none, from: warnings@schakel.example}
outbox: {reclaim_idle: 3s, base_backoff: 100ms, max_backoff: 500ms, poll_interval: 100ms}
`, r.URL, r.Prefix, relay.Addr))
}

// TestAcceptanceConsoleInBrowser: an analyst drives the console in
// headless Chromium.
func TestAcceptanceConsoleInBrowser(t *testing.T) {
	t.Parallel()
	bin := chromiumPath()
	if bin == "" {
		t.Skip("no chromium binary (Debian package chromium; .ci/run installs it): skipping the console browser test")
	}
	r := redistest.New(t)
	dir := t.TempDir()
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	hook := webhooktest.New(t, "")
	var healthy atomic.Bool
	hook.Respond(func(int) (int, int) {
		if healthy.Load() {
			return 200, 0
		}
		return 410, 0 // permanent: the delivery goes straight to the dead letters
	})
	h := startFromConfig(t, writeConsoleConfig(t, dir, r, hook, relay))

	h.ingest(event("c0ffee00-0000-4000-8000-000000000001", "notification", "AMBER", map[string]any{
		"title": "Scanning from Acme's range", "indicators": []map[string]any{{"type": "ipv4", "value": "192.0.2.55"}}}), 202)
	h.ingest(event("c0ffee00-0000-4000-8000-000000000002", "advisory", "GREEN", map[string]any{
		"title": "Unrelated advisory", "indicators": []map[string]any{{"type": "domain", "value": "elsewhere.example"}}}), 202)
	red := h.ingest(event("c0ffee00-0000-4000-8000-000000000003", "intel", "RED", map[string]any{
		"title": "Red intel on an actor", "indicators": []map[string]any{{"type": "domain", "value": "red-actor.example"}}}), 202)
	if !red.Held {
		t.Fatal("a RED event naming nobody was not held")
	}
	eventually(t, "both webhook deliveries (AMBER owner, GREEN community) to become dead letters", 15*time.Second, func() bool {
		st, err := h.g.Outbox.Stats(context.Background(), gateway.ChannelWebhook)
		return err == nil && st.Dead == 2
	})

	out := filepath.Join("testdata", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, "console-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Log in.
	do("log in", chromedp.Navigate(h.base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), testAdminKey),
		chromedp.Click(chromedp.CSS("main form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("nav")))
	if got := text("h1"); got != "Overview" {
		t.Fatalf("after login the page is %q, want Overview", got)
	}
	shot("overview")

	// Find the event by an indicator value, open its explain view.
	do("search by indicator value", chromedp.Click(chromedp.CSS(`nav a[href="/console/events"]`)),
		chromedp.WaitVisible(chromedp.CSS("#value")),
		chromedp.SendKeys(chromedp.CSS("#value"), "192.0.2.55"),
		chromedp.Click(chromedp.CSS("#search")),
		// The result page echoes the value as the input's attribute; typing sets only the property.
		chromedp.WaitVisible(chromedp.CSS(`#value[value="192.0.2.55"]`)))
	found := text("#events tbody")
	if !strings.Contains(found, "Scanning from Acme's range") || strings.Contains(found, "Unrelated advisory") || strings.Contains(found, "Red intel") {
		t.Fatalf("search for 192.0.2.55 found:\n%s", found)
	}
	shot("events-search")
	do("open the event", chromedp.Click(chromedp.CSS("#events tbody th a")), chromedp.WaitVisible(chromedp.CSS("#explain-table")))
	explain := text("#explain-table")
	if !strings.Contains(explain, "Acme Water") || !strings.Contains(explain, "owner") || !strings.Contains(explain, "deliver webhook") {
		t.Fatalf("explain view does not show Acme as owner with the webhook delivered:\n%s", explain)
	}
	shot("event-explain")

	// Release the held RED item to a named contact, with the confirmation step.
	do("review the release", chromedp.Click(chromedp.CSS(`nav a[href="/console/held"]`)),
		chromedp.WaitVisible(chromedp.CSS("#to-"+red.ID)),
		chromedp.SendKeys(chromedp.CSS("#to-"+red.ID), "Anna Analyst <anna@acme.example>"),
		chromedp.Click(chromedp.CSS("#held tbody button")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := text("#recipients"); !strings.Contains(got, "anna@acme.example") {
		t.Fatalf("confirmation lists %q, want the named contact", got)
	}
	shot("release-confirm")
	do("confirm the release", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	msgs := relay.Wait(1, 15*time.Second)
	if len(msgs) == 0 {
		t.Fatal("the SMTP sink received nothing after the release")
	}
	to := relay.To("anna@acme.example")
	if len(to) != 1 || !strings.Contains(to[0].Subject(), "[TLP:RED]") {
		t.Fatalf("messages to anna@acme.example: %d (subject %q), want one labelled TLP:RED", len(to), firstSubject(to))
	}
	shot("held-released")

	// Retry the dead letter once the receiver is healthy again.
	healthy.Store(true)
	do("retry the dead letter", chromedp.Click(chromedp.CSS(`nav a[href="/console/dead-letters"]`)),
		chromedp.WaitVisible(chromedp.CSS("#dead")))
	if got := text("#dead tbody"); !strings.Contains(got, "410") {
		t.Fatalf("dead-letter list lacks the receiver's 410:\n%s", got)
	}
	shot("dead-letters")
	do("click retry", chromedp.Click(chromedp.CSS("#dead tbody button")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if err := hook.WaitFor(1, 15*time.Second); err != nil {
		t.Fatalf("the retried delivery did not arrive: %v", err)
	}

	// Import constituents from a CSV.
	csv, err := filepath.Abs(filepath.Join("testdata", "console", "constituents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	do("import a CSV", chromedp.Click(chromedp.CSS(`nav a[href="/console/constituents"]`)),
		chromedp.WaitVisible(chromedp.CSS("#file")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csv}),
		chromedp.Click(chromedp.CSS("#import")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := text(".notice"); got != "Imported 2 constituents." {
		t.Fatalf("import notice %q", got)
	}
	if got := text("#constituents tbody"); !strings.Contains(got, "initech") || !strings.Contains(got, "umbrella") {
		t.Fatalf("constituent list after import:\n%s", got)
	}
	shot("constituents-imported")
	if k, ok := h.g.Registry.Current().Get("initech"); !ok || len(k.Contacts) != 1 || !k.Contacts[0].Red {
		t.Fatal("initech is not in the registry with its red contact after the import")
	}

	// Nothing RED went anywhere but to the named person.
	for _, rec := range hook.Received() {
		if rec.Event.TLP == gateway.TLPRed {
			t.Fatal("a RED event reached a webhook")
		}
	}

	// Every admin action is in the audit trail under the admin's actor.
	recs, _, err := h.g.Audit.Recent(context.Background(), 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	actor := "admin:" + store.KeyHash(testAdminKey)
	for _, action := range []string{"console.login", "held.released", "deadletter.retry", "constituent.put"} {
		if !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Actor == actor && r.Action == action }) {
			t.Errorf("audit trail lacks %s by %s", action, actor)
		}
	}
}

func firstSubject(ms []mailtest.Message) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].Subject()
}
