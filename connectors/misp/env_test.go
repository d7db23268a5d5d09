package misp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/connectors/misp"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

const adminKey = "AdminKey0123456789abcdefghijklmnopqrstuv"

var testOrg = misp.Org{Name: "CSIRT Test", UUID: "5c6d0f8e-1f2a-4b3c-9d4e-5f6a7b8c9d0e"}

// env is a gateway core (store, registry, views, pipeline, HTTP API) with
// the MISP server mounted and listening on a real port. Constituents: A
// owns 192.0.2.0/24 and a.example; B owns 198.51.100.0/24 and is in the
// health sector. Source "upstream" is a MISP source; "partner" is not.
type env struct {
	t        testing.TB
	r        *redistest.Redis
	st       *store.Store
	pl       *pipeline.Pipeline
	views    *views.Views
	base     string
	keyA     string
	keyB     string
	keySrc   string // upstream (type misp)
	keyOther string // partner (type api)
	srv      *misp.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, redistest.New(t))
}

func newEnvOn(t testing.TB, r *redistest.Redis) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, []gateway.Constituent{
		{ID: "a", Name: "Constituent A", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/24"}, Domains: []string{"a.example"}},
			Contacts: []gateway.Contact{{Email: "soc@a.example"}}},
		{ID: "b", Name: "Constituent B", Sectors: []string{"health"}, Assets: gateway.Assets{Prefixes: []string{"198.51.100.0/24"}}},
	}); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	v := views.New(r.Client, r.Prefix, st, reg)
	m := metrics.New(prometheus.NewRegistry())
	au := audit.New(r.Client, r.Prefix)
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})
	pl := pipeline.New(st, ob, au, reg, pipeline.Config{DefaultTLP: gateway.TLPAmber, Views: v}, m, log)
	srv, err := misp.NewServer(misp.Options{
		Views: v, Store: st, Ingest: pl, Redis: r.Client, Prefix: r.Prefix, Org: testOrg,
		Sources: []misp.Source{{Name: "upstream", DefaultTLP: gateway.TLPAmber}}, Log: log,
		Constituent: func(id string) (*gateway.Constituent, bool) { return reg.Current().Get(id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Options{
		Redis: r.Client, Store: st, Audit: au, Outbox: ob, Pipeline: pl, Registry: reg, Metrics: m, Log: log,
		AdminKeys: []string{adminKey}, BodyLimit: 64 << 20,
		Sources: []httpapi.SourceConfig{{Name: "upstream", Type: "misp"}, {Name: "partner", Type: "api"}},
	})
	api.Mount(srv.Mount)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = api.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(sctx)
	})
	e := &env{t: t, r: r, st: st, pl: pl, views: v, base: "http://" + ln.Addr().String(), srv: srv}
	key := func(sc store.Scope) string {
		k, err := st.CreateKey(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	e.keyA = key(store.Scope{Role: store.RoleConstituent, Name: "a"})
	e.keyB = key(store.Scope{Role: store.RoleConstituent, Name: "b"})
	e.keySrc = key(store.Scope{Role: store.RoleSource, Name: "upstream"})
	e.keyOther = key(store.Scope{Role: store.RoleSource, Name: "partner"})
	return e
}

// ingest stores a canonical event through the pipeline.
func (e *env) ingest(ev *gateway.Event) gateway.Result {
	e.t.Helper()
	return e.ingestFrom(gateway.Source{Name: "partner"}, ev)
}

// ingestFrom stores a canonical event from src through the pipeline.
func (e *env) ingestFrom(src gateway.Source, ev *gateway.Event) gateway.Result {
	e.t.Helper()
	res, err := e.pl.Ingest(context.Background(), src, ev)
	if err != nil {
		e.t.Fatalf("ingest %s: %v", ev.ID, err)
	}
	return res
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

// call sends one request the way MISP does (raw key in Authorization).
func (e *env) call(method, path, key string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "MISP 2.5.1 - #bb0909a37a7bd727d35f7a60ee9a6ff10bc99852")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: data}
}

// must checks the status and decodes the body into out.
func (r resp) must(t testing.TB, want int, out any) resp {
	t.Helper()
	if r.code != want {
		t.Fatalf("status %d, want %d: %.500s", r.code, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("decode %T: %v: %.500s", out, err, r.body)
		}
	}
	return r
}

type indexEntry struct {
	ID                string `json:"id"`
	UUID              string `json:"uuid"`
	Timestamp         string `json:"timestamp"`
	SightingTimestamp string `json:"sighting_timestamp"`
	Published         bool   `json:"published"`
	OrgcUUID          string `json:"orgc_uuid"`
	AttributeCount    string `json:"attribute_count"`
	Info              string `json:"info"`
	ExtendsUUID       string `json:"extends_uuid"`
	EventTag          []struct {
		Tag struct {
			Name string `json:"name"`
		} `json:"Tag"`
	} `json:"EventTag"`
}

// index runs MISP's pull index request for key.
func (e *env) index(key string, filters map[string]any) []indexEntry {
	e.t.Helper()
	if filters == nil {
		filters = map[string]any{"minimal": 1, "published": 1}
	}
	var out []indexEntry
	e.call("POST", "/events/index", key, filters, "If-None-Match", `""`).must(e.t, 200, &out)
	return out
}

func uuids(es []indexEntry) map[string]bool {
	out := map[string]bool{}
	for _, x := range es {
		out[x.UUID] = true
	}
	return out
}

type mispAttr struct {
	UUID     string `json:"uuid"`
	Type     string `json:"type"`
	Category string `json:"category"`
	Value    string `json:"value"`
	ToIDs    bool   `json:"to_ids"`
	Tag      []struct {
		Name string `json:"name"`
	} `json:"Tag"`
}

type mispEvent struct {
	ID             string     `json:"id"`
	UUID           string     `json:"uuid"`
	Info           string     `json:"info"`
	Timestamp      string     `json:"timestamp"`
	Distribution   string     `json:"distribution"`
	Published      bool       `json:"published"`
	AttributeCount string     `json:"attribute_count"`
	ExtendsUUID    string     `json:"extends_uuid"`
	Attribute      []mispAttr `json:"Attribute"`
	Object         []struct {
		UUID      string     `json:"uuid"`
		Attribute []mispAttr `json:"Attribute"`
	} `json:"Object"`
	Tag []struct {
		Name  string `json:"name"`
		Local *bool  `json:"local"`
	} `json:"Tag"`
}

func (m mispEvent) attrs() []mispAttr {
	out := append([]mispAttr(nil), m.Attribute...)
	for _, o := range m.Object {
		out = append(out, o.Attribute...)
	}
	return out
}

func (m mispEvent) values() map[string]bool {
	out := map[string]bool{}
	for _, a := range m.attrs() {
		out[a.Value] = true
	}
	return out
}

func (m mispEvent) tlpTags() []string {
	var out []string
	for _, t := range m.Tag {
		if strings.HasPrefix(strings.ToLower(t.Name), "tlp:") {
			out = append(out, t.Name)
		}
	}
	return out
}

// view fetches /events/view the way MISP 2.5's pull does.
func (e *env) view(key, uuid string) (mispEvent, int) {
	e.t.Helper()
	r := e.call("GET", "/events/view/"+uuid+"/deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1", key, nil)
	var out struct {
		Event mispEvent `json:"Event"`
	}
	if r.code == 200 {
		r.must(e.t, 200, &out)
	}
	return out.Event, r.code
}

func ev(id string, kind gateway.Kind, tlp gateway.TLP, mod time.Time, inds ...string) *gateway.Event {
	e := &gateway.Event{ID: id, Kind: kind, Title: "event " + id, TLP: tlp, Created: mod, Modified: mod}
	for _, v := range inds {
		t := gateway.TypeIPv4
		if strings.Contains(v, "example") {
			t = gateway.TypeDomain
		}
		e.Indicators = append(e.Indicators, gateway.Indicator{Type: t, Value: v, Detect: true})
	}
	return e
}

func uuidN(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
