package misp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/misp"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
)

// counter is a reverse proxy in front of a real server that counts the
// requests per path prefix, so a test sees what a client really asked.
type counter struct {
	srv   *httptest.Server
	views atomic.Int64
	index atomic.Int64
}

func newCounter(t *testing.T, target string) *counter {
	u, _ := url.Parse(target)
	c := &counter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/events/view/"):
			c.views.Add(1)
		case strings.HasPrefix(r.URL.Path, "/events/index"):
			c.index.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func newPoller(t *testing.T, down *env, base, key string, tags ...string) *misp.Poller {
	t.Helper()
	c, err := misp.NewClient(base, key, misp.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := misp.NewPoller(misp.PollerOptions{
		Source: "upstream", DefaultTLP: gateway.TLPAmber, Client: c, Tags: tags,
		Cursors: down.st, Ingest: down.pl, Redis: down.r.Client, Prefix: down.r.Prefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPollerPullsLikeMISP(t *testing.T) {
	up := newEnv(t)
	seed(up)
	down := newEnv(t)
	proxy := newCounter(t, up.base)
	ctx := context.Background()

	p := newPoller(t, down, proxy.srv.URL, up.keyA)
	res, err := p.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Listed != 4 || res.Ingested != 4 || res.Failed != 0 || proxy.views.Load() != 4 {
		t.Fatalf("first poll %+v, %d views; want A's 4 events ingested", res, proxy.views.Load())
	}
	for id, want := range map[string]gateway.TLP{idClear: gateway.TLPClear, idGreen: gateway.TLPGreen, idNotif: gateway.TLPAmber, idStrict: gateway.TLPAmberStrict} {
		got, err := down.st.Event(ctx, id)
		if err != nil {
			t.Fatalf("%s not pulled: %v", id, err)
		}
		if got.TLP != want || got.Source.Name != "upstream" {
			t.Errorf("%s pulled as %s from %s, want %s from upstream", id, got.TLP, got.Source.Name, want)
		}
		if id == idNotif && (len(got.Indicators) != 1 || got.Indicators[0].Value != "192.0.2.10") {
			t.Errorf("notification pulled with %v, want only A's own indicator", got.Indicators)
		}
	}
	for _, id := range []string{idRed, idHealth, idAmber} {
		if _, err := down.st.Event(ctx, id); !errors.Is(err, gateway.ErrNotFound) {
			t.Errorf("%s pulled although A may not see it (%v)", id, err)
		}
	}

	// Nothing changed: the index answers 304 and nothing is viewed.
	res, err = p.Poll(ctx)
	if err != nil || !res.NotModified || proxy.views.Load() != 4 {
		t.Fatalf("second poll %+v %v, %d views; want 304 and no view", res, err, proxy.views.Load())
	}
	// A restarted gateway resumes from the cursor in Redis.
	restarted := newPoller(t, down, proxy.srv.URL, up.keyA)
	if res, err = restarted.Poll(ctx); err != nil || !res.NotModified {
		t.Fatalf("after restart %+v %v; want 304", res, err)
	}
	// A newer upstream version is pulled, and only that one.
	up.ingest(ev(idGreen, gateway.KindIntel, gateway.TLPGreen, t0.Add(time.Hour), "203.0.113.2", "203.0.113.99"))
	if res, err = restarted.Poll(ctx); err != nil || res.Fetched != 1 || res.Ingested != 1 || proxy.views.Load() != 5 {
		t.Fatalf("poll after an update %+v %v, %d views; want one fetch", res, err, proxy.views.Load())
	}
	if got, _ := down.st.Event(ctx, idGreen); len(got.Indicators) != 2 {
		t.Errorf("updated event has %d indicators, want 2", len(got.Indicators))
	}
	// The cursor sits in the source's store.Cursor.
	if cur, _ := down.st.Cursor(ctx, "upstream"); !strings.Contains(cur, "etag") {
		t.Errorf("cursor %q holds no ETag", cur)
	}
}

func TestPollerLeavesOtherSourcesEvents(t *testing.T) {
	up := newEnv(t)
	seed(up)
	down := newEnv(t)
	// down already holds idClear from another source.
	down.ingest(ev(idClear, gateway.KindAdvisory, gateway.TLPAmber, t0.Add(-time.Hour), "203.0.113.1"))
	res, err := newPoller(t, down, up.base, up.keyA).Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 3 || res.Filtered != 1 {
		t.Errorf("poll %+v, want 3 ingested and the other source's event left alone", res)
	}
	if got, _ := down.st.Event(context.Background(), idClear); got.Source.Name != "partner" || got.TLP != gateway.TLPAmber {
		t.Errorf("the other source's event is now %s from %s", got.TLP, got.Source.Name)
	}
}

func TestPollerTagFilters(t *testing.T) {
	up := newEnv(t)
	seed(up)
	down := newEnv(t)
	p := newPoller(t, down, up.base, up.keyB, "!tlp:amber", "!tlp:green")
	res, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 1 {
		t.Fatalf("poll with tag filters %+v, want only the CLEAR event", res)
	}
	if _, err := down.st.Event(context.Background(), idClear); err != nil {
		t.Errorf("CLEAR event not pulled: %v", err)
	}
}

func TestPollerReportsUpstreamErrors(t *testing.T) {
	down := newEnv(t)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		says    string
	}{
		{"unreachable version", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 502) }, "502"},
		{"not MISP", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"hello":1}`)) }, "not a MISP version"},
		{"bad index", func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/servers/getVersion") {
				w.Write([]byte(`{"version":"2.5.1"}`))
				return
			}
			w.Write([]byte(`[{"uuid":"x"}]`))
		}, "uuid and timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := newPoller(t, down, srv.URL, down.keyA).Poll(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v, want one saying %q", err, tc.says)
			}
		})
	}
}

func TestSinkPushesToConstituentMISP(t *testing.T) {
	// "their" is the constituent's MISP: a gateway whose MISP source key
	// the constituent configured as misp_push.key.
	their := newEnv(t)
	proxy := newCounter(t, their.base)
	sink, err := misp.NewSink(misp.SinkOptions{Org: testOrg, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	con := &gateway.Constituent{ID: "x", MISPPush: &gateway.MISPPush{URL: proxy.srv.URL, Key: their.keySrc}}
	ctx := context.Background()
	e := ev(uuidN(42), gateway.KindIntel, gateway.TLPGreen, t0, "203.0.113.42")
	d := gateway.Delivery{ID: "dlv_1", EventID: e.ID, Recipient: gateway.ConstituentRecipient("x"), Channel: gateway.ChannelMISPPush, Target: proxy.srv.URL}
	if err := sink.Deliver(ctx, d, con, e, ""); err != nil {
		t.Fatal(err)
	}
	got, err := their.st.Event(ctx, e.ID)
	if err != nil || got.TLP != gateway.TLPGreen || got.Source.Name != "upstream" || len(got.Indicators) != 1 {
		t.Fatalf("their MISP stored %+v, %v", got, err)
	}
	// A redelivery of the same version is MISP's "not newer": done.
	if err := sink.Deliver(ctx, d, con, e, ""); err != nil {
		t.Errorf("redelivery: %v", err)
	}
	// A newer version is an edit.
	e2 := ev(uuidN(42), gateway.KindIntel, gateway.TLPGreen, t0.Add(time.Minute), "203.0.113.42", "203.0.113.43")
	if err := sink.Deliver(ctx, d, con, e2, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := their.st.Event(ctx, e.ID); len(got.Indicators) != 2 {
		t.Errorf("after edit: %d indicators", len(got.Indicators))
	}
	if proxy.views.Load() != 3 {
		t.Errorf("%d HEAD requests, want one per push", proxy.views.Load())
	}

	permanent := func(err error) bool { return httpstatus.Classify(err).Class == httpstatus.Permanent }
	badKey := &gateway.Constituent{ID: "x", MISPPush: &gateway.MISPPush{URL: proxy.srv.URL, Key: "NoSuchKeyNoSuchKeyNoSuchKeyNoSuchKey1234"}}
	if err := sink.Deliver(ctx, d, badKey, e, ""); !permanent(err) {
		t.Errorf("401 from the remote = %v, want permanent", err)
	}
	moved := &gateway.Constituent{ID: "x", MISPPush: &gateway.MISPPush{URL: "http://elsewhere.invalid", Key: their.keySrc}}
	if err := sink.Deliver(ctx, d, moved, e, ""); !permanent(err) {
		t.Errorf("target no longer configured = %v, want permanent", err)
	}
	red := ev(uuidN(43), gateway.KindIncident, gateway.TLPRed, t0, "203.0.113.44")
	if err := sink.Deliver(ctx, d, con, red, ""); !permanent(err) {
		t.Errorf("RED = %v, want permanent refusal", err)
	}
	if _, err := their.st.Event(ctx, red.ID); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("RED event reached the constituent's MISP")
	}

	// The dispatcher's decision (httpstatus.Classify), the same as for a
	// webhook receiver's answer.
	for _, tc := range []struct {
		code int
		want httpstatus.Decision
	}{
		{500, httpstatus.Decision{Class: httpstatus.Retry}},
		{503, httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}},
		{429, httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}},
		{408, httpstatus.Decision{Class: httpstatus.Retry}},
		{400, httpstatus.Decision{Class: httpstatus.Permanent}},
		{410, httpstatus.Decision{Class: httpstatus.Permanent}},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/servers/getVersion") {
				w.Write([]byte(`{"version":"2.5.1","perm_sync":true}`))
				return
			}
			if tc.want.After > 0 {
				w.Header().Set("Retry-After", "7")
			}
			http.Error(w, `{"name":"nope"}`, tc.code)
		}))
		c := &gateway.Constituent{ID: "x", MISPPush: &gateway.MISPPush{URL: srv.URL, Key: their.keySrc}}
		err := sink.Deliver(ctx, gateway.Delivery{Target: srv.URL}, c, e, "")
		srv.Close()
		if err == nil {
			t.Errorf("%d: delivered", tc.code)
			continue
		}
		if got := httpstatus.Classify(err); got != tc.want {
			t.Errorf("%d: classified %+v, want %+v (%v)", tc.code, got, tc.want, err)
		}
	}
}

// TestClientStatusClassified: the pull client's failures are the shared
// StatusError, so a poll and a push read a remote's answer alike.
func TestClientStatusClassified(t *testing.T) {
	for _, tc := range []struct {
		code       int
		retryAfter string
		want       httpstatus.Decision
	}{
		{429, "7", httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}},
		{410, "", httpstatus.Decision{Class: httpstatus.Permanent}},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			http.Error(w, `{"name":"nope"}`, tc.code)
		}))
		c, err := misp.NewClient(srv.URL, strings.Repeat("k", 40), misp.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Version(t.Context())
		srv.Close()
		se, ok := errors.AsType[*httpstatus.StatusError](err)
		if !ok || se.Code != tc.code || !strings.Contains(err.Error(), "misp GET /servers/getVersion") {
			t.Fatalf("Version = %v, want a %d StatusError naming the call", err, tc.code)
		}
		if got := httpstatus.Classify(err); got != tc.want {
			t.Errorf("%d: classified %+v, want %+v", tc.code, got, tc.want)
		}
	}
}
