package taxii

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/views"
)

func TestDiscoveryAndAPIRoot(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/taxii2/", "/taxii2"} {
		r := e.get(path, e.keys["a"])
		if r.status != 200 || r.header.Get("Content-Type") != MediaTAXII {
			t.Fatalf("GET %s: %d %q %s", path, r.status, r.header.Get("Content-Type"), r.body)
		}
		var d discoveryResource
		r.json(t, &d)
		if d.Title == "" || d.Default != APIRoot || !slices.Equal(d.APIRoots, []string{APIRoot}) {
			t.Errorf("discovery %+v", d)
		}
	}
	for _, path := range []string{"/taxii2/api/", "/taxii2/api"} {
		r := e.get(path, e.keys["src"])
		var root apiRootResource
		r.json(t, &root)
		if r.status != 200 || root.Title == "" || !slices.Contains(root.Versions, MediaTAXII) || root.MaxContentLength != maxContent {
			t.Errorf("GET %s: %d %+v", path, r.status, root)
		}
	}
}

func TestDiscoveryNamesHTTPSRootAbsolutely(t *testing.T) {
	s := NewServer(Options{PublicURL: "https://schakel.example.org/"})
	if got := s.rootURL(); got != "https://schakel.example.org/taxii2/api/" {
		t.Errorf("https public_url: %q", got)
	}
	// TAXII allows only https absolute roots; anything else goes relative.
	s = NewServer(Options{PublicURL: "http://schakel.example.org"})
	if got := s.rootURL(); got != APIRoot {
		t.Errorf("http public_url: %q", got)
	}
}

func TestAuthForms(t *testing.T) {
	e := newEnv(t)
	key := e.keys["a"]
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name   string
		header []string
		want   int
	}{
		{"anonymous", nil, 401},
		{"wrong key", []string{"Authorization", "Bearer " + strings.Repeat("x", 40)}, 401},
		{"basic, key as password", []string{"Authorization", "Basic " + b64("taxii:"+key)}, 200},
		{"basic, lower-case scheme (MISP)", []string{"Authorization", "basic " + b64("misp:"+key)}, 200},
		{"basic, key as user name", []string{"Authorization", "Basic " + b64(key+":")}, 200},
		{"token (taxii2-client TokenAuth)", []string{"Authorization", "Token " + key}, 200},
		{"bearer (OpenCTI)", []string{"Authorization", "Bearer " + key}, 200},
		{"bare key", []string{"Authorization", key}, 200},
		{"X-API-Key", []string{"X-API-Key", key}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := append([]string{}, tc.header...)
			if len(h) == 0 || h[0] != "Authorization" {
				// keep do() from adding Basic
				h = append(h, "Authorization", "")
			}
			r := e.get("/taxii2/api/collections/", "", h...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != MediaTAXII {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.want == 401 {
				var eb ErrorBody
				r.json(t, &eb)
				if eb.HTTPStatus != "401" || eb.Title == "" || !strings.Contains(r.header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 body %+v, WWW-Authenticate %q", eb, r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

func TestAcceptIsLenientButNotBlind(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		accept string
		want   int
	}{
		{MediaTAXII, 200},
		{"application/taxii+json", 200},
		{"application/taxii+json; version=2.1", 200},
		{"application/stix+json;version=2.1", 200},
		{"*/*", 200},
		{"application/json", 200},
		{"application/json, text/plain, */*", 200}, // old OpenCTI
		{"", 200},
		{"application/taxii+json;version=2.0", 406},
		{"text/html", 406},
		{"application/xml", 406},
	} {
		r := e.get("/taxii2/api/collections/", e.keys["a"], "Accept", tc.accept)
		if r.status != tc.want || r.header.Get("Content-Type") != MediaTAXII {
			t.Errorf("Accept %q: %d %q, want %d", tc.accept, r.status, r.header.Get("Content-Type"), tc.want)
		}
	}
}

type collectionsBody struct {
	Collections []collectionResource `json:"collections"`
}

func TestCollectionsPerKey(t *testing.T) {
	e := newEnv(t)
	cases := map[string][]string{
		"a":     {"public r", "community r", "constituent r"},
		"src":   {"public r", "inbox w"},
		"admin": {"public r", "community r"},
	}
	for who, want := range cases {
		var body collectionsBody
		e.get("/taxii2/api/collections/", e.keys[who]).json(t, &body)
		var got []string
		for _, c := range body.Collections {
			s := c.Title + " "
			if c.CanRead {
				s += "r"
			}
			if c.CanWrite {
				s += "w"
			}
			got = append(got, s)
			if len(c.ID) != 36 || c.ID[14] != '4' || !slices.Equal(c.MediaTypes, []string{MediaSTIX}) {
				t.Errorf("collection %+v: id must be a UUIDv4 and media_types STIX 2.1", c)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s sees %v, want %v", who, got, want)
		}
	}
	// One collection, by id or alias; unknown ids are 404 in the TAXII shape.
	var c collectionResource
	e.get(collectionPath(ConstituentID), e.keys["src"]).json(t, &c)
	if c.ID != ConstituentID || c.CanRead || c.CanWrite {
		t.Errorf("constituent collection for a source key: %+v", c)
	}
	e.get(collectionPath("community"), e.keys["a"]).json(t, &c)
	if c.ID != CommunityID || !c.CanRead {
		t.Errorf("by alias: %+v", c)
	}
	r := e.get(collectionPath("00000000-0000-4000-8000-000000000000"), e.keys["a"])
	var eb ErrorBody
	r.json(t, &eb)
	if r.status != 404 || eb.HTTPStatus != "404" {
		t.Errorf("unknown collection: %d %s", r.status, r.body)
	}
	// Unknown paths and methods stay in the TAXII shape.
	if r := e.get("/taxii2/api/nothing/", e.keys["a"]); r.status != 404 || r.header.Get("Content-Type") != MediaTAXII {
		t.Errorf("unknown path: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := e.do("PUT", "/taxii2/api/collections/", e.keys["a"], nil); r.status != 405 || r.header.Get("Content-Type") != MediaTAXII {
		t.Errorf("PUT collections: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestReadAccessIsEnforced(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		who, coll, tail string
		want            int
	}{
		{"src", ConstituentID, "objects/", 403},
		{"src", CommunityID, "manifest/", 403},
		{"src", InboxID, "objects/", 403},
		{"admin", ConstituentID, "objects/", 403},
		{"a", InboxID, "manifest/", 403},
		{"a", "no-such-collection", "objects/", 404},
		{"src", PublicID, "objects/", 200},
		{"a", ConstituentID, "objects/", 200},
	} {
		r := e.get(collectionPath(tc.coll)+tc.tail, e.keys[tc.who])
		if r.status != tc.want {
			t.Errorf("%s GET %s%s: %d, want %d: %s", tc.who, tc.coll, tc.tail, r.status, tc.want, r.body)
		}
	}
}

func TestDeleteFollowsThePermissionTable(t *testing.T) {
	e := newEnv(t)
	e.put(event("11111111-1111-4111-8111-111111111111", gateway.TLPClear, gateway.KindAdvisory, "192.0.2.1"), t0)
	oid := "report--11111111-1111-4111-8111-111111111111"
	for _, tc := range []struct {
		who, coll string
		want      int
	}{
		{"a", PublicID, 403},        // can_read, not can_write
		{"src", InboxID, 403},       // can_write, not can_read
		{"src", ConstituentID, 404}, // neither
		{"a", "nope", 404},
	} {
		r := e.do("DELETE", collectionPath(tc.coll)+"objects/"+oid+"/", e.keys[tc.who], nil)
		if r.status != tc.want || r.header.Get("Content-Type") != MediaTAXII {
			t.Errorf("%s DELETE in %s: %d, want %d", tc.who, tc.coll, r.status, tc.want)
		}
	}
	// Nothing was deleted.
	var env testEnvelope
	e.get(collectionPath(PublicID)+"objects/"+oid+"/", e.keys["a"]).json(t, &env)
	if len(env.Objects) != 1 {
		t.Errorf("object gone after refused deletes: %+v", env)
	}
}

// visibilityEvents puts one event per rule of the TLP table.
func visibilityEvents(e *env) {
	clear := event("c1eaaaaa-0000-4000-8000-000000000001", gateway.TLPClear, gateway.KindAdvisory, "203.0.113.1")
	green := event("91eeeeee-0000-4000-8000-000000000002", gateway.TLPGreen, gateway.KindAdvisory, "203.0.113.2")
	health := event("4ea17400-0000-4000-8000-000000000003", gateway.TLPAmber, gateway.KindIntel, "203.0.113.3")
	health.Sectors = []string{"health"}
	notif := event("a071f000-0000-4000-8000-000000000004", gateway.TLPAmber, gateway.KindNotification, "192.0.2.10", "198.51.100.7")
	red := event("4edddddd-0000-4000-8000-000000000005", gateway.TLPRed, gateway.KindIncident, "203.0.113.5")
	red.Addressees = []gateway.Addressee{{Constituent: "a"}}
	strict := event("57410000-0000-4000-8000-000000000006", gateway.TLPAmberStrict, gateway.KindIntel, "203.0.113.6")
	strict.Addressees = []gateway.Addressee{{Constituent: "a"}}
	strict.Source.Own = true // only AMBER+STRICT the relay's own analysts author reaches A
	for i, ev := range []*gateway.Event{clear, green, health, notif, red, strict} {
		e.put(ev, t0.Add(time.Duration(i)*time.Second))
	}
}

// walk reads a whole collection through next, checking every page's
// headers against its manifest twin.
func walk(t *testing.T, e *env, coll, key, query string, limit int) (objs []stixHead, dates []string) {
	t.Helper()
	next := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("paging does not end")
		}
		q := fmt.Sprintf("?limit=%d%s", limit, query)
		if next != "" {
			q += "&next=" + next
		}
		r := e.get(collectionPath(coll)+"objects/"+q, key)
		if r.status != 200 {
			t.Fatalf("objects%s: %d %s", q, r.status, r.body)
		}
		var env testEnvelope
		r.json(t, &env)
		m := e.get(collectionPath(coll)+"manifest/"+q, key)
		var man struct {
			More    bool             `json:"more"`
			Next    string           `json:"next"`
			Objects []manifestRecord `json:"objects"`
		}
		m.json(t, &man)
		if len(env.Objects) > limit || len(man.Objects) != len(env.Objects) || man.More != env.More || man.Next != env.Next {
			t.Fatalf("page %d: %d objects (limit %d), manifest %d, more %v/%v", pages, len(env.Objects), limit, len(man.Objects), env.More, man.More)
		}
		hs := heads(t, env.Objects)
		for i, h := range hs {
			if man.Objects[i].ID != h.ID || man.Objects[i].MediaType != MediaSTIX || man.Objects[i].Version == "" {
				t.Fatalf("manifest record %d %+v for object %s", i, man.Objects[i], h.ID)
			}
			dates = append(dates, man.Objects[i].DateAdded)
		}
		objs = append(objs, hs...)
		if len(hs) > 0 {
			if r.header.Get("X-TAXII-Date-Added-First") != man.Objects[0].DateAdded ||
				r.header.Get("X-TAXII-Date-Added-Last") != man.Objects[len(hs)-1].DateAdded {
				t.Fatalf("headers %q..%q, manifest %q..%q", r.header.Get("X-TAXII-Date-Added-First"), r.header.Get("X-TAXII-Date-Added-Last"),
					man.Objects[0].DateAdded, man.Objects[len(hs)-1].DateAdded)
			}
		} else if r.header.Get("X-TAXII-Date-Added-First") != "" {
			t.Fatal("date headers on an empty page")
		}
		if !env.More {
			return objs, dates
		}
		if env.Next == "" {
			t.Fatal("more without next")
		}
		next = env.Next
	}
}

func reportIDs(objs []stixHead) []string {
	var out []string
	for _, o := range objs {
		if o.Type == "report" {
			out = append(out, strings.TrimPrefix(o.ID, "report--"))
		}
	}
	sort.Strings(out)
	return out
}

func patterns(objs []stixHead) []string {
	var out []string
	for _, o := range objs {
		if o.Pattern != "" {
			out = append(out, o.Pattern)
		}
	}
	sort.Strings(out)
	return out
}

func TestVisibilityFollowsThePolicy(t *testing.T) {
	e := newEnv(t)
	visibilityEvents(e)
	const (
		clear  = "c1eaaaaa-0000-4000-8000-000000000001"
		green  = "91eeeeee-0000-4000-8000-000000000002"
		health = "4ea17400-0000-4000-8000-000000000003"
		notif  = "a071f000-0000-4000-8000-000000000004"
		strict = "57410000-0000-4000-8000-000000000006"
	)
	cases := []struct {
		name, coll, key string
		reports         []string
	}{
		{"public holds CLEAR only", PublicID, "src", []string{clear}},
		{"community holds up to GREEN", CommunityID, "b", []string{clear, green}},
		{"constituent a", ConstituentID, "a", []string{clear, green, notif, strict}},
		{"constituent b", ConstituentID, "b", []string{clear, green, health, notif}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, _ := walk(t, e, tc.coll, e.keys[tc.key], "", 2)
			want := slices.Clone(tc.reports)
			sort.Strings(want)
			if got := reportIDs(objs); !slices.Equal(got, want) {
				t.Errorf("reports %v, want %v", got, want)
			}
			for _, o := range objs {
				if o.ID == "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1" || slices.Contains(o.ObjectMarkingRefs, "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1") {
					t.Errorf("TLP:RED object %s served", o.ID)
				}
				if o.SpecVersion != "2.1" {
					t.Errorf("object %s without spec_version 2.1", o.ID)
				}
			}
		})
	}
	// The notification's indicators: each constituent its own only.
	a, _ := walk(t, e, ConstituentID, e.keys["a"], "&match[type]=indicator", 100)
	b, _ := walk(t, e, ConstituentID, e.keys["b"], "&match[type]=indicator", 100)
	hasIP := func(objs []stixHead, ip string) bool {
		return slices.ContainsFunc(objs, func(o stixHead) bool { return strings.Contains(o.Pattern, "'"+ip+"'") })
	}
	if !hasIP(a, "192.0.2.10") || hasIP(a, "198.51.100.7") || !hasIP(b, "198.51.100.7") || hasIP(b, "192.0.2.10") {
		t.Errorf("notification projection: a %v, b %v", patterns(a), patterns(b))
	}
}

// TestConstituentCollectionIsTheView checks the constituent collection
// against gateway/views, which /events/index serves too: the same events,
// in the same order.
func TestConstituentCollectionIsTheView(t *testing.T) {
	e := newEnv(t)
	visibilityEvents(e)
	for _, c := range []string{"a", "b"} {
		es, _, err := e.v.List(t.Context(), views.Viewer{Audience: views.Constituent, Constituent: c}, views.Query{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, x := range es {
			want = append(want, x.ID)
		}
		objs, _ := walk(t, e, ConstituentID, e.keys[c], "&match[type]=report", 1)
		var got []string
		for _, o := range objs {
			got = append(got, strings.TrimPrefix(o.ID, "report--"))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: collection %v, view %v", c, got, want)
		}
	}
}

func TestPagingDatesAndCursors(t *testing.T) {
	e := newEnv(t)
	// Events close together (2 µs, a tie) and far apart.
	added := []time.Duration{0, 2 * time.Microsecond, 2 * time.Microsecond, time.Second, time.Second + 500*time.Microsecond, 3 * time.Second}
	total := 0
	for i, d := range added {
		ev := event(fmt.Sprintf("0000000%d-0000-4000-8000-000000000000", i), gateway.TLPClear, gateway.KindAdvisory,
			fmt.Sprintf("203.0.113.%d", i+1), fmt.Sprintf("203.0.113.%d", i+101))
		e.put(ev, t0.Add(d))
		total += 3 // report, two indicators; the definitions and identity are shared
	}
	for _, limit := range []int{1, 3, 7, 1000} {
		objs, dates := walk(t, e, PublicID, e.keys["a"], "", limit)
		own, distinct, fourth := 0, map[string]bool{}, 0
		for i, o := range objs {
			distinct[o.ID] = true
			if !shared(o.Type) {
				own++
			}
			if o.ID == "report--00000003-0000-4000-8000-000000000000" {
				fourth = i
			}
		}
		// Shared objects come once per page (each page stands alone).
		if own != total || len(distinct) != total+3 {
			t.Fatalf("limit %d: %d own objects, %d distinct, want %d and %d", limit, own, len(distinct), total, total+3)
		}
		if !sort.StringsAreSorted(dates) {
			t.Fatalf("limit %d: date_added decreases: %v", limit, dates)
		}
		// Strictly increasing from the fourth event on (they are far apart).
		for i := fourth + 1; i < len(dates); i++ {
			if dates[i] <= dates[i-1] {
				t.Errorf("limit %d: date_added %d not after %d: %s <= %s", limit, i, i-1, dates[i], dates[i-1])
			}
		}
		for i, d := range dates {
			if _, err := time.Parse(timestampLayout, d); err != nil || len(d) != len("2026-11-20T09:00:00.000000Z") {
				t.Fatalf("date_added %d %q is not a TAXII timestamp", i, d)
			}
		}
	}
	// added_after is strictly after, and a client without next that
	// continues from X-TAXII-Date-Added-Last misses nothing where dates are
	// strictly increasing.
	// Shared objects recur once per page, so compare the events' own.
	all, dates := walk(t, e, PublicID, e.keys["a"], "", 1000)
	start := slices.IndexFunc(all, func(o stixHead) bool { return o.ID == "report--00000003-0000-4000-8000-000000000000" })
	from := dates[start-1] // the third event's last object
	var got []string
	after := from
	for range 100 {
		r := e.get(collectionPath(PublicID)+"objects/?limit=4&added_after="+after, e.keys["a"])
		var env testEnvelope
		r.json(t, &env)
		for _, h := range heads(t, env.Objects) {
			if !shared(h.Type) {
				got = append(got, h.ID)
			}
		}
		if !env.More {
			break
		}
		after = r.header.Get("X-TAXII-Date-Added-Last")
	}
	var want []string
	for _, o := range all[start:] {
		if !shared(o.Type) {
			want = append(want, o.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("added_after=%s paging: %d objects, want %d", from, len(got), len(want))
	}
	// A client that sends next together with its first added_after (OpenCTI)
	// gets the same pages.
	r := e.get(collectionPath(PublicID)+"objects/?limit=5&added_after="+from, e.keys["a"])
	var p1 testEnvelope
	r.json(t, &p1)
	r = e.get(collectionPath(PublicID)+"objects/?limit=5&added_after="+from+"&next="+p1.Next, e.keys["a"])
	var p2 testEnvelope
	r.json(t, &p2)
	// p1: the fourth event's definitions, identity, report and first
	// indicator; p2 goes on with its second indicator.
	if len(p2.Objects) != 5 || heads(t, p2.Objects)[0].ID != want[2] {
		t.Errorf("next with added_after: %d objects, first %v", len(p2.Objects), heads(t, p2.Objects))
	}
}

func TestDateAddedSurvivesUpdatesAndNewEvents(t *testing.T) {
	e := newEnv(t)
	ev := event("0000000a-0000-4000-8000-000000000000", gateway.TLPClear, gateway.KindAdvisory, "203.0.113.1")
	e.put(ev, t0)
	e.put(event("0000000b-0000-4000-8000-000000000000", gateway.TLPClear, gateway.KindAdvisory, "203.0.113.2"), t0.Add(time.Second))
	r := e.get(collectionPath(PublicID)+"objects/?limit=5", e.keys["a"])
	var p1 testEnvelope
	r.json(t, &p1)
	if !p1.More {
		t.Fatal("expected more")
	}
	// The first event is updated: its new version moves to the end.
	upd := ev.Clone()
	upd.Modified = t0.Add(time.Hour)
	upd.Title = "updated"
	e.put(upd, t0.Add(2*time.Second))
	r = e.get(collectionPath(PublicID)+"objects/?limit=100&next="+p1.Next, e.keys["a"])
	var p2 testEnvelope
	r.json(t, &p2)
	hs := heads(t, p2.Objects)
	if got := reportIDs(hs); !slices.Equal(got, []string{"0000000a-0000-4000-8000-000000000000", "0000000b-0000-4000-8000-000000000000"}) {
		t.Errorf("after the update the next page holds reports %v", got)
	}
	for _, h := range hs {
		if h.Type == "report" && strings.HasPrefix(h.ID, "report--0000000a") && h.Name != "updated" {
			t.Errorf("updated report served as %q", h.Name)
		}
	}
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	ev := event("11111111-1111-4111-8111-111111111111", gateway.TLPClear, gateway.KindAdvisory, "203.0.113.1", "203.0.113.2")
	e.put(ev, t0)
	old := event("22222222-2222-4222-8222-222222222222", gateway.TLPClear, gateway.KindAdvisory, "203.0.113.3")
	old.Modified = t0.Add(-time.Hour)
	old.Created = old.Modified
	e.put(old, t0.Add(time.Second))
	all, dates := walk(t, e, PublicID, e.keys["a"], "", 100)
	count := func(query string) (int, int) {
		r := e.get(collectionPath(PublicID)+"objects/?"+query, e.keys["a"])
		var env testEnvelope
		if r.status == 200 {
			r.json(t, &env)
		}
		return r.status, len(env.Objects)
	}
	var indicators, reports int
	for _, o := range all {
		switch o.Type {
		case "indicator":
			indicators++
		case "report":
			reports++
		}
	}
	cases := []struct {
		query  string
		status int
		n      int
	}{
		{"match[type]=indicator", 200, indicators},
		{"match[type]=indicator,report", 200, indicators + reports},
		{"match%5Btype%5D=indicator", 200, indicators}, // brackets encoded, as url libraries do
		{"match[type]=malware", 200, 0},
		{"match[id]=report--11111111-1111-4111-8111-111111111111,report--22222222-2222-4222-8222-222222222222", 200, 2},
		{"match[type]=report&match[id]=" + all[0].ID, 200, 0},
		{"match[version]=last", 200, len(all)},
		{"match[version]=first,last", 200, len(all)},
		{"match[version]=all", 200, len(all)},
		{"match[type]=report&match[version]=2026-11-20T08:00:00Z", 200, 1}, // the older event's report, by modified
		{"match[type]=report&match[version]=2026-11-20T08:00:00.000Z,2026-11-20T09:00:00Z", 200, 2},
		{"match[spec_version]=2.0", 200, 0},
		{"match[spec_version]=2.0,2.1", 200, len(all)},
		{"match[unknown]=x", 200, len(all)},
		{"next=", 200, len(all)}, // MISP's first request
		// The first event's extension definition is left out, so the
		// second event's copy is the page's first.
		{"added_after=" + dates[0], 200, len(all)},
		{"added_after=" + dates[len(dates)-1], 200, 0},
		{"added_after=2026-11-20T08:59:59Z", 200, len(all)},
		{"added_after=2026-11-20T08:59:59.5Z", 200, len(all)}, // taxii2-client drops trailing zeros
		{"added_after=2026-11-20T09:59:59%2B01:00", 200, len(all)},
		{"added_after=yesterday", 400, 0},
		{"added_after=" + dates[0] + "&added_after=" + dates[0], 400, 0},
		{"limit=0", 400, 0},
		{"limit=-3", 400, 0},
		{"limit=ten", 400, 0},
		{"limit=1&limit=2", 400, 0},
		{"next=garbage", 400, 0},
		{"next=" + base64.RawURLEncoding.EncodeToString([]byte("1|2|3")), 400, 0},
		{"match[version]=all,last", 400, 0},
		{"match[version]=newest", 400, 0},
		{"match[type]=", 400, 0},
	}
	for _, tc := range cases {
		st, n := count(tc.query)
		if st != tc.status || n != tc.n {
			t.Errorf("%s: status %d with %d objects, want %d with %d", tc.query, st, n, tc.status, tc.n)
		}
	}
	r := e.get(collectionPath(PublicID)+"objects/?limit=x", e.keys["a"])
	var eb ErrorBody
	r.json(t, &eb)
	if eb.HTTPStatus != "400" || !strings.Contains(eb.Description, "limit") || r.header.Get("Content-Type") != MediaTAXII {
		t.Errorf("400 body %+v", eb)
	}
}

func TestObjectByIDAndVersions(t *testing.T) {
	e := newEnv(t)
	// Two events share an observable: the same SCO id, one version per event.
	ev1 := event("11111111-1111-4111-8111-111111111111", gateway.TLPClear, gateway.KindAdvisory)
	ev1.Indicators = []gateway.Indicator{{Type: gateway.TypeDomain, Value: "evil.example"}, {Type: gateway.TypeIPv4, Value: "203.0.113.9", Detect: true}}
	ev2 := event("22222222-2222-4222-8222-222222222222", gateway.TLPGreen, gateway.KindAdvisory)
	ev2.Indicators = []gateway.Indicator{{Type: gateway.TypeDomain, Value: "evil.example"}}
	ev2.Modified = t0.Add(time.Hour)
	e.put(ev1, t0)
	e.put(ev2, t0.Add(time.Second))
	all, dates := walk(t, e, CommunityID, e.keys["a"], "", 1000)
	var sco, ind stixHead
	scoDates := []string{}
	for i, o := range all {
		if o.Type == "domain-name" {
			sco = o
			scoDates = append(scoDates, dates[i])
		}
		if o.Type == "indicator" {
			ind = o
		}
	}
	if sco.ID == "" || ind.ID == "" || len(scoDates) != 2 {
		t.Fatalf("fixture: sco %v indicator %v", sco, ind)
	}
	path := func(coll, id, tail string) string { return collectionPath(coll) + "objects/" + id + "/" + tail }

	// Get an object: the latest version by default.
	r := e.get(path(CommunityID, ind.ID, ""), e.keys["a"])
	var env testEnvelope
	r.json(t, &env)
	if r.status != 200 || len(env.Objects) != 1 || heads(t, env.Objects)[0].ID != ind.ID || r.header.Get("X-TAXII-Date-Added-First") == "" {
		t.Fatalf("get indicator: %d %s", r.status, r.body)
	}
	var vs struct {
		More     bool     `json:"more"`
		Versions []string `json:"versions"`
	}
	r = e.get(path(CommunityID, sco.ID, "versions/"), e.keys["a"])
	r.json(t, &vs)
	if len(vs.Versions) != 2 || r.header.Get("X-TAXII-Date-Added-First") != scoDates[0] || r.header.Get("X-TAXII-Date-Added-Last") != scoDates[1] {
		t.Fatalf("versions of the shared observable: %s, headers %q %q, want dates %v", r.body,
			r.header.Get("X-TAXII-Date-Added-First"), r.header.Get("X-TAXII-Date-Added-Last"), scoDates)
	}
	for _, tc := range []struct {
		query string
		n     int
	}{{"", 1}, {"?match[version]=last", 1}, {"?match[version]=first", 1}, {"?match[version]=first,last", 2},
		{"?match[version]=all", 2}, {"?match[version]=" + vs.Versions[0], 1}, {"?match[version]=all&limit=1", 1},
		{"?added_after=" + scoDates[0] + "&match[version]=all", 1}, {"?match[spec_version]=2.0", 0}} {
		r := e.get(path(CommunityID, sco.ID, "")+tc.query, e.keys["a"])
		var env testEnvelope
		r.json(t, &env)
		if r.status != 200 || len(env.Objects) != tc.n {
			t.Errorf("get observable%s: %d with %d objects, want %d", tc.query, r.status, len(env.Objects), tc.n)
		}
	}
	// Paging the versions of one object.
	r = e.get(path(CommunityID, sco.ID, "")+"?match[version]=all&limit=1", e.keys["a"])
	r.json(t, &env)
	r = e.get(path(CommunityID, sco.ID, "")+"?match[version]=all&limit=1&next="+env.Next, e.keys["a"])
	var env2 testEnvelope
	r.json(t, &env2)
	if !env.More || env2.More || len(env2.Objects) != 1 || string(env2.Objects[0]) == string(env.Objects[0]) {
		t.Errorf("paging versions: %+v then %+v", env, env2)
	}
	// Shared objects are found too.
	r = e.get(path(CommunityID, "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", ""), e.keys["a"])
	if r.status != 200 {
		t.Errorf("TLP:GREEN marking definition: %d", r.status)
	}
	// Not in this collection, or unknown: 404. The GREEN event is in the
	// community collection, never in the public one.
	for _, p := range []string{
		path(PublicID, "report--22222222-2222-4222-8222-222222222222", ""),
		path(CommunityID, "indicator--00000000-0000-4000-8000-000000000000", ""),
		path(CommunityID, "indicator--00000000-0000-4000-8000-000000000000", "versions/"),
	} {
		if r := e.get(p, e.keys["a"]); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.status)
		}
	}
	if r := e.get(path(PublicID, sco.ID, "versions/"), e.keys["a"]); r.status != 200 || !strings.Contains(string(r.body), `"versions":["`) {
		t.Errorf("public versions of the observable: %d %s", r.status, r.body)
	} else {
		r.json(t, &vs)
		if len(vs.Versions) != 1 {
			t.Errorf("public sees %d versions of the observable, want only the CLEAR event's", len(vs.Versions))
		}
	}
}

func TestObjectByIDRespectsTheViewer(t *testing.T) {
	e := newEnv(t)
	visibilityEvents(e)
	// b reads the health event, so its report is in the index; a must still not see it.
	walk(t, e, ConstituentID, e.keys["b"], "", 1000)
	p := collectionPath(ConstituentID) + "objects/report--4ea17400-0000-4000-8000-000000000003/"
	if r := e.get(p, e.keys["b"]); r.status != 200 {
		t.Fatalf("b: %d", r.status)
	}
	if r := e.get(p, e.keys["a"]); r.status != 404 {
		t.Errorf("a sees b's sector event by id: %d %s", r.status, r.body)
	}
	if r := e.get(p+"versions/", e.keys["a"]); r.status != 404 {
		t.Errorf("a sees versions of b's sector event: %d", r.status)
	}
}

func TestStatusOfUnknownID(t *testing.T) {
	e := newEnv(t)
	r := e.get(APIRoot+"status/2d086da7-4bdc-4f91-900e-d77486753710/", e.keys["src"])
	if r.status != 404 || r.header.Get("Content-Type") != MediaTAXII {
		t.Errorf("unknown status: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestMatchVersionOnListing(t *testing.T) {
	vm := versionMatch{set: true, exact: []time.Time{t0}, exactStrings: []string{"2026-11-20T09:00:00Z"}}
	if !vm.listed("2026-11-20T09:00:00.000Z") || vm.listed("2026-11-20T09:00:00.001Z") {
		t.Error("exact versions compare as times")
	}
	if !(versionMatch{}).listed("anything") {
		t.Error("no version filter lists everything")
	}
}

// TestSharedObjectsByID: the identity every event of a producer carries is
// found by a viewer even when its newest occurrences are in events that
// viewer cannot see, and the index survives a script cache flush.
func TestSharedObjectsByID(t *testing.T) {
	e := newEnv(t)
	e.put(event("c1ea0000-0000-4000-8000-000000000000", gateway.TLPClear, gateway.KindAdvisory, "203.0.113.1"), t0)
	walk(t, e, PublicID, e.keys["a"], "", 100) // indexes the CLEAR event
	if err := e.r.Client.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range maxOccurrences + 1 {
		ev := event(fmt.Sprintf("4ea10000-0000-4000-8000-%012d", i), gateway.TLPAmber, gateway.KindIntel, "203.0.113.2")
		ev.Sectors = []string{"health"}
		e.put(ev, t0.Add(time.Duration(i+1)*time.Second))
	}
	objs, _ := walk(t, e, ConstituentID, e.keys["b"], "", 1000) // pushes the CLEAR occurrence out
	var identity string
	for _, o := range objs {
		if o.Type == "identity" {
			identity = o.ID
		}
	}
	occ, err := e.srv.index.candidates(t.Context(), identity)
	if err != nil || len(occ) != maxOccurrences || strings.HasPrefix(occ[len(occ)-1].eventID, "c1ea") {
		t.Fatalf("occurrences %+v, %v", occ, err)
	}
	r := e.get(collectionPath(PublicID)+"objects/"+identity+"/", e.keys["a"])
	var env testEnvelope
	r.json(t, &env)
	if r.status != 200 || len(env.Objects) != 1 {
		t.Errorf("public identity: %d %s", r.status, r.body)
	}
}
