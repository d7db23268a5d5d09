package misp

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

var testOrg = EncodeOptions{OrgName: "Schakel Test CSIRT", OrgUUID: "5c4a3b2e-1d0f-4e9a-8b7c-6d5e4f3a2b1c", Published: true}

// store does to a decoded event what the pipeline does before it stores
// it: normalise, then fill in the defaults. It fails the test when the
// normaliser rejects more than single indicators.
func store(t testing.TB, ev *gateway.Event) {
	t.Helper()
	for _, fe := range normalize.Event(ev) {
		if !strings.HasPrefix(fe.Field, "/indicators/") {
			t.Fatalf("normalize rejects the event itself: %v", fe)
		}
	}
	if ev.TLP == "" {
		ev.TLP = gateway.TLPAmber
	}
	if ev.ID == "" {
		ev.ID = "derived:" + ev.Source.Ref
	}
	fixed := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	if ev.Created.IsZero() {
		ev.Created = fixed
	}
	if ev.Modified.IsZero() {
		ev.Modified = ev.Created
	}
	if ev.Priority == "" {
		ev.Priority = gateway.PriorityNormal
	}
}

// mispDoc is the generic shape of a MISP document for comparing attributes
// as MISP sees them.
type mispAttr struct {
	UUID     string `json:"uuid"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	ToIDs    any    `json:"to_ids"`
	Deleted  any    `json:"deleted"`
	Relation any    `json:"object_relation"`
	Tag      []struct {
		Name  string `json:"name"`
		Local any    `json:"local"`
	} `json:"Tag"`
	AttributeTag []struct {
		Tag struct {
			Name string `json:"name"`
		} `json:"Tag"`
	} `json:"AttributeTag"`
}

type mispObj struct {
	UUID      string     `json:"uuid"`
	Deleted   any        `json:"deleted"`
	Attribute []mispAttr `json:"Attribute"`
}

type mispEv struct {
	UUID      string     `json:"uuid"`
	Attribute []mispAttr `json:"Attribute"`
	Object    []mispObj  `json:"Object"`
	Tag       []struct {
		Name  string `json:"name"`
		Local any    `json:"local"`
	} `json:"Tag"`
	EventTag []struct {
		Tag struct {
			Name string `json:"name"`
		} `json:"Tag"`
	} `json:"EventTag"`
}

// flatAttr is an attribute with the object it sits in.
type flatAttr struct {
	mispAttr
	object string
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

func (e *mispEv) attributes() []flatAttr {
	var out []flatAttr
	for _, a := range e.Attribute {
		if !truthy(a.Deleted) {
			out = append(out, flatAttr{mispAttr: a})
		}
	}
	for _, o := range e.Object {
		if truthy(o.Deleted) {
			continue
		}
		for _, a := range o.Attribute {
			if !truthy(a.Deleted) {
				out = append(out, flatAttr{mispAttr: a, object: strings.ToLower(o.UUID)})
			}
		}
	}
	return out
}

func (a *flatAttr) tags() []string {
	var out []string
	for _, t := range a.Tag {
		if !truthy(t.Local) && !strings.HasPrefix(strings.ToLower(t.Name), "tlp:") {
			out = append(out, t.Name)
		}
	}
	for _, t := range a.AttributeTag {
		out = append(out, t.Tag.Name)
	}
	slices.Sort(out)
	return out
}

// mispEvents reads the events of any accepted form, for the test's own
// view of the input.
func mispEvents(t *testing.T, data []byte) []mispEv {
	t.Helper()
	var top any
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	var out []mispEv
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		switch x := v.(type) {
		case []any:
			for _, el := range x {
				walk(el, depth+1)
			}
		case map[string]any:
			if e, ok := x["Event"]; ok {
				walk(e, depth+1)
				return
			}
			if r, ok := x["response"]; ok {
				walk(r, depth+1)
				return
			}
			b, _ := json.Marshal(x)
			var e mispEv
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	walk(top, 0)
	return out
}

// sameValue says whether MISP would store got for orig: Schakel lower-cases
// hashes, domains and e-mail domains, refangs, compresses IPv6 and writes AS
// numbers without the prefix, as MISP itself does on save.
func sameValue(mispType, orig, got string) bool {
	if orig == got {
		return true
	}
	if strings.HasSuffix(mispType, "|port") && !strings.Contains(orig, "|") {
		// MISP rewrites 192.0.2.1:80 and [2001:db8::1]:80 as ip|port.
		if ip, port, ok := splitIPPort(orig); ok {
			orig = ip + "|" + port
		}
	}
	op, gp := strings.Split(orig, "|"), strings.Split(got, "|")
	if len(op) != len(gp) {
		return false
	}
	for i := range op {
		o := strings.TrimSuffix(normalize.Refang(op[i]), ".")
		g := gp[i]
		if mispType == "AS" {
			o = strings.TrimPrefix(strings.ToUpper(o), "AS")
		}
		if strings.EqualFold(o, g) {
			continue
		}
		oa, err1 := netip.ParseAddr(o)
		ga, err2 := netip.ParseAddr(g)
		if err1 != nil || err2 != nil || oa != ga {
			return false
		}
	}
	return true
}

// TestRoundTripFixtures: MISP → canonical (as stored) → MISP keeps, for
// every event in every MISP fixture, the event uuid, every attribute's
// uuid, type, value, to_ids, tags and object, the event tags and the TLP.
func TestRoundTripFixtures(t *testing.T) {
	ran := 0
	for _, in := range goldenInputs(t) {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		evs, ferrs, err := Decode(data)
		if err != nil || slices.ContainsFunc(ferrs, func(fe gateway.FieldError) bool {
			return strings.Contains(fe.Field, "/Attribute") || strings.Contains(fe.Field, "/Object") || strings.Contains(fe.Field, "/Tag")
		}) {
			// Not an event document, or one built with broken attributes:
			// the golden files show what becomes of those.
			continue
		}
		originals := mispEvents(t, data)
		if len(originals) != len(evs) {
			t.Fatalf("%s: test read %d events, Decode %d", in, len(originals), len(evs))
		}
		for i, ev := range evs {
			orig := originals[i]
			name := filepath.Base(in) + "/" + orig.UUID
			t.Run(name, func(t *testing.T) {
				ran++
				store(t, ev)
				wantTLP := ev.TLP
				e, err := EncodeEvent(ev, testOrg)
				if wantTLP == gateway.TLPRed {
					if !errors.Is(err, ErrRed) {
						t.Fatalf("RED event encoded: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				// An attribute search result names no event: any uuid will do.
				if orig.UUID != "" && e.UUID != strings.ToLower(orig.UUID) {
					t.Errorf("event uuid %s, want %s", e.UUID, orig.UUID)
				}
				checkCategories(t, e)
				checkEventTags(t, orig, e, wantTLP)
				checkAttributes(t, orig, e)

				// And the TLP survives a second trip through Decode.
				b, err := Encode(ev, testOrg)
				if err != nil {
					t.Fatal(err)
				}
				again, _, err := Decode(b)
				if err != nil || len(again) != 1 {
					t.Fatalf("decode own output: %v (%d events)", err, len(again))
				}
				if again[0].TLP != wantTLP {
					t.Errorf("TLP after a second trip %s, want %s", again[0].TLP, wantTLP)
				}
			})
		}
	}
	if ran < 10 {
		t.Errorf("only %d fixture events round-tripped", ran)
	}
}

func checkEventTags(t *testing.T, orig mispEv, e *Event, tlp gateway.TLP) {
	t.Helper()
	var tlpTags []Tag
	got := map[string]bool{}
	for _, tg := range e.Tag {
		if strings.HasPrefix(tg.Name, "tlp:") {
			tlpTags = append(tlpTags, tg)
		}
		got[tg.Name] = true
	}
	if len(tlpTags) != 1 || tlpTags[0].Name != tlp.MachineTag() || tlpTags[0].Local || !tlpTags[0].Exportable {
		t.Errorf("tlp tags %+v, want exactly one %s, local false, exportable", tlpTags, tlp.MachineTag())
	}
	var want []string
	for _, tg := range orig.Tag {
		if !truthy(tg.Local) {
			want = append(want, tg.Name)
		}
	}
	for _, et := range orig.EventTag {
		want = append(want, et.Tag.Name)
	}
	for _, w := range want {
		if strings.HasPrefix(strings.ToLower(w), "tlp:") {
			// Folded into the one tlp tag: the taxonomy is exclusive, so
			// tlp:white and tlp:ex:chr do not go out (Schakel's Orgc hides
			// the source anyway).
			continue
		}
		if !got[w] {
			t.Errorf("event tag %q lost", w)
		}
	}
}

func checkAttributes(t *testing.T, orig mispEv, e *Event) {
	t.Helper()
	byUUID := map[string]Attribute{}
	objOf := map[string]string{}
	count := 0
	add := func(a Attribute, obj string) {
		count++
		if _, dup := byUUID[a.UUID]; dup {
			t.Errorf("attribute uuid %s used twice", a.UUID)
		}
		if !validUUID(a.UUID) {
			t.Errorf("attribute uuid %q is not valid", a.UUID)
		}
		byUUID[a.UUID] = a
		objOf[a.UUID] = obj
	}
	for _, a := range e.Attribute {
		add(a, "")
	}
	for _, o := range e.Object {
		for _, a := range o.Attribute {
			add(a, o.UUID)
			if a.ObjectRelation == "" {
				t.Errorf("object attribute %s has no object_relation", a.UUID)
			}
		}
	}
	if e.AttributeCount != strconv.Itoa(count) {
		t.Errorf("attribute_count %s, want %d", e.AttributeCount, count)
	}
	for _, a := range orig.attributes() {
		if a.Type == "vulnerability" {
			// Kept in Event.Vulnerabilities, which has no room for the
			// attribute uuid: look it up by value.
			found := false
			for _, g := range e.Attribute {
				if cve, err := normalize.CVE(a.Value); err == nil && g.Type == "vulnerability" && g.Value == cve {
					found = true
				}
			}
			if !found {
				t.Errorf("vulnerability %s lost", a.Value)
			}
			continue
		}
		g, ok := byUUID[strings.ToLower(a.UUID)]
		if !ok {
			t.Errorf("attribute %s (%s %q) lost", a.UUID, a.Type, a.Value)
			continue
		}
		if g.Type != a.Type {
			t.Errorf("attribute %s: type %s, want %s", a.UUID, g.Type, a.Type)
		}
		if !sameValue(a.Type, a.Value, g.Value) {
			t.Errorf("attribute %s (%s): value %q, want %q", a.UUID, a.Type, g.Value, a.Value)
		}
		if g.ToIDs != truthy(a.ToIDs) {
			t.Errorf("attribute %s: to_ids %v, want %v", a.UUID, g.ToIDs, truthy(a.ToIDs))
		}
		var gt []string
		for _, tg := range g.Tag {
			gt = append(gt, tg.Name)
		}
		slices.Sort(gt)
		if !slices.Equal(gt, a.tags()) {
			t.Errorf("attribute %s: tags %q, want %q", a.UUID, gt, a.tags())
		}
		if objOf[g.UUID] != a.object {
			t.Errorf("attribute %s: in object %q, want %q", a.UUID, objOf[g.UUID], a.object)
		}
		if rel, _ := a.Relation.(string); a.object != "" && rel != "" && g.ObjectRelation != rel {
			t.Errorf("attribute %s: object_relation %q, want %q", a.UUID, g.ObjectRelation, rel)
		}
	}
}
