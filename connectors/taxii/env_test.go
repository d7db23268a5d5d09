package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

// maxContent is below the HTTP body limit, so the inbox's own 413 answers.
const maxContent = 256 << 10

const adminKey = "AdminKey0123456789abcdefghijklmnopqrstuv"

// env is a gateway core on the test's Redis with the TAXII server mounted
// on the real HTTP API, listening on a real port.
type env struct {
	t    testing.TB
	r    *redistest.Redis
	st   *store.Store
	reg  *registry.Registry
	v    *views.Views
	pl   *pipeline.Pipeline
	srv  *Server
	base string
	keys map[string]string // "a", "b" (constituents), "src" (source partner), "other-src"
}

func testLog(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	r := redistest.New(tb)
	ctx := context.Background()
	st := store.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, []gateway.Constituent{
		{ID: "a", Name: "A", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/24"}, Domains: []string{"a.example"}}},
		{ID: "b", Name: "B", Sectors: []string{"health"}, Assets: gateway.Assets{Prefixes: []string{"198.51.100.0/24"}}},
	}); err != nil {
		tb.Fatal(err)
	}
	log := testLog(tb)
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		tb.Fatal(err)
	}
	v := views.New(r.Client, r.Prefix, st, reg)
	m := metrics.New(prometheus.NewRegistry())
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})
	pl := pipeline.New(st, ob, audit.New(r.Client, r.Prefix), reg, pipeline.Config{Views: v}, m, log)
	sources := map[string]gateway.Source{
		"partner":   {Name: "partner", DefaultTLP: gateway.TLPGreen, Format: "stix"},
		"other-src": {Name: "other-src", Format: "stix"},
	}
	api := httpapi.New(httpapi.Options{Redis: r.Client, Store: st, Pipeline: pl, Registry: reg, Metrics: m, Log: log,
		AdminKeys: []string{adminKey}, BodyLimit: 1 << 20})
	srv := NewServer(Options{Views: v, Events: st, Ingest: pl, Redis: r.Client, Prefix: r.Prefix, Log: log,
		MaxContentLength: maxContent, Sources: sources})
	api.Mount(srv.MountFunc())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = api.Serve(ln) }()
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(sctx)
	})
	e := &env{t: tb, r: r, st: st, reg: reg, v: v, pl: pl, srv: srv, base: "http://" + ln.Addr().String(), keys: map[string]string{}}
	for name, sc := range map[string]store.Scope{
		"a": {Role: store.RoleConstituent, Name: "a"}, "b": {Role: store.RoleConstituent, Name: "b"},
		"src": {Role: store.RoleSource, Name: "partner"}, "other-src": {Role: store.RoleSource, Name: "other-src"},
		"unconfigured-src": {Role: store.RoleSource, Name: "nobody"},
	} {
		k, err := st.CreateKey(ctx, sc)
		if err != nil {
			tb.Fatal(err)
		}
		e.keys[name] = k
	}
	e.keys["admin"] = adminKey
	return e
}

// put stores an event and indexes it for the views as routed at added, the
// way the pipeline does, so tests control date_added exactly.
func (e *env) put(ev *gateway.Event, added time.Time) {
	e.t.Helper()
	ctx := context.Background()
	snap := e.reg.Current()
	b := store.NewBatch(ev, added)
	b.Index(e.v.Index(policy.Assess(ev, snap), snap, added))
	if _, err := e.st.Commit(ctx, b); err != nil {
		e.t.Fatal(err)
	}
}

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func event(id string, tlp gateway.TLP, kind gateway.Kind, inds ...string) *gateway.Event {
	ev := &gateway.Event{ID: id, Kind: kind, Title: "event " + id, TLP: tlp, Source: gateway.SourceRef{Name: "s", Org: "Org S"},
		Created: t0, Modified: t0, Priority: gateway.PriorityNormal}
	for _, v := range inds {
		ev.Indicators = append(ev.Indicators, gateway.Indicator{Type: gateway.TypeIPv4, Value: v, Detect: true})
	}
	return ev
}

// response is one HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d body %s: %v", r.status, r.body, err)
	}
}

// do sends a request; headers come in pairs. With no Authorization among
// them the key goes as HTTP Basic (password = key), as TAXII clients send it.
func (e *env) do(method, path, key string, body []byte, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", MediaTAXII)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if key != "" && req.Header.Get("Authorization") == "" {
		req.SetBasicAuth("user", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (e *env) get(path, key string, headers ...string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, key, nil, headers...)
}

type testEnvelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

type stixHead struct {
	ID                string   `json:"id"`
	Type              string   `json:"type"`
	SpecVersion       string   `json:"spec_version"`
	Name              string   `json:"name"`
	Pattern           string   `json:"pattern"`
	Modified          string   `json:"modified"`
	ObjectMarkingRefs []string `json:"object_marking_refs"`
}

func heads(t testing.TB, objs []json.RawMessage) []stixHead {
	t.Helper()
	out := make([]stixHead, len(objs))
	for i, o := range objs {
		if err := json.Unmarshal(o, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func collectionPath(id string) string { return APIRoot + "collections/" + id + "/" }
