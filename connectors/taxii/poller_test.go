package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/store"
)

func newPoller(t *testing.T, down *env, root, collection, user, password string, pageSize, batch int) *Poller {
	t.Helper()
	p, err := NewPoller(PollerOptions{
		Source: gateway.Source{Name: "upstream"}, URL: root, Collection: collection, Username: user, Password: password,
		Ingest: down.pl, Cursors: down.st, PageSize: pageSize, BatchObjects: batch, Log: testLog(t), UserAgent: "Schakel/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func storedEvents(t *testing.T, e *env) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := e.st.EachEventID(t.Context(), func(id string) error {
		vs, err := e.st.Versions(t.Context(), id)
		out[id] = len(vs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// failingProxy forwards to target and answers 502 to the requests listed.
func failingProxy(t *testing.T, target string, fail ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1))
		for _, f := range fail {
			if f == i {
				http.Error(w, "upstream hiccup", http.StatusBadGateway)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestPollerReadsASecondSchakel polls another gateway's TAXII server,
// following next page by page, and ingests each event once; after a failed
// page a restarted poller resumes from the saved cursor.
func TestPollerReadsASecondSchakel(t *testing.T) {
	up, down := newEnv(t), newEnv(t)
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08d-0000-4000-8000-00000000000%d", i, i)
		up.put(event(ids[i], gateway.TLPClear, gateway.KindAdvisory, fmt.Sprintf("203.0.113.%d", i+1)), t0.Add(time.Duration(i)*time.Second))
	}
	up.put(event("aaaaaaaa-0000-4000-8000-00000000000a", gateway.TLPAmber, gateway.KindAdvisory, "203.0.113.99"), t0.Add(time.Minute))
	// Five objects per event: pages of five, batches of two events. The
	// fourth request fails: the first batch is in, the third event not.
	proxy, requests := failingProxy(t, up.base, 4)
	root := proxy.URL + APIRoot
	p := newPoller(t, down, root, "community", "schakel-b", up.keys["b"], 5, 10)
	res, err := p.Poll(t.Context())
	if err == nil || res.Accepted != 2 {
		t.Fatalf("first poll: %+v, %v; want 2 events in and the hiccup reported", res, err)
	}
	// A restarted poller continues from the saved cursor, not from the start.
	p = newPoller(t, down, root, "community", "schakel-b", up.keys["b"], 5, 10)
	res, err = p.Poll(t.Context())
	if err != nil || res.Accepted != 4 || res.Duplicates != 0 {
		t.Fatalf("resumed poll: %+v, %v; want the other 4 events, no duplicates", res, err)
	}
	got := storedEvents(t, down)
	if len(got) != 6 {
		t.Fatalf("downstream holds %d events, want 6 (the AMBER one is not in community): %v", len(got), got)
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s stored %d times", id, got[id])
		}
		ev, err := down.st.Event(t.Context(), id)
		if err != nil || ev.TLP != gateway.TLPClear || ev.Source.Name != "upstream" || len(ev.Indicators) != 1 {
			t.Errorf("event %s: %+v, %v", id, ev, err)
		}
	}
	// Nothing new upstream: nothing new downstream.
	before := requests.Load()
	res, err = p.Poll(t.Context())
	if err != nil || res.Accepted != 0 || res.Objects != 0 {
		t.Errorf("idle poll: %+v, %v", res, err)
	}
	if requests.Load()-before != 1 {
		t.Errorf("idle poll took %d requests", requests.Load()-before)
	}
	// A new event and an update upstream arrive once each.
	up.put(event("bbbbbbbb-0000-4000-8000-00000000000b", gateway.TLPGreen, gateway.KindAdvisory, "203.0.113.50"), t0.Add(time.Hour))
	upd := event(ids[0], gateway.TLPClear, gateway.KindAdvisory, "203.0.113.1", "203.0.113.51")
	upd.Modified = t0.Add(time.Hour)
	up.put(upd, t0.Add(time.Hour+time.Second))
	res, err = p.Poll(t.Context())
	if err != nil || res.Accepted != 2 || res.Duplicates != 0 {
		t.Errorf("poll after changes: %+v, %v", res, err)
	}
	if got := storedEvents(t, down); got[ids[0]] != 2 || got["bbbbbbbb-0000-4000-8000-00000000000b"] != 1 {
		t.Errorf("after the update: %v", got)
	}
	if res, err := p.Poll(t.Context()); err != nil || res.Objects != 0 {
		t.Errorf("poll after that: %+v, %v", res, err)
	}
}

// TestPollerNeverSplitsAnEvent reads pages that end inside events and
// batches smaller than the sweep, crashing once in between: every event
// arrives whole, once, with its producer.
func TestPollerNeverSplitsAnEvent(t *testing.T) {
	up, down := newEnv(t), newEnv(t)
	const n = 5
	for i := range n {
		up.put(event(fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), gateway.TLPClear, gateway.KindAdvisory, fmt.Sprintf("203.0.113.%d", i+1)), t0.Add(time.Duration(i)*time.Second))
	}
	// Five objects per event, pages of three, batches of six: the first
	// batch ends one object into the second event.
	proxy, _ := failingProxy(t, up.base, 3)
	root := proxy.URL + APIRoot
	p := newPoller(t, down, root, "public", "", up.keys["a"], 3, 6)
	if res, err := p.Poll(t.Context()); err == nil || res.Accepted != 1 {
		t.Fatalf("first poll: %+v, %v", res, err)
	}
	raw, _ := down.st.Cursor(t.Context(), "taxii:upstream")
	if !strings.Contains(raw, `"skip":2`) {
		t.Errorf("cursor after the partial batch: %s", raw)
	}
	p = newPoller(t, down, root, "public", "", up.keys["a"], 3, 6)
	if res, err := p.Poll(t.Context()); err != nil || res.Accepted != n-1 || res.Duplicates != 0 || res.Rejected != 0 {
		t.Fatalf("resumed poll: %+v, %v", res, err)
	}
	got := storedEvents(t, down)
	if len(got) != n {
		t.Fatalf("events %v", got)
	}
	for id, versions := range got {
		ev, _ := down.st.Event(t.Context(), id)
		if versions != 1 || len(ev.Indicators) != 1 || ev.Source.Org != "Org S" {
			t.Errorf("event %s: %d versions, %+v", id, versions, ev)
		}
	}
}

func TestSplitPoint(t *testing.T) {
	o := func(typ, id string, refs ...string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"type": typ, "id": id, "object_refs": refs})
		return b
	}
	cases := []struct {
		name string
		objs []json.RawMessage
		want int
	}{
		{"complete", []json.RawMessage{o("identity", "i"), o("report", "r", "x"), o("indicator", "x")}, 3},
		{"report waiting for content", []json.RawMessage{o("report", "r1", "x"), o("indicator", "x"), o("extension-definition", "e"), o("identity", "i"), o("report", "r2", "y")}, 2},
		{"definitions at the end", []json.RawMessage{o("report", "r1", "x"), o("indicator", "x"), o("marking-definition", "m"), o("identity", "i")}, 2},
		{"content first, report missing a part", []json.RawMessage{o("indicator", "a"), o("indicator", "x"), o("report", "r", "x", "y")}, 1},
		{"one event larger than the batch", []json.RawMessage{o("report", "r", "x", "y"), o("indicator", "x")}, 2},
		{"unreadable objects", []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`{"type":`)}, 2},
	}
	for _, tc := range cases {
		if got := splitPoint(tc.objs); got != tc.want {
			t.Errorf("%s: cut at %d, want %d", tc.name, got, tc.want)
		}
	}
}

// quirky is an upstream that behaves like servers seen in the wild (MITRE
// ATT&CK's, OpenCTI's): STIX instead of TAXII media type, more without next,
// next as a number, dates that are not RFC 3339. No real implementation of
// these quirks runs here, so it is written out.
type quirky struct {
	mu       sync.Mutex
	requests []*http.Request
	pages    map[string]func(w http.ResponseWriter)
}

func (q *quirky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q.mu.Lock()
	q.requests = append(q.requests, r)
	q.mu.Unlock()
	key := r.URL.Query().Get("added_after") + "|" + r.URL.Query().Get("next")
	page, ok := q.pages[key]
	if !ok {
		http.Error(w, "unexpected query "+key, http.StatusBadRequest)
		return
	}
	page(w)
}

func objPage(more bool, next, last string, ids ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/stix+json;version=2.1")
		if last != "" {
			w.Header().Set("X-TAXII-Date-Added-Last", last)
		}
		var objs []string
		for _, id := range ids {
			objs = append(objs, fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2026-11-20T09:00:00Z","modified":"2026-11-20T09:00:00Z","pattern":"[domain-name:value = '%s.example']","pattern_type":"stix","valid_from":"2026-11-20T09:00:00Z"}`, id, id[:8]))
		}
		body := fmt.Sprintf(`{"more":%v,%s"objects":[%s]}`, more, next, strings.Join(objs, ","))
		fmt.Fprint(w, body)
	}
}

func TestPollerToleratesQuirkyServers(t *testing.T) {
	down := newEnv(t)
	q := &quirky{pages: map[string]func(http.ResponseWriter){
		// more without next: continue from X-TAXII-Date-Added-Last, here with
		// a space for T and no zone.
		"|": objPage(true, "", "2026-11-20 09:00:01.5", "11111111-0000-4000-8000-000000000001"),
		// next as a number.
		"2026-11-20T09:00:01.500000Z|": objPage(true, `"next":7,`, "2026-11-20T09:00:02Z", "22222222-0000-4000-8000-000000000002"),
		// the last page dates itself in RFC 1123.
		"2026-11-20T09:00:01.500000Z|7": objPage(false, "", "Fri, 20 Nov 2026 09:00:03 GMT", "33333333-0000-4000-8000-000000000003"),
		// nothing new: an empty answer without headers.
		"2026-11-20T09:00:03.000000Z|": func(w http.ResponseWriter) { w.Header().Set("Content-Type", "application/json") },
	}}
	srv := httptest.NewServer(q)
	t.Cleanup(srv.Close)
	p := newPoller(t, down, srv.URL+"/api1/", "91a7b528-80eb-42ed-a74d-c6fbd5a26116", "user", "secret", 0, 0)
	res, err := p.Poll(t.Context())
	if err != nil || res.Pages != 3 || res.Objects != 3 {
		t.Fatalf("first poll: %+v, %v", res, err)
	}
	if res, err := p.Poll(t.Context()); err != nil || res.Pages != 1 || res.Objects != 0 {
		t.Fatalf("second poll: %+v, %v", res, err)
	}
	// The three indicators became one event (they arrived in one sweep).
	evs := storedEvents(t, down)
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	for id := range evs {
		ev, _ := down.st.Event(t.Context(), id)
		if len(ev.Indicators) != 3 || ev.TLP != gateway.TLPAmber {
			t.Errorf("event %+v", ev)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.requests {
		user, pw, ok := r.BasicAuth()
		if !ok || user != "user" || pw != "secret" || r.Header.Get("Accept") != MediaTAXII || r.Header.Get("User-Agent") != "Schakel/test" ||
			r.URL.Path != "/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/" || r.URL.Query().Get("limit") != "1000" {
			t.Errorf("request %s %v", r.URL, r.Header)
		}
	}
}

func TestPollerRecoversFromAnExpiredNext(t *testing.T) {
	down := newEnv(t)
	q := &quirky{pages: map[string]func(http.ResponseWriter){
		"|": objPage(true, `"next":"s1",`, "2026-11-20T09:00:01Z", "11111111-0000-4000-8000-000000000001"),
		// "s1" is not served: a session cursor that expired (medallion, 30 s).
		"2026-11-20T09:00:01.000000Z|": objPage(false, "", "2026-11-20T09:00:02Z", "22222222-0000-4000-8000-000000000002"),
	}}
	srv := httptest.NewServer(q)
	t.Cleanup(srv.Close)
	p := newPoller(t, down, srv.URL+"/api1", "c1", "", "", 0, 0)
	res, err := p.Poll(t.Context())
	if err != nil || res.Objects != 2 || res.Accepted != 1 {
		t.Fatalf("poll: %+v, %v", res, err)
	}
	raw, _ := down.st.Cursor(t.Context(), "taxii:upstream")
	if !strings.Contains(raw, `"added_after":"2026-11-20T09:00:02.000000Z"`) || strings.Contains(raw, `"next"`) {
		t.Errorf("cursor %s", raw)
	}
}

func TestPollerEndsWhenMoreMakesNoProgress(t *testing.T) {
	down := newEnv(t)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", MediaTAXII)
		fmt.Fprint(w, `{"more": true}`) // OpenCTI #7793-like: more, but nothing and no way on
	}))
	t.Cleanup(srv.Close)
	p := newPoller(t, down, srv.URL+"/api1/", "c1", "", "", 0, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := p.Poll(ctx); err != nil || n.Load() != 1 {
		t.Errorf("poll: %v after %d requests", err, n.Load())
	}
}

func TestPollerRefusesBadAnswers(t *testing.T) {
	down := newEnv(t)
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"unauthorized", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) }},
		{"html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login</html>")
		}},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{objects") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			p := newPoller(t, down, srv.URL+"/api1/", "c1", "", "", 0, 0)
			if _, err := p.Poll(t.Context()); err == nil {
				t.Error("no error")
			}
			if raw, _ := down.st.Cursor(t.Context(), "taxii:upstream"); raw != "" {
				t.Errorf("cursor moved: %s", raw)
			}
		})
	}
}

func TestPollerSendsAToken(t *testing.T) {
	down := newEnv(t)
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", MediaTAXII)
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	p, err := NewPoller(PollerOptions{Source: gateway.Source{Name: "upstream"}, URL: srv.URL + "/api1/", Collection: "c1",
		Token: "tok3n", Ingest: down.pl, Cursors: down.st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Poll(t.Context()); err != nil || auth.Load() != "Bearer tok3n" {
		t.Errorf("poll: %v, Authorization %v", err, auth.Load())
	}
}

func TestNewPollerChecksItsConfiguration(t *testing.T) {
	st := store.New(nil, "x")
	for _, o := range []PollerOptions{
		{Source: gateway.Source{Name: "s"}, URL: "ftp://taxii.example/api1/", Collection: "c", Cursors: st, Ingest: &pipeline.Pipeline{}},
		{Source: gateway.Source{Name: "s"}, URL: "https://taxii.example/api1/", Collection: "a/b", Cursors: st, Ingest: &pipeline.Pipeline{}},
		{Source: gateway.Source{Name: "s"}, URL: "https://taxii.example/api1/", Collection: "c"},
		{URL: "https://taxii.example/api1/", Collection: "c", Cursors: st, Ingest: &pipeline.Pipeline{}},
	} {
		if _, err := NewPoller(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// TestClientStatusClassified: an upstream's refusal is the shared
// StatusError, read by the one classifier as every other client's is.
func TestClientStatusClassified(t *testing.T) {
	for _, tc := range []struct {
		code       int
		retryAfter string
		want       httpstatus.Decision
	}{
		{http.StatusTooManyRequests, "7", httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}},
		{http.StatusGone, "", httpstatus.Decision{Class: httpstatus.Permanent}},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			http.Error(w, `{"title":"nope"}`, tc.code)
		}))
		c, err := NewClient(srv.URL+"/api1/", "c1", "", "", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Objects(t.Context(), "", "", 0)
		srv.Close()
		if se, ok := errors.AsType[*httpstatus.StatusError](err); !ok || se.Code != tc.code || !strings.Contains(se.Body, "nope") {
			t.Fatalf("Objects = %v, want a %d StatusError with the body", err, tc.code)
		}
		if got := httpstatus.Classify(err); got != tc.want {
			t.Errorf("%d: classified %+v, want %+v", tc.code, got, tc.want)
		}
	}
}
