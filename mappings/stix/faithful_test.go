package stix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	stixschema "github.com/schakel/schakel/schemas/stix"
)

// documented lists every way a STIX → canonical → STIX trip may differ
// from its input, and why. TestFaithful fails on any other difference.
var documented = map[string]string{
	"container":      "a report or grouping becomes the event; Schakel writes it back as report--<same uuid>, holding the event's content",
	"tlp-marking":    "TLP 1.0 and 2.0 marking definitions become the event's TLP; Schakel ships the TLP 2.0 definition of it",
	"tlp-extension":  "the TLP 2.0 extension definition is written by Schakel (same id and content as OASIS publishes)",
	"observable-id":  "observables Schakel maps get their STIX 2.1 §2.9 deterministic id; a source id of another form does not survive",
	"observable":     "an observable Schakel maps is written from its indicators: the event's marking, only the properties Schakel maps",
	"observed-data":  "an observed-data Schakel maps to indicators is rewritten from them: same id, the event's created and modified",
	"spec_version":   "a STIX 2.0 object without spec_version gets \"spec_version\": \"2.1\"",
	"invalid-object": "an object that does not validate against the STIX 2.1 schemas is not relayed verbatim (reported by Decode)",
	"no-event":       "an object no event holds (a lone identity or marking) is not relayed (reported by DecodeAll)",
}

// sourceFixtures are the bundles copied verbatim from the project's shared
// STIX fixtures (see testdata/SOURCES.txt).
var sourceFixtures = []string{"misp-stix-groupings", "oasis-indicator-url", "oasis-file-hash", "oasis-sighting",
	"oasis-threat-actor", "oasis-markings", "medallion-envelope", "tlp2-clear", "tlp2-amber-strict"}

// TestFaithful maps every shared fixture to canonical events and back and
// checks, object by object, that the output keeps every object with its
// id, created, modified, pattern text and references, that every output
// object validates, and that no reference in the output dangles that did
// not dangle in the input. Differences are listed; each must be one of
// documented.
func TestFaithful(t *testing.T) {
	for _, name := range sourceFixtures {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/golden", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			in := inputObjects(t, data)
			res, err := DecodeAll(data)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]map[string]any{}
			outRaw := map[string][]byte{}
			for _, ev := range res.Events {
				normalize.Event(ev)
				ev.Source.Name = "faithful"
				objs, err := EncodeObjects(ev, EncodeOptions{})
				if err != nil {
					t.Fatalf("EncodeObjects: %v", err)
				}
				for _, o := range objs {
					if errs := stixschema.ValidateObject(o.JSON); errs != nil {
						t.Errorf("%s does not validate: %v", o.ID, errs)
					}
					var m map[string]any
					if err := json.Unmarshal(o.JSON, &m); err != nil {
						t.Fatal(err)
					}
					out[o.ID], outRaw[o.ID] = m, o.JSON
				}
			}
			diffs := faithDiffs(in, out, res, pointers(t, data))
			for _, d := range diffs {
				reason, ok := documented[d.kind]
				if !ok {
					t.Errorf("undocumented difference %s: %s", d.kind, d.what)
					continue
				}
				t.Logf("%s: %s (%s)", d.kind, d.what, reason)
			}
			danglingRefs(t, in, out)
		})
	}
}

type faithDiff struct{ kind, what string }

func faithDiffs(in, out map[string]map[string]any, res *Decoded, ptrs map[string][]string) []faithDiff {
	var diffs []faithDiff
	add := func(kind, format string, args ...any) {
		diffs = append(diffs, faithDiff{kind, fmt.Sprintf(format, args...)})
	}
	// invalid and unused: by the input pointers of an id.
	reported := func(id string, also func(ptr string) bool) bool {
		for _, p := range ptrs[id] {
			if also(p) {
				return true
			}
		}
		return false
	}
	invalid := func(id string) bool {
		return reported(id, func(p string) bool {
			for _, fe := range res.Errors {
				if strings.Contains(fe.Message, "not relayed") && (fe.Field == p || strings.HasPrefix(fe.Field, p+"/")) {
					return true
				}
			}
			return false
		})
	}
	unused := func(id string) bool {
		return reported(id, func(p string) bool { return res.Unused[p] != "" })
	}
	ids := make([]string, 0, len(in))
	for id := range in {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		src := in[id]
		typ, _ := src["type"].(string)
		if rev, _ := src["revoked"].(bool); rev || id == "" {
			continue
		}
		got := out[id]
		switch {
		case typ == "report" || typ == "grouping":
			uuid := strings.TrimPrefix(id, typ+"--")
			if out["report--"+uuid] == nil {
				add("container-lost", "%s has no report--%s", id, uuid)
			} else {
				add("container", "%s", id)
			}
		case typ == "marking-definition" && (src["definition_type"] == "tlp" || tlp20ByID[id] != "" || bytes.Contains(mustJSON(src), []byte(TLP20Extension))):
			add("tlp-marking", "%s", id)
		case id == TLP20Extension:
			add("tlp-extension", "%s", id)
		case got == nil && scoMapped(typ):
			add("observable-id", "%s", id)
		case got == nil && invalid(id):
			add("invalid-object", "%s", id)
		case got == nil && sharedType(typ) && unused(id):
			add("no-event", "%s", id)
		case got == nil:
			add("lost", "%s (%s) is not in the output", id, typ)
		case typ == "indicator":
			for _, k := range []string{"created", "modified", "pattern", "pattern_type"} {
				if src[k] != got[k] {
					add("indicator-changed", "%s %s %v came back as %v", id, k, src[k], got[k])
				}
			}
		case typ == "observed-data" && !jsonEqual(src, got):
			add("observed-data", "%s", id)
		case scoMapped(typ) && !jsonEqual(src, got):
			add("observable", "%s", id)
		case !jsonEqual(src, got):
			if _, ok := src["spec_version"]; !ok {
				c := maps(src)
				c["spec_version"] = "2.1"
				if jsonEqual(c, got) {
					add("spec_version", "%s", id)
					continue
				}
			}
			add("changed", "%s changed:\n%s\n%s", id, mustJSON(src), mustJSON(got))
		}
	}
	return diffs
}

// pointers gives the JSON pointers of each id in the input.
func pointers(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	var doc struct {
		Objects []struct {
			ID string `json:"id"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for i, o := range doc.Objects {
		out[o.ID] = append(out[o.ID], fmt.Sprintf("/objects/%d", i))
	}
	return out
}

func maps(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func jsonEqual(a, b any) bool { return bytes.Equal(mustJSON(a), mustJSON(b)) }

// refsOf lists the identifiers an object refers to.
func refsOf(m map[string]any) []string {
	var out []string
	for k, v := range m {
		switch {
		case strings.HasSuffix(k, "_ref"):
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		case strings.HasSuffix(k, "_refs"):
			list, _ := v.([]any)
			for _, x := range list {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// danglingRefs fails for a reference in the output that resolves neither
// in the output nor to a predefined TLP 1.0 marking, unless it did not
// resolve in the input either.
// oasisIdentity is the OASIS TC's identity, created_by_ref of the TLP 2.0
// extension definition as OASIS publishes it (not shipped by OASIS either).
const oasisIdentity = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"

func danglingRefs(t *testing.T, in, out map[string]map[string]any) {
	t.Helper()
	for id, m := range out {
		for _, r := range refsOf(m) {
			if out[r] != nil || tlp10IDs[r] != "" || in[r] == nil && in[id] != nil || r == oasisIdentity && id == TLP20Extension {
				continue
			}
			t.Errorf("%s refers to %s, which the output does not hold", id, r)
		}
	}
}

// TestPassThroughProjection: a projection that leaves an indicator out
// leaves out the relationships and sightings about it, and what refers to
// those, so nothing in the output dangles.
func TestPassThroughProjection(t *testing.T) {
	const (
		ind1 = "indicator--11111111-1111-4111-8111-111111111111"
		ind2 = "indicator--22222222-2222-4222-8222-222222222222"
		mal  = "malware--33333333-3333-4333-8333-333333333333"
	)
	objs := []json.RawMessage{
		json.RawMessage(`{"type":"malware","id":"` + mal + `"}`),
		json.RawMessage(`{"type":"relationship","id":"relationship--a","source_ref":"` + ind1 + `","target_ref":"` + mal + `"}`),
		json.RawMessage(`{"type":"relationship","id":"relationship--b","source_ref":"` + ind2 + `","target_ref":"` + mal + `"}`),
		json.RawMessage(`{"type":"sighting","id":"sighting--c","sighting_of_ref":"` + ind2 + `"}`),
		json.RawMessage(`{"type":"note","id":"note--d","object_refs":["relationship--b"]}`),
		json.RawMessage(`{"type":"relationship","id":"relationship--e","source_ref":"threat-actor--elsewhere","target_ref":"` + mal + `"}`),
	}
	ids := func(raws []json.RawMessage) []string {
		var out []string
		for _, r := range raws {
			var o struct{ ID string }
			_ = json.Unmarshal(r, &o)
			out = append(out, o.ID)
		}
		return out
	}
	tests := []struct {
		name    string
		present []string
		want    []string
	}{
		{"all there", []string{ind1, ind2}, []string{mal, "relationship--a", "relationship--b", "sighting--c", "note--d", "relationship--e"}},
		{"ind2 projected away", []string{ind1}, []string{mal, "relationship--a", "relationship--e"}},
		{"no indicators", nil, []string{mal, "relationship--e"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			present := map[string]bool{}
			for _, id := range tc.present {
				present[id] = true
			}
			if got := ids(PassThrough(objs, present)); !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEncodeProjectedNotification: Encode applies PassThrough, so a
// notification projected to one recipient's indicators carries no
// relationship about another's.
func TestEncodeProjectedNotification(t *testing.T) {
	data := []byte(`{"type":"bundle","id":"bundle--0b3c2b6e-3b7e-4d2e-9d8e-2a1f0c9b8a7d","objects":[
	{"type":"indicator","spec_version":"2.1","id":"indicator--11111111-1111-4111-8111-111111111111","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
	{"type":"indicator","spec_version":"2.1","id":"indicator--22222222-2222-4222-8222-222222222222","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
	{"type":"malware","spec_version":"2.1","id":"malware--33333333-3333-4333-8333-333333333333","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"m","is_family":true},
	{"type":"relationship","spec_version":"2.1","id":"relationship--44444444-4444-4444-8444-444444444444","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","relationship_type":"indicates","source_ref":"indicator--22222222-2222-4222-8222-222222222222","target_ref":"malware--33333333-3333-4333-8333-333333333333"}]}`)
	evs, errs, err := Decode(data)
	if err != nil || len(errs) > 0 || len(evs) != 1 {
		t.Fatalf("Decode: %v %v (%d events)", err, errs, len(evs))
	}
	ev := evs[0]
	normalize.Event(ev)
	ev.Kind = gateway.KindNotification
	ev.Indicators = ev.Indicators[:1] // the recipient owns 192.0.2.1 only
	out, err := Encode(ev, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("relationship--44444444")) || bytes.Contains(out, []byte("indicator--22222222")) {
		t.Errorf("the projection shows the other recipient's indicator or its relationship:\n%s", out)
	}
	if !bytes.Contains(out, []byte("malware--33333333")) {
		t.Errorf("malware not passed through:\n%s", out)
	}
}
