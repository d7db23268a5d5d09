package misp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

const (
	idPublicTagged = "20000000-0000-4000-8000-000000000001" // CLEAR, everyone
	idSecretTagged = "20000000-0000-4000-8000-000000000002" // AMBER, sector health: B only
	secretAttrTag  = "b-only:attribute-tag"
	secretGalaxy   = `misp-galaxy:threat-actor="Secret Actor"`
	secretTaxonomy = `admiralty-scale:source-reliability="b"`
	publicTaxonomy = `osint:source-type="blog-post"`
)

// pymisp sends what PyMISP's _prepare_request sends: the raw key, JSON
// accept and content type, its own user agent.
var pymisp = []string{"User-Agent", "PyMISP 2.5.1 - Python 3.12.3", "Accept", "application/json", "Content-Type", "application/json"}

// seedTagged stores one public and one B-only event, each with event and
// attribute tags of its own.
func seedTagged(e *env) {
	pub := ev(idPublicTagged, gateway.KindAdvisory, gateway.TLPClear, t0, "203.0.113.21")
	pub.Labels = []string{publicTaxonomy}
	e.ingest(pub)
	sec := ev(idSecretTagged, gateway.KindIntel, gateway.TLPAmber, t0.Add(time.Minute), "203.0.113.22")
	sec.Sectors = []string{"health"}
	sec.Labels = []string{secretGalaxy, secretTaxonomy}
	sec.Indicators[0].Attributes = map[string]string{mispmap.AttrTags: secretAttrTag}
	e.ingest(sec)
}

type tagJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Colour     string `json:"colour"`
	Exportable bool   `json:"exportable"`
}

func tagNames(ts []tagJSON) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestDescribeTypes(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/attributes/describeTypes.json", "/attributes/describeTypes"} {
		var dt struct {
			Result struct {
				Types                []string                   `json:"types"`
				Categories           []string                   `json:"categories"`
				CategoryTypeMappings map[string][]string        `json:"category_type_mappings"`
				SaneDefaults         map[string]json.RawMessage `json:"sane_defaults"`
			} `json:"result"`
		}
		e.call("GET", path, e.keyA, nil, pymisp...).must(t, 200, &dt)
		r := dt.Result
		if len(r.Types) < 190 || len(r.Categories) != 16 || !slices.Contains(r.Types, "ip-dst") ||
			!slices.Contains(r.CategoryTypeMappings["Network activity"], "ip-dst") || r.SaneDefaults["md5"] == nil {
			t.Errorf("%s: %d types, %d categories, want MISP's table", path, len(r.Types), len(r.Categories))
		}
	}
	if r := e.call("GET", "/attributes/describeTypes.json", "", nil, pymisp...); r.code != 401 && r.code != 403 {
		t.Errorf("describeTypes without key = %d, want refused", r.code)
	}
}

func TestTagsIndexAndSearch(t *testing.T) {
	e := newEnv(t)
	seedTagged(e)
	secret := []string{secretAttrTag, secretGalaxy, secretTaxonomy, "tlp:amber"}
	for _, tc := range []struct {
		name       string
		key        string
		want, hide []string
	}{
		{"A", e.keyA, []string{"tlp:clear", publicTaxonomy}, secret},
		{"B", e.keyB, append([]string{"tlp:clear", publicTaxonomy}, secret...), nil},
		{"source key sees CLEAR only", e.keySrc, []string{"tlp:clear", publicTaxonomy}, secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var idx struct {
				Tag []tagJSON `json:"Tag"`
			}
			e.call("GET", "/tags/index", tc.key, nil, pymisp...).must(t, 200, &idx)
			names := tagNames(idx.Tag)
			for _, w := range tc.want {
				if !slices.Contains(names, w) {
					t.Errorf("tags/index lacks %q: %v", w, names)
				}
			}
			for _, h := range tc.hide {
				if slices.Contains(names, h) {
					t.Errorf("tags/index shows %q of an event outside the view: %v", h, names)
				}
			}
			for _, tg := range idx.Tag {
				if tg.ID == "" || tg.Colour == "" || !tg.Exportable {
					t.Errorf("tag %+v lacks id, colour or exportable", tg)
				}
			}

			// PyMISP's search_tags posts {"tagname", "strict_tagname"}.
			var found []struct {
				Tag tagJSON `json:"Tag"`
			}
			e.call("POST", "/tags/search", tc.key, map[string]any{"tagname": "%SECRET%", "strict_tagname": false}, pymisp...).must(t, 200, &found)
			wantSecret := tc.hide == nil
			if got := len(found) == 1 && found[0].Tag.Name == secretGalaxy; got != wantSecret {
				t.Errorf("tags/search %%SECRET%% = %+v, want secret galaxy tag %v", found, wantSecret)
			}
			found = nil
			e.call("GET", "/tags/search/TLP:CLEAR", tc.key, nil, pymisp...).must(t, 200, &found)
			if len(found) != 1 || found[0].Tag.Name != "tlp:clear" {
				t.Errorf("tags/search/TLP:CLEAR = %+v, want tlp:clear (case-insensitive)", found)
			}
		})
	}
}

func TestAttributeView(t *testing.T) {
	e := newEnv(t)
	seedTagged(e)
	m, code := e.view(e.keyB, idSecretTagged)
	if code != 200 || len(m.attrs()) != 1 {
		t.Fatalf("B view of its event = %d, %d attributes", code, len(m.attrs()))
	}
	attrUUID := m.attrs()[0].UUID
	type attrJSON struct {
		Attribute struct {
			ID       string `json:"id"`
			EventID  string `json:"event_id"`
			ObjectID string `json:"object_id"`
			UUID     string `json:"uuid"`
			Type     string `json:"type"`
			Category string `json:"category"`
			Value    string `json:"value"`
			ToIDs    bool   `json:"to_ids"`
			Tag      []tagJSON
		} `json:"Attribute"`
	}
	var a attrJSON
	e.call("GET", "/attributes/view/"+attrUUID, e.keyB, nil, pymisp...).must(t, 200, &a)
	if a.Attribute.UUID != attrUUID || a.Attribute.Value != "203.0.113.22" || a.Attribute.Type != "ip-dst" ||
		a.Attribute.Category == "" || a.Attribute.ID == "" || a.Attribute.EventID == "" || !slices.Contains(tagNames(a.Attribute.Tag), secretAttrTag) {
		t.Errorf("attributes/view = %+v", a.Attribute)
	}
	var byNum attrJSON
	e.call("GET", "/attributes/view/"+a.Attribute.ID, e.keyB, nil, pymisp...).must(t, 200, &byNum)
	if byNum.Attribute.UUID != attrUUID {
		t.Errorf("attributes/view by numeric id %s = %+v", a.Attribute.ID, byNum.Attribute)
	}
	if h := e.call("HEAD", "/attributes/view/"+attrUUID, e.keyB, nil, pymisp...); h.code != 200 {
		t.Errorf("HEAD attributes/view as B = %d, want 200", h.code)
	}

	for _, key := range []string{e.keyA, e.keySrc, adminKey} {
		for _, id := range []string{attrUUID, a.Attribute.ID, "00000000-0000-4000-8000-000000000000"} {
			r := e.call("GET", "/attributes/view/"+id, key, nil, pymisp...)
			var me struct{ Name, Message, URL string }
			if r.code != 404 || json.Unmarshal(r.body, &me) != nil || me.Name != "Invalid attribute" || me.URL != "/attributes/view/"+id {
				t.Errorf("attributes/view/%s outside the view = %d %s, want MISP 404", id, r.code, r.body)
			}
			if h := e.call("HEAD", "/attributes/view/"+id, key, nil, pymisp...); h.code != 404 {
				t.Errorf("HEAD attributes/view/%s outside the view = %d, want 404", id, h.code)
			}
		}
	}
}

func TestEventViewByNumericID(t *testing.T) {
	e := newEnv(t)
	seedTagged(e)
	var num string
	for _, x := range e.index(e.keyB, nil) {
		if x.UUID == idSecretTagged {
			num = x.ID
		}
	}
	if num == "" {
		t.Fatal("B's index lacks its event")
	}
	var out struct {
		Event mispEvent `json:"Event"`
	}
	// get_event(int) without and with deleted (the latter is a POST).
	e.call("GET", "/events/view/"+num, e.keyB, nil, pymisp...).must(t, 200, &out)
	if out.Event.UUID != idSecretTagged || out.Event.ID != num {
		t.Errorf("events/view/%s = %s id %s", num, out.Event.UUID, out.Event.ID)
	}
	e.call("POST", "/events/view/"+num, e.keyB, map[string]any{"deleted": []int{0, 1}}, pymisp...).must(t, 200, &out)
	if out.Event.UUID != idSecretTagged {
		t.Errorf("POST events/view/%s = %s", num, out.Event.UUID)
	}
	for _, m := range []string{"GET", "POST"} {
		if r := e.call(m, "/events/view/"+num, e.keyA, nil, pymisp...); r.code != 404 {
			t.Errorf("%s events/view/%s as A = %d, want 404", m, num, r.code)
		}
	}
}

func TestIndexesOfTheView(t *testing.T) {
	e := newEnv(t)
	seedTagged(e)
	type org struct {
		Organisation struct {
			ID, Name, UUID string
		}
	}
	for _, key := range []string{e.keyA, e.keyB} {
		var orgs []org
		e.call("GET", "/organisations/index/scope:local", key, nil, pymisp...).must(t, 200, &orgs)
		if len(orgs) != 1 || orgs[0].Organisation.UUID != testOrg.UUID || orgs[0].Organisation.Name != testOrg.Name || orgs[0].Organisation.ID != "1" {
			t.Errorf("organisations/index = %+v, want Schakel's org (the Orgc of every served event)", orgs)
		}
	}

	taxonomies := func(key string) []string {
		var out []struct {
			Taxonomy struct {
				Namespace string `json:"namespace"`
				Enabled   bool   `json:"enabled"`
			}
		}
		e.call("GET", "/taxonomies/index", key, nil, pymisp...).must(t, 200, &out)
		var ns []string
		for _, x := range out {
			ns = append(ns, x.Taxonomy.Namespace)
		}
		return ns
	}
	if got := taxonomies(e.keyA); slices.Contains(got, "admiralty-scale") || !slices.Contains(got, "osint") || !slices.Contains(got, "tlp") ||
		slices.Contains(got, "misp-galaxy") {
		t.Errorf("A taxonomies = %v, want tlp and osint, not B's admiralty-scale", got)
	}
	if got := taxonomies(e.keyB); !slices.Contains(got, "admiralty-scale") {
		t.Errorf("B taxonomies = %v, want admiralty-scale", got)
	}

	galaxies := func(key string) []string {
		var out []struct {
			Galaxy struct {
				UUID, Name, Type string
			}
		}
		r := e.call("GET", "/galaxies/index", key, nil, pymisp...).must(t, 200, &out)
		if !strings.HasPrefix(strings.TrimSpace(string(r.body)), "[") {
			t.Errorf("galaxies/index = %s, want a list", r.body)
		}
		var types []string
		for _, x := range out {
			types = append(types, x.Galaxy.Type)
		}
		return types
	}
	if got := galaxies(e.keyA); len(got) != 0 {
		t.Errorf("A galaxies = %v, want none", got)
	}
	if got := galaxies(e.keyB); !slices.Equal(got, []string{"threat-actor"}) {
		t.Errorf("B galaxies = %v, want threat-actor", got)
	}

	for _, path := range []string{"/sharing_groups/index", "/sharingGroups/index"} {
		var sg map[string][]any
		e.call("GET", path, e.keyA, nil, pymisp...).must(t, 200, &sg)
		if list, ok := sg["response"]; !ok || len(list) != 0 {
			t.Errorf("%s = %v, want {\"response\":[]}", path, sg)
		}
	}
}

func TestUnroutedMISPPaths(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/events/nothing", 404},
		{"GET", "/events", 404},
		{"GET", "/sightings/index", 404},
		{"GET", "/galaxy_clusters/view/1", 404},
		{"DELETE", "/tags/index", 405},
		{"GET", "/attributes/restSearch", 405},
		{"PUT", "/events/view/" + idClear, 405},
		{"GET", "/events/add", 405},
	} {
		r := e.call(tc.method, tc.path, e.keyA, nil, pymisp...)
		var me struct{ Name, Message, URL string }
		if r.code != tc.want || json.Unmarshal(r.body, &me) != nil || me.Name == "" || me.Message == "" || me.URL != tc.path {
			t.Errorf("%s %s = %d %s, want %d in MISP's error shape", tc.method, tc.path, r.code, r.body, tc.want)
		}
		if tc.want == 405 && r.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
	// Other prefixes of the same app stay theirs.
	if r := e.call("GET", "/api/v1/events", adminKey, nil); r.code != 200 {
		t.Errorf("/api/v1/events = %d %.200s, want its own answer", r.code, r.body)
	}
	if r := e.call("GET", "/healthz", "", nil); r.code != 200 {
		t.Errorf("/healthz = %d", r.code)
	}
}
