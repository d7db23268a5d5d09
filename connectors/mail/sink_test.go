package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/store"
)

const testFrom = "warnings@schakel.test"

func testEvent(id string, tlp gateway.TLP, title string) *gateway.Event {
	t := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	return &gateway.Event{
		ID: id, Kind: gateway.KindAdvisory, Title: title, TLP: tlp,
		Source:  gateway.SourceRef{Name: "test"},
		Created: t, Modified: t, Priority: gateway.PriorityNormal,
		Indicators:      []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}},
		Vulnerabilities: []gateway.Vulnerability{{CVE: "CVE-2026-12345"}},
	}
}

func delivery(ev *gateway.Event, recipient, target string) gateway.Delivery {
	r := gateway.ParseRecipient(recipient)
	return gateway.Delivery{
		ID:      gateway.DeliveryID(ev.ID, ev.Version(), r, gateway.ChannelEmail, target),
		EventID: ev.ID, Version: ev.Version(), Recipient: r, Channel: gateway.ChannelEmail,
		Target: target, TLP: ev.TLP, Created: time.Now().UTC(),
	}
}

func newTestSink(t *testing.T, relay *mailtest.Relay, o SinkOptions) *Sink {
	t.Helper()
	o.Relay.Address = relay.Addr
	if o.Relay.TLS == "" {
		o.Relay.TLS = TLSNone
	}
	o.Relay.TLSConfig = relay.ClientTLS
	o.Relay.Timeout = 5 * time.Second
	if o.From == "" {
		o.From = testFrom
	}
	s, err := NewSink(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSinkSendsOverEachTLSMode(t *testing.T) {
	cases := []struct {
		name      string
		relayTLS  string
		mode      TLSMode
		user      string
		wantLogin int
	}{
		{"plain without auth", "", TLSNone, "", 0},
		{"plain with auth on loopback", "", TLSNone, "schakel", 1},
		{"starttls with auth", "starttls", TLSStartTLS, "schakel", 1},
		{"implicit tls with auth", "tls", TLSImplicit, "schakel", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			relay := mailtest.NewRelay(t, mailtest.RelayOptions{TLS: tc.relayTLS, Username: tc.user, Password: "pw"})
			s := newTestSink(t, relay, SinkOptions{Relay: Relay{TLS: tc.mode, Username: tc.user, Password: "pw"}})
			ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11", gateway.TLPAmber, "Kwetsbaarheid in Example VPN")
			d := delivery(ev, "a", "soc@a.example")
			for range 3 {
				if err := s.Deliver(context.Background(), d, nil, ev, ""); err != nil {
					t.Fatalf("deliver: %v", err)
				}
			}
			msgs := relay.Messages()
			if len(msgs) != 3 {
				t.Fatalf("relay got %d messages, want 3", len(msgs))
			}
			m := msgs[0]
			if m.From != testFrom || len(m.To) != 1 || m.To[0] != "soc@a.example" {
				t.Errorf("envelope from %q to %v", m.From, m.To)
			}
			if got := m.Subject(); got != "[TLP:AMBER] Kwetsbaarheid in Example VPN" {
				t.Errorf("subject %q", got)
			}
			if got, want := m.Header().Get("Message-Id"), "<"+d.ID+"@schakel.test>"; got != want {
				t.Errorf("Message-ID %q, want %q (stable per delivery)", got, want)
			}
			if relay.Connections() != 1 || relay.Logins() != tc.wantLogin {
				t.Errorf("connections %d logins %d, want 1 and %d: the session is reused", relay.Connections(), relay.Logins(), tc.wantLogin)
			}
		})
	}
}

func TestSinkPipelinesWhenOffered(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	s := newTestSink(t, relay, SinkOptions{})
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a12", gateway.TLPGreen, "x")
	for i := range 4 {
		if err := s.Deliver(context.Background(), delivery(ev, "a", fmt.Sprintf("c%d@a.example", i)), nil, ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := relay.Pipelined(); n != 4 {
		t.Errorf("MAIL, RCPT and DATA arrived together %d times, want 4 (go-smtp offers PIPELINING)", n)
	}
}

func TestSinkMapsRelayReplies(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{Username: "schakel", Password: "pw"})
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a13", gateway.TLPAmber, "x")
	relay.Reject("greylist@a.example", 451, -1)
	relay.Reject("gone@a.example", 550, -1)
	good := newTestSink(t, relay, SinkOptions{Relay: Relay{Username: "schakel", Password: "pw"}})
	badLogin := newTestSink(t, relay, SinkOptions{Relay: Relay{Username: "schakel", Password: "wrong"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	down, err := NewSink(SinkOptions{Relay: Relay{Address: closed, TLS: TLSNone, Timeout: time.Second}, From: testFrom})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		sink      *Sink
		to        string
		permanent bool
	}{
		{"4xx is retried", good, "greylist@a.example", false},
		{"5xx is a dead letter", good, "gone@a.example", true},
		{"refused login is retried, not the message's fault", badLogin, "soc@a.example", false},
		{"relay down is retried", down, "soc@a.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sink.Deliver(context.Background(), delivery(ev, "a", tc.to), nil, ev, "")
			if err == nil {
				t.Fatal("delivered, want an error")
			}
			var de *gateway.DeliveryError
			permanent := errors.As(err, &de) && de.Permanent
			if permanent != tc.permanent {
				t.Errorf("permanent = %v, want %v (%v)", permanent, tc.permanent, err)
			}
		})
	}
	// The session survives rejected recipients: the next message goes out over it.
	before := relay.Connections()
	if err := good.Deliver(context.Background(), delivery(ev, "a", "soc@a.example"), nil, ev, ""); err != nil {
		t.Fatal(err)
	}
	if relay.Connections() != before {
		t.Errorf("a rejected recipient cost the session: %d connections, want %d", relay.Connections(), before)
	}
}

func TestSinkReconnectsWhenTheRelayDropsAnIdleSession(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	s := newTestSink(t, relay, SinkOptions{})
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a14", gateway.TLPClear, "x")
	if err := s.Deliver(context.Background(), delivery(ev, "a", "one@a.example"), nil, ev, ""); err != nil {
		t.Fatal(err)
	}
	relay.DropConnections()
	if err := s.Deliver(context.Background(), delivery(ev, "a", "two@a.example"), nil, ev, ""); err != nil {
		t.Fatalf("second delivery after the relay dropped the session: %v", err)
	}
	if len(relay.To("two@a.example")) != 1 || relay.Connections() != 2 {
		t.Errorf("got %d messages over %d connections, want 1 over a second connection", len(relay.To("two@a.example")), relay.Connections())
	}
}

func TestSinkHeaders(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	r := redistest.New(t)
	st := store.New(r.Client, r.Prefix)
	s := newTestSink(t, relay, SinkOptions{Versions: st, PublicURL: "https://schakel.test"})
	ctx := context.Background()

	v1 := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a15", gateway.TLPAmberStrict, "Eerste versie")
	v2 := v1.Clone()
	v2.Title, v2.Modified = "Tweede versie", v1.Modified.Add(time.Hour)
	for _, ev := range []*gateway.Event{v1, v2} {
		if _, err := st.PutEvent(ctx, ev, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	d1, d2 := delivery(v1, "a", "soc@a.example"), delivery(v2, "a", "soc@a.example")
	if err := s.Deliver(ctx, d1, nil, v1, "recipient organisation only"); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, d2, nil, v2, "recipient organisation only"); err != nil {
		t.Fatal(err)
	}
	list := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a16", gateway.TLPClear, "Publiek")
	if err := s.Deliver(ctx, delivery(list, "list:public@lists.test", "public@lists.test"), nil, list, ""); err != nil {
		t.Fatal(err)
	}
	crit := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a17", gateway.TLPGreen, "Actief misbruik")
	crit.Priority = gateway.PriorityCritical
	if err := s.Deliver(ctx, delivery(crit, "a", "soc@a.example"), nil, crit, ""); err != nil {
		t.Fatal(err)
	}

	msgs := relay.Messages()
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}
	first, update, public, urgent := msgs[0], msgs[1], msgs[2], msgs[3]
	if h := first.Header(); h.Get("In-Reply-To") != "" || h.Get("List-Id") != "" {
		t.Errorf("first version: In-Reply-To %q List-Id %q, want neither", h.Get("In-Reply-To"), h.Get("List-Id"))
	}
	if got, want := update.Header().Get("In-Reply-To"), first.Header().Get("Message-Id"); got != want {
		t.Errorf("update In-Reply-To %q, want the first message's id %q", got, want)
	}
	text := first.Text("text/plain")
	label := strings.Index(text, "TLP:AMBER+STRICT")
	if label < 0 || !strings.Contains(text, "recipient organisation only") || label > strings.Index(text, "Eerste versie") {
		t.Errorf("AMBER+STRICT body lacks the label before the text or the caveat:\n%s", text)
	}
	if h := public.Header(); h.Get("List-Id") != "<public.lists.test>" || !strings.Contains(h.Get("List-Unsubscribe"), "mailto:"+testFrom) {
		t.Errorf("list headers: List-Id %q List-Unsubscribe %q", h.Get("List-Id"), h.Get("List-Unsubscribe"))
	}
	if got := urgent.Subject(); !strings.HasPrefix(got, "[URGENT] [TLP:GREEN] ") {
		t.Errorf("critical subject %q, want [URGENT] [TLP:GREEN] …", got)
	}
}

func TestSinkRejectsBadTargets(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	s := newTestSink(t, relay, SinkOptions{})
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a18", gateway.TLPClear, "x")
	cases := []struct{ name, recipient, target string }{
		{"header injection", "a", "soc@a.example\r\nBcc: evil@x.example"},
		{"display name", "a", "SOC <soc@a.example>"},
		{"not an address", "a", "soc"},
		{"non-ASCII", "a", "sóc@a.example"},
		{"list target differs from list", "list:public@lists.test", "other@lists.test"},
		{"person target differs from person", "person:ciso@a.example", "soc@a.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Deliver(context.Background(), delivery(ev, tc.recipient, tc.target), nil, ev, "")
			var de *gateway.DeliveryError
			if !errors.As(err, &de) || !de.Permanent || !strings.Contains(err.Error(), "target") {
				t.Errorf("err = %v, want a permanent error naming the target", err)
			}
		})
	}
	if n := len(relay.Messages()); n != 0 {
		t.Errorf("relay got %d messages, want none", n)
	}
}

func TestSinkDigest(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	r := redistest.New(t)
	s := newTestSink(t, relay, SinkOptions{Redis: r.Client, Prefix: r.Prefix})
	ctx := context.Background()
	const to = "soc@a.example"

	// Three warnings over the limit are held; one of them comes due.
	var ds []gateway.Delivery
	var evs []*gateway.Event
	for i, tlp := range []gateway.TLP{gateway.TLPGreen, gateway.TLPAmber, gateway.TLPAmberStrict} {
		ev := testEvent(fmt.Sprintf("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0b%02d", i), tlp, fmt.Sprintf("Waarschuwing %d", i))
		d := delivery(ev, "a", to)
		d.Created = time.Now().Add(time.Duration(i) * time.Second)
		handling := ""
		if tlp == gateway.TLPAmberStrict {
			handling = "recipient organisation only"
		}
		if err := s.Hold(ctx, d, nil, ev, handling); err != nil {
			t.Fatal(err)
		}
		ds, evs = append(ds, d), append(evs, ev)
	}
	// A warning never deferred goes out alone, whatever is held.
	fresh := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0b99", gateway.TLPClear, "Los bericht")
	if err := s.Deliver(ctx, delivery(fresh, "a", to), nil, fresh, ""); err != nil {
		t.Fatal(err)
	}
	// The due ones arrive together (several let through at once): one digest.
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i := range ds {
		wg.Go(func() { errs[i] = s.Deliver(ctx, ds[i], nil, evs[i], "") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("deliver %d: %v", i, err)
		}
	}
	msgs := relay.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the single one and one digest", len(msgs))
	}
	if got := msgs[0].Subject(); got != "[TLP:CLEAR] Los bericht" {
		t.Errorf("single subject %q", got)
	}
	dg := msgs[1]
	if got := dg.Subject(); got != "[TLP:AMBER+STRICT] Digest: 3 warnings" {
		t.Errorf("digest subject %q, want the strictest label and the count", got)
	}
	text := dg.Text("text/plain")
	for i, ev := range evs {
		at := strings.Index(text, ev.Title)
		label := strings.LastIndex(text[:max(at, 0)], "TLP:")
		if at < 0 || label < 0 || !strings.HasPrefix(text[label:], ev.TLP.Label()) {
			t.Errorf("warning %d (%s) missing or not under its own label in the digest", i, ev.TLP)
		}
	}
	for i, d := range ds {
		done, err := s.Digested(ctx, d)
		if err != nil || !done {
			t.Errorf("delivery %d: Digested = %v, %v; want true", i, done, err)
		}
		// When it comes back through the outbox, nothing more is sent.
		if err := s.Deliver(ctx, d, nil, evs[i], ""); err != nil {
			t.Fatal(err)
		}
		// And it is never held again.
		if err := s.Hold(ctx, d, nil, evs[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(relay.Messages()); n != 2 {
		t.Errorf("%d messages after the digested deliveries came back, want still 2", n)
	}
	if pending, _ := s.digests.pending(ctx, ds[0]); len(pending) != 0 {
		t.Errorf("%d deliveries still held after the digest, want 0", len(pending))
	}
}

func TestSinkDigestKeepsTheHoldWhenTheRelayFails(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	r := redistest.New(t)
	s := newTestSink(t, relay, SinkOptions{Redis: r.Client, Prefix: r.Prefix})
	ctx := context.Background()
	const to = "soc@a.example"
	a := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0c01", gateway.TLPAmber, "A")
	b := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0c02", gateway.TLPAmber, "B")
	da, db := delivery(a, "a", to), delivery(b, "a", to)
	for _, x := range []struct {
		d  gateway.Delivery
		ev *gateway.Event
	}{{da, a}, {db, b}} {
		if err := s.Hold(ctx, x.d, nil, x.ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	relay.Reject(to, 451, 1)
	if err := s.Deliver(ctx, da, nil, a, ""); err == nil {
		t.Fatal("delivered through a relay answering 451")
	}
	if done, _ := s.Digested(ctx, db); done {
		t.Fatal("a warning counted as sent although the digest failed")
	}
	if err := s.Deliver(ctx, db, nil, b, ""); err != nil {
		t.Fatal(err)
	}
	msgs := relay.To(to)
	if len(msgs) != 1 || msgs[0].Subject() != "[TLP:AMBER] Digest: 2 warnings" {
		t.Fatalf("got %d messages, want one digest of 2 after the retry", len(msgs))
	}
}

func TestNewSinkChecksConfig(t *testing.T) {
	cases := []struct {
		name string
		o    SinkOptions
		want string
	}{
		{"no relay", SinkOptions{From: testFrom}, "channels.email.relay"},
		{"bad tls", SinkOptions{Relay: Relay{Address: "127.0.0.1:25", TLS: "ssl"}, From: testFrom}, "channels.email.tls"},
		{"no from", SinkOptions{Relay: Relay{Address: "127.0.0.1:25"}}, "channels.email.from"},
		{"from with a name", SinkOptions{Relay: Relay{Address: "127.0.0.1:25"}, From: "Schakel <w@x.test>"}, "channels.email.from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSink(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
