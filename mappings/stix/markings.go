package stix

import (
	"encoding/json"

	"github.com/schakel/schakel/gateway"
)

// TLP20Extension is the id of the TLP 2.0 marking extension definition
// (oasis-open/cti-stix-common-objects, extension-definition-specifications/tlp-2.0).
const TLP20Extension = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

// TLP 1.0 marking-definition ids (STIX 2.1 §7.2.1.4), predefined: producers
// may refer to them without shipping the objects.
var tlp10IDs = map[string]gateway.TLP{
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": gateway.TLPClear, // WHITE
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": gateway.TLPGreen,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": gateway.TLPAmber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": gateway.TLPRed,
}

// tlp10White is the only TLP 1.0 id whose label differs from TLP 2.0.
const tlp10White = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"

// TLP 2.0 marking-definition ids (FIRST TLP 2.0 via the OASIS extension).
var tlp20IDs = map[gateway.TLP]string{
	gateway.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	gateway.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	gateway.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	gateway.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	gateway.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

var tlp20ByID = func() map[string]gateway.TLP {
	m := make(map[string]gateway.TLP, len(tlp20IDs))
	for t, id := range tlp20IDs {
		m[id] = t
	}
	return m
}()

// TLPMarkingID returns the TLP 2.0 marking-definition id for t.
func TLPMarkingID(t gateway.TLP) (string, bool) {
	id, ok := tlp20IDs[t]
	return id, ok
}

// markingTLP is what one marking-definition id says about TLP.
type markingTLP struct {
	tlp    gateway.TLP
	legacy bool // TLP 1.0 WHITE
}

// markingTLP resolves a marking id: the well-known TLP 1.0 and 2.0 ids
// first (they are authoritative whatever a bundle claims), then TLP marking
// definitions shipped in the input. ok is false for statements and
// markings the input does not define.
func (d *decoder) markingTLP(id string) (markingTLP, bool) {
	if t, ok := tlp20ByID[id]; ok {
		return markingTLP{tlp: t}, true
	}
	if t, ok := tlp10IDs[id]; ok {
		return markingTLP{tlp: t, legacy: id == tlp10White}, true
	}
	m, ok := d.markings[id]
	return m, ok
}

// definitionTLP reads the TLP from a marking-definition object that uses
// its own id: TLP 1.0 style (definition_type "tlp") or the TLP 2.0
// extension. ok is false when it is no TLP marking; err when it claims to
// be one with an unknown label.
func definitionTLP(o *object) (m markingTLP, ok bool, err error) {
	var label string
	switch {
	case o.DefinitionType == "tlp":
		var def struct {
			TLP string `json:"tlp"`
		}
		if err := json.Unmarshal(o.Definition, &def); err != nil {
			return m, false, err
		}
		label = def.TLP
	case len(o.Extensions) > 0:
		var ext map[string]struct {
			TLP string `json:"tlp_2_0"`
		}
		if err := json.Unmarshal(o.Extensions, &ext); err != nil {
			return m, false, err
		}
		e, found := ext[TLP20Extension]
		if !found {
			return m, false, nil
		}
		label = e.TLP
	default:
		return m, false, nil
	}
	t, legacy, err := gateway.ParseTLP(label)
	if err != nil {
		return m, false, err
	}
	return markingTLP{tlp: t, legacy: legacy}, true, nil
}

// tlpAcc accumulates markings; the strictest wins.
type tlpAcc struct {
	tlp    gateway.TLP
	white  bool // a TLP 1.0 WHITE marking was seen
	marked bool
}

func (a *tlpAcc) add(m markingTLP) {
	if !a.marked || m.tlp.Rank() > a.tlp.Rank() {
		a.tlp = m.tlp
	}
	a.marked = true
	a.white = a.white || m.legacy
}

// addObject folds in an object's object-level and granular markings.
func (d *decoder) addObject(a *tlpAcc, o *object) {
	for _, id := range o.ObjectMarkingRefs {
		if m, ok := d.markingTLP(id); ok {
			a.add(m)
			d.markUsed(id)
		}
	}
	for _, g := range o.GranularMarkings {
		if m, ok := d.markingTLP(g.MarkingRef); ok {
			a.add(m)
			d.markUsed(g.MarkingRef)
		}
	}
}

// markUsed notes that a TLP marking in the input became an event's TLP.
func (d *decoder) markUsed(id string) {
	if o, ok := d.byID[id]; ok {
		o.used = true
	}
}
