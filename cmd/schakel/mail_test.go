package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/connectors/mail"
	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/redistest"
)

// mailConf says which mail parts a test configuration has.
type mailConf struct {
	relay        *mailtest.Relay   // the e-mail channel's relay; nil: no e-mail channel
	box          *mailtest.Mailbox // an imap source reading it
	smtpListen   string            // an smtp source listening here
	lists        bool              // a public and a community mailing list
	constituents string            // constituents.yaml
	encrypt      string            // channels.email.encrypt as YAML; empty: the default
}

func writeMailConfig(t *testing.T, dir string, r *redistest.Redis, c mailConf) string {
	t.Helper()
	writeFile(t, dir, "admin.keys", testAdminKey+"\n")
	writeFile(t, dir, "constituents.yaml", c.constituents)
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\negress: {allow: [127.0.0.0/8]}\npublic_url: https://schakel.example.org\nredis: {url: %q, prefix: %q}\n", r.URL, r.Prefix)
	b.WriteString("admin: {keys_file: admin.keys}\ntlp: {default: AMBER}\nconstituents_file: constituents.yaml\n")
	b.WriteString("outbox: {reclaim_idle: 3s, base_backoff: 200ms, max_backoff: 1s, poll_interval: 100ms}\nsources:\n")
	// own: AMBER+STRICT reaches its addressee only from one of the relay's own sources.
	b.WriteString("  - {name: partner-api, type: api, default_tlp: AMBER, own: true}\n")
	if c.box != nil {
		writeFile(t, dir, "imap.pw", c.box.Password+"\n")
		fmt.Fprintf(&b, "  - {name: advisories-mailbox, type: imap, address: %q, tls: none, username: %s, password_file: imap.pw, mailbox: INBOX, interval: 1s, default_tlp: AMBER}\n",
			c.box.Addr, c.box.Username)
	}
	if c.smtpListen != "" {
		fmt.Fprintf(&b, "  - {name: smtp-intake, type: smtp, listen: %q, recipients: [intake@schakel.example]}\n", c.smtpListen)
	}
	b.WriteString("channels:\n  webhook: {timeout: 2s, max_attempts: 6}\n")
	if c.relay != nil {
		enc := ""
		if c.encrypt != "" {
			enc = ", encrypt: " + c.encrypt
		}
		fmt.Fprintf(&b, "  email: {relay: %q, tls: none, from: warnings@schakel.example%s}\n", c.relay.Addr, enc)
	}
	if c.lists {
		b.WriteString("mailing_lists:\n  - {address: public-warnings@lists.example, audience: public}\n  - {address: members@lists.example, audience: community}\n")
	}
	return writeFile(t, dir, "schakel.yaml", b.String())
}

// startMailGateway runs a gateway like startFromConfig, and returns a stop
// function so a test can restart it.
func startMailGateway(t *testing.T, path string) (*harness, func()) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	g, err := start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx, ln, 5*time.Second); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	h := &harness{t: t, g: g, base: "http://" + ln.Addr().String()}
	var out struct{ Key string }
	h.do("POST", "/api/v1/sources/partner-api/keys", testAdminKey, nil, 201, &out)
	h.sourceKey = out.Key
	return h, stop
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "mail", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedEvents returns the full stored events of source, by title.
func storedEvents(h *harness, source string) map[string]gateway.Event {
	var list struct {
		Events []struct{ ID string } `json:"events"`
	}
	h.do("GET", "/api/v1/events?limit=100&source="+source, testAdminKey, nil, 200, &list)
	out := map[string]gateway.Event{}
	for _, s := range list.Events {
		var ev gateway.Event
		h.do("GET", "/api/v1/events/"+s.ID, testAdminKey, nil, 200, &ev)
		out[ev.Title] = ev
	}
	return out
}

func emailQueue(t *testing.T, h *harness) outbox.Stats {
	st, err := h.g.Outbox.Stats(context.Background(), gateway.ChannelEmail)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// metricValue returns the value of one exposed sample, "" when absent.
func metricValue(h *harness, sample string) string {
	for _, l := range strings.Split(string(h.do("GET", "/metrics", "", nil, 200, nil)), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return v
		}
	}
	return ""
}

// auditActions lists the audit actions of event id for recipient, oldest first.
func auditActions(h *harness, id, recipient string) []string {
	var out struct {
		Audit []struct{ Action string }
	}
	h.do("GET", "/api/v1/deliveries?event="+id+"&constituent="+recipient, testAdminKey, nil, 200, &out)
	var acts []string
	for _, a := range out.Audit {
		acts = append(acts, a.Action)
	}
	return acts
}

func mailAdvisory(n int) []byte {
	return fmt.Appendf(nil, "From: CERT <cert@sector.example>\r\nTo: intake@schakel.example\r\n"+
		"Subject: [TLP:GREEN] Sectorwaarschuwing %d\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n"+
		"Message-ID: <sw%d@sector.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"TLP:GREEN\r\n\r\nScans vanaf 203.0.113.%d tegen CVE-2026-2000%d.\r\n", n, n, n, n)
}

func TestAcceptanceMailboxIntake(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	dir := t.TempDir()
	box := mailtest.NewMailbox(t, mailtest.MailboxOptions{})
	box.Append("INBOX", readFixture(t, "sector-warning-amber.eml"))
	box.Append("INBOX", readFixture(t, "csaf-attachment-clear.eml"))
	box.Append("INBOX", []byte("\x00\x01 this is no e-mail message"))
	path := writeMailConfig(t, dir, r, mailConf{box: box, constituents: "[]\n"})
	h, stop := startMailGateway(t, path)

	var evs map[string]gateway.Event
	eventually(t, "three events from two messages", 20*time.Second, func() bool {
		evs = storedEvents(h, "advisories-mailbox")
		return len(evs) == 3
	})
	amber := evs["Actieve misbruik Example VPN - indicatoren (ZC-2026-117)"]
	var values []string
	for _, ind := range amber.Indicators {
		values = append(values, ind.Value)
	}
	for _, want := range []string{"https://update-check.example-cdn.net/vpn/login", "45.155.205.99", "198.51.100.23",
		"c2.badhost.example", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"} {
		if !slices.Contains(values, want) {
			t.Errorf("sector warning lacks indicator %s (has %v)", want, values)
		}
	}
	if amber.TLP != gateway.TLPAmber || amber.Priority != gateway.PriorityCritical ||
		len(amber.Vulnerabilities) != 1 || amber.Vulnerabilities[0].CVE != "CVE-2026-12345" {
		t.Errorf("sector warning: tlp %s priority %s vulnerabilities %v", amber.TLP, amber.Priority, amber.Vulnerabilities)
	}
	csafEv := evs["Kwetsbaarheden verholpen in Example VPN Gateway"]
	var cves []string
	for _, v := range csafEv.Vulnerabilities {
		cves = append(cves, v.CVE)
	}
	if csafEv.TLP != gateway.TLPClear || !slices.Equal(cves, []string{"CVE-2026-12345", "CVE-2026-12346"}) {
		t.Errorf("attached CSAF advisory: tlp %s cves %v", csafEv.TLP, cves)
	}
	if n := box.Count("Quarantine"); n != 1 {
		t.Errorf("quarantine holds %d messages, want the garbage one", n)
	}
	recs, _, err := h.g.Audit.Recent(context.Background(), 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var reason string
	for _, rec := range recs {
		if rec.Action == mail.ActionQuarantined {
			reason = rec.Error
		}
	}
	if !strings.Contains(reason, "unreadable") {
		t.Errorf("audit reason for the quarantined message = %q, want it to say why", reason)
	}

	// Restart: nothing is taken twice; what arrived meanwhile is taken.
	stop()
	box.Append("INBOX", mailAdvisory(7))
	h2, _ := startMailGateway(t, path)
	eventually(t, "the message that arrived during the restart", 20*time.Second, func() bool {
		return len(storedEvents(h2, "advisories-mailbox")) == 4
	})
	time.Sleep(1500 * time.Millisecond) // one more poll interval
	metrics := string(h2.do("GET", "/metrics", "", nil, 200, nil))
	if !strings.Contains(metrics, `schakel_ingested_total{source="advisories-mailbox",status="accepted"} 1`) ||
		strings.Contains(metrics, `source="advisories-mailbox",status="duplicate"`) {
		t.Errorf("after the restart the mailbox source should have ingested exactly one new event and no duplicate:\n%s",
			grepLines(metrics, "advisories-mailbox"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

const twoConstituents = `
- id: a
  name: Constituent A
  sectors: [energy]
  assets: {prefixes: ["192.0.2.0/24"], domains: ["a.example"]}
  contacts: [{email: soc@a.example, name: SOC A}, {email: ciso@a.example, name: CISO A, red: true}]
- id: b
  name: Constituent B
  sectors: [health]
  assets: {prefixes: ["198.51.100.0/24"]}
  contacts: [{email: soc@b.example, name: SOC B}]
`

func TestAcceptanceMailChannelPolicy(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	// Routing is checked on readable messages: no TLP requires encryption
	// here (TestAcceptanceMailEncryption covers the default).
	path := writeMailConfig(t, t.TempDir(), r, mailConf{relay: relay, lists: true, constituents: twoConstituents,
		encrypt: "{required_for: [], preferred_for: []}"})
	h, _ := startMailGateway(t, path)
	const (
		clear  = "c1ea0000-0000-4000-8000-000000000001"
		green  = "c1ea0000-0000-4000-8000-000000000002"
		notif  = "c1ea0000-0000-4000-8000-000000000003"
		red    = "c1ea0000-0000-4000-8000-000000000004"
		strict = "c1ea0000-0000-4000-8000-000000000005"
	)
	h.ingest(event(clear, "advisory", "CLEAR", nil), 202)
	h.ingest(event(green, "advisory", "GREEN", nil), 202)
	h.ingest(event(notif, "notification", "AMBER", map[string]any{"indicators": []any{
		map[string]any{"type": "ipv4", "value": "192.0.2.77"},
		map[string]any{"type": "ipv4", "value": "198.51.100.7"},
	}}), 202)
	if res := h.ingest(event(red, "incident", "RED", map[string]any{"addressees": []any{map[string]any{"email": "ciso@a.example"}}}), 202); res.Held {
		t.Fatal("RED event with a red: true named person was held")
	}
	h.ingest(event(strict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}), 202)

	relay.Wait(15, 20*time.Second)
	relay.Settle(300*time.Millisecond, 10*time.Second)

	tlpOf := map[string]string{clear: "CLEAR", green: "GREEN", notif: "AMBER", red: "RED", strict: "AMBER+STRICT"}
	want := map[string][]string{
		"public-warnings@lists.example": {clear},
		"members@lists.example":         {clear, green},
		"soc@b.example":                 {clear, green, notif},
		"soc@a.example":                 {clear, green, notif, strict},
		"ciso@a.example":                {clear, green, notif, red, strict},
	}
	total := 0
	for addr, ids := range want {
		msgs := relay.To(addr)
		total += len(msgs)
		var got []string
		for _, m := range msgs {
			subject := m.Subject()
			id := subject[strings.LastIndex(subject, " ")+1:]
			got = append(got, id)
			label := "TLP:" + tlpOf[id]
			if !strings.HasPrefix(subject, "["+label+"] test ") {
				t.Errorf("%s: subject %q does not start with [%s]", addr, subject, label)
			}
			for _, part := range []string{"text/plain", "text/html"} {
				body := m.Text(part)
				at, title := strings.Index(body, label), strings.Index(body, "test "+id)
				if part == "text/html" {
					title = strings.Index(body, "<h1>test "+id)
				}
				if at < 0 || title < 0 || at > title {
					t.Errorf("%s %s: the label %s is not before the labelled text", addr, part, label)
				}
			}
			if id == strict && !strings.Contains(m.Text("text/plain"), "recipient organisation only") {
				t.Errorf("%s: AMBER+STRICT message lacks the handling caveat", addr)
			}
			if id == notif {
				body := m.Text("text/plain")
				own, other := "192.0.2[.]77", "198.51.100[.]7"
				if strings.HasSuffix(addr, "b.example") {
					own, other = other, own
				}
				if !strings.Contains(body, own) || strings.Contains(body, other) {
					t.Errorf("%s: notification does not carry only the recipient's own indicator", addr)
				}
			}
		}
		slices.Sort(got)
		slices.Sort(ids)
		if !slices.Equal(got, ids) {
			t.Errorf("%s received %v, want %v", addr, got, ids)
		}
	}
	if n := len(relay.Messages()); n != total {
		t.Errorf("relay got %d messages, %d of them to unexpected addresses", n, n-total)
	}
	for _, m := range relay.Messages() {
		if strings.Contains(m.Subject(), "TLP:RED") && (len(m.To) != 1 || m.To[0] != "ciso@a.example") {
			t.Errorf("TLP:RED went to %v", m.To)
		}
	}
	if h := relay.To("public-warnings@lists.example"); len(h) == 1 {
		if got := h[0].Header().Get("List-Id"); got != "<public-warnings.lists.example>" {
			t.Errorf("public list List-Id %q", got)
		}
	}
}

const limitedConstituent = `
- id: d
  name: Constituent D
  assets: {prefixes: ["203.0.113.0/24"]}
  contacts: [{email: soc@d.example, name: SOC D}]
  limits: {email_per_hour: 5}
`

// passHour makes an hour go by for one recipient as the gateway sees it: its
// GCRA budget is reset and every deferred e-mail delivery is due now.
func passHour(t *testing.T, r *redistest.Redis, limitKey string) {
	t.Helper()
	ctx := context.Background()
	if err := r.Client.Del(ctx, "rate:"+r.Prefix+":limit:"+limitKey).Err(); err != nil {
		t.Fatal(err)
	}
	delayed := r.Prefix + ":outbox:{email}:delayed"
	members, err := r.Client.ZRange(ctx, delayed, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	now := float64(time.Now().UnixMilli())
	for _, m := range members {
		if err := r.Client.ZAddXX(ctx, delayed, redis.Z{Score: now, Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAcceptanceMailDigestUnderLimit(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	path := writeMailConfig(t, t.TempDir(), r, mailConf{relay: relay, constituents: limitedConstituent})
	h, _ := startMailGateway(t, path)
	const to = "soc@d.example"
	var ids []string
	for i := range 25 {
		id := fmt.Sprintf("d1ce0000-0000-4000-8000-%012d", i)
		ids = append(ids, id)
		h.ingest(event(id, "notification", "AMBER", map[string]any{"indicators": []any{
			map[string]any{"type": "ipv4", "value": fmt.Sprintf("203.0.113.%d", i+1)},
		}}), 202)
	}
	// Delivery states can lag (routing may record "queued" after the first
	// outcome), so the queue itself and the relay are what is checked.
	eventually(t, "5 single mails and 20 deferred deliveries", 20*time.Second, func() bool {
		st := emailQueue(t, h)
		return len(relay.To(to)) == 5 && st.Delayed == 20 && st.Ready+st.Pending == 0
	})
	probe, err := mail.NewSink(mail.SinkOptions{Relay: mail.Relay{Address: relay.Addr}, From: "probe@schakel.example", Redis: r.Client, Prefix: r.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	var held int
	eventually(t, "the deferred deliveries held for a digest", 5*time.Second, func() bool {
		held, err = probe.Holding(context.Background(), gateway.ConstituentRecipient("d"), to)
		return err != nil || held == 20 || held == 0
	})
	if held != 20 {
		t.Fatalf("%d deferred deliveries held for the digest, want 20", held)
	}

	passHour(t, r, "email:d:"+to)
	msgs := relay.Wait(6, 20*time.Second)
	relay.Settle(300*time.Millisecond, 5*time.Second)
	msgs = relay.To(to)
	if len(msgs) != 6 {
		t.Fatalf("%d mails to %s, want 5 single ones and one digest", len(msgs), to)
	}
	seen := map[string]int{}
	for _, m := range msgs[:5] {
		subject := m.Subject()
		seen[subject[strings.LastIndex(subject, " ")+1:]]++
	}
	digest := msgs[5]
	if got := digest.Subject(); got != "[TLP:AMBER] Digest: 20 warnings" {
		t.Errorf("digest subject %q", got)
	}
	text := digest.Text("text/plain")
	for _, id := range ids {
		if strings.Contains(text, "test "+id) {
			seen[id]++
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("warning %s was sent %d times, want exactly once", id, seen[id])
		}
	}

	// The deliveries the digest carried come back and are counted delivered,
	// without another mail.
	passHour(t, r, "email:d:"+to)
	eventually(t, "all 25 deliveries delivered", 20*time.Second, func() bool {
		st := emailQueue(t, h)
		return st.Delayed+st.Ready+st.Pending+st.Dead == 0 && metricValue(h, `schakel_deliveries_total{channel="email",outcome="delivered"}`) == "25"
	})
	relay.Settle(300*time.Millisecond, 3*time.Second)
	if n := len(relay.To(to)); n != 6 {
		t.Errorf("%d mails after the digested deliveries came back, want still 6", n)
	}
}

func TestAcceptanceMailRelayFailures(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	relay.Reject("soc@a.example", 451, 2)
	relay.Reject("soc@b.example", 550, -1)
	constituents := `
- {id: a, name: A, contacts: [{email: soc@a.example}]}
- {id: b, name: B, contacts: [{email: soc@b.example}]}
`
	path := writeMailConfig(t, t.TempDir(), r, mailConf{relay: relay, constituents: constituents})
	h, _ := startMailGateway(t, path)
	h.ingest(event("fa11ed00-0000-4000-8000-000000000001", "advisory", "GREEN", nil), 202)

	const id = "fa11ed00-0000-4000-8000-000000000001"
	eventually(t, "the greylisted mail delivered on a later attempt", 20*time.Second, func() bool {
		return len(relay.To("soc@a.example")) == 1 && slices.Contains(auditActions(h, id, "a"), "delivery.delivered")
	})
	if acts := auditActions(h, id, "a"); strings.Count(strings.Join(acts, ","), "delivery.retry") != 2 {
		t.Errorf("audit of the greylisted delivery %v, want two retries before delivered", acts)
	}
	eventually(t, "the refused mail dead-lettered", 20*time.Second, func() bool {
		return emailQueue(t, h).Dead == 1
	})
	var dead struct {
		DeadLetters []struct {
			Delivery gateway.Delivery
			Reason   string
			Attempts int
		} `json:"dead_letters"`
	}
	h.do("GET", "/api/v1/dead-letters?channel=email", testAdminKey, nil, 200, &dead)
	if len(dead.DeadLetters) != 1 || dead.DeadLetters[0].Delivery.Target != "soc@b.example" ||
		!strings.Contains(dead.DeadLetters[0].Reason, "550") || dead.DeadLetters[0].Attempts != 1 {
		t.Errorf("dead letters: %+v, want soc@b.example after one attempt with the 550 reason", dead.DeadLetters)
	}
	if n := len(relay.To("soc@b.example")); n != 0 {
		t.Errorf("refused recipient got %d mails", n)
	}
}

func TestAcceptanceMailSMTPIntake(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := writeMailConfig(t, t.TempDir(), r, mailConf{smtpListen: addr, constituents: "[]\n"})
	h, _ := startMailGateway(t, path)

	send := func(to string, msg []byte) error {
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.SendMail("cert@sector.example", []string{to}, bytes.NewReader(msg))
	}
	if err := send("intake@schakel.example", readFixture(t, "sector-warning-amber.eml")); err != nil {
		t.Fatalf("send: %v", err)
	}
	// 250 means stored: the event is there without waiting.
	if evs := storedEvents(h, "smtp-intake"); len(evs) != 1 {
		t.Errorf("%d events stored after 250, want 1", len(evs))
	}
	var se *smtp.SMTPError
	if err := send("someone@schakel.example", mailAdvisory(1)); !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("mail for an unknown recipient: %v, want 550", err)
	}
	if err := send("intake@schakel.example", []byte("\x00\x01")); !errors.As(err, &se) || se.Code != 554 {
		t.Errorf("garbage: %v, want 554", err)
	}
}
