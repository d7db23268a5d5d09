package misp

import (
	"encoding/json"
	"strconv"
	"strings"
)

// MISP's /objects/restSearch answers {"response":[{"Object":{…}},…]} and
// /attributes/restSearch {"response":{"Attribute":[…]}}: objects and
// attributes without their event. Each carries event_id and often an
// "Event" summary (id, uuid, info), so Decode groups them back into events
// as MISP holds them; what names no event becomes one event per input.

// looseEvent is the summary an attribute or object carries of its event.
type looseEvent struct {
	ID   jstr `json:"id"`
	UUID jstr `json:"uuid"`
	Info jstr `json:"info"`
}

// looseMember is the part of a loose object or attribute that says which
// event it belongs to.
type looseMember struct {
	EventID jstr        `json:"event_id"`
	Event   *looseEvent `json:"Event"`
}

// looseGroup is one event being rebuilt.
type looseGroup struct {
	ptr        string // where its first member is
	uuid, info string
	eventID    string
	objects    [][]byte
	attrs      [][]byte
}

// looseSet gathers the groups of one document, in input order.
type looseSet struct {
	groups []*looseGroup
	byKey  map[string]*looseGroup
	kind   string // "objects" or "attributes", for the title of an unnamed group
}

// loose adds one object or attribute (b) found at ptr.
func (d *decoder) loose(ptr string, b []byte, object bool) {
	if d.looseSet == nil {
		d.looseSet = &looseSet{byKey: map[string]*looseGroup{}}
	}
	ls := d.looseSet
	if object {
		ls.kind = "objects"
	} else if ls.kind == "" {
		ls.kind = "attributes"
	}
	var m looseMember
	_ = json.Unmarshal(b, &m) // b is valid JSON; the lenient types never fail
	var ev looseEvent
	if m.Event != nil {
		ev = *m.Event
	}
	uuid := strings.ToLower(strings.TrimSpace(ev.UUID.s))
	if !uuidShaped(uuid) {
		uuid = ""
	}
	id := strings.TrimSpace(m.EventID.s)
	if id == "" {
		id = strings.TrimSpace(ev.ID.s)
	}
	key := ""
	switch {
	case uuid != "":
		key = "uuid:" + uuid
	case id != "":
		key = "id:" + id
	}
	g := ls.byKey[key]
	if g == nil && uuid != "" && id != "" {
		// An earlier member named the same event by its id only.
		if g = ls.byKey["id:"+id]; g != nil {
			g.uuid = uuid
			ls.byKey[key] = g
		}
	}
	if g == nil {
		g = &looseGroup{ptr: ptr, uuid: uuid, eventID: id}
		ls.byKey[key] = g
		if id != "" && uuid != "" {
			ls.byKey["id:"+id] = g
		}
		ls.groups = append(ls.groups, g)
	}
	if g.info == "" {
		g.info = strings.TrimSpace(ev.Info.s)
	}
	if object {
		g.objects = append(g.objects, b)
	} else {
		g.attrs = append(g.attrs, b)
	}
}

// flushLoose maps the gathered groups to events.
func (d *decoder) flushLoose() {
	ls := d.looseSet
	if ls == nil {
		return
	}
	d.looseSet = nil
	for _, g := range ls.groups {
		info := g.info
		if info == "" {
			info = "MISP " + ls.kind + " from a search result"
			if g.eventID != "" {
				info = "MISP " + ls.kind + " of event " + g.eventID
			}
		}
		r := &rawEvent{
			UUID:      jstr{s: g.uuid, set: g.uuid != ""},
			Info:      jstr{s: info, set: true},
			Object:    jlist{elems: g.objects, total: len(g.objects)},
			Attribute: jlist{elems: g.attrs, total: len(g.attrs)},
		}
		d.event(g.ptr, r)
	}
}

// looseAttributes reads the Attribute list of an attribute search result.
func (d *decoder) looseAttributes(ptr string, b []byte) {
	var l jlist
	if json.Unmarshal(b, &l) != nil || l.bad || b[0] != '[' {
		d.notEvents++
		d.errorf(ptr, "Attribute must be an array of attributes, got %s", jsonKind(b))
		return
	}
	if l.total == 0 {
		d.notEvents++
		d.errorf(ptr, "the attribute search result holds no attributes, so no event")
		return
	}
	for i, el := range l.elems {
		if el[0] != '{' {
			d.errorf(ptr+"/"+strconv.Itoa(i), "attribute must be a JSON object, got %s", jsonKind(el))
			continue
		}
		d.loose(ptr+"/"+strconv.Itoa(i), el, false)
	}
	if l.total > len(l.elems) {
		d.errorf(ptr, "%d attributes beyond the first %d were not read", l.total-len(l.elems), len(l.elems))
	}
}
