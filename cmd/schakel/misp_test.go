package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// mispUA is what MISP 2.5.1 sends as User-Agent on sync requests.
const mispUA = "MISP 2.5.1 - #bb0909a37a7bd727d35f7a60ee9a6ff10bc99852"

// mispGateway is a live gateway spoken to with MISP's sync headers.
type mispGateway struct{ *liveGateway }

func runGateway(t *testing.T, path string) *mispGateway {
	t.Helper()
	return &mispGateway{runLive(t, path)}
}

// call sends a request with MISP's sync headers; out receives the JSON.
func (g *mispGateway) call(method, path, key string, body any, want int, out any, hdr ...string) (http.Header, []byte) {
	g.t.Helper()
	return mispCall(g.t, g.base, method, path, key, body, want, out, hdr...)
}

func mispCall(t testing.TB, base, method, path, key string, body any, want int, out any, hdr ...string) (http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = http.Header{"Accept": {"application/json"}, "Content-Type": {"application/json"}, "User-Agent": {mispUA}}
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %.400s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %.400s", method, path, err, data)
		}
	}
	return resp.Header, data
}

func issueKey(t *testing.T, base, path string) string {
	t.Helper()
	var out struct{ Key string }
	mispCall(t, base, "POST", path, testAdminKey, nil, 201, &out)
	return out.Key
}

type mispIndexEntry struct {
	ID                string `json:"id"`
	UUID              string `json:"uuid"`
	Timestamp         string `json:"timestamp"`
	SightingTimestamp string `json:"sighting_timestamp"`
	Published         bool   `json:"published"`
	OrgcUUID          string `json:"orgc_uuid"`
}

// mispViewPath is the request MISP 2.5's pull sends for one event.
func mispViewPath(uuid string) string {
	return "/events/view/" + uuid + "/deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1"
}

// TestAcceptanceMISPPullSequence replays, request by request, what a MISP
// 2.5 instance sends when it pulls Schakel as a remote server (the log of
// MISP#9054, reference/misp-sync.md §1.3), for constituents A and B.
func TestAcceptanceMISPPullSequence(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	const (
		clear  = "31000000-0000-4000-8000-000000000001"
		green  = "31000000-0000-4000-8000-000000000002"
		health = "31000000-0000-4000-8000-000000000003"
		notif  = "31000000-0000-4000-8000-000000000004"
		red    = "31000000-0000-4000-8000-000000000005"
		strict = "31000000-0000-4000-8000-000000000006"
	)
	ip := func(v string) map[string]any { return map[string]any{"type": "ipv4", "value": v, "detect": true} }
	h.ingest(event(clear, "advisory", "CLEAR", map[string]any{"indicators": []any{ip("203.0.113.1")}}), 202)
	h.ingest(event(green, "intel", "GREEN", map[string]any{"indicators": []any{ip("203.0.113.2")}, "labels": []any{"ransomware"}}), 202)
	h.ingest(event(health, "intel", "AMBER", map[string]any{"sectors": []any{"health"}, "indicators": []any{ip("203.0.113.3")}}), 202)
	h.ingest(event(notif, "notification", "AMBER", map[string]any{"indicators": []any{ip("192.0.2.10"), ip("198.51.100.7")}}), 202)
	h.ingest(event(red, "incident", "RED", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}, "indicators": []any{ip("192.0.2.66")}}), 202)
	h.ingest(event(strict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}, "indicators": []any{ip("203.0.113.5")}}), 202)

	keys := map[string]string{
		"a": issueKey(t, h.base, "/api/v1/constituents/a/keys"),
		"b": issueKey(t, h.base, "/api/v1/constituents/b/keys"),
	}
	want := map[string][]string{"a": {clear, green, notif, strict}, "b": {clear, green, health, notif}}
	own := map[string]string{"a": "192.0.2.10", "b": "198.51.100.7"}
	var everything bytes.Buffer // every body served, searched for RED below

	for _, c := range []string{"a", "b"} {
		t.Run(c, func(t *testing.T) {
			key := keys[c]
			call := func(method, path string, body any, wantStatus int, out any, hdr ...string) (http.Header, []byte) {
				t.Helper()
				hd, data := mispCall(t, h.base, method, path, key, body, wantStatus, out, hdr...)
				everything.Write(data)
				return hd, data
			}
			// 1. getVersion
			var v struct{ Version string }
			call("GET", "/servers/getVersion", nil, 200, &v)
			if v.Version != "2.5.1" {
				t.Errorf("getVersion %q, want the caller's 2.5.1", v.Version)
			}
			// 2. galaxy clusters (pull_galaxy_clusters)
			call("POST", "/galaxy_clusters/restSearch", map[string]int{"published": 1, "minimal": 1, "custom": 1}, 200, nil)
			// 3. the minimal index
			var idx []mispIndexEntry
			hdr, _ := call("POST", "/events/index", map[string]any{"minimal": 1, "published": 1}, 200, &idx, "If-None-Match", `""`)
			got := map[string]bool{}
			for _, x := range idx {
				got[x.UUID] = true
				if x.ID == "" || x.Timestamp == "" || x.SightingTimestamp != "0" || !x.Published || x.OrgcUUID == "" {
					t.Errorf("index entry %+v lacks what MISP reads", x)
				}
			}
			if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(want[c])); !slices.Equal(g, w) {
				t.Fatalf("index = %v, want %v", g, w)
			}
			// 5. every listed uuid, in reverse index order, with MISP's named
			// parameters; each parses as a MISP event of the fixtures' shape.
			for i := len(idx) - 1; i >= 0; i-- {
				call("HEAD", mispViewPath(idx[i].UUID), nil, 200, nil)
				_, body := call("GET", mispViewPath(idx[i].UUID), nil, 200, nil)
				checkServedEvent(t, body, idx[i])
				evs, _, err := mispmap.Decode(body)
				if err != nil || len(evs) != 1 || evs[0].ID != idx[i].UUID {
					t.Fatalf("view %s does not decode as one MISP event: %v", idx[i].UUID, err)
				}
				if idx[i].UUID == notif {
					if vs := values(*evs[0]); len(vs) != 1 || vs[0] != own[c] {
						t.Errorf("notification shows %s %v, want only its own %s", c, vs, own[c])
					}
				}
			}
			// 6. proposals
			_, body := call("GET", fmt.Sprintf("/shadow_attributes/index/all:1/timestamp:%d/limit:1000/page:1/deleted[]:0/deleted[]:1.json", time.Now().Add(-90*24*time.Hour).Unix()), nil, 200, nil)
			if strings.TrimSpace(string(body)) != "[]" {
				t.Errorf("shadow_attributes = %s", body)
			}
			// 7. the index again (sightings step) with the cached ETag
			call("POST", "/events/index", map[string]any{"minimal": 1, "published": 1}, 304, nil, "If-None-Match", hdr.Get("ETag"))

			// restSearch and the feed honour the same visibility.
			var rs struct {
				Response []struct {
					Event struct {
						UUID string `json:"uuid"`
					} `json:"Event"`
				} `json:"response"`
			}
			call("POST", "/events/restSearch", map[string]any{"returnFormat": "json"}, 200, &rs)
			var rsIDs []string
			for _, x := range rs.Response {
				rsIDs = append(rsIDs, x.Event.UUID)
			}
			if g, w := slices.Sorted(slices.Values(rsIDs)), slices.Sorted(slices.Values(want[c])); !slices.Equal(g, w) {
				t.Errorf("events restSearch = %v, want %v", g, w)
			}
			var attrs struct {
				Response struct {
					Attribute []struct {
						Value string `json:"value"`
						Event struct {
							UUID string `json:"uuid"`
						} `json:"Event"`
					} `json:"Attribute"`
				} `json:"response"`
			}
			call("POST", "/attributes/restSearch", map[string]any{"returnFormat": "json", "limit": 1000, "page": 1}, 200, &attrs)
			for _, a := range attrs.Response.Attribute {
				if !got[a.Event.UUID] {
					t.Errorf("attributes restSearch shows %s of event %s, which the index does not list", a.Value, a.Event.UUID)
				}
				if a.Event.UUID == notif && a.Value != own[c] {
					t.Errorf("attributes restSearch shows %s another constituent's %s", c, a.Value)
				}
			}
			var manifest map[string]any
			call("GET", "/feeds/misp/manifest.json", nil, 200, &manifest)
			if g, w := slices.Sorted(maps.Keys(manifest)), slices.Sorted(slices.Values(want[c])); !slices.Equal(g, w) {
				t.Errorf("feed manifest = %v, want %v", g, w)
			}
		})
	}

	// Anonymous feed readers see CLEAR only.
	var manifest map[string]any
	_, data := mispCall(t, h.base, "GET", "/feeds/misp/manifest.json", "", nil, 200, &manifest)
	everything.Write(data)
	if g := slices.Collect(maps.Keys(manifest)); !slices.Equal(g, []string{clear}) {
		t.Errorf("anonymous manifest = %v, want only %s", g, clear)
	}
	// Nothing RED anywhere: not its uuid, not its attribute, not its tag.
	for _, needle := range []string{red, "192.0.2.66", "tlp:red"} {
		if bytes.Contains(everything.Bytes(), []byte(needle)) {
			t.Errorf("%q appeared in a MISP response", needle)
		}
	}
	for _, c := range []string{"a", "b"} {
		mispCall(t, h.base, "GET", mispViewPath(red), keys[c], nil, 404, nil)
		mispCall(t, h.base, "GET", "/feeds/misp/"+red+".json", keys[c], nil, 404, nil)
	}
}

// checkServedEvent checks the wire rules of ARCHITECTURE §6 on one served
// event: numbers as strings, one lower-case tlp tag with local false.
func checkServedEvent(t *testing.T, body []byte, idx mispIndexEntry) {
	t.Helper()
	var doc struct {
		Event map[string]json.RawMessage `json:"Event"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Event == nil {
		t.Fatalf("view is not {\"Event\":{…}}: %v", err)
	}
	for _, k := range []string{"id", "timestamp", "publish_timestamp", "threat_level_id", "analysis", "distribution", "attribute_count"} {
		if raw := doc.Event[k]; len(raw) == 0 || raw[0] != '"' {
			t.Errorf("%s: %s is %s, want a JSON string", idx.UUID, k, raw)
		}
	}
	var ts string
	_ = json.Unmarshal(doc.Event["timestamp"], &ts)
	if ts != idx.Timestamp {
		t.Errorf("%s: view timestamp %s, index %s", idx.UUID, ts, idx.Timestamp)
	}
	var tags []struct {
		Name  string `json:"name"`
		Local *bool  `json:"local"`
	}
	_ = json.Unmarshal(doc.Event["Tag"], &tags)
	n := 0
	for _, tg := range tags {
		if strings.HasPrefix(strings.ToLower(tg.Name), "tlp:") {
			n++
			if tg.Name != strings.ToLower(tg.Name) || tg.Local == nil || *tg.Local {
				t.Errorf("%s: tlp tag %+v, want lower-case with local false", idx.UUID, tg)
			}
		}
	}
	if n != 1 {
		t.Errorf("%s: %d tlp tags, want exactly one", idx.UUID, n)
	}
}

// mispPeerConfig writes a gateway configuration with the given extra
// sources and constituents (YAML list items).
func mispPeerConfig(t *testing.T, r *redistest.Redis, dir, sources, constituents string, extra ...string) string {
	t.Helper()
	writeFile(t, dir, "admin.keys", testAdminKey+"\n")
	writeFile(t, dir, "constituents.yaml", constituents)
	return writeFile(t, dir, "schakel.yaml", fmt.Sprintf(`
listen: 127.0.0.1:0
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
public_url: https://%s.schakel.example
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
tlp: {default: AMBER}
sources:
  - {name: partner-api, type: api, default_tlp: AMBER}
%s
channels:
  webhook: {timeout: 2s, max_attempts: 4}
outbox: {reclaim_idle: 3s, base_backoff: 200ms, poll_interval: 100ms}
constituents_file: constituents.yaml
%s
`, filepath.Base(dir), r.URL, r.Prefix, sources, strings.Join(extra, "\n")))
}

// The push sequence of a MISP 2.5 `cake Server push … full` (and the
// publish-time push) from an upstream MISP that holds a source key.
func TestAcceptanceMISPPushSequence(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	dir := t.TempDir()
	a, b := webhooktest.New(t, ""), webhooktest.New(t, "")
	path := mispPeerConfig(t, r, dir, "  - {name: sector-misp, type: misp, default_tlp: CLEAR}", fmt.Sprintf(`
- {id: a, name: Constituent A, assets: {prefixes: ["192.0.2.0/24"]}, webhooks: [{url: %q, secret: %q}]}
- {id: b, name: Constituent B, sectors: [health], assets: {prefixes: ["198.51.100.0/24"]}, webhooks: [{url: %q, secret: %q}]}
`, a.URL, a.Secret, b.URL, b.Secret))
	g := runGateway(t, path)
	src := issueKey(t, g.base, "/api/v1/sources/sector-misp/keys")
	keyA := issueKey(t, g.base, "/api/v1/constituents/a/keys")

	fixture, err := os.ReadFile("testdata/misp/circl_57c4445b.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Event struct {
			UUID      string `json:"uuid"`
			Timestamp string `json:"timestamp"`
		} `json:"Event"`
	}
	if err := json.Unmarshal(fixture, &doc); err != nil {
		t.Fatal(err)
	}
	u := doc.Event.UUID

	var v struct {
		PermSync bool `json:"perm_sync"`
	}
	g.call("GET", "/servers/getVersion", src, nil, 200, &v)
	if !v.PermSync {
		t.Fatal("a MISP source key is not told it may push (perm_sync)")
	}
	offer := []map[string]any{{"Event": map[string]any{"uuid": u, "timestamp": doc.Event.Timestamp}}}
	var wanted []string
	g.call("POST", "/events/filterEventIdsForPush", src, offer, 200, &wanted)
	if !slices.Equal(wanted, []string{u}) {
		t.Fatalf("filterEventIdsForPush = %v, want [%s]", wanted, u)
	}
	g.call("HEAD", "/events/view/"+u, src, nil, 404, nil)
	var saved struct {
		Event struct{ UUID string }
	}
	g.call("POST", "/events/add/metadata:1", src, fixture, 200, &saved)
	if saved.Event.UUID != u {
		t.Fatalf("add answered %+v", saved)
	}
	// Proposals step: the index as the source sees it.
	g.call("POST", "/events/index", src, map[string]any{"minimal": 1, "published": 1}, 200, nil)
	// A second push: nothing wanted, and re-sending the version is benign.
	g.call("POST", "/events/filterEventIdsForPush", src, offer, 200, &wanted)
	if len(wanted) != 0 {
		t.Errorf("filterEventIdsForPush after the push = %v", wanted)
	}
	g.call("HEAD", "/events/view/"+u, src, nil, 200, nil)
	_, body := g.call("POST", "/events/edit/"+u+"/metadata:1", src, fixture, 403, nil)
	if !strings.Contains(string(body), `"errors":"Event could not be saved: Event in the request not newer than the local copy."`) {
		t.Errorf("re-push answered %s", body)
	}

	// It is routed like any ingest: both constituents' webhooks get the
	// CLEAR event once, and A's MISP can pull it.
	for _, rc := range []*webhooktest.Receiver{a, b} {
		if err := rc.WaitFor(1, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	settle(a, b)
	if n := len(byEvent(a, u)); n != 1 {
		t.Errorf("A received the pushed event %d times, want 1", n)
	}
	var idx []mispIndexEntry
	g.call("POST", "/events/index", keyA, map[string]any{"minimal": 1}, 200, &idx)
	if len(idx) != 1 || idx[0].UUID != u || idx[0].Timestamp != doc.Event.Timestamp {
		t.Errorf("A's index after the push = %+v", idx)
	}

	// Round trip: every shared fixture pushed in comes out of the view
	// with its uuids, values, types, to_ids, tags and TLP.
	for _, name := range []string{"circl_57c4445b.json", "circl_5c0661f7.json", "mispstix_restsearch_events.json"} {
		data, err := os.ReadFile("testdata/misp/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, orig := range fixtureEvents(t, data) {
			t.Run(name+"/"+orig.UUID, func(t *testing.T) {
				body, _ := json.Marshal(map[string]any{"Event": orig.raw})
				_, resp := g.call("POST", "/events/add", src, body, 0, nil)
				if !strings.Contains(string(resp), orig.UUID) && !strings.Contains(string(resp), "not newer") {
					t.Fatalf("push of %s: %s", orig.UUID, resp)
				}
				var out struct {
					Event fixtureEvent `json:"Event"`
				}
				g.call("GET", mispViewPath(orig.UUID), keyA, nil, 200, &out)
				compareRoundTrip(t, orig, out.Event)
			})
		}
	}
}

// fixtureEvent is a MISP event as the fixtures and the server write it.
type fixtureEvent struct {
	UUID      string          `json:"uuid"`
	Attribute []fixtureAttr   `json:"Attribute"`
	Object    []fixtureObject `json:"Object"`
	Tag       []fixtureTag    `json:"Tag"`
	raw       json.RawMessage
}

type fixtureObject struct {
	Attribute []fixtureAttr `json:"Attribute"`
	Deleted   any           `json:"deleted"`
}

type fixtureTag struct {
	Name string `json:"name"`
}

type fixtureAttr struct {
	UUID    string       `json:"uuid"`
	Type    string       `json:"type"`
	Value   string       `json:"value"`
	ToIDs   any          `json:"to_ids"`
	Deleted any          `json:"deleted"`
	Tag     []fixtureTag `json:"Tag"`
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "1" || strings.EqualFold(x, "true")
	case float64:
		return x == 1
	}
	return false
}

func (e fixtureEvent) attrs() []fixtureAttr {
	var out []fixtureAttr
	for _, a := range e.Attribute {
		if !truthy(a.Deleted) {
			out = append(out, a)
		}
	}
	for _, o := range e.Object {
		if truthy(o.Deleted) {
			continue
		}
		for _, a := range o.Attribute {
			if !truthy(a.Deleted) {
				out = append(out, a)
			}
		}
	}
	return out
}

func fixtureEvents(t *testing.T, data []byte) []fixtureEvent {
	t.Helper()
	var wrapped struct {
		Event    json.RawMessage `json:"Event"`
		Response []struct {
			Event json.RawMessage `json:"Event"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil {
		t.Fatal(err)
	}
	raws := []json.RawMessage{wrapped.Event}
	if wrapped.Event == nil {
		raws = nil
		for _, r := range wrapped.Response {
			raws = append(raws, r.Event)
		}
	}
	var out []fixtureEvent
	for _, raw := range raws {
		var e fixtureEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		e.raw = raw
		out = append(out, e)
	}
	return out
}

// compareRoundTrip checks that what the server shows keeps the original's
// identity: MISP stores values normalised (case, IPv6 form), so values are
// compared as MISP would.
func compareRoundTrip(t *testing.T, orig, got fixtureEvent) {
	t.Helper()
	if got.UUID != strings.ToLower(orig.UUID) {
		t.Errorf("event uuid %s, want %s", got.UUID, orig.UUID)
	}
	byUUID := map[string]fixtureAttr{}
	for _, a := range got.attrs() {
		byUUID[a.UUID] = a
	}
	for _, o := range orig.attrs() {
		g, ok := byUUID[strings.ToLower(o.UUID)]
		if !ok {
			t.Errorf("attribute %s (%s %s) lost", o.UUID, o.Type, o.Value)
			continue
		}
		if g.Type != o.Type || !sameMISPValue(o.Type, o.Value, g.Value) || truthy(g.ToIDs) != truthy(o.ToIDs) {
			t.Errorf("attribute %s: %s %q to_ids %v, want %s %q to_ids %v", o.UUID, g.Type, g.Value, g.ToIDs, o.Type, o.Value, o.ToIDs)
		}
		for _, tg := range o.Tag {
			if !slices.ContainsFunc(g.Tag, func(x fixtureTag) bool { return x.Name == tg.Name }) && !strings.HasPrefix(strings.ToLower(tg.Name), "tlp:") {
				t.Errorf("attribute %s lost tag %s", o.UUID, tg.Name)
			}
		}
	}
	var tlp []string
	for _, tg := range got.Tag {
		if strings.HasPrefix(tg.Name, "tlp:") {
			tlp = append(tlp, tg.Name)
		}
	}
	if !slices.Equal(tlp, []string{"tlp:clear"}) {
		t.Errorf("tlp tags %v, want [tlp:clear] (the fixtures are tlp:white or untagged under a CLEAR source)", tlp)
	}
	for _, tg := range orig.Tag {
		if !strings.HasPrefix(strings.ToLower(tg.Name), "tlp:") && !slices.ContainsFunc(got.Tag, func(x fixtureTag) bool { return x.Name == tg.Name }) {
			t.Errorf("event tag %s lost", tg.Name)
		}
	}
}

func sameMISPValue(mispType, orig, got string) bool {
	if mispType == "AS" {
		// MISP stores AS numbers without the prefix.
		orig = strings.TrimPrefix(strings.ToUpper(orig), "AS")
	}
	if strings.EqualFold(orig, got) {
		return true
	}
	op, gp := strings.Split(orig, "|"), strings.Split(got, "|")
	if len(op) != len(gp) {
		return false
	}
	for i := range op {
		oa, err1 := netip.ParseAddr(op[i])
		ga, err2 := netip.ParseAddr(gp[i])
		if !strings.EqualFold(op[i], gp[i]) && (err1 != nil || err2 != nil || oa != ga) {
			return false
		}
	}
	return true
}

// viewCounter is a reverse proxy in front of a real gateway that counts
// the event views asked through it.
type viewCounter struct {
	srv   *httptest.Server
	views atomic.Int64
}

func newViewCounter(t *testing.T, target func() string) *viewCounter {
	c := &viewCounter{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/events/view/") {
			c.views.Add(1)
		}
		u, _ := url.Parse(target())
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasEvent asks a gateway's admin API whether it stores event id.
func hasEvent(t *testing.T, base, id string) (gateway.Event, bool) {
	t.Helper()
	var ev gateway.Event
	req, _ := http.NewRequest("GET", base+"/api/v1/events/"+id, nil)
	req.Header.Set("Authorization", testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ev, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return ev, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return ev, false
	}
	return ev, ev.ID == id
}

// TestAcceptanceMISPPeers runs two Schakel processes. "up" is both the
// upstream MISP that "down" polls (with the key of up's constituent
// "down") and the constituent MISP that down pushes to (down's
// constituent "x" has misp_push with the key of up's MISP source). Pull-in
// and push-out work end to end, and again after down restarts.
func TestAcceptanceMISPPeers(t *testing.T) {
	t.Parallel()
	upRedis, downRedis := redistest.New(t), redistest.New(t)
	upDir, downDir := t.TempDir(), t.TempDir()
	up := runGateway(t, mispPeerConfig(t, upRedis, upDir, "  - {name: down-push, type: misp}",
		"- {id: down, name: Downstream CSIRT, sectors: [health]}\n",
		"misp: {org_name: CSIRT Up, org_uuid: 7a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}"))
	upPull := issueKey(t, up.base, "/api/v1/constituents/down/keys")
	upPush := issueKey(t, up.base, "/api/v1/sources/down-push/keys")
	upSrc := issueKey(t, up.base, "/api/v1/sources/partner-api/keys")
	proxy := newViewCounter(t, func() string { return up.base })

	writeFile(t, downDir, "up.key", upPull+"\n")
	down := runGateway(t, mispPeerConfig(t, downRedis, downDir,
		fmt.Sprintf("  - {name: up-misp, type: misp, url: %q, key_file: up.key, interval: 1s}", proxy.srv.URL),
		fmt.Sprintf("- {id: x, name: Constituent X, sectors: [health], misp_push: {url: %q, key: %q}}\n", up.base, upPush)))
	downSrc := issueKey(t, down.base, "/api/v1/sources/partner-api/keys")

	ingest := func(base, key string, ev map[string]any) {
		t.Helper()
		ev["source"] = map[string]any{"name": "partner-api"}
		mispCall(t, base, "POST", "/api/v1/events", key, ev, 202, nil)
	}
	ip := func(v string) []any { return []any{map[string]any{"type": "ipv4", "value": v}} }
	const (
		e1 = "32000000-0000-4000-8000-000000000001" // up, CLEAR
		e2 = "32000000-0000-4000-8000-000000000002" // up, AMBER for health
		e3 = "32000000-0000-4000-8000-000000000003" // up, RED
		e4 = "32000000-0000-4000-8000-000000000004" // down, AMBER for health → pushed to up
		e5 = "32000000-0000-4000-8000-000000000005" // up, after the restart
		e6 = "32000000-0000-4000-8000-000000000006" // down, after the restart
	)
	ingest(up.base, upSrc, event(e1, "advisory", "CLEAR", map[string]any{"indicators": ip("203.0.113.1")}))
	ingest(up.base, upSrc, event(e2, "intel", "AMBER", map[string]any{"sectors": []any{"health"}, "indicators": ip("203.0.113.2")}))
	ingest(up.base, upSrc, event(e3, "incident", "RED", map[string]any{"addressees": []any{map[string]any{"constituent": "down"}}, "indicators": ip("203.0.113.3")}))

	// Pull-in: down holds e1 and e2 under its MISP source, never e3.
	waitFor(t, "down to pull e1 and e2", 20*time.Second, func() bool {
		_, ok1 := hasEvent(t, down.base, e1)
		_, ok2 := hasEvent(t, down.base, e2)
		return ok1 && ok2
	})
	if ev, _ := hasEvent(t, down.base, e2); ev.Source.Name != "up-misp" || ev.Source.Org != "CSIRT Up" || ev.TLP != gateway.TLPAmber {
		t.Errorf("pulled e2: source %+v tlp %s, want up-misp from CSIRT Up, AMBER", ev.Source, ev.TLP)
	}
	if _, ok := hasEvent(t, down.base, e3); ok {
		t.Fatal("RED event pulled")
	}

	// Push-out: an event down ingests reaches up through misp_push.
	ingest(down.base, downSrc, event(e4, "intel", "AMBER", map[string]any{"sectors": []any{"health"}, "indicators": ip("203.0.113.4")}))
	waitFor(t, "up to receive e4 by misp_push", 20*time.Second, func() bool {
		ev, ok := hasEvent(t, up.base, e4)
		return ok && ev.Source.Name == "down-push"
	})
	if ev, _ := hasEvent(t, up.base, e4); ev.TLP != gateway.TLPAmber || len(ev.Indicators) != 1 || !slices.Equal(ev.Sectors, []string{"health"}) {
		t.Errorf("pushed e4 arrived as %s with %d indicators and sectors %v, want AMBER, 1, [health]", ev.TLP, len(ev.Indicators), ev.Sectors)
	}
	// Pulled events routed to x came back to up as "not newer": still
	// stored once, under their first source.
	if ev, _ := hasEvent(t, up.base, e1); ev.Source.Name != "partner-api" {
		t.Errorf("e1 on up now from %s", ev.Source.Name)
	}

	// Restart down: the poller resumes from its cursor and views nothing
	// it already has; pull-in and push-out go on.
	// e4 kept its sector through MISP (schakel:sector tags), so up routes
	// it to its health constituent "down": down's index on up lists it.
	// Down already holds that version, so it does not view it again: down
	// has viewed e1 and e2 only.
	waitFor(t, "up to list e4 for down", 20*time.Second, func() bool {
		var idx []mispIndexEntry
		mispCall(t, up.base, "POST", "/events/index", upPull, map[string]any{"minimal": 1}, 200, &idx)
		return slices.ContainsFunc(idx, func(e mispIndexEntry) bool { return e.UUID == e4 })
	})
	time.Sleep(1500 * time.Millisecond)
	if n := proxy.views.Load(); n != 2 {
		t.Errorf("down viewed %d events on up, want 2", n)
	}
	before := proxy.views.Load()
	down.restart()
	downSrc = issueKey(t, down.base, "/api/v1/sources/partner-api/keys")
	time.Sleep(2500 * time.Millisecond)
	if n := proxy.views.Load(); n != before {
		t.Errorf("after the restart down viewed %d events again", n-before)
	}
	ingest(up.base, upSrc, event(e5, "advisory", "CLEAR", map[string]any{"indicators": ip("203.0.113.5")}))
	waitFor(t, "down to pull e5 after the restart", 20*time.Second, func() bool { _, ok := hasEvent(t, down.base, e5); return ok })
	ingest(down.base, downSrc, event(e6, "intel", "AMBER", map[string]any{"sectors": []any{"health"}, "indicators": ip("203.0.113.6")}))
	waitFor(t, "up to receive e6 after the restart", 20*time.Second, func() bool { _, ok := hasEvent(t, up.base, e6); return ok })
}
