package misp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// searchFilter is a restSearch request: the event filters plus those on
// attributes. Schakel's attributes carry their event's timestamp, are never
// deleted and always published, so timestamp filters apply to both.
type searchFilter struct {
	event      *eventFilter
	attrTags   tagFilter // attributes: attribute tags and inherited event tags
	values     valueFilter
	types      valueFilter
	categories valueFilter
	relations  valueFilter
	toIDs      *bool
	onlyDel    bool // deleted: 1 — nothing here is deleted
	limit, pg  int
	metadata   bool
	eventTags  bool // includeEventTags
	eventUUID  bool // includeEventUuid
	context    bool // includeContext
	headerless bool // csv without its header line
	format     string
}

func (f *searchFilter) attributeFilters() bool {
	return !f.values.empty() || !f.types.empty() || !f.categories.empty() || !f.relations.empty() || f.toIDs != nil
}

// searchFilterFrom reads a restSearch body. returnFormat json, csv and
// text are served (the path's /<fmt> too); any other is refused with a
// MISP error naming it.
func searchFilterFrom(p params, now time.Time, attributes bool) (*searchFilter, error) {
	format := "json"
	if vals, err := p.strings("returnFormat"); err != nil {
		return nil, badRequest{err}
	} else if len(vals) > 0 {
		format = strings.ToLower(vals[0])
	}
	if err := checkFormat(format, returnFormats...); err != nil {
		return nil, err
	}
	tagKeys := []string{"tags", "tag"}
	if attributes {
		// Attribute searches match tags per attribute (own or inherited).
		tagKeys = nil
	}
	ef, err := eventFilterFrom(p, now, tagKeys...)
	if err != nil {
		return nil, err
	}
	// Attributes carry the event timestamp; attribute_timestamp narrows it.
	at, err := p.timeRange("attribute_timestamp", now)
	if err != nil {
		return nil, badRequest{err}
	}
	if !at.open() {
		ef.ts = narrow(ef.ts, at)
	}
	f := &searchFilter{event: ef, format: format}
	if attributes {
		if f.attrTags, err = p.tagFilter("tags", "tag"); err != nil {
			return nil, badRequest{err}
		}
	}
	for _, k := range []struct {
		key string
		dst *valueFilter
	}{{"value", &f.values}, {"type", &f.types}, {"category", &f.categories}, {"object_relation", &f.relations}} {
		if *k.dst, err = p.valueFilter(k.key); err != nil {
			return nil, badRequest{err}
		}
	}
	if v, present, err := p.bool("to_ids"); err != nil {
		return nil, badRequest{err}
	} else if present {
		f.toIDs = &v
	}
	if live, del, _, err := p.flags("deleted"); err != nil {
		return nil, badRequest{err}
	} else if del && !live {
		f.onlyDel = true
	}
	if f.limit, err = p.int("limit"); err != nil {
		return nil, badRequest{err}
	}
	if f.pg, err = p.int("page"); err != nil {
		return nil, badRequest{err}
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"metadata", &f.metadata}, {"includeEventTags", &f.eventTags}, {"includeEventUuid", &f.eventUUID},
		{"includeContext", &f.context}, {"headerless", &f.headerless}} {
		if *b.dst, _, err = p.bool(b.key); err != nil {
			return nil, badRequest{err}
		}
	}
	return f, nil
}

func (f *searchFilter) matchAttr(a *mispmap.Attribute, eventTags []string) bool {
	if f.onlyDel {
		return false
	}
	if f.toIDs != nil && a.ToIDs != *f.toIDs {
		return false
	}
	if !f.types.empty() && !f.types.match(a.Type) {
		return false
	}
	if !f.categories.empty() && !f.categories.match(a.Category) {
		return false
	}
	if !f.relations.empty() && !f.relations.match(a.ObjectRelation) {
		return false
	}
	if !f.values.empty() {
		vals := []string{a.Value}
		if strings.Contains(a.Type, "|") {
			vals = append(vals, strings.SplitN(a.Value, "|", 2)...)
		}
		if !f.values.match(vals...) {
			return false
		}
	}
	if !f.attrTags.empty() {
		names := append([]string(nil), eventTags...)
		for _, t := range a.Tag {
			names = append(names, t.Name)
		}
		if !f.attrTags.match(names) {
			return false
		}
	}
	return true
}

// loaded is one event of a listing, encoded for the viewer.
type loaded struct {
	id  string
	x   encodedEvent
	err error
}

// prefetch loads and encodes the listed events in order, a few ahead of
// the writer, so Redis reads and JSON writing overlap. Only `ahead` events
// are held at a time, whatever the size of the listing.
func (s *Server) prefetch(ctx context.Context, who views.Viewer, rows []listed, ahead int) <-chan chan loaded {
	out := make(chan chan loaded, ahead)
	go func() {
		defer close(out)
		last := ""
		for _, r := range rows {
			if r.id == last {
				continue
			}
			last = r.id
			f := make(chan loaded, 1)
			select {
			case out <- f:
			case <-ctx.Done():
				return
			}
			go func(id string) {
				x, err := s.encodeFor(ctx, who, id)
				f <- loaded{id: id, x: x, err: err}
			}(r.id)
		}
	}()
	return out
}

// eachPart calls fn for every listed part in order with its encoded event;
// events no longer visible are skipped. fn returns false to stop.
func (s *Server) eachPart(ctx context.Context, who views.Viewer, rows []listed, fn func(r listed, p *mispmap.Event) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	futures := s.prefetch(ctx, who, rows, 4)
	i := 0
	for f := range futures {
		l := <-f
		first := i
		for i < len(rows) && rows[i].id == l.id {
			i++
		}
		if errors.Is(l.err, gateway.ErrNotFound) {
			continue
		}
		if l.err != nil {
			return l.err
		}
		for _, r := range rows[first:i] {
			if r.part > len(l.x.cuts) {
				continue
			}
			more, err := fn(r, l.x.part(r.part))
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// streamCtx is the context a streamed body is written under: the request
// is over by then, so it is detached, with a bound.
func streamCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.UserContext()), 30*time.Minute)
}

// searchEvents is POST /events/restSearch (json): {"response":[{"Event"…}]}.
// limit and page count events (parts of large events count one each).
func (s *Server) searchEvents(c *fiber.Ctx) error {
	p, err := s.searchParams(c, "events")
	if err != nil {
		return s.reply(c, err)
	}
	f, err := searchFilterFrom(p, s.o.Now(), false)
	if err != nil {
		return s.reply(c, err)
	}
	who, _ := viewerOf(c)
	rows, err := s.list(c.UserContext(), who, f.event, false)
	if err != nil {
		return s.reply(c, err)
	}
	if !f.attributeFilters() && !f.onlyDel {
		rows = page(rows, f.limit, f.pg)
	}
	ctx, cancel := streamCtx(c)
	if f.format != "json" {
		// csv and text list the attributes of the matching events, as
		// MISP's exports do; limit and page counted events above.
		if !f.attributeFilters() && !f.onlyDel {
			f.limit = 0
		}
		return s.streamAttributes(c, ctx, cancel, who, rows, f)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		if err := s.writeEvents(ctx, w, who, rows, f); err != nil {
			s.o.Log.Warn("misp events restSearch stream failed", "error", err)
		}
		_ = w.Flush()
	})
	return nil
}

func (s *Server) writeEvents(ctx context.Context, w *bufio.Writer, who views.Viewer, rows []listed, f *searchFilter) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	w.WriteString(`{"response":[`)
	skip, left := 0, -1
	if f.attributeFilters() || f.onlyDel {
		// Paging counts events that still match after attribute filtering.
		if f.limit > 0 {
			skip, left = max(f.pg-1, 0)*f.limit, f.limit
		}
	}
	n := 0
	err := s.eachPart(ctx, who, rows, func(r listed, e *mispmap.Event) (bool, error) {
		if f.attributeFilters() || f.onlyDel {
			e = filterEvent(e, f)
			if e == nil {
				return true, nil
			}
		}
		if skip > 0 {
			skip--
			return true, nil
		}
		if f.metadata {
			e.Attribute, e.Object = []mispmap.Attribute{}, []mispmap.Object{}
		}
		if n > 0 {
			w.WriteByte(',')
		}
		n++
		w.WriteString(`{"Event":`)
		if err := enc.Encode(served(e, true)); err != nil {
			return false, err
		}
		w.WriteByte('}')
		if left > 0 {
			left--
			return left > 0, nil
		}
		return true, nil
	})
	w.WriteString(`]}`)
	return err
}

// filterEvent keeps the attributes (and objects with any) that match; nil
// when none does.
func filterEvent(e *mispmap.Event, f *searchFilter) *mispmap.Event {
	tags := eventTagNames(e)
	out := *e
	out.Attribute = nil
	out.Object = nil
	n := 0
	for i := range e.Attribute {
		if f.matchAttr(&e.Attribute[i], tags) {
			out.Attribute = append(out.Attribute, e.Attribute[i])
			n++
		}
	}
	for _, o := range e.Object {
		var keep []mispmap.Attribute
		for i := range o.Attribute {
			if f.matchAttr(&o.Attribute[i], tags) {
				keep = append(keep, o.Attribute[i])
			}
		}
		if len(keep) > 0 {
			o.Attribute = keep
			out.Object = append(out.Object, o)
			n += len(keep)
		}
	}
	if n == 0 {
		return nil
	}
	if out.Attribute == nil {
		out.Attribute = []mispmap.Attribute{}
	}
	if out.Object == nil {
		out.Object = []mispmap.Object{}
	}
	out.AttributeCount = strconv.Itoa(n)
	return &out
}

func eventTagNames(e *mispmap.Event) []string {
	out := make([]string, len(e.Tag))
	for i, t := range e.Tag {
		out[i] = t.Name
	}
	return out
}

// searchAttributes is POST /attributes/restSearch (json):
// {"response":{"Attribute":[…]}}. limit and page count attributes. The
// body is written as it is produced: a quarter of a million attributes
// never sit in memory at once.
func (s *Server) searchAttributes(c *fiber.Ctx) error {
	p, err := s.searchParams(c, "attributes")
	if err != nil {
		return s.reply(c, err)
	}
	f, err := searchFilterFrom(p, s.o.Now(), true)
	if err != nil {
		return s.reply(c, err)
	}
	who, _ := viewerOf(c)
	rows, err := s.list(c.UserContext(), who, f.event, false)
	if err != nil {
		return s.reply(c, err)
	}
	ctx, cancel := streamCtx(c)
	return s.streamAttributes(c, ctx, cancel, who, rows, f)
}

// searchParams reads a restSearch request: the filters, checked against
// the endpoint's table, with a returnFormat named in the path
// (/attributes/restSearch/csv) when the body names none.
func (s *Server) searchParams(c *fiber.Ctx, endpoint string) (params, error) {
	p, err := s.requestParams(c)
	if err != nil {
		return nil, badRequest{err}
	}
	if arg, _ := splitPath(c.Params("*")); arg != "" && !p.has("returnFormat") {
		p["returnFormat"], _ = json.Marshal(arg)
	}
	if err := checkFilters(p, endpoint); err != nil {
		return nil, err
	}
	return p, nil
}

// streamAttributes writes the attributes of rows in f's format.
func (s *Server) streamAttributes(c *fiber.Ctx, ctx context.Context, cancel context.CancelFunc, who views.Viewer, rows []listed, f *searchFilter) error {
	switch f.format {
	case "csv":
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	case "text":
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	default:
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	}
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		if err := s.writeAttributes(ctx, w, who, rows, f); err != nil {
			s.o.Log.Warn("misp attributes restSearch stream failed", "error", err)
		}
		_ = w.Flush()
	})
	return nil
}

func (s *Server) writeAttributes(ctx context.Context, w *bufio.Writer, who views.Viewer, rows []listed, f *searchFilter) error {
	switch f.format {
	case "json":
		w.WriteString(`{"response":{"Attribute":[`)
	case "csv":
		if !f.headerless {
			w.WriteString(csvHeader)
			if f.context {
				w.WriteString(csvContextHeader)
			}
			w.WriteByte('\n')
		}
	}
	skip, left := 0, -1
	if f.limit > 0 {
		skip, left = max(f.pg-1, 0)*f.limit, f.limit
	}
	n := 0
	var buf []byte
	var werr error // the client went away: stop reading events
	err := s.eachPart(ctx, who, rows, func(r listed, e *mispmap.Event) (bool, error) {
		evTags := eventTagNames(e)
		num := numID(e.UUID)
		var summary []byte
		if f.context {
			summary = appendEventContext(nil, e, num)
		} else {
			summary = appendEventSummary(nil, e, num)
		}
		var inherited []mispmap.Tag
		if f.eventTags {
			inherited = e.Tag
		}
		eventUUID := ""
		if f.eventUUID {
			eventUUID = e.UUID
		}
		emit := func(a *mispmap.Attribute, o *mispmap.Object, objectID string) bool {
			if !f.matchAttr(a, evTags) {
				return true
			}
			if skip > 0 {
				skip--
				return true
			}
			buf = buf[:0]
			switch f.format {
			case "json":
				if n > 0 {
					buf = append(buf, ',')
				}
				buf = appendAttribute(buf, a, num, objectID, summary, eventUUID, inherited)
			case "csv":
				buf = appendCSVRow(buf, a, num, o, e, f.context)
			default:
				buf = append(append(buf, a.Value...), '\n')
			}
			n++
			if _, werr = w.Write(buf); werr != nil {
				return false
			}
			if left > 0 {
				left--
				return left > 0
			}
			return true
		}
		for i := range e.Attribute {
			if !emit(&e.Attribute[i], nil, "0") {
				return false, werr
			}
		}
		for j := range e.Object {
			o := &e.Object[j]
			oid := numID(o.UUID)
			for i := range o.Attribute {
				if !emit(&o.Attribute[i], o, oid) {
					return false, werr
				}
			}
		}
		return true, ctx.Err()
	})
	if f.format == "json" {
		w.WriteString(`]}}`)
	}
	return err
}
