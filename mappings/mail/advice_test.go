package mail

import (
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

// "What to do" comes before the description and the indicators in both
// parts; references follow the indicators.
func TestWhatToDoFirst(t *testing.T) {
	ev := sampleEvent()
	ev.Remediations = []gateway.Remediation{
		{Category: "vendor_fix", Text: "Installeer versie 5.2.1.", URL: "https://vendor.example/fix", Products: []string{"Example VPN < 5.2.1"}},
		{Category: "workaround", Text: "Blokkeer poort 8443."},
	}
	ev.References = []gateway.Reference{{URL: "https://cert.example/adv-1", Summary: "Advisory"}}
	data, err := Encode(ev, envelope())
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, data)
	for name, body := range map[string]string{"plain": p.plain, "html": p.html} {
		what := strings.Index(body, "What to do")
		fix := strings.Index(body, "Vendor fix: Installeer versie 5.2.1.")
		work := strings.Index(body, "Workaround: Blokkeer poort 8443.")
		desc := strings.Index(body, "Wij zien actief misbruik")
		inds := strings.Index(body, "Indicators (defanged)")
		refs := strings.Index(body, "Advisory: https://cert.example/adv-1")
		if what < 0 || fix < what || work < fix || desc < work || inds < desc || refs < inds {
			t.Errorf("%s: what to do at %d, fix %d, workaround %d, description %d, indicators %d, references %d:\n%s", name, what, fix, work, desc, inds, refs, body)
		}
		if !strings.Contains(body, "Applies to: Example VPN &lt; 5.2.1") && !strings.Contains(body, "Applies to: Example VPN < 5.2.1") {
			t.Errorf("%s: products missing", name)
		}
	}
}

// Indicator attributes (a Shadowserver row's columns) are shown in a
// table, defanged where they name hosts; mapping bookkeeping is not.
func TestIndicatorColumns(t *testing.T) {
	ev := sampleEvent()
	ev.Indicators = []gateway.Indicator{{
		Type: gateway.TypeIPv4, Value: "192.0.2.10", Port: 49152, ASN: 64500, Observed: time.Date(2026, 11, 20, 0, 1, 2, 0, time.UTC),
		Attributes: map[string]string{
			gateway.AttrDirection: gateway.DirectionSource, "report_type": "event4_sinkhole_http", "dst_ip": "198.51.100.1",
			"http_host": "c2.example.net", "version": "15.2.721", "infection": "qakbot", "misp_uuid": "x",
		},
	}}
	data, err := Encode(ev, envelope())
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, data)
	for _, want := range []string{"direction: source", "report_type: event4_sinkhole_http", "dst_ip: 198.51.100[.]1", "http_host: c2[.]example[.]net", "version: 15.2.721", "infection: qakbot", "asn: AS64500", "observed: 2026-11-20 00:01:02 UTC", "port: 49152"} {
		if !strings.Contains(p.plain, want) {
			t.Errorf("plain part lacks %q:\n%s", want, p.plain)
		}
	}
	for _, want := range []string{"<th>direction</th>", "<td><code>source</code></td>", "<td><code>c2[.]example[.]net</code></td>"} {
		if !strings.Contains(p.html, want) {
			t.Errorf("HTML part lacks %q", want)
		}
	}
	if strings.Contains(p.plain, "misp_uuid") {
		t.Error("bookkeeping attribute shown")
	}
}
