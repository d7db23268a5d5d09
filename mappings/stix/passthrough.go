package stix

import (
	"encoding/json"
	"fmt"
	"strings"
)

// passObject is what Encode reads of a pass-through object: its identity,
// version and the references that can point at what a projection removes.
type passObject struct {
	Type               string     `json:"type"`
	ID                 string     `json:"id"`
	Created            string     `json:"created"`
	Modified           string     `json:"modified"`
	SourceRef          string     `json:"source_ref"`
	TargetRef          string     `json:"target_ref"`
	SightingOfRef      string     `json:"sighting_of_ref"`
	ObjectRefs         []string   `json:"object_refs"`
	ObservedDataRefs   []string   `json:"observed_data_refs"`
	WhereSightedRefs   []string   `json:"where_sighted_refs"`
	SampleRefs         []string   `json:"sample_refs"`
	ObjectMarkingRefs  []string   `json:"object_marking_refs"`
	GranularMarkings   []granular `json:"granular_markings"`
	ExternalReferences []extRef   `json:"external_references"`

	raw json.RawMessage
}

func (p *passObject) refs() []string {
	out := []string{p.SourceRef, p.TargetRef, p.SightingOfRef}
	out = append(out, p.ObjectRefs...)
	out = append(out, p.ObservedDataRefs...)
	out = append(out, p.WhereSightedRefs...)
	return append(out, p.SampleRefs...)
}

func readPassThrough(raws []json.RawMessage) ([]*passObject, error) {
	out := make([]*passObject, 0, len(raws))
	for i, raw := range raws {
		p := &passObject{raw: raw}
		if err := json.Unmarshal(raw, p); err != nil {
			return nil, fmt.Errorf("extensions/stix/%d: %s", i, jsonProblem(err))
		}
		if p.Type == "" || p.ID == "" {
			return nil, fmt.Errorf("extensions/stix/%d: a STIX object needs a type and an id", i)
		}
		out = append(out, p)
	}
	return out, nil
}

// removable reports whether an object of the id's type can be left out
// of an event's output by a projection: what Schakel maps to indicators
// and vulnerabilities.
func removable(id string) bool {
	typ, _, ok := strings.Cut(id, "--")
	return ok && mappable(typ)
}

// PassThrough returns the pass-through objects (extensions.stix) an
// output may carry when it holds the objects named in present: those
// whose references (relationship ends, sighting_of_ref,
// observed_data_refs, where_sighted_refs, object_refs, sample_refs) do not
// point at an indicator, observed-data, observable or vulnerability
// missing from present, nor at a pass-through object left out for that
// reason. A recipient's projection (its own indicators of a notification)
// thus never shows a relationship or sighting about what it may not see.
// References to objects the input never held are kept as the source wrote
// them. Objects that do not read are left out.
func PassThrough(objs []json.RawMessage, present map[string]bool) []json.RawMessage {
	ps := make([]*passObject, 0, len(objs))
	for _, raw := range objs {
		p := &passObject{raw: raw}
		if json.Unmarshal(raw, p) == nil && p.ID != "" {
			ps = append(ps, p)
		}
	}
	kept := filterPassThrough(ps, present)
	out := make([]json.RawMessage, len(kept))
	for i, p := range kept {
		out[i] = p.raw
	}
	return out
}

func filterPassThrough(ps []*passObject, present map[string]bool) []*passObject {
	in := make(map[string]bool, len(ps))
	for _, p := range ps {
		in[p.ID] = true
	}
	dropped := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, p := range ps {
			if dropped[p.ID] {
				continue
			}
			for _, r := range p.refs() {
				if r == "" || present[r] || (in[r] && !dropped[r]) {
					continue
				}
				if removable(r) || dropped[r] {
					dropped[p.ID] = true
					changed = true
					break
				}
			}
		}
	}
	if len(dropped) == 0 {
		return ps
	}
	out := make([]*passObject, 0, len(ps)-len(dropped))
	for _, p := range ps {
		if !dropped[p.ID] {
			out = append(out, p)
		}
	}
	return out
}

// readExtensions reads the event's pass-through objects before the content
// is written: vulnerabilities among them stand for their CVEs.
func (e *encoder) readExtensions() error {
	x := e.ev.Extensions
	if x == nil || len(x.STIX) == 0 {
		return nil
	}
	ps, err := readPassThrough(x.STIX)
	if err != nil {
		return err
	}
	e.pass = ps
	for _, p := range ps {
		if p.Type != "vulnerability" {
			continue
		}
		for _, r := range p.ExternalReferences {
			if strings.EqualFold(r.SourceName, "cve") && r.ExternalID != "" {
				e.cves[strings.ToUpper(strings.TrimSpace(r.ExternalID))] = true
			}
		}
	}
	return nil
}

// passThrough writes the pass-through objects, verbatim, after the
// content, leaving out what refers to objects this output does not hold.
// The report refers to each but the definitions. TLP 2.0 markings they use
// are shipped (TLP 2.0 markings are not predefined).
func (e *encoder) passThrough() error {
	if len(e.pass) == 0 {
		return nil
	}
	for _, p := range filterPassThrough(e.pass, e.emitted) {
		if e.emitted[p.ID] {
			continue // Schakel's own identity or definition, written already
		}
		version := firstNonEmpty(p.Modified, p.Created)
		var err error
		if p.Type == "marking-definition" || p.Type == "extension-definition" {
			err = e.put(&e.body, p.ID, p.Type, version, p.raw)
		} else {
			err = e.add(p.ID, p.Type, version, p.raw)
		}
		if err != nil {
			return err
		}
		for _, id := range p.ObjectMarkingRefs {
			e.tlpMarking(id)
		}
		for _, g := range p.GranularMarkings {
			e.tlpMarking(g.MarkingRef)
		}
	}
	return nil
}

// tlpMarking ships the TLP 2.0 marking definition id names, once.
func (e *encoder) tlpMarking(id string) {
	t, ok := tlp20ByID[id]
	if !ok || e.emitted[id] {
		return
	}
	md := markingDefinition{
		Type: "marking-definition", SpecVersion: "2.1", ID: id, Created: tlp20Created,
		Name:       t.Label(),
		Extensions: map[string]tlpExtension{TLP20Extension: {ExtensionType: "property-extension", TLP: strings.ToLower(string(t))}},
	}
	_ = e.put(&e.head, md.ID, md.Type, md.Created, md) // a fixed struct always marshals
}
