package stix

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// TestIndicatorVersions is a property test over random update sequences:
// a source keeps sending one report with one indicator, sometimes with new
// content (and a newer modified), sometimes only a new report version
// (another TLP); Schakel encodes each version whole and projected to
// random subsets of its indicators (a notification). For any two outputs
// with the same indicator id and modified the content is identical, and an
// output with the source's id and modified has the source's pattern text.
func TestIndicatorVersions(t *testing.T) {
	const (
		indID = "indicator--0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"
		repID = "report--1a1b1c1d-1e1f-4a2b-8c3d-4e5f6a7b8c9d"
	)
	values := []string{"'198.51.100.7'", "'198.51.100.8'", "'Evil.Example.'", "'evil.example'", "'hxxp://bad[.]example/x'", "'http://bad.example/y'"}
	objects := map[string]string{"'198.51.100.7'": "ipv4-addr", "'198.51.100.8'": "ipv4-addr", "'Evil.Example.'": "domain-name",
		"'evil.example'": "domain-name", "'hxxp://bad[.]example/x'": "url", "'http://bad.example/y'": "url"}
	tlps := []string{"", "GREEN", "AMBER"}
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		seen := map[string]string{} // id|modified → content
		check := func(id, modified, content string) {
			k := id + "|" + modified
			if prev, ok := seen[k]; ok && prev != content {
				t.Fatalf("seed %d: %s has two contents:\n%s\n%s", seed, k, prev, content)
			}
			seen[k] = content
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		indMod, repMod := base, base
		var pattern, indTLP, repTLP string
		newContent := func() {
			n := 1 + rng.Intn(3)
			var parts []string
			for range n {
				v := values[rng.Intn(len(values))]
				parts = append(parts, "["+objects[v]+":value = "+v+"]")
			}
			pattern = strings.Join(parts, " OR ")
			indTLP = tlps[rng.Intn(len(tlps))]
		}
		newContent()
		repTLP = tlps[1+rng.Intn(2)]
		for step := 0; step < 12; step++ {
			switch rng.Intn(3) {
			case 0: // new indicator content
				indMod = indMod.Add(time.Duration(1+rng.Intn(3)) * time.Millisecond)
				newContent()
			case 1: // a new report version only
				repTLP = tlps[1+rng.Intn(2)]
			}
			if repMod.Before(indMod) {
				repMod = indMod
			}
			repMod = repMod.Add(time.Duration(rng.Intn(2)) * time.Millisecond) // sometimes not newer than the indicator
			ind := map[string]any{"type": "indicator", "spec_version": "2.1", "id": indID, "created": stixTime(base), "modified": stixTime(indMod),
				"pattern": pattern, "pattern_type": "stix", "valid_from": stixTime(base)}
			if id, ok := tlp20IDs[gateway.TLP(indTLP)]; ok {
				ind["object_marking_refs"] = []string{id}
			}
			rep := map[string]any{"type": "report", "spec_version": "2.1", "id": repID, "created": stixTime(base), "modified": stixTime(repMod),
				"published": stixTime(base), "name": "r", "object_refs": []string{indID}, "object_marking_refs": []string{tlp20IDs[gateway.TLP(repTLP)]}}
			data, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--2a2b2c2d-2e2f-4a3b-8c4d-5e6f7a8b9c0d", "objects": []any{rep, ind}})
			check(indID, stixTime(indMod), pattern) // the source's own version
			evs, _, err := Decode(data)
			if err != nil || len(evs) != 1 {
				t.Fatalf("seed %d: Decode: %v", seed, err)
			}
			ev := evs[0]
			normalize.Event(ev)
			ev.Source.Name = "prop"
			variants := []*gateway.Event{ev}
			for range 2 {
				p := ev.Clone()
				p.Kind = gateway.KindNotification
				var keep []gateway.Indicator
				for _, x := range p.Indicators {
					if rng.Intn(2) == 0 {
						keep = append(keep, x)
					}
				}
				p.Indicators = keep
				variants = append(variants, p)
			}
			for _, v := range variants {
				objs, err := EncodeObjects(v, EncodeOptions{})
				if err != nil {
					t.Fatalf("seed %d: Encode: %v", seed, err)
				}
				for _, o := range objs {
					if o.Type != "indicator" {
						continue
					}
					var m map[string]any
					_ = json.Unmarshal(o.JSON, &m)
					mod, _ := m["modified"].(string)
					if o.ID == indID && mod == stixTime(indMod) {
						check(o.ID, mod, m["pattern"].(string))
					}
					if o.ID == indID {
						if mt, _ := parseTime(mod); mt.Before(indMod) {
							t.Fatalf("seed %d: output modified %s is older than the source's %s", seed, mod, stixTime(indMod))
						}
					}
					check(o.ID, mod+"|json", string(o.JSON))
				}
			}
		}
		if len(seen) < 3 {
			t.Fatalf("seed %d: only %d versions seen; the generator is broken", seed, len(seen))
		}
	}
	_ = fmt.Sprint
}

// TestIndicatorVersionRules pins the cases: unchanged content keeps the
// source's version; normalisation or a stricter TLP gives the event's
// newer modified (with a sub-millisecond part from the content) under the
// same id, and so does a projection that leaves part of the pattern out.
func TestIndicatorVersionRules(t *testing.T) {
	mk := func(pattern, indTLP, repTLP string) *gateway.Event {
		ind := map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d",
			"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-02T00:00:00.000Z", "created_by_ref": "identity--0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
			"pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}
		if indTLP != "" {
			ind["object_marking_refs"] = []string{tlp20IDs[gateway.TLP(indTLP)]}
		}
		rep := map[string]any{"type": "report", "spec_version": "2.1", "id": "report--1a1b1c1d-1e1f-4a2b-8c3d-4e5f6a7b8c9d",
			"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-03T00:00:00.000Z", "published": "2026-01-01T00:00:00Z", "name": "r",
			"object_refs": []string{ind["id"].(string)}, "object_marking_refs": []string{tlp20IDs[gateway.TLP(repTLP)]}}
		data, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--2a2b2c2d-2e2f-4a3b-8c4d-5e6f7a8b9c0d", "objects": []any{rep, ind}})
		evs, _, err := Decode(data)
		if err != nil || len(evs) != 1 {
			t.Fatal(err)
		}
		normalize.Event(evs[0])
		return evs[0]
	}
	indicator := func(ev *gateway.Event) map[string]any {
		objs, err := EncodeObjects(ev, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.Type == "indicator" {
				var m map[string]any
				_ = json.Unmarshal(o.JSON, &m)
				return m
			}
		}
		t.Fatal("no indicator")
		return nil
	}
	const src = "indicator--0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"
	two := "[domain-name:value = 'a.example']  OR [domain-name:value = 'b.example']"
	tests := []struct {
		name          string
		ev            *gateway.Event
		project       bool
		id, mod, patt string
	}{
		{"unchanged keeps the source's text", mk(two, "GREEN", "GREEN"), false, src, "2026-01-02T00:00:00.000Z", two},
		{"normalised value", mk("[domain-name:value = 'A.Example.']", "GREEN", "GREEN"), false, src, "2026-01-03T00:00:00.000Z", "[domain-name:value = 'a.example']"},
		{"TLP raised", mk(two, "GREEN", "AMBER"), false, src, "2026-01-03T00:00:00.000Z", "[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']"},
		{"projected part", mk(two, "GREEN", "GREEN"), true, src, "2026-01-03T00:00:00.000Z", "[domain-name:value = 'a.example']"},
		{"unmarked in a marked report", mk(two, "", "GREEN"), false, src, "2026-01-03T00:00:00.000Z", "[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev
			if tc.project {
				ev.Kind = gateway.KindNotification
				ev.Indicators = ev.Indicators[:1]
			}
			m := indicator(ev)
			if m["id"] != tc.id {
				t.Errorf("id %v, want %q", m["id"], tc.id)
			}
			mod, _ := m["modified"].(string)
			changed := tc.mod != "2026-01-02T00:00:00.000Z"
			okMod := mod == tc.mod
			if changed {
				// Newer than source and event, never a millisecond a source would write.
				okMod = strings.HasPrefix(mod, strings.TrimSuffix(tc.mod, "Z")) && mod != tc.mod
			}
			if !okMod || m["pattern"] != tc.patt || m["created"] != "2026-01-01T00:00:00.000Z" {
				t.Errorf("created %v modified %v pattern %v, want modified %s pattern %s", m["created"], m["modified"], m["pattern"], tc.mod, tc.patt)
			}
			if m["created_by_ref"] != "identity--0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0" {
				t.Errorf("created_by_ref %v, want the source's", m["created_by_ref"])
			}
		})
	}
}
