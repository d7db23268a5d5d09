package stix

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// indicator maps an indicator SDO: a STIX pattern made of equality tests
// becomes typed indicators (one per OR branch); anything else is kept whole
// as one "other" indicator with the pattern in attributes.
func (d *decoder) indicator(b *builder, o *object) {
	if b.seen[o.ID] {
		return
	}
	b.seen[o.ID] = true
	if o.Pattern == "" {
		d.fail(o.ptr+"/pattern", "pattern is missing")
		return
	}
	if len(o.Pattern) > MaxPatternBytes {
		d.fail(o.ptr+"/pattern", "pattern is %d bytes long; the limit is %d", len(o.Pattern), MaxPatternBytes)
		return
	}
	if !utf8.ValidString(o.Pattern) {
		d.fail(o.ptr+"/pattern", "pattern is not valid UTF-8")
		return
	}
	base := gateway.Indicator{Detect: true, Comment: o.Description}
	base.Observed = d.time(o, "valid_from", o.ValidFrom)
	attrs := map[string]string{}
	for k, v := range o.XSchakelAttributes {
		attrs[k] = v
	}
	attrs[AttrID] = o.ID
	if n := strings.TrimSpace(o.Name); n != "" {
		attrs[AttrName] = n
	}
	if len(o.IndicatorTypes) > 0 {
		attrs[AttrIndicatorTypes] = strings.Join(o.IndicatorTypes, ",")
	}
	if len(o.Labels) > 0 {
		attrs[AttrLabels] = strings.Join(o.Labels, ", ")
	}
	if o.ValidUntil != "" {
		attrs[AttrValidUntil] = o.ValidUntil
	}
	// The source's version, given back while the content is unchanged.
	// The pattern text goes on the first indicator only: a long OR of
	// many branches would otherwise repeat it for every branch.
	if c, ok := sourceTime(o.Created); ok {
		attrs[AttrCreated] = c
		attrs[AttrModified] = c
		if m, ok := sourceTime(o.Modified); ok {
			attrs[AttrModified] = m
		}
	}
	if o.CreatedByRef != "" {
		attrs[AttrCreatedByRef] = o.CreatedByRef
	}
	var own tlpAcc
	d.addObject(&own, o)
	if own.marked {
		attrs[AttrSourceTLP] = string(own.tlp)
	}
	var statements []string
	for _, id := range o.ObjectMarkingRefs {
		if _, tlp := d.markingTLP(id); !tlp && strings.HasPrefix(id, "marking-definition--") && !strings.Contains(id, ",") {
			statements = append(statements, id)
		}
	}
	if len(statements) > 0 {
		attrs[AttrMarkingRefs] = strings.Join(statements, ",")
	}

	var inds []gateway.Indicator
	if pt := strings.ToLower(o.PatternType); pt == "" || pt == "stix" {
		alts, ok, err := alternatives(o.Pattern)
		if err != nil {
			d.fail(o.ptr+"/pattern", "unreadable STIX pattern, kept as other: %v", err)
		}
		if ok {
			inds = mapAlternatives(alts)
		}
	} else {
		attrs[AttrPatternType] = o.PatternType
	}
	if inds == nil {
		inds = []gateway.Indicator{{Type: gateway.TypeOther, Value: otherValue(o.Pattern), Attributes: map[string]string{AttrPattern: o.Pattern}}}
	}
	parts := make([]string, 0, len(inds))
	for i := range inds {
		ind := &inds[i]
		ind.Detect, ind.Comment, ind.Observed = base.Detect, base.Comment, base.Observed
		ind.Attributes = mergeAttrs(attrs, ind.Attributes)
		parts = append(parts, patternPart(*ind))
	}
	digest := contentDigest(inds, parts)
	inds[0].Attributes[AttrSourcePattern] = o.Pattern
	for _, ind := range inds {
		ind.Attributes[AttrContentDigest] = digest
		if d.add(b, ind) {
			o.used = true
		}
	}
}

// contentDigest names what an indicator object says, as Encode writes it
// from the canonical indicators of one pattern: pattern type, the set of
// observation expressions, and the properties taken from the first
// indicator. Decode records it; Encode compares it to decide whether the
// object is still the source's version.
func contentDigest(members []gateway.Indicator, parts []string) string {
	parts = slices.Clone(parts)
	slices.Sort(parts)
	parts = slices.Compact(parts)
	first := members[0].Attributes
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	field(strings.ToLower(first[AttrPatternType]))
	field(strconv.Itoa(len(parts)))
	for _, p := range parts {
		field(p)
	}
	for _, k := range []string{AttrName, AttrIndicatorTypes, AttrLabels, AttrValidUntil} {
		field(first[k])
	}
	extra := extraAttrs(first)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k)
		field(extra[k])
	}
	var comment string
	var observed time.Time
	for _, m := range members {
		if comment == "" {
			comment = m.Comment
		}
		if !m.Observed.IsZero() && (observed.IsZero() || m.Observed.Before(observed)) {
			observed = m.Observed
		}
	}
	field(comment)
	field(observed.UTC().Format(time.RFC3339Nano))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:15])
}

// otherValue is the value of an indicator kept as a whole pattern: the
// pattern itself, shortened to what normalisation accepts (the attribute
// keeps it whole).
func otherValue(p string) string {
	if len(p) <= normalize.MaxValueBytes {
		return p
	}
	cut := normalize.MaxValueBytes - len("…")
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut] + "…"
}

func mergeAttrs(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// mapAlternatives maps each OR branch; nil when any branch is not one of
// the recognised forms (then the whole pattern is kept).
func mapAlternatives(alts [][]comparison) []gateway.Indicator {
	out := make([]gateway.Indicator, 0, len(alts))
	for _, alt := range alts {
		var ind gateway.Indicator
		var ok bool
		if len(alt) == 1 {
			ind, ok = single(alt[0])
		} else {
			ind, ok = networkTraffic(alt)
		}
		if !ok {
			return nil
		}
		out = append(out, ind)
	}
	return out
}

// hashTypes maps a file hash name, upper-cased and without dashes.
var hashTypes = map[string]gateway.IndicatorType{
	"MD5": gateway.TypeMD5, "SHA1": gateway.TypeSHA1, "SHA256": gateway.TypeSHA256, "SHA512": gateway.TypeSHA512,
}

func hashType(name string) (gateway.IndicatorType, bool) {
	name = strings.Trim(name, "'") // a path spells SHA-256 quoted
	t, ok := hashTypes[strings.ReplaceAll(strings.ToUpper(name), "-", "")]
	return t, ok
}

// single maps one equality test.
func single(c comparison) (gateway.Indicator, bool) {
	str := func(t gateway.IndicatorType) (gateway.Indicator, bool) {
		if c.IsNum {
			return gateway.Indicator{}, false
		}
		return gateway.Indicator{Type: t, Value: c.Str}, true
	}
	switch c.Object {
	case "ipv4-addr", "ipv6-addr":
		if c.Path != "value" {
			return gateway.Indicator{}, false
		}
		t := gateway.TypeIPv4
		if c.Object == "ipv6-addr" {
			t = gateway.TypeIPv6
		}
		if strings.Contains(c.Str, "/") {
			t = gateway.TypeCIDR
		}
		return str(t)
	case "domain-name", "url", "email-addr":
		if c.Path != "value" {
			return gateway.Indicator{}, false
		}
		return str(map[string]gateway.IndicatorType{"domain-name": gateway.TypeDomain, "url": gateway.TypeURL, "email-addr": gateway.TypeEmail}[c.Object])
	case "file":
		if c.Path == "name" {
			return str(gateway.TypeFilename)
		}
		if h, ok := strings.CutPrefix(c.Path, "hashes."); ok {
			if t, ok := hashType(h); ok {
				return str(t)
			}
		}
	case "mutex":
		if c.Path == "name" {
			return str(gateway.TypeMutex)
		}
	case "autonomous-system":
		if c.Path != "number" {
			return gateway.Indicator{}, false
		}
		n, ok := c.Num, c.IsNum
		if !ok {
			v, err := strconv.ParseInt(strings.TrimSpace(c.Str), 10, 64)
			n, ok = v, err == nil
		}
		if !ok || n <= 0 || n > 1<<32-1 {
			return gateway.Indicator{}, false
		}
		return gateway.Indicator{Type: gateway.TypeASN, Value: "AS" + strconv.FormatInt(n, 10), ASN: n}, true
	case "x509-certificate":
		// No canonical type for certificate fingerprints: keep the test
		// itself, so it can never be mistaken for a file hash.
		if strings.HasPrefix(c.Path, "hashes.") && !c.IsNum {
			p := render([]comparison{c})
			return gateway.Indicator{Type: gateway.TypeOther, Value: p, Attributes: map[string]string{AttrPattern: p}}, true
		}
	default:
		if t, ok := strings.CutPrefix(c.Object, "x-schakel-"); ok && c.Path == "value" {
			if it := gateway.IndicatorType(t); it.Valid() {
				return str(it)
			}
		}
	}
	return gateway.Indicator{}, false
}

// networkTraffic reads the address-and-port form MISP writes for ip-dst,
// ip-src and their |port variants:
// [network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = 'V' AND network-traffic:dst_port = P].
func networkTraffic(alt []comparison) (gateway.Indicator, bool) {
	var side, value, typ string
	var port int64 = -1
	var haveValue bool
	for _, c := range alt {
		if c.Object != "network-traffic" {
			return gateway.Indicator{}, false
		}
		s, prop, _ := strings.Cut(c.Path, "_")
		if s != "dst" && s != "src" || (side != "" && s != side) {
			return gateway.Indicator{}, false
		}
		side = s
		switch prop {
		case "ref.value":
			if haveValue || c.IsNum {
				return gateway.Indicator{}, false
			}
			value, haveValue = c.Str, true
		case "ref.type":
			if typ != "" || c.IsNum {
				return gateway.Indicator{}, false
			}
			typ = c.Str
		case "port":
			n, ok := c.Num, c.IsNum
			if !ok {
				v, err := strconv.ParseInt(c.Str, 10, 64)
				n, ok = v, err == nil
			}
			if !ok || port >= 0 || n < 0 || n > 65535 {
				return gateway.Indicator{}, false
			}
			port = n
		default:
			return gateway.Indicator{}, false
		}
	}
	if !haveValue {
		return gateway.Indicator{}, false
	}
	var t gateway.IndicatorType
	switch typ {
	case "ipv4-addr":
		t = gateway.TypeIPv4
	case "ipv6-addr":
		t = gateway.TypeIPv6
	case "":
		switch normalize.Infer(value) {
		case gateway.TypeIPv4:
			t = gateway.TypeIPv4
		case gateway.TypeIPv6:
			t = gateway.TypeIPv6
		default:
			return gateway.Indicator{}, false
		}
	default:
		return gateway.Indicator{}, false
	}
	if strings.Contains(value, "/") {
		t = gateway.TypeCIDR
	}
	ind := gateway.Indicator{Type: t, Value: value}
	if port > 0 {
		ind.Port = int(port)
	}
	if side == "src" {
		ind.Attributes = map[string]string{gateway.AttrDirection: gateway.DirectionSource}
	}
	return ind, true
}

// sourceTime is a source timestamp as Encode may write it back: the text
// itself when it is in the form STIX requires, else reformatted.
func sourceTime(s string) (string, bool) {
	t, ok := parseTime(s)
	switch {
	case !ok:
		return "", false
	case stixTimestamp(s):
		return s, true
	}
	return stixTime(t), true
}
