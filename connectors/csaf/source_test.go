package csaf_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/schakel/schakel/connectors/csaf"
	"github.com/schakel/schakel/connectors/csaf/csaftest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

// env is a real pipeline (store, outbox, audit, registry) on the test's
// Redis: what the source ingests into in production, minus the channels.
type env struct {
	t        *testing.T
	store    *store.Store
	audit    *audit.Log
	pipeline *pipeline.Pipeline
	metrics  *metrics.Metrics
}

func newEnv(t *testing.T) *env {
	t.Helper()
	r := redistest.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	au := audit.New(r.Client, r.Prefix)
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})
	p := pipeline.New(st, ob, au, reg, pipeline.Config{DefaultTLP: gateway.TLPAmber}, m, log)
	return &env{t: t, store: st, audit: au, pipeline: p, metrics: m}
}

func (e *env) source(url string) *csaf.Source {
	e.t.Helper()
	s, err := csaf.NewSource(csaf.Options{Name: "test-csaf", URL: url, DefaultTLP: gateway.TLPAmber, Metrics: e.metrics}, e.pipeline, e.store, e.audit)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) poll(s *csaf.Source) csaf.Stats {
	e.t.Helper()
	st, err := s.Poll(context.Background())
	if err != nil {
		e.t.Fatalf("poll: %v", err)
	}
	return st
}

func (e *env) rejected(reason string) float64 {
	return testutil.ToFloat64(e.metrics.Rejected.WithLabelValues("test-csaf", reason))
}

// rejections returns the audit records of reported failures.
func (e *env) rejections() []audit.Record {
	e.t.Helper()
	recs, _, err := e.audit.Recent(context.Background(), 1000, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Action == csaf.ActionRejected {
			out = append(out, r)
		}
	}
	return out
}

// events returns every stored event, by source ref.
func (e *env) events() map[string]*gateway.Event {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]*gateway.Event{}
	err := e.store.EachEventID(ctx, func(id string) error {
		ev, err := e.store.Event(ctx, id)
		if err != nil {
			return err
		}
		out[ev.Source.Ref] = ev
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var fixtures = []string{"cisa_va-24-254-02.json", "cisa_va-24-262-01.json", "oasis-example_bsi-2022-0001.json", "ncsc-2026-0389.json"}

func TestPollIngestsEveryValidAdvisoryOnce(t *testing.T) {
	for _, layout := range []struct {
		name string
		l    csaftest.Layout
	}{{"changes.csv", csaftest.Directory}, {"rolie", csaftest.ROLIE}} {
		t.Run(layout.name, func(t *testing.T) {
			e := newEnv(t)
			p := csaftest.New(t, layout.l)
			for _, f := range fixtures {
				p.Publish(t, fixture(t, f), time.Time{})
			}
			s := e.source(p.URL)
			st := e.poll(s)
			if st.Listed != 4 || st.Ingested != 4 || st.Rejected != 0 || st.Failed != 0 {
				t.Fatalf("first poll: %+v", st)
			}
			evs := e.events()
			if len(evs) != 4 {
				t.Fatalf("stored %d events, want 4", len(evs))
			}
			for _, ref := range []string{"VA-24-254-02", "VA-24-262-01", "BSI-2022-0001", "NCSC-2026-0389"} {
				ev := evs[ref]
				if ev == nil {
					t.Fatalf("no event with ref %s (have %v)", ref, keys(evs))
				}
				if ev.Kind != gateway.KindAdvisory || ev.Source.Name != "test-csaf" || ev.Source.Format != "csaf" {
					t.Errorf("%s: kind %s source %+v", ref, ev.Kind, ev.Source)
				}
			}
			ncsc := evs["NCSC-2026-0389"]
			if ncsc.Priority != gateway.PriorityCritical || ncsc.TLP != gateway.TLPClear {
				t.Errorf("NCSC advisory: priority %s tlp %s, want critical CLEAR", ncsc.Priority, ncsc.TLP)
			}
			var cves []string
			for _, v := range ncsc.Vulnerabilities {
				cves = append(cves, v.CVE)
			}
			if !slices.Contains(cves, "CVE-2026-12345") || !slices.Contains(cves, "CVE-2026-12346") {
				t.Errorf("NCSC advisory CVEs %v", cves)
			}
			// The second poll downloads nothing and ingests nothing.
			before := p.Requests("/.well-known/csaf/white/2026/ncsc-2026-0389.json")
			st = e.poll(s)
			if st.Unchanged != 4 || st.Ingested+st.Updated+st.Duplicate+st.Rejected != 0 {
				t.Fatalf("second poll: %+v", st)
			}
			if after := p.Requests("/.well-known/csaf/white/2026/ncsc-2026-0389.json"); after != before {
				t.Errorf("unchanged advisory downloaded again (%d → %d requests)", before, after)
			}
			if n := len(e.rejections()); n != 0 {
				t.Errorf("%d failures reported for a clean provider: %+v", n, e.rejections())
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// revision rewrites the synthetic NCSC advisory as an earlier or later
// revision.
func revision(t *testing.T, version, date, kans string) []byte {
	t.Helper()
	doc := string(fixture(t, "ncsc-2026-0389.json"))
	doc = strings.Replace(doc, `"current_release_date": "2026-11-21T10:00:00.000000Z"`, `"current_release_date": "`+date+`"`, 1)
	doc = strings.Replace(doc, `"version": "1.0.1"`, `"version": "`+version+`"`, 1)
	doc = strings.Replace(doc, `"title": "Kans", "text": "high"`, `"title": "Kans", "text": "`+kans+`"`, 1)
	doc = strings.Replace(doc, `{"date": "2026-11-21T10:00:00.000000Z", "number": "1.0.1", "summary": "Inschaling bijgesteld van MEDIUM/HIGH naar HIGH/HIGH"}`,
		`{"date": "`+date+`", "number": "`+version+`", "summary": "revisie"}`, 1)
	return []byte(doc)
}

func TestNewerRevisionBecomesUpdate(t *testing.T) {
	e := newEnv(t)
	p := csaftest.New(t, csaftest.Directory)
	path := p.Publish(t, revision(t, "1.0.1", "2026-11-21T10:00:00.000000Z", "medium"), time.Time{})
	s := e.source(p.URL)
	if st := e.poll(s); st.Ingested != 1 {
		t.Fatalf("first revision: %+v", st)
	}
	ev := e.events()["NCSC-2026-0389"]
	if ev.Priority == gateway.PriorityCritical {
		t.Fatalf("medium/high revision is critical")
	}
	// NCSC overwrites the same path with the next revision.
	if got := p.Publish(t, revision(t, "1.0.2", "2026-11-22T08:30:00.123456Z", "high"), time.Time{}); got != path {
		t.Fatalf("revision published at %s, want %s", got, path)
	}
	st := e.poll(s)
	if st.Updated != 1 || st.Ingested != 0 {
		t.Fatalf("second revision: %+v", st)
	}
	evs := e.events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want one event with two versions", len(evs))
	}
	ev = evs["NCSC-2026-0389"]
	if ev.Priority != gateway.PriorityCritical || !ev.Modified.Equal(time.Date(2026, 11, 22, 8, 30, 0, 123456000, time.UTC)) {
		t.Errorf("latest version: priority %s modified %s", ev.Priority, ev.Modified)
	}
	versions, err := e.store.Versions(context.Background(), ev.ID)
	if err != nil || len(versions) != 2 {
		t.Errorf("versions %v, %v; want 2", versions, err)
	}
	// Republished with a new listing time but the same bytes: nothing new.
	p.Relist(path, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	if st := e.poll(s); st.Unchanged != 1 || st.Updated+st.Ingested != 0 {
		t.Errorf("relisted unchanged advisory: %+v", st)
	}
}

func otherKeySignature(t *testing.T, doc []byte) []byte {
	t.Helper()
	k, err := openpgp.NewEntity("Impostor", "", "x@evil.example", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, k, bytes.NewReader(doc), nil); err != nil {
		t.Fatal(err)
	}
	return sig.Bytes()
}

func TestTamperedAdvisoryRejectedAndReported(t *testing.T) {
	const dir = "/.well-known/csaf/white/"
	ncsc := "2026/ncsc-2026-0389.json"
	cases := []struct {
		name   string
		reason string
		tamper func(t *testing.T, p *csaftest.Provider)
	}{
		{"body changed after signing", csaf.ReasonHash, func(t *testing.T, p *csaftest.Provider) {
			doc := p.File(dir + ncsc)
			p.SetFile(dir+ncsc, bytes.Replace(doc, []byte("5.2.1"), []byte("5.9.9"), 1))
		}},
		{"wrong sha512 only", csaf.ReasonHash, func(t *testing.T, p *csaftest.Provider) {
			p.SetFile(dir+ncsc+".sha512", []byte(strings.Repeat("ab", 64)+"  ncsc-2026-0389.json\n"))
		}},
		{"no hash files", csaf.ReasonHash, func(t *testing.T, p *csaftest.Provider) {
			p.SetFile(dir+ncsc+".sha256", nil)
			p.SetFile(dir+ncsc+".sha512", nil)
		}},
		{"signed by another key", csaf.ReasonSignature, func(t *testing.T, p *csaftest.Provider) {
			p.SetFile(dir+ncsc+".asc", otherKeySignature(t, p.File(dir+ncsc)))
		}},
		{"no signature", csaf.ReasonSignature, func(t *testing.T, p *csaftest.Provider) {
			p.SetFile(dir+ncsc+".asc", nil)
		}},
		{"tracking id does not match the file name", csaf.ReasonFilename, func(t *testing.T, p *csaftest.Provider) {
			doc := p.File(dir + ncsc)
			p.Withdraw(dir + ncsc)
			p.PublishAt(t, dir+"2026/ncsc-2026-0390.json", doc, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
		}},
		{"schema violation, correctly signed", csaf.ReasonSchema, func(t *testing.T, p *csaftest.Provider) {
			doc := bytes.Replace(p.File(dir+ncsc), []byte(`"category": "csaf_security_advisory"`), []byte(`"category": ""`), 1)
			p.Publish(t, doc, time.Time{})
		}},
		{"duplicate key, correctly signed", csaf.ReasonJSON, func(t *testing.T, p *csaftest.Provider) {
			doc := bytes.Replace(p.File(dir+ncsc), []byte(`"lang": "nl",`), []byte(`"lang": "nl", "lang": "en",`), 1)
			p.Publish(t, doc, time.Time{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := csaftest.New(t, csaftest.Directory)
			p.Publish(t, fixture(t, "ncsc-2026-0389.json"), time.Time{})
			p.Publish(t, fixture(t, "cisa_va-24-262-01.json"), time.Time{})
			tc.tamper(t, p)
			s := e.source(p.URL)
			st := e.poll(s)
			if st.Rejected != 1 || st.Ingested != 1 {
				t.Fatalf("poll: %+v, want 1 rejected and the other advisory ingested", st)
			}
			if _, ok := e.events()["NCSC-2026-0389"]; ok {
				t.Fatal("the tampered advisory was ingested")
			}
			if got := e.rejected(tc.reason); got != 1 {
				t.Errorf("schakel_rejected_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			recs := e.rejections()
			if len(recs) != 1 || recs[0].Details["reason"] != tc.reason || !strings.Contains(recs[0].Details["url"], "ncsc-2026-03") || recs[0].Error == "" {
				t.Fatalf("audit: %+v", recs)
			}
			// Still broken on the next poll: checked again, not reported twice.
			if st := e.poll(s); st.Rejected != 1 {
				t.Errorf("second poll: %+v", st)
			}
			if got := e.rejected(tc.reason); got != 1 {
				t.Errorf("reported again: counter %v", got)
			}
		})
	}
}

func TestRepairedAdvisoryIsIngested(t *testing.T) {
	e := newEnv(t)
	p := csaftest.New(t, csaftest.Directory)
	path := p.Publish(t, fixture(t, "ncsc-2026-0389.json"), time.Time{})
	good := p.File(path + ".asc")
	p.SetFile(path+".asc", otherKeySignature(t, p.File(path)))
	s := e.source(p.URL)
	if st := e.poll(s); st.Rejected != 1 {
		t.Fatalf("%+v", st)
	}
	p.SetFile(path+".asc", good)
	if st := e.poll(s); st.Ingested != 1 {
		t.Fatalf("after the provider fixed its signature: %+v", st)
	}
}

func TestKeyWithWrongFingerprintIsNotTrusted(t *testing.T) {
	e := newEnv(t)
	p := csaftest.New(t, csaftest.Directory)
	p.Publish(t, fixture(t, "ncsc-2026-0389.json"), time.Time{})
	meta := strings.ReplaceAll(string(p.Metadata()), `"fingerprint": "`+p.Fingerprint, `"fingerprint": "`+strings.Repeat("AB", 20))
	p.SetFile("/.well-known/csaf/provider-metadata.json", []byte(meta))
	st := e.poll(e.source(p.URL))
	if st.Rejected != 1 || st.Ingested != 0 {
		t.Fatalf("%+v", st)
	}
	if e.rejected(csaf.ReasonKey) != 1 || e.rejected(csaf.ReasonSignature) != 1 {
		t.Errorf("key %v signature %v", e.rejected(csaf.ReasonKey), e.rejected(csaf.ReasonSignature))
	}
}

func TestDomainUsesWellKnownPath(t *testing.T) {
	e := newEnv(t)
	p := csaftest.New(t, csaftest.ROLIE)
	p.Publish(t, fixture(t, "oasis-example_bsi-2022-0001.json"), time.Time{})
	s := e.source(p.Base)
	if s.MetadataURL() != p.URL {
		t.Fatalf("metadata url %s, want %s", s.MetadataURL(), p.URL)
	}
	if st := e.poll(s); st.Ingested != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestBrokenProviderReported(t *testing.T) {
	cases := []struct {
		name, meta, reason string
	}{
		{"not json", "<html>", csaf.ReasonProvider},
		{"no distributions", `{"canonical_url":"x","distributions":[],"public_openpgp_keys":[]}`, csaf.ReasonProvider},
		{"directory without changes.csv", `{"distributions":[{"directory_url":"/nothing/"}]}`, csaf.ReasonListing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != csaf.WellKnownPath {
					http.NotFound(w, r)
					return
				}
				_, _ = io.WriteString(w, tc.meta)
			}))
			defer srv.Close()
			_, _ = e.source(srv.URL).Poll(context.Background())
			if e.rejected(tc.reason) != 1 || len(e.rejections()) != 1 {
				t.Errorf("reason %s counted %v, audit %+v", tc.reason, e.rejected(tc.reason), e.rejections())
			}
		})
	}
}

// TestPlainHTTPRefusedFromHTTPSProvider: an https provider whose
// distribution points at http:// is not followed there.
func TestPlainHTTPRefusedFromHTTPSProvider(t *testing.T) {
	e := newEnv(t)
	plain := csaftest.New(t, csaftest.Directory)
	plain.Publish(t, fixture(t, "ncsc-2026-0389.json"), time.Time{})
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.ReplaceAll(plain.Metadata(), []byte(`"canonical_url": "`+plain.URL), []byte(`"canonical_url": "https://x`)))
	}))
	defer tls.Close()
	s, err := csaf.NewSource(csaf.Options{Name: "test-csaf", URL: tls.URL + "/pmd.json", Client: tls.Client(), Metrics: e.metrics}, e.pipeline, e.store, e.audit)
	if err != nil {
		t.Fatal(err)
	}
	st := e.poll(s)
	if st.Ingested != 0 || e.rejected(csaf.ReasonListing) != 1 || e.rejected(csaf.ReasonKey) != 1 {
		t.Fatalf("%+v listing %v key %v", st, e.rejected(csaf.ReasonListing), e.rejected(csaf.ReasonKey))
	}
	if plain.Requests("/.well-known/csaf/white/changes.csv") != 0 {
		t.Error("changes.csv fetched over plain http")
	}
}

func TestNewSourceRejectsBadOptions(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, url, want string }{
		{"", "https://x.example", "name"},
		{"s", "ftp://x.example/pmd.json", "scheme"},
		{"s", "https:///pmd.json", "host"},
		{"s", "://", "url"},
	} {
		_, err := csaf.NewSource(csaf.Options{Name: tc.name, URL: tc.url}, e.pipeline, e.store, e.audit)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSource(%q, %q) = %v, want an error naming %s", tc.name, tc.url, err, tc.want)
		}
	}
}
