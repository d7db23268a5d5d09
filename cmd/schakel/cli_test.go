package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/redistest"
)

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := harnessConfig(t, dir, "", "p", "127.0.0.1:0", webhooktest.New(t, ""), webhooktest.New(t, ""), harnessOpts{})
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "--config", good}, &out, &errb); code != 0 {
		t.Fatalf("good config: exit %d: %s", code, errb.String())
	}
	bad := writeFile(t, dir, "bad.yaml", "listen: 127.0.0.1:8080\ntlp: {default: YELLOW}\nsources:\n  - {name: x, type: carrier-pigeon}\n")
	out.Reset()
	errb.Reset()
	if code := run([]string{"check-config", "--config", bad}, &out, &errb); code == 0 {
		t.Fatal("bad config accepted")
	}
	msg := errb.String()
	for _, want := range []string{"tlp.default", "line 2", "sources[0].type", "line 4"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if run([]string{"version"}, &out, &errb) != 0 || !strings.HasPrefix(out.String(), "schakel ") {
		t.Fatalf("version: %q", out.String())
	}
	if run([]string{"frobnicate"}, &out, &errb) != 2 {
		t.Fatal("unknown command did not exit 2")
	}
	out.Reset()
	if run([]string{"keys", "create", "--role", "admin"}, &out, &errb) != 0 || len(strings.TrimSpace(out.String())) != 40 {
		t.Fatalf("admin key: %q", out.String())
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}, {"check-config", "--help"},
		{"keys", "create", "-h"}, {"constituents", "import", "--help"}, {"explain", "-help"}, {"sink", "--help"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Errorf("%v: exit %d, want 0 (stderr %q)", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "Usage:") || !strings.Contains(out.String(), "schakel serve --config FILE") {
			t.Errorf("%v: stdout lacks the usage: %q", args, out.String())
		}
		if len(args) > 1 && !strings.Contains(out.String(), "Flags of "+strings.Join(args[:len(args)-1], " ")) {
			t.Errorf("%v: stdout lacks the command's flags: %q", args, out.String())
		}
	}
	var cout, cerr bytes.Buffer
	if code := convert([]string{"--help"}, strings.NewReader(""), &cout, &cerr); code != 0 || !strings.Contains(cout.String(), "--from") {
		t.Errorf("convert --help: exit %d, stdout %q; want 0 and the usage", code, cout.String())
	}
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "frobnicate") {
		t.Errorf("bad flag: exit %d, stderr %q; want 2 naming the flag", code, errb.String())
	}
}

func TestReadmeLinksStayInside(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Code is shown, not linked: drop fenced blocks and code spans, then
	// every markdown link, autolink and bare URL (which renderers link)
	// that is left must stay inside the repository.
	text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(data), "")
	text = regexp.MustCompile("`[^`\n]*`").ReplaceAllString(text, "")
	for _, m := range regexp.MustCompile(`\]\(([^)\s]*)|(?i)(?:https?|ftp)://\S+|www\.\S+`).FindAllStringSubmatch(text, -1) {
		target := m[0]
		if m[1] != "" || strings.HasPrefix(m[0], "](") {
			target = m[1]
		}
		if strings.Contains(target, "://") || strings.HasPrefix(target, "www.") || strings.HasPrefix(target, "//") {
			t.Errorf("README links outside the repository: %s", target)
		}
	}
}

func TestConstituentsImportAndKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	dir := t.TempDir()
	csv := writeFile(t, dir, "more.csv", "id,name,sectors,asns,prefixes,domains,contacts\n"+
		"gemeente-x,Gemeente X,government,64501,203.0.113.0/24,x.example,CISO <ciso@x.example>!red\n"+
		"ziekenhuis-y,Ziekenhuis Y,health,,2001:db8::/32,y.example,soc@y.example\n")
	var out, errb bytes.Buffer
	if code := run([]string{"constituents", "import", csv, "--url", h.base, "--key", testAdminKey}, &out, &errb); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "100%") || !strings.Contains(out.String(), "imported 2") {
		t.Errorf("no progress or summary: %q / %q", errb.String(), out.String())
	}
	var c struct {
		Sectors  []string
		Contacts []struct {
			Email string
			Red   bool
		}
	}
	h.do("GET", "/api/v1/constituents/gemeente-x", testAdminKey, nil, 200, &c)
	if len(c.Contacts) != 1 || !c.Contacts[0].Red || c.Sectors[0] != "government" {
		t.Fatalf("imported constituent: %+v", c)
	}
	// The registry picked it up: a notification for its prefix is routed to it.
	h.ingest(event("dddddddd-0000-4000-8000-000000000001", "notification", "AMBER", map[string]any{
		"indicators": []any{map[string]any{"type": "ipv4", "value": "203.0.113.5"}}}), 202)
	var ex struct{ Concern string }
	h.do("GET", "/api/v1/explain?event=dddddddd-0000-4000-8000-000000000001&constituent=gemeente-x", testAdminKey, nil, 200, &ex)
	if ex.Concern != "owner" {
		t.Fatalf("concern after import: %q", ex.Concern)
	}
	out.Reset()
	if code := run([]string{"explain", "--url", h.base, "--key", testAdminKey, "--event", "dddddddd-0000-4000-8000-000000000001", "--constituent", "gemeente-x"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "concern owner") {
		t.Fatalf("explain CLI: %d %q", code, out.String())
	}
	// A constituent key issued through the CLI authenticates.
	out.Reset()
	if code := run([]string{"keys", "create", "--role", "constituent", "--name", "gemeente-x", "--url", h.base, "--key", testAdminKey}, &out, &errb); code != 0 {
		t.Fatalf("keys create: %s", errb.String())
	}
	if k := strings.TrimSpace(out.String()); len(k) != 40 {
		t.Fatalf("key %q", k)
	}
	// "secret: generate" gets a secret from the gateway, printed once.
	gen := writeFile(t, dir, "gen.yaml", "- {id: hooked, name: Hooked, webhooks: [{url: 'https://hooked.example/h', secret: generate}]}\n")
	out.Reset()
	if code := run([]string{"constituents", "import", gen, "--url", h.base, "--key", testAdminKey, "--quiet"}, &out, &errb); code != 0 {
		t.Fatalf("import with generate: exit %d: %s", code, errb.String())
	}
	if !regexp.MustCompile(`(?m)^hooked https://hooked\.example/h whsec_[A-Za-z0-9+/]{43}=$`).MatchString(out.String()) {
		t.Errorf("import did not print the generated secret: %q", out.String())
	}
	// Bad input names the field.
	weak := writeFile(t, dir, "weak.yaml", "- {id: weak, name: Weak, webhooks: [{url: 'https://weak.example/h', secret: 'whsec_c2VjcmV0'}]}\n")
	errb.Reset()
	if code := run([]string{"constituents", "import", weak, "--url", h.base, "--key", testAdminKey}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "webhooks[0].secret") {
		t.Fatalf("weak secret import: %d %s", code, errb.String())
	}
	bad := writeFile(t, dir, "bad.yaml", "- {id: 'Bad Id', name: x}\n")
	errb.Reset()
	if code := run([]string{"constituents", "import", bad, "--url", h.base, "--key", testAdminKey}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "id") {
		t.Fatalf("bad import: %d %s", code, errb.String())
	}
}

func TestLimitsOnRequests(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	dir := t.TempDir()
	a, b := webhooktest.New(t, ""), webhooktest.New(t, "")
	path := harnessConfig(t, dir, r.URL, r.Prefix, "127.0.0.1:0", a, b, harnessOpts{})
	// Tighten the body limit and the per-key ingest limit.
	data, _ := os.ReadFile(path)
	data = append(data, []byte("http: {body_limit: 4096}\nlimits: {ingest_per_minute: 3}\n")...)
	_ = os.WriteFile(filepath.Join(dir, "schakel.yaml"), data, 0o600)
	h := startFromConfig(t, filepath.Join(dir, "schakel.yaml"))
	big := event("eeeeeeee-0000-4000-8000-000000000001", "advisory", "GREEN", map[string]any{"description": strings.Repeat("x", 8000)})
	h.do("POST", "/api/v1/events", h.sourceKey, big, 413, nil)
	for i := range 3 {
		h.ingest(event(fmt.Sprintf("eeeeeeee-0000-4000-8000-00000000001%d", i), "advisory", "GREEN", nil), 202)
	}
	req, _ := http.NewRequest("POST", h.base+"/api/v1/events", strings.NewReader(`{"kind":"intel","title":"x","source":{"name":"partner-api"}}`))
	req.Header.Set("Authorization", h.sourceKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the ingest limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// A webhook source has its own budget of the same size.
	for i := range 4 {
		body, _ := json.Marshal(event(fmt.Sprintf("eeeeeeee-0000-4000-8000-00000000002%d", i), "advisory", "GREEN", nil))
		req, _ := http.NewRequest("POST", h.base+"/api/v1/ingest/partner-hook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		signWebhook(t, req, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", fmt.Sprintf("msg_%d", i), body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 202
		if i == 3 {
			want = 429
		}
		if resp.StatusCode != want || (want == 429 && resp.Header.Get("Retry-After") == "") {
			t.Fatalf("signed webhook %d: %d, Retry-After %q, want %d", i, resp.StatusCode, resp.Header.Get("Retry-After"), want)
		}
	}
}

// One partner must not rewrite another's warning by reusing its id.
func TestSourceCannotRewriteAnotherSourcesEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	const id = "ffffffff-0000-4000-8000-000000000001"
	h.ingest(event(id, "intel", "AMBER", map[string]any{"sectors": []any{"health"}}), 202)
	forged := event(id, "intel", "CLEAR", map[string]any{"modified": "2026-11-22T09:00:00Z"})
	body, _ := json.Marshal(forged)
	req, _ := http.NewRequest("POST", h.base+"/api/v1/ingest/partner-hook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	signWebhook(t, req, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_forged", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Fatalf("forged update: status %d, want 409", resp.StatusCode)
	}
	var stored struct{ TLP string }
	h.do("GET", "/api/v1/events/"+id, testAdminKey, nil, 200, &stored)
	if stored.TLP != "AMBER" {
		t.Fatalf("stored TLP %q after a forged update", stored.TLP)
	}
}
