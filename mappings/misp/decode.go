package misp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// Limits that keep hostile or runaway input from exhausting memory.
const (
	maxAttributes    = 100_000   // attributes mapped per event (and indicators produced)
	maxDocAttributes = 1_000_000 // attributes mapped per document
	maxEvents        = 10_000    // events per document
	maxFieldErrors   = 1_000     // problems listed per document; the rest are counted
)

// Format is the Source.Format of events Decode returns.
const Format = "misp"

// Keys Decode sets in Indicator.Attributes and Encode reads back.
const (
	AttrType           = "misp_type"            // the MISP attribute type
	AttrCategory       = "misp_category"        // the MISP category
	AttrUUID           = "misp_uuid"            // the MISP attribute uuid
	AttrObject         = "misp_object"          // the name of the MISP object holding the attribute
	AttrObjectUUID     = "misp_object_uuid"     // that object's uuid
	AttrObjectRelation = "misp_object_relation" // the attribute's object_relation
	AttrTags           = "tags"                 // non-TLP attribute tags, comma-joined (see JoinTags)
	AttrFilename       = "filename"             // the file name of a filename|<hash> attribute, on the hash
	// AttrToIDs is "false" on an indicator whose own MISP attribute had
	// to_ids off while a duplicate (see AttrDuplicates) had it on, so Detect
	// is true.
	AttrToIDs = "misp_to_ids"
	// AttrDuplicates holds, as a JSON array, the other MISP attributes of the
	// event with the same canonical type, value and port. Schakel keeps one
	// indicator per value; this keeps the rest of MISP's view (their uuids,
	// objects, categories, to_ids, comments, tags) for Encode.
	AttrDuplicates = "misp_duplicates"
)

// rawEvent is a MISP event as sent, or an envelope around one. Every field
// type is lenient (flex.go), so decoding it never fails on valid JSON.
type rawEvent struct {
	// A pointer, so that the wrapper and the event inside it are decoded
	// in one pass.
	Event    *rawEvent `json:"Event"`
	Response jraw      `json:"response"`

	UUID             jstr  `json:"uuid"`
	Info             jstr  `json:"info"`
	Date             jstr  `json:"date"`
	Timestamp        jint  `json:"timestamp"`
	PublishTimestamp jint  `json:"publish_timestamp"`
	ThreatLevelID    jint  `json:"threat_level_id"`
	Distribution     jint  `json:"distribution"`
	Orgc             jorg  `json:"Orgc"`
	Analysis         jstr  `json:"analysis"`
	ExtendsUUID      jstr  `json:"extends_uuid"`
	Tag              jlist `json:"Tag"`
	EventTag         jlist `json:"EventTag"`
	Galaxy           jlist `json:"Galaxy"`
	Attribute        jlist `json:"Attribute"`
	Object           jlist `json:"Object"`
	EventReport      jlist `json:"EventReport"`
}

// isEvent reports whether r has any field only an event has.
func (r *rawEvent) isEvent() bool {
	return r.UUID.set || r.Info.set || r.Date.set || r.Timestamp.set || r.ThreatLevelID.set ||
		r.Orgc.name != "" || r.Attribute.total > 0 || r.Object.total > 0 || r.Tag.total > 0 ||
		r.EventTag.total > 0
}

type rawAttr struct {
	UUID               jstr  `json:"uuid"`
	Type               jstr  `json:"type"`
	Category           jstr  `json:"category"`
	Value              jstr  `json:"value"`
	Value1             jstr  `json:"value1"`
	Value2             jstr  `json:"value2"`
	ToIDs              jbool `json:"to_ids"`
	Distribution       jint  `json:"distribution"`
	Comment            jstr  `json:"comment"`
	Deleted            jbool `json:"deleted"`
	FirstSeen          jstr  `json:"first_seen"`
	LastSeen           jstr  `json:"last_seen"`
	Timestamp          jstr  `json:"timestamp"`
	Data               jstr  `json:"data"`
	DisableCorrelation jbool `json:"disable_correlation"`
	ObjectRelation     jstr  `json:"object_relation"`
	Tag                jlist `json:"Tag"`
	AttributeTag       jlist `json:"AttributeTag"`
}

type rawObject struct {
	UUID            jstr  `json:"uuid"`
	Name            jstr  `json:"name"`
	MetaCategory    jstr  `json:"meta-category"`
	Description     jstr  `json:"description"`
	TemplateUUID    jstr  `json:"template_uuid"`
	TemplateVersion jstr  `json:"template_version"`
	Comment         jstr  `json:"comment"`
	Distribution    jint  `json:"distribution"`
	SharingGroupID  jstr  `json:"sharing_group_id"`
	Timestamp       jstr  `json:"timestamp"`
	FirstSeen       jstr  `json:"first_seen"`
	LastSeen        jstr  `json:"last_seen"`
	Deleted         jbool `json:"deleted"`
	Attribute       jlist `json:"Attribute"`
	ObjectReference jlist `json:"ObjectReference"`
}

type rawTag struct {
	Name  jstr  `json:"name"`
	Local jbool `json:"local"`
	Tag   jraw  `json:"Tag"` // EventTag / AttributeTag wrap the tag
}

type rawReport struct {
	Name    jstr  `json:"name"`
	Content jstr  `json:"content"`
	Deleted jbool `json:"deleted"`
}

// jorg is an Orgc object; old /events/index output also has a lower-case
// "orgc" string, which encoding/json matches to the same field.
type jorg struct {
	name string
	raw  []byte // the object as sent, for the pass-through
}

func (j *jorg) UnmarshalJSON(b []byte) error {
	var o struct {
		Name jstr `json:"name"`
	}
	switch b[0] {
	case '{':
		j.raw = b
		if err := json.Unmarshal(b, &o); err == nil && o.Name.s != "" {
			j.name = strings.TrimSpace(o.Name.s)
		}
	case '"':
		if s := strings.TrimSpace(unquote(b)); s != "" {
			j.name = s
		}
	}
	return nil
}

// Decode maps one MISP document to canonical events. It accepts
// {"Event":{…}}, {"response":[{"Event":{…}},…]} (restSearch), a bare event
// object (/events/index entries, PyMISP) and a JSON array of any of these;
// also the objects-only and attributes-only results of /objects/restSearch
// and /attributes/restSearch, grouped into events by the event they name
// (loose.go).
// Problems that affect part of the input are returned as FieldErrors naming
// the JSON pointer ("/Event/Attribute/3/value") while the rest is still
// mapped; err is only for input that cannot be read at all (then no events).
func Decode(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	return DecodeWith(data, DecodeOptions{})
}

// DecodeWith is Decode with options.
func DecodeWith(data []byte, o DecodeOptions) ([]*gateway.Event, []gateway.FieldError, error) {
	d := &decoder{opts: o}
	// Each branch validates the whole input once, in its json.Unmarshal.
	switch i := skipSpace(data, 0); {
	case i < len(data) && data[i] == '{':
		var r rawEvent
		err := json.Unmarshal(data, &r)
		if _, syntax := errors.AsType[*json.SyntaxError](err); syntax {
			return nil, nil, fmt.Errorf("misp: input is not valid JSON: %w", err)
		}
		d.decoded("", &r, err, true)
	case i < len(data) && data[i] == '[':
		var l jlist
		if err := json.Unmarshal(data, &l); err != nil {
			return nil, nil, fmt.Errorf("misp: input is not valid JSON: %w", err)
		}
		for n, el := range l.elems[:min(len(l.elems), maxEvents+1)] {
			d.container("/"+strconv.Itoa(n), el, true)
		}
		d.tooManyEvents(l.total)
	default:
		var probe jraw
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, nil, fmt.Errorf("misp: input is not valid JSON: %w", err)
		}
		if probe.b == nil {
			return nil, nil, errors.New("misp: input is null, not a MISP event")
		}
		return nil, nil, errors.New("misp: input is not a MISP event: expected a JSON object or array")
	}
	d.flushLoose()
	errs := d.fieldErrors()
	if len(d.events) == 0 && d.notEvents > 0 {
		return nil, errs, fmt.Errorf("misp: no MISP event found: %s", errs[0].Error())
	}
	return d.events, errs, nil
}

// decoder holds the state of one Decode call.
type decoder struct {
	opts        DecodeOptions
	events      []*gateway.Event
	errs        []gateway.FieldError
	moreErrs    int // problems beyond maxFieldErrors
	notEvents   int // containers that held no event
	docAttrs    int // attributes mapped so far in the document
	eventsSeen  int
	eventsLimit bool
	looseSet    *looseSet // objects and attributes without their event (loose.go)
}

func (d *decoder) errorf(field, format string, args ...any) {
	if len(d.errs) >= maxFieldErrors {
		d.moreErrs++
		return
	}
	d.errs = append(d.errs, gateway.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) fieldErrors() []gateway.FieldError {
	if d.moreErrs > 0 {
		d.errs = append(d.errs, gateway.FieldError{Message: fmt.Sprintf("%d more problems were found but not listed (limit %d)", d.moreErrs, maxFieldErrors)})
	}
	return d.errs
}

func (d *decoder) tooManyEvents(total int) {
	if total > maxEvents && !d.eventsLimit {
		d.eventsLimit = true
		d.errorf("", "the document holds %d events; only the first %d were read", total, maxEvents)
	}
}

// container reads {"Event":…}, {"response":[…]} or a bare event at ptr.
// A response nested in a response is not followed.
func (d *decoder) container(ptr string, b []byte, allowResponse bool) {
	if b[0] != '{' {
		d.notEvents++
		d.errorf(ptr, "expected a MISP event object, got %s", jsonKind(b))
		return
	}
	var r rawEvent
	err := json.Unmarshal(b, &r)
	d.decoded(ptr, &r, err, allowResponse)
}

// decoded dispatches an object decoded into r; err is what json.Unmarshal
// said about it. The lenient field types fail on nothing, so the only
// error left is an Event that is not an object.
func (d *decoder) decoded(ptr string, r *rawEvent, err error, allowResponse bool) {
	if err != nil {
		te, ok := errors.AsType[*json.UnmarshalTypeError](err)
		switch {
		case ok && te.Field == "Event":
			d.notEvents++
			d.errorf(ptr+"/Event", "Event must be an object, got %s", te.Value)
			return
		case ok && strings.HasPrefix(te.Field, "Event."):
			// An "Event" key inside the event: never read, so harmless.
		default:
			d.notEvents++
			d.errorf(ptr, "unreadable: %v", err)
			return
		}
	}
	switch {
	case r.Event != nil:
		d.event(ptr+"/Event", r.Event)
	case r.Response.b != nil && allowResponse:
		rb := r.Response.b
		switch rb[0] {
		case '[':
			elems, total := splitArray(rb, maxEvents+1)
			for i, el := range elems {
				d.container(ptr+"/response/"+strconv.Itoa(i), el, false)
			}
			d.tooManyEvents(total)
		case '{':
			var ar struct {
				Attribute jraw `json:"Attribute"`
			}
			if json.Unmarshal(rb, &ar) == nil && ar.Attribute.b != nil {
				d.looseAttributes(ptr+"/response/Attribute", ar.Attribute.b)
				return
			}
			d.container(ptr+"/response", rb, false)
		default:
			d.notEvents++
			d.errorf(ptr+"/response", "response must be an array of events, got %s", jsonKind(rb))
		}
	case r.isEvent():
		d.event(ptr, r)
	case r.Object.obj != nil:
		// One entry of an /objects/restSearch result.
		d.loose(ptr+"/Object", r.Object.obj, true)
	default:
		d.notEvents++
		d.errorf(ptr, `not a MISP event: expected {"Event":{…}}, {"response":[…]} or an event object with info, uuid or Attribute`)
	}
}

func jsonKind(b []byte) string {
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
