package misp

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
)

// eventState collects what one event's tags, attributes and objects say.
type eventState struct {
	d        *decoder
	ptr      string
	ev       *gateway.Event
	tlp      gateway.TLP // strictest tlp:* tag; "" when none
	floor    gateway.TLP // strictest distribution floor; "" when none
	labels   []string
	labelSet map[string]bool
	vulns    map[string]bool
	critical bool
	kind     gateway.Kind    // from a schakel:kind tag
	sectors  []string        // from schakel:sector tags
	attrs    int             // attribute elements seen (mapped or not)
	unmapped int             // attributes beyond the limits
	ext      extMISP         // the pass-through (passthrough.go)
	seen     map[string]bool // uuids of the event's attributes and objects, kept or not
}

func (d *decoder) event(ptr string, r *rawEvent) {
	d.eventsSeen++
	if d.eventsSeen > maxEvents {
		d.tooManyEvents(d.eventsSeen)
		return
	}
	ev := &gateway.Event{Source: gateway.SourceRef{Format: Format, Org: r.Orgc.name}}
	st := &eventState{d: d, ptr: ptr, ev: ev, labelSet: map[string]bool{}, vulns: map[string]bool{}, seen: map[string]bool{}}
	st.passEvent(r)

	st.identity(r)
	st.times(r)
	if r.Distribution.set || r.Distribution.bad {
		st.distribution(path{ptr, -1}, "/distribution", r.Distribution, false)
	}
	switch {
	case r.ThreatLevelID.bad:
		d.errorf(ptr+"/threat_level_id", "threat_level_id %q is not a number 1..4", r.ThreatLevelID.raw)
	case !r.ThreatLevelID.set:
	case r.ThreatLevelID.n == 1:
		ev.Priority = gateway.PriorityHigh
	case r.ThreatLevelID.n == 2:
		ev.Priority = gateway.PriorityNormal
	case r.ThreatLevelID.n == 3:
		ev.Priority = gateway.PriorityLow
	case r.ThreatLevelID.n == 4: // undefined: the pipeline's default
	default:
		d.errorf(ptr+"/threat_level_id", "threat_level_id %d is not 1 (high), 2 (medium), 3 (low) or 4 (undefined)", r.ThreatLevelID.n)
	}

	st.tags(path{ptr, -1}, "/Tag", r.Tag, nil)
	st.tags(path{ptr, -1}, "/EventTag", r.EventTag, nil)
	st.galaxies(r.Galaxy)
	st.reports(ptr+"/EventReport", r.EventReport)

	st.attributes(ptr+"/Attribute", r.Attribute, nil)
	if r.Object.bad {
		d.errorf(ptr+"/Object", "Object must be an array")
	}
	for i, b := range r.Object.elems {
		st.object(ptr+"/Object/"+strconv.Itoa(i), b)
	}
	if extra := r.Object.total - len(r.Object.elems); extra > 0 {
		d.errorf(ptr+"/Object", "%d objects beyond the first %d were not read", extra, len(r.Object.elems))
	}
	if st.unmapped > 0 {
		d.errorf(ptr, "the event has %d attributes; only the first %d were mapped (limits: %d attributes and %d indicators per event, %d attributes per document)",
			st.attrs, st.attrs-st.unmapped, maxAttributes, maxAttributes, maxDocAttributes)
	}

	ev.TLP = st.resolveTLP()
	ev.Kind = st.resolveKind()
	if st.critical {
		ev.Priority = gateway.PriorityCritical
	}
	ev.Labels = st.labels
	if len(st.sectors) > 0 {
		ev.Sectors = append(ev.Sectors, st.sectors...)
	}
	ev.Indicators = mergeDuplicates(ev.Indicators)
	st.finishPass()
	d.events = append(d.events, ev)
}

// identity maps uuid, info and the source reference.
func (st *eventState) identity(r *rawEvent) {
	ev := st.ev
	uuid := strings.TrimSpace(r.UUID.s)
	switch {
	case r.UUID.bad:
		st.d.errorf(st.ptr+"/uuid", "uuid must be a string")
	case uuid == "":
	case uuidShaped(uuid):
		ev.ID = strings.ToLower(uuid)
		ev.Source.Ref = ev.ID
	case len(uuid) <= maxRefBytes:
		// The pipeline derives a stable id from the source and this ref.
		st.d.errorf(st.ptr+"/uuid", "uuid %q is not a UUID; the event gets an id derived from it", shorten(uuid))
		ev.Source.Ref = uuid
	default:
		st.d.errorf(st.ptr+"/uuid", "uuid is %d bytes long and not a UUID; the event gets an id derived from its content", len(uuid))
	}
	ev.Title = strings.TrimSpace(r.Info.s)
	if ev.Title == "" {
		ev.Title = "MISP event"
		if ev.Source.Ref != "" {
			ev.Title += " " + ev.Source.Ref
		}
		st.d.errorf(st.ptr+"/info", "info is empty; the title is %q", ev.Title)
	}
}

// maxRefBytes is the longest source.ref kept (the canonical id's limit).
const maxRefBytes = 200

// uuidShaped accepts any 8-4-4-4-12 hex string: MISP's own validator allows
// versions 0–7, and an id is only an id. Encode re-checks version and variant.
func uuidShaped(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if _, ok := unhex(s[i]); !ok {
				return false
			}
		}
	}
	return true
}

// maxEpoch is the first second of year 10000, which time.Time cannot
// marshal.
const maxEpoch = 253402300800

// times maps timestamp to modified and the earliest sensible of date and
// publish_timestamp to created.
func (st *eventState) times(r *rawEvent) {
	ev := st.ev
	if ts, ok := st.epoch(st.ptr+"/timestamp", r.Timestamp); ok {
		ev.Modified = ts
	}
	var cands []time.Time
	if pt, ok := st.epoch(st.ptr+"/publish_timestamp", r.PublishTimestamp); ok {
		cands = append(cands, pt)
	}
	if ds := strings.TrimSpace(r.Date.s); ds != "" {
		if t, ok := parseDate(ds); ok {
			cands = append(cands, t)
		} else {
			st.d.errorf(st.ptr+"/date", "date %q is not YYYY-MM-DD", shorten(ds))
		}
	} else if r.Date.bad {
		st.d.errorf(st.ptr+"/date", "date must be a string YYYY-MM-DD")
	}
	for _, c := range cands {
		// A date after the last change is a typo or a planned date, not the
		// creation.
		if !ev.Modified.IsZero() && c.After(ev.Modified) {
			continue
		}
		if ev.Created.IsZero() || c.Before(ev.Created) {
			ev.Created = c
		}
	}
	if ev.Created.IsZero() {
		ev.Created = ev.Modified
	}
}

// epoch reads a positive Unix time; 0 means "never" in MISP.
func (st *eventState) epoch(field string, j jint) (time.Time, bool) {
	switch {
	case j.bad:
		st.d.errorf(field, "%q is not a Unix timestamp", j.raw)
	case !j.set || j.n == 0:
	case j.n < 0 || j.n >= maxEpoch:
		st.d.errorf(field, "%d is outside the Unix timestamps Schakel accepts (1..%d)", j.n, maxEpoch-1)
	default:
		return time.Unix(j.n, 0).UTC(), true
	}
	return time.Time{}, false
}

func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02", time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseSeen reads first_seen: ISO 8601 with or without zone and fraction,
// or a Unix time in seconds or microseconds.
func parseSeen(s string) (time.Time, bool) {
	if s != "" && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T ") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}, false
		}
		if n >= 100_000_000_000 { // more than 11 digits: microseconds
			n /= 1_000_000
		}
		if n >= maxEpoch {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// distributionFloor is the least strict TLP a MISP distribution allows.
func distributionFloor(n int64) (gateway.TLP, bool) {
	switch n {
	case 0:
		return gateway.TLPAmberStrict, true
	case 1, 4:
		return gateway.TLPAmber, true
	case 2:
		return gateway.TLPGreen, true
	case 3:
		return gateway.TLPClear, true
	}
	return "", false
}

// distribution raises the floor; 5 (inherit) is allowed only on attributes
// and objects. An unknown value fails closed.
func (st *eventState) distribution(p path, suffix string, j jint, inherit bool) {
	if j.set && j.n == 5 && inherit {
		return
	}
	if !j.set && !j.bad {
		return
	}
	t, ok := distributionFloor(j.n)
	if j.bad || !ok {
		raw := j.raw
		if !j.bad {
			raw = strconv.FormatInt(j.n, 10)
		}
		st.d.errorf(p.at(suffix), "distribution %q is not 0..4; read as 0 (your organisation only)", raw)
		t = gateway.TLPAmberStrict
	}
	st.floor = stricter(st.floor, t)
}

// stricter is gateway.Stricter where "" means "no label yet".
func stricter(a, b gateway.TLP) gateway.TLP {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return gateway.Stricter(a, b)
}

func (st *eventState) resolveTLP() gateway.TLP {
	return stricter(st.tlp, st.floor)
}

// resolveKind: a schakel:kind tag wins; otherwise an event that names
// vulnerabilities and carries nothing but "other" indicators (links, text,
// comments) is an advisory, everything else intel.
func (st *eventState) resolveKind() gateway.Kind {
	if st.kind != "" {
		return st.kind
	}
	if len(st.ev.Vulnerabilities) == 0 {
		return gateway.KindIntel
	}
	for _, ind := range st.ev.Indicators {
		if ind.Type != gateway.TypeOther {
			return gateway.KindIntel
		}
	}
	return gateway.KindAdvisory
}

// Schakel's own machine tags, so that priority, kind and sectors survive a
// trip through MISP (gateway to gateway, or a constituent MISP that
// re-shares): a sector-targeted warning relayed by one Schakel still reaches
// the right sector at the next.
const (
	tagCritical     = `schakel:priority="critical"`
	tagKindPrefix   = `schakel:kind=`
	tagSectorPrefix = `schakel:sector=`
	tagEmergency    = "priority-level:emergency" // MISP taxonomy priority-level (CISA NCISS)
	labelTLPWhite   = "tlp:white"
	tlpNamespace    = "tlp:"
	maxTagNameBytes = 1024
)

// tags reads a Tag, EventTag or AttributeTag list. With attrTags nil the
// tags are the event's: non-TLP ones become labels. Otherwise non-TLP tags
// are appended to attrTags. TLP tags always feed the event's TLP.
func (st *eventState) tags(p path, suffix string, l jlist, attrTags *[]string) {
	if l.bad {
		st.d.errorf(p.at(suffix), "must be an array of tags")
		return
	}
	for i, b := range l.elems {
		name, local, ok := readTag(b)
		if !ok {
			st.d.errorf(p.at(suffix)+"/"+strconv.Itoa(i), "tag has no name")
			continue
		}
		if len(name) > maxTagNameBytes {
			st.d.errorf(p.at(suffix)+"/"+strconv.Itoa(i)+"/name", "tag name is %d bytes long; the limit is %d", len(name), maxTagNameBytes)
			continue
		}
		st.tag(name, local, attrTags)
	}
}

// readTag accepts {"name":…}, {"Tag":{"name":…}} and a bare string.
func readTag(b []byte) (name string, local, ok bool) {
	switch b[0] {
	case '"':
		name = strings.TrimSpace(unquote(b))
		return name, false, name != ""
	case '{':
	default:
		return "", false, false
	}
	var t rawTag
	if json.Unmarshal(b, &t) != nil {
		return "", false, false
	}
	if !t.Name.set && t.Tag.b != nil && t.Tag.b[0] == '{' {
		var inner rawTag
		if json.Unmarshal(t.Tag.b, &inner) != nil {
			return "", false, false
		}
		t = inner
	}
	name = strings.TrimSpace(t.Name.s)
	return name, t.Local.v, name != ""
}

func (st *eventState) tag(name string, local bool, attrTags *[]string) {
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, tlpNamespace) {
		if t, legacy, err := gateway.ParseTLP(lower[len(tlpNamespace):]); err == nil {
			// Local TLP tags count too: the sender's marking is never
			// loosened, whatever its sync flags.
			st.tlp = stricter(st.tlp, t)
			if legacy {
				st.label(labelTLPWhite)
			}
			return
		}
		// tlp:ex:chr, tlp:unclear: handling notes, not labels of TLP.
	}
	if local {
		return // local tags never leave the instance that set them
	}
	if attrTags != nil {
		*attrTags = append(*attrTags, name)
		return
	}
	switch {
	case lower == tagCritical:
		st.critical = true
		return
	case isKindTag(lower):
		st.kind = gateway.Kind(strings.Trim(lower[len(tagKindPrefix):], `"`))
		return
	case strings.HasPrefix(lower, tagSectorPrefix):
		// An empty one names no sector; it is not a label either.
		if s := strings.TrimSpace(strings.Trim(lower[len(tagSectorPrefix):], `"`)); s != "" && !strings.Contains(s, `"`) {
			st.sectors = append(st.sectors, s)
		}
		return
	case lower == tagEmergency:
		st.critical = true
	}
	st.label(name)
}

func (st *eventState) label(name string) {
	if !st.labelSet[name] {
		st.labelSet[name] = true
		st.labels = append(st.labels, name)
	}
}

// galaxies keeps each cluster's tag name as a label; MISP also lists them
// as tags, so this matters only for exports that leave the tags out.
func (st *eventState) galaxies(l jlist) {
	for _, b := range l.elems {
		var g struct {
			GalaxyCluster jlist `json:"GalaxyCluster"`
		}
		if b[0] != '{' || json.Unmarshal(b, &g) != nil {
			continue
		}
		for _, cb := range g.GalaxyCluster.elems {
			var c struct {
				TagName jstr `json:"tag_name"`
			}
			if cb[0] == '{' && json.Unmarshal(cb, &c) == nil {
				if n := strings.TrimSpace(c.TagName.s); n != "" && len(n) <= maxTagNameBytes {
					st.tag(n, false, nil)
				}
			}
		}
	}
}

// reports turn event reports into the description: one report's content
// as it is, several under their names.
func (st *eventState) reports(field string, l jlist) {
	var rs []rawReport
	for i, b := range l.elems {
		var r rawReport
		if b[0] != '{' || json.Unmarshal(b, &r) != nil {
			st.d.errorf(field+"/"+strconv.Itoa(i), "event report must be an object")
			continue
		}
		if r.Deleted.v || strings.TrimSpace(r.Content.s) == "" {
			continue
		}
		rs = append(rs, r)
	}
	switch len(rs) {
	case 0:
	case 1:
		st.ev.Description = rs[0].Content.s
	default:
		var b strings.Builder
		for i, r := range rs {
			if i > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString("## ")
			b.WriteString(strings.TrimSpace(r.Name.s))
			b.WriteString("\n\n")
			b.WriteString(r.Content.s)
		}
		st.ev.Description = b.String()
	}
}
