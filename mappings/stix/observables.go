package stix

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// observedData maps the observables of an observed-data: object_refs to
// top-level observables (2.1) or the inline objects dictionary (2.0).
func (d *decoder) observedData(b *builder, o *object) {
	if b.seen[o.ID] {
		return
	}
	b.seen[o.ID] = true
	var scos []*object
	var local map[string]*object
	if len(o.ObjectRefs) > 0 {
		for _, r := range o.ObjectRefs {
			if s, ok := d.byID[r]; ok {
				d.addObject(&b.tlp, s)
				scos = append(scos, s)
			}
		}
	} else if len(o.Objects) > 0 {
		local = d.inline(o)
		keys := make([]string, 0, len(local))
		for k := range local {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			scos = append(scos, local[k])
		}
	}
	n := len(b.ev.Indicators)
	d.observables(b, scos, &observedCtx{o: o, local: local})
	if len(b.ev.Indicators) > n {
		o.yielded = true
	}
}

// inline reads a STIX 2.0 observed-data "objects" dictionary.
func (d *decoder) inline(o *object) map[string]*object {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(o.Objects, &raw); err != nil {
		d.fail(o.ptr+"/objects", "objects must be a dictionary of observables")
		return nil
	}
	out := make(map[string]*object, len(raw))
	for k, r := range raw {
		s := &object{}
		ptr := o.ptr + "/objects/" + escapePointer(k)
		if err := json.Unmarshal(r, s); err != nil {
			d.fail(ptr, "unreadable observable: %s", jsonProblem(err))
			continue
		}
		s.ptr = ptr
		out[k] = s
	}
	return out
}

// observedCtx is the observed-data observables come from; nil for
// observables a container refers to directly.
type observedCtx struct {
	o     *object
	local map[string]*object // 2.0 inline objects by key
}

func (c *observedCtx) resolve(d *decoder, ref string) *object {
	if c != nil && c.local != nil {
		return c.local[ref]
	}
	return d.byID[ref]
}

// observables maps observables to indicators not meant for detection.
// Addresses a network-traffic object points to are mapped once, with its
// port.
func (d *decoder) observables(b *builder, scos []*object, ctx *observedCtx) {
	base := gateway.Indicator{}
	var attrs map[string]string
	if ctx != nil {
		base.Observed = d.time(ctx.o, "first_observed", ctx.o.FirstObserved)
		base.Comment = ctx.o.XSchakelComment
		attrs = mergeAttrs(ctx.o.XSchakelAttributes, map[string]string{AttrObservedDataID: ctx.o.ID})
	}
	viaTraffic := map[*object]bool{}
	for _, s := range scos {
		if s.Type != "network-traffic" {
			continue
		}
		for _, side := range []struct {
			ref  string
			port json.RawMessage
			name string
		}{{s.DstRef, s.DstPort, "dst"}, {s.SrcRef, s.SrcPort, "src"}} {
			if side.ref == "" {
				continue
			}
			addr := ctx.resolve(d, side.ref)
			if addr == nil || (addr.Type != "ipv4-addr" && addr.Type != "ipv6-addr") {
				continue
			}
			viaTraffic[addr] = true
			for _, ind := range d.scoIndicators(addr) {
				if p, ok := port(side.port); ok {
					ind.Port = p
				} else if len(side.port) > 0 {
					d.fail(s.ptr+"/"+side.name+"_port", "%s_port must be a number 0..65535", side.name)
				}
				if side.name == "src" {
					ind.Attributes = mergeAttrs(ind.Attributes, map[string]string{gateway.AttrDirection: gateway.DirectionSource})
				}
				d.addObservable(b, base, attrs, ind)
			}
		}
		if s.ID != "" {
			b.seen[s.ID] = true
		}
	}
	for _, s := range scos {
		if s.Type == "network-traffic" || viaTraffic[s] {
			if s.ID != "" {
				b.seen[s.ID] = true
			}
			continue
		}
		if s.ID != "" {
			if b.seen[s.ID] {
				continue
			}
			b.seen[s.ID] = true
		}
		for _, ind := range d.scoIndicators(s) {
			d.addObservable(b, base, attrs, ind)
		}
	}
}

func (d *decoder) addObservable(b *builder, base gateway.Indicator, attrs map[string]string, ind gateway.Indicator) {
	ind.Observed, ind.Comment = base.Observed, base.Comment
	if len(attrs) > 0 {
		ind.Attributes = mergeAttrs(attrs, ind.Attributes)
	}
	d.add(b, ind)
}

func port(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, false
	}
	return n, true
}

// scoIndicators maps one observable; a file gives one indicator per known
// hash and one for its name.
func (d *decoder) scoIndicators(s *object) []gateway.Indicator {
	value := func(t gateway.IndicatorType) []gateway.Indicator {
		if strings.TrimSpace(s.Value) == "" {
			d.fail(s.ptr+"/value", "value is missing")
			return nil
		}
		if t != gateway.TypeCIDR && strings.Contains(s.Value, "/") && (t == gateway.TypeIPv4 || t == gateway.TypeIPv6) {
			t = gateway.TypeCIDR
		}
		return []gateway.Indicator{{Type: t, Value: s.Value}}
	}
	switch s.Type {
	case "ipv4-addr":
		return value(gateway.TypeIPv4)
	case "ipv6-addr":
		return value(gateway.TypeIPv6)
	case "domain-name":
		return value(gateway.TypeDomain)
	case "url":
		return value(gateway.TypeURL)
	case "email-addr":
		return value(gateway.TypeEmail)
	case "mutex":
		if strings.TrimSpace(s.Name) == "" {
			d.fail(s.ptr+"/name", "name is missing")
			return nil
		}
		return []gateway.Indicator{{Type: gateway.TypeMutex, Value: s.Name}}
	case "autonomous-system":
		n, ok := asNumber(s.Number)
		if !ok {
			d.fail(s.ptr+"/number", "number must be an AS number 1..4294967295")
			return nil
		}
		return []gateway.Indicator{{Type: gateway.TypeASN, Value: "AS" + strconv.FormatInt(n, 10), ASN: n}}
	case "file":
		// One indicator per hash type; of two spellings of one type
		// ("SHA-256", "SHA256") the first in sorted order wins.
		keys := make([]string, 0, len(s.Hashes))
		for k := range s.Hashes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out []gateway.Indicator
		for _, want := range []gateway.IndicatorType{gateway.TypeMD5, gateway.TypeSHA1, gateway.TypeSHA256, gateway.TypeSHA512} {
			for _, k := range keys {
				if t, ok := hashType(k); ok && t == want {
					out = append(out, gateway.Indicator{Type: t, Value: s.Hashes[k]})
					break
				}
			}
		}
		if strings.TrimSpace(s.Name) != "" {
			out = append(out, gateway.Indicator{Type: gateway.TypeFilename, Value: s.Name})
		}
		if len(out) > 1 {
			// Encode puts indicators with the same file id back into one
			// file. The id is the STIX 2.1 §2.9 one (what Encode will give
			// the file), so it does not change on a round trip.
			f := sco{Type: "file"}
			for _, ind := range out {
				if ind.Type == gateway.TypeFilename {
					f.Name = ind.Value
					continue
				}
				if f.Hashes == nil {
					f.Hashes = map[string]string{}
				}
				f.Hashes[hashName(ind.Type)] = strings.ToLower(ind.Value)
			}
			id := scoID("file", idProps(&f))
			for i := range out {
				out[i].Attributes = map[string]string{AttrFileID: id}
			}
		}
		return out
	}
	return nil
}

// asNumber reads an AS number given as a JSON number or a digit string.
func asNumber(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > 1<<32-1 {
		return 0, false
	}
	return n, true
}

// vulnerability adds the CVEs a vulnerability names in its external
// references (or, lacking those, in its name).
func (d *decoder) vulnerability(b *builder, o *object) {
	if b.seen[o.ID] {
		return
	}
	b.seen[o.ID] = true
	var cves []string
	for _, r := range o.ExternalReferences {
		if strings.EqualFold(r.SourceName, "cve") && r.ExternalID != "" {
			cves = append(cves, r.ExternalID)
		}
	}
	if len(cves) == 0 {
		if _, err := normalize.CVE(o.Name); err == nil {
			cves = append(cves, o.Name)
		}
	}
	for _, c := range cves {
		key := strings.ToUpper(strings.TrimSpace(c))
		if b.cves[key] {
			continue
		}
		b.cves[key] = true
		v := gateway.Vulnerability{CVE: c, Products: o.XSchakelProducts}
		if o.XSchakelCVSS != nil {
			v.CVSS = *o.XSchakelCVSS
		}
		b.ev.Vulnerabilities = append(b.ev.Vulnerabilities, v)
	}
}

// custom maps Schakel's own x-schakel-observable.
func (d *decoder) custom(b *builder, o *object) {
	if b.seen[o.ID] {
		return
	}
	b.seen[o.ID] = true
	t := gateway.IndicatorType(o.XSchakelType)
	if !t.Valid() {
		d.fail(o.ptr+"/x_schakel_type", "unknown indicator type %q", o.XSchakelType)
		return
	}
	ind := gateway.Indicator{Type: t, Value: o.Value, Comment: o.Description}
	ind.Observed = d.time(o, "x_schakel_observed", o.XSchakelObserved)
	ind.Attributes = mergeAttrs(o.XSchakelAttributes, map[string]string{AttrID: o.ID})
	d.add(b, ind)
}
