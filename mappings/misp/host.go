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
