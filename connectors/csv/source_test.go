package csv_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/schakel/schakel/connectors/csv"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
	csvmap "github.com/schakel/schakel/mappings/csv"
)

// Constituents owning some of the fixtures' addresses: isp-a by prefix,
// host-b by ASN (20001) and by a private prefix.
var constituents = []gateway.Constituent{
	{ID: "isp-a", Name: "ISP A", Assets: gateway.Assets{Prefixes: []string{"12.0.0.0/8", "88.84.0.0/16"}}},
	{ID: "host-b", Name: "Host B", Assets: gateway.Assets{ASNs: []int64{20001}, Prefixes: []string{"192.168.0.0/30"}}},
}

type env struct {
	t        *testing.T
	store    *store.Store
	audit    *audit.Log
	reg      *registry.Registry
	pipeline *pipeline.Pipeline
	metrics  *metrics.Metrics
}

func newEnv(t *testing.T) *env {
	t.Helper()
	r := redistest.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, constituents); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	au := audit.New(r.Client, r.Prefix)
	m := metrics.New(prometheus.NewRegistry())
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})
	p := pipeline.New(st, ob, au, reg, pipeline.Config{DefaultTLP: gateway.TLPAmber}, m, log)
	return &env{t: t, store: st, audit: au, reg: reg, pipeline: p, metrics: m}
}

func (e *env) owners() policy.Owners { return e.reg.Current() }

func (e *env) source(o csv.Options) *csv.Source {
	e.t.Helper()
	o.Name = "shadowserver"
	o.Metrics = e.metrics
	if o.Profile.Columns == nil {
		o.Profile = csvmap.Shadowserver
	}
	if o.MinAge == 0 {
		o.MinAge = time.Nanosecond
	}
	s, err := csv.NewSource(o, e.pipeline, e.store, e.audit, e.owners)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) poll(s *csv.Source) csv.Stats {
	e.t.Helper()
	st, err := s.Poll(context.Background())
	if err != nil {
		e.t.Fatalf("poll: %v", err)
	}
	return st
}

func (e *env) records(action string) []audit.Record {
	e.t.Helper()
	recs, _, err := e.audit.Recent(context.Background(), 1000, "")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

func (e *env) rejected(reason string) float64 {
	return testutil.ToFloat64(e.metrics.Rejected.WithLabelValues("shadowserver", reason))
}

// eventByRef returns the stored event whose source ref starts with ref.
func (e *env) eventByRef(ref string) *gateway.Event {
	e.t.Helper()
	ctx := context.Background()
	var found *gateway.Event
	_ = e.store.EachEventID(ctx, func(id string) error {
		ev, err := e.store.Event(ctx, id)
		if err == nil && strings.HasPrefix(ev.Source.Ref, ref) {
			found = ev
		}
		return nil
	})
	return found
}

func drop(t *testing.T, dir, name string, data []byte, age time.Duration) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if age > 0 {
		old := time.Now().Add(-age)
		if err := os.Chtimes(tmp, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDropFolderEachReportOnce(t *testing.T) {
	cases := []struct {
		file    string
		rows    int
		owned   map[string][]string
		unowned int
	}{
		{"2022-01-10-device_id-nl.csv", 3, map[string][]string{"isp-a": {"88.84.0.0"}}, 2},
		{"2021-05-14-scan_exchange-nl.csv", 7, map[string][]string{"isp-a": {"12.237.1.2", "12.33.7.8"}, "host-b": {"98.153.3.4"}}, 4},
		{"2010-02-10-scan_http_vulnerable-nl.csv", 3, map[string][]string{"host-b": {"192.168.0.1", "192.168.0.2", "192.168.0.3"}}, 0},
	}
	e := newEnv(t)
	dir := t.TempDir()
	for _, tc := range cases {
		drop(t, dir, tc.file, fixture(t, tc.file), 0)
	}
	s := e.source(csv.Options{Path: dir})
	st := e.poll(s)
	if st.Files != 3 || st.Ingested != 3 || st.Failed != 0 || st.Rows != 13 || st.Unowned != 6 {
		t.Fatalf("poll: %+v", st)
	}
	unowned := map[string]audit.Record{}
	for _, r := range e.records(csv.ActionUnowned) {
		unowned[r.Details["file"]] = r
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, csv.ProcessedDir, tc.file)); err != nil {
				t.Errorf("not moved to processed/: %v", err)
			}
			ev := e.eventByRef(tc.file)
			if ev == nil {
				t.Fatal("no event")
			}
			// The stored event keeps every row, owned or not.
			if ev.Kind != gateway.KindNotification || len(ev.Indicators) != tc.rows || ev.TLP != gateway.TLPAmber {
				t.Fatalf("event kind %s tlp %s with %d indicators, want %d", ev.Kind, ev.TLP, len(ev.Indicators), tc.rows)
			}
			a := policy.Assess(ev, e.reg.Current())
			for _, c := range constituents {
				var got []string
				for _, ind := range a.Project(&c).Indicators {
					got = append(got, ind.Value)
				}
				slices.Sort(got)
				want := slices.Clone(tc.owned[c.ID])
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s sees %v, want %v", c.ID, got, want)
				}
			}
			rec, ok := unowned[tc.file]
			switch {
			case tc.unowned == 0 && ok:
				t.Errorf("unowned record for a fully owned report: %+v", rec)
			case tc.unowned > 0 && (!ok || rec.Details["unowned"] != fmt.Sprint(tc.unowned) || rec.EventID != ev.ID):
				t.Errorf("unowned audit record %+v, want %d for event %s", rec, tc.unowned, ev.ID)
			}
		})
	}
	// Nothing left: the next scan reads nothing.
	if st := e.poll(s); st.Files != 0 {
		t.Errorf("second poll read %d files", st.Files)
	}
	// The same report dropped again is recognised and moved aside.
	drop(t, dir, cases[0].file, fixture(t, cases[0].file), 0)
	if st := e.poll(s); st.Duplicate != 1 || st.Ingested != 0 {
		t.Errorf("re-dropped report: %+v", st)
	}
	processed, _ := os.ReadDir(filepath.Join(dir, csv.ProcessedDir))
	if len(processed) != 4 {
		t.Errorf("processed/ has %d files, want 4 (the re-dropped one under a new name)", len(processed))
	}
}

func TestDropFolderWaitsForCompleteFiles(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	data := fixture(t, "2022-01-10-device_id-nl.csv")
	for _, name := range []string{".hidden.csv", "upload.csv.part", "upload.csv.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "2022-01-10-device_id-nl.csv"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := e.source(csv.Options{Path: dir, MinAge: time.Hour})
	if st := e.poll(s); st.Files != 0 || st.Waiting != 1 {
		t.Fatalf("young and temporary files read: %+v", st)
	}
	s = e.source(csv.Options{Path: dir})
	if st := e.poll(s); st.Files != 1 || st.Ingested != 1 {
		t.Fatalf("complete file: %+v", st)
	}
	for _, name := range []string{".hidden.csv", "upload.csv.part", "upload.csv.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s touched: %v", name, err)
		}
	}
}

func TestDropFolderFailedFiles(t *testing.T) {
	cases := []struct {
		name, body, reason string
	}{
		{"no-header.csv", "", csv.ReasonUnreadable},
		{"no-ip-column.csv", "timestamp,host\n2024-01-01 00:00:00,x\n", csv.ReasonUnreadable},
		{"2024-01-01-big-nl.csv", "ip\n" + strings.Repeat("192.0.2.1\n", 200), csv.ReasonTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			drop(t, dir, tc.name, []byte(tc.body), 0)
			st := e.poll(e.source(csv.Options{Path: dir, MaxFile: 1000}))
			if st.Failed != 1 {
				t.Fatalf("%+v", st)
			}
			reason, err := os.ReadFile(filepath.Join(dir, csv.FailedDir, tc.name+".reason"))
			if err != nil || len(reason) == 0 {
				t.Fatalf("no reason file: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, csv.FailedDir, tc.name)); err != nil {
				t.Errorf("report not in failed/: %v", err)
			}
			if e.rejected(tc.reason) != 1 {
				t.Errorf("rejected{reason=%s} = %v", tc.reason, e.rejected(tc.reason))
			}
			recs := e.records(csv.ActionRejected)
			if len(recs) != 1 || recs[0].Details["file"] != tc.name || recs[0].Details["reason"] != tc.reason {
				t.Errorf("audit %+v", recs)
			}
		})
	}
}

func TestBadRowsReportedRestKept(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	body := "\"timestamp\",\"ip\",\"port\"\n" +
		"\"2024-01-01 00:00:00\",\"12.0.0.1\",443\n" +
		"\"2024-01-01 00:00:00\",\"not-an-ip\",443\n" +
		"\"2024-01-01 00:00:00\",\"12.0.0.2\"\n" +
		"\"2024-01-01 00:00:01\",\"12.0.0.3\",80\n"
	drop(t, dir, "2024-01-01-scan_test-nl.csv", []byte(body), 0)
	st := e.poll(e.source(csv.Options{Path: dir}))
	if st.Ingested != 1 || st.Rows != 2 {
		t.Fatalf("%+v", st)
	}
	if e.rejected(csv.ReasonRow) != 2 {
		t.Errorf("rejected{reason=row} = %v, want 2", e.rejected(csv.ReasonRow))
	}
	recs := e.records(csv.ActionRejected)
	if len(recs) != 1 || recs[0].Details["count"] != "2" || !strings.Contains(recs[0].Error, "line 3") {
		t.Errorf("audit %+v", recs)
	}
}

func TestCustomColumns(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	p, err := csv.ProfileFor("abuse-feed", map[string]string{"ip": "source_address", "port": "dport", "timestamp": "seen"})
	if err != nil {
		t.Fatal(err)
	}
	drop(t, dir, "abuse.csv", []byte("seen,source_address,dport,note\n2024-02-01 10:00:00,12.1.2.3,25,spam\n2024-02-01 10:00:00,203.0.113.9,25,spam\n"), 0)
	st := e.poll(e.source(csv.Options{Path: dir, Profile: p}))
	if st.Ingested != 1 || st.Rows != 2 || st.Unowned != 1 {
		t.Fatalf("%+v", st)
	}
	ev := e.eventByRef("abuse.csv")
	if ev == nil || ev.Indicators[0].Port != 25 || ev.Indicators[0].Attributes["note"] != "spam" || !slices.Contains(ev.Labels, "abuse-feed") {
		t.Fatalf("event %+v", ev)
	}
}

func TestProfileFor(t *testing.T) {
	cases := []struct {
		profile string
		columns map[string]string
		wantIP  string
		err     string
	}{
		{"", nil, "ip|src_ip", ""},
		{"shadowserver", map[string]string{"ip": "addr"}, "addr", ""},
		{"other", map[string]string{"ip": "a"}, "a", ""},
		{"other", nil, "", "profile"},
		{"other", map[string]string{"port": "p"}, "", "columns.ip"},
		{"", map[string]string{"address": "a"}, "", "columns.address"},
		{"", map[string]string{"ip": " "}, "", "columns.ip"},
	}
	for _, tc := range cases {
		p, err := csv.ProfileFor(tc.profile, tc.columns)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("ProfileFor(%q, %v) = %v, want error naming %s", tc.profile, tc.columns, err, tc.err)
			}
			continue
		}
		if err != nil || p.Columns["ip"] != tc.wantIP {
			t.Errorf("ProfileFor(%q, %v) = %v, %v", tc.profile, tc.columns, p.Columns, err)
		}
	}
	// The built-in profile is not changed by an override.
	if csvmap.Shadowserver.Columns["ip"] != "ip|src_ip" {
		t.Error("ProfileFor modified csvmap.Shadowserver")
	}
}

// feedServer serves one report with an ETag and Last-Modified and honours
// conditional requests unless ignore is set.
type feedServer struct {
	mu          sync.Mutex
	body        []byte
	status      int
	ignore      bool
	conditional int
	srv         *httptest.Server
}

func newFeedServer(t *testing.T, body []byte) *feedServer {
	f := &feedServer{body: body, status: 200}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		etag := fmt.Sprintf(`"%x"`, len(f.body))
		if r.Header.Get("If-None-Match") != "" {
			f.conditional++
			if !f.ignore && r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		if f.status != 200 {
			http.Error(w, "down", f.status)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Tue, 11 Jan 2022 06:00:00 GMT")
		w.Header().Set("Content-Disposition", `attachment; filename="2022-01-10-device_id-nl.csv"`)
		_, _ = w.Write(f.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *feedServer) set(fn func(f *feedServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func TestURLConditionalPolling(t *testing.T) {
	e := newEnv(t)
	f := newFeedServer(t, fixture(t, "2022-01-10-device_id-nl.csv"))
	s := e.source(csv.Options{URL: f.srv.URL + "/reports/latest"})
	if st := e.poll(s); st.Ingested != 1 || st.Rows != 3 || st.Unowned != 2 {
		t.Fatalf("first poll: %+v", st)
	}
	ev := e.eventByRef("2022-01-10-device_id-nl.csv#sha256:")
	if ev == nil || !strings.HasPrefix(ev.Title, "device_id") {
		t.Fatalf("event %+v", ev)
	}
	if st := e.poll(s); st.Unchanged != 1 || st.Files != 0 || f.conditional != 1 {
		t.Fatalf("second poll: %+v (conditional requests %d)", st, f.conditional)
	}
	// A server that ignores If-None-Match: the content hash still says unchanged.
	f.set(func(f *feedServer) { f.ignore = true })
	if st := e.poll(s); st.Unchanged != 1 || st.Files != 0 {
		t.Fatalf("ignored conditional: %+v", st)
	}
	// New content is a new report.
	f.set(func(f *feedServer) { f.body = fixture(t, "2021-05-14-scan_exchange-nl.csv") })
	if st := e.poll(s); st.Ingested != 1 || st.Rows != 7 {
		t.Fatalf("new report: %+v", st)
	}
	// Failures are reported and retried.
	f.set(func(f *feedServer) { f.status = 503; f.body = []byte("x") })
	if st := e.poll(s); st.Files != 0 || e.rejected(csv.ReasonFetch) != 1 {
		t.Fatalf("503: %+v fetch=%v", st, e.rejected(csv.ReasonFetch))
	}
}

func TestNewSourceRejectsBadOptions(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		o    csv.Options
		want string
	}{
		{csv.Options{Path: "/x", Profile: csvmap.Shadowserver}, "name"},
		{csv.Options{Name: "s", Profile: csvmap.Shadowserver}, "path, url"},
		{csv.Options{Name: "s", Path: "/x", URL: "https://x", Profile: csvmap.Shadowserver}, "path, url"},
		{csv.Options{Name: "s", URL: "ftp://x/y", Profile: csvmap.Shadowserver}, "url"},
		{csv.Options{Name: "s", Path: "/x"}, "columns.ip"},
	}
	for _, tc := range cases {
		if _, err := csv.NewSource(tc.o, e.pipeline, e.store, e.audit, e.owners); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("NewSource(%+v) = %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
}
