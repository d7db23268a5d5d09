package mail

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/store"
)

type imapRig struct {
	box   *mailtest.Mailbox
	rec   *recorder
	redis *redistest.Redis
	store *store.Store
	audit *audit.Log
}

func newIMAPRig(t *testing.T, o mailtest.MailboxOptions) *imapRig {
	r := redistest.New(t)
	return &imapRig{box: mailtest.NewMailbox(t, o), rec: &recorder{}, redis: r, store: store.New(r.Client, r.Prefix), audit: audit.New(r.Client, r.Prefix)}
}

// run starts a source on the rig and returns a function that stops it.
func (g *imapRig) run(t *testing.T, mode TLSMode, interval time.Duration) func() {
	t.Helper()
	s, err := NewIMAPSource(IMAPOptions{
		Name: "advisories-mailbox", Address: g.box.Addr, TLS: mode, TLSConfig: g.box.ClientTLS,
		Username: g.box.Username, Password: g.box.Password, Interval: interval,
		Pipeline: g.rec, Decode: decodeMail, Cursors: g.store, Audit: g.audit,
		Redis: g.redis.Client, Prefix: g.redis.Prefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.retryMin, s.retryMax = 20*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func advisory(n int) []byte {
	return fmt.Appendf(nil, "From: CERT <cert@sector.example>\r\nTo: intake@schakel.example\r\n"+
		"Subject: [TLP:GREEN] Waarschuwing %d\r\nDate: Fri, 20 Nov 2026 09:30:55 +0100\r\n"+
		"Message-ID: <w%d@sector.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"TLP:GREEN\r\n\r\nKwaadaardig adres 198.51.100.%d bij CVE-2026-1234%d.\r\n", n, n, n, n)
}

func TestIMAPTakesEachMessageOnceAcrossRestarts(t *testing.T) {
	// With IDLE the interval is long, so only IDLE can notice new mail in time.
	for _, tc := range []struct {
		name     string
		box      mailtest.MailboxOptions
		mode     TLSMode
		interval time.Duration
	}{
		{"plain with IDLE", mailtest.MailboxOptions{}, TLSNone, time.Minute},
		{"starttls, polling (no IDLE)", mailtest.MailboxOptions{TLS: "starttls", NoIdle: true}, TLSStartTLS, 200 * time.Millisecond},
		{"implicit tls with IDLE", mailtest.MailboxOptions{TLS: "tls"}, TLSImplicit, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newIMAPRig(t, tc.box)
			g.box.Append("INBOX", fixture(t, "sector-warning-amber.eml"))
			g.box.Append("INBOX", fixture(t, "csaf-attachment-clear.eml"))
			stop := g.run(t, tc.mode, tc.interval)
			waitFor(t, "both fixtures", func() bool { return len(g.rec.titles()) >= 2 })
			// New mail while running is noticed (IDLE or the poll).
			g.box.Append("INBOX", advisory(1))
			waitFor(t, "the new message", func() bool { return slices.Contains(g.rec.titles(), "Waarschuwing 1") })
			stop()

			// A restart does not take them again; only what arrived meanwhile.
			g.box.Append("INBOX", advisory(2))
			g.run(t, tc.mode, tc.interval)
			waitFor(t, "the message that arrived while stopped", func() bool { return slices.Contains(g.rec.titles(), "Waarschuwing 2") })
			time.Sleep(300 * time.Millisecond)
			g.rec.mu.Lock()
			calls := g.rec.calls
			g.rec.mu.Unlock()
			titles := g.rec.titles()
			if calls != len(titles) {
				t.Errorf("pipeline called %d times for %d events: a message was offered twice", calls, len(titles))
			}
			if g.box.Count("INBOX") != 4 || g.box.Count("Quarantine") != 0 {
				t.Errorf("INBOX %d Quarantine %d, want 4 and 0: messages stay where they are", g.box.Count("INBOX"), g.box.Count("Quarantine"))
			}
		})
	}
}

func TestIMAPQuarantinesWhatItCannotTake(t *testing.T) {
	g := newIMAPRig(t, mailtest.MailboxOptions{})
	g.box.Append("INBOX", []byte("this is not an e-mail message\x00\x01"))
	g.box.Append("INBOX", advisory(1))
	g.box.Append("INBOX", []byte("From: x@y.example\r\nSubject: \r\n\r\n"))
	g.run(t, TLSNone, time.Second)
	waitFor(t, "two messages in quarantine", func() bool { return g.box.Count("Quarantine") == 2 })
	if got := g.rec.titles(); !slices.Equal(got, []string{"Waarschuwing 1"}) {
		t.Errorf("ingested %v, want only the advisory", got)
	}
	if n := g.box.Count("INBOX"); n != 1 {
		t.Errorf("INBOX holds %d, want 1", n)
	}
	var recs []audit.Record
	waitFor(t, "audit records", func() bool {
		all, _, err := g.audit.Recent(context.Background(), 10, "")
		if err != nil {
			t.Fatal(err)
		}
		recs = recs[:0]
		for _, r := range all {
			if r.Action == ActionQuarantined {
				recs = append(recs, r)
			}
		}
		return len(recs) == 2
	})
	for _, r := range recs {
		if r.Outcome != "quarantined" || r.Error == "" || r.Details["source"] != "advisories-mailbox" || r.Details["uid"] == "" {
			t.Errorf("audit record %+v lacks the outcome, reason, source or uid", r)
		}
	}
	reasons := recs[0].Error + " | " + recs[1].Error
	if !strings.Contains(reasons, "unreadable") {
		t.Errorf("reasons %q do not say the garbage was unreadable", reasons)
	}
}

func TestIMAPSurvivesDisconnectsAndStoreOutages(t *testing.T) {
	g := newIMAPRig(t, mailtest.MailboxOptions{})
	g.rec.fail = 1 // the store does not answer the first time
	g.box.Append("INBOX", advisory(1))
	g.run(t, TLSNone, 5*time.Second)
	waitFor(t, "the first message after the store came back", func() bool { return len(g.rec.titles()) == 1 })

	g.box.Restart()
	g.box.Append("INBOX", advisory(2))
	waitFor(t, "the message after the server restarted", func() bool { return len(g.rec.titles()) == 2 })
	if got := g.rec.titles(); !slices.Equal(got, []string{"Waarschuwing 1", "Waarschuwing 2"}) {
		t.Errorf("ingested %v", got)
	}
}

func TestIMAPLeaseKeepsASecondReplicaOut(t *testing.T) {
	g := newIMAPRig(t, mailtest.MailboxOptions{})
	for i := range 5 {
		g.box.Append("INBOX", advisory(i))
	}
	g.run(t, TLSNone, 200*time.Millisecond)
	g.run(t, TLSNone, 200*time.Millisecond)
	waitFor(t, "all five", func() bool { return len(g.rec.titles()) == 5 })
	time.Sleep(300 * time.Millisecond)
	g.rec.mu.Lock()
	defer g.rec.mu.Unlock()
	if g.rec.calls != 5 {
		t.Errorf("pipeline called %d times for 5 messages, want 5: two replicas read the mailbox", g.rec.calls)
	}
}

func TestNewIMAPSourceChecksConfig(t *testing.T) {
	ok := IMAPOptions{Name: "box", Address: "imap.example:993", Username: "u", Pipeline: &recorder{}, Decode: decodeMail, Cursors: &store.Store{}}
	cases := []struct {
		name string
		edit func(*IMAPOptions)
		want string
	}{
		{"no address", func(o *IMAPOptions) { o.Address = "" }, "address"},
		{"address without port", func(o *IMAPOptions) { o.Address = "imap.example" }, "address"},
		{"no username", func(o *IMAPOptions) { o.Username = "" }, "username"},
		{"bad tls", func(o *IMAPOptions) { o.TLS = "ssl" }, "tls"},
		{"quarantine is the inbox", func(o *IMAPOptions) { o.Quarantine = "INBOX" }, "quarantine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			_, err := NewIMAPSource(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "box") {
				t.Errorf("err = %v, want one naming the source and %s", err, tc.want)
			}
		})
	}
	if _, err := NewIMAPSource(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
