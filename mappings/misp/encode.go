package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// ErrRed is returned by Encode for TLP:RED events: RED is never served over
// MISP (ARCHITECTURE §4).
var ErrRed = errors.New("misp: TLP:RED is never served over MISP")

// EncodeOptions name Schakel's organisation, which MISP records as creator
// (Orgc) and owner (Org) of everything the gateway serves.
type EncodeOptions struct {
	OrgName, OrgUUID string // Schakel's org (Orgc/Org) — the gateway's identity
	Published        bool   // default true in the server
}

// Event is a MISP event in the core format, as Encode writes it: numbers
// and timestamps as JSON strings, booleans as booleans.
type Event struct {
	ID                 string        `json:"id,omitempty"` // the server's numeric id, when it has one
	UUID               string        `json:"uuid"`
	Info               string        `json:"info"`
	Date               string        `json:"date"`
	ThreatLevelID      string        `json:"threat_level_id"`
	Analysis           string        `json:"analysis"`
	Distribution       string        `json:"distribution"`
	SharingGroupID     string        `json:"sharing_group_id"`
	Published          bool          `json:"published"`
	Timestamp          string        `json:"timestamp"`
	PublishTimestamp   string        `json:"publish_timestamp"`
	AttributeCount     string        `json:"attribute_count"`
	DisableCorrelation bool          `json:"disable_correlation"`
	ExtendsUUID        string        `json:"extends_uuid"`
	Orgc               Org           `json:"Orgc"`
	Org                Org           `json:"Org"`
	Tag                []Tag         `json:"Tag"`
	Attribute          []Attribute   `json:"Attribute"`
	Object             []Object      `json:"Object"`
	EventReport        []EventReport `json:"EventReport,omitempty"`
	// Galaxy blocks as the source sent them (extensions.misp).
	Galaxy []json.RawMessage `json:"Galaxy,omitempty"`
}

// Org is an organisation reference.
type Org struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	UUID string `json:"uuid,omitempty"`
}

// Tag is an event or attribute tag. Local is always written: a pulling MISP
// reads it unguarded and drops local tags.
type Tag struct {
	Name       string `json:"name"`
	Colour     string `json:"colour"`
	Exportable bool   `json:"exportable"`
	Local      bool   `json:"local"`
}

// Attribute is one MISP attribute.
type Attribute struct {
	UUID               string `json:"uuid"`
	Type               string `json:"type"`
	Category           string `json:"category"`
	Value              string `json:"value"`
	ToIDs              bool   `json:"to_ids"`
	Distribution       string `json:"distribution"`
	SharingGroupID     string `json:"sharing_group_id"`
	Timestamp          string `json:"timestamp"`
	Comment            string `json:"comment"`
	Deleted            bool   `json:"deleted"`
	DisableCorrelation bool   `json:"disable_correlation"`
	ObjectRelation     string `json:"object_relation,omitempty"`
	FirstSeen          string `json:"first_seen,omitempty"`
	LastSeen           string `json:"last_seen,omitempty"`
	Data               string `json:"data,omitempty"` // attachment or malware-sample content, base64
	Tag                []Tag  `json:"Tag,omitempty"`
}

// Object groups attributes as a MISP object.
type Object struct {
	UUID            string            `json:"uuid"`
	Name            string            `json:"name"`
	MetaCategory    string            `json:"meta-category"`
	Description     string            `json:"description,omitempty"`
	TemplateUUID    string            `json:"template_uuid,omitempty"`
	TemplateVersion string            `json:"template_version,omitempty"`
	Distribution    string            `json:"distribution"`
	SharingGroupID  string            `json:"sharing_group_id"`
	Timestamp       string            `json:"timestamp"`
	Comment         string            `json:"comment"`
	Deleted         bool              `json:"deleted"`
	FirstSeen       string            `json:"first_seen,omitempty"`
	LastSeen        string            `json:"last_seen,omitempty"`
	Attribute       []Attribute       `json:"Attribute"`
	ObjectReference []ObjectReference `json:"ObjectReference,omitempty"`
}

// ObjectReference relates an object to another object or attribute.
type ObjectReference struct {
	UUID             string `json:"uuid,omitempty"`
	ObjectUUID       string `json:"object_uuid"`
	ReferencedUUID   string `json:"referenced_uuid"`
	RelationshipType string `json:"relationship_type"`
	Comment          string `json:"comment"`
	Timestamp        string `json:"timestamp,omitempty"`
}

// EventReport carries the canonical description.
type EventReport struct {
	UUID           string `json:"uuid"`
	Name           string `json:"name"`
	Content        string `json:"content"`
	Distribution   string `json:"distribution"`
	SharingGroupID string `json:"sharing_group_id"`
	Timestamp      string `json:"timestamp"`
	Deleted        bool   `json:"deleted"`
}

// tlpColours are the misp-taxonomies tlp colours.
var tlpColours = map[gateway.TLP]string{
	gateway.TLPClear: "#ffffff", gateway.TLPGreen: "#33FF00",
	gateway.TLPAmber: "#FFC000", gateway.TLPAmberStrict: "#FFC000", gateway.TLPRed: "#FF2B2B",
}

// Distribution served per TLP (ARCHITECTURE §6); a pulling MISP lowers it
// by one step on capture.
var tlpDistribution = map[gateway.TLP]string{
	gateway.TLPClear: "3", gateway.TLPGreen: "2", gateway.TLPAmber: "1", gateway.TLPAmberStrict: "1",
}

// Encode builds a MISP event (as map-free typed structs marshalled to JSON)
// from a canonical event projected for one recipient: {"Event":{…}}.
func Encode(ev *gateway.Event, o EncodeOptions) ([]byte, error) {
	e, err := EncodeEvent(ev, o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Event *Event `json:"Event"`
	}{e}); err != nil {
		return nil, fmt.Errorf("misp: marshal event %s: %w", e.UUID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodeEvent returns the typed struct (for the server to embed in
// index/restSearch responses).
func EncodeEvent(ev *gateway.Event, o EncodeOptions) (*Event, error) {
	if ev == nil {
		return nil, errors.New("misp: event is missing")
	}
	if strings.TrimSpace(o.OrgName) == "" {
		return nil, errors.New("misp: encode options: org name is missing")
	}
	if o.OrgUUID != "" && !validUUID(o.OrgUUID) {
		return nil, fmt.Errorf("misp: encode options: org uuid %q is not an RFC 4122 UUID", o.OrgUUID)
	}
	if ev.TLP == gateway.TLPRed {
		return nil, ErrRed
	}
	dist, ok := tlpDistribution[ev.TLP]
	if !ok {
		return nil, fmt.Errorf("misp: tlp %q is not a TLP label Schakel serves over MISP", ev.TLP)
	}
	if strings.TrimSpace(ev.ID) == "" {
		return nil, errors.New("misp: id is missing")
	}
	if strings.TrimSpace(ev.Title) == "" {
		return nil, errors.New("misp: title is empty")
	}
	modified := ev.Modified
	if modified.IsZero() {
		modified = ev.Created
	}
	if modified.IsZero() {
		return nil, errors.New("misp: modified is missing")
	}
	if modified.Unix() <= 0 || modified.Year() > 9999 {
		return nil, fmt.Errorf("misp: modified %s is outside the Unix timestamps MISP accepts", modified.Format(time.RFC3339))
	}
	created := ev.Created
	if created.IsZero() || created.Year() < 1970 || created.Year() > 9999 {
		created = modified
	}

	uuid := eventUUID(ev.ID)
	ts := strconv.FormatInt(modified.Unix(), 10)
	org := Org{Name: o.OrgName, UUID: strings.ToLower(o.OrgUUID)}
	out := &Event{
		UUID:             uuid,
		Info:             ev.Title,
		Date:             created.UTC().Format("2006-01-02"),
		ThreatLevelID:    threatLevel(ev.Priority),
		Analysis:         "2", // completed: what Schakel relays is published
		Distribution:     dist,
		SharingGroupID:   "0",
		Published:        o.Published,
		Timestamp:        ts,
		PublishTimestamp: "0",
		Orgc:             org,
		Org:              org,
		Tag:              eventTags(ev),
	}
	if o.Published {
		out.PublishTimestamp = ts
	}
	b := newBuilder(uuid, ts)
	// Vulnerabilities first: they carry CVSS and products, which a cve
	// indicator for the same CVE does not.
	b.vulnerabilities(ev.Vulnerabilities)
	b.indicators(ev)
	b.advice(ev)
	// Empty lists go out as [], which PyMISP and MISP expect, not null.
	out.Attribute, out.Object = b.attrs, b.objects
	if out.Attribute == nil {
		out.Attribute = []Attribute{}
	}
	if out.Object == nil {
		out.Object = []Object{}
	}
	out.AttributeCount = strconv.Itoa(b.count)
	applyPass(out, ev, b)
	if ev.Description != "" {
		out.EventReport = []EventReport{{
			UUID: b.uuidFor("report|description"), Name: "Description", Content: ev.Description,
			Distribution: "5", SharingGroupID: "0", Timestamp: ts,
		}}
	}
	return out, nil
}

// eventUUID is the canonical id when it is a valid RFC 4122 UUID, else a
// UUIDv5 of it, so the same event always has the same MISP uuid.
func eventUUID(id string) string {
	if u, ok := parseUUID(id); ok {
		return formatUUID(u)
	}
	return uuidV5(eventNamespace, id)
}

func threatLevel(p gateway.Priority) string {
	switch p {
	case gateway.PriorityCritical, gateway.PriorityHigh:
		return "1"
	case gateway.PriorityLow:
		return "3"
	}
	return "2"
}

// eventTags: exactly one lower-case tlp:* tag, then the labels (labels in
// the tlp: namespace such as tlp:white or tlp:ex:chr are left out: the tlp
// taxonomy is exclusive), then Schakel's priority, kind and sector tags.
func eventTags(ev *gateway.Event) []Tag {
	tags := []Tag{{Name: ev.TLP.MachineTag(), Colour: tlpColours[ev.TLP], Exportable: true}}
	seen := map[string]bool{tags[0].Name: true}
	add := func(name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		tags = append(tags, Tag{Name: name, Colour: tagColour(name), Exportable: true})
	}
	for _, l := range ev.Labels {
		l = strings.TrimSpace(l)
		lower := strings.ToLower(l)
		if strings.HasPrefix(lower, tlpNamespace) || lower == tagCritical || isKindTag(lower) || strings.HasPrefix(lower, tagSectorPrefix) {
			continue // written from TLP, Priority, Kind and Sectors instead
		}
		add(l)
	}
	if ev.Priority == gateway.PriorityCritical {
		add(tagCritical)
	}
	// Always written, intel included: MISP's own inference (advisory for
	// an event of vulnerabilities only) would otherwise change the kind.
	if ev.Kind != "" && ev.Kind.Valid() {
		add(tagKindPrefix + `"` + string(ev.Kind) + `"`)
	}
	for _, s := range ev.Sectors {
		if s = strings.TrimSpace(s); s != "" && !strings.Contains(s, `"`) {
			add(tagSectorPrefix + `"` + s + `"`)
		}
	}
	return tags
}

func isKindTag(lower string) bool {
	rest, ok := strings.CutPrefix(lower, tagKindPrefix)
	return ok && gateway.Kind(strings.Trim(rest, `"`)).Valid()
}

// tagColour gives a tag MISP has not seen a stable colour.
func tagColour(name string) string {
	if strings.HasPrefix(name, "misp-galaxy:") {
		return "#0088cc"
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("#%06x", h.Sum32()&0xffffff)
}

// part is one MISP attribute to write: an indicator, or one of the
// duplicates it carries, with the MISP type chosen for it.
type part struct {
	ind     *gateway.Indicator
	occ     occurrence
	primary bool
	typ     string // MISP type
	keep    bool   // typ is the original MISP type: keep its category and object
	group   *composite
}

// composite gathers the indicators Decode split from one domain|ip or
// filename|<hash> attribute, found by the attribute's uuid.
type composite struct {
	typ     string
	a, b    *part // domain and ip, or filename and hash
	emitted bool
}

func (c *composite) complete() bool {
	if c.typ == "domain|ip" {
		return c.a != nil && c.b != nil
	}
	return c.b != nil && c.filename() != ""
}

func (c *composite) filename() string {
	if c.a != nil {
		return c.a.ind.Value
	}
	if c.b != nil {
		if c.b.primary {
			return c.b.ind.Attributes[AttrFilename]
		}
		return c.b.occ.Filename
	}
	return ""
}

// builder writes attributes and objects with uuids unique in the event.
type builder struct {
	ns      [16]byte
	ts      string
	used    map[string]bool
	attrs   []Attribute
	objects []Object
	objIdx  map[string]int
	next    map[string]int // next suffix per derived-uuid name
	cves    map[string]bool
	count   int
}

func newBuilder(eventUUID, ts string) *builder {
	ns, _ := parseUUID(eventUUID)
	return &builder{ns: ns, ts: ts, used: map[string]bool{eventUUID: true}, objIdx: map[string]int{}, next: map[string]int{}, cves: map[string]bool{}}
}

// uuidFor derives a uuid from name, unique in the event.
func (b *builder) uuidFor(name string) string {
	u := uuidV5(b.ns, name)
	if b.used[u] {
		// Repeats of one name (duplicates without uuids) continue where
		// the last left off, so n repeats cost n hashes, not n².
		n := max(b.next[name], 2)
		for {
			u = uuidV5(b.ns, name+"#"+strconv.Itoa(n))
			n++
			if !b.used[u] {
				break
			}
		}
		b.next[name] = n
	}
	b.used[u] = true
	return u
}

func (b *builder) indicators(ev *gateway.Event) {
	var parts []*part
	groups := map[string]*composite{}
	for i := range ev.Indicators {
		ind := &ev.Indicators[i]
		occs := []occurrence{occurrenceOf(ind)}
		if d := ind.Attributes[AttrDuplicates]; d != "" {
			var more []occurrence
			if json.Unmarshal([]byte(d), &more) == nil {
				occs = append(occs, more...)
			}
		}
		for j, occ := range occs {
			p := &part{ind: ind, occ: occ, primary: j == 0}
			p.typ, p.keep = chooseType(ind, occ.Type)
			if p.keep && (p.typ == "domain|ip" || typeRules[p.typ].h == hFileHash) {
				p.group = join(groups, p)
				if p.group == nil {
					// Without its uuid the other half cannot be found.
					p.typ, p.keep = defaultType(ind), false
				}
			}
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		g := p.group
		switch {
		case g == nil && sourceHost(p):
			b.hostObject(p)
		case g == nil:
			b.plain(p)
		case g.emitted:
		case g.complete():
			g.emitted = true
			b.composite(g)
		default:
			// The other half was rejected or changed: write this half as
			// an attribute of its own type.
			p.typ, p.keep = defaultType(p.ind), false
			b.plain(p)
		}
	}
}

// join files p under its MISP attribute uuid as one half of a composite;
// nil when it cannot be (no valid uuid, or that half is already taken).
func join(groups map[string]*composite, p *part) *composite {
	key := strings.ToLower(p.occ.UUID)
	if !validUUID(key) {
		return nil
	}
	g := groups[key]
	if g == nil {
		g = &composite{typ: p.typ}
		groups[key] = g
	}
	slot := &g.b
	if p.ind.Type == gateway.TypeDomain || p.ind.Type == gateway.TypeFilename {
		slot = &g.a
	}
	if g.typ != p.typ || *slot != nil {
		return nil
	}
	*slot = p
	return g
}

// chooseType keeps the original MISP type when Decode could have produced
// the indicator from it, and the port when the indicator has one.
func chooseType(ind *gateway.Indicator, mispType string) (string, bool) {
	inferred := ind.Attributes[normalize.AttrOriginalType] == string(gateway.TypeOther)
	if mispType == "" {
		return defaultType(ind), false
	}
	if !producible(mispType, ind.Type, inferred) {
		if inferred {
			// Free text in MISP under a type this package does not know
			// (a newer MISP's): it stays free text.
			return "text", false
		}
		return defaultType(ind), false
	}
	if ind.Port != 0 {
		switch mispType {
		case "ip-src", "ip-dst":
			return mispType + "|port", true
		case "domain", "hostname":
			return "hostname|port", true
		}
	}
	return mispType, true
}

// value renders an indicator's value for its MISP type.
func value(ind *gateway.Indicator, mispType string) string {
	switch mispType {
	case "ip-src|port", "ip-dst|port", "hostname|port":
		return ind.Value + "|" + strconv.Itoa(ind.Port)
	case "AS":
		// MISP stores AS numbers without the prefix.
		if ind.ASN > 0 {
			return strconv.FormatInt(ind.ASN, 10)
		}
		if len(ind.Value) > 2 && strings.EqualFold(ind.Value[:2], "as") {
			return ind.Value[2:]
		}
	}
	return ind.Value
}

func (b *builder) plain(p *part) {
	if p.ind.Type == gateway.TypeCVE && p.typ == "vulnerability" {
		if b.cves[strings.ToUpper(p.ind.Value)] {
			return
		}
		b.cves[strings.ToUpper(p.ind.Value)] = true
	}
	v := value(p.ind, p.typ)
	a := b.attribute(p, v, string(p.ind.Type)+"|"+p.ind.Value+"|"+strconv.Itoa(p.ind.Port))
	b.place(p, a)
}

func (b *builder) composite(g *composite) {
	anchor := g.b // the ip or the hash
	var v string
	if g.typ == "domain|ip" {
		v = g.a.ind.Value + "|" + g.b.ind.Value
	} else {
		v = g.filename() + "|" + g.b.ind.Value
	}
	p := *anchor
	p.typ = g.typ
	a := b.attribute(&p, v, g.typ+"|"+v+"|0")
	b.place(&p, a)
}

// attribute fills in everything but the placement; derive names the
// value for a derived uuid.
func (b *builder) attribute(p *part, v, derive string) Attribute {
	a := Attribute{
		Type: p.typ, Value: v, Distribution: "5", SharingGroupID: "0", Timestamp: b.ts,
	}
	if p.keep && p.occ.Category != "" {
		a.Category = p.occ.Category
	} else {
		a.Category = category(p.typ)
	}
	if u := strings.ToLower(p.occ.UUID); validUUID(u) && !b.used[u] {
		b.used[u] = true
		a.UUID = u
	} else {
		a.UUID = b.uuidFor(derive)
	}
	var tags string
	var seen time.Time
	if p.primary {
		a.ToIDs = p.ind.Detect && p.ind.Attributes[AttrToIDs] != "false"
		a.Comment = p.ind.Comment
		tags = p.ind.Attributes[AttrTags]
		seen = p.ind.Observed
	} else {
		a.ToIDs = p.ind.Detect && p.occ.ToIDs
		a.Comment = p.occ.Comment
		tags = p.occ.Tags
		seen, _ = time.Parse(time.RFC3339Nano, p.occ.FirstSeen)
	}
	if !seen.IsZero() && seen.Year() >= 1970 && seen.Year() <= 9999 {
		a.FirstSeen = seen.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
	}
	for _, t := range SplitTags(tags) {
		if _, _, err := gateway.ParseTLP(strings.TrimPrefix(strings.ToLower(t), tlpNamespace)); err == nil && strings.HasPrefix(strings.ToLower(t), tlpNamespace) {
			continue // the event's one tlp tag rules
		}
		a.Tag = append(a.Tag, Tag{Name: t, Colour: tagColour(t), Exportable: true})
	}
	return a
}

// place puts a into its MISP object when it came from one, else at the
// top level.
func (b *builder) place(p *part, a Attribute) {
	b.count++
	ou := strings.ToLower(p.occ.ObjectUUID)
	if !p.keep || !validUUID(ou) {
		b.attrs = append(b.attrs, a)
		return
	}
	i, ok := b.objIdx[ou]
	if !ok {
		if b.used[ou] {
			b.attrs = append(b.attrs, a)
			return
		}
		b.used[ou] = true
		name := p.occ.Object
		if name == "" {
			name = "misc"
		}
		i = len(b.objects)
		b.objIdx[ou] = i
		b.objects = append(b.objects, Object{
			UUID: ou, Name: name, MetaCategory: metaCategory(name), Distribution: "5",
			SharingGroupID: "0", Timestamp: b.ts,
		})
	}
	a.ObjectRelation = p.occ.Relation
	if a.ObjectRelation == "" {
		a.ObjectRelation = a.Type
	}
	b.objects[i].Attribute = append(b.objects[i].Attribute, a)
}

func (b *builder) vulnerabilities(vs []gateway.Vulnerability) {
	for _, v := range vs {
		cve := strings.ToUpper(strings.TrimSpace(v.CVE))
		if cve == "" || b.cves[cve] {
			continue
		}
		b.cves[cve] = true
		var notes []string
		if v.CVSS > 0 {
			notes = append(notes, "CVSS "+strconv.FormatFloat(v.CVSS, 'f', -1, 64))
		}
		if len(v.Products) > 0 {
			notes = append(notes, strings.Join(v.Products, ", "))
		}
		b.count++
		b.attrs = append(b.attrs, Attribute{
			UUID: b.uuidFor("cve|" + cve + "|0"), Type: "vulnerability", Category: category("vulnerability"),
			Value: cve, Distribution: "5", SharingGroupID: "0", Timestamp: b.ts,
			Comment: strings.Join(notes, "; "),
		})
	}
}
