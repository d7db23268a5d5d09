package misp

import (
	"encoding/json"
	"strings"
	"testing"
)

// Shapes as /objects/restSearch and /attributes/restSearch answer them
// (MISP and connectors/misp): objects carry event_id, attributes event_id,
// object_id and an Event summary.
const (
	looseEvA = "5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e01"
	looseObj = "5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e02"
	looseAt1 = "5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e03"
	looseAt2 = "5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e04"
	looseObB = "5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e05"
	looseAt3 = "5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e06"
)

func looseObject(id, eventID, uuid, attrUUID, value, refTo string, event string) string {
	ref := ""
	if refTo != "" {
		ref = `{"uuid":"5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0eff","referenced_uuid":"` + refTo + `","relationship_type":"connects-to"}`
	}
	ev := ""
	if event != "" {
		ev = `,"Event":` + event
	}
	return `{"Object":{"id":"` + id + `","event_id":"` + eventID + `","name":"ip-port","meta-category":"network",` +
		`"description":"An IP address and a port","template_uuid":"9f8cea74-16fe-4968-a2b4-026676949ac6","template_version":"9",` +
		`"uuid":"` + uuid + `","timestamp":"1700000000","distribution":"5","sharing_group_id":"0","comment":"","deleted":false,` +
		`"first_seen":null,"last_seen":null,"ObjectReference":[` + ref + `],` +
		`"Attribute":[{"id":"9","event_id":"` + eventID + `","object_id":"` + id + `","object_relation":"ip","category":"Network activity",` +
		`"type":"ip-dst","value":"` + value + `","to_ids":true,"uuid":"` + attrUUID + `","timestamp":"1700000000","distribution":"5",` +
		`"sharing_group_id":"0","comment":"","deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null}]` + ev + `}}`
}

func looseAttr(eventID, objectID, uuid, value, summary string) string {
	return `{"id":"12","event_id":"` + eventID + `","object_id":"` + objectID + `","object_relation":null,"category":"Network activity",` +
		`"type":"domain","value":"` + value + `","to_ids":true,"uuid":"` + uuid + `","timestamp":"1700000000","distribution":"5",` +
		`"sharing_group_id":"0","comment":"","deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null,` +
		`"Event":` + summary + `}`
}

func TestDecodeObjectsOnly(t *testing.T) {
	summaryA := `{"org_id":"1","distribution":"1","id":"41","info":"Campaign A","orgc_id":"1","uuid":"` + looseEvA + `","published":true}`
	tests := []struct {
		name       string
		in         string
		wantTitles []string
		wantIDs    []string
		wantObjs   []int // pass-through objects per event
		wantValues [][]string
	}{
		{
			name: "objects of two events by event_id",
			in: `{"response":[` + looseObject("7", "41", looseObj, looseAt1, "203.0.113.1", looseObB, "") + `,` +
				looseObject("8", "42", looseObB, looseAt2, "203.0.113.2", "", "") + `]}`,
			wantTitles: []string{"MISP objects of event 41", "MISP objects of event 42"},
			wantIDs:    []string{"", ""},
			wantObjs:   []int{1, 1},
			wantValues: [][]string{{"203.0.113.1"}, {"203.0.113.2"}},
		},
		{
			name: "objects of one event with its summary",
			in: `{"response":[` + looseObject("7", "41", looseObj, looseAt1, "203.0.113.1", looseObB, summaryA) + `,` +
				looseObject("8", "41", looseObB, looseAt2, "203.0.113.2", "", "") + `]}`,
			wantTitles: []string{"Campaign A"},
			wantIDs:    []string{looseEvA},
			wantObjs:   []int{2},
			wantValues: [][]string{{"203.0.113.1", "203.0.113.2"}},
		},
		{
			name:       "a lone object",
			in:         `{"Object":{"name":"domain-ip","uuid":"` + looseObj + `","Attribute":[{"type":"domain","object_relation":"domain","value":"example.org","uuid":"` + looseAt1 + `"}]}}`,
			wantTitles: []string{"MISP objects from a search result"},
			wantIDs:    []string{""},
			wantObjs:   []int{1},
			wantValues: [][]string{{"example.org"}},
		},
		{
			name: "attributes grouped by their Event",
			in: `{"response":{"Attribute":[` + looseAttr("41", "0", looseAt1, "a.example", summaryA) + `,` +
				looseAttr("43", "0", looseAt2, "b.example", `{"id":"43","info":"Campaign B"}`) + `,` +
				looseAttr("41", "0", looseAt3, "c.example", summaryA) + `]}}`,
			wantTitles: []string{"Campaign A", "Campaign B"},
			wantIDs:    []string{looseEvA, ""},
			wantObjs:   []int{0, 0},
			wantValues: [][]string{{"a.example", "c.example"}, {"b.example"}},
		},
		{
			name:       "attributes naming no event",
			in:         `{"response":{"Attribute":[{"type":"md5","value":"d41d8cd98f00b204e9800998ecf8427e"}]}}`,
			wantTitles: []string{"MISP attributes from a search result"},
			wantIDs:    []string{""},
			wantObjs:   []int{0},
			wantValues: [][]string{{"d41d8cd98f00b204e9800998ecf8427e"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, errs, err := Decode([]byte(tt.in))
			if err != nil || len(errs) > 0 {
				t.Fatalf("err %v, field errors %v", err, errs)
			}
			if len(evs) != len(tt.wantTitles) {
				t.Fatalf("got %d events, want %d", len(evs), len(tt.wantTitles))
			}
			for i, ev := range evs {
				if ev.Title != tt.wantTitles[i] || ev.ID != tt.wantIDs[i] {
					t.Errorf("event %d: title %q id %q, want %q %q", i, ev.Title, ev.ID, tt.wantTitles[i], tt.wantIDs[i])
				}
				var vals []string
				for _, ind := range ev.Indicators {
					vals = append(vals, ind.Value)
				}
				if strings.Join(vals, " ") != strings.Join(tt.wantValues[i], " ") {
					t.Errorf("event %d: values %v, want %v", i, vals, tt.wantValues[i])
				}
				var x extMISP
				if ev.Extensions != nil {
					if err := json.Unmarshal(ev.Extensions.MISP, &x); err != nil {
						t.Fatal(err)
					}
				}
				if len(x.Objects) != tt.wantObjs[i] {
					t.Errorf("event %d: %d objects kept, want %d", i, len(x.Objects), tt.wantObjs[i])
				}
			}
		})
	}
}

// TestDecodeObjectsOnlyReferences: the references and membership of an
// object read from a search result survive into the pass-through.
func TestDecodeObjectsOnlyReferences(t *testing.T) {
	in := `{"response":[` + looseObject("7", "41", looseObj, looseAt1, "203.0.113.1", looseObB, "") + `,` +
		looseObject("8", "41", looseObB, looseAt2, "203.0.113.2", "", "") + `]}`
	evs, _, err := Decode([]byte(in))
	if err != nil || len(evs) != 1 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	var x extMISP
	if err := json.Unmarshal(evs[0].Extensions.MISP, &x); err != nil {
		t.Fatal(err)
	}
	o := x.Objects[0]
	if o.UUID != looseObj || o.Name != "ip-port" || len(o.Attributes) != 1 || o.Attributes[0] != looseAt1 ||
		len(o.References) != 1 || o.References[0].ReferencedUUID != looseObB {
		t.Errorf("object = %+v", o)
	}
}

func TestDecodeObjectsOnlyRefused(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"empty attribute result", `{"response":{"Attribute":[]}}`, "holds no attributes"},
		{"Attribute not a list", `{"response":{"Attribute":{"type":"md5"}}}`, "Attribute must be an array"},
		{"empty objects result", `{"response":[]}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, _, err := Decode([]byte(tt.in))
			if len(evs) != 0 || (tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want))) {
				t.Errorf("%d events, err %v; want an error containing %q", len(evs), err, tt.want)
			}
		})
	}
}
