package misp

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// eventFilter holds the event-level filters /events/index, restSearch and
// the feed share; all of them are checked against meta, without loading
// events.
type eventFilter struct {
	tags      tagFilter
	orgs      valueFilter
	uuids     valueFilter // event uuid or numeric id (eventid, uuid)
	info      valueFilter
	threat    valueFilter
	distrib   valueFilter // Event.distribution
	analysis  valueFilter
	ts        timeRange // Event.timestamp
	published timeRange // Event.publish_timestamp (last, publish_timestamp)
	dateFrom  string    // Event.date, YYYY-MM-DD
	dateTo    string
	// unpublished is set when the caller asks for published: 0 — Schakel
	// serves only published events, so nothing matches. hasProposal 1
	// matches nothing either: no proposals are ever held here.
	unpublished bool
	// attribute and all (the index only) need the events loaded: the
	// events holding a matching value, and those matching anywhere.
	attribute valueFilter
	all       valueFilter
}

// deep reports whether the filter needs the events themselves.
func (f *eventFilter) deep() bool { return !f.attribute.empty() || !f.all.empty() }

// matchDeep checks attribute and all against one served part.
func (f *eventFilter) matchDeep(e *mispmap.Event) bool {
	attrs := func(fn func(a *mispmap.Attribute) bool) bool {
		for i := range e.Attribute {
			if fn(&e.Attribute[i]) {
				return true
			}
		}
		for _, o := range e.Object {
			for i := range o.Attribute {
				if fn(&o.Attribute[i]) {
					return true
				}
			}
		}
		return false
	}
	if !f.attribute.empty() && !attrs(func(a *mispmap.Attribute) bool { return f.attribute.match(a.Value) }) {
		return false
	}
	if f.all.empty() {
		return true
	}
	if f.all.match(e.Info) || f.all.match(eventTagNames(e)...) {
		return true
	}
	return attrs(func(a *mispmap.Attribute) bool { return f.all.match(a.Value, a.Comment) })
}

// eventFilterFrom reads the event filters; tagKeys names the keys that hold
// tag filters (tag and tags for the index, tags for restSearch).
func eventFilterFrom(p params, now time.Time, tagKeys ...string) (*eventFilter, error) {
	f := &eventFilter{}
	var err error
	if f.tags, err = p.tagFilter(tagKeys...); err != nil {
		return nil, badRequest{err}
	}
	for _, k := range []struct {
		key string
		dst *valueFilter
	}{{"org", &f.orgs}, {"eventid", &f.uuids}, {"uuid", &f.uuids}, {"event_uuid", &f.uuids},
		{"eventinfo", &f.info}, {"info", &f.info}, {"threatlevel", &f.threat}, {"threat_level_id", &f.threat},
		{"distribution", &f.distrib}, {"analysis", &f.analysis}} {
		add, err := p.valueFilter(k.key)
		if err != nil {
			return nil, badRequest{err}
		}
		k.dst.add(add)
	}
	for _, k := range []struct {
		key string
		dst *timeRange
	}{{"timestamp", &f.ts}, {"event_timestamp", &f.ts}, {"publish_timestamp", &f.published}, {"last", &f.published}} {
		r, err := p.timeRange(k.key, now)
		if err != nil {
			return nil, badRequest{err}
		}
		if !r.open() {
			*k.dst = narrow(*k.dst, r)
		}
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{"datefrom", &f.dateFrom}, {"from", &f.dateFrom}, {"date_from", &f.dateFrom},
		{"dateuntil", &f.dateTo}, {"to", &f.dateTo}, {"date_to", &f.dateTo}} {
		vals, err := p.strings(k.key)
		if err != nil {
			return nil, badRequest{err}
		}
		if len(vals) > 0 {
			// A date, an epoch or a window such as 7d: MISP turns the
			// latter two into the date they fall on.
			t, err := parseTime(vals[0], now)
			if err != nil {
				return nil, badRequest{fmt.Errorf("%s: %w", k.key, err)}
			}
			*k.dst = time.Unix(t, 0).UTC().Format("2006-01-02")
		}
	}
	unpub, pub, _, err := p.flags("published")
	if err != nil {
		return nil, badRequest{err}
	}
	f.unpublished = unpub && !pub
	if v, _, err := p.bool("hasproposal"); err != nil {
		return nil, badRequest{err}
	} else if v {
		f.unpublished = true
	}
	return f, nil
}

func narrow(a, b timeRange) timeRange {
	if b.from > a.from {
		a.from = b.from
	}
	if b.to != 0 && (a.to == 0 || b.to < a.to) {
		a.to = b.to
	}
	return a
}

// matchEvent checks what meta can answer for the event as a whole.
func (f *eventFilter) matchEvent(m *meta, org Org) bool {
	if f.unpublished {
		return false
	}
	if !f.ts.contains(m.TS) || !f.published.contains(m.TS) {
		return false
	}
	if (f.dateFrom != "" && m.Date < f.dateFrom) || (f.dateTo != "" && m.Date > f.dateTo) {
		return false
	}
	if !f.tags.empty() && !f.tags.match(m.tagNames()) {
		return false
	}
	if c := m.creator(org); !f.orgs.empty() && !f.orgs.match(c.Name, c.UUID, c.ID) {
		return false
	}
	if !f.info.empty() && !f.info.match(m.Info) {
		return false
	}
	if !f.threat.empty() && !f.threat.match(m.Threat) {
		return false
	}
	if !f.distrib.empty() && !f.distrib.match(m.Distribution) {
		return false
	}
	if !f.analysis.empty() && !f.analysis.match(m.Analysis) {
		return false
	}
	return true
}

// matchPart checks the filters on a part's own identity.
func (f *eventFilter) matchPart(u string) bool {
	return f.uuids.empty() || f.uuids.match(u, numID(u))
}

// listed is one MISP event a viewer may see: an event or one of its parts.
// The uuid, numeric id and timestamp are copied in, so writing a listing of
// 100,000 events reads one contiguous slice instead of chasing pointers.
type listed struct {
	id    string // canonical id
	m     *meta
	u     [16]byte // the event's or part's uuid
	num   uint64   // its numeric id
	ts    int64
	part  int // 1-based
	parts int
	count int // attributes in this part
}

func newListed(id string, m *meta, part, parts, count int) listed {
	l := listed{id: id, m: m, ts: m.TS, part: part, parts: parts, count: count}
	if part == 1 && m.hot {
		l.u, l.num = m.u, m.num
		return l
	}
	u := partUUID(m.UUID, part)
	l.u, _ = uuid.Parse(u)
	l.num = numIDValue(u)
	return l
}

func (l listed) uuid() string { return gateway.FormatUUID(l.u) }

// maxListed bounds one listing; a view larger than this is served in
// pages (limit/page).
const maxListed = 2_000_000

// list returns what who may see and f selects, oldest first. Attribute
// counts of notifications come from the viewer's own projection (computed
// only when counts are needed or the event may need parts).
func (s *Server) list(ctx context.Context, who views.Viewer, f *eventFilter, counts bool) ([]listed, error) {
	var entries []views.Entry
	cursor := ""
	for {
		page, next, err := s.o.Views.List(ctx, who, views.Query{From: cursor, Limit: 100000})
		if err != nil {
			return nil, err
		}
		entries = append(entries, page...)
		if next == "" || len(entries) >= maxListed {
			break
		}
		cursor = next
	}
	ms, err := s.metas.get(ctx, entries)
	if err != nil {
		return nil, err
	}
	out := make([]listed, 0, len(entries))
	for i, e := range entries {
		m := ms[i]
		if m == nil || m.Skip != "" || !f.matchEvent(m, s.o.Org) {
			continue
		}
		parts := m.Parts
		if m.Notification && (counts || m.total() > PartSize) {
			parts, err = s.projectedParts(ctx, who, e.ID, m)
			if errors.Is(err, gateway.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		if len(parts) == 0 {
			parts = []int{0}
		}
		for k, n := range parts {
			l := newListed(e.ID, m, k+1, len(parts), n)
			if f.uuids.empty() || f.matchPart(l.uuid()) {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// projectedParts cuts the viewer's projection of a notification.
func (s *Server) projectedParts(ctx context.Context, who views.Viewer, id string, m *meta) ([]int, error) {
	ev, err := s.o.Views.Event(ctx, who, id)
	if err != nil {
		return nil, err
	}
	e, err := mispmap.EncodeEvent(ev, s.enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", gateway.ErrNotFound, err)
	}
	parts := sizes(plan(e, PartSize))
	if err := s.metas.ensureParts(ctx, id, m, len(parts)); err != nil {
		return nil, err
	}
	return parts, nil
}

// page applies MISP's limit and page (1-based; page without limit is
// ignored, as MISP does).
func page[T any](rows []T, limit, pg int) []T {
	if limit <= 0 {
		return rows
	}
	if pg < 1 {
		pg = 1
	}
	start := (pg - 1) * limit
	if start >= len(rows) || start < 0 {
		return rows[:0]
	}
	return rows[start:min(start+limit, len(rows))]
}

// etagOf names a listing by the uuids and timestamps it holds (and the
// form it is written in), so a listing that did not change answers 304. A
// MISP event changes only with a newer timestamp, so nothing else counts.
func etagOf(form string, rows []listed) string {
	h := sha1.New()
	h.Write([]byte(form + "\n"))
	var buf []byte
	for _, r := range rows {
		buf = gateway.AppendUUID(buf[:0], r.u)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, r.ts, 10)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

// notModified reports whether If-None-Match names etag (or is "*").
func notModified(c *fiber.Ctx, etag string) bool {
	inm := c.Get(fiber.HeaderIfNoneMatch)
	if inm == "" {
		return false
	}
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// index is POST /events/index: the minimal form MISP's pull uses
// ({"minimal":1}) and the full form PyMISP's search_index reads.
func (s *Server) index(c *fiber.Ctx) error {
	p, err := s.requestParams(c)
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	if err := checkFilters(p, "index"); err != nil {
		return s.reply(c, err)
	}
	f, err := eventFilterFrom(p, s.o.Now(), "tag", "tags")
	if err != nil {
		return s.reply(c, err)
	}
	// The index matches eventinfo and attribute as substrings.
	f.info = f.info.contains()
	for _, k := range []struct {
		key string
		dst *valueFilter
	}{{"attribute", &f.attribute}, {"all", &f.all}} {
		v, err := p.valueFilter(k.key)
		if err != nil {
			return s.reply(c, badRequest{err})
		}
		*k.dst = v.contains()
	}
	minimal, _, err := p.bool("minimal")
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	limit, err := p.int("limit")
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	pg, err := p.int("page")
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	who, _ := viewerOf(c)
	rows, err := s.list(c.UserContext(), who, f, !minimal)
	if err != nil {
		return s.reply(c, err)
	}
	if f.deep() {
		if rows, err = s.deepFilter(c.UserContext(), who, rows, f); err != nil {
			return s.reply(c, err)
		}
	}
	rows = page(rows, limit, pg)
	form := "full"
	if minimal {
		form = "minimal"
	}
	etag := etagOf("index:"+form, rows)
	c.Set(fiber.HeaderETag, etag)
	c.Set("X-Result-Count", strconv.Itoa(len(rows)))
	if notModified(c, etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	org := s.o.Org
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		if minimal {
			writeMinimalIndex(w, rows, org)
		} else if err := writeFullIndex(w, rows, org); err != nil {
			s.o.Log.Warn("misp index stream failed", "error", err)
		}
		_ = w.Flush()
	})
	return nil
}

// writeMinimalIndex writes the entries MISP's pull reads. Every value is
// digits, hex or a uuid, so the JSON is written by hand for speed.
func writeMinimalIndex(w *bufio.Writer, rows []listed, org Org) {
	orgUUID := strings.ToLower(org.UUID)
	w.WriteByte('[')
	var buf []byte
	for i, r := range rows {
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":"`...)
		buf = strconv.AppendUint(buf, r.num, 10)
		buf = append(buf, `","timestamp":"`...)
		buf = strconv.AppendInt(buf, r.ts, 10)
		buf = append(buf, `","sighting_timestamp":"0","published":true,"uuid":"`...)
		buf = gateway.AppendUUID(buf, r.u)
		buf = append(buf, `","orgc_uuid":"`...)
		if r.m.OrgcName != "" {
			buf = append(buf, r.m.OrgcUUID...)
		} else {
			buf = append(buf, orgUUID...)
		}
		buf = append(buf, `"}`...)
		w.Write(buf)
	}
	w.WriteByte(']')
}

type orgRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type tagRef struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Colour     string `json:"colour"`
	Exportable bool   `json:"exportable"`
	HideTag    bool   `json:"hide_tag"`
}

type eventTagRef struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	TagID   string `json:"tag_id"`
	Local   bool   `json:"local"`
	Tag     tagRef `json:"Tag"`
}

// indexRow is one event of the full /events/index form (no attributes).
type indexRow struct {
	ID                 string        `json:"id"`
	OrgID              string        `json:"org_id"`
	Date               string        `json:"date"`
	Info               string        `json:"info"`
	UUID               string        `json:"uuid"`
	Published          bool          `json:"published"`
	Analysis           string        `json:"analysis"`
	AttributeCount     string        `json:"attribute_count"`
	OrgcID             string        `json:"orgc_id"`
	Timestamp          string        `json:"timestamp"`
	Distribution       string        `json:"distribution"`
	SharingGroupID     string        `json:"sharing_group_id"`
	ProposalEmailLock  bool          `json:"proposal_email_lock"`
	Locked             bool          `json:"locked"`
	ThreatLevelID      string        `json:"threat_level_id"`
	PublishTimestamp   string        `json:"publish_timestamp"`
	SightingTimestamp  string        `json:"sighting_timestamp"`
	DisableCorrelation bool          `json:"disable_correlation"`
	ExtendsUUID        string        `json:"extends_uuid"`
	Protected          *bool         `json:"protected"`
	Org                orgRef        `json:"Org"`
	Orgc               orgRef        `json:"Orgc"`
	EventTag           []eventTagRef `json:"EventTag"`
	SharingGroup       struct {
		ID   *string `json:"id"`
		Name *string `json:"name"`
	} `json:"SharingGroup"`
}

func writeFullIndex(w *bufio.Writer, rows []listed, org Org) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	o := orgRef{ID: "1", Name: org.Name, UUID: strings.ToLower(org.UUID)}
	w.WriteByte('[')
	for i, r := range rows {
		if i > 0 {
			w.WriteByte(',')
		}
		u := r.uuid()
		num := strconv.FormatUint(r.num, 10)
		ts := strconv.FormatInt(r.ts, 10)
		row := indexRow{
			ID: num, OrgID: o.ID, OrgcID: r.m.creator(org).ID, Date: r.m.Date, Info: partInfo(r.m.Info, r.part, r.parts), UUID: u,
			Published: true, Analysis: r.m.Analysis, AttributeCount: strconv.Itoa(r.count), Timestamp: ts,
			Distribution: r.m.Distribution, SharingGroupID: "0", Locked: true, ThreatLevelID: r.m.Threat,
			PublishTimestamp: ts, SightingTimestamp: "0", Org: o, Orgc: r.m.creator(org), EventTag: eventTags(r.m.Tags, num),
		}
		if r.part > 1 {
			row.ExtendsUUID = r.m.UUID
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	w.WriteByte(']')
	return nil
}

func eventTags(tags []mispmap.Tag, eventNum string) []eventTagRef {
	out := make([]eventTagRef, len(tags))
	for i, t := range tags {
		tid := numID("tag:" + t.Name)
		out[i] = eventTagRef{ID: numID(eventNum + ":" + tid), EventID: eventNum, TagID: tid, Local: false,
			Tag: tagRef{ID: tid, Name: t.Name, Colour: t.Colour, Exportable: true}}
	}
	return out
}
