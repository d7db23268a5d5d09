package misp_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

const (
	idPhish  = "10000000-0000-4000-8000-000000000021" // CLEAR, today, titled
	idObject = "10000000-0000-4000-8000-000000000022" // CLEAR, an ip-port object
	objUUID  = "20000000-0000-4000-8000-000000000001"
)

// seedFilters is seed plus two CLEAR events dated today: one titled for
// eventinfo, one holding a MISP object.
func seedFilters(e *env) {
	seed(e)
	now := time.Now().UTC().Truncate(time.Second)
	p := ev(idPhish, gateway.KindAdvisory, gateway.TLPClear, now, "203.0.113.50", "phish.example")
	p.Title = "Phishing wave against Banks"
	e.ingest(p)
	o := ev(idObject, gateway.KindIntel, gateway.TLPClear, now.Add(time.Second), "203.0.113.60")
	o.Indicators[0].Attributes = map[string]string{
		mispmap.AttrType: "ip-dst", mispmap.AttrObject: "ip-port", mispmap.AttrObjectUUID: objUUID, mispmap.AttrObjectRelation: "ip",
	}
	e.ingest(o)
}

// pymispSearch is the body PyMISP's search() sends: every boolean option
// as 0 unless asked for, None values dropped.
func pymispSearch(extra map[string]any) map[string]any {
	q := map[string]any{"returnFormat": "json", "withAttachments": 0, "metadata": 0, "enforceWarninglist": 0,
		"includeEventUuid": 0, "includeEventTags": 0, "sgReferenceOnly": 0, "includeContext": 0, "headerless": 0,
		"includeSightings": 0, "includeDecayScore": 0, "includeCorrelations": 0, "excludeDecayed": 0}
	maps.Copy(q, extra)
	return q
}

func TestIndexFilters(t *testing.T) {
	e := newEnv(t)
	seedFilters(e)
	all := []string{idClear, idGreen, idHealth, idNotif, idPhish, idObject}
	days := int(time.Since(t0).Hours()/24) + 2
	for _, tc := range []struct {
		name string
		body map[string]any // as PyMISP's search_index sends it
		want []string
	}{
		{"eventinfo substring, any case", map[string]any{"eventinfo": "phishing"}, []string{idPhish}},
		{"eventinfo wildcard", map[string]any{"eventinfo": "wave%banks"}, []string{idPhish}},
		{"eventinfo negated", map[string]any{"eventinfo": "!phishing"}, []string{idClear, idGreen, idHealth, idNotif, idObject}},
		{"attribute", map[string]any{"attribute": "198.51.100"}, []string{idNotif}},
		{"attribute another constituent's value", map[string]any{"attribute": "192.0.2.10"}, nil},
		{"all: a value", map[string]any{"all": "phish.example"}, []string{idPhish}},
		{"all: the info", map[string]any{"all": "WAVE"}, []string{idPhish}},
		{"org name", map[string]any{"org": testOrg.Name}, all},
		{"org uuid", map[string]any{"org": []string{testOrg.UUID}}, all},
		{"org id", map[string]any{"org": "1"}, all},
		{"org other", map[string]any{"org": "Other CERT"}, nil},
		{"distribution", map[string]any{"distribution": []string{"3"}}, []string{idClear, idPhish, idObject}},
		{"distribution negated", map[string]any{"distribution": []string{"!3"}}, []string{idGreen, idHealth, idNotif}},
		{"threatlevel", map[string]any{"threatlevel": []string{"!1", "!2", "!3", "!4"}}, nil},
		{"analysis", map[string]any{"analysis": []string{"!0", "!1", "!2"}}, nil},
		{"published 0 and 1", map[string]any{"published": []int{0, 1}}, all},
		{"deleted 0 and 1", map[string]any{"deleted": []int{0, 1}, "minimal": 1}, all},
		{"hasproposal", map[string]any{"hasproposal": 1}, nil},
		{"tags with negation", map[string]any{"tags": []string{"tlp:clear", "!tlp:green"}}, []string{idClear, idPhish, idObject}},
		{"tags operator object", map[string]any{"tags": map[string]any{"NOT": []string{"tlp:clear"}}}, []string{idGreen, idHealth, idNotif}},
		{"datefrom relative", map[string]any{"datefrom": "7d"}, []string{idPhish, idObject}},
		{"datefrom relative wide", map[string]any{"datefrom": fmt.Sprintf("%dd", days)}, all},
		{"dateuntil", map[string]any{"dateuntil": "7d"}, []string{idClear, idGreen, idHealth, idNotif}},
		{"timestamp relative", map[string]any{"timestamp": "24h"}, []string{idPhish, idObject}},
		{"timestamp range", map[string]any{"timestamp": []int64{t0.Unix(), t0.Add(90 * time.Second).Unix()}}, []string{idClear, idGreen}},
		{"publish_timestamp minutes", map[string]any{"publish_timestamp": "30m"}, []string{idPhish, idObject}},
		{"unknown PyMISP key", map[string]any{"direction": "asc", "minimal": 0}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []indexEntry
			e.call("POST", "/events/index", e.keyB, tc.body).must(t, 200, &got)
			if g, w := slices.Sorted(maps.Keys(uuids(got))), slices.Sorted(slices.Values(tc.want)); !slices.Equal(g, w) {
				t.Fatalf("index = %v, want %v", g, w)
			}
		})
	}
	// The constituent view holds on every filter: A sees its own address
	// of the notification, never B's.
	var got []indexEntry
	e.call("POST", "/events/index", e.keyA, map[string]any{"attribute": "192.0.2.10"}).must(t, 200, &got)
	if len(got) != 1 || got[0].UUID != idNotif {
		t.Errorf("A attribute 192.0.2.10 = %+v", got)
	}
	e.call("POST", "/events/index", e.keyA, map[string]any{"all": "203.0.113.3"}).must(t, 200, &got)
	if len(got) != 0 {
		t.Errorf("A all 203.0.113.3 (B's health event) = %+v", got)
	}
	for _, key := range []string{"email", "sort", "sharinggroup"} {
		r := e.call("POST", "/events/index", e.keyB, map[string]any{key: "x"})
		if r.code != 400 || !strings.Contains(string(r.body), key+": filter not supported") || !strings.Contains(string(r.body), `"name"`) {
			t.Errorf("index %s = %d %s, want a MISP 400 naming it", key, r.code, r.body)
		}
	}
}

type attrRow struct {
	Value    string `json:"value"`
	ObjectID string `json:"object_id"`
	Event    struct {
		UUID string `json:"uuid"`
		Date string `json:"date"`
		Orgc struct {
			Name string `json:"name"`
		} `json:"Orgc"`
	} `json:"Event"`
}

func TestRestSearchFilters(t *testing.T) {
	e := newEnv(t)
	seedFilters(e)
	attrs := func(key string, body map[string]any) []string {
		t.Helper()
		var r struct {
			Response struct {
				Attribute []attrRow `json:"Attribute"`
			} `json:"response"`
		}
		e.call("POST", "/attributes/restSearch", key, body).must(t, 200, &r)
		var out []string
		for _, a := range r.Response.Attribute {
			out = append(out, a.Value)
		}
		slices.Sort(out)
		return out
	}
	events := func(key string, body map[string]any) []string {
		t.Helper()
		var r struct {
			Response []struct {
				Event mispEvent `json:"Event"`
			} `json:"response"`
		}
		e.call("POST", "/events/restSearch", key, body).must(t, 200, &r)
		var out []string
		for _, x := range r.Response {
			out = append(out, x.Event.UUID)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name   string
		body   map[string]any
		attrs  []string
		events []string
	}{
		{"PyMISP value, tags, date_from, published",
			pymispSearch(map[string]any{"value": "203.0.113.%", "tags": []string{"tlp:clear", "!tlp:green"}, "from": "7d", "published": []int{0, 1}}),
			[]string{"203.0.113.50", "203.0.113.60"}, []string{idObject, idPhish}},
		{"value OR operator", map[string]any{"value": map[string]any{"OR": []string{"phish.example", "198.51.100.7"}}},
			[]string{"198.51.100.7", "phish.example"}, []string{idNotif, idPhish}},
		{"value NOT operator", map[string]any{"value": map[string]any{"NOT": []string{"203.0.113.%"}}},
			[]string{"198.51.100.7", "phish.example"}, []string{idNotif, idPhish}},
		{"value AND operator", map[string]any{"value": map[string]any{"AND": []string{"203.%", "%.50"}}},
			[]string{"203.0.113.50"}, []string{idPhish}},
		{"eventinfo operator", map[string]any{"eventinfo": map[string]any{"OR": []string{"phishing%"}}},
			[]string{"203.0.113.50", "phish.example"}, []string{idPhish}},
		{"tags AND", map[string]any{"tags": map[string]any{"AND": []string{"tlp:clear"}, "NOT": []string{"tlp:green"}}, "value": "phish.example"},
			[]string{"phish.example"}, []string{idPhish}},
		{"distribution", map[string]any{"distribution": 3, "value": "%.60"}, []string{"203.0.113.60"}, []string{idObject}},
		{"date_to relative", map[string]any{"date_to": "7d", "value": "203.0.113.%"}, []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}, []string{idClear, idGreen, idHealth}},
		{"timestamp range", map[string]any{"timestamp": []int64{t0.Unix(), t0.Add(90 * time.Second).Unix()}}, []string{"203.0.113.1", "203.0.113.2"}, []string{idClear, idGreen}},
		{"another constituent's value", map[string]any{"value": "192.0.2.10"}, nil, nil},
		{"to_ids", map[string]any{"to_ids": 1, "value": "phish.example"}, []string{"phish.example"}, []string{idPhish}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := attrs(e.keyB, tc.body); !slices.Equal(got, tc.attrs) {
				t.Errorf("attributes = %v, want %v", got, tc.attrs)
			}
			if got, want := events(e.keyB, tc.body), slices.Sorted(slices.Values(tc.events)); !slices.Equal(got, want) {
				t.Errorf("events = %v, want %v", got, want)
			}
		})
	}

	// includeContext carries the event's metadata with each attribute.
	var ctxResp struct {
		Response struct {
			Attribute []attrRow `json:"Attribute"`
		} `json:"response"`
	}
	e.call("POST", "/attributes/restSearch", e.keyB, pymispSearch(map[string]any{"value": "phish.example", "includeContext": 1})).must(t, 200, &ctxResp)
	if a := ctxResp.Response.Attribute; len(a) != 1 || a[0].Event.Date == "" || a[0].Event.Orgc.Name != testOrg.Name {
		t.Errorf("includeContext = %+v", a)
	}

	for _, path := range []string{"/events/restSearch", "/attributes/restSearch", "/objects/restSearch"} {
		for _, key := range []string{"includeSightings", "enforceWarninglist", "quickFilter", "sharinggroup"} {
			r := e.call("POST", path, e.keyB, pymispSearch(map[string]any{key: 1}))
			if r.code != 400 || !strings.Contains(string(r.body), key+": filter not supported") {
				t.Errorf("%s %s = %d %s, want 400 naming it", path, key, r.code, r.body)
			}
		}
		if r := e.call("POST", path, e.keyB, pymispSearch(map[string]any{"returnFormat": "stix2"})); r.code != 400 || !strings.Contains(string(r.body), "returnFormat") {
			t.Errorf("%s stix2 = %d %s, want 400 naming returnFormat", path, r.code, r.body)
		}
	}
}

func TestRestSearchCSVAndText(t *testing.T) {
	e := newEnv(t)
	seedFilters(e)
	r := e.call("POST", "/attributes/restSearch", e.keyB, pymispSearch(map[string]any{"returnFormat": "text", "value": "203.0.113.%", "from": "7d"})).must(t, 200, nil)
	if got := strings.Fields(string(r.body)); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"203.0.113.50", "203.0.113.60"}) {
		t.Errorf("text = %q", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("text Content-Type %q", ct)
	}
	r = e.call("POST", "/attributes/restSearch/csv", e.keyB, map[string]any{"value": "%.60"}).must(t, 200, nil)
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "uuid,event_id,category,type,value") ||
		!strings.Contains(lines[1], `"203.0.113.60"`) || !strings.Contains(lines[1], `"`+objUUID+`","ip-port","network"`) {
		t.Errorf("csv = %q", r.body)
	}
	r = e.call("POST", "/events/restSearch", e.keyB, map[string]any{"returnFormat": "csv", "headerless": 1, "eventinfo": "%phishing%"}).must(t, 200, nil)
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); len(lines) != 2 || strings.HasPrefix(lines[0], "uuid,") {
		t.Errorf("events csv headerless = %q", r.body)
	}
	// Another constituent's attribute never reaches a text export.
	r = e.call("POST", "/attributes/restSearch", e.keyA, map[string]any{"returnFormat": "text"}).must(t, 200, nil)
	if strings.Contains(string(r.body), "198.51.100.7") || !strings.Contains(string(r.body), "192.0.2.10") {
		t.Errorf("A text export = %q", r.body)
	}
}

func TestObjectsRestSearch(t *testing.T) {
	e := newEnv(t)
	seedFilters(e)
	type object struct {
		ID        string `json:"id"`
		EventID   string `json:"event_id"`
		UUID      string `json:"uuid"`
		Name      string `json:"name"`
		Attribute []struct {
			Value          string `json:"value"`
			ObjectRelation string `json:"object_relation"`
		} `json:"Attribute"`
	}
	objects := func(key string, body map[string]any) []object {
		t.Helper()
		var r struct {
			Response []struct {
				Object object `json:"Object"`
			} `json:"response"`
		}
		raw := e.call("POST", "/objects/restSearch", key, body).must(t, 200, nil)
		if err := json.Unmarshal(raw.body, &r); err != nil {
			t.Fatalf("%v: %s", err, raw.body)
		}
		out := make([]object, len(r.Response))
		for i, x := range r.Response {
			out[i] = x.Object
		}
		return out
	}
	got := objects(e.keyB, pymispSearch(map[string]any{"value": "203.0.113.60"}))
	if len(got) != 1 || got[0].UUID != objUUID || got[0].Name != "ip-port" || got[0].ID == "" || got[0].EventID == "" ||
		len(got[0].Attribute) != 1 || got[0].Attribute[0].ObjectRelation != "ip" {
		t.Fatalf("objects by value = %+v", got)
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"all", map[string]any{}, 1},
		{"uuid", map[string]any{"uuid": objUUID}, 1},
		{"other uuid", map[string]any{"uuid": idObject}, 0},
		{"type", map[string]any{"type": "ip-dst"}, 1},
		{"type miss", map[string]any{"type": "domain"}, 0},
		{"tags", map[string]any{"tags": []string{"tlp:clear"}}, 1},
		{"tags negated", map[string]any{"tags": []string{"!tlp:clear"}}, 0},
		{"eventid", map[string]any{"eventid": idObject}, 1},
		{"timestamp", map[string]any{"timestamp": "1h"}, 1},
		{"timestamp old", map[string]any{"timestamp": []int64{t0.Unix(), t0.Add(time.Hour).Unix()}}, 0},
		{"object_name", map[string]any{"object_name": "ip-port"}, 1},
		{"limit page", map[string]any{"limit": 1, "page": 2}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := objects(e.keyB, tc.body); len(got) != tc.want {
				t.Errorf("= %+v, want %d objects", got, tc.want)
			}
		})
	}
	if r := e.call("POST", "/objects/restSearch", e.keyB, map[string]any{"returnFormat": "csv"}); r.code != 400 || !strings.Contains(string(r.body), "returnFormat") {
		t.Errorf("objects csv = %d %s, want 400 naming returnFormat", r.code, r.body)
	}
}

// TestSearchResultsDecode: what /objects/restSearch and
// /attributes/restSearch serve reads back as events (mappings/misp groups
// them by the event they name), and push-in accepts it.
func TestSearchResultsDecode(t *testing.T) {
	e := newEnv(t)
	seedFilters(e)

	objs := e.call("POST", "/objects/restSearch", e.keyB, map[string]any{"eventid": idObject}).must(t, 200, nil)
	evs, problems, err := mispmap.Decode(objs.body)
	if err != nil || len(problems) > 0 || len(evs) != 1 {
		t.Fatalf("objects result: %d events, %v, %v: %s", len(evs), problems, err, objs.body)
	}
	if ev := evs[0]; len(ev.Indicators) != 1 || ev.Indicators[0].Value != "203.0.113.60" ||
		ev.Extensions == nil || !strings.Contains(string(ev.Extensions.MISP), objUUID) || !strings.HasPrefix(ev.Title, "MISP objects of event ") {
		t.Errorf("objects result decoded to %+v", ev)
	}

	attrs := e.call("POST", "/attributes/restSearch", e.keyB, map[string]any{"eventid": idObject}).must(t, 200, nil)
	evs, problems, err = mispmap.Decode(attrs.body)
	if err != nil || len(problems) > 0 || len(evs) != 1 {
		t.Fatalf("attributes result: %d events, %v, %v: %s", len(evs), problems, err, attrs.body)
	}
	if ev := evs[0]; ev.ID != idObject || ev.Title != "event "+idObject || len(ev.Indicators) != 1 {
		t.Errorf("attributes result decoded to %+v", ev)
	}

	var saved struct {
		Event struct{ ID, UUID, Info string }
	}
	e.call("POST", "/events/add", e.keySrc, objs.body).must(t, 200, &saved)
	if saved.Event.UUID == "" || !strings.HasPrefix(saved.Event.Info, "MISP objects of event ") {
		t.Fatalf("add of an objects result replied %+v", saved)
	}
	stored, err := e.st.Event(t.Context(), saved.Event.UUID)
	if err != nil || stored.Extensions == nil || !strings.Contains(string(stored.Extensions.MISP), objUUID) {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	r := e.call("POST", "/events/add", e.keySrc, `{"response":{"Attribute":[]}}`)
	if r.code != 400 || !strings.Contains(string(r.body), "holds no attributes") {
		t.Errorf("empty attribute result: %d %s", r.code, r.body)
	}
}
