package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/taxii"
	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway/redistest"
)

const fuzzHookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// fuzzGateway is one in-process gateway with every ingest path configured,
// shared by all inputs of a fuzz worker.
type fuzzGateway struct {
	base     string
	smtpAddr string
	keys     map[string]string // source → key
	client   *http.Client
}

// ingestPaths are what FuzzIngestPaths feeds: the whole request path of
// each way in, from the listener through authentication, decoding,
// mapping and normalisation to the store.
var ingestPaths = []struct {
	name string
	send func(g *fuzzGateway, body []byte) (int, error)
}{
	{"canonical", func(g *fuzzGateway, b []byte) (int, error) {
		return g.post("/api/v1/events", b, "Authorization", g.keys["partner-api"], "Content-Type", "application/json")
	}},
	{"webhook canonical", func(g *fuzzGateway, b []byte) (int, error) { return g.signed("hook-canonical", b) }},
	{"webhook misp", func(g *fuzzGateway, b []byte) (int, error) { return g.signed("hook-misp", b) }},
	{"webhook stix", func(g *fuzzGateway, b []byte) (int, error) { return g.signed("hook-stix", b) }},
	{"webhook csaf", func(g *fuzzGateway, b []byte) (int, error) { return g.signed("hook-csaf", b) }},
	{"misp push", func(g *fuzzGateway, b []byte) (int, error) {
		return g.post("/events/add", b, "Authorization", g.keys["upstream"], "Content-Type", "application/json", "Accept", "application/json")
	}},
	{"misp push gzip", func(g *fuzzGateway, b []byte) (int, error) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return g.post("/events/edit/5c0661f7-77a0-4ec9-bdcf-d447950d210f", z.Bytes(), "Authorization", g.keys["upstream"],
			"Content-Type", "application/json", "Content-Encoding", "gzip")
	}},
	{"taxii inbox", func(g *fuzzGateway, b []byte) (int, error) {
		return g.post(taxii.APIRoot+"collections/"+taxii.InboxID+"/objects/", b, "Authorization", "Bearer "+g.keys["partner-api"],
			"Content-Type", taxii.MediaTAXII, "Accept", taxii.MediaTAXII)
	}},
	{"smtp intake", func(g *fuzzGateway, b []byte) (int, error) {
		err := smtp.SendMail(g.smtpAddr, nil, "cert@upstream.example", []string{"intake@schakel.example"}, b)
		if te, ok := errors.AsType[*textproto.Error](err); ok {
			return te.Code, nil
		}
		if err != nil {
			return 0, err
		}
		return 250, nil
	}},
}

// FuzzIngestPaths sends each input to one ingest path of a running gateway
// and requires an answer that is not a server error: bad input gets a 4xx
// naming the problem, never a 5xx, a panic or a dropped connection.
func FuzzIngestPaths(f *testing.F) {
	seeds := map[int][]string{
		0: {"../../schemas/testdata/event-architecture.json"},
		1: {"../../schemas/testdata/event-architecture.json"},
		2: {"testdata/webhook/misp-event.json"},
		3: {"../../mappings/stix/testdata/golden/oasis-indicator-url.json", "../../mappings/stix/testdata/golden/oasis-markings.json"},
		4: {"../../mappings/csaf/testdata/golden/ncsc-2026-0389.json", "../../mappings/csaf/testdata/golden/synthetic-broken.json"},
		5: {"testdata/misp/circl_5c0661f7.json"},
		6: {"testdata/misp/circl_5c0661f7.json"},
		7: {"../../mappings/stix/testdata/golden/envelope-page.json", "../../mappings/stix/testdata/golden/misp-stix-groupings.json"},
		8: {"testdata/mail/sector-warning-amber.eml", "testdata/mail/csaf-attachment-clear.eml"},
	}
	for i, files := range seeds {
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				continue // a moved fixture loses a seed, not the target
			}
			f.Add(uint8(i), data)
		}
	}
	g := startFuzzGateway(f)
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		p := ingestPaths[int(path)%len(ingestPaths)]
		status, err := p.send(g, body)
		if err != nil {
			t.Fatalf("%s: %v (a crashed or hung gateway drops the connection)", p.name, err)
		}
		// HTTP: 5xx is a server error. SMTP: 5xx refuses a bad message,
		// which is an answer; 4xx means the intake failed to decide.
		smtpFailed := p.name == "smtp intake" && status >= 400 && status < 500
		if smtpFailed || (p.name != "smtp intake" && status >= 500) {
			t.Fatalf("%s: status %d for a %d-byte body", p.name, status, len(body))
		}
	})
}

func startFuzzGateway(tb testing.TB) *fuzzGateway {
	tb.Helper()
	r := redistest.New(tb)
	dir := tb.TempDir()
	smtpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	smtpAddr := smtpLn.Addr().String()
	smtpLn.Close() // the gateway listens there itself
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	write("admin.keys", testAdminKey+"\n")
	path := write("schakel.yaml", fmt.Sprintf(`
listen: 127.0.0.1:0
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
limits: {ingest_per_minute: 100000000}
http: {body_limit: 1048576}
outbox: {poll_interval: 100ms}
sources:
  - {name: partner-api, type: api, default_tlp: AMBER}
  - {name: hook-canonical, type: webhook, secret: %[3]q, format: canonical}
  - {name: hook-misp, type: webhook, secret: %[3]q, format: misp}
  - {name: hook-stix, type: webhook, secret: %[3]q, format: stix}
  - {name: hook-csaf, type: webhook, secret: %[3]q, format: csaf}
  - {name: upstream, type: misp, default_tlp: GREEN}
  - {name: smtp-intake, type: smtp, listen: %[4]q, recipients: [intake@schakel.example]}
`, r.URL, r.Prefix, fuzzHookSecret, smtpAddr))
	live := runLive(tb, path)

	g := &fuzzGateway{base: live.base, smtpAddr: smtpAddr, keys: map[string]string{},
		client: &http.Client{Timeout: 30 * time.Second}}
	for _, src := range []string{"partner-api", "upstream"} {
		status, body, err := g.do("POST", "/api/v1/sources/"+src+"/keys", nil, "Authorization", testAdminKey)
		var out struct{ Key string }
		if err != nil || status != 201 || json.Unmarshal(body, &out) != nil {
			tb.Fatalf("issue key for %s: %d %v %s", src, status, err, body)
		}
		g.keys[src] = out.Key
	}
	return g
}

func (g *fuzzGateway) post(path string, body []byte, hdr ...string) (int, error) {
	status, _, err := g.do("POST", path, body, hdr...)
	return status, err
}

func (g *fuzzGateway) do(method, path string, body []byte, hdr ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, g.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// signed posts a Standard-Webhooks-signed body, so the input reaches the
// source's parser instead of stopping at the signature check.
func (g *fuzzGateway) signed(source string, body []byte) (int, error) {
	id := fmt.Sprintf("msg_%d", time.Now().UnixNano())
	now := time.Now()
	sig, err := webhook.Sign(fuzzHookSecret, id, now, body)
	if err != nil {
		return 0, err
	}
	return g.post("/api/v1/ingest/"+source, body, "Content-Type", "application/json",
		"webhook-id", id, "webhook-timestamp", fmt.Sprint(now.Unix()), "webhook-signature", sig)
}
