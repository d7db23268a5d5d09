package misp_test

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// The event set of the visibility tests; what each viewer may see follows
// ARCHITECTURE §4.
const (
	idClear  = "10000000-0000-4000-8000-000000000001"
	idGreen  = "10000000-0000-4000-8000-000000000002"
	idHealth = "10000000-0000-4000-8000-000000000003" // AMBER, sector health (B)
	idNotif  = "10000000-0000-4000-8000-000000000004" // AMBER notification: A and B own one IP each
	idRed    = "10000000-0000-4000-8000-000000000005"
	idStrict = "10000000-0000-4000-8000-000000000006" // AMBER+STRICT addressed to A, from an own source
	idAmber  = "10000000-0000-4000-8000-000000000007" // AMBER, nobody concerned (held)
)

func seed(e *env) {
	e.ingest(ev(idClear, gateway.KindAdvisory, gateway.TLPClear, t0, "203.0.113.1"))
	e.ingest(ev(idGreen, gateway.KindIntel, gateway.TLPGreen, t0.Add(time.Minute), "203.0.113.2"))
	h := ev(idHealth, gateway.KindIntel, gateway.TLPAmber, t0.Add(2*time.Minute), "203.0.113.3")
	h.Sectors = []string{"health"}
	e.ingest(h)
	e.ingest(ev(idNotif, gateway.KindNotification, gateway.TLPAmber, t0.Add(3*time.Minute), "192.0.2.10", "198.51.100.7", "203.0.113.9"))
	red := ev(idRed, gateway.KindIncident, gateway.TLPRed, t0.Add(4*time.Minute), "192.0.2.66")
	red.Addressees = []gateway.Addressee{{Constituent: "a"}}
	e.ingest(red)
	s := ev(idStrict, gateway.KindIntel, gateway.TLPAmberStrict, t0.Add(5*time.Minute), "203.0.113.5")
	s.Addressees = []gateway.Addressee{{Constituent: "a"}}
	// Only AMBER+STRICT the relay's own analysts author reaches A.
	e.ingestFrom(gateway.Source{Name: "partner", Own: true}, s)
	e.ingest(ev(idAmber, gateway.KindIntel, gateway.TLPAmber, t0.Add(6*time.Minute), "203.0.113.7"))
}

func TestHandshake(t *testing.T) {
	e := newEnv(t)
	var v struct {
		Version  string `json:"version"`
		PermSync bool   `json:"perm_sync"`
		UUID     string `json:"uuid"`
	}
	e.call("GET", "/servers/getVersion", e.keyA, nil, "User-Agent", "MISP 2.4.199 - #abc").must(t, 200, &v)
	if v.Version != "2.4.199" || v.PermSync || v.UUID == "" {
		t.Errorf("constituent getVersion = %+v, want mirrored 2.4.199, perm_sync false", v)
	}
	e.call("GET", "/servers/getVersion.json", e.keySrc, nil, "User-Agent", "curl/8").must(t, 200, &v)
	if v.Version != "2.5.1" || !v.PermSync {
		t.Errorf("source getVersion = %+v, want default 2.5.1 and perm_sync", v)
	}

	var me map[string]json.RawMessage
	e.call("GET", "/users/view/me.json", e.keyA, nil).must(t, 200, &me)
	for _, k := range []string{"User", "Role", "UserSetting", "Organisation"} {
		if _, ok := me[k]; !ok {
			t.Errorf("users/view/me lacks %s: %s", k, me)
		}
	}
	if !strings.Contains(string(me["Organisation"]), "Constituent A") {
		t.Errorf("users/view/me organisation = %s, want the constituent", me["Organisation"])
	}

	test := strings.Repeat("x", 6000)
	var pt struct {
		Body struct {
			TestString string `json:"testString"`
		} `json:"body"`
		Headers map[string]string `json:"headers"`
	}
	e.call("POST", "/servers/postTest", e.keyA, map[string]string{"testString": test}).must(t, 200, &pt)
	if pt.Body.TestString != test || pt.Headers["Authorization"] != "OK" {
		t.Errorf("postTest did not echo: %d bytes, headers %v", len(pt.Body.TestString), pt.Headers)
	}

	for _, tc := range []struct {
		name, key string
		hdr       []string
		want      int
	}{
		{"no key", "", nil, 401},
		{"wrong key", "NotAKeyNotAKeyNotAKeyNotAKeyNotAKey12345", nil, 401},
		{"X-MISP-AUTH", "", []string{"X-MISP-AUTH", e.keyB}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("GET", "/servers/getVersion", tc.key, nil, tc.hdr...)
			if r.code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.code, tc.want, r.body)
			}
			if tc.want != 200 {
				var me struct{ Name, Message, URL string }
				r.must(t, tc.want, &me)
				if me.Name == "" || me.URL != "/servers/getVersion" {
					t.Errorf("error is not MISP-shaped: %s", r.body)
				}
			}
		})
	}

	for _, path := range []string{"/shadow_attributes/index/all:1/timestamp:1700000000/limit:1000/page:1/deleted[]:0/deleted[]:1.json"} {
		if r := e.call("GET", path, e.keyA, nil); r.code != 200 || strings.TrimSpace(string(r.body)) != "[]" {
			t.Errorf("GET %s = %d %s, want 200 []", path, r.code, r.body)
		}
	}
	if r := e.call("POST", "/galaxy_clusters/restSearch", e.keyA, map[string]int{"published": 1, "minimal": 1, "custom": 1}); r.code != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("galaxy_clusters/restSearch = %d %s, want []", r.code, r.body)
	}
	if r := e.call("POST", "/events/indexes", e.keyA, nil); r.code != 404 {
		t.Errorf("a path sharing only a prefix answered %d", r.code)
	}
}

func TestIndexVisibility(t *testing.T) {
	e := newEnv(t)
	seed(e)
	for _, tc := range []struct {
		name string
		key  string
		want []string
	}{
		{"A", e.keyA, []string{idClear, idGreen, idNotif, idStrict}},
		{"B", e.keyB, []string{idClear, idGreen, idHealth, idNotif}},
		{"source key sees CLEAR only", e.keySrc, []string{idClear}},
		{"admin key sees nothing extra", adminKey, []string{idClear}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.index(tc.key, nil)
			if g, w := slices.Sorted(maps.Keys(uuids(got))), slices.Sorted(slices.Values(tc.want)); !slices.Equal(g, w) {
				t.Fatalf("index = %v, want %v", g, w)
			}
			for _, x := range got {
				if !x.Published || x.SightingTimestamp != "0" || x.OrgcUUID != testOrg.UUID || x.ID == "" || x.Timestamp == "" {
					t.Errorf("minimal entry %+v lacks what MISP's pull reads", x)
				}
				m, code := e.view(tc.key, x.UUID)
				if code != 200 || m.UUID != x.UUID || m.Timestamp != x.Timestamp {
					t.Errorf("listed %s: view = %d %s@%s", x.UUID, code, m.UUID, m.Timestamp)
				}
				if tags := m.tlpTags(); len(tags) != 1 || tags[0] != strings.ToLower(tags[0]) {
					t.Errorf("%s: tlp tags %v, want exactly one lower-case", x.UUID, tags)
				}
				for _, tg := range m.Tag {
					if tg.Local == nil || *tg.Local {
						t.Errorf("%s: tag %s without \"local\": false", x.UUID, tg.Name)
					}
				}
			}
		})
	}

	// The notification shows each owner only its own attribute.
	a, _ := e.view(e.keyA, idNotif)
	b, _ := e.view(e.keyB, idNotif)
	if got := a.values(); len(got) != 1 || !got["192.0.2.10"] {
		t.Errorf("A sees notification values %v, want only 192.0.2.10", got)
	}
	if got := b.values(); len(got) != 1 || !got["198.51.100.7"] {
		t.Errorf("B sees notification values %v, want only 198.51.100.7", got)
	}
	// The full index counts the viewer's attributes, not the event's.
	for _, x := range e.index(e.keyA, map[string]any{"published": 1}) {
		if x.UUID == idNotif && x.AttributeCount != "1" {
			t.Errorf("full index shows A attribute_count %s of the notification, want 1", x.AttributeCount)
		}
	}

	// Invisible and missing events answer the same.
	for _, id := range []string{idRed, idHealth, uuidN(999)} {
		_, code := e.view(e.keyA, id)
		r := e.call("GET", "/events/view/"+id, e.keyA, nil)
		var me struct{ Name, Message, URL string }
		if code != 404 || json.Unmarshal(r.body, &me) != nil || me.Name != "Invalid event" {
			t.Errorf("view %s as A = %d %s, want MISP 404 Invalid event", id, code, r.body)
		}
		if h := e.call("HEAD", "/events/view/"+id, e.keyA, nil); h.code != 404 {
			t.Errorf("HEAD %s as A = %d, want 404", id, h.code)
		}
	}
	if h := e.call("HEAD", "/events/view/"+idClear, e.keyA, nil); h.code != 200 {
		t.Errorf("HEAD visible event = %d, want 200", h.code)
	}
}

func TestIndexETagAndFilters(t *testing.T) {
	e := newEnv(t)
	seed(e)
	r := e.call("POST", "/events/index", e.keyB, map[string]any{"minimal": 1, "published": 1}, "If-None-Match", `""`).must(t, 200, nil)
	etag := r.header.Get("ETag")
	if etag == "" || r.header.Get("X-Result-Count") != "4" {
		t.Fatalf("ETag %q, X-Result-Count %q", etag, r.header.Get("X-Result-Count"))
	}
	if r := e.call("POST", "/events/index", e.keyB, map[string]any{"minimal": 1, "published": 1}, "If-None-Match", etag); r.code != 304 {
		t.Fatalf("second index with the ETag = %d, want 304", r.code)
	}
	// A different viewer, or a change, is a different listing.
	if r := e.call("POST", "/events/index", e.keyA, map[string]any{"minimal": 1, "published": 1}, "If-None-Match", etag); r.code != 200 {
		t.Errorf("A with B's ETag = %d, want 200", r.code)
	}
	newer := ev(idGreen, gateway.KindIntel, gateway.TLPGreen, t0.Add(time.Hour), "203.0.113.2", "203.0.113.22")
	e.ingest(newer)
	if r := e.call("POST", "/events/index", e.keyB, map[string]any{"minimal": 1, "published": 1}, "If-None-Match", etag); r.code != 200 {
		t.Errorf("index after an update with the old ETag = %d, want 200", r.code)
	}

	for _, tc := range []struct {
		name    string
		path    string
		filters map[string]any
		want    []string
	}{
		{"pull rule tags", "/events/index", map[string]any{"minimal": 1, "tag": []string{"tlp:clear", "tlp:green"}}, []string{idClear, idGreen}},
		{"NOT tag", "/events/index", map[string]any{"minimal": 1, "tag": []string{"!tlp:amber"}}, []string{idClear, idGreen}},
		{"pipe list", "/events/index", map[string]any{"minimal": 1, "tag": "tlp:clear|tlp:amber"}, []string{idClear, idHealth, idNotif}},
		{"timestamp", "/events/index", map[string]any{"minimal": 1, "timestamp": t0.Add(30 * time.Minute).Unix()}, []string{idGreen}},
		{"named params", "/events/index/timestamp:" + fmt.Sprint(t0.Add(30*time.Minute).Unix()) + ".json", map[string]any{"minimal": 1}, []string{idGreen}},
		{"org", "/events/index", map[string]any{"minimal": 1, "org": []string{"!" + testOrg.Name}}, nil},
		{"unpublished", "/events/index", map[string]any{"minimal": 1, "published": 0}, nil},
		{"wildcard tag", "/events/index", map[string]any{"minimal": 1, "tags": []string{"tlp:c%"}}, []string{idClear}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []indexEntry
			e.call("POST", tc.path, e.keyB, tc.filters).must(t, 200, &got)
			if g, w := slices.Sorted(maps.Keys(uuids(got))), slices.Sorted(slices.Values(tc.want)); !slices.Equal(g, w) {
				t.Fatalf("index = %v, want %v", g, w)
			}
		})
	}
	if r := e.call("POST", "/events/index", e.keyB, map[string]any{"timestamp": "yesterday"}); r.code != 400 || !strings.Contains(string(r.body), "timestamp") {
		t.Errorf("bad timestamp filter = %d %s, want 400 naming timestamp", r.code, r.body)
	}
	// Decoder errors reach the client without Go type names.
	for _, b := range []any{[]int{1}, map[string]any{"request": "x"}} {
		if r := e.call("POST", "/events/index", e.keyB, b); r.code != 400 || strings.Contains(string(r.body), "Go ") || strings.Contains(string(r.body), "misp.params") {
			t.Errorf("body %v = %d %s, want 400 in plain words", b, r.code, r.body)
		}
	}
	offer := []map[string]any{{"Event": "x"}}
	if r := e.call("POST", "/events/filterEventIdsForPush", e.keySrc, offer); r.code != 400 || strings.Contains(string(r.body), "Go ") {
		t.Errorf("bad push offer = %d %s, want 400 in plain words", r.code, r.body)
	}
	var paged []indexEntry
	e.call("POST", "/events/index", e.keyB, map[string]any{"limit": 2, "page": 2}).must(t, 200, &paged)
	if len(paged) != 2 || paged[0].Info == "" {
		t.Errorf("limit 2 page 2 gave %d entries: %+v", len(paged), paged)
	}
}

func TestLargeEventServedInParts(t *testing.T) {
	e := newEnv(t)
	const n = 2*10000 + 500
	big := ev(uuidN(7), gateway.KindIntel, gateway.TLPGreen, t0)
	for i := range n {
		big.Indicators = append(big.Indicators, gateway.Indicator{Type: gateway.TypeIPv4, Value: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)})
	}
	e.ingest(big)
	got := e.index(e.keyA, map[string]any{"published": 1})
	if len(got) != 3 {
		t.Fatalf("index lists %d events for a %d-attribute event, want 3 parts", len(got), n)
	}
	seen := map[string]bool{}
	total := 0
	for i, x := range got {
		if i == 0 && x.UUID != uuidN(7) {
			t.Errorf("part 1 uuid %s, want the event's", x.UUID)
		}
		if i > 0 && x.ExtendsUUID != uuidN(7) {
			t.Errorf("part %d extends %q, want the event", i+1, x.ExtendsUUID)
		}
		if !strings.Contains(x.Info, fmt.Sprintf("(part %d of 3)", i+1)) {
			t.Errorf("part %d info %q", i+1, x.Info)
		}
		for _, key := range []string{x.UUID, x.ID} {
			m, code := e.view(e.keyA, key)
			if code != 200 {
				t.Fatalf("view part %s: %d", key, code)
			}
			if len(m.attrs()) > 10000 {
				t.Errorf("part %s carries %d attributes", key, len(m.attrs()))
			}
			if key == x.ID {
				continue
			}
			for _, a := range m.attrs() {
				if seen[a.UUID] {
					t.Fatalf("attribute uuid %s in two parts", a.UUID)
				}
				seen[a.UUID] = true
			}
			total += len(m.attrs())
		}
	}
	if total != n {
		t.Errorf("parts carry %d attributes, want %d", total, n)
	}
}

// mispDoc builds an event as MISP 2.5 pushes it.
func mispDoc(uuid string, ts int64, tags []string, attrs ...[3]string) []byte {
	var tg []map[string]any
	for _, t := range tags {
		tg = append(tg, map[string]any{"name": t, "colour": "#ffffff", "exportable": true, "local": false})
	}
	var as []map[string]any
	for _, a := range attrs {
		as = append(as, map[string]any{"uuid": a[0], "type": a[1], "category": "Network activity", "value": a[2],
			"to_ids": true, "distribution": "5", "timestamp": fmt.Sprint(ts)})
	}
	doc, _ := json.Marshal(map[string]any{"Event": map[string]any{
		"uuid": uuid, "info": "pushed " + uuid, "date": "2026-11-20", "threat_level_id": "2", "analysis": "2",
		"distribution": "3", "published": true, "timestamp": fmt.Sprint(ts), "publish_timestamp": fmt.Sprint(ts), "locked": true,
		"Orgc": map[string]any{"name": "NCSC-NL", "uuid": "11111111-2222-4333-8444-555555555555"},
		"Tag":  tg, "Attribute": as, "Object": []any{}, "EventReport": []any{},
	}})
	return doc
}

func TestPushIn(t *testing.T) {
	e := newEnv(t)
	u := "20000000-0000-4000-8000-000000000001"
	ts := t0.Unix()
	doc := mispDoc(u, ts, []string{"tlp:clear", "ransomware"}, [3]string{"20000000-0000-4000-8000-0000000000a1", "ip-dst", "203.0.113.50"})

	var want []string
	offer := []map[string]any{{"Event": map[string]any{"uuid": u, "timestamp": fmt.Sprint(ts)}}}
	e.call("POST", "/events/filterEventIdsForPush", e.keySrc, offer).must(t, 200, &want)
	if len(want) != 1 || want[0] != u {
		t.Fatalf("filterEventIdsForPush = %v, want the unknown event", want)
	}
	if h := e.call("HEAD", "/events/view/"+u, e.keySrc, nil); h.code != 404 {
		t.Fatalf("HEAD unknown = %d, want 404", h.code)
	}
	var saved struct {
		Event struct{ ID, UUID, Timestamp string }
	}
	e.call("POST", "/events/add/metadata:1", e.keySrc, doc).must(t, 200, &saved)
	if saved.Event.UUID != u || saved.Event.ID == "" {
		t.Fatalf("add reply %+v", saved)
	}
	stored, err := e.st.Event(t.Context(), u)
	if err != nil || stored.Source.Name != "upstream" || stored.TLP != gateway.TLPClear || len(stored.Indicators) != 1 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if h := e.call("HEAD", "/events/view/"+u, e.keySrc, nil); h.code != 200 {
		t.Errorf("HEAD after add = %d, want 200", h.code)
	}
	// Another MISP source never learns of it.
	e.call("POST", "/events/filterEventIdsForPush", e.keySrc, offer).must(t, 200, &want)
	if len(want) != 0 {
		t.Errorf("filterEventIdsForPush after add = %v, want none", want)
	}

	// Re-pushing the same version is MISP's benign refusal.
	for _, path := range []string{"/events/add/metadata:1", "/events/edit/" + u + "/metadata:1"} {
		r := e.call("POST", path, e.keySrc, doc)
		var se struct {
			Errors string `json:"errors"`
		}
		if r.code != 403 || json.Unmarshal(r.body, &se) != nil ||
			se.Errors != "Event could not be saved: Event in the request not newer than the local copy." {
			t.Errorf("re-push %s = %d %s", path, r.code, r.body)
		}
	}

	// A newer version is an edit; gzip bodies are read.
	newer := mispDoc(u, ts+60, []string{"tlp:green"}, [3]string{"20000000-0000-4000-8000-0000000000a1", "ip-dst", "203.0.113.50"},
		[3]string{"20000000-0000-4000-8000-0000000000a2", "domain", "evil.example.net"})
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(newer)
	zw.Close()
	offer[0]["Event"].(map[string]any)["timestamp"] = fmt.Sprint(ts + 60)
	e.call("POST", "/events/filterEventIdsForPush", e.keySrc, offer).must(t, 200, &want)
	if len(want) != 1 {
		t.Errorf("filterEventIdsForPush for a newer version = %v", want)
	}
	e.call("POST", "/events/edit/"+u+"/metadata:1", e.keySrc, zb.Bytes(), "Content-Encoding", "gzip").must(t, 200, nil)
	stored, _ = e.st.Event(t.Context(), u)
	if stored.TLP != gateway.TLPGreen || len(stored.Indicators) != 2 {
		t.Errorf("after edit: tlp %s, %d indicators", stored.TLP, len(stored.Indicators))
	}
	// It is then routed like any ingest: A sees it in its view.
	if m, code := e.view(e.keyA, u); code != 200 || len(m.attrs()) != 2 {
		t.Errorf("A's view of the pushed event: %d, %d attributes", code, len(m.attrs()))
	}

	// An event another source delivered is never overwritten by a push.
	theirs := uuidN(77)
	e.ingest(ev(theirs, gateway.KindIntel, gateway.TLPAmber, t0, "203.0.113.77"))
	offer = []map[string]any{{"Event": map[string]any{"uuid": theirs, "timestamp": ts + 3600}}}
	e.call("POST", "/events/filterEventIdsForPush", e.keySrc, offer).must(t, 200, &want)
	if len(want) != 0 {
		t.Errorf("filterEventIdsForPush offers another source's event: %v", want)
	}
	if r := e.call("POST", "/events/add", e.keySrc, mispDoc(theirs, ts+3600, []string{"tlp:clear"})); r.code != 403 || !strings.Contains(string(r.body), "not newer than the local copy") {
		t.Errorf("push over another source's event = %d %s, want the benign 403", r.code, r.body)
	}
	if got, _ := e.st.Event(t.Context(), theirs); got.Source.Name != "partner" || got.TLP != gateway.TLPAmber {
		t.Errorf("another source's event now %s from %s", got.TLP, got.Source.Name)
	}

	for _, tc := range []struct {
		name, path, key string
		body            any
		want            int
		says            string
	}{
		{"constituent key", "/events/add", e.keyA, doc, 403, "MISP source"},
		{"non-MISP source", "/events/add", e.keyOther, doc, 403, "not a MISP source"},
		{"path names another event", "/events/edit/" + uuidN(1), e.keySrc, mispDoc(u, ts+120, nil), 403, "the path names"},
		{"not JSON", "/events/add", e.keySrc, "{nope", 400, "body"},
		{"filter not a list", "/events/filterEventIdsForPush", e.keySrc, map[string]any{"uuid": u}, 400, "body"},
		{"filter bad uuid", "/events/filterEventIdsForPush", e.keySrc, []map[string]any{{"Event": map[string]any{"uuid": "x", "timestamp": 1}}}, 400, "body[0].Event.uuid"},
		{"unknown encoding", "/events/add", e.keySrc, doc, 415, "Content-Encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.want == 415 {
				hdr = []string{"Content-Encoding", "compress"}
			}
			r := e.call("POST", tc.path, tc.key, tc.body, hdr...)
			if r.code != tc.want || !strings.Contains(string(r.body), tc.says) {
				t.Errorf("= %d %s, want %d naming %q", r.code, r.body, tc.want, tc.says)
			}
		})
	}
}

func TestRestSearchVisibility(t *testing.T) {
	e := newEnv(t)
	seed(e)
	type attrResp struct {
		Response struct {
			Attribute []struct {
				Value     string `json:"value"`
				Type      string `json:"type"`
				EventID   string `json:"event_id"`
				EventUUID string `json:"event_uuid"`
				Event     struct {
					UUID string `json:"uuid"`
				} `json:"Event"`
			} `json:"Attribute"`
		} `json:"response"`
	}
	attrs := func(key string, body map[string]any) []string {
		t.Helper()
		var r attrResp
		e.call("POST", "/attributes/restSearch", key, body).must(t, 200, &r)
		var out []string
		for _, a := range r.Response.Attribute {
			out = append(out, a.Value)
		}
		slices.Sort(out)
		return out
	}
	// The same visibility as /events/index, attribute by attribute.
	if got, want := attrs(e.keyA, map[string]any{"returnFormat": "json"}), []string{"192.0.2.10", "203.0.113.1", "203.0.113.2", "203.0.113.5"}; !slices.Equal(got, want) {
		t.Errorf("A attributes %v, want %v", got, want)
	}
	if got, want := attrs(e.keyB, map[string]any{}), []string{"198.51.100.7", "203.0.113.1", "203.0.113.2", "203.0.113.3"}; !slices.Equal(got, want) {
		t.Errorf("B attributes %v, want %v", got, want)
	}
	if got := attrs(e.keySrc, map[string]any{}); !slices.Equal(got, []string{"203.0.113.1"}) {
		t.Errorf("source key attributes %v, want the CLEAR one", got)
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		want []string
	}{
		{"value wildcard", map[string]any{"value": "203.0.113.%"}, []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}},
		{"value NOT", map[string]any{"value": []string{"!203.0.113.%"}}, []string{"198.51.100.7"}},
		{"type", map[string]any{"type": "ip-dst"}, []string{"198.51.100.7", "203.0.113.1", "203.0.113.2", "203.0.113.3"}},
		{"tags inherited", map[string]any{"tags": []string{"tlp:green"}}, []string{"203.0.113.2"}},
		{"tags OR object", map[string]any{"tags": map[string]any{"OR": []string{"tlp:clear", "tlp:green"}}}, []string{"203.0.113.1", "203.0.113.2"}},
		{"to_ids", map[string]any{"to_ids": 0}, nil},
		{"last", map[string]any{"last": "1d"}, nil},
		{"limit page", map[string]any{"limit": 2, "page": 2}, []string{"198.51.100.7", "203.0.113.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := attrs(e.keyB, tc.body); !slices.Equal(got, tc.want) {
				t.Errorf("= %v, want %v", got, tc.want)
			}
		})
	}

	var evs struct {
		Response []struct {
			Event mispEvent `json:"Event"`
		} `json:"response"`
	}
	e.call("POST", "/events/restSearch", e.keyA, map[string]any{"returnFormat": "json"}).must(t, 200, &evs)
	got := map[string]bool{}
	for _, x := range evs.Response {
		got[x.Event.UUID] = true
		if x.Event.UUID == idNotif && len(x.Event.attrs()) != 1 {
			t.Errorf("A's notification in restSearch has %d attributes", len(x.Event.attrs()))
		}
	}
	if want := uuids(e.index(e.keyA, nil)); !maps.Equal(got, want) {
		t.Errorf("events restSearch %v, index %v", got, want)
	}
	e.call("POST", "/events/restSearch.json", e.keyA, map[string]any{"request": map[string]any{"tags": "tlp:green", "metadata": 1}}).must(t, 200, &evs)
	if len(evs.Response) != 1 || evs.Response[0].Event.UUID != idGreen || len(evs.Response[0].Event.Attribute) != 0 {
		t.Errorf("events restSearch tags+metadata = %+v", evs.Response)
	}
	e.call("POST", "/events/restSearch", e.keyB, map[string]any{"value": "198.51.100.7"}).must(t, 200, &evs)
	if len(evs.Response) != 1 || evs.Response[0].Event.UUID != idNotif {
		t.Errorf("events restSearch by value = %+v", evs.Response)
	}
	if r := e.call("POST", "/attributes/restSearch", e.keyB, map[string]any{"returnFormat": "stix2"}); r.code != 400 || !strings.Contains(string(r.body), "returnFormat") {
		t.Errorf("unsupported returnFormat = %d %s", r.code, r.body)
	}
}

func TestFeed(t *testing.T) {
	e := newEnv(t)
	seed(e)
	manifest := func(hdr ...string) (map[string]map[string]any, resp) {
		t.Helper()
		var m map[string]map[string]any
		r := e.call("GET", "/feeds/misp/manifest.json", "", nil, hdr...).must(t, 200, &m)
		return m, r
	}
	anon, r := manifest()
	if len(anon) != 1 || anon[idClear] == nil {
		t.Fatalf("anonymous manifest %v, want only the CLEAR event", slices.Collect(maps.Keys(anon)))
	}
	if r := e.call("GET", "/feeds/misp/manifest.json", "", nil, "If-None-Match", r.header.Get("ETag")); r.code != 304 {
		t.Errorf("manifest with its ETag = %d, want 304", r.code)
	}
	for _, hdr := range [][]string{{"Authorization", e.keyB}, {"X-MISP-AUTH", e.keyB}, {"Authorization", "Bearer " + e.keyB}} {
		m, _ := manifest(hdr...)
		got := slices.Sorted(maps.Keys(m))
		if want := slices.Sorted(maps.Keys(uuids(e.index(e.keyB, nil)))); !slices.Equal(got, want) {
			t.Errorf("manifest with %s = %v, want B's index %v", hdr[0], got, want)
		}
	}
	entry := anon[idClear]
	for _, k := range []string{"info", "Orgc", "Tag", "date", "analysis", "threat_level_id", "timestamp"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("manifest entry lacks %s: %v", k, entry)
		}
	}

	hashes := e.call("GET", "/feeds/misp/hashes.csv", "", nil).must(t, 200, nil)
	sum := md5.Sum([]byte("203.0.113.1"))
	if got, want := strings.TrimSpace(string(hashes.body)), hex.EncodeToString(sum[:])+","+idClear; got != want {
		t.Errorf("hashes.csv = %q, want %q", got, want)
	}
	if r := e.call("GET", "/feeds/misp/hashes.csv", "", nil, "If-None-Match", hashes.header.Get("ETag")); r.code != 304 {
		t.Errorf("hashes.csv with its ETag = %d", r.code)
	}

	var doc struct {
		Event mispEvent `json:"Event"`
	}
	f := e.call("GET", "/feeds/misp/"+idClear+".json", "", nil).must(t, 200, &doc)
	if doc.Event.UUID != idClear || doc.Event.ID != "" || len(doc.Event.Attribute) != 1 {
		t.Errorf("feed event %+v", doc.Event)
	}
	if r := e.call("GET", "/feeds/misp/"+idClear+".json", "", nil, "If-None-Match", f.header.Get("ETag")); r.code != 304 {
		t.Errorf("feed event with its ETag = %d", r.code)
	}
	for _, tc := range []struct {
		id   string
		hdr  []string
		want int
	}{
		{idGreen, nil, 404},
		{idRed, []string{"Authorization", e.keyA}, 404},
		{idHealth, []string{"Authorization", e.keyA}, 404},
		{idHealth, []string{"Authorization", e.keyB}, 200},
		{idNotif, []string{"Authorization", e.keyA}, 200},
	} {
		if r := e.call("GET", "/feeds/misp/"+tc.id+".json", "", nil, tc.hdr...); r.code != tc.want {
			t.Errorf("feed %s with %v = %d, want %d", tc.id, tc.hdr, r.code, tc.want)
		}
	}
}

// AMBER+STRICT from an upstream source stops at the relay: the addressed
// constituent does not see it in any view; from an own source it does.
func TestAmberStrictFromUpstreamNotServed(t *testing.T) {
	e := newEnv(t)
	up := ev("20000000-0000-4000-8000-000000000001", gateway.KindIntel, gateway.TLPAmberStrict, t0, "192.0.2.77")
	up.Addressees = []gateway.Addressee{{Constituent: "a"}}
	if res := e.ingest(up); !res.Held {
		t.Fatalf("upstream AMBER+STRICT not held: %+v", res)
	}
	own := ev("20000000-0000-4000-8000-000000000002", gateway.KindIntel, gateway.TLPAmberStrict, t0.Add(time.Minute), "192.0.2.78")
	own.Addressees = []gateway.Addressee{{Constituent: "a"}}
	e.ingestFrom(gateway.Source{Name: "analysts", Own: true}, own)
	if r := e.call("GET", "/events/view/"+up.ID, e.keyA, nil); r.code != 404 {
		t.Errorf("upstream AMBER+STRICT served to the addressed constituent: %d", r.code)
	}
	if r := e.call("GET", "/events/view/"+own.ID, e.keyA, nil); r.code != 200 {
		t.Errorf("own AMBER+STRICT not served to the addressed constituent: %d", r.code)
	}
	if r := e.call("GET", "/feeds/misp/"+up.ID+".json", e.keyA, nil); r.code == 200 {
		t.Errorf("upstream AMBER+STRICT in the addressed constituent's feed")
	}
}

// TestServedOrgc: an event that came with its originator's Orgc is served
// with that Orgc (Org stays this server) in every listing, and the org
// filter matches it.
func TestServedOrgc(t *testing.T) {
	e := newEnv(t)
	seed(e)
	u := "20000000-0000-4000-8000-0000000000c1"
	const orgcUUID = "11111111-2222-4333-8444-555555555555"
	doc := mispDoc(u, t0.Unix(), []string{"tlp:clear"}, [3]string{"20000000-0000-4000-8000-0000000000c2", "ip-dst", "203.0.113.70"})
	e.call("POST", "/events/add", e.keySrc, doc).must(t, 200, nil)
	type orgRef struct{ ID, Name, UUID string }

	var full []struct {
		UUID   string `json:"uuid"`
		OrgcID string `json:"orgc_id"`
		Orgc   orgRef `json:"Orgc"`
		Org    orgRef `json:"Org"`
	}
	e.call("POST", "/events/index", e.keyB, map[string]any{"eventid": u}).must(t, 200, &full)
	if len(full) != 1 || full[0].Orgc.Name != "NCSC-NL" || full[0].Orgc.UUID != orgcUUID || full[0].Org.Name != testOrg.Name ||
		full[0].OrgcID == "1" || full[0].OrgcID != full[0].Orgc.ID {
		t.Fatalf("full index = %+v", full)
	}
	orgcID := full[0].OrgcID
	var minimal []indexEntry
	e.call("POST", "/events/index", e.keyB, map[string]any{"minimal": 1, "eventid": u}).must(t, 200, &minimal)
	if len(minimal) != 1 || minimal[0].OrgcUUID != orgcUUID {
		t.Errorf("minimal index = %+v", minimal)
	}
	for _, tc := range []struct {
		org  string
		want bool
	}{{"NCSC-NL", true}, {orgcUUID, true}, {orgcID, true}, {testOrg.Name, false}} {
		got := uuids(e.index(e.keyB, map[string]any{"minimal": 1, "org": tc.org}))[u]
		if got != tc.want {
			t.Errorf("index org %q lists the event: %v, want %v", tc.org, got, tc.want)
		}
	}

	var view struct {
		Event struct {
			OrgcID string `json:"orgc_id"`
			Orgc   orgRef `json:"Orgc"`
			Org    orgRef `json:"Org"`
		}
	}
	e.call("GET", "/events/view/"+u, e.keyB, nil).must(t, 200, &view)
	if v := view.Event; v.Orgc.Name != "NCSC-NL" || v.Orgc.ID != orgcID || v.OrgcID != orgcID || v.Org.Name != testOrg.Name {
		t.Errorf("view = %+v", v)
	}

	var m map[string]struct{ Orgc orgRef }
	e.call("GET", "/feeds/misp/manifest.json", "", nil).must(t, 200, &m)
	if m[u].Orgc.Name != "NCSC-NL" || m[u].Orgc.UUID != orgcUUID {
		t.Errorf("manifest entry = %+v", m[u])
	}
	if m[idClear].Orgc.Name != testOrg.Name {
		t.Errorf("manifest entry of an own event = %+v", m[idClear])
	}

	attrs := e.call("POST", "/attributes/restSearch", e.keyB, map[string]any{"eventid": u, "includeContext": 1}).must(t, 200, nil)
	if !strings.Contains(string(attrs.body), `"Orgc":{"id":"`+orgcID+`","name":"NCSC-NL"`) {
		t.Errorf("attributes with context: %s", attrs.body)
	}
}
