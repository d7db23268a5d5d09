package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/redistest"
)

// mispShape is what must survive MISP → Schakel → MISP: attributes (by
// uuid, with type and value), objects, their references, galaxy clusters
// and the originator.
type mispShape struct {
	Attrs    map[string]string // uuid → type|value
	Objects  map[string]string // uuid → name
	Refs     []string          // object uuid → referenced uuid (relationship)
	Clusters []string          // galaxy cluster uuids
	Orgc     string            // name|uuid
}

type shapeAttr struct {
	UUID, Type, Value string
}

type shapeEvent struct {
	Orgc struct {
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"Orgc"`
	Attribute []shapeAttr   `json:"Attribute"`
	Object    []shapeObject `json:"Object"`
	Galaxy    []struct {
		GalaxyCluster []struct {
			UUID string `json:"uuid"`
		} `json:"GalaxyCluster"`
	} `json:"Galaxy"`
}

type shapeObject struct {
	UUID            string      `json:"uuid"`
	Name            string      `json:"name"`
	Attribute       []shapeAttr `json:"Attribute"`
	ObjectReference []struct {
		ReferencedUUID   string `json:"referenced_uuid"`
		RelationshipType string `json:"relationship_type"`
	} `json:"ObjectReference"`
}

func (o shapeObject) addTo(s *mispShape) {
	s.Objects[o.UUID] = o.Name
	for _, a := range o.Attribute {
		s.Attrs[a.UUID] = a.Type + "|" + a.Value
	}
	for _, r := range o.ObjectReference {
		s.Refs = append(s.Refs, o.UUID+" → "+r.ReferencedUUID+" ("+r.RelationshipType+")")
	}
}

func shapeOf(e shapeEvent) mispShape {
	s := mispShape{Attrs: map[string]string{}, Objects: map[string]string{}, Orgc: e.Orgc.Name + "|" + e.Orgc.UUID}
	for _, a := range e.Attribute {
		s.Attrs[a.UUID] = a.Type + "|" + a.Value
	}
	for _, o := range e.Object {
		o.addTo(&s)
	}
	for _, g := range e.Galaxy {
		for _, c := range g.GalaxyCluster {
			s.Clusters = append(s.Clusters, c.UUID)
		}
	}
	slices.Sort(s.Refs)
	slices.Sort(s.Clusters)
	return s
}

func diffShape(t *testing.T, where string, want, got mispShape) {
	t.Helper()
	if !maps.Equal(want.Attrs, got.Attrs) {
		for u, v := range want.Attrs {
			if got.Attrs[u] != v {
				t.Errorf("%s: attribute %s = %q, want %q", where, u, got.Attrs[u], v)
			}
		}
		if len(got.Attrs) != len(want.Attrs) {
			t.Errorf("%s: %d attributes, want %d", where, len(got.Attrs), len(want.Attrs))
		}
	}
	if !maps.Equal(want.Objects, got.Objects) {
		t.Errorf("%s: objects %v, want %v", where, got.Objects, want.Objects)
	}
	if !slices.Equal(want.Refs, got.Refs) {
		t.Errorf("%s: references %v, want %v", where, got.Refs, want.Refs)
	}
	if !slices.Equal(want.Clusters, got.Clusters) {
		t.Errorf("%s: galaxy clusters %v, want %v", where, got.Clusters, want.Clusters)
	}
	if want.Orgc != got.Orgc {
		t.Errorf("%s: Orgc %q, want %q", where, got.Orgc, want.Orgc)
	}
}

// objectHeavyEvent is CIRCL's SamSam event (15 objects, 13 references,
// Orgc CIRCL) with a ransomware galaxy cluster added as MISP writes it.
func objectHeavyEvent(t *testing.T) (map[string]any, shapeEvent) {
	t.Helper()
	data, err := os.ReadFile("testdata/misp/circl_5c0661f7.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Event map[string]any }
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc.Event["Galaxy"] = []any{map[string]any{
		"id": "24", "uuid": "3f44af2e-1480-4b6b-9aa8-f9bb21341078", "name": "Ransomware", "type": "ransomware",
		"description": "Ransomware galaxy based on https://docs.google.com/spreadsheets/d/1TWS238xacAto-fLKh1n5uTsdijWdCEsGIM0Y0Hvmc5g/pubhtml",
		"version":     "4", "icon": "btc", "namespace": "misp", "kill_chain_order": nil,
		"GalaxyCluster": []any{map[string]any{
			"id": "6203", "uuid": "7a5bf6d4-6a2a-4bd3-a4ad-3fd1bf3e1ab9", "collection_uuid": "10cf658b-5d32-4c4b-bb32-61760a640372",
			"type": "ransomware", "value": "Samas-Samsam", "tag_name": `misp-galaxy:ransomware="Samas-Samsam"`,
			"description": "SamSam ransomware", "galaxy_id": "24", "source": "Various", "authors": []any{"https://docs.google.com/spreadsheets/d/1TWS238xacAto-fLKh1n5uTsdijWdCEsGIM0Y0Hvmc5g/pubhtml"},
			"version": "143", "distribution": "3", "sharing_group_id": nil, "default": true, "locked": false, "extends_uuid": "",
			"meta": map[string]any{"synonyms": []any{"SamSam", "Samas"}}, "tag_id": "341", "local": false,
		}},
	}}
	raw, _ := json.Marshal(doc.Event)
	var e shapeEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	return doc.Event, e
}

// TestAcceptanceMISPLossless: an object-heavy event pushed the way
// PyMISP's add_event sends it (POST events/add, the bare event as JSON,
// PyMISP's headers) comes back whole — attributes, objects, references,
// galaxy clusters, Orgc — through the pull sequence (/events/index +
// /events/view), /events/restSearch, /objects/restSearch,
// /attributes/view and the MISP feed; and a second gateway pulling the
// first serves it with the same Orgc, its own org as Org.
func TestAcceptanceMISPLossless(t *testing.T) {
	t.Parallel()
	upRedis, downRedis := redistest.New(t), redistest.New(t)
	upDir, downDir := t.TempDir(), t.TempDir()
	up := runGateway(t, mispPeerConfig(t, upRedis, upDir, "  - {name: pymisp, type: misp, default_tlp: CLEAR}",
		"- {id: down, name: Downstream CSIRT, sectors: [health]}\n",
		"misp: {org_name: CSIRT Up, org_uuid: 7a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}"))
	src := issueKey(t, up.base, "/api/v1/sources/pymisp/keys")
	upPull := issueKey(t, up.base, "/api/v1/constituents/down/keys")

	ev, orig := objectHeavyEvent(t)
	want := shapeOf(orig)
	if len(want.Objects) != 15 || len(want.Refs) != 13 || len(want.Clusters) != 1 || want.Orgc != "CIRCL|55f6ea5e-2c60-40e5-964f-47a8950d210f" {
		t.Fatalf("fixture shape %+v", want)
	}
	u := ev["uuid"].(string)

	// PyMISP's add_event: _prepare_request('POST', 'events/add', data=event)
	// dumps MISPEvent.to_dict(), the event without an "Event" wrapper.
	body, _ := json.Marshal(ev)
	var added struct{ Event struct{ UUID string } }
	up.call("POST", "/events/add", src, body, 200, &added, "User-Agent", "PyMISP 2.5.17 - Python 3.12")
	if added.Event.UUID != u {
		t.Fatalf("add replied %+v", added)
	}

	var idx []mispIndexEntry
	up.call("POST", "/events/index", upPull, map[string]any{"minimal": 1, "published": 1}, 200, &idx)
	if !slices.ContainsFunc(idx, func(e mispIndexEntry) bool {
		return e.UUID == u && e.OrgcUUID == "55f6ea5e-2c60-40e5-964f-47a8950d210f"
	}) {
		t.Fatalf("index = %+v", idx)
	}
	var view struct{ Event shapeEvent }
	up.call("GET", mispViewPath(u), upPull, nil, 200, &view)
	diffShape(t, "events/view", want, shapeOf(view.Event))

	var rs struct{ Response []struct{ Event shapeEvent } }
	up.call("POST", "/events/restSearch", upPull, map[string]any{"returnFormat": "json", "eventid": u}, 200, &rs)
	if len(rs.Response) != 1 {
		t.Fatalf("events/restSearch: %d events", len(rs.Response))
	}
	diffShape(t, "events/restSearch", want, shapeOf(rs.Response[0].Event))

	var objs struct {
		Response []struct{ Object shapeObject }
	}
	up.call("POST", "/objects/restSearch", upPull, map[string]any{"returnFormat": "json", "eventid": u}, 200, &objs)
	got := mispShape{Attrs: map[string]string{}, Objects: map[string]string{}}
	for _, o := range objs.Response {
		o.Object.addTo(&got)
	}
	slices.Sort(got.Refs)
	wantObjs := mispShape{Attrs: map[string]string{}, Objects: want.Objects, Refs: want.Refs}
	for _, o := range orig.Object {
		for _, a := range o.Attribute {
			wantObjs.Attrs[a.UUID] = a.Type + "|" + a.Value
		}
	}
	diffShape(t, "objects/restSearch", wantObjs, got)

	for uuid, tv := range want.Attrs {
		var a struct{ Attribute shapeAttr }
		up.call("GET", "/attributes/view/"+uuid, upPull, nil, 200, &a)
		if a.Attribute.Type+"|"+a.Attribute.Value != tv {
			t.Errorf("attributes/view/%s = %+v, want %s", uuid, a.Attribute, tv)
		}
	}

	var feed struct{ Event shapeEvent }
	up.call("GET", "/feeds/misp/"+u+".json", "", nil, 200, &feed)
	diffShape(t, "feed", want, shapeOf(feed.Event))

	// The chain: down pulls up as a MISP server. The originator stays
	// CIRCL; Org is down's own.
	writeFile(t, downDir, "up.key", upPull+"\n")
	down := runGateway(t, mispPeerConfig(t, downRedis, downDir,
		fmt.Sprintf("  - {name: up-misp, type: misp, url: %q, key_file: up.key, interval: 1s}", up.base),
		"- {id: x, name: Constituent X, sectors: [health]}\n",
		"misp: {org_name: CSIRT Down, org_uuid: 8b2d3c4e-5f60-4b7c-9d8e-0f1a2b3c4d5e}"))
	downKey := issueKey(t, down.base, "/api/v1/constituents/x/keys")
	waitFor(t, "down to pull the event", 20*time.Second, func() bool { _, ok := hasEvent(t, down.base, u); return ok })
	var chained struct {
		Event struct {
			shapeEvent
			Org struct{ Name string } `json:"Org"`
		}
	}
	down.call("GET", mispViewPath(u), downKey, nil, 200, &chained)
	diffShape(t, "down's events/view", want, shapeOf(chained.Event.shapeEvent))
	if chained.Event.Org.Name != "CSIRT Down" {
		t.Errorf("down serves Org %q, want CSIRT Down", chained.Event.Org.Name)
	}
	_, raw := down.call("GET", "/events/view/"+u, downKey, nil, 200, nil)
	if !strings.Contains(string(raw), `"Orgc":{"id":"`) {
		t.Errorf("down's Orgc has no id: %.300s", raw)
	}
}
