// Package stix maps STIX 2.1 to Schakel's canonical event and back. It does
// no I/O: Decode reads a bundle, a TAXII 2.1 envelope or a single object;
// Encode writes a bundle (or, for a TAXII server, the separate objects).
package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	stixschema "github.com/schakel/schakel/schemas/stix"
)

// Format is the Source.Format of every decoded event.
const Format = "stix"

// Limits on one input. Larger inputs are mapped up to the limit and the
// rest is reported, so a hostile document cannot make Decode hold
// unbounded state beyond the input itself.
const (
	MaxObjects    = 100_000 // objects read from one bundle or envelope
	MaxIndicators = 100_000 // indicators per event (the event schema's maxItems)
)

// limits are the caps in force; tests lower them.
var limits = struct{ objects, indicators int }{MaxObjects, MaxIndicators}

// Attribute keys Decode sets on indicators, and Encode reads back.
const (
	AttrID             = "stix_id"               // the indicator (or x-schakel-observable) id
	AttrPattern        = "stix_pattern"          // a pattern kept whole (type other)
	AttrPatternType    = "stix_pattern_type"     // pattern_type when it is not "stix"
	AttrObservedDataID = "stix_observed_data_id" // the observed-data an observable came from
	AttrFileID         = "stix_sco_id"           // the (§2.9) id of the file hashes and a name belong to
	// AttrDirection ("src") is how events stored before gateway.AttrDirection
	// said an address was a network-traffic src_ref; decode now writes
	// gateway.AttrDirection, encode reads both.
	AttrDirection      = "stix_direction"
	AttrName           = "name"            // indicator name
	AttrIndicatorTypes = "indicator_types" // comma-separated
	AttrLabels         = "labels"          // the object's labels, ", "-separated
	AttrValidUntil     = "valid_until"

	// The source's own version of an indicator, so Encode can give it back
	// unchanged while Schakel's content is unchanged (ARCHITECTURE §11.1).
	AttrSourcePattern = "stix_source_pattern" // the pattern text as the source wrote it
	AttrCreated       = "stix_created"        // the indicator's created
	AttrModified      = "stix_modified"       // the indicator's modified (else created)
	AttrCreatedByRef  = "stix_created_by_ref" // the indicator's created_by_ref
	AttrSourceTLP     = "stix_tlp"            // its own TLP marking; "inherited" when only its container was marked
	AttrContentDigest = "stix_content"        // digest of what the indicator object says (contentDigest)
	AttrMarkingRefs   = "stix_marking_refs"   // its markings other than TLP (statements), comma-separated
)

// customObservable carries canonical indicators STIX has no observable for
// (ja3, other) when they are not for detection.
const customObservable = "x-schakel-observable"

// object is the union of the properties Decode reads from any STIX object.
type object struct {
	Type               string     `json:"type"`
	ID                 string     `json:"id"`
	SpecVersion        string     `json:"spec_version"`
	Created            string     `json:"created"`
	Modified           string     `json:"modified"`
	CreatedByRef       string     `json:"created_by_ref"`
	Revoked            bool       `json:"revoked"`
	Name               string     `json:"name"`
	Description        string     `json:"description"`
	Labels             []string   `json:"labels"`
	ObjectMarkingRefs  []string   `json:"object_marking_refs"`
	GranularMarkings   []granular `json:"granular_markings"`
	ExternalReferences []extRef   `json:"external_references"`

	// report, grouping, observed-data
	ObjectRefs []string `json:"object_refs"`
	Published  string   `json:"published"`

	// indicator
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	ValidFrom      string   `json:"valid_from"`
	ValidUntil     string   `json:"valid_until"`
	IndicatorTypes []string `json:"indicator_types"`

	// observed-data
	FirstObserved string          `json:"first_observed"`
	Objects       json.RawMessage `json:"objects"` // STIX 2.0 inline observables

	// observables
	Value   string            `json:"value"`
	Number  json.RawMessage   `json:"number"`
	Hashes  map[string]string `json:"hashes"`
	DstRef  string            `json:"dst_ref"`
	SrcRef  string            `json:"src_ref"`
	DstPort json.RawMessage   `json:"dst_port"`
	SrcPort json.RawMessage   `json:"src_port"`

	// marking-definition
	DefinitionType string          `json:"definition_type"`
	Definition     json.RawMessage `json:"definition"`
	Extensions     json.RawMessage `json:"extensions"`

	// MISP and Schakel custom properties
	XMISPTags          json.RawMessage     `json:"x_misp_tags"`
	XSchakelKind       string              `json:"x_schakel_kind"`
	XSchakelPriority   string              `json:"x_schakel_priority"`
	XSchakelAssessment *gateway.Assessment `json:"x_schakel_assessment"`
	XSchakelSectors    []string            `json:"x_schakel_sectors"`
	XSchakelAttributes map[string]string   `json:"x_schakel_attributes"`
	XSchakelComment    string              `json:"x_schakel_comment"`
	XSchakelType       string              `json:"x_schakel_type"`
	XSchakelObserved   string              `json:"x_schakel_observed"`
	XSchakelCVSS       *float64            `json:"x_schakel_cvss"`
	XSchakelProducts   []string            `json:"x_schakel_products"`

	// relationship, sighting, and other references pass-through follows
	SourceRef        string   `json:"source_ref"`
	TargetRef        string   `json:"target_ref"`
	SightingOfRef    string   `json:"sighting_of_ref"`
	ObservedDataRefs []string `json:"observed_data_refs"`
	WhereSightedRefs []string `json:"where_sighted_refs"`

	ptr     string          // JSON pointer of the object in the input
	raw     json.RawMessage // the object's bytes in the input
	used    bool            // part of some event: mapped, or kept as pass-through
	checked int8            // pass-through: 0 not yet read, 1 kept, 2 not relayable
	kept    json.RawMessage // pass-through: what is relayed
	yielded bool            // an observed-data that gave indicators
}

type granular struct {
	MarkingRef string `json:"marking_ref"`
}

type extRef struct {
	SourceName string `json:"source_name"`
	ExternalID string `json:"external_id"`
}

// head is what Decode reads first to tell a bundle, an envelope and a single
// object apart.
type head struct {
	Type, ID string
}

type decoder struct {
	objects  []*object // input order, newest version per id, revoked ones dropped
	byID     map[string]*object
	markings map[string]markingTLP
	errs     []gateway.FieldError
	skipped  map[string]string // JSON pointer → why the object is in no event
	report   string            // the report id Encode gives the container in hand
}

func (d *decoder) unused(ptr, why string) {
	if d.skipped == nil {
		d.skipped = map[string]string{}
	}
	d.skipped[ptr] = why
}

// inheritedTLP marks an indicator whose TLP came from its container.
const inheritedTLP = "inherited"

// Decoded is what DecodeAll learnt from one input.
type Decoded struct {
	Events []*gateway.Event
	Errors []gateway.FieldError
	// Unused names, by the JSON pointer of the object in the input
	// ("/objects/3", "" for a single object), every readable object that
	// became part of no event (neither mapped nor kept as pass-through),
	// with the reason.
	Unused map[string]string
}

func (d *decoder) fail(ptr, format string, args ...any) {
	d.errs = append(d.errs, gateway.FieldError{Field: ptr, Message: fmt.Sprintf(format, args...)})
}

// Decode maps one input document to canonical events. Problems that affect
// part of the input (one bad attribute, one unreadable object) are returned
// as FieldErrors naming the JSON pointer while the rest is still mapped; err
// is only for input that cannot be read at all (then no events).
//
// Each report and grouping becomes one event (its object_refs decide
// membership); mappable objects that no report or grouping refers to
// become one more event titled after the bundle. Revoked objects are
// skipped; of several versions of one object the newest is used. Objects
// Schakel does not map (threat actors, relationships, sightings, notes, …)
// and vulnerabilities travel verbatim in the event's extensions.stix, with
// what they refer to, so Encode serves them back unchanged.
func Decode(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	r, err := DecodeAll(data)
	if err != nil {
		return nil, nil, err
	}
	return r.Events, r.Errors, nil
}

// DecodeAll is Decode that also says which objects were used.
func DecodeAll(data []byte) (*Decoded, error) {
	data = bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(data) == 0 {
		return nil, errors.New("input is empty")
	}
	if data[0] != '{' {
		return nil, errors.New("input must be a JSON object: a STIX bundle, a TAXII envelope or one STIX object")
	}
	d := &decoder{byID: map[string]*object{}, markings: map[string]markingTLP{}}
	h, err := d.stream(data)
	if err != nil {
		return nil, err
	}
	var title, ref string
	switch h.Type {
	case "bundle":
		title, ref = "STIX bundle "+h.ID, h.ID
		if h.ID == "" {
			title = "STIX bundle"
		}
	case "":
		title = "STIX objects from a TAXII envelope"
	default:
		// One object: whatever an "objects" property held was its own.
		*d = decoder{byID: map[string]*object{}, markings: map[string]markingTLP{}}
		d.readObject(data, "")
		if len(d.objects) == 1 {
			o := d.objects[0]
			title, ref = objectTitle(o), o.ID
		}
	}
	d.readMarkings()
	events := d.events(title, ref)
	for _, o := range d.objects {
		switch {
		case o.used:
			delete(d.skipped, o.ptr)
		case d.skipped[o.ptr] != "":
		case o.Revoked:
			d.unused(o.ptr, "revoked")
		default:
			d.unused(o.ptr, "no event holds it")
		}
	}
	return &Decoded{Events: events, Errors: uniqueErrors(d.errs), Unused: d.skipped}, nil
}

// stream reads the top level in one pass, decoding the elements of an
// "objects" array straight into objects. A single object whose "objects"
// is a STIX 2.0 dictionary comes back with its type; the caller reads it
// again as one object.
func (d *decoder) stream(data []byte) (head, error) {
	var h head
	var dict bool
	dec := json.NewDecoder(bytes.NewReader(data))
	fail := func(err error) (head, error) { return head{}, fmt.Errorf("read STIX input: %w", err) }
	if _, err := dec.Token(); err != nil { // the opening brace, checked by the caller
		return fail(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := tok.(string)
		switch key {
		case "type", "id":
			var v string
			if err := dec.Decode(&v); err != nil {
				return fail(fmt.Errorf("%s must be a string: %w", key, err))
			}
			if key == "type" {
				h.Type = v
			} else {
				h.ID = v
			}
		case "objects":
			tok, err := dec.Token()
			if err != nil {
				return fail(err)
			}
			switch tok {
			case json.Delim('['):
				if err := d.readList(dec, data); err != nil {
					return fail(err)
				}
			case json.Delim('{'):
				// A 2.0 observed-data's observables; only a single object
				// has these.
				dict = true
				if err := skipRest(dec); err != nil {
					return fail(err)
				}
			case nil:
			default:
				return fail(errors.New("objects must be an array"))
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(errors.New("unexpected data after the top-level object"))
	}
	if dict && (h.Type == "bundle" || h.Type == "") {
		return fail(errors.New("objects must be an array"))
	}
	return h, nil
}

// skipRest consumes the rest of an object or array whose opening delimiter
// was just read.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// readList decodes the elements of an objects array (its '[' already read)
// one by one; an element that is not a readable object is reported and
// skipped.
func (d *decoder) readList(dec *json.Decoder, data []byte) error {
	for i := 0; dec.More(); i++ {
		ptr := "/objects/" + strconv.Itoa(i)
		if i >= limits.objects {
			if i == limits.objects {
				d.fail(ptr, "more than %d objects; the rest are not mapped", limits.objects)
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		o := &object{}
		start := dec.InputOffset()
		if err := dec.Decode(o); err != nil {
			if _, ok := errors.AsType[*json.UnmarshalTypeError](err); !ok {
				return fmt.Errorf("object %d: %w", i, err)
			}
			d.fail(ptr, "unreadable STIX object: %s", jsonProblem(err))
			continue
		}
		o.raw = bytes.TrimLeft(data[start:dec.InputOffset()], " \t\r\n,")
		d.keep(o, ptr)
	}
	_, err := dec.Token() // the closing ']'
	return err
}

// readObject decodes one object and keeps it.
func (d *decoder) readObject(raw []byte, ptr string) {
	o := &object{}
	if err := json.Unmarshal(raw, o); err != nil {
		d.fail(ptr, "unreadable STIX object: %s", jsonProblem(err))
		return
	}
	o.raw = raw
	d.keep(o, ptr)
}

// keep indexes an object, keeping the newest version of each id.
func (d *decoder) keep(o *object, ptr string) {
	o.ptr = ptr
	switch {
	case o.Type == "":
		d.fail(ptr+"/type", "type is missing")
		return
	case o.ID == "":
		d.fail(ptr+"/id", "id is missing")
		return
	}
	if prev, ok := d.byID[o.ID]; ok {
		if !newer(o, prev) {
			if newer(prev, o) {
				d.unused(ptr, "a newer version of "+o.ID+" in the same input is used")
			}
			return // an exact repeat is no failure
		}
		d.unused(prev.ptr, "a newer version of "+o.ID+" in the same input is used")
		*prev = *o // keep the first position, take the newer content
		return
	}
	d.byID[o.ID] = o
	d.objects = append(d.objects, o)
}

// newer reports whether a is a later version than b (by modified, then
// created); equal versions keep the first seen.
func newer(a, b *object) bool {
	ta, _ := parseTime(firstNonEmpty(a.Modified, a.Created))
	tb, _ := parseTime(firstNonEmpty(b.Modified, b.Created))
	return ta.After(tb)
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "must be a JSON object, not a " + te.Value
		}
		return fmt.Sprintf("property %s must be a JSON %s", te.Field, jsonType(te.Type.Kind().String()))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return kind
}

// readMarkings collects TLP marking definitions that use their own ids. A
// TLP marking that cannot be read counts as RED: a label we do not
// understand must never make data travel further than its author meant.
func (d *decoder) readMarkings() {
	for _, o := range d.objects {
		if o.Type != "marking-definition" {
			continue
		}
		m, ok, err := definitionTLP(o)
		switch {
		case err != nil:
			d.markings[o.ID] = markingTLP{tlp: gateway.TLPRed}
			prop := "/extensions"
			if o.DefinitionType == "tlp" {
				prop = "/definition"
			}
			d.fail(o.ptr+prop, "unreadable TLP marking, treated as RED: %v", err)
		case ok:
			d.markings[o.ID] = m
		}
	}
}

func objectTitle(o *object) string {
	if n := strings.TrimSpace(o.Name); n != "" {
		return n
	}
	return "STIX " + o.Type + " " + o.ID
}

// mappable reports whether an object contributes to an event's content.
func mappable(t string) bool {
	switch t {
	case "indicator", "observed-data", "vulnerability", customObservable:
		return true
	}
	return scoMapped(t)
}

// scoMapped lists the observable types that become indicators.
func scoMapped(t string) bool {
	switch t {
	case "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file", "autonomous-system", "mutex", "network-traffic":
		return true
	}
	return false
}

// events builds one event per report and grouping, then one for the
// objects none of them holds. Objects Schakel does not map (threat actors,
// relationships, sightings, notes, …) travel with the events as
// pass-through, verbatim.
func (d *decoder) events(title, ref string) []*gateway.Event {
	covered := map[string]bool{}
	var out []*gateway.Event
	for _, o := range d.objects {
		if o.Revoked || !isContainer(o.Type) {
			continue
		}
		o.used = true
		for _, r := range o.ObjectRefs {
			covered[r] = true
		}
		ev, kept := d.container(o)
		for _, k := range kept {
			covered[k.ID] = true
		}
		out = append(out, ev)
	}
	// Observables an observed-data refers to come with it.
	for _, o := range d.objects {
		if o.Type == "observed-data" {
			for _, r := range o.ObjectRefs {
				covered[r] = true
			}
		}
	}
	var loose []*object
	content := false
	for _, o := range d.objects {
		if o.Revoked || covered[o.ID] || !(mappable(o.Type) || d.passable(o)) {
			continue
		}
		loose = append(loose, o)
		content = content || !sharedType(o.Type)
	}
	if content {
		// Not when nothing in it could be kept (all invalid).
		if ev := d.looseEvent(loose, title, ref); len(ev.Indicators) > 0 || len(ev.Vulnerabilities) > 0 || ev.Extensions != nil {
			out = append(out, ev)
		}
	}
	return out
}

func isContainer(t string) bool { return t == "report" || t == "grouping" }

// sharedType lists the objects many events refer to; alone they make no
// event.
func sharedType(t string) bool {
	return t == "identity" || t == "marking-definition" || t == "extension-definition"
}

// passable reports whether an object travels as pass-through: everything
// Schakel does not map, and vulnerabilities (mapped, and kept so that what
// refers to them still resolves). TLP markings are not: Encode writes
// Schakel's own.
func (d *decoder) passable(o *object) bool {
	switch {
	case o.Revoked || isContainer(o.Type):
		return false
	case o.Type == "vulnerability":
		// Not the ones Encode derives for the report in hand.
		for _, r := range o.ExternalReferences {
			if strings.EqualFold(r.SourceName, "cve") && d.report != "" &&
				o.ID == "vulnerability--"+uuidV5(schakelNamespace, d.report+"\x00vulnerability\x00"+strings.ToUpper(strings.TrimSpace(r.ExternalID))) {
				return false
			}
		}
		return true
	case o.Type == "observed-data":
		// Observations Schakel has no indicator for (a registry key) travel
		// as they are, so what refers to them still resolves.
		return !o.yielded
	case mappable(o.Type):
		return false
	case o.Type == "marking-definition":
		// TLP markings become the event's TLP; Encode writes its own.
		_, v1 := tlp10IDs[o.ID]
		_, v2 := tlp20ByID[o.ID]
		_, v3 := d.markings[o.ID]
		return !v1 && !v2 && !v3
	case o.Type == "identity":
		// Schakel's own producer identity: Encode writes it again.
		return o.ID != schakelIdentity(o.Name)
	case o.Type == "extension-definition":
		return o.ID != TLP20Extension
	}
	return true
}

// refs lists the ids an object points to that pass-through follows.
func (o *object) refs() []string {
	out := make([]string, 0, 4)
	add := func(ids ...string) {
		for _, id := range ids {
			if id != "" {
				out = append(out, id)
			}
		}
	}
	add(o.CreatedByRef, o.SourceRef, o.TargetRef, o.SightingOfRef)
	add(o.ObjectMarkingRefs...)
	for _, g := range o.GranularMarkings {
		add(g.MarkingRef)
	}
	add(o.ObservedDataRefs...)
	add(o.WhereSightedRefs...)
	if !isContainer(o.Type) {
		add(o.ObjectRefs...) // observed-data, note, opinion
	}
	if bytes.Contains(o.Extensions, []byte("extension-definition--")) {
		var ext map[string]json.RawMessage
		if json.Unmarshal(o.Extensions, &ext) == nil {
			for k := range ext {
				if strings.HasPrefix(k, "extension-definition--") {
					add(k)
				}
			}
		}
	}
	return out
}

// touches reports whether a relationship or sighting has an end in set.
func (o *object) touches(set map[string]bool) bool {
	if set[o.SourceRef] || set[o.TargetRef] || set[o.SightingOfRef] {
		return true
	}
	for _, r := range o.ObservedDataRefs {
		if set[r] {
			return true
		}
	}
	for _, r := range o.WhereSightedRefs {
		if set[r] {
			return true
		}
	}
	return false
}

// passThrough picks, in input order, the pass-through objects of an event
// whose objects (members and container) are in: those among them, the
// relationships and sightings that touch them, and whatever these refer to
// (identities, markings, extension definitions, the other end of a
// relationship, an observed-data's unmapped observables), so that every
// reference resolves.
func (d *decoder) passThrough(in map[string]bool) []*object {
	keep := map[string]bool{}
	var queue []*object
	add := func(id string) {
		if o := d.byID[id]; o != nil && !keep[id] && d.passable(o) {
			keep[id] = true
			queue = append(queue, o)
		}
	}
	for id := range in {
		add(id)
	}
	for _, o := range d.objects {
		if (o.Type == "relationship" || o.Type == "sighting") && !o.Revoked && o.touches(in) {
			add(o.ID)
		}
	}
	for id := range in {
		if o := d.byID[id]; o != nil {
			for _, r := range o.refs() {
				add(r)
			}
		}
	}
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		for _, r := range o.refs() {
			add(r)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	out := make([]*object, 0, len(keep))
	for _, o := range d.objects {
		if keep[o.ID] {
			out = append(out, o)
		}
	}
	return out
}

// relayed is the object as pass-through keeps it, or nil when it cannot be
// kept: compacted, spec_version added where STIX 2.0 left it out (2.1
// requires it, and peers pick their parser by it), and checked against
// the STIX 2.1 schemas once — what Schakel relays verbatim must be valid
// STIX, whoever wrote it.
func (d *decoder) relayed(o *object) json.RawMessage {
	if o.checked != 0 {
		return o.kept
	}
	o.checked = 2
	var buf bytes.Buffer
	if err := json.Compact(&buf, o.raw); err != nil {
		return nil // read once already
	}
	out := buf.Bytes()
	if o.SpecVersion == "" && len(out) > 2 { // "{}" has no type: never here
		out = append([]byte(`{"spec_version":"2.1",`), out[1:]...)
	}
	if errs := stixschema.ValidateObject(out); len(errs) > 0 {
		d.fail(o.ptr+errs[0].Field, "not relayed: does not validate against the STIX 2.1 schemas: %s", errs[0].Message)
		d.unused(o.ptr, "does not validate against the STIX 2.1 schemas: "+errs[0].Error())
		return nil
	}
	o.checked, o.kept = 1, out
	return o.kept
}

// keepPassThrough puts the objects in the event, verbatim.
func (d *decoder) keepPassThrough(b *builder, objs []*object) {
	if len(objs) == 0 {
		return
	}
	raws := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		raw := d.relayed(o)
		if raw == nil {
			continue
		}
		o.used = true
		d.addObject(&b.tlp, o)
		raws = append(raws, raw)
	}
	b.ev.Extensions = &gateway.Extensions{STIX: raws}
}

// builder collects one event's content.
type builder struct {
	ev      *gateway.Event
	ptr     string // the container, for errors about the event as a whole
	tlp     tlpAcc
	seen    map[string]bool // objects already mapped into this event
	cves    map[string]bool
	capHit  bool
	orgFrom string // created_by_ref of the first member that had one
}

func newBuilder(ptr string) *builder {
	return &builder{
		ev:   &gateway.Event{Kind: gateway.KindIntel, Source: gateway.SourceRef{Format: Format}},
		ptr:  ptr,
		seen: map[string]bool{},
		cves: map[string]bool{},
	}
}

func (d *decoder) container(c *object) (*gateway.Event, []*object) {
	b := newBuilder(c.ptr)
	ev := b.ev
	if id, ok := idUUID(c.ID, c.Type); ok {
		ev.ID = id
	}
	ev.Title = objectTitle(c)
	ev.Description = c.Description
	ev.Source.Ref = c.ID
	if k := gateway.Kind(c.XSchakelKind); k.Valid() {
		ev.Kind = k
	}
	ev.Priority = gateway.Priority(c.XSchakelPriority)
	if !ev.Priority.Valid() {
		ev.Priority = ""
	}
	if a := c.XSchakelAssessment; a != nil && *a != (gateway.Assessment{}) {
		ev.Assessment = a
	}
	ev.Sectors = append(ev.Sectors, c.XSchakelSectors...)
	if c.Type == "report" && c.Published != "" {
		ev.Created = d.time(c, "published", c.Published)
	} else {
		ev.Created = d.time(c, "created", c.Created)
	}
	ev.Modified = d.time(c, "modified", c.Modified)
	ev.Labels = append(ev.Labels, c.Labels...)
	ev.Labels = append(ev.Labels, d.mispTags(c)...)
	d.addObject(&b.tlp, c)

	members := make([]*object, 0, len(c.ObjectRefs))
	in := make(map[string]bool, len(c.ObjectRefs)+1)
	in[c.ID] = true
	for _, r := range c.ObjectRefs {
		if o, ok := d.byID[r]; ok && !o.Revoked && o != c {
			members = append(members, o)
			in[r] = true
		}
	}
	d.fill(b, members)
	d.report = ""
	if ev.ID != "" {
		d.report = "report--" + ev.ID
	}
	kept := d.passThrough(in)
	d.keepPassThrough(b, kept)
	ev.Source.Org = d.identityName(c.CreatedByRef)
	if ev.Source.Org == "" {
		ev.Source.Org = d.identityName(b.orgFrom)
	}
	b.finish()
	return ev, kept
}

func (d *decoder) looseEvent(loose []*object, title, ref string) *gateway.Event {
	b := newBuilder("")
	ev := b.ev
	ev.Title, ev.Source.Ref = title, ref
	for _, o := range loose {
		if t, ok := parseTime(o.Created); ok && (ev.Created.IsZero() || t.Before(ev.Created)) {
			ev.Created = t
		}
		if t, ok := parseTime(firstNonEmpty(o.Modified, o.Created)); ok && t.After(ev.Modified) {
			ev.Modified = t
		}
	}
	if !ev.Created.IsZero() && ev.Modified.Before(ev.Created) {
		ev.Modified = ev.Created
	}
	in := make(map[string]bool, len(loose))
	members := make([]*object, 0, len(loose))
	for _, o := range loose {
		in[o.ID] = true
		if mappable(o.Type) {
			members = append(members, o)
		}
	}
	d.fill(b, members)
	d.report = ""
	d.keepPassThrough(b, d.passThrough(in))
	ev.Source.Org = d.identityName(b.orgFrom)
	b.finish()
	return ev
}

// fill maps members: first everything that carries context (indicators,
// observed-data, vulnerabilities), then bare observables not yet covered, so
// an observable listed both alone and inside an observed-data keeps the
// observed-data's id.
func (d *decoder) fill(b *builder, members []*object) {
	for _, o := range members {
		d.addObject(&b.tlp, o)
		if b.orgFrom == "" && o.CreatedByRef != "" {
			b.orgFrom = o.CreatedByRef
		}
		if o.Type != "indicator" {
			o.used = true // an indicator is used when it yields one
		}
		switch o.Type {
		case "indicator":
			d.indicator(b, o)
		case "observed-data":
			d.observedData(b, o)
		case "vulnerability":
			d.vulnerability(b, o)
		case customObservable:
			d.custom(b, o)
		}
	}
	var bare []*object
	for _, o := range members {
		if scoMapped(o.Type) && !b.seen[o.ID] {
			bare = append(bare, o)
		}
	}
	if len(bare) > 0 {
		d.observables(b, bare, nil)
	}
	for _, o := range members {
		if o.Type == "observed-data" {
			for _, r := range o.ObjectRefs {
				if s, ok := d.byID[r]; ok && scoMapped(s.Type) {
					s.used = true
				}
			}
		}
	}
}

func (b *builder) finish() {
	// An indicator without a marking of its own had its container's: a
	// TLP marking on it is Schakel's change (the container's marking may
	// differ from one report version to the next).
	if b.tlp.marked {
		for i := range b.ev.Indicators {
			a := b.ev.Indicators[i].Attributes
			if a[AttrCreated] != "" && a[AttrSourceTLP] == "" {
				a[AttrSourceTLP] = inheritedTLP
			}
		}
	}
	if b.tlp.marked {
		b.ev.TLP = b.tlp.tlp
		if b.tlp.white && b.tlp.tlp == gateway.TLPClear {
			b.ev.Labels = append(b.ev.Labels, normalize.LabelTLPWhite)
		}
	}
}

// add appends an indicator unless the event is full.
func (d *decoder) add(b *builder, ind gateway.Indicator) bool {
	if len(b.ev.Indicators) >= limits.indicators {
		if !b.capHit {
			b.capHit = true
			d.fail(b.ptr, "more than %d indicators in one event; the rest are not mapped", limits.indicators)
		}
		return false
	}
	b.ev.Indicators = append(b.ev.Indicators, ind)
	return true
}

func (d *decoder) identityName(ref string) string {
	if o, ok := d.byID[ref]; ok && o.Type == "identity" {
		return strings.TrimSpace(o.Name)
	}
	return ""
}

// mispTags reads x_misp_tags: strings, or objects with a name.
func (d *decoder) mispTags(o *object) []string {
	if len(o.XMISPTags) == 0 {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(o.XMISPTags, &items); err != nil {
		d.fail(o.ptr+"/x_misp_tags", "x_misp_tags must be an array")
		return nil
	}
	var out []string
	for i, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, s)
			continue
		}
		var t struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(it, &t) == nil && t.Name != "" {
			out = append(out, t.Name)
			continue
		}
		d.fail(o.ptr+"/x_misp_tags/"+strconv.Itoa(i), "tag must be a string or an object with a name")
	}
	return out
}

// time parses a STIX timestamp, reporting a bad one at its property.
func (d *decoder) time(o *object, prop, v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, ok := parseTime(v)
	if !ok {
		d.fail(o.ptr+"/"+prop, "%s is not an RFC 3339 timestamp", prop)
	}
	return t
}

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func escapePointer(token string) string {
	if !strings.ContainsAny(token, "~/") {
		return token
	}
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// uniqueErrors drops repeats: an object shared by two events is reported once.
func uniqueErrors(errs []gateway.FieldError) []gateway.FieldError {
	if len(errs) < 2 {
		return errs
	}
	seen := make(map[gateway.FieldError]bool, len(errs))
	out := errs[:0]
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}
