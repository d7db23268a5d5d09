package misp

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// Counterpart columns of Shadowserver-style rows that name the other side
// of a connection (mappings/csv ShadowserverReports): written as the
// ip-port object's ip-dst and dst-port.
const (
	attrCounterpartIP   = "dst_ip"
	attrCounterpartPort = "dst_port"
)

// sourceHost reports whether ind is a reported host (direction source)
// that did not come from MISP: it is written as an ip-port object.
func sourceHost(p *part) bool {
	if p.keep || !p.primary || p.ind.Attributes[gateway.AttrDirection] != gateway.DirectionSource {
		return false
	}
	return p.ind.Type == gateway.TypeIPv4 || p.ind.Type == gateway.TypeIPv6
}

// hostObject writes a source-side host as a MISP ip-port object (misp-stix
// maps it to network-traffic src_ref/src_port): ip-src, src-port, the
// counterpart's ip-dst and dst-port when the row names one, and every other
// column of the row in the object's comment, "name: value; …", so the
// recipient sees all of the report.
func (b *builder) hostObject(p *part) {
	ind := p.ind
	name := "host|" + string(ind.Type) + "|" + ind.Value + "|" + strconv.Itoa(ind.Port)
	obj := Object{
		UUID: b.uuidFor("object|" + name), Name: "ip-port", MetaCategory: "network",
		Distribution: "5", SharingGroupID: "0", Timestamp: b.ts,
	}
	ip := b.attribute(&part{ind: ind, occ: p.occ, primary: true, typ: "ip-src"}, ind.Value, name)
	ip.ObjectRelation = "ip-src"
	obj.Attribute = append(obj.Attribute, ip)
	add := func(typ, rel, v string) {
		obj.Attribute = append(obj.Attribute, Attribute{
			UUID: b.uuidFor(name + "|" + rel), Type: typ, Category: category(typ), Value: v,
			Distribution: "5", SharingGroupID: "0", Timestamp: b.ts, ObjectRelation: rel,
			DisableCorrelation: typ == "port",
		})
	}
	if ind.Port != 0 {
		add("port", "src-port", strconv.Itoa(ind.Port))
	}
	shown := map[string]bool{gateway.AttrDirection: true, AttrTags: true, AttrToIDs: true, normalize.AttrOriginalType: true}
	if v := ind.Attributes[attrCounterpartIP]; v != "" {
		if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
			add("ip-dst", "ip-dst", a.String())
			shown[attrCounterpartIP] = true
		}
	}
	if v := ind.Attributes[attrCounterpartPort]; v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 65535 {
			add("port", "dst-port", v)
			shown[attrCounterpartPort] = true
		}
	}
	var notes []string
	if ind.ASN > 0 {
		notes = append(notes, "asn: "+strconv.FormatInt(ind.ASN, 10))
	}
	keys := make([]string, 0, len(ind.Attributes))
	for k := range ind.Attributes {
		if !shown[k] && !strings.HasPrefix(k, "misp_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		notes = append(notes, k+": "+ind.Attributes[k])
	}
	obj.Comment = strings.Join(notes, "; ")
	b.count += len(obj.Attribute)
	b.objects = append(b.objects, obj)
}

// defaultIPType is ip-src for a reported host (direction source), else
// MISP's usual ip-dst.
func defaultIPType(ind *gateway.Indicator) string {
	if ind.Attributes[gateway.AttrDirection] == gateway.DirectionSource {
		return "ip-src"
	}
	return "ip-dst"
}

// advice writes the event's remediations as course-of-action objects
// (misp-stix maps them to STIX course-of-action): name = the category,
// description = the text, the url as a link attribute, the products in the
// object's comment. References become link attributes with the summary
// as comment.
func (b *builder) advice(ev *gateway.Event) {
	for i, r := range ev.Remediations {
		name := "remediation|" + strconv.Itoa(i)
		obj := Object{
			UUID: b.uuidFor("object|" + name), Name: "course-of-action", MetaCategory: "misc",
			Distribution: "5", SharingGroupID: "0", Timestamp: b.ts,
		}
		add := func(typ, rel, v string) {
			if v = strings.TrimSpace(v); v == "" {
				return
			}
			obj.Attribute = append(obj.Attribute, Attribute{
				UUID: b.uuidFor(name + "|" + rel), Type: typ, Category: category(typ), Value: v,
				Distribution: "5", SharingGroupID: "0", Timestamp: b.ts, ObjectRelation: rel,
				DisableCorrelation: typ == "text",
			})
		}
		category := r.Category
		if category == "" {
			category = "remediation"
		}
		add("text", "name", category)
		add("text", "description", r.Text)
		add("link", "link", r.URL)
		if len(r.Products) > 0 {
			obj.Comment = "Products: " + strings.Join(r.Products, ", ")
		}
		b.count += len(obj.Attribute)
		b.objects = append(b.objects, obj)
	}
	for _, r := range ev.References {
		if strings.TrimSpace(r.URL) == "" {
			continue
		}
		b.count++
		b.attrs = append(b.attrs, Attribute{
			UUID: b.uuidFor("reference|" + r.URL), Type: "link", Category: category("link"), Value: r.URL,
			Distribution: "5", SharingGroupID: "0", Timestamp: b.ts, Comment: r.Summary, DisableCorrelation: true,
		})
	}
}
