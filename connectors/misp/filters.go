package misp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// support is how Schakel answers a filter MISP knows on one endpoint.
type support uint8

const (
	fUnknown  support = iota // not a filter of this endpoint: ignored, as MISP does
	fServed                  // honoured as MISP matches it
	fAccepted                // accepted: nothing Schakel serves differs under it
	fRefused                 // 400 naming it when set to anything but its default
)

// knownFilter is one row of the filter table; README's MISP section
// carries the same table.
type knownFilter struct {
	key                                string
	index, events, attributes, objects support
}

// knownFilters lists the filters of /events/index and the restSearch
// endpoints. Refused filters are those Schakel cannot honour; answering
// them as if they matched would hand the caller a wrong result. Defaults
// PyMISP always sends (0, false, empty) are not refusals.
var knownFilters = []knownFilter{
	{"minimal", fServed, fUnknown, fUnknown, fUnknown},
	{"published", fServed, fServed, fServed, fServed},
	{"deleted", fAccepted, fServed, fServed, fServed},
	{"tag", fServed, fServed, fServed, fServed},
	{"tags", fServed, fServed, fServed, fServed},
	{"org", fServed, fServed, fServed, fServed},
	{"eventid", fServed, fServed, fServed, fServed},
	{"uuid", fServed, fServed, fServed, fServed},
	{"event_uuid", fUnknown, fServed, fServed, fServed},
	{"eventinfo", fServed, fServed, fServed, fServed},
	{"threatlevel", fServed, fUnknown, fUnknown, fUnknown},
	{"threat_level_id", fUnknown, fServed, fServed, fServed},
	{"distribution", fServed, fServed, fServed, fServed},
	{"analysis", fServed, fServed, fServed, fServed},
	{"datefrom", fServed, fUnknown, fUnknown, fUnknown},
	{"dateuntil", fServed, fUnknown, fUnknown, fUnknown},
	{"date_from", fServed, fServed, fServed, fServed},
	{"date_to", fServed, fServed, fServed, fServed},
	{"from", fUnknown, fServed, fServed, fServed},
	{"to", fUnknown, fServed, fServed, fServed},
	{"timestamp", fServed, fServed, fServed, fServed},
	{"publish_timestamp", fServed, fServed, fServed, fServed},
	{"last", fUnknown, fServed, fServed, fServed},
	{"event_timestamp", fUnknown, fServed, fServed, fServed},
	{"attribute_timestamp", fUnknown, fServed, fServed, fServed},
	{"attribute", fServed, fUnknown, fUnknown, fUnknown},
	{"all", fServed, fUnknown, fUnknown, fUnknown},
	{"hasproposal", fServed, fUnknown, fUnknown, fUnknown},
	{"limit", fServed, fServed, fServed, fServed},
	{"page", fServed, fServed, fServed, fServed},
	{"returnFormat", fUnknown, fServed, fServed, fServed},
	{"value", fUnknown, fServed, fServed, fServed},
	{"type", fUnknown, fServed, fServed, fServed},
	{"category", fUnknown, fServed, fServed, fServed},
	{"object_relation", fUnknown, fServed, fServed, fServed},
	{"object_name", fUnknown, fRefused, fRefused, fServed},
	{"to_ids", fUnknown, fServed, fServed, fServed},
	{"metadata", fUnknown, fServed, fAccepted, fAccepted},
	{"includeEventTags", fUnknown, fAccepted, fServed, fAccepted},
	{"includeEventUuid", fUnknown, fAccepted, fServed, fAccepted},
	{"includeContext", fUnknown, fAccepted, fServed, fAccepted},
	{"headerless", fUnknown, fServed, fServed, fUnknown},
	{"withAttachments", fUnknown, fAccepted, fAccepted, fAccepted},
	{"sgReferenceOnly", fUnknown, fAccepted, fAccepted, fAccepted},
	{"excludeLocalTags", fUnknown, fAccepted, fAccepted, fAccepted},
	{"email", fRefused, fUnknown, fUnknown, fUnknown},
	{"sort", fRefused, fUnknown, fUnknown, fUnknown},
	{"sharinggroup", fRefused, fRefused, fRefused, fRefused},
	{"quickFilter", fUnknown, fRefused, fRefused, fRefused},
	{"searchall", fUnknown, fRefused, fRefused, fRefused},
	{"event_tags", fUnknown, fRefused, fRefused, fRefused},
	{"enforceWarninglist", fUnknown, fRefused, fRefused, fRefused},
	{"includeSightings", fUnknown, fRefused, fRefused, fRefused},
	{"includeCorrelations", fUnknown, fRefused, fRefused, fRefused},
	{"includeDecayScore", fUnknown, fRefused, fRefused, fRefused},
	{"excludeDecayed", fUnknown, fRefused, fRefused, fRefused},
	{"decayingModel", fUnknown, fRefused, fRefused, fRefused},
	{"requested_attributes", fUnknown, fRefused, fRefused, fRefused},
	{"first_seen", fUnknown, fRefused, fRefused, fRefused},
	{"last_seen", fUnknown, fRefused, fRefused, fRefused},
}

var endpointPaths = map[string]string{
	"index": "/events/index", "events": "/events/restSearch",
	"attributes": "/attributes/restSearch", "objects": "/objects/restSearch",
}

func (k knownFilter) on(endpoint string) support {
	switch endpoint {
	case "index":
		return k.index
	case "events":
		return k.events
	case "attributes":
		return k.attributes
	case "objects":
		return k.objects
	}
	return fUnknown
}

// checkFilters refuses, naming it, the first filter of p that endpoint
// knows but Schakel cannot honour.
func checkFilters(p params, endpoint string) error {
	for _, k := range knownFilters {
		if k.on(endpoint) == fRefused && isSet(p[k.key]) {
			return badRequest{fmt.Errorf("%s: filter not supported by Schakel on %s", k.key, endpointPaths[endpoint])}
		}
	}
	return nil
}

// isSet reports whether a filter value asks for anything: null, "", 0,
// false and empty lists or objects are the defaults clients send.
func isSet(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	switch string(raw) {
	case "", "null", `""`, "0", `"0"`, "false", `"false"`, "[]", "{}":
		return false
	}
	return true
}

// deepFilter keeps the listed parts whose served content matches the
// filters that need the events themselves (index: attribute, all).
func (s *Server) deepFilter(ctx context.Context, who views.Viewer, rows []listed, f *eventFilter) ([]listed, error) {
	var out []listed
	err := s.eachPart(ctx, who, rows, func(r listed, e *mispmap.Event) (bool, error) {
		if f.matchDeep(e) {
			out = append(out, r)
		}
		return true, ctx.Err()
	})
	return out, err
}

// returnFormats are the restSearch output forms Schakel writes.
var returnFormats = []string{"json", "csv", "text"}

func checkFormat(format string, allowed ...string) error {
	if slices.Contains(allowed, format) {
		return nil
	}
	return badRequest{fmt.Errorf("returnFormat: %q is not served here (use %s)", format, strings.Join(allowed, ", "))}
}

// MISP's default CSV columns, and those includeContext adds.
const (
	csvHeader        = "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,object_uuid,object_name,object_meta-category"
	csvContextHeader = ",event_info,event_member_org,event_source_org,event_distribution,event_threat_level_id,event_analysis,event_date,event_tag,event_timestamp"
)

// appendCSVRow writes one attribute as MISP's CSV export does: every
// field quoted, quotes doubled.
func appendCSVRow(b []byte, a *mispmap.Attribute, eventNum string, o *mispmap.Object, e *mispmap.Event, context bool) []byte {
	toIDs := "0"
	if a.ToIDs {
		toIDs = "1"
	}
	tags := make([]string, len(a.Tag))
	for i, t := range a.Tag {
		tags[i] = t.Name
	}
	var ou, on, om string
	if o != nil {
		ou, on, om = o.UUID, o.Name, o.MetaCategory
	}
	fields := []string{a.UUID, eventNum, a.Category, a.Type, a.Value, a.Comment, toIDs, a.Timestamp,
		a.ObjectRelation, strings.Join(tags, ","), ou, on, om}
	if context {
		fields = append(fields, e.Info, e.Org.Name, e.Orgc.Name, e.Distribution, e.ThreatLevelID, e.Analysis,
			e.Date, strings.Join(eventTagNames(e), ","), e.Timestamp)
	}
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, strings.ReplaceAll(f, `"`, `""`)...)
		b = append(b, '"')
	}
	return append(b, '\n')
}

// appendEventContext is the "Event" an attribute carries under
// includeContext: the event's metadata with its creator org.
func appendEventContext(b []byte, e *mispmap.Event, num string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, num)
	orgcID := "1"
	if e.Orgc != e.Org {
		orgcID = orgNum(e.Orgc.Name, e.Orgc.UUID)
	}
	b = append(b, `,"org_id":"1"`...)
	b = appendField(b, "orgc_id", orgcID)
	b = appendField(b, "uuid", e.UUID)
	b = appendField(b, "info", e.Info)
	b = appendField(b, "date", e.Date)
	b = appendField(b, "threat_level_id", e.ThreatLevelID)
	b = appendField(b, "analysis", e.Analysis)
	b = appendField(b, "distribution", e.Distribution)
	b = appendField(b, "sharing_group_id", "0")
	b = appendField(b, "timestamp", e.Timestamp)
	b = appendField(b, "publish_timestamp", e.PublishTimestamp)
	b = append(b, `,"published":true,"Orgc":{"id":`...)
	b = appendString(b, orgcID)
	b = appendField(b, "name", e.Orgc.Name)
	b = appendField(b, "uuid", e.Orgc.UUID)
	b = append(b, `},"Tag":[`...)
	for i, t := range e.Tag {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTag(b, t, false)
	}
	return append(b, `]}`...)
}

// servedObject is one object of /objects/restSearch.
type servedObject struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	*mispmap.Object
}

// searchObjects is POST /objects/restSearch (json):
// {"response":[{"Object":{…,"Attribute":[…]}}]}: the objects of the
// events in the caller's view. uuid names the object here; the attribute
// filters select objects holding a matching attribute, which come whole.
// limit and page count objects.
func (s *Server) searchObjects(c *fiber.Ctx) error {
	p, err := s.searchParams(c, "objects")
	if err != nil {
		return s.reply(c, err)
	}
	objUUIDs, err := p.valueFilter("uuid")
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	names, err := p.valueFilter("object_name")
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	q := maps.Clone(p)
	delete(q, "uuid")
	f, err := searchFilterFrom(q, s.o.Now(), true)
	if err != nil {
		return s.reply(c, err)
	}
	if err := checkFormat(f.format, "json"); err != nil {
		return s.reply(c, err)
	}
	who, _ := viewerOf(c)
	rows, err := s.list(c.UserContext(), who, f.event, false)
	if err != nil {
		return s.reply(c, err)
	}
	ctx, cancel := streamCtx(c)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		match := func(o *mispmap.Object, evTags []string) bool {
			if f.onlyDel || (!objUUIDs.empty() && !objUUIDs.match(o.UUID, numID(o.UUID))) ||
				(!names.empty() && !names.match(o.Name)) {
				return false
			}
			if !f.attributeFilters() && f.attrTags.empty() {
				return true
			}
			for i := range o.Attribute {
				if f.matchAttr(&o.Attribute[i], evTags) {
					return true
				}
			}
			return false
		}
		if err := s.writeObjects(ctx, w, who, rows, f, match); err != nil {
			s.o.Log.Warn("misp objects restSearch stream failed", "error", err)
		}
		_ = w.Flush()
	})
	return nil
}

func (s *Server) writeObjects(ctx context.Context, w *bufio.Writer, who views.Viewer, rows []listed, f *searchFilter,
	match func(o *mispmap.Object, evTags []string) bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	w.WriteString(`{"response":[`)
	skip, left := 0, -1
	if f.limit > 0 {
		skip, left = max(f.pg-1, 0)*f.limit, f.limit
	}
	n := 0
	err := s.eachPart(ctx, who, rows, func(r listed, e *mispmap.Event) (bool, error) {
		evTags := eventTagNames(e)
		num := numID(e.UUID)
		for i := range e.Object {
			o := &e.Object[i]
			if !match(o, evTags) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if n > 0 {
				w.WriteByte(',')
			}
			n++
			w.WriteString(`{"Object":`)
			if err := enc.Encode(servedObject{ID: numID(o.UUID), EventID: num, Object: o}); err != nil {
				return false, err
			}
			w.WriteByte('}')
			if left > 0 {
				if left--; left == 0 {
					return false, nil
				}
			}
		}
		return true, ctx.Err()
	})
	w.WriteString(`]}`)
	return err
}
