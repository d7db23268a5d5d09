package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/csaf/csaftest"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/store"
)

// feeds is a gateway polling a local CSAF provider (csaftest, signing with
// its own OpenPGP key) and a Shadowserver drop folder, with four
// constituents behind signature-checking webhook receivers:
//
//	a  owns 12.0.0.0/8 and 88.84.0.0/16
//	b  owns AS20001 and 192.168.0.0/30
//	c  owns nothing
//	d  owns nothing and subscribes to critical events only
type feeds struct {
	*harness
	provider   *csaftest.Provider
	drop       string
	a, b, c, d *webhooktest.Receiver
}

type feedsOpts struct {
	limitA int // webhook_per_minute for a; 0 = default
}

func newFeeds(t *testing.T, o feedsOpts) *feeds {
	t.Helper()
	r := redistest.New(t)
	f := &feeds{provider: csaftest.New(t, csaftest.Directory)}
	f.a, f.b, f.c, f.d = webhooktest.New(t, ""), webhooktest.New(t, ""), webhooktest.New(t, ""), webhooktest.New(t, "")
	dir := t.TempDir()
	f.drop = filepath.Join(dir, "shadowserver")
	if err := os.Mkdir(f.drop, 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "admin.keys", testAdminKey+"\n")
	limitA := ""
	if o.limitA > 0 {
		limitA = fmt.Sprintf(", limits: {webhook_per_minute: %d}", o.limitA)
	}
	hook := func(r *webhooktest.Receiver) string {
		return fmt.Sprintf("webhooks: [{url: %q, secret: %q}]", r.URL, r.Secret)
	}
	writeFile(t, dir, "constituents.yaml", fmt.Sprintf(`
- {id: a, name: ISP A, assets: {prefixes: ["12.0.0.0/8", "88.84.0.0/16"]}, %s%s}
- {id: b, name: Hoster B, assets: {asns: [20001], prefixes: ["192.168.0.0/30"]}, %s}
- {id: c, name: Gemeente C, assets: {domains: [c.example]}, %s}
- {id: d, name: Ziekenhuis D, assets: {domains: [d.example]}, subscriptions: {min_priority: critical}, %s}
`, hook(f.a), limitA, hook(f.b), hook(f.c), hook(f.d)))
	path := writeFile(t, dir, "schakel.yaml", fmt.Sprintf(`
listen: 127.0.0.1:0
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
tlp: {default: AMBER}
sources:
  - {name: partner-api, type: api, default_tlp: AMBER}
  - {name: ncsc-csaf, type: csaf, url: %q, interval: 1s, default_tlp: CLEAR}
  - {name: shadowserver, type: csv, path: %q, profile: shadowserver, interval: 200ms, default_tlp: AMBER}
channels:
  webhook: {timeout: 2s, max_attempts: 4}
outbox: {reclaim_idle: 3s, base_backoff: 200ms, poll_interval: 100ms}
constituents_file: constituents.yaml
`, r.URL, r.Prefix, f.provider.URL, f.drop))
	f.harness = startFromConfig(t, path)
	return f
}

// events lists the stored events of one source through the admin API.
func (f *feeds) events(source string) []store.Summary {
	f.t.Helper()
	var out struct {
		Events []store.Summary `json:"events"`
	}
	f.do("GET", "/api/v1/events?limit=100&source="+source, testAdminKey, nil, 200, &out)
	return out.Events
}

func (f *feeds) waitEvents(source string, n int, routed func(store.Summary) bool) []store.Summary {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs := f.events(source)
		ok := 0
		for _, e := range evs {
			if routed == nil || routed(e) {
				ok++
			}
		}
		if ok >= n {
			return evs
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d events from %s after 15 s: %+v", ok, n, source, evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric reads one sample from /metrics; labels must all match.
func (f *feeds) metric(name string, labels ...string) float64 {
	f.t.Helper()
	resp, err := http.Get(f.base + "/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && strings.Contains(line, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
		}
		if match {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v
		}
	}
	return 0
}

func (f *feeds) audit(action string) []audit.Record {
	f.t.Helper()
	recs, _, err := f.g.Audit.Recent(context.Background(), 1000, "")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

func feedFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var csafFixtures = []string{"cisa_va-24-254-02.json", "cisa_va-24-262-01.json", "oasis-example_bsi-2022-0001.json", "ncsc-2026-0389.json"}

func refs(evs []webhooktest.Received) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Event.Source.Ref)
	}
	slices.Sort(out)
	return out
}

// TestAcceptanceCSAFProvider polls a provider built from the shared
// fixtures, plus a tampered and a TLP:RED advisory, end to end.
func TestAcceptanceCSAFProvider(t *testing.T) {
	t.Parallel()
	f := newFeeds(t, feedsOpts{})
	for _, name := range csafFixtures {
		f.provider.Publish(t, feedFixture(t, "connectors/csaf/testdata/"+name), time.Time{})
	}
	// A tampered advisory: a valid document whose signature is not the
	// provider's (signed over other bytes).
	tampered := bytes.ReplaceAll(feedFixture(t, "connectors/csaf/testdata/cisa_va-24-262-01.json"), []byte("VA-24-262-01"), []byte("VA-24-262-99"))
	path := f.provider.Publish(t, tampered, time.Time{})
	f.provider.SetFile(path+".asc", f.provider.File("/.well-known/csaf/white/2024/va-24-262-01.json.asc"))

	// A TLP:RED advisory with nobody named: stored and held, never pushed.
	red := bytes.ReplaceAll(feedFixture(t, "connectors/csaf/testdata/ncsc-2026-0389.json"), []byte("NCSC-2026-0389"), []byte("NCSC-2026-0390"))
	red = bytes.Replace(red, []byte(`"label": "WHITE"`), []byte(`"label": "RED"`), 1)
	f.provider.Publish(t, red, time.Time{})

	f.waitEvents("ncsc-csaf", 5, func(s store.Summary) bool { return s.Routed })
	for _, r := range []*webhooktest.Receiver{f.a, f.b, f.c} {
		if err := r.WaitFor(4, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.d.WaitFor(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // at least one more poll of the provider
	settle(f.a, f.b, f.c, f.d)

	// Every valid advisory ingested once: four events, each delivered once
	// to every constituent (TLP:CLEAR, community).
	evs := f.events("ncsc-csaf")
	if len(evs) != 5 {
		t.Fatalf("%d events stored, want 5: %+v", len(evs), evs)
	}
	reds := 0
	for _, e := range evs {
		if e.TLP == gateway.TLPRed {
			reds++
			if !e.Held {
				t.Errorf("TLP:RED advisory %s not held", e.ID)
			}
		}
	}
	if reds != 1 {
		t.Errorf("%d TLP:RED events, want the one RED advisory", reds)
	}
	want := []string{"BSI-2022-0001", "NCSC-2026-0389", "VA-24-254-02", "VA-24-262-01"}
	for name, r := range map[string]*webhooktest.Receiver{"a": f.a, "b": f.b, "c": f.c} {
		if got := refs(r.Received()); !slices.Equal(got, want) {
			t.Errorf("%s received %v, want each of %v once", name, got, want)
		}
	}
	// The priority path: the synthetic NCSC advisory is critical with its
	// CVEs, marked urgent on the webhook, and reaches d, which subscribes
	// to critical events only.
	got := f.d.Received()
	if len(got) != 1 || got[0].Event.Source.Ref != "NCSC-2026-0389" {
		t.Fatalf("d received %v, want only the critical NCSC advisory", refs(got))
	}
	ncsc := got[0]
	var cves []string
	for _, v := range ncsc.Event.Vulnerabilities {
		cves = append(cves, v.CVE)
	}
	if ncsc.Event.Priority != gateway.PriorityCritical || ncsc.Priority != "critical" || ncsc.Event.TLP != gateway.TLPClear ||
		!slices.Contains(cves, "CVE-2026-12345") || !slices.Contains(cves, "CVE-2026-12346") {
		t.Errorf("NCSC advisory: priority %s (payload %q) tlp %s cves %v", ncsc.Event.Priority, ncsc.Priority, ncsc.Event.TLP, cves)
	}

	// The tampered file is rejected and reported: metric, audit, not sent.
	if v := f.metric("schakel_rejected_total", "source", "ncsc-csaf", "reason", "signature"); v != 1 {
		t.Errorf("schakel_rejected_total{source=ncsc-csaf,reason=signature} = %v, want 1 (reported once though polled again)", v)
	}
	recs := f.audit("source.rejected")
	if len(recs) != 1 || !strings.HasSuffix(recs[0].Details["url"], "/va-24-262-99.json") || recs[0].Details["reason"] != "signature" {
		t.Errorf("audit of the rejection: %+v", recs)
	}

	// A newer revision becomes an update, delivered as a new version.
	rev := bytes.Replace(feedFixture(t, "connectors/csaf/testdata/ncsc-2026-0389.json"),
		[]byte(`"current_release_date": "2026-11-21T10:00:00.000000Z"`), []byte(`"current_release_date": "2026-11-22T08:00:00.000000Z"`), 1)
	rev = bytes.Replace(rev, []byte(`"version": "1.0.1"`), []byte(`"version": "1.0.2"`), 1)
	rev = bytes.Replace(rev, []byte(`{"date": "2026-11-21T10:00:00.000000Z", "number": "1.0.1", "summary": "Inschaling bijgesteld van MEDIUM/HIGH naar HIGH/HIGH"}`),
		[]byte(`{"date": "2026-11-21T10:00:00.000000Z", "number": "1.0.1", "summary": "Inschaling bijgesteld van MEDIUM/HIGH naar HIGH/HIGH"}, {"date": "2026-11-22T08:00:00.000000Z", "number": "1.0.2", "summary": "Update"}`), 1)
	f.provider.Publish(t, rev, time.Time{})
	if err := f.d.WaitFor(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := f.a.WaitFor(5, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	versions := byEvent(f.d, ncsc.Event.ID)
	if len(versions) != 2 || !versions[1].Event.Modified.Equal(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)) || versions[0].DeliveryID == versions[1].DeliveryID {
		t.Fatalf("update not delivered as a new version of the same event: %+v", versions)
	}
	if evs := f.events("ncsc-csaf"); len(evs) != 5 {
		t.Errorf("the revision made a new event: %d events", len(evs))
	}
}

// dropReport puts a report into the drop folder the way a downloader
// should: written under a hidden name, aged past MinAge, renamed.
func (f *feeds) dropReport(name string, data []byte) {
	f.t.Helper()
	tmp := filepath.Join(f.drop, "."+name)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(tmp, old, old); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.drop, name)); err != nil {
		f.t.Fatal(err)
	}
}

// TestAcceptanceShadowserverCSV: Shadowserver reports become notifications
// for the owning constituents, with each shared Shadowserver CSV.
func TestAcceptanceShadowserverCSV(t *testing.T) {
	t.Parallel()
	f := newFeeds(t, feedsOpts{})
	reports := []struct {
		file    string
		rows    int
		a, b    []string
		unowned int
	}{
		{"2022-01-10-device_id-nl.csv", 3, []string{"88.84.0.0"}, nil, 2},
		{"2021-05-14-scan_exchange-nl.csv", 7, []string{"12.237.1.2", "12.33.7.8"}, []string{"98.153.3.4"}, 4},
		{"2010-02-10-scan_http_vulnerable-nl.csv", 3, nil, []string{"192.168.0.1", "192.168.0.2", "192.168.0.3"}, 0},
	}
	for _, r := range reports {
		f.dropReport(r.file, feedFixture(t, "connectors/csv/testdata/"+r.file))
	}
	summaries := f.waitEvents("shadowserver", 3, func(s store.Summary) bool { return s.Routed })
	if err := f.a.WaitFor(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := f.b.WaitFor(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	settle(f.a, f.b, f.c, f.d)
	for _, r := range reports {
		t.Run(r.file, func(t *testing.T) {
			var id string
			for _, s := range summaries {
				if strings.HasPrefix(r.file[11:], strings.SplitN(s.Title, " ", 2)[0]) {
					id = s.ID
				}
			}
			if id == "" {
				t.Fatalf("no event for %s among %+v", r.file, summaries)
			}
			// Each constituent receives exactly its own rows.
			for name, tc := range map[string]struct {
				rcv  *webhooktest.Receiver
				want []string
			}{"a": {f.a, r.a}, "b": {f.b, r.b}, "c": {f.c, nil}, "d": {f.d, nil}} {
				got := byEvent(tc.rcv, id)
				if len(tc.want) == 0 {
					if len(got) != 0 {
						t.Errorf("%s received %v, owns none of it", name, values(got[0].Event))
					}
					continue
				}
				if len(got) != 1 {
					t.Errorf("%s received the report %d times, want once", name, len(got))
					continue
				}
				vals := values(got[0].Event)
				slices.Sort(vals)
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(vals, want) {
					t.Errorf("%s received rows %v, want %v", name, vals, want)
				}
			}
			// Rows owned by nobody are not sent but visible to admins: the
			// stored event keeps every row.
			var ev gateway.Event
			f.do("GET", "/api/v1/events/"+id, testAdminKey, nil, 200, &ev)
			if len(ev.Indicators) != r.rows || ev.Kind != gateway.KindNotification {
				t.Errorf("admin view: %s with %d rows, want %d", ev.Kind, len(ev.Indicators), r.rows)
			}
		})
	}
	// ...and counted: the metric and one audit record per report with unowned rows.
	if v := f.metric("schakel_notification_unowned_indicators_total"); v != 6 {
		t.Errorf("schakel_notification_unowned_indicators_total = %v, want 6", v)
	}
	counts := map[string]string{}
	for _, rec := range f.audit("notification.unowned") {
		counts[rec.Details["file"]] = rec.Details["unowned"]
	}
	if counts["2022-01-10-device_id-nl.csv"] != "2" || counts["2021-05-14-scan_exchange-nl.csv"] != "4" || len(counts) != 2 {
		t.Errorf("unowned audit records %v", counts)
	}
	processed, _ := os.ReadDir(filepath.Join(f.drop, "processed"))
	if len(processed) != 3 {
		t.Errorf("processed/ holds %d files, want 3", len(processed))
	}
	// Nothing at any TLP leaks to a constituent without concern: c and d got nothing.
	if n := len(f.c.Received()) + len(f.d.Received()); n != 0 {
		t.Errorf("constituents owning nothing received %d notifications", n)
	}
}

// TestAcceptanceCriticalBypassesExhaustedLimit: constituent a may receive one
// webhook a minute; with that used up and more warnings waiting, the critical
// NCSC advisory still reaches it at once.
func TestAcceptanceCriticalBypassesExhaustedLimit(t *testing.T) {
	t.Parallel()
	f := newFeeds(t, feedsOpts{limitA: 1})
	for i := range 4 {
		ev := event(fmt.Sprintf("cccccccc-0000-4000-8000-%012d", i), "advisory", "GREEN", nil)
		f.ingest(ev, 202)
	}
	if err := f.a.WaitFor(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	settle(f.a)
	if n := len(f.a.Unique()); n != 1 {
		t.Fatalf("a received %d normal warnings, want 1 (limit 1/min)", n)
	}
	published := time.Now()
	f.provider.Publish(t, feedFixture(t, "connectors/csaf/testdata/ncsc-2026-0389.json"), time.Time{})
	deadline := time.Now().Add(8 * time.Second)
	var crit []webhooktest.Received
	for time.Now().Before(deadline) {
		crit = nil
		for _, r := range f.a.Received() {
			if r.Event.Source.Ref == "NCSC-2026-0389" {
				crit = append(crit, r)
			}
		}
		if len(crit) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(crit) != 1 || crit[0].Priority != "critical" {
		t.Fatalf("critical advisory not delivered past the exhausted limit: %+v", crit)
	}
	// "At once": within a poll interval (1 s) plus delivery, while the
	// normal warnings still wait for the limiter (about a minute each).
	if took := crit[0].At.Sub(published); took > 4*time.Second {
		t.Errorf("critical advisory took %s", took)
	}
	if n := len(f.a.Unique()); n != 2 {
		t.Errorf("a has %d deliveries, want the first warning and the critical one (3 still deferred)", n)
	}
	if v := f.metric("schakel_critical_bypass_total", "channel", "webhook"); v < 1 {
		t.Errorf("schakel_critical_bypass_total{channel=webhook} = %v", v)
	}
	// Every other subscribed constituent got it too.
	for name, r := range map[string]*webhooktest.Receiver{"b": f.b, "c": f.c, "d": f.d} {
		if err := r.WaitFor(1, 5*time.Second); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestFeedsConfiguration: column maps are part of the configuration, and a
// feed source the connector cannot run stops start-up with an error naming
// the source.
func TestFeedsConfiguration(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	cases := []struct {
		name, source, parseErr, startErr string
	}{
		{"custom columns", `{name: abuse, type: csv, path: /tmp/x, profile: abuse-feed, columns: {ip: source_address, port: dport}}`, "", ""},
		{"unknown column field", `{name: abuse, type: csv, path: /tmp/x, columns: {address: a}}`, "sources[0].columns.address", ""},
		{"custom profile without columns", `{name: abuse, type: csv, path: /tmp/x, profile: abuse-feed}`, "", "sources[0] (abuse): profile"},
		{"csv with path and url", `{name: abuse, type: csv, path: /tmp/x, url: "https://feeds.example/x.csv"}`, "", "sources[0] (abuse): path, url"},
		{"csaf domain", `{name: ncsc, type: csaf, url: "https://advisories.ncsc.example"}`, "", ""},
		{"csaf without url", `{name: ncsc, type: csaf}`, "url", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := fmt.Sprintf("redis: {url: %q, prefix: %q}\nsources:\n  - %s\n", r.URL, r.Prefix, tc.source)
			cfg, err := config.Parse([]byte(yaml), t.TempDir())
			if tc.parseErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.parseErr) {
					t.Fatalf("parse: %v, want an error naming %s", err, tc.parseErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			g, err := start(ctx, cfg, slog.New(slog.DiscardHandler))
			if g != nil {
				defer g.Close()
			}
			switch {
			case tc.startErr == "" && err != nil:
				t.Fatalf("start: %v", err)
			case tc.startErr != "" && (err == nil || !strings.Contains(err.Error(), tc.startErr)):
				t.Fatalf("start: %v, want an error naming %s", err, tc.startErr)
			}
		})
	}
}
