package stix

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	stixschema "github.com/schakel/schakel/schemas/stix"
)

// sharedFixtures are the golden inputs copied verbatim from the project's
// shared STIX fixtures; their patterns are already in canonical form, so
// they must come back byte for byte.
var sharedFixtures = map[string]bool{
	"misp-stix-groupings": true, "oasis-indicator-url": true, "oasis-file-hash": true,
	"oasis-sighting": true, "oasis-threat-actor": true, "oasis-markings": true,
	"tlp2-clear": true, "tlp2-amber-strict": true, "medallion-envelope": true,
}

func decodeNormalized(t *testing.T, data []byte) []*gateway.Event {
	t.Helper()
	events, _, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	for _, ev := range events {
		normalize.Event(ev)
		ev.Source.Name = "roundtrip" // the pipeline sets it; Encode falls back to it
	}
	return events
}

// inputObjects indexes the input's objects by id (newest version wins).
func inputObjects(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	list, _ := doc["objects"].([]any)
	if _, ok := doc["objects"]; !ok {
		list = []any{doc}
	}
	for _, o := range list {
		m, _ := o.(map[string]any)
		id, _ := m["id"].(string)
		pm, _ := out[id]["modified"].(string)
		if mm, _ := m["modified"].(string); out[id] != nil && pm >= mm {
			continue
		}
		out[id] = m
	}
	return out
}

// TestRoundTrip maps every golden input (all shared STIX fixtures among
// them) to canonical events and each event back to STIX, and checks that
// every produced object validates, that ids, patterns and TLP survive, and
// that a second trip changes nothing.
func TestRoundTrip(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/golden/*.json")
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			objs := inputObjects(t, data)
			for _, ev := range decodeNormalized(t, data) {
				roundTrip(t, name, ev, objs)
			}
		})
	}
}

func roundTrip(t *testing.T, name string, ev1 *gateway.Event, in map[string]map[string]any) {
	t.Helper()
	out1, err := Encode(ev1, EncodeOptions{})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	objects, err := EncodeObjects(ev1, EncodeOptions{})
	if err != nil {
		t.Fatalf("EncodeObjects: %v", err)
	}
	wantTLP := ev1.TLP
	if wantTLP == "" {
		wantTLP = gateway.TLPAmber
	}
	marking, _ := TLPMarkingID(wantTLP)
	byID := map[string]map[string]any{}
	for _, o := range objects {
		if errs := stixschema.ValidateObject(o.JSON); errs != nil {
			t.Errorf("%s does not validate: %v", o.ID, errs)
		}
		var m map[string]any
		if err := json.Unmarshal(o.JSON, &m); err != nil {
			t.Fatal(err)
		}
		byID[o.ID] = m
		if m["spec_version"] != "2.1" {
			t.Errorf("%s: spec_version = %v", o.ID, m["spec_version"])
		}
		refs, _ := m["object_marking_refs"].([]any)
		switch {
		case passedThrough(ev1, o.ID):
			// Verbatim: the source's own markings.
		case o.Type == "marking-definition":
			if o.ID != marking || refs != nil {
				t.Errorf("marking definition %s (refs %v), want only %s", o.ID, refs, marking)
			}
		case o.Type == "indicator" && len(refs) > 1 && refs[0] == marking:
			// The TLP marking, then the source's statements.
		case len(refs) != 1 || refs[0] != marking:
			t.Errorf("%s: object_marking_refs = %v, want [%s]", o.ID, refs, marking)
		}
	}
	if errs := stixschema.ValidateObject(out1); errs != nil {
		t.Errorf("bundle does not validate: %v", errs)
	}

	// Ids survive: the event (report) id and every indicator and
	// observed-data id the event remembers.
	if ev1.ID != "" && byID["report--"+ev1.ID] == nil {
		t.Errorf("no report--%s in the output", ev1.ID)
	}
	for _, ind := range ev1.Indicators {
		for _, key := range []string{AttrID, AttrObservedDataID} {
			id := ind.Attributes[key]
			if id == "" {
				continue
			}
			if byID[id] == nil {
				t.Errorf("%s %s lost on the way out", key, id)
				continue
			}
			if key != AttrID || !strings.HasPrefix(id, "indicator--") {
				continue
			}
			// Patterns survive: the same canonical indicators, and for the
			// shared fixtures the very same text.
			src, got := in[id]["pattern"].(string), byID[id]["pattern"].(string)
			if sharedFixtures[name] && src != got {
				t.Errorf("%s: pattern %q came back as %q", id, src, got)
			}
			if a, b := patternIndicators(t, in[id]), patternIndicators(t, byID[id]); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: pattern %q means %v, came back as %q meaning %v", id, src, a, got, b)
			}
		}
	}

	evs2 := decodeNormalized(t, out1)
	if len(evs2) != 1 {
		t.Fatalf("Encode output decodes to %d events, want 1", len(evs2))
	}
	ev2 := evs2[0]
	if ev2.TLP != wantTLP {
		t.Errorf("TLP %q came back as %q", wantTLP, ev2.TLP)
	}
	if ev1.ID != "" && ev2.ID != ev1.ID {
		t.Errorf("event id %s came back as %s", ev1.ID, ev2.ID)
	}
	// Same content, apart from what the trip defines: the report's own id
	// and ref, and the default TLP.
	a, b := ev1.Clone(), ev2.Clone()
	a.ID, a.Source.Ref, a.TLP = b.ID, b.Source.Ref, b.TLP
	if a.Source.Org == "" {
		// The producer identity falls back to the source name.
		a.Source.Org = a.Source.Name
	}
	sortIndicators(a.Indicators)
	sortIndicators(b.Indicators)
	// The source's version of each indicator is checked in
	// TestFaithful; after a change by Schakel the output is a version of
	// its own, which the second trip reads as the source's.
	for _, inds := range [][]gateway.Indicator{a.Indicators, b.Indicators} {
		for _, ind := range inds {
			for _, k := range []string{AttrSourcePattern, AttrCreated, AttrModified, AttrCreatedByRef, AttrSourceTLP, AttrContentDigest} {
				delete(ind.Attributes, k)
			}
		}
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.MarshalIndent(a, "", " ")
		jb, _ := json.MarshalIndent(b, "", " ")
		t.Errorf("event changed on the round trip:\nbefore %s\nafter  %s", ja, jb)
	}
	// A second trip is a fixed point.
	out2, err := Encode(ev2, EncodeOptions{})
	if err != nil {
		t.Fatalf("second Encode: %v", err)
	}
	if !bytes.Equal(out1, out2) {
		t.Errorf("second trip changed the bundle:\n%s\n%s", out1, out2)
	}
}

// patternIndicators is what one indicator object means to Schakel: its
// canonical indicators (type, value, port), sorted.
func patternIndicators(t *testing.T, obj map[string]any) []string {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := Decode(data)
	if err != nil || len(evs) != 1 {
		t.Fatalf("decode indicator alone: %v (%d events)", err, len(evs))
	}
	normalize.Event(evs[0])
	var out []string
	for _, ind := range evs[0].Indicators {
		j, _ := json.Marshal([]any{ind.Type, ind.Value, ind.Port, ind.Attributes[AttrPattern]})
		out = append(out, string(j))
	}
	slices.Sort(out)
	return out
}

func sortIndicators(inds []gateway.Indicator) {
	slices.SortStableFunc(inds, func(x, y gateway.Indicator) int {
		if c := strings.Compare(string(x.Type), string(y.Type)); c != 0 {
			return c
		}
		if c := strings.Compare(x.Value, y.Value); c != 0 {
			return c
		}
		return x.Port - y.Port
	})
}

func passedThrough(ev *gateway.Event, id string) bool {
	if ev.Extensions == nil {
		return false
	}
	for _, raw := range ev.Extensions.STIX {
		if bytes.Contains(raw, []byte(`"id":"`+id+`"`)) {
			return true
		}
	}
	return false
}
