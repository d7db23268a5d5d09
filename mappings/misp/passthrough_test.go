package misp

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// objectEvent is a MISP event with two file objects, a reference from each
// to the other and to a top-level attribute, and an attachment.
const objectEvent = `{"Event":{"uuid":"7a0c8a3e-5b1d-4c2e-9f3a-1b2c3d4e5f60","info":"objects","date":"2026-11-20",
 "timestamp":"1795255200","threat_level_id":"4","analysis":"1","distribution":"1",
 "Orgc":{"id":"7","name":"Upstream CERT","uuid":"11111111-2222-4333-8444-555555555555"},
 "Tag":[{"name":"tlp:amber"}],
 "Galaxy":[{"uuid":"698774c7-8022-42c4-917f-8d6e4f06ada3","name":"Threat Actor","GalaxyCluster":[{"value":"APT1","tag_name":"misp-galaxy:threat-actor=\"APT1\"","meta":{"country":["CN"]}}]}],
 "Attribute":[{"uuid":"a0000000-0000-4000-8000-000000000001","type":"ip-dst","category":"Network activity","value":"198.51.100.7","to_ids":true,"timestamp":"1795255100","disable_correlation":true,"last_seen":"2026-11-19T10:00:00.000000+00:00"},
  {"uuid":"a0000000-0000-4000-8000-000000000009","type":"attachment","category":"External analysis","value":"report.pdf","data":"UEsDBAoAAAAAAA=="}],
 "Object":[
  {"uuid":"b0000000-0000-4000-8000-000000000001","name":"file","meta-category":"file","template_uuid":"688c46fb-5edb-40a3-8273-1af7923e2215","template_version":"24","distribution":"3","comment":"dropper","timestamp":"1795255000",
   "Attribute":[{"uuid":"a0000000-0000-4000-8000-000000000002","type":"md5","category":"Payload delivery","value":"0123456789abcdef0123456789abcdef","object_relation":"md5","timestamp":"1795254000"},
                {"uuid":"a0000000-0000-4000-8000-000000000003","type":"filename","category":"Payload delivery","value":"drop.exe","object_relation":"filename"}],
   "ObjectReference":[{"uuid":"c0000000-0000-4000-8000-000000000001","referenced_uuid":"b0000000-0000-4000-8000-000000000002","relationship_type":"drops","timestamp":"1795255000"},
                      {"uuid":"c0000000-0000-4000-8000-000000000002","referenced_uuid":"a0000000-0000-4000-8000-000000000001","relationship_type":"connects-to"},
                      {"uuid":"c0000000-0000-4000-8000-000000000003","referenced_uuid":"d0000000-0000-4000-8000-000000000099","relationship_type":"related-to"}]},
  {"uuid":"b0000000-0000-4000-8000-000000000002","name":"file","meta-category":"file","distribution":"0",
   "Attribute":[{"uuid":"a0000000-0000-4000-8000-000000000004","type":"sha256","category":"Payload delivery","value":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","object_relation":"sha256"}],
   "ObjectReference":[{"uuid":"c0000000-0000-4000-8000-000000000004","referenced_uuid":"b0000000-0000-4000-8000-000000000001","relationship_type":"dropped-by"}]}]}}`

func decodeOne(t *testing.T, data string, o DecodeOptions) (*gateway.Event, []gateway.FieldError) {
	t.Helper()
	evs, errs, err := DecodeWith([]byte(data), o)
	if err != nil || len(evs) != 1 {
		t.Fatalf("decode: %v (%d events)", err, len(evs))
	}
	store(t, evs[0])
	return evs[0], errs
}

func findObject(e *Event, uuid string) *Object {
	for i := range e.Object {
		if e.Object[i].UUID == uuid {
			return &e.Object[i]
		}
	}
	return nil
}

func findAttr(e *Event, uuid string) *Attribute {
	for i := range e.Attribute {
		if e.Attribute[i].UUID == uuid {
			return &e.Attribute[i]
		}
	}
	for i := range e.Object {
		for j := range e.Object[i].Attribute {
			if e.Object[i].Attribute[j].UUID == uuid {
				return &e.Object[i].Attribute[j]
			}
		}
	}
	return nil
}

func TestPassThroughEncode(t *testing.T) {
	ev, errs := decodeOne(t, objectEvent, DecodeOptions{})
	if len(errs) > 0 {
		t.Fatalf("field errors: %v", errs)
	}
	e, err := EncodeEvent(ev, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	if e.Orgc.Name != "Upstream CERT" || e.Orgc.UUID != "11111111-2222-4333-8444-555555555555" || e.Org.Name != testOrg.OrgName {
		t.Errorf("Orgc %+v, Org %+v: want the originator as Orgc and Schakel as Org", e.Orgc, e.Org)
	}
	if e.ThreatLevelID != "4" || e.Analysis != "1" || e.Date != "2026-11-20" {
		t.Errorf("threat_level_id %s analysis %s date %s", e.ThreatLevelID, e.Analysis, e.Date)
	}
	if len(e.Galaxy) != 1 || !strings.Contains(string(e.Galaxy[0]), `"country":["CN"]`) {
		t.Errorf("Galaxy %s", e.Galaxy)
	}
	o1 := findObject(e, "b0000000-0000-4000-8000-000000000001")
	if o1 == nil {
		t.Fatal("object 1 missing")
	}
	if o1.TemplateUUID != "688c46fb-5edb-40a3-8273-1af7923e2215" || o1.TemplateVersion != "24" || o1.Comment != "dropper" || o1.Timestamp != "1795255000" {
		t.Errorf("object 1 %+v", o1)
	}
	// distribution 3 is wider than the amber event is served (1): inherit.
	if o1.Distribution != "5" {
		t.Errorf("object 1 distribution %s, want 5", o1.Distribution)
	}
	if o2 := findObject(e, "b0000000-0000-4000-8000-000000000002"); o2 == nil || o2.Distribution != "0" {
		t.Errorf("object 2 %+v: want distribution 0 kept (stricter than the event)", o2)
	}
	var refs []string
	for _, r := range o1.ObjectReference {
		refs = append(refs, r.ReferencedUUID+" "+r.RelationshipType+" "+r.ObjectUUID)
	}
	want := []string{
		"b0000000-0000-4000-8000-000000000002 drops b0000000-0000-4000-8000-000000000001",
		"a0000000-0000-4000-8000-000000000001 connects-to b0000000-0000-4000-8000-000000000001",
		"d0000000-0000-4000-8000-000000000099 related-to b0000000-0000-4000-8000-000000000001",
	}
	if !slices.Equal(refs, want) {
		t.Errorf("references %q, want %q", refs, want)
	}
	a1 := findAttr(e, "a0000000-0000-4000-8000-000000000001")
	if a1 == nil || !a1.DisableCorrelation || a1.Timestamp != "1795255100" || a1.LastSeen != "2026-11-19T10:00:00.000000+00:00" {
		t.Errorf("attribute 1 %+v", a1)
	}
	if a2 := findAttr(e, "a0000000-0000-4000-8000-000000000002"); a2 == nil || a2.Timestamp != "1795254000" {
		t.Errorf("attribute 2 %+v: want its own timestamp", a2)
	}
	if a9 := findAttr(e, "a0000000-0000-4000-8000-000000000009"); a9 == nil || a9.Data != "UEsDBAoAAAAAAA==" {
		t.Errorf("attachment %+v: want its data back", a9)
	}
}

func TestDecodeDataLimit(t *testing.T) {
	ev, errs := decodeOne(t, objectEvent, DecodeOptions{MaxDataBytes: 8})
	var found bool
	for _, fe := range errs {
		if fe.Field == "/Event/Attribute/1/data" && strings.Contains(fe.Message, "a0000000-0000-4000-8000-000000000009") {
			found = true
		}
	}
	if !found {
		t.Errorf("no field error names the attachment whose data was dropped: %v", errs)
	}
	e, err := EncodeEvent(ev, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	if a := findAttr(e, "a0000000-0000-4000-8000-000000000009"); a == nil || a.Data != "" {
		t.Errorf("attachment %+v: data beyond the limit must not be kept", a)
	}
}

func TestPrune(t *testing.T) {
	ev, _ := decodeOne(t, objectEvent, DecodeOptions{})
	ext := ev.Extensions.MISP
	all := presentUUIDs(ev)
	tests := []struct {
		name     string
		drop     []string
		objects  []string // kept objects
		refs     []string // kept references' uuids
		noAttrOf []string // no per-attribute entry left
	}{
		{"nothing removed", nil,
			[]string{"b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"},
			[]string{"c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002", "c0000000-0000-4000-8000-000000000003", "c0000000-0000-4000-8000-000000000004"}, nil},
		{"referenced attribute removed", []string{"a0000000-0000-4000-8000-000000000001"},
			[]string{"b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"},
			[]string{"c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000003", "c0000000-0000-4000-8000-000000000004"},
			[]string{"a0000000-0000-4000-8000-000000000001"}},
		{"object emptied", []string{"a0000000-0000-4000-8000-000000000004"},
			[]string{"b0000000-0000-4000-8000-000000000001"},
			[]string{"c0000000-0000-4000-8000-000000000002", "c0000000-0000-4000-8000-000000000003"},
			[]string{"a0000000-0000-4000-8000-000000000004"}},
		{"one member of two removed", []string{"a0000000-0000-4000-8000-000000000003"},
			[]string{"b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"},
			[]string{"c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002", "c0000000-0000-4000-8000-000000000003", "c0000000-0000-4000-8000-000000000004"},
			[]string{"a0000000-0000-4000-8000-000000000003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			present := map[string]bool{}
			for u := range all {
				present[u] = !slices.Contains(tt.drop, u)
			}
			var x extMISP
			if err := json.Unmarshal(Prune(ext, present), &x); err != nil {
				t.Fatal(err)
			}
			var objs, refs []string
			for _, o := range x.Objects {
				objs = append(objs, o.UUID)
				for _, r := range o.References {
					refs = append(refs, r.UUID)
				}
				for _, u := range o.Attributes {
					if !present[u] {
						t.Errorf("object %s still lists %s", o.UUID, u)
					}
				}
			}
			if !slices.Equal(objs, tt.objects) || !slices.Equal(refs, tt.refs) {
				t.Errorf("objects %v refs %v, want %v %v", objs, refs, tt.objects, tt.refs)
			}
			for _, u := range tt.noAttrOf {
				if _, ok := x.Attributes[u]; ok {
					t.Errorf("attribute %s still has its details", u)
				}
			}
		})
	}
	if got := Prune(json.RawMessage(`"not ours"`), nil); string(got) != `"not ours"` {
		t.Errorf("foreign extension changed: %s", got)
	}
}

// randomObjectEvent is a MISP event with objects holding attributes of
// several types and references between objects and attributes, top-level
// ones included.
func randomObjectEvent(r *rand.Rand, n int) []byte {
	type ref struct {
		UUID             string `json:"uuid"`
		ReferencedUUID   string `json:"referenced_uuid"`
		RelationshipType string `json:"relationship_type"`
	}
	type attr struct {
		UUID           string `json:"uuid"`
		Type           string `json:"type"`
		Value          string `json:"value"`
		ObjectRelation string `json:"object_relation,omitempty"`
	}
	type object struct {
		UUID            string `json:"uuid"`
		Name            string `json:"name"`
		Attribute       []attr `json:"Attribute"`
		ObjectReference []ref  `json:"ObjectReference"`
	}
	seq := 0
	uuid := func(kind int) string { seq++; return fmt.Sprintf("%08x-0000-4000-8000-%012d", kind, seq) }
	newAttr := func() attr {
		u := uuid(1)
		switch r.IntN(4) {
		case 0:
			return attr{UUID: u, Type: "ip-dst", Value: fmt.Sprintf("10.0.%d.%d", seq/250, seq%250+1)}
		case 1:
			return attr{UUID: u, Type: "domain", Value: fmt.Sprintf("h%d.example.org", seq)}
		case 2:
			return attr{UUID: u, Type: "md5", Value: fmt.Sprintf("%032x", seq)}
		}
		return attr{UUID: u, Type: "url", Value: fmt.Sprintf("https://h%d.example.org/x", seq)}
	}
	var top []attr
	for range 1 + r.IntN(3) {
		top = append(top, newAttr())
	}
	objs := make([]object, 1+r.IntN(n))
	var targets []string
	for _, a := range top {
		targets = append(targets, a.UUID)
	}
	for i := range objs {
		objs[i] = object{UUID: uuid(2), Name: "file"}
		targets = append(targets, objs[i].UUID)
		for range 1 + r.IntN(4) {
			a := newAttr()
			a.ObjectRelation = a.Type
			objs[i].Attribute = append(objs[i].Attribute, a)
			targets = append(targets, a.UUID)
		}
	}
	for i := range objs {
		for range r.IntN(4) {
			objs[i].ObjectReference = append(objs[i].ObjectReference, ref{UUID: uuid(3), ReferencedUUID: targets[r.IntN(len(targets))], RelationshipType: "related-to"})
		}
	}
	b, _ := json.Marshal(map[string]any{"Event": map[string]any{
		"uuid": "5c0661f7-77a0-4ec9-bdcf-d447950d210f", "info": "random", "timestamp": "1795255200",
		"Tag": []map[string]string{{"name": "tlp:green"}}, "Attribute": top, "Object": objs,
	}})
	return b
}

// TestPruneProperty: whatever subset of indicators a projection keeps, no
// ObjectReference in the output points to an attribute or object that is
// not in it, and no object is left empty.
func TestPruneProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(20261208, 1))
	for i := range 300 {
		data := randomObjectEvent(r, 6)
		evs, errs, err := Decode(data)
		if err != nil || len(errs) > 0 || len(evs) != 1 {
			t.Fatalf("case %d: decode: %v %v", i, err, errs)
		}
		ev := evs[0]
		store(t, ev)
		inds := ev.Indicators[:0]
		for _, ind := range ev.Indicators {
			if r.IntN(3) != 0 {
				inds = append(inds, ind)
			}
		}
		ev.Indicators = inds
		if len(ev.Indicators) == 0 {
			continue
		}
		e, err := EncodeEvent(ev, testOrg)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		have := map[string]bool{}
		for _, a := range e.Attribute {
			have[a.UUID] = true
		}
		for _, o := range e.Object {
			have[o.UUID] = true
			if len(o.Attribute) == 0 {
				t.Errorf("case %d: object %s is empty", i, o.UUID)
			}
			for _, a := range o.Attribute {
				have[a.UUID] = true
			}
		}
		for _, o := range e.Object {
			for _, ref := range o.ObjectReference {
				if !have[ref.ReferencedUUID] {
					t.Fatalf("case %d: object %s references %s, which the output does not hold\n%s", i, o.UUID, ref.ReferencedUUID, data)
				}
			}
		}
	}
}

// TestDecodeDataOnlyForFiles: "data" is kept for attachment and
// malware-sample attributes only.
func TestDecodeDataOnlyForFiles(t *testing.T) {
	ev, _ := decodeOne(t, `{"Event":{"uuid":"7a0c8a3e-5b1d-4c2e-9f3a-1b2c3d4e5f60","info":"x","timestamp":"1795255200",
 "Attribute":[{"uuid":"a0000000-0000-4000-8000-000000000001","type":"text","value":"note","data":"SGlkZGVu"}]}}`, DecodeOptions{})
	if ev.Extensions == nil || strings.Contains(string(ev.Extensions.MISP), "SGlkZGVu") {
		t.Errorf("extensions.misp %v: data of a text attribute kept", ev.Extensions)
	}
}
