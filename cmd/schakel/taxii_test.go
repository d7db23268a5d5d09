package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/taxii"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/views"
)

// taxiiGateway is a live gateway spoken to as a TAXII client.
type taxiiGateway struct{ *liveGateway }

func runTAXIIGateway(t *testing.T, path string) *taxiiGateway {
	t.Helper()
	return &taxiiGateway{runLive(t, path)}
}

// taxiiResp is one exchange.
type taxiiResp struct {
	status int
	header http.Header
	body   []byte
}

func (r taxiiResp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d, body %.300s: %v", r.status, r.body, err)
	}
}

// send issues one request with exactly the headers given (pairs).
func (g *taxiiGateway) send(method, path string, body []byte, hdr ...string) taxiiResp {
	g.t.Helper()
	return taxiiSend(g.t, g.base, method, path, body, hdr...)
}

func taxiiSend(t testing.TB, base, method, path string, body []byte, hdr ...string) taxiiResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
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
	return taxiiResp{status: resp.StatusCode, header: resp.Header, body: data}
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// taxii2client is what taxii2-client 2.3 sends on every request.
func taxii2client(key string) []string {
	return []string{"Accept", taxii.MediaTAXII, "User-Agent", "taxii2-client/2.3.0", "Authorization", basic("taxii", key)}
}

const taxiiConstituents = `
- id: a
  name: Constituent A
  assets: {prefixes: ["192.0.2.0/24"], domains: ["a.example"]}
- id: b
  name: Constituent B
  sectors: [health]
  assets: {prefixes: ["198.51.100.0/24"]}
`

// taxiiConfig writes a gateway configuration on r with the given extra
// sources; the source partner-api (type api) is always there.
func taxiiConfig(t *testing.T, dir string, r *redistest.Redis, prefix, sources string) string {
	t.Helper()
	writeFile(t, dir, "admin.keys", testAdminKey+"\n")
	writeFile(t, dir, "constituents.yaml", taxiiConstituents)
	return writeFile(t, dir, "schakel.yaml", fmt.Sprintf(`
listen: 127.0.0.1:0
egress: {allow: [127.0.0.0/8, "::1"]}  # test receivers listen on loopback
redis: {url: %q, prefix: %q}
admin: {keys_file: admin.keys}
tlp: {default: AMBER}
limits: {ingest_per_minute: 100000}
http: {body_limit: 4194304}
outbox: {poll_interval: 100ms}
sources:
  - {name: partner-api, type: api, default_tlp: AMBER, own: true}  # own: the tests' AMBER+STRICT reaches owners only from an own source
  - {name: misp-push, type: api, default_tlp: GREEN}
%s
constituents_file: constituents.yaml
`, r.URL, prefix, sources))
}

func taxiiKey(t *testing.T, base, path string) string {
	t.Helper()
	r := taxiiSend(t, base, "POST", path, nil, "Authorization", testAdminKey)
	var out struct{ Key string }
	r.decode(t, &out)
	if r.status != 201 || len(out.Key) != 40 {
		t.Fatalf("issue key %s: %d %s", path, r.status, r.body)
	}
	return out.Key
}

func taxiiIngest(t *testing.T, base, key string, ev map[string]any) {
	t.Helper()
	body, _ := json.Marshal(ev)
	r := taxiiSend(t, base, "POST", "/api/v1/events", body, "Authorization", key, "Content-Type", "application/json")
	if r.status != 202 && r.status != 200 {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
}

type taxiiEnvelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

type taxiiObject struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	SpecVersion string `json:"spec_version"`
	Name        string `json:"name"`
	Modified    string `json:"modified"`
}

func taxiiObjects(t *testing.T, raw []json.RawMessage) []taxiiObject {
	t.Helper()
	out := make([]taxiiObject, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func reports(objs []taxiiObject) []string {
	var out []string
	for _, o := range objs {
		if o.Type == "report" {
			out = append(out, strings.TrimPrefix(o.ID, "report--"))
		}
	}
	sort.Strings(out)
	return out
}

const apiRoot = taxii.APIRoot

func collPath(id, tail string) string { return apiRoot + "collections/" + id + "/" + tail }

// readAll pages a collection to the end with the given headers.
func readAll(t *testing.T, base, coll, query string, hdr []string) []taxiiObject {
	t.Helper()
	var out []taxiiObject
	next := ""
	for range 10000 {
		q := query
		if next != "" {
			q += "&next=" + url.QueryEscape(next)
		}
		r := taxiiSend(t, base, "GET", collPath(coll, "objects/?"+q), nil, hdr...)
		if r.status != 200 {
			t.Fatalf("objects?%s: %d %s", q, r.status, r.body)
		}
		var env taxiiEnvelope
		r.decode(t, &env)
		out = append(out, taxiiObjects(t, env.Objects)...)
		if !env.More {
			return out
		}
		next = env.Next
	}
	t.Fatal("paging does not end")
	return nil
}

// TestAcceptanceTAXIIConformance walks every endpoint and status of TAXII
// 2.1 §3–5 (the checklist of stix-taxii.md) against a running gateway.
func TestAcceptanceTAXIIConformance(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	dir := t.TempDir()
	g := runTAXIIGateway(t, taxiiConfig(t, dir, r, r.Prefix, ""))
	src := taxiiKey(t, g.base, "/api/v1/sources/partner-api/keys")
	keyA := taxiiKey(t, g.base, "/api/v1/constituents/a/keys")
	taxiiIngest(t, g.base, src, event("c1ea0000-0000-4000-8000-000000000001", "advisory", "CLEAR", map[string]any{
		"indicators": []any{map[string]any{"type": "domain", "value": "evil.example", "detect": true}}}))
	ta := taxii2client(keyA)

	type check struct {
		name, method, path string
		hdr                []string
		body               []byte
		status             int
	}
	post := func(key, ct string) []string {
		return []string{"Accept", taxii.MediaTAXII, "Content-Type", ct, "Authorization", basic("x", key)}
	}
	envelope := []byte(`{"objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--aaaaaaaa-0000-4000-8000-000000000001","created":"2026-11-20T09:00:00.000Z","modified":"2026-11-20T09:00:00.000Z","pattern":"[domain-name:value = 'posted.example']","pattern_type":"stix","valid_from":"2026-11-20T09:00:00Z"}]}`)
	report := "report--c1ea0000-0000-4000-8000-000000000001"
	checks := []check{
		{"discovery", "GET", "/taxii2/", ta, nil, 200},
		{"discovery without slash", "GET", "/taxii2", ta, nil, 200},
		{"api root", "GET", apiRoot, ta, nil, 200},
		{"api root without slash", "GET", strings.TrimSuffix(apiRoot, "/"), ta, nil, 200},
		{"collections", "GET", apiRoot + "collections/", ta, nil, 200},
		{"collection", "GET", collPath(taxii.PublicID, ""), ta, nil, 200},
		{"collection without slash", "GET", strings.TrimSuffix(collPath(taxii.PublicID, ""), "/"), ta, nil, 200},
		{"manifest", "GET", collPath(taxii.PublicID, "manifest/"), ta, nil, 200},
		{"objects", "GET", collPath(taxii.PublicID, "objects/"), ta, nil, 200},
		{"object", "GET", collPath(taxii.PublicID, "objects/"+report+"/"), ta, nil, 200},
		{"object versions", "GET", collPath(taxii.PublicID, "objects/"+report+"/versions/"), ta, nil, 200},
		{"add objects", "POST", collPath(taxii.InboxID, "objects/"), post(src, taxii.MediaTAXII), envelope, 202},
		{"400 malformed filter", "GET", collPath(taxii.PublicID, "objects/?added_after=last-tuesday"), ta, nil, 400},
		{"400 bad limit", "GET", collPath(taxii.PublicID, "manifest/?limit=0"), ta, nil, 400},
		{"400 not JSON", "POST", collPath(taxii.InboxID, "objects/"), post(src, taxii.MediaTAXII), []byte("{"), 400},
		{"401 anonymous", "GET", apiRoot + "collections/", []string{"Accept", taxii.MediaTAXII}, nil, 401},
		{"401 wrong key", "GET", "/taxii2/", []string{"Accept", taxii.MediaTAXII, "Authorization", basic("x", strings.Repeat("k", 40))}, nil, 401},
		{"403 read without can_read", "GET", collPath(taxii.ConstituentID, "objects/"), taxii2client(src), nil, 403},
		{"403 write without can_write", "POST", collPath(taxii.PublicID, "objects/"), post(keyA, taxii.MediaTAXII), envelope, 403},
		{"403 delete with can_read only", "DELETE", collPath(taxii.PublicID, "objects/"+report+"/"), ta, nil, 403},
		{"404 delete without access", "DELETE", collPath(taxii.InboxID, "objects/"+report+"/"), ta, nil, 404},
		{"404 collection", "GET", collPath("6c1f0000-0000-4000-8000-000000000000", ""), ta, nil, 404},
		{"404 object", "GET", collPath(taxii.PublicID, "objects/indicator--00000000-0000-4000-8000-000000000000/"), ta, nil, 404},
		{"404 status", "GET", apiRoot + "status/2d086da7-4bdc-4f91-900e-d77486753710/", taxii2client(src), nil, 404},
		{"404 api root", "GET", "/taxii2/api2/", ta, nil, 404},
		{"405 method", "PUT", collPath(taxii.PublicID, ""), ta, nil, 405},
		{"406 Accept", "GET", apiRoot, []string{"Accept", "application/xml", "Authorization", basic("x", keyA)}, nil, 406},
		{"415 media type", "POST", collPath(taxii.InboxID, "objects/"), post(src, "application/xml"), envelope, 415},
		{"422 not an envelope", "POST", collPath(taxii.InboxID, "objects/"), post(src, taxii.MediaTAXII), []byte(`["x"]`), 422},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			resp := g.send(c.method, c.path, c.body, c.hdr...)
			if resp.status != c.status {
				t.Fatalf("%s %s: %d, want %d: %.300s", c.method, c.path, resp.status, c.status, resp.body)
			}
			// Every answer is TAXII, errors included (taxii2-client checks the
			// Content-Type on all of them). The gateway's body limit answers
			// before TAXII sees the body; that 413 is the gateway's.
			if ct := resp.header.Get("Content-Type"); ct != taxii.MediaTAXII && c.status != 413 {
				t.Errorf("Content-Type %q", ct)
			}
			if c.status >= 400 && c.status != 413 {
				var e taxii.ErrorBody
				resp.decode(t, &e)
				if e.Title == "" || e.HTTPStatus != fmt.Sprint(c.status) {
					t.Errorf("error body %s", resp.body)
				}
			}
			if c.status == 401 && !strings.Contains(resp.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without a Basic challenge: %q", resp.header.Get("WWW-Authenticate"))
			}
			if strings.HasSuffix(c.name, "manifest") || c.name == "objects" || c.name == "object" || c.name == "object versions" {
				first, last := resp.header.Get("X-TAXII-Date-Added-First"), resp.header.Get("X-TAXII-Date-Added-Last")
				if _, err := time.Parse("2006-01-02T15:04:05.000000Z", first); err != nil || last < first {
					t.Errorf("date headers %q %q", first, last)
				}
			}
		})
	}
	// 413: a body over max_content_length is refused as soon as its length
	// is announced (the client may not even get to send it).
	if st := taxiiOversized(t, g.base, collPath(taxii.InboxID, "objects/"), src, 4194304+1); st != 413 {
		t.Errorf("oversized body: %d, want 413", st)
	}
	// Required properties of every resource.
	var disc struct {
		Title    string   `json:"title"`
		Default  string   `json:"default"`
		APIRoots []string `json:"api_roots"`
	}
	g.send("GET", "/taxii2/", nil, ta...).decode(t, &disc)
	if disc.Title == "" || len(disc.APIRoots) != 1 || disc.Default != disc.APIRoots[0] {
		t.Errorf("discovery %+v", disc)
	}
	var root struct {
		Title            string   `json:"title"`
		Versions         []string `json:"versions"`
		MaxContentLength int      `json:"max_content_length"`
	}
	g.send("GET", disc.APIRoots[0], nil, ta...).decode(t, &root)
	if root.Title == "" || !slices.Contains(root.Versions, taxii.MediaTAXII) || root.MaxContentLength != 4194304 {
		t.Errorf("api root %+v", root)
	}
	var status struct {
		ID string `json:"id"`
	}
	resp := g.send("POST", collPath(taxii.InboxID, "objects/"), envelope, post(src, taxii.MediaTAXII)...)
	resp.decode(t, &status)
	// taxii2-client fetches the status at urljoin(collection, "../../status/<id>"): no trailing slash.
	if st := g.send("GET", apiRoot+"status/"+status.ID, nil, taxii2client(src)...); st.status != 200 || !strings.Contains(string(st.body), `"status":"complete"`) {
		t.Errorf("status: %d %s", st.status, st.body)
	}
}

// TestAcceptanceTAXIIPagingAcrossRestart pages a 3,000-object collection
// with limit=100, restarting the gateway halfway and going on with the next
// it gave before: every object once, dates strictly increasing.
func TestAcceptanceTAXIIPagingAcrossRestart(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	g := runTAXIIGateway(t, taxiiConfig(t, t.TempDir(), r, r.Prefix, ""))
	src := taxiiKey(t, g.base, "/api/v1/sources/partner-api/keys")
	keyB := taxiiKey(t, g.base, "/api/v1/constituents/b/keys")
	// 300 events of ten objects: definitions, identity, report, six indicators.
	const events = 300
	for i := range events {
		var inds []any
		for j := range 6 {
			inds = append(inds, map[string]any{"type": "ipv4", "value": fmt.Sprintf("203.0.%d.%d", i%250, j+1+(i/250)*10), "detect": true})
		}
		taxiiIngest(t, g.base, src, event(fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), "advisory", "CLEAR", map[string]any{"indicators": inds}))
	}
	hdr := taxii2client(keyB)
	var ids []string
	seen := map[string]bool{}
	lastDate := ""
	next := ""
	for page := 0; ; page++ {
		if page == events/20 {
			g.restart() // the next from before the restart must still work
		}
		q := "limit=100"
		if next != "" {
			q += "&next=" + url.QueryEscape(next)
		}
		resp := g.send("GET", collPath(taxii.PublicID, "objects/?"+q), nil, hdr...)
		man := g.send("GET", collPath(taxii.PublicID, "manifest/?"+q), nil, hdr...)
		if resp.status != 200 || man.status != 200 {
			t.Fatalf("page %d: %d %d %.200s", page, resp.status, man.status, resp.body)
		}
		var env taxiiEnvelope
		resp.decode(t, &env)
		var mf struct {
			More    bool `json:"more"`
			Objects []struct {
				ID        string `json:"id"`
				DateAdded string `json:"date_added"`
			} `json:"objects"`
		}
		man.decode(t, &mf)
		objs := taxiiObjects(t, env.Objects)
		if len(objs) > 100 || (env.More && len(objs) != 100) || len(mf.Objects) != len(objs) {
			t.Fatalf("page %d: %d objects, manifest %d, more %v", page, len(objs), len(mf.Objects), env.More)
		}
		for i, o := range objs {
			d := mf.Objects[i].DateAdded
			if mf.Objects[i].ID != o.ID || d <= lastDate {
				t.Fatalf("page %d object %d: %s added %s after %s", page, i, o.ID, d, lastDate)
			}
			lastDate = d
			if o.SpecVersion != "2.1" {
				t.Fatalf("object %s without spec_version", o.ID)
			}
			if o.Type == "report" || o.Type == "indicator" {
				if seen[o.ID] {
					t.Fatalf("object %s served twice", o.ID)
				}
				seen[o.ID] = true
			}
			ids = append(ids, o.ID)
		}
		if len(objs) > 0 && resp.header.Get("X-TAXII-Date-Added-Last") != lastDate {
			t.Fatalf("page %d: X-TAXII-Date-Added-Last %q, want %q", page, resp.header.Get("X-TAXII-Date-Added-Last"), lastDate)
		}
		if !env.More {
			break
		}
		next = env.Next
	}
	// Definitions and identities come once per page, not once per event.
	if len(ids) < events*7 || len(seen) != events*7 {
		t.Fatalf("%d objects (%d reports and indicators), want %d reports and indicators", len(ids), len(seen), events*7)
	}
}

// TestAcceptanceTAXIIClients replays what taxii2-client, OpenCTI (its TAXII
// connector and its built-in feed ingestion) and MISP's TAXII push send.
func TestAcceptanceTAXIIClients(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	g := runTAXIIGateway(t, taxiiConfig(t, t.TempDir(), r, r.Prefix, ""))
	src := taxiiKey(t, g.base, "/api/v1/sources/partner-api/keys")
	push := taxiiKey(t, g.base, "/api/v1/sources/misp-push/keys")
	keyA := taxiiKey(t, g.base, "/api/v1/constituents/a/keys")
	for i := range 30 {
		taxiiIngest(t, g.base, src, event(fmt.Sprintf("%08d-0000-4000-8000-00000000000a", i), "advisory", "GREEN", map[string]any{
			"indicators": []any{map[string]any{"type": "url", "value": fmt.Sprintf("http://evil%d.example/x", i), "detect": true}}}))
	}
	ok := func(resp taxiiResp, accept string) {
		t.Helper()
		if resp.status != 200 && resp.status != 202 {
			t.Fatalf("%d %.300s", resp.status, resp.body)
		}
		// taxii2-client: every token of Accept must be in Content-Type.
		ct := strings.Split(strings.ReplaceAll(resp.header.Get("Content-Type"), " ", ""), ";")
		for _, tok := range strings.Split(strings.ReplaceAll(accept, " ", ""), ";") {
			if !slices.Contains(ct, tok) {
				t.Fatalf("Content-Type %q lacks %q", resp.header.Get("Content-Type"), tok)
			}
		}
	}

	t.Run("taxii2-client", func(t *testing.T) {
		h := taxii2client(keyA)
		// Server(url).api_roots → ApiRoot.refresh() → collections → as_pages(get_objects, per_request=10)
		var disc struct {
			APIRoots []string `json:"api_roots"`
		}
		resp := g.send("GET", "/taxii2/", nil, h...)
		ok(resp, taxii.MediaTAXII)
		resp.decode(t, &disc)
		rootURL, _ := url.Parse(g.base + "/taxii2/")
		ref, _ := url.Parse(disc.APIRoots[0])
		root := rootURL.ResolveReference(ref).Path
		ok(g.send("GET", root, nil, h...), taxii.MediaTAXII)
		var cols struct {
			Collections []struct{ ID, Title string } `json:"collections"`
		}
		resp = g.send("GET", root+"collections/", nil, h...)
		ok(resp, taxii.MediaTAXII)
		resp.decode(t, &cols)
		coll := ""
		for _, c := range cols.Collections {
			if c.Title == "community" {
				coll = root + "collections/" + c.ID + "/"
			}
		}
		ok(g.send("GET", coll, nil, h...), taxii.MediaTAXII)
		var objs []taxiiObject
		next := ""
		for page := 0; ; page++ {
			q := "?limit=10"
			if next != "" {
				q += "&next=" + url.QueryEscape(next)
			}
			resp := g.send("GET", coll+"objects/"+q, nil, h...)
			ok(resp, taxii.MediaTAXII)
			var env taxiiEnvelope
			resp.decode(t, &env)
			if env.More && len(env.Objects) != 10 {
				t.Fatalf("page %d holds %d objects: as_pages would shrink its limit", page, len(env.Objects))
			}
			objs = append(objs, taxiiObjects(t, env.Objects)...)
			if !env.More {
				break
			}
			next = env.Next
		}
		if len(reports(objs)) != 30 {
			t.Fatalf("%d reports", len(reports(objs)))
		}
		// get_manifest(added_after=datetime) — trailing zeros dropped — get_object, object_versions.
		ok(g.send("GET", coll+"manifest/?added_after=2020-01-01T00:00:00Z", nil, h...), taxii.MediaTAXII)
		ok(g.send("GET", coll+"objects/"+objs[3].ID+"/", nil, h...), taxii.MediaTAXII)
		ok(g.send("GET", coll+"objects/"+objs[3].ID+"/versions/", nil, h...), taxii.MediaTAXII)
		// add_objects with TokenAuth, then Status at ../../status/<id>.
		inbox := root + "collections/" + taxii.InboxID + "/"
		body := []byte(`{"objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--bbbbbbbb-0000-4000-8000-000000000001","created":"2026-11-20T09:00:00.000Z","modified":"2026-11-20T09:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.77']","pattern_type":"stix","valid_from":"2026-11-20T09:00:00Z"}]}`)
		resp = g.send("POST", inbox+"objects/", body, "Accept", taxii.MediaTAXII, "Content-Type", taxii.MediaTAXII,
			"User-Agent", "taxii2-client/2.3.0", "Authorization", "Token "+src)
		ok(resp, taxii.MediaTAXII)
		var st struct {
			ID           string `json:"id"`
			Status       string `json:"status"`
			TotalCount   int    `json:"total_count"`
			SuccessCount int    `json:"success_count"`
			Successes    []any  `json:"successes"`
		}
		resp.decode(t, &st)
		if st.Status != "complete" || st.TotalCount != 1 || st.SuccessCount != 1 || len(st.Successes) != 1 {
			t.Fatalf("status %+v", st)
		}
		statusURL, _ := url.Parse(g.base + inbox)
		rel, _ := url.Parse("../../status/" + st.ID)
		ok(g.send("GET", statusURL.ResolveReference(rel).Path, nil, "Accept", taxii.MediaTAXII, "Authorization", "Token "+src), taxii.MediaTAXII)
	})

	t.Run("OpenCTI TAXII connector", func(t *testing.T) {
		// Collections are configured as "<api root segment>.<title>"; Token auth;
		// the first object's spec_version decides between 2.0 and 2.1.
		h := []string{"Accept", taxii.MediaTAXII, "User-Agent", "taxii2-client/2.3.0", "Authorization", "Token " + keyA}
		var cols struct {
			Collections []struct{ ID, Title string } `json:"collections"`
		}
		g.send("GET", apiRoot+"collections/", nil, h...).decode(t, &cols)
		id := ""
		for _, c := range cols.Collections {
			if "api."+c.Title == "api.community" {
				id = c.ID
			}
		}
		resp := g.send("GET", collPath(id, "objects/?added_after=2026-01-01T00:00:00.000Z&limit=100"), nil, h...)
		ok(resp, taxii.MediaTAXII)
		var env taxiiEnvelope
		resp.decode(t, &env)
		if objs := taxiiObjects(t, env.Objects); len(objs) == 0 || objs[0].SpecVersion != "2.1" {
			t.Fatalf("first object %+v", objs)
		}
	})

	t.Run("OpenCTI feed ingestion", func(t *testing.T) {
		// GET {uri}/collections/{id}/objects/ with axios params: next and the
		// original added_after together, one page per run; after the last
		// page it keeps X-TAXII-Date-Added-Last cut to milliseconds.
		h := []string{"Accept", taxii.MediaTAXII, "Authorization", "Bearer " + keyA}
		addedAfter := "2026-01-01T00:00:00.000Z"
		next := ""
		var got []taxiiObject
		for run := 0; run < 100; run++ {
			q := url.Values{"added_after": {addedAfter}, "limit": {"7"}}
			if next != "" {
				q.Set("next", next)
			}
			resp := g.send("GET", collPath(taxii.CommunityID, "objects/?"+q.Encode()), nil, h...)
			ok(resp, taxii.MediaTAXII)
			var env taxiiEnvelope
			resp.decode(t, &env)
			got = append(got, taxiiObjects(t, env.Objects)...)
			if env.More && env.Next != "" {
				next = env.Next
				continue
			}
			last, err := time.Parse(time.RFC3339Nano, resp.header.Get("X-TAXII-Date-Added-Last"))
			if err != nil {
				t.Fatalf("last page without X-TAXII-Date-Added-Last: %v", err)
			}
			addedAfter, next = last.Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z"), ""
			break
		}
		// Shared objects recur once per page: compare the events' own.
		own := func(objs []taxiiObject) []taxiiObject {
			return slices.DeleteFunc(objs, func(o taxiiObject) bool {
				return o.Type == "identity" || o.Type == "marking-definition" || o.Type == "extension-definition"
			})
		}
		got = own(got)
		all := own(readAll(t, g.base, taxii.CommunityID, "limit=1000", h))
		if len(got) != len(all) {
			t.Fatalf("feed ingestion read %d objects, the collection holds %d", len(got), len(all))
		}
		// The next run, from the truncated date, may repeat but never miss.
		taxiiIngest(t, g.base, src, event("ffffffff-0000-4000-8000-00000000000a", "advisory", "CLEAR", nil))
		resp := g.send("GET", collPath(taxii.CommunityID, "objects/?added_after="+addedAfter), nil, h...)
		var env taxiiEnvelope
		resp.decode(t, &env)
		if !slices.Contains(reports(taxiiObjects(t, env.Objects)), "ffffffff-0000-4000-8000-00000000000a") {
			t.Errorf("the new event is not after %s", addedAfter)
		}
	})

	t.Run("MISP TAXII push", func(t *testing.T) {
		// Browse: Content-Type on GETs, lower-case basic, limit=50&next=.
		h := []string{"Accept", taxii.MediaTAXII, "Content-Type", taxii.MediaTAXII, "Authorization", "basic " + base64.StdEncoding.EncodeToString([]byte("misp:"+push))}
		var root struct {
			MaxContentLength int `json:"max_content_length"`
		}
		resp := g.send("GET", apiRoot, nil, h...)
		ok(resp, taxii.MediaTAXII)
		resp.decode(t, &root)
		ok(g.send("GET", collPath(taxii.PublicID, "objects/?limit=50&next="), nil, h...), taxii.MediaTAXII)
		// Push: misp-stix output in envelopes no larger than max_content_length,
		// wait_for_completion=False; the collection id is a 36-character UUID.
		raw, err := os.ReadFile("../../connectors/taxii/testdata/misp-stix-test_events_collection_stix21.json")
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []json.RawMessage `json:"objects"`
		}
		json.Unmarshal(raw, &bundle)
		body, _ := json.Marshal(map[string]any{"objects": bundle.Objects})
		if len(body) > root.MaxContentLength || len(taxii.InboxID) != 36 {
			t.Fatal("fixture does not fit")
		}
		resp = g.send("POST", collPath(taxii.InboxID, "objects/"), body, h...)
		ok(resp, taxii.MediaTAXII)
		if !strings.Contains(string(resp.body), `"failure_count":0`) {
			t.Errorf("push status %s", resp.body)
		}
		// The pushed groupings are events of source misp-push (default TLP:GREEN).
		objs := readAll(t, g.base, taxii.CommunityID, "match[type]=report", taxii2client(keyA))
		// 30 GREEN events, the CLEAR one of the feed run, the four groupings;
		// the indicator taxii2-client posted is partner-api's (TLP:AMBER).
		if n := len(reports(objs)); n != 30+1+4 {
			t.Errorf("community holds %d reports after the push, want 35", n)
		}
	})
}

// TestAcceptanceTAXIIVisibility: public holds CLEAR only, community up to
// GREEN, constituent exactly the caller's view (the one /events/index
// serves); anonymous callers get 401.
func TestAcceptanceTAXIIVisibility(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	g := runTAXIIGateway(t, taxiiConfig(t, t.TempDir(), r, r.Prefix, ""))
	src := taxiiKey(t, g.base, "/api/v1/sources/partner-api/keys")
	keys := map[string]string{"a": taxiiKey(t, g.base, "/api/v1/constituents/a/keys"), "b": taxiiKey(t, g.base, "/api/v1/constituents/b/keys")}
	const (
		clear  = "c1ea0000-0000-4000-8000-000000000001"
		green  = "91ee0000-0000-4000-8000-000000000002"
		health = "4ea10000-0000-4000-8000-000000000003"
		notif  = "a0710000-0000-4000-8000-000000000004"
		red    = "4ed00000-0000-4000-8000-000000000005"
		strict = "57410000-0000-4000-8000-000000000006"
	)
	ind := func(v string) map[string]any { return map[string]any{"type": "ipv4", "value": v, "detect": true} }
	taxiiIngest(t, g.base, src, event(clear, "advisory", "CLEAR", map[string]any{"indicators": []any{ind("203.0.113.1")}}))
	taxiiIngest(t, g.base, src, event(green, "advisory", "GREEN", nil))
	taxiiIngest(t, g.base, src, event(health, "intel", "AMBER", map[string]any{"sectors": []any{"health"}}))
	taxiiIngest(t, g.base, src, event(notif, "notification", "AMBER", map[string]any{"indicators": []any{ind("192.0.2.10"), ind("198.51.100.7")}}))
	taxiiIngest(t, g.base, src, event(red, "incident", "RED", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}))
	taxiiIngest(t, g.base, src, event(strict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}))

	sorted := func(s ...string) []string { sort.Strings(s); return s }
	cases := []struct {
		coll, key string
		want      []string
	}{
		{taxii.PublicID, "a", sorted(clear)},
		{taxii.CommunityID, "b", sorted(clear, green)},
		{taxii.ConstituentID, "a", sorted(clear, green, notif, strict)},
		{taxii.ConstituentID, "b", sorted(clear, green, health, notif)},
	}
	for _, c := range cases {
		objs := readAll(t, g.base, c.coll, "limit=3", taxii2client(keys[c.key]))
		if got := reports(objs); !slices.Equal(got, c.want) {
			t.Errorf("%s for %s: %v, want %v", c.coll, c.key, got, c.want)
		}
		for _, o := range objs {
			if strings.Contains(o.ID, red) || o.ID == "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1" {
				t.Errorf("TLP:RED served: %s", o.ID)
			}
		}
	}
	// constituent = the view /events/index serves that key, in its order.
	for c, key := range keys {
		es, _, err := g.g.Views.List(t.Context(), views.Viewer{Audience: views.Constituent, Constituent: c}, views.Query{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, e := range es {
			want = append(want, e.ID)
		}
		var got []string
		for _, o := range readAll(t, g.base, taxii.ConstituentID, "match[type]=report&limit=2", taxii2client(key)) {
			got = append(got, strings.TrimPrefix(o.ID, "report--"))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: constituent collection %v, view %v", c, got, want)
		}
		// And the MISP server API's index for the same key, where it is wired.
		idx := taxiiSend(t, g.base, "POST", "/events/index", []byte(`{"minimal": 1}`), "Authorization", key,
			"Accept", "application/json", "Content-Type", "application/json")
		if idx.status == 404 {
			t.Logf("no /events/index in this build; compared with the view only")
			continue
		}
		var entries []struct {
			UUID string `json:"uuid"`
		}
		idx.decode(t, &entries)
		var uuids []string
		for _, e := range entries {
			uuids = append(uuids, e.UUID)
		}
		sort.Strings(uuids)
		g2 := slices.Clone(got)
		sort.Strings(g2)
		if !slices.Equal(uuids, g2) {
			t.Errorf("%s: /events/index %v, constituent collection %v", c, uuids, g2)
		}
	}
	// Anonymous: 401 everywhere.
	for _, p := range []string{"/taxii2/", apiRoot, apiRoot + "collections/", collPath(taxii.PublicID, "objects/")} {
		if resp := g.send("GET", p, nil, "Accept", taxii.MediaTAXII); resp.status != 401 {
			t.Errorf("anonymous %s: %d", p, resp.status)
		}
	}
}

// TestAcceptanceTAXIIPollsASecondSchakel: gateway D polls gateway U's
// community collection (source type taxii), ingests what U adds once, and
// resumes after a restart without ingesting anything twice.
func TestAcceptanceTAXIIPollsASecondSchakel(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	up := runTAXIIGateway(t, taxiiConfig(t, t.TempDir(), r, r.Prefix+"u", ""))
	src := taxiiKey(t, up.base, "/api/v1/sources/partner-api/keys")
	keyB := taxiiKey(t, up.base, "/api/v1/constituents/b/keys")
	for i := range 5 {
		taxiiIngest(t, up.base, src, event(fmt.Sprintf("%08d-0000-4000-8000-0000000000bb", i), "advisory", "GREEN", map[string]any{
			"indicators": []any{map[string]any{"type": "domain", "value": fmt.Sprintf("c2-%d.example", i), "detect": true}}}))
	}
	taxiiIngest(t, up.base, src, event("a0000000-0000-4000-8000-0000000000bb", "intel", "AMBER", nil)) // not community: never polled
	dir := t.TempDir()
	writeFile(t, dir, "up.pw", keyB+"\n")
	down := runTAXIIGateway(t, taxiiConfig(t, dir, r, r.Prefix+"d", fmt.Sprintf(
		"  - {name: up-taxii, type: taxii, url: %q, collection: %s, username: schakel-d, password_file: up.pw, interval: 300ms, default_tlp: AMBER}",
		up.base+apiRoot, taxii.CommunityID)))

	stored := func() map[string]int {
		out := map[string]int{}
		_ = down.g.Store.EachEventID(t.Context(), func(id string) error {
			vs, err := down.g.Store.Versions(t.Context(), id)
			out[id] = len(vs)
			return err
		})
		return out
	}
	wait := func(n int) map[string]int {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := stored()
			if len(got) >= n || time.Now().After(deadline) {
				return got
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	got := wait(5)
	if len(got) != 5 {
		t.Fatalf("downstream holds %v, want the 5 GREEN events", got)
	}
	for id, n := range got {
		ev, err := down.g.Store.Event(t.Context(), id)
		if n != 1 || err != nil || ev.TLP != "GREEN" || ev.Source.Name != "up-taxii" || len(ev.Indicators) != 1 {
			t.Errorf("event %s: %d versions, %+v, %v", id, n, ev, err)
		}
	}
	// Restart: the cursor is in Redis, nothing is ingested again.
	down.restart()
	time.Sleep(time.Second)
	if again := stored(); len(again) != 5 || !mapsEqual(again, got) {
		t.Errorf("after a restart: %v", again)
	}
	// What U adds next arrives once; an update arrives as a second version.
	taxiiIngest(t, up.base, src, event("b0000000-0000-4000-8000-0000000000bb", "advisory", "CLEAR", nil))
	upd := event("00000000-0000-4000-8000-0000000000bb", "advisory", "GREEN", map[string]any{
		"modified":   "2026-11-21T10:00:00Z",
		"indicators": []any{map[string]any{"type": "domain", "value": "c2-0.example", "detect": true}}})
	taxiiIngest(t, up.base, src, upd)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s := stored(); len(s) == 6 && s["00000000-0000-4000-8000-0000000000bb"] == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few more polls
	final := stored()
	want := maps5(got)
	want["b0000000-0000-4000-8000-0000000000bb"] = 1
	want["00000000-0000-4000-8000-0000000000bb"] = 2
	if !mapsEqual(final, want) {
		t.Errorf("downstream %v, want %v", final, want)
	}
}

// taxiiOversized announces a body of n bytes and reads the answer without
// sending it.
func taxiiOversized(t *testing.T, base, path, key string, n int) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\nContent-Type: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n",
		path, strings.TrimPrefix(base, "http://"), taxii.MediaTAXII, taxii.MediaTAXII, basic("x", key), n)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("oversized POST: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func maps5(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
