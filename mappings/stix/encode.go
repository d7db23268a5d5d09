package stix

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
)

// EncodeOptions names the producer of the STIX output.
type EncodeOptions struct {
	// IdentityName is the identity every object's created_by_ref points
	// to; empty uses the event's source org, then its source name.
	IdentityName string
}

// Object is one encoded STIX object. Version is what TAXII calls the
// object's version: its modified time, the created time of a marking
// definition, "" for observables (they have no versions).
type Object struct {
	ID      string
	Type    string
	Version string
	JSON    json.RawMessage
}

// MarshalJSON writes the object itself, so a []Object marshals as a STIX
// objects array.
func (o Object) MarshalJSON() ([]byte, error) { return o.JSON, nil }

// stixTime renders a timestamp as STIX wants it: UTC, "Z", at least
// millisecond precision and no precision lost.
func stixTime(t time.Time) string {
	s := t.UTC().Format("2006-01-02T15:04:05.000000000")
	for len(s) > len("2006-01-02T15:04:05.000") && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	return s + "Z"
}

// stixTimestamp reports whether s already has the form STIX requires
// (RFC 3339 in UTC with "Z"), so it can be written back unchanged.
func stixTimestamp(s string) bool {
	_, ok := parseTime(s)
	return ok && len(s) > 19 && s[10] == 'T' && s[len(s)-1] == 'Z'
}

const (
	tlp20Created   = "2022-10-01T00:00:00.000Z"
	identityEpoch  = "1970-01-01T00:00:00.000Z" // identities are shared across events: no event's time
	patternVersion = "2.1"
)

// The objects Encode writes. Field order is the output order.
type (
	common struct {
		Type         string `json:"type"`
		SpecVersion  string `json:"spec_version"`
		ID           string `json:"id"`
		CreatedByRef string `json:"created_by_ref,omitempty"`
		Created      string `json:"created"`
		Modified     string `json:"modified"`
	}
	extensionDefinition struct {
		common
		Name              string   `json:"name"`
		Description       string   `json:"description"`
		Schema            string   `json:"schema"`
		Version           string   `json:"version"`
		ExtensionTypes    []string `json:"extension_types"`
		ObjectMarkingRefs []string `json:"object_marking_refs"`
	}
	tlpExtension struct {
		ExtensionType string `json:"extension_type"`
		TLP           string `json:"tlp_2_0"`
	}
	markingDefinition struct {
		Type        string                  `json:"type"`
		SpecVersion string                  `json:"spec_version"`
		ID          string                  `json:"id"`
		Created     string                  `json:"created"`
		Name        string                  `json:"name"`
		Extensions  map[string]tlpExtension `json:"extensions"`
	}
	identity struct {
		common
		Name              string   `json:"name"`
		IdentityClass     string   `json:"identity_class"`
		ObjectMarkingRefs []string `json:"object_marking_refs"`
	}
	report struct {
		common
		Name               string              `json:"name"`
		Description        string              `json:"description,omitempty"`
		Published          string              `json:"published"`
		ObjectRefs         []string            `json:"object_refs"`
		Labels             []string            `json:"labels,omitempty"`
		ObjectMarkingRefs  []string            `json:"object_marking_refs"`
		XSchakelKind       gateway.Kind        `json:"x_schakel_kind,omitempty"`
		XSchakelPriority   gateway.Priority    `json:"x_schakel_priority,omitempty"`
		XSchakelAssessment *gateway.Assessment `json:"x_schakel_assessment,omitempty"`
		XSchakelSectors    []string            `json:"x_schakel_sectors,omitempty"`
		ExternalReferences []linkRef           `json:"external_references,omitempty"`
	}
	// linkRef is an external reference by URL (references, remediation links).
	linkRef struct {
		SourceName  string `json:"source_name"`
		URL         string `json:"url,omitempty"`
		Description string `json:"description,omitempty"`
	}
	courseOfActionObject struct {
		common
		Name               string    `json:"name"`
		Description        string    `json:"description,omitempty"`
		ExternalReferences []linkRef `json:"external_references,omitempty"`
		ObjectMarkingRefs  []string  `json:"object_marking_refs"`
		XSchakelCategory   string    `json:"x_schakel_category,omitempty"`
		XSchakelProducts   []string  `json:"x_schakel_products,omitempty"`
	}
	indicatorObject struct {
		common
		Name               string            `json:"name,omitempty"`
		Description        string            `json:"description,omitempty"`
		IndicatorTypes     []string          `json:"indicator_types,omitempty"`
		Pattern            string            `json:"pattern"`
		PatternType        string            `json:"pattern_type"`
		PatternVersion     string            `json:"pattern_version,omitempty"`
		ValidFrom          string            `json:"valid_from"`
		ValidUntil         string            `json:"valid_until,omitempty"`
		Labels             []string          `json:"labels,omitempty"`
		ObjectMarkingRefs  []string          `json:"object_marking_refs"`
		XSchakelAttributes map[string]string `json:"x_schakel_attributes,omitempty"`
	}
	observedDataObject struct {
		common
		FirstObserved      string            `json:"first_observed"`
		LastObserved       string            `json:"last_observed"`
		NumberObserved     int               `json:"number_observed"`
		ObjectRefs         []string          `json:"object_refs"`
		ObjectMarkingRefs  []string          `json:"object_marking_refs"`
		XSchakelComment    string            `json:"x_schakel_comment,omitempty"`
		XSchakelAttributes map[string]string `json:"x_schakel_attributes,omitempty"`
	}
	// sco is every observable Encode writes; unused properties are omitted.
	sco struct {
		Type              string            `json:"type"`
		SpecVersion       string            `json:"spec_version"`
		ID                string            `json:"id"`
		Value             string            `json:"value,omitempty"`
		Number            int64             `json:"number,omitempty"`
		Name              string            `json:"name,omitempty"`
		Hashes            map[string]string `json:"hashes,omitempty"`
		SrcRef            string            `json:"src_ref,omitempty"`
		DstRef            string            `json:"dst_ref,omitempty"`
		SrcPort           *int              `json:"src_port,omitempty"`
		DstPort           *int              `json:"dst_port,omitempty"`
		Protocols         []string          `json:"protocols,omitempty"`
		ObjectMarkingRefs []string          `json:"object_marking_refs"`
	}
	vulnerabilityObject struct {
		common
		Name               string        `json:"name"`
		ExternalReferences []externalRef `json:"external_references"`
		ObjectMarkingRefs  []string      `json:"object_marking_refs"`
		XSchakelCVSS       float64       `json:"x_schakel_cvss,omitempty"`
		XSchakelProducts   []string      `json:"x_schakel_products,omitempty"`
	}
	externalRef struct {
		SourceName string `json:"source_name"`
		ExternalID string `json:"external_id"`
	}
	customObservableObject struct {
		common
		Description        string            `json:"description,omitempty"`
		Value              string            `json:"value"`
		XSchakelType       string            `json:"x_schakel_type"`
		XSchakelObserved   string            `json:"x_schakel_observed,omitempty"`
		ObjectMarkingRefs  []string          `json:"object_marking_refs"`
		XSchakelAttributes map[string]string `json:"x_schakel_attributes,omitempty"`
	}
)

// reservedAttrs are attributes Encode writes as STIX properties, so they
// are not repeated in x_schakel_attributes.
var reservedAttrs = map[string]bool{
	AttrID: true, AttrPattern: true, AttrPatternType: true, AttrObservedDataID: true, AttrFileID: true,
	AttrDirection: true, gateway.AttrDirection: true, AttrName: true, AttrIndicatorTypes: true, AttrLabels: true, AttrValidUntil: true,
	AttrSourcePattern: true, AttrCreated: true, AttrModified: true, AttrCreatedByRef: true, AttrSourceTLP: true,
	AttrContentDigest: true, AttrMarkingRefs: true,
}

// Encode maps a canonical event to a STIX 2.1 bundle: the producer's
// identity, a report for the event (id "report--<event id>"), indicators
// with patterns for detect=true indicators, observed-data and observables
// for the rest, vulnerabilities for CVEs, and the TLP 2.0 marking
// definition and extension definition the markings use. Every object but
// the marking definition carries the event's TLP marking. The same event
// always gives the same bytes.
func Encode(ev *gateway.Event, o EncodeOptions) ([]byte, error) {
	objs, err := EncodeObjects(ev, o)
	if err != nil {
		return nil, err
	}
	// The bundle id follows the report's id and version.
	var name string
	for _, obj := range objs {
		if obj.Type == "report" {
			name = obj.ID + "\x00" + obj.Version
		}
	}
	bundle := struct {
		Type    string   `json:"type"`
		ID      string   `json:"id"`
		Objects []Object `json:"objects"`
	}{"bundle", "bundle--" + uuidV5(schakelNamespace, "bundle\x00"+name), objs}
	return json.Marshal(bundle)
}

// EncodeObjects is Encode without the bundle: the objects a TAXII
// collection serves, in bundle order (extension definition, marking
// definition, identity, report, then the report's content).
func EncodeObjects(ev *gateway.Event, o EncodeOptions) ([]Object, error) {
	if ev == nil {
		return nil, errors.New("event is missing")
	}
	e, err := newEncoder(ev, o)
	if err != nil {
		return nil, err
	}
	if err := e.readExtensions(); err != nil {
		return nil, err
	}
	if err := e.content(); err != nil {
		return nil, err
	}
	if err := e.passThrough(); err != nil {
		return nil, err
	}
	return e.finish()
}

type encoder struct {
	ev        *gateway.Event
	tlp       gateway.TLP
	marking   []string
	identity  string
	reportID  string
	created   string
	modified  string
	head      []Object // definitions, identity, report: written last
	body      []Object
	refs      []string
	emitted   map[string]bool
	cves      map[string]bool
	observedT string
	pass      []*passObject // the event's pass-through objects
}

func newEncoder(ev *gateway.Event, o EncodeOptions) (*encoder, error) {
	tlp := ev.TLP
	if tlp == "" {
		tlp = gateway.TLPAmber // ARCHITECTURE §3: unlabelled means AMBER
	}
	t, _, err := gateway.ParseTLP(string(tlp))
	if err != nil {
		return nil, fmt.Errorf("tlp: %w", err)
	}
	if strings.TrimSpace(ev.Title) == "" {
		return nil, errors.New("title is missing")
	}
	created, modified := ev.Created, ev.Modified
	if created.IsZero() {
		created = modified
	}
	if created.IsZero() {
		return nil, errors.New("created is missing")
	}
	if modified.IsZero() || modified.Before(created) {
		modified = created
	}
	name := firstNonEmpty(strings.TrimSpace(o.IdentityName), firstNonEmpty(strings.TrimSpace(ev.Source.Org), strings.TrimSpace(ev.Source.Name)))
	if name == "" {
		name = "Schakel"
	}
	e := &encoder{
		ev:       ev,
		tlp:      t,
		marking:  []string{tlp20IDs[t]},
		identity: schakelIdentity(name),
		created:  stixTime(created),
		modified: stixTime(modified),
		emitted:  map[string]bool{},
		cves:     map[string]bool{},
	}
	if stixUUID(ev.ID) {
		e.reportID = "report--" + strings.ToLower(ev.ID)
	} else {
		key := ev.ID
		if key == "" {
			key = ev.Source.Name + "\x00" + ev.Source.Ref + "\x00" + ev.Title
		}
		e.reportID = "report--" + uuidV5(schakelNamespace, "event\x00"+key)
	}
	e.observedT = e.created
	if err := e.definitions(name); err != nil {
		return nil, err
	}
	return e, nil
}

// schakelIdentity is the id of the producer identity Encode writes.
func schakelIdentity(name string) string {
	return "identity--" + uuidV5(schakelNamespace, "identity\x00"+name)
}

func (e *encoder) common(typ, id string) common {
	return common{Type: typ, SpecVersion: "2.1", ID: id, CreatedByRef: e.identity, Created: e.created, Modified: e.modified}
}

// derived gives an object of the event a stable id from what it holds.
func (e *encoder) derived(typ string, parts ...string) string {
	return typ + "--" + uuidV5(schakelNamespace, e.reportID+"\x00"+typ+"\x00"+strings.Join(parts, "\x00"))
}

func (e *encoder) put(list *[]Object, id, typ, version string, v any) error {
	data, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return fmt.Errorf("encode %s: %w", id, err)
		}
	}
	*list = append(*list, Object{ID: id, Type: typ, Version: version, JSON: data})
	e.emitted[id] = true
	return nil
}

// add writes a content object the report refers to.
func (e *encoder) add(id, typ, version string, v any) error {
	if e.emitted[id] {
		return nil
	}
	e.refs = append(e.refs, id)
	return e.put(&e.body, id, typ, version, v)
}

func (e *encoder) definitions(name string) error {
	ext := extensionDefinition{
		common: common{
			Type: "extension-definition", SpecVersion: "2.1", ID: TLP20Extension,
			// The OASIS TC's identity, as in cti-stix-common-objects.
			CreatedByRef: "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01",
			Created:      tlp20Created, Modified: tlp20Created,
		},
		Name:              "TLP 2.0",
		Description:       "This defines TLP 2.0 as a STIX extension",
		Schema:            "https://github.com/oasis-open/cti-stix-common-objects/tree/master/extension-definition-specifications/tlp-2.0",
		Version:           "1.0.0",
		ExtensionTypes:    []string{"property-extension"},
		ObjectMarkingRefs: e.marking,
	}
	if err := e.put(&e.head, ext.ID, ext.Type, ext.Modified, ext); err != nil {
		return err
	}
	md := markingDefinition{
		Type: "marking-definition", SpecVersion: "2.1", ID: e.marking[0], Created: tlp20Created,
		Name:       e.tlp.Label(),
		Extensions: map[string]tlpExtension{TLP20Extension: {ExtensionType: "property-extension", TLP: strings.ToLower(string(e.tlp))}},
	}
	if err := e.put(&e.head, md.ID, md.Type, md.Created, md); err != nil {
		return err
	}
	id := identity{
		common:            common{Type: "identity", SpecVersion: "2.1", ID: e.identity, Created: identityEpoch, Modified: identityEpoch},
		Name:              name,
		IdentityClass:     "organization",
		ObjectMarkingRefs: e.marking,
	}
	return e.put(&e.head, id.ID, id.Type, id.Modified, id)
}

func (e *encoder) finish() ([]Object, error) {
	ev := e.ev
	refs := e.refs
	if len(refs) == 0 {
		refs = []string{e.identity} // object_refs may not be empty
	}
	r := report{
		common:             e.common("report", e.reportID),
		Name:               ev.Title,
		Description:        ev.Description,
		Published:          e.created,
		ObjectRefs:         refs,
		Labels:             nonEmpty(ev.Labels),
		ObjectMarkingRefs:  e.marking,
		XSchakelKind:       ev.Kind,
		XSchakelPriority:   ev.Priority,
		XSchakelSectors:    nonEmpty(ev.Sectors),
		XSchakelAssessment: ev.Assessment,
	}
	if a := ev.Assessment; a != nil && *a == (gateway.Assessment{}) {
		r.XSchakelAssessment = nil
	}
	for _, ref := range ev.References {
		r.ExternalReferences = append(r.ExternalReferences, linkRef{SourceName: "reference", URL: ref.URL, Description: ref.Summary})
	}
	if err := e.put(&e.head, r.ID, r.Type, r.Modified, r); err != nil {
		return nil, err
	}
	return append(e.head, e.body...), nil
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// content writes the event's indicators and vulnerabilities.
func (e *encoder) content() error {
	ev := e.ev
	for i, ind := range ev.Indicators {
		if !ind.Type.Valid() {
			return fmt.Errorf("indicators/%d/type: unknown indicator type %q", i, ind.Type)
		}
		if ind.Value == "" {
			return fmt.Errorf("indicators/%d/value: value is empty", i)
		}
	}
	if err := e.indicators(); err != nil {
		return err
	}
	if err := e.observed(); err != nil {
		return err
	}
	for _, v := range ev.Vulnerabilities {
		if err := e.vulnerability(v); err != nil {
			return err
		}
	}
	for _, ind := range ev.Indicators {
		if ind.Type == gateway.TypeCVE {
			if err := e.vulnerability(gateway.Vulnerability{CVE: ind.Value}); err != nil {
				return err
			}
		}
	}
	for _, rm := range ev.Remediations {
		if err := e.remediation(rm); err != nil {
			return err
		}
	}
	return nil
}

// remediation writes advice as a course-of-action (misp-stix does the same
// for MISP course-of-action objects); its id derives from its content.
func (e *encoder) remediation(rm gateway.Remediation) error {
	name := rm.Category
	if name == "" {
		name = "remediation"
	}
	o := courseOfActionObject{
		common:            e.common("course-of-action", e.derived("course-of-action", rm.Category, rm.Text, rm.URL)),
		Name:              name,
		Description:       rm.Text,
		ObjectMarkingRefs: e.marking,
		XSchakelCategory:  rm.Category,
		XSchakelProducts:  nonEmpty(rm.Products),
	}
	if rm.URL != "" {
		o.ExternalReferences = []linkRef{{SourceName: "remediation", URL: rm.URL}}
	}
	return e.add(o.ID, o.Type, o.Modified, o)
}

// attrMISPUUID is the attribute mappings/misp keeps a MISP attribute's
// uuid under.
const attrMISPUUID = "misp_uuid"

// mispID is the STIX id misp-stix gives a MISP attribute: its own uuid, so
// a MISP → STIX conversion keeps MISP's ids; "" when it has none.
func mispID(typ string, ind gateway.Indicator) string {
	u := strings.ToLower(ind.Attributes[attrMISPUUID])
	if _, ok := idUUID(typ+"--"+u, typ); !ok {
		return ""
	}
	return typ + "--" + u
}

// sourceSide reports whether an address is the near end of a connection:
// a STIX src_ref, or the host a feed row is about (gateway.AttrDirection),
// which is the source side in IntelMQ's harmonisation.
func sourceSide(ind gateway.Indicator) bool {
	return ind.Attributes[AttrDirection] == "src" || ind.Attributes[gateway.AttrDirection] == gateway.DirectionSource
}

// indicatorGroup is one STIX indicator: canonical indicators that came from
// one pattern (same stix_id) are written back as one OR pattern.
type indicatorGroup struct {
	id      string
	members []gateway.Indicator
	parts   []string
}

func (e *encoder) indicators() error {
	var groups []*indicatorGroup
	byID := map[string]*indicatorGroup{}
	for _, ind := range e.ev.Indicators {
		if !ind.Detect || ind.Type == gateway.TypeCVE {
			continue
		}
		part := patternPart(ind)
		id := ind.Attributes[AttrID]
		if _, ok := idUUID(id, "indicator"); !ok {
			id = ""
		}
		if pt := ind.Attributes[AttrPatternType]; pt != "" && !strings.EqualFold(pt, "stix") {
			// A YARA or Sigma rule cannot be OR-ed with a STIX pattern.
			if id == "" || byID[id] != nil {
				id = e.derived("indicator", pt, part)
			}
			g := &indicatorGroup{id: id, members: []gateway.Indicator{ind}, parts: []string{part}}
			byID[id] = g
			groups = append(groups, g)
			continue
		}
		if id == "" {
			id = mispID("indicator", ind)
		}
		if id == "" || byID[id] != nil && !contains(byID[id].parts, part) && ind.Attributes[AttrID] == "" {
			id = e.derived("indicator", part)
		}
		g := byID[id]
		if g == nil {
			g = &indicatorGroup{id: id}
			byID[id] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, ind)
		if !contains(g.parts, part) {
			g.parts = append(g.parts, part)
		}
	}
	for _, g := range groups {
		if err := e.indicator(g); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (e *encoder) indicator(g *indicatorGroup) error {
	first := g.members[0]
	o := indicatorObject{
		common:            e.common("indicator", g.id),
		Name:              first.Attributes[AttrName],
		PatternType:       "stix",
		ValidFrom:         e.observedT,
		ObjectMarkingRefs: e.marking,
	}
	if pt := first.Attributes[AttrPatternType]; pt != "" {
		o.PatternType = pt
	}
	if o.PatternType == "stix" {
		o.PatternVersion = patternVersion
	}
	o.Pattern = strings.Join(g.parts, " OR ")
	var observed time.Time
	for _, m := range g.members {
		if o.Description == "" {
			o.Description = m.Comment
		}
		if !m.Observed.IsZero() && (observed.IsZero() || m.Observed.Before(observed)) {
			observed = m.Observed
		}
	}
	if !observed.IsZero() {
		o.ValidFrom = stixTime(observed)
	}
	if s := first.Attributes[AttrIndicatorTypes]; s != "" {
		o.IndicatorTypes = strings.Split(s, ",")
	}
	if s := first.Attributes[AttrLabels]; s != "" {
		o.Labels = strings.Split(s, ", ")
	}
	attrs := extraAttrs(first.Attributes)
	if vu := first.Attributes[AttrValidUntil]; vu != "" {
		from, _ := parseTime(o.ValidFrom)
		if t, ok := parseTime(vu); ok && t.After(from) {
			o.ValidUntil = vu
			if !stixTimestamp(vu) {
				o.ValidUntil = stixTime(t)
			}
		} else {
			// STIX requires valid_until after valid_from; keep it, unchecked.
			attrs = mergeAttrs(attrs, map[string]string{AttrValidUntil: vu})
		}
	}
	o.XSchakelAttributes = attrs
	if m := first.Attributes[AttrMarkingRefs]; m != "" {
		o.ObjectMarkingRefs = append(slices.Clip(o.ObjectMarkingRefs), strings.Split(m, ",")...)
	}
	e.version(&o, g)
	return e.add(o.ID, o.Type, o.Modified, o)
}

// version gives an indicator read from STIX its source's id, created,
// created_by_ref, modified and pattern text while what it says is what
// the source said: same content digest and the same TLP marking (or no
// marking anywhere in the source). Content Schakel changed (normalisation,
// a projection that left part of the pattern out, a TLP other than the
// indicator's own) is a new version under the same id, so relationships
// to it still resolve. Its modified is later than the source's and the
// event's, with a sub-millisecond part taken from a hash of the content:
// two different contents never share an id and modified (short of a hash
// collision), and no source writing millisecond timestamps can take that
// modified for a version of its own later.
func (e *encoder) version(o *indicatorObject, g *indicatorGroup) {
	first := g.members[0].Attributes
	created := first[AttrCreated]
	if created == "" || first[AttrID] != g.id {
		return // Schakel's own indicator: the event's times
	}
	o.Created, o.CreatedByRef = created, first[AttrCreatedByRef]
	srcMod := firstNonEmpty(first[AttrModified], created)
	srcTLP := first[AttrSourceTLP]
	var srcPattern string
	for _, m := range g.members {
		if p := m.Attributes[AttrSourcePattern]; p != "" {
			srcPattern = p
			break
		}
	}
	if srcPattern != "" && (srcTLP == "" || srcTLP == string(e.tlp)) && first[AttrContentDigest] == contentDigest(g.members, g.parts) {
		o.Modified, o.Pattern = srcMod, srcPattern
		return
	}
	sm, _ := parseTime(srcMod)
	em, _ := parseTime(e.modified)
	o.Modified = ""
	content, _ := json.Marshal(o)
	h := sha256.Sum256(content)
	ns := 1 + binary.BigEndian.Uint64(h[:8])%999_999
	base := maxTime(em, sm.Add(time.Millisecond)).Truncate(time.Millisecond)
	o.Modified = stixTime(base.Add(time.Duration(ns)))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// extraAttrs are the attributes STIX has no property for.
func extraAttrs(attrs map[string]string) map[string]string {
	var out map[string]string
	for k, v := range attrs {
		if reservedAttrs[k] {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// patternPart is one indicator's observation expression.
func patternPart(ind gateway.Indicator) string {
	if p := ind.Attributes[AttrPattern]; p != "" {
		return p
	}
	return render(comparisons(ind))
}

// comparisons expresses an indicator as a conjunction of equality tests.
func comparisons(ind gateway.Indicator) []comparison {
	s := func(object, path string) []comparison {
		return []comparison{{Object: object, Path: path, Str: ind.Value}}
	}
	switch ind.Type {
	case gateway.TypeIPv4, gateway.TypeIPv6, gateway.TypeCIDR:
		obj := addressType(ind)
		side := "dst"
		if sourceSide(ind) {
			side = "src"
		}
		if ind.Port == 0 && side == "dst" {
			return s(obj, "value")
		}
		cs := []comparison{
			{Object: "network-traffic", Path: side + "_ref.type", Str: obj},
			{Object: "network-traffic", Path: side + "_ref.value", Str: ind.Value},
		}
		if ind.Port > 0 {
			cs = append(cs, comparison{Object: "network-traffic", Path: side + "_port", Num: int64(ind.Port), IsNum: true})
		}
		return cs
	case gateway.TypeDomain, gateway.TypeHostname:
		return s("domain-name", "value")
	case gateway.TypeURL:
		return s("url", "value")
	case gateway.TypeEmail:
		return s("email-addr", "value")
	case gateway.TypeMD5:
		return s("file", "hashes.MD5")
	case gateway.TypeSHA1:
		return s("file", "hashes.'SHA-1'")
	case gateway.TypeSHA256:
		return s("file", "hashes.'SHA-256'")
	case gateway.TypeSHA512:
		return s("file", "hashes.'SHA-512'")
	case gateway.TypeFilename:
		return s("file", "name")
	case gateway.TypeMutex:
		return s("mutex", "name")
	case gateway.TypeASN:
		return []comparison{{Object: "autonomous-system", Path: "number", Num: asnOf(ind), IsNum: true}}
	}
	// ja3, other (and anything else STIX has no observable for).
	return s("x-schakel-"+string(ind.Type), "value")
}

func asnOf(ind gateway.Indicator) int64 {
	if ind.ASN > 0 {
		return ind.ASN
	}
	v := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(ind.Value)), "AS")
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

// addressType is the observable type of an address or prefix.
func addressType(ind gateway.Indicator) string {
	switch ind.Type {
	case gateway.TypeIPv6:
		return "ipv6-addr"
	case gateway.TypeCIDR:
		if p, err := netip.ParsePrefix(ind.Value); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
			return "ipv6-addr"
		}
		if strings.Contains(ind.Value, ":") {
			return "ipv6-addr"
		}
	}
	return "ipv4-addr"
}

// render writes "[a = 'x' AND b = 1]"; paths are already in their
// pattern spelling.
func render(cs []comparison) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(c.Object)
		b.WriteByte(':')
		b.WriteString(c.Path)
		b.WriteString(" = ")
		if c.IsNum {
			b.WriteString(strconv.FormatInt(c.Num, 10))
		} else {
			b.WriteString(quote(c.Str))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// observedGroup is one observed-data: the observables of one source
// observed-data (same stix_observed_data_id), or of one indicator.
type observedGroup struct {
	id      string
	members []gateway.Indicator
}

// observed writes observed-data and observables for indicators not meant
// for detection, and for detection indicators that came with an
// observed-data (so its id survives a round trip).
func (e *encoder) observed() error {
	var groups []*observedGroup
	byID := map[string]*observedGroup{}
	for _, ind := range e.ev.Indicators {
		if ind.Type == gateway.TypeCVE {
			continue
		}
		odID := ind.Attributes[AttrObservedDataID]
		if _, ok := idUUID(odID, "observed-data"); !ok {
			odID = ""
		}
		if ind.Detect && odID == "" {
			continue
		}
		if !hasObservable(ind) {
			if !ind.Detect {
				if err := e.custom(ind); err != nil {
					return err
				}
			}
			continue
		}
		if odID == "" {
			odID = mispID("observed-data", ind)
		}
		if odID == "" {
			dir := ""
			if sourceSide(ind) {
				dir = "src" // the same id whichever attribute said so
			}
			odID = e.derived("observed-data", string(ind.Type), ind.Value, strconv.Itoa(ind.Port), dir, ind.Attributes[AttrFileID])
		}
		g := byID[odID]
		if g == nil {
			g = &observedGroup{id: odID}
			byID[odID] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, ind)
	}
	for _, g := range groups {
		if err := e.observedData(g); err != nil {
			return err
		}
	}
	return nil
}

// hasObservable reports whether STIX has an observable for the indicator.
func hasObservable(ind gateway.Indicator) bool {
	switch ind.Type {
	case gateway.TypeJA3, gateway.TypeOther, gateway.TypeCVE:
		return false
	}
	return true
}

func (e *encoder) observedData(g *observedGroup) error {
	o := observedDataObject{
		common:            e.common("observed-data", g.id),
		NumberObserved:    1,
		ObjectMarkingRefs: e.marking,
	}
	var observed time.Time
	var scos []sco
	files := map[string]int{} // file id attribute → index in scos
	for _, m := range g.members {
		if !m.Observed.IsZero() && (observed.IsZero() || m.Observed.Before(observed)) {
			observed = m.Observed
		}
		if !m.Detect && o.XSchakelComment == "" {
			o.XSchakelComment = m.Comment
		}
		if o.XSchakelAttributes == nil {
			o.XSchakelAttributes = extraAttrs(m.Attributes)
			if m.ASN > 0 && m.Type != gateway.TypeASN {
				// The address's network (a feed row's asn column): STIX
				// 2.1 has no non-deprecated property for it.
				o.XSchakelAttributes = mergeAttrs(o.XSchakelAttributes, map[string]string{"asn": strconv.FormatInt(m.ASN, 10)})
			}
		}
		switch m.Type {
		case gateway.TypeMD5, gateway.TypeSHA1, gateway.TypeSHA256, gateway.TypeSHA512, gateway.TypeFilename:
			key := m.Attributes[AttrFileID]
			i, ok := files[key]
			if !ok || key == "" {
				scos = append(scos, sco{Type: "file"})
				i = len(scos) - 1
				files[key] = i
			}
			f := &scos[i]
			if m.Type == gateway.TypeFilename {
				if f.Name == "" {
					f.Name = m.Value
				}
				continue
			}
			if f.Hashes == nil {
				f.Hashes = map[string]string{}
			}
			f.Hashes[hashName(m.Type)] = m.Value
		default:
			scos = append(scos, e.observable(m)...)
		}
	}
	if observed.IsZero() {
		o.FirstObserved = e.observedT
	} else {
		o.FirstObserved = stixTime(observed)
	}
	o.LastObserved = o.FirstObserved
	var fresh []sco
	for i := range scos {
		s := &scos[i]
		s.SpecVersion = "2.1"
		s.ObjectMarkingRefs = e.marking
		if s.ID == "" {
			s.ID = scoID(s.Type, idProps(s))
		}
		if !contains(o.ObjectRefs, s.ID) {
			o.ObjectRefs = append(o.ObjectRefs, s.ID)
		}
		fresh = append(fresh, *s)
	}
	if err := e.add(o.ID, o.Type, o.Modified, o); err != nil {
		return err
	}
	for _, s := range fresh {
		if e.emitted[s.ID] {
			continue
		}
		if err := e.put(&e.body, s.ID, s.Type, "", s); err != nil {
			return err
		}
		e.refs = append(e.refs, s.ID)
	}
	return nil
}

func hashName(t gateway.IndicatorType) string {
	switch t {
	case gateway.TypeMD5:
		return "MD5"
	case gateway.TypeSHA1:
		return "SHA-1"
	case gateway.TypeSHA256:
		return "SHA-256"
	}
	return "SHA-512"
}

// observable builds the observables of one indicator: the address and a
// network-traffic object when there is a port or a source direction.
func (e *encoder) observable(ind gateway.Indicator) []sco {
	switch ind.Type {
	case gateway.TypeIPv4, gateway.TypeIPv6, gateway.TypeCIDR:
		addr := sco{Type: addressType(ind), Value: ind.Value}
		addr.ID = scoID(addr.Type, idProps(&addr))
		src := sourceSide(ind)
		if ind.Port == 0 && !src {
			return []sco{addr}
		}
		nt := sco{Type: "network-traffic", Protocols: []string{strings.TrimSuffix(addr.Type, "-addr")}}
		port := ind.Port
		out := []sco{}
		if src {
			nt.SrcRef = addr.ID
			if port > 0 {
				nt.SrcPort = &port
			}
			// A feed row's counterpart (the sinkhole, C2 or scanner the host
			// talked to) is the destination side of the same traffic.
			if ip, err := netip.ParseAddr(ind.Attributes["dst_ip"]); err == nil {
				dst := sco{Type: "ipv4-addr", Value: ip.Unmap().String()}
				if ip.Unmap().Is6() {
					dst.Type = "ipv6-addr"
				}
				dst.ID = scoID(dst.Type, idProps(&dst))
				nt.DstRef = dst.ID
				out = append(out, dst)
			}
			if p, err := strconv.Atoi(ind.Attributes["dst_port"]); err == nil && p > 0 && p <= 65535 {
				nt.DstPort = &p
			}
		} else {
			nt.DstRef = addr.ID
			nt.DstPort = &port
		}
		return append([]sco{nt, addr}, out...)
	case gateway.TypeDomain, gateway.TypeHostname:
		return []sco{{Type: "domain-name", Value: ind.Value}}
	case gateway.TypeURL:
		return []sco{{Type: "url", Value: ind.Value}}
	case gateway.TypeEmail:
		return []sco{{Type: "email-addr", Value: ind.Value}}
	case gateway.TypeASN:
		return []sco{{Type: "autonomous-system", Number: asnOf(ind)}}
	case gateway.TypeMutex:
		return []sco{{Type: "mutex", Name: ind.Value}}
	}
	return nil
}

// idProps is the canonical JSON of an observable's id-contributing
// properties (STIX 2.1 §2.9 and each type's "ID contributing properties").
func idProps(s *sco) string {
	switch s.Type {
	case "file":
		// One hash, by preference MD5, SHA-1, SHA-256, SHA-512; then name.
		b := []byte{'{'}
		for _, h := range []string{"MD5", "SHA-1", "SHA-256", "SHA-512"} {
			if v, ok := s.Hashes[h]; ok {
				b = jcsString(append(b, `"hashes":{`...), h)
				b = append(jcsString(append(b, ':'), v), '}')
				break
			}
		}
		if s.Name != "" {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = jcsString(append(jcsString(b, "name"), ':'), s.Name)
		}
		return string(append(b, '}'))
	case "autonomous-system":
		return jcsNumberObject("number", s.Number)
	case "mutex":
		return jcsObject("name", s.Name)
	case "network-traffic":
		b := []byte{'{'}
		if s.DstPort != nil {
			b = strconv.AppendInt(append(b, `"dst_port":`...), int64(*s.DstPort), 10)
			b = append(b, ',')
		}
		if s.DstRef != "" {
			b = append(jcsString(append(b, `"dst_ref":`...), s.DstRef), ',')
		}
		b = append(b, `"protocols":[`...)
		for i, p := range s.Protocols {
			if i > 0 {
				b = append(b, ',')
			}
			b = jcsString(b, p)
		}
		b = append(b, ']')
		if s.SrcPort != nil {
			b = strconv.AppendInt(append(b, `,"src_port":`...), int64(*s.SrcPort), 10)
		}
		if s.SrcRef != "" {
			b = jcsString(append(b, `,"src_ref":`...), s.SrcRef)
		}
		return string(append(b, '}'))
	}
	return jcsObject("value", s.Value)
}

func (e *encoder) vulnerability(v gateway.Vulnerability) error {
	cve := strings.ToUpper(strings.TrimSpace(v.CVE))
	if cve == "" || e.cves[cve] {
		return nil
	}
	e.cves[cve] = true
	o := vulnerabilityObject{
		common:             e.common("vulnerability", e.derived("vulnerability", cve)),
		Name:               cve,
		ExternalReferences: []externalRef{{SourceName: "cve", ExternalID: cve}},
		ObjectMarkingRefs:  e.marking,
		XSchakelCVSS:       v.CVSS,
		XSchakelProducts:   nonEmpty(v.Products),
	}
	return e.add(o.ID, o.Type, o.Modified, o)
}

// custom writes an indicator STIX has no observable for, when it is not for
// detection, as Schakel's own x-schakel-observable object.
func (e *encoder) custom(ind gateway.Indicator) error {
	id := ind.Attributes[AttrID]
	if _, ok := idUUID(id, customObservable); !ok || e.emitted[id] {
		id = e.derived(customObservable, string(ind.Type), ind.Value)
	}
	o := customObservableObject{
		common:            e.common(customObservable, id),
		Description:       ind.Comment,
		Value:             ind.Value,
		XSchakelType:      string(ind.Type),
		ObjectMarkingRefs: e.marking,
	}
	for k, v := range ind.Attributes {
		if k == AttrID {
			continue
		}
		if o.XSchakelAttributes == nil {
			o.XSchakelAttributes = map[string]string{}
		}
		o.XSchakelAttributes[k] = v
	}
	if !ind.Observed.IsZero() {
		o.XSchakelObserved = stixTime(ind.Observed)
	}
	return e.add(o.ID, o.Type, o.Modified, o)
}
