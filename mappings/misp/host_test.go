package misp

import (
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

// A reported host (direction source) becomes an ip-port object with
// ip-src and src-port, the row's counterpart as ip-dst/dst-port, and every
// other column in the comment; without direction the default stays ip-dst.
func TestEncodeSourceHost(t *testing.T) {
	ev := &gateway.Event{
		ID: "report-1", Kind: gateway.KindNotification, Title: "event4_sinkhole (2026-11-20)", TLP: gateway.TLPAmber,
		Modified: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		Indicators: []gateway.Indicator{
			{Type: gateway.TypeIPv4, Value: "192.0.2.10", Port: 49152, ASN: 64500, Attributes: map[string]string{
				gateway.AttrDirection: gateway.DirectionSource, "dst_ip": "198.51.100.1", "dst_port": "80",
				"infection": "qakbot", "report_type": "event4_sinkhole",
			}},
			{Type: gateway.TypeIPv4, Value: "203.0.113.5", Port: 443},
		},
	}
	e, err := EncodeEvent(ev, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	checkCategories(t, e)
	if len(e.Object) != 1 || e.Object[0].Name != "ip-port" {
		t.Fatalf("objects %+v, want one ip-port", e.Object)
	}
	got := map[string]string{}
	for _, a := range e.Object[0].Attribute {
		got[a.ObjectRelation] = a.Type + "=" + a.Value
	}
	want := map[string]string{"ip-src": "ip-src=192.0.2.10", "src-port": "port=49152", "ip-dst": "ip-dst=198.51.100.1", "dst-port": "port=80"}
	for rel, v := range want {
		if got[rel] != v {
			t.Errorf("relation %s = %q, want %q (all %v)", rel, got[rel], v, got)
		}
	}
	if c := e.Object[0].Comment; c != "asn: 64500; infection: qakbot; report_type: event4_sinkhole" {
		t.Errorf("comment %q", c)
	}
	if len(e.Attribute) != 1 || e.Attribute[0].Type != "ip-dst|port" {
		t.Errorf("attributes %+v, want the undirected address as ip-dst|port", e.Attribute)
	}
	if e.AttributeCount != "5" {
		t.Errorf("attribute_count %s, want 5", e.AttributeCount)
	}
}

// Remediations are course-of-action objects, references link attributes.
func TestEncodeAdvice(t *testing.T) {
	ev := &gateway.Event{
		ID: "adv-1", Kind: gateway.KindAdvisory, Title: "Advisory", TLP: gateway.TLPClear,
		Modified:     time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		Remediations: []gateway.Remediation{{Category: "vendor_fix", Text: "Update to 5.2.", URL: "https://vendor.example/fix", Products: []string{"VPN 5.1"}}},
		References:   []gateway.Reference{{URL: "https://cert.example/adv-1", Summary: "Advisory"}},
	}
	e, err := EncodeEvent(ev, testOrg)
	if err != nil {
		t.Fatal(err)
	}
	checkCategories(t, e)
	if len(e.Object) != 1 || e.Object[0].Name != "course-of-action" || e.Object[0].Comment != "Products: VPN 5.1" {
		t.Fatalf("objects %+v", e.Object)
	}
	var rels []string
	for _, a := range e.Object[0].Attribute {
		rels = append(rels, a.ObjectRelation+"="+a.Value)
	}
	if strings.Join(rels, ";") != "name=vendor_fix;description=Update to 5.2.;link=https://vendor.example/fix" {
		t.Errorf("course-of-action attributes %q", rels)
	}
	if len(e.Attribute) != 1 || e.Attribute[0].Type != "link" || e.Attribute[0].Value != "https://cert.example/adv-1" || e.Attribute[0].Comment != "Advisory" {
		t.Errorf("attributes %+v", e.Attribute)
	}
}
