package misp

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// path is a JSON pointer built only when a problem needs it: base, then
// "/" and idx when idx >= 0.
type path struct {
	base string
	idx  int
}

func (p path) String() string {
	if p.idx < 0 {
		return p.base
	}
	return p.base + "/" + strconv.Itoa(p.idx)
}

func (p path) at(suffix string) string { return p.String() + suffix }

// objInfo is the object an attribute belongs to.
type objInfo struct {
	name, uuid string
	ext        int // index in the pass-through's objects; -1 for none
}

func (st *eventState) object(ptr string, b []byte) {
	var o rawObject
	if b[0] != '{' || json.Unmarshal(b, &o) != nil {
		st.d.errorf(ptr, "object must be a JSON object")
		return
	}
	if u := strings.ToLower(strings.TrimSpace(o.UUID.s)); u != "" {
		st.seen[u] = true
	}
	if o.Deleted.v {
		return
	}
	st.distribution(path{ptr, -1}, "/distribution", o.Distribution, true)
	oi := &objInfo{name: strings.TrimSpace(o.Name.s), uuid: strings.TrimSpace(o.UUID.s), ext: st.passObject(ptr, &o)}
	st.attributes(ptr+"/Attribute", o.Attribute, oi)
}

func (st *eventState) attributes(field string, l jlist, oi *objInfo) {
	if l.bad {
		st.d.errorf(field, "Attribute must be an array")
		return
	}
	for i, b := range l.elems {
		st.attrs++
		if st.attrs > maxAttributes || st.d.docAttrs >= maxDocAttributes || len(st.ev.Indicators) >= maxAttributes {
			st.unmapped++
			continue
		}
		st.d.docAttrs++
		st.attribute(path{field, i}, b, oi)
	}
	if extra := l.total - len(l.elems); extra > 0 {
		st.attrs += extra
		st.unmapped += extra
	}
}

func (st *eventState) attribute(p path, b []byte, oi *objInfo) {
	var a rawAttr
	if b[0] != '{' || json.Unmarshal(b, &a) != nil {
		st.d.errorf(p.String(), "attribute must be a JSON object, got %s", jsonKind(b))
		return
	}
	if u := strings.ToLower(strings.TrimSpace(a.UUID.s)); u != "" {
		st.seen[u] = true
	}
	if a.Deleted.v {
		return
	}
	mispType := strings.TrimSpace(a.Type.s)
	if mispType == "" {
		st.d.errorf(p.at("/type"), "attribute type is missing")
		return
	}
	if a.Value.bad {
		st.d.errorf(p.at("/value"), "attribute value must be a string")
		return
	}
	value := a.Value.s
	if !a.Value.set && a.Value1.set {
		// MISP's internal split of composite values.
		value = a.Value1.s
		if a.Value2.s != "" {
			value += "|" + a.Value2.s
		}
	}
	if strings.TrimSpace(value) == "" {
		st.d.errorf(p.at("/value"), "attribute value is empty")
		return
	}
	st.distribution(p, "/distribution", a.Distribution, true)

	var tags []string
	st.tags(p, "/Tag", a.Tag, &tags)
	st.tags(p, "/AttributeTag", a.AttributeTag, &tags)

	base := gateway.Indicator{Detect: a.ToIDs.v, Comment: a.Comment.s}
	if a.ToIDs.bad {
		st.d.errorf(p.at("/to_ids"), "to_ids must be true, false, 1 or 0")
	}
	if fs := strings.TrimSpace(a.FirstSeen.s); fs != "" {
		if t, ok := parseSeen(fs); ok {
			base.Observed = t
		} else {
			st.d.errorf(p.at("/first_seen"), "first_seen %q is not an ISO 8601 time", shorten(fs))
		}
	}
	attrs := map[string]string{AttrType: mispType}
	if c := strings.TrimSpace(a.Category.s); c != "" {
		attrs[AttrCategory] = c
	}
	if u := strings.TrimSpace(a.UUID.s); u != "" {
		attrs[AttrUUID] = strings.ToLower(u)
	}
	if oi != nil {
		if oi.name != "" {
			attrs[AttrObject] = oi.name
		}
		if oi.uuid != "" {
			attrs[AttrObjectUUID] = strings.ToLower(oi.uuid)
		}
		if r := strings.TrimSpace(a.ObjectRelation.s); r != "" {
			attrs[AttrObjectRelation] = r
		}
	}
	if len(tags) > 0 {
		attrs[AttrTags] = JoinTags(tags)
	}
	n := len(st.ev.Indicators)
	st.mapValue(p, mispType, value, base, attrs)
	if len(st.ev.Indicators) > n {
		st.passAttribute(p, &a, oi)
	}
}

// mapValue applies the type table to one attribute.
func (st *eventState) mapValue(p path, mispType, value string, base gateway.Indicator, attrs map[string]string) {
	shared := false
	add := func(t gateway.IndicatorType, v string, port int, filename string) {
		ind := base
		ind.Type, ind.Value, ind.Port = t, v, port
		// The first indicator takes attrs; the second half of a split
		// attribute gets its own copy, without the first half's file name.
		ind.Attributes = attrs
		if shared {
			ind.Attributes = maps.Clone(attrs)
			delete(ind.Attributes, AttrFilename)
		}
		shared = true
		if filename != "" {
			ind.Attributes[AttrFilename] = filename
		}
		st.ev.Indicators = append(st.ev.Indicators, ind)
	}
	other := func() { add(gateway.TypeOther, value, 0, "") }

	r := typeRules[mispType]
	switch r.h {
	case hOther:
		other()
	case hSimple:
		add(r.canonical, value, 0, "")
	case hIP:
		add(ipType(value), value, 0, "")
	case hIPPort:
		ip, port, ok := splitIPPort(value)
		if !ok {
			st.d.errorf(p.at("/value"), "%s value %q needs the form ip|port", mispType, shorten(value))
			other()
			return
		}
		n, err := parsePort(port)
		if err != nil {
			st.d.errorf(p.at("/value"), "%s: %v; the address is kept without it", mispType, err)
		}
		add(ipType(ip), ip, n, "")
	case hHostPort:
		host, port, ok := cutLast(value, "|")
		if !ok {
			host, port, ok = cutLast(value, ":")
		}
		if !ok || strings.TrimSpace(host) == "" {
			st.d.errorf(p.at("/value"), "hostname|port value %q needs the form hostname|port", shorten(value))
			other()
			return
		}
		n, err := parsePort(port)
		if err != nil {
			st.d.errorf(p.at("/value"), "hostname|port: %v; the hostname is kept without it", err)
		}
		add(gateway.TypeHostname, host, n, "")
	case hDomainIP:
		domain, ip, ok := strings.Cut(value, "|")
		if !ok || strings.TrimSpace(domain) == "" || strings.TrimSpace(ip) == "" {
			st.d.errorf(p.at("/value"), "domain|ip value %q needs the form domain|ip", shorten(value))
			other()
			return
		}
		if st.room(2) {
			add(gateway.TypeDomain, domain, 0, "")
			add(ipType(ip), ip, 0, "")
		}
	case hFileHash:
		name, hash, ok := cutLast(value, "|")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(hash) == "" {
			st.d.errorf(p.at("/value"), "%s value %q needs the form filename|hash", mispType, shorten(value))
			other()
			return
		}
		if st.room(2) {
			add(r.canonical, hash, 0, name)
			add(gateway.TypeFilename, name, 0, "")
		}
	case hURI:
		if normalize.Infer(normalize.Refang(value)) == gateway.TypeURL {
			add(gateway.TypeURL, value, 0, "")
		} else {
			other() // a path without scheme and host
		}
	case hVuln:
		cve, err := normalize.CVE(value)
		if err != nil {
			st.d.errorf(p.at("/value"), "vulnerability: %v; kept as an other indicator", err)
			other()
			return
		}
		if !st.vulns[cve] {
			st.vulns[cve] = true
			st.ev.Vulnerabilities = append(st.ev.Vulnerabilities, gateway.Vulnerability{CVE: cve})
		}
	}
}

// room reports whether n more indicators fit; when they do not the
// attribute counts as unmapped.
func (st *eventState) room(n int) bool {
	if len(st.ev.Indicators)+n > maxAttributes {
		st.unmapped++
		return false
	}
	return true
}

// ipType picks ipv4, ipv6 or cidr by the (possibly defanged) value; the
// normaliser checks it.
func ipType(v string) gateway.IndicatorType {
	v = normalize.Refang(v)
	switch {
	case strings.Contains(v, "/"):
		return gateway.TypeCIDR
	case strings.Contains(v, ":"):
		return gateway.TypeIPv6
	}
	return gateway.TypeIPv4
}

// splitIPPort reads MISP's ip|port and the forms PyMISP users send:
// 192.0.2.1:80, [2001:db8::1]:80.
func splitIPPort(v string) (ip, port string, ok bool) {
	if ip, port, ok = cutLast(v, "|"); ok {
		return ip, port, ip != ""
	}
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "[") {
		if end := strings.Index(v, "]:"); end > 0 {
			return v[1:end], v[end+2:], true
		}
		return "", "", false
	}
	if strings.Count(v, ":") == 1 {
		ip, port, _ = strings.Cut(v, ":")
		return ip, port, ip != ""
	}
	return "", "", false
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func parsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number 0..65535", shorten(s))
	}
	return n, nil
}

// mergeDuplicates folds indicators that the normaliser would merge (same
// type, value and port after normalisation) into the first one, keeping
// the others' MISP identity in AttrDuplicates so that Encode can give MISP
// back every attribute. Detect is ORed as the normaliser would.
func mergeDuplicates(inds []gateway.Indicator) []gateway.Indicator {
	if len(inds) < 2 {
		return inds
	}
	type key struct {
		t    gateway.IndicatorType
		v    string
		port int
	}
	seen := make(map[key]int, len(inds))
	dups := map[int][]occurrence{}
	out := inds[:0]
	for _, ind := range inds {
		n, err := normalize.Indicator(ind)
		if err != nil {
			out = append(out, ind) // the normaliser will reject it
			continue
		}
		k := key{n.Type, n.Value, n.Port}
		j, ok := seen[k]
		if !ok {
			seen[k] = len(out)
			out = append(out, ind)
			continue
		}
		dups[j] = append(dups[j], occurrenceOf(&ind))
		if ind.Detect && !out[j].Detect {
			out[j].Detect = true
			out[j].Attributes[AttrToIDs] = "false"
		}
	}
	for j, list := range dups {
		b, err := json.Marshal(list)
		if err == nil {
			out[j].Attributes[AttrDuplicates] = string(b)
		}
	}
	clear(inds[len(out):])
	return out
}

// occurrence is one MISP attribute's identity, as kept in AttrDuplicates.
type occurrence struct {
	UUID       string `json:"uuid,omitempty"`
	Type       string `json:"type,omitempty"`
	Category   string `json:"category,omitempty"`
	Object     string `json:"object,omitempty"`
	ObjectUUID string `json:"object_uuid,omitempty"`
	Relation   string `json:"object_relation,omitempty"`
	ToIDs      bool   `json:"to_ids,omitempty"`
	Comment    string `json:"comment,omitempty"`
	FirstSeen  string `json:"first_seen,omitempty"`
	Tags       string `json:"tags,omitempty"`
	Filename   string `json:"filename,omitempty"`
}

func occurrenceOf(ind *gateway.Indicator) occurrence {
	a := ind.Attributes
	o := occurrence{
		UUID: a[AttrUUID], Type: a[AttrType], Category: a[AttrCategory],
		Object: a[AttrObject], ObjectUUID: a[AttrObjectUUID], Relation: a[AttrObjectRelation],
		ToIDs: ind.Detect, Comment: ind.Comment, Tags: a[AttrTags], Filename: a[AttrFilename],
	}
	if !ind.Observed.IsZero() {
		o.FirstSeen = ind.Observed.Format(time.RFC3339Nano)
	}
	return o
}
