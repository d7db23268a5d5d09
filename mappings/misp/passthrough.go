package misp

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// DefaultMaxDataBytes is how much attachment or malware-sample data
// (the base64 "data" of an attribute) Decode keeps per attribute.
const DefaultMaxDataBytes = 10 << 20

// DecodeOptions tune Decode.
type DecodeOptions struct {
	// MaxDataBytes bounds the "data" kept per attachment or malware-sample
	// attribute; larger data is dropped with a field error naming the
	// attribute. 0 means DefaultMaxDataBytes, a negative value keeps none.
	MaxDataBytes int
}

func (o DecodeOptions) maxData() int {
	if o.MaxDataBytes == 0 {
		return DefaultMaxDataBytes
	}
	return max(o.MaxDataBytes, 0)
}

// extMISP is the layout of extensions.misp: what a MISP event says that the
// canonical event cannot, so that MISP → Schakel → MISP loses nothing.
//
//	{
//	  "orgc":            {…},          the originator's Orgc object, verbatim
//	  "analysis":        "0",          event analysis, threat_level_id, date,
//	  "threat_level_id": "1",          extends_uuid as sent
//	  "date":            "2018-01-04",
//	  "extends_uuid":    "…",
//	  "galaxies":        [{…}],        Galaxy blocks (clusters, their tags), verbatim
//	  "objects": [{                    MISP objects in source order
//	    "uuid", "name", "meta-category", "description", "template_uuid",
//	    "template_version", "comment", "distribution", "sharing_group_id",
//	    "timestamp", "first_seen", "last_seen": strings, as sent
//	    "attributes": ["<attribute uuid>", …],   members, in order
//	    "references": [{"uuid", "referenced_uuid", "relationship_type",
//	                    "comment", "timestamp"}] its ObjectReferences
//	  }],
//	  "attributes": {                  per attribute uuid (the attributes
//	    "<uuid>": {                    themselves are indicators, misp_uuid)
//	      "type", "category", "comment", "timestamp", "first_seen",
//	      "last_seen", "disable_correlation", "data"
//	    }
//	  }
//	}
//
// Every key is optional. Prune keeps it consistent with a projected event.
type extMISP struct {
	Orgc          json.RawMessage     `json:"orgc,omitempty"`
	Analysis      string              `json:"analysis,omitempty"`
	ThreatLevelID string              `json:"threat_level_id,omitempty"`
	Date          string              `json:"date,omitempty"`
	ExtendsUUID   string              `json:"extends_uuid,omitempty"`
	Galaxies      []json.RawMessage   `json:"galaxies,omitempty"`
	Objects       []extObject         `json:"objects,omitempty"`
	Attributes    map[string]*extAttr `json:"attributes,omitempty"`
}

type extObject struct {
	UUID            string   `json:"uuid"`
	Name            string   `json:"name,omitempty"`
	MetaCategory    string   `json:"meta-category,omitempty"`
	Description     string   `json:"description,omitempty"`
	TemplateUUID    string   `json:"template_uuid,omitempty"`
	TemplateVersion string   `json:"template_version,omitempty"`
	Comment         string   `json:"comment,omitempty"`
	Distribution    string   `json:"distribution,omitempty"`
	SharingGroupID  string   `json:"sharing_group_id,omitempty"`
	Timestamp       string   `json:"timestamp,omitempty"`
	FirstSeen       string   `json:"first_seen,omitempty"`
	LastSeen        string   `json:"last_seen,omitempty"`
	Attributes      []string `json:"attributes"`
	References      []extRef `json:"references,omitempty"`
}

type extRef struct {
	UUID             string `json:"uuid,omitempty"`
	ReferencedUUID   string `json:"referenced_uuid"`
	RelationshipType string `json:"relationship_type,omitempty"`
	Comment          string `json:"comment,omitempty"`
	Timestamp        string `json:"timestamp,omitempty"`
}

type extAttr struct {
	Type               string `json:"type,omitempty"`
	Category           string `json:"category,omitempty"`
	Comment            string `json:"comment,omitempty"`
	Timestamp          string `json:"timestamp,omitempty"`
	FirstSeen          string `json:"first_seen,omitempty"`
	LastSeen           string `json:"last_seen,omitempty"`
	DisableCorrelation bool   `json:"disable_correlation,omitempty"`
	Data               string `json:"data,omitempty"`
}

func (x *extMISP) empty() bool {
	return x.Orgc == nil && x.Analysis == "" && x.ThreatLevelID == "" && x.Date == "" &&
		x.ExtendsUUID == "" && len(x.Galaxies) == 0 && len(x.Objects) == 0 && len(x.Attributes) == 0
}

// rawObjectRef is an ObjectReference as sent.
type rawObjectRef struct {
	UUID             jstr  `json:"uuid"`
	ReferencedUUID   jstr  `json:"referenced_uuid"`
	RelationshipType jstr  `json:"relationship_type"`
	Comment          jstr  `json:"comment"`
	Timestamp        jstr  `json:"timestamp"`
	Deleted          jbool `json:"deleted"`
}

// passEvent records the event-level pass-through.
func (st *eventState) passEvent(r *rawEvent) {
	x := &st.ext
	if r.Orgc.raw != nil {
		x.Orgc = json.RawMessage(slices.Clone(r.Orgc.raw))
	}
	x.Analysis = strings.TrimSpace(r.Analysis.s)
	if r.ThreatLevelID.set {
		x.ThreatLevelID = strconv.FormatInt(r.ThreatLevelID.n, 10)
	}
	if _, ok := parseDate(strings.TrimSpace(r.Date.s)); ok {
		x.Date = strings.TrimSpace(r.Date.s)
	}
	if u := strings.ToLower(strings.TrimSpace(r.ExtendsUUID.s)); validUUID(u) {
		x.ExtendsUUID = u
	}
	for _, g := range r.Galaxy.elems {
		if g[0] == '{' {
			x.Galaxies = append(x.Galaxies, json.RawMessage(slices.Clone(g)))
		}
	}
}

// passObject records an object and its references; it returns the object
// index so its attributes can be listed as they are mapped; -1 when it
// has no uuid.
func (st *eventState) passObject(ptr string, o *rawObject) int {
	u := strings.ToLower(strings.TrimSpace(o.UUID.s))
	if !validUUID(u) {
		return -1
	}
	st.seen[u] = true
	eo := extObject{
		UUID: u, Name: strings.TrimSpace(o.Name.s), MetaCategory: o.MetaCategory.s,
		Description: o.Description.s, TemplateUUID: o.TemplateUUID.s, TemplateVersion: o.TemplateVersion.s,
		Comment: o.Comment.s, Distribution: o.Distribution.raw, SharingGroupID: o.SharingGroupID.s,
		Timestamp: o.Timestamp.s, FirstSeen: o.FirstSeen.s, LastSeen: o.LastSeen.s,
	}
	if o.Distribution.set {
		eo.Distribution = strconv.FormatInt(o.Distribution.n, 10)
	}
	for i, b := range o.ObjectReference.elems {
		var r rawObjectRef
		if b[0] != '{' || json.Unmarshal(b, &r) != nil {
			st.d.errorf(ptr+"/ObjectReference/"+strconv.Itoa(i), "object reference must be an object")
			continue
		}
		ref := strings.ToLower(strings.TrimSpace(r.ReferencedUUID.s))
		if r.Deleted.v || !validUUID(ref) {
			continue
		}
		eo.References = append(eo.References, extRef{
			UUID: strings.ToLower(strings.TrimSpace(r.UUID.s)), ReferencedUUID: ref,
			RelationshipType: r.RelationshipType.s, Comment: r.Comment.s, Timestamp: r.Timestamp.s,
		})
	}
	st.ext.Objects = append(st.ext.Objects, eo)
	return len(st.ext.Objects) - 1
}

// passAttribute records what an attribute's indicator does not carry.
func (st *eventState) passAttribute(p path, a *rawAttr, oi *objInfo) {
	u := strings.ToLower(strings.TrimSpace(a.UUID.s))
	if !validUUID(u) {
		return
	}
	if st.ext.Attributes == nil {
		st.ext.Attributes = map[string]*extAttr{}
	}
	if _, dup := st.ext.Attributes[u]; dup {
		return
	}
	ea := &extAttr{
		Type: strings.TrimSpace(a.Type.s), Category: strings.TrimSpace(a.Category.s), Comment: a.Comment.s,
		Timestamp: a.Timestamp.s, FirstSeen: strings.TrimSpace(a.FirstSeen.s), LastSeen: strings.TrimSpace(a.LastSeen.s),
		DisableCorrelation: a.DisableCorrelation.v,
	}
	// Only these two types carry content MISP stores as a file.
	if a.Data.s != "" && (ea.Type == "attachment" || ea.Type == "malware-sample") {
		if limit := st.d.opts.maxData(); len(a.Data.s) > limit {
			st.d.errorf(p.at("/data"), "the data of %s attribute %s is %d bytes; the limit is %d, so it is not kept", ea.Type, u, len(a.Data.s), limit)
		} else {
			ea.Data = a.Data.s
		}
	}
	st.ext.Attributes[u] = ea
	if oi != nil && oi.ext >= 0 {
		o := &st.ext.Objects[oi.ext]
		o.Attributes = append(o.Attributes, u)
	}
}

// finishPass stores the pass-through on the event.
func (st *eventState) finishPass() {
	// A reference to an attribute or object of this event that was not
	// kept (deleted, rejected) would dangle.
	kept := map[string]bool{}
	for u := range st.ext.Attributes {
		kept[u] = true
	}
	for _, o := range st.ext.Objects {
		kept[o.UUID] = true
	}
	for i := range st.ext.Objects {
		o := &st.ext.Objects[i]
		o.References = slices.DeleteFunc(o.References, func(r extRef) bool { return st.seen[r.ReferencedUUID] && !kept[r.ReferencedUUID] })
	}
	if st.ext.empty() {
		return
	}
	b, err := json.Marshal(&st.ext)
	if err != nil {
		st.d.errorf(st.ptr, "the MISP pass-through could not be kept: %v", err)
		return
	}
	if st.ev.Extensions == nil {
		st.ev.Extensions = &gateway.Extensions{}
	}
	st.ev.Extensions.MISP = b
}

// Prune keeps extensions.misp consistent with an event projected to the
// attributes whose uuids are in present: objects lose members that are
// absent and are dropped when left empty, per-attribute data of absent
// attributes goes, and an ObjectReference to a removed attribute or object
// goes too, so no reference dangles. References to uuids the event never
// held (another event's objects) are kept. Input that is not the layout
// above is returned unchanged.
func Prune(ext json.RawMessage, present map[string]bool) json.RawMessage {
	if len(ext) == 0 {
		return ext
	}
	var x extMISP
	if json.Unmarshal(ext, &x) != nil {
		return ext
	}
	pruneExt(&x, present)
	if x.empty() {
		return nil
	}
	b, err := json.Marshal(&x)
	if err != nil {
		return ext
	}
	return b
}

func pruneExt(x *extMISP, present map[string]bool) {
	removed := map[string]bool{}
	for u := range x.Attributes {
		if !present[u] {
			removed[u] = true
			delete(x.Attributes, u)
		}
	}
	kept := x.Objects[:0]
	for _, o := range x.Objects {
		members := o.Attributes[:0]
		for _, u := range o.Attributes {
			if present[u] {
				members = append(members, u)
			} else {
				removed[u] = true
			}
		}
		o.Attributes = members
		if len(members) == 0 {
			removed[o.UUID] = true
			continue
		}
		kept = append(kept, o)
	}
	x.Objects = kept
	for i := range x.Objects {
		o := &x.Objects[i]
		o.References = slices.DeleteFunc(o.References, func(r extRef) bool { return removed[r.ReferencedUUID] })
	}
	if len(x.Attributes) == 0 {
		x.Attributes = nil
	}
	if len(x.Objects) == 0 {
		x.Objects = nil
	}
}

// presentUUIDs are the MISP attribute uuids an event's indicators carry,
// their merged duplicates' included.
func presentUUIDs(ev *gateway.Event) map[string]bool {
	present := map[string]bool{}
	for i := range ev.Indicators {
		a := ev.Indicators[i].Attributes
		if u := strings.ToLower(a[AttrUUID]); u != "" {
			present[u] = true
		}
		if d := a[AttrDuplicates]; d != "" {
			var more []occurrence
			if json.Unmarshal([]byte(d), &more) == nil {
				for _, o := range more {
					if o.UUID != "" {
						present[strings.ToLower(o.UUID)] = true
					}
				}
			}
		}
	}
	return present
}

// applyPass writes the (pruned) pass-through into an encoded event.
func applyPass(out *Event, ev *gateway.Event, b *builder) {
	if ev.Extensions == nil || len(ev.Extensions.MISP) == 0 {
		return
	}
	var x extMISP
	if json.Unmarshal(ev.Extensions.MISP, &x) != nil {
		return // not ours to read; the event itself is complete without it
	}
	local := map[string]bool{} // the source event's own attributes and objects
	for u := range x.Attributes {
		local[u] = true
	}
	for _, o := range x.Objects {
		local[o.UUID] = true
		for _, u := range o.Attributes {
			local[u] = true
		}
	}
	pruneExt(&x, presentUUIDs(ev))

	if len(x.Orgc) > 0 {
		var o struct {
			Name jstr `json:"name"`
			UUID jstr `json:"uuid"`
		}
		if json.Unmarshal(x.Orgc, &o) == nil && strings.TrimSpace(o.Name.s) != "" {
			out.Orgc = Org{Name: strings.TrimSpace(o.Name.s)}
			if u := strings.ToLower(strings.TrimSpace(o.UUID.s)); validUUID(u) {
				out.Orgc.UUID = u
			}
		}
	}
	switch x.Analysis {
	case "0", "1", "2":
		out.Analysis = x.Analysis
	}
	// The source's threat level when it still says what Priority says.
	if x.ThreatLevelID != "" && (x.ThreatLevelID == out.ThreatLevelID ||
		x.ThreatLevelID == "4" && ev.Priority == gateway.PriorityNormal) {
		out.ThreatLevelID = x.ThreatLevelID
	}
	if _, ok := parseDate(x.Date); ok && len(x.Date) == len("2006-01-02") {
		out.Date = x.Date
	}
	if validUUID(x.ExtendsUUID) {
		out.ExtendsUUID = x.ExtendsUUID
	}
	out.Galaxy = x.Galaxies

	// Where every attribute went.
	type loc struct{ obj, idx int } // obj -1: top level
	where := map[string]loc{}
	for i := range out.Attribute {
		where[out.Attribute[i].UUID] = loc{-1, i}
	}
	objAt := map[string]int{}
	for oi := range out.Object {
		objAt[out.Object[oi].UUID] = oi
		for i := range out.Object[oi].Attribute {
			where[out.Object[oi].Attribute[i].UUID] = loc{oi, i}
		}
	}
	attr := func(u string) *Attribute {
		l, ok := where[u]
		switch {
		case !ok:
			return nil
		case l.obj < 0:
			return &out.Attribute[l.idx]
		}
		return &out.Object[l.obj].Attribute[l.idx]
	}
	for u, ea := range x.Attributes {
		a := attr(u)
		if a == nil {
			continue
		}
		if ea.Type == a.Type {
			if ea.Category != "" {
				a.Category = ea.Category
			}
			if ea.Data != "" && (a.Type == "attachment" || a.Type == "malware-sample") {
				a.Data = ea.Data
			}
		}
		if a.Comment == "" {
			a.Comment = ea.Comment
		}
		if ea.Timestamp != "" {
			a.Timestamp = ea.Timestamp
		}
		if ea.FirstSeen != "" {
			t1, ok1 := parseSeen(ea.FirstSeen)
			t2, ok2 := parseSeen(a.FirstSeen)
			if a.FirstSeen == "" || ok1 && ok2 && t1.Equal(t2) {
				a.FirstSeen = ea.FirstSeen
			}
		}
		a.LastSeen = ea.LastSeen
		a.DisableCorrelation = ea.DisableCorrelation
	}

	// Objects in source order, with their members in source order; the
	// builder's other objects after them.
	dist, _ := strconv.Atoi(out.Distribution)
	var objects []Object
	moved := map[string]bool{}
	taken := map[int]bool{}
	for _, eo := range x.Objects {
		var o Object
		if oi, ok := objAt[eo.UUID]; ok {
			o = out.Object[oi]
			taken[oi] = true
		} else if b.used[eo.UUID] {
			continue // the uuid went to something else
		} else {
			o = Object{UUID: eo.UUID, Name: eo.Name, MetaCategory: metaCategory(eo.Name), Distribution: "5", SharingGroupID: "0", Timestamp: out.Timestamp}
		}
		var members []Attribute
		in := map[string]bool{}
		for _, u := range eo.Attributes {
			l, ok := where[u]
			if !ok || in[u] {
				continue
			}
			in[u] = true
			a := *attr(u)
			if l.obj < 0 {
				moved[u] = true
				if a.ObjectRelation == "" {
					a.ObjectRelation = a.Type
				}
			} else if out.Object[l.obj].UUID != eo.UUID {
				continue // placed in another object by its own indicator
			}
			members = append(members, a)
		}
		for _, a := range o.Attribute {
			if !in[a.UUID] {
				members = append(members, a)
			}
		}
		if len(members) == 0 {
			continue
		}
		o.Attribute = members
		if eo.Name != "" {
			o.Name = eo.Name
		}
		if eo.MetaCategory != "" {
			o.MetaCategory = eo.MetaCategory
		}
		o.Description, o.TemplateUUID, o.TemplateVersion = eo.Description, eo.TemplateUUID, eo.TemplateVersion
		o.Comment, o.FirstSeen, o.LastSeen = eo.Comment, eo.FirstSeen, eo.LastSeen
		if eo.Timestamp != "" {
			o.Timestamp = eo.Timestamp
		}
		// Never wider than the event is served: a sharing group is the
		// sender's and means nothing to the recipient.
		if d, err := strconv.Atoi(eo.Distribution); err == nil && d >= 0 && d <= 3 && d <= dist {
			o.Distribution = eo.Distribution
		}
		for _, r := range eo.References {
			o.ObjectReference = append(o.ObjectReference, ObjectReference{
				UUID: r.UUID, ObjectUUID: o.UUID, ReferencedUUID: r.ReferencedUUID,
				RelationshipType: r.RelationshipType, Comment: r.Comment, Timestamp: r.Timestamp,
			})
		}
		objects = append(objects, o)
	}
	for oi, o := range out.Object {
		if !taken[oi] {
			objects = append(objects, o)
		}
	}
	if len(moved) > 0 {
		out.Attribute = slices.DeleteFunc(out.Attribute, func(a Attribute) bool { return moved[a.UUID] })
	}
	if objects == nil {
		objects = []Object{}
	}
	out.Object = objects

	// An object of the source that could not be written (its members went
	// elsewhere) must not be referred to either.
	have := map[string]bool{}
	for _, a := range out.Attribute {
		have[a.UUID] = true
	}
	for _, o := range out.Object {
		have[o.UUID] = true
		for _, a := range o.Attribute {
			have[a.UUID] = true
		}
	}
	for i := range out.Object {
		o := &out.Object[i]
		o.ObjectReference = slices.DeleteFunc(o.ObjectReference, func(r ObjectReference) bool {
			return local[r.ReferencedUUID] && !have[r.ReferencedUUID]
		})
	}
}
