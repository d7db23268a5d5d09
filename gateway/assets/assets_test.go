package assets

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// registry is a small constituent set with every situation the rules name:
// an ISP block holding a customer block, one prefix at two constituents,
// non-canonical spellings, an IPv4-mapped prefix, ASNs and nested domains.
func registry() []gateway.Constituent {
	return []gateway.Constituent{
		{ID: "isp", Assets: gateway.Assets{
			Prefixes: []string{"10.1.77.3/16", "2001:DB8::/32"}, // not masked, upper case
			ASNs:     []int64{64500},
			Domains:  []string{"Example.NL."},
		}},
		{ID: "customer", Assets: gateway.Assets{
			Prefixes: []string{"10.1.2.0/24", "2001:db8:1::/48"},
			Domains:  []string{"*.shop.example.nl"},
		}},
		{ID: "twin-b", Assets: gateway.Assets{
			Prefixes: []string{"192.0.2.0/24"},
			ASNs:     []int64{64510},
			Domains:  []string{".shared.example"},
		}},
		{ID: "twin-a", Assets: gateway.Assets{
			Prefixes: []string{"192.0.2.0/24", "192.0.2.0/24"}, // listed twice: still one owner
			ASNs:     []int64{64510},
			Domains:  []string{"shared.example"},
		}},
		{ID: "mapped", Assets: gateway.Assets{
			Prefixes: []string{"::ffff:198.51.100.0/120"}, // = 198.51.100.0/24
		}},
		{ID: "host", Assets: gateway.Assets{
			Prefixes: []string{"203.0.113.7", "2001:db8:1:2::5"}, // bare addresses = one host
			Domains:  []string{"a.example"},
		}},
		{ID: "asn-only", Assets: gateway.Assets{ASNs: []int64{64501, 4200000000}}},
		{ID: "top", Assets: gateway.Assets{Prefixes: []string{"255.255.255.0/24", "ffff::/16"}}},
	}
}

func TestOwners(t *testing.T) {
	m, err := Build(registry())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	tests := []struct {
		name string
		ind  gateway.Indicator
		want []string
	}{
		// Longest prefix.
		{"address in customer /24 inside ISP /16", gateway.Indicator{Type: "ipv4", Value: "10.1.2.3"}, []string{"customer"}},
		{"first address of the /24", gateway.Indicator{Type: "ipv4", Value: "10.1.2.0"}, []string{"customer"}},
		{"last address of the /24", gateway.Indicator{Type: "ipv4", Value: "10.1.2.255"}, []string{"customer"}},
		{"just before the /24", gateway.Indicator{Type: "ipv4", Value: "10.1.1.255"}, []string{"isp"}},
		{"just after the /24", gateway.Indicator{Type: "ipv4", Value: "10.1.3.0"}, []string{"isp"}},
		{"elsewhere in the /16", gateway.Indicator{Type: "ipv4", Value: "10.1.200.9"}, []string{"isp"}},
		{"first address of the /16", gateway.Indicator{Type: "ipv4", Value: "10.1.0.0"}, []string{"isp"}},
		{"last address of the /16", gateway.Indicator{Type: "ipv4", Value: "10.1.255.255"}, []string{"isp"}},
		{"outside every prefix", gateway.Indicator{Type: "ipv4", Value: "10.2.0.0"}, nil},
		{"same prefix at two constituents", gateway.Indicator{Type: "ipv4", Value: "192.0.2.77"}, []string{"twin-a", "twin-b"}},
		{"bare address registered as host", gateway.Indicator{Type: "ipv4", Value: "203.0.113.7"}, []string{"host"}},
		{"neighbour of the host", gateway.Indicator{Type: "ipv4", Value: "203.0.113.8"}, nil},
		{"top of the IPv4 space", gateway.Indicator{Type: "ipv4", Value: "255.255.255.255"}, []string{"top"}},
		{"bottom of the IPv4 space", gateway.Indicator{Type: "ipv4", Value: "0.0.0.0"}, nil},
		{"ipv6 in customer /48", gateway.Indicator{Type: "ipv6", Value: "2001:db8:1:ffff::1"}, []string{"customer"}},
		{"ipv6 host inside the /48", gateway.Indicator{Type: "ipv6", Value: "2001:db8:1:2::5"}, []string{"host"}},
		{"ipv6 elsewhere in the /32", gateway.Indicator{Type: "ipv6", Value: "2001:db8:2::1"}, []string{"isp"}},
		{"ipv6 outside", gateway.Indicator{Type: "ipv6", Value: "2001:db9::1"}, nil},
		{"top of the IPv6 space", gateway.Indicator{Type: "ipv6", Value: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"top"}},
		{"ipv6 with zone", gateway.Indicator{Type: "ipv6", Value: "2001:db8:1::1%eth0"}, []string{"customer"}},

		// IPv4-mapped IPv6.
		{"mapped address finds the IPv4 prefix", gateway.Indicator{Type: "ipv6", Value: "::ffff:10.1.2.3"}, []string{"customer"}},
		{"mapped prefix registered finds plain IPv4", gateway.Indicator{Type: "ipv4", Value: "198.51.100.20"}, []string{"mapped"}},
		{"mapped prefix registered finds mapped address", gateway.Indicator{Type: "ipv6", Value: "::ffff:198.51.100.20"}, []string{"mapped"}},

		// ASN fallback.
		{"no prefix: owners of the ASN", gateway.Indicator{Type: "ipv4", Value: "100.64.0.1", ASN: 64501}, []string{"asn-only"}},
		{"prefix wins over the ASN", gateway.Indicator{Type: "ipv4", Value: "10.1.2.3", ASN: 64501}, []string{"customer"}},
		{"unknown ASN", gateway.Indicator{Type: "ipv4", Value: "100.64.0.1", ASN: 65000}, nil},
		{"ipv6 ASN fallback", gateway.Indicator{Type: "ipv6", Value: "2001:db9::1", ASN: 64510}, []string{"twin-a", "twin-b"}},

		// cidr: containment, never the prefixes inside the indicator.
		{"cidr inside customer /24", gateway.Indicator{Type: "cidr", Value: "10.1.2.128/25"}, []string{"customer"}},
		{"cidr equal to customer /24", gateway.Indicator{Type: "cidr", Value: "10.1.2.0/24"}, []string{"customer"}},
		{"cidr spanning the /24: the ISP", gateway.Indicator{Type: "cidr", Value: "10.1.0.0/22"}, []string{"isp"}},
		{"cidr wider than everything", gateway.Indicator{Type: "cidr", Value: "10.0.0.0/8"}, nil},
		{"cidr not masked", gateway.Indicator{Type: "cidr", Value: "10.1.2.77/25"}, []string{"customer"}},
		{"cidr ipv6", gateway.Indicator{Type: "cidr", Value: "2001:db8:1:8000::/49"}, []string{"customer"}},
		{"cidr ipv6 wider than the /48", gateway.Indicator{Type: "cidr", Value: "2001:db8::/47"}, []string{"isp"}},
		{"cidr mapped", gateway.Indicator{Type: "cidr", Value: "::ffff:10.1.2.0/120"}, []string{"customer"}},
		{"cidr bare address", gateway.Indicator{Type: "cidr", Value: "10.1.2.3"}, []string{"customer"}},
		{"cidr no ASN fallback", gateway.Indicator{Type: "cidr", Value: "100.64.0.0/24", ASN: 64501}, nil},
		{"cidr junk", gateway.Indicator{Type: "cidr", Value: "10.1.2.0/99"}, nil},

		// Domains on label boundaries.
		{"registered domain itself", gateway.Indicator{Type: "domain", Value: "example.nl"}, []string{"isp"}},
		{"subdomain", gateway.Indicator{Type: "domain", Value: "www.example.nl"}, []string{"isp"}},
		{"longer suffix wins", gateway.Indicator{Type: "hostname", Value: "a.b.shop.example.nl"}, []string{"customer"}},
		{"wildcard entry covers its apex", gateway.Indicator{Type: "domain", Value: "shop.example.nl"}, []string{"customer"}},
		{"not on a label boundary", gateway.Indicator{Type: "domain", Value: "ba.example"}, nil},
		{"a.example owns x.a.example", gateway.Indicator{Type: "hostname", Value: "x.a.example"}, []string{"host"}},
		{"parent of a registered domain", gateway.Indicator{Type: "domain", Value: "example"}, nil},
		{"domain at two constituents", gateway.Indicator{Type: "domain", Value: "x.shared.example"}, []string{"twin-a", "twin-b"}},
		{"trailing dot and upper case", gateway.Indicator{Type: "domain", Value: "WWW.Example.NL."}, []string{"isp"}},
		{"lookalike suffix", gateway.Indicator{Type: "domain", Value: "example.nl.evil"}, nil},

		// URL and e-mail.
		{"url with domain host", gateway.Indicator{Type: "url", Value: "https://login.shop.example.nl/a?b=c"}, []string{"customer"}},
		{"url with port and userinfo", gateway.Indicator{Type: "url", Value: "http://user:pw@www.example.nl:8443/x"}, []string{"isp"}},
		{"url with ipv4 host", gateway.Indicator{Type: "url", Value: "http://10.1.2.3:8080/x"}, []string{"customer"}},
		{"url with bracketed ipv6 host", gateway.Indicator{Type: "url", Value: "http://[2001:db8:1::1]:443/"}, []string{"customer"}},
		{"url with ip host: ASN fallback", gateway.Indicator{Type: "url", Value: "http://100.64.0.1/", ASN: 64501}, []string{"asn-only"}},
		{"url without scheme", gateway.Indicator{Type: "url", Value: "www.example.nl/login"}, []string{"isp"}},
		{"url host is a lookalike in the path", gateway.Indicator{Type: "url", Value: "http://evil.test/www.example.nl"}, nil},
		{"url userinfo is not the host", gateway.Indicator{Type: "url", Value: "http://www.example.nl@evil.test/"}, nil},
		{"email domain part", gateway.Indicator{Type: "email", Value: "ciso@mail.example.nl"}, []string{"isp"}},
		{"email ip literal", gateway.Indicator{Type: "email", Value: "x@[10.1.2.3]"}, []string{"customer"}},
		{"email ipv6 literal", gateway.Indicator{Type: "email", Value: "x@[IPv6:2001:db8:1::1]"}, []string{"customer"}},
		{"email without @", gateway.Indicator{Type: "email", Value: "example.nl"}, nil},

		// ASN indicators.
		{"asn value", gateway.Indicator{Type: "asn", Value: "AS64500"}, []string{"isp"}},
		{"asn value lower case", gateway.Indicator{Type: "asn", Value: "as64501"}, []string{"asn-only"}},
		{"asn value plain number", gateway.Indicator{Type: "asn", Value: "64510"}, []string{"twin-a", "twin-b"}},
		{"asn asdot", gateway.Indicator{Type: "asn", Value: "AS64086.59904"}, []string{"asn-only"}}, // 4200000000
		{"asn field when value is empty", gateway.Indicator{Type: "asn", ASN: 64500}, []string{"isp"}},
		{"asn value junk, field set", gateway.Indicator{Type: "asn", Value: "ASX", ASN: 64500}, []string{"isp"}},
		{"asn too large", gateway.Indicator{Type: "asn", Value: "AS4294967296"}, nil},

		// Types that own nothing, and junk.
		{"hash", gateway.Indicator{Type: "sha256", Value: strings.Repeat("a", 64)}, nil},
		{"cve", gateway.Indicator{Type: "cve", Value: "CVE-2026-1"}, nil},
		{"filename that looks like a domain", gateway.Indicator{Type: "filename", Value: "www.example.nl"}, nil},
		{"ipv4 junk", gateway.Indicator{Type: "ipv4", Value: "10.1.2.300"}, nil},
		{"ipv4 junk with ASN", gateway.Indicator{Type: "ipv4", Value: "not an ip", ASN: 64500}, []string{"isp"}},
		{"empty", gateway.Indicator{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.Owners(&tt.ind)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Owners(%s %q, asn %d) = %q, want %q", tt.ind.Type, tt.ind.Value, tt.ind.ASN, got, tt.want)
			}
			// Normalised values must not allocate; junk, upper case and
			// zones may (parse errors, lower-casing, zone interning).
			mayAlloc := strings.Contains(tt.name, "junk") || strings.ContainsAny(tt.ind.Value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ%")
			if allocs := testing.AllocsPerRun(10, func() { m.Owners(&tt.ind) }); allocs != 0 && !mayAlloc {
				t.Errorf("Owners(%s %q) allocates %.0f times", tt.ind.Type, tt.ind.Value, allocs)
			}
		})
	}
}

func TestOwnersNilAndEmpty(t *testing.T) {
	var nilM *Matcher
	ind := &gateway.Indicator{Type: "ipv4", Value: "10.1.2.3"}
	if got := nilM.Owners(ind); got != nil {
		t.Errorf("nil Matcher: Owners = %v", got)
	}
	if got := nilM.Stats(); got != (Stats{}) {
		t.Errorf("nil Matcher: Stats = %+v", got)
	}
	m, err := Build(nil)
	if err != nil {
		t.Fatalf("Build(nil): %v", err)
	}
	for _, ind := range []*gateway.Indicator{
		ind, {Type: "ipv6", Value: "::1"}, {Type: "cidr", Value: "0.0.0.0/0"}, {Type: "domain", Value: "example.nl"}, {Type: "asn", Value: "AS1"},
	} {
		if got := m.Owners(ind); got != nil {
			t.Errorf("empty Matcher: Owners(%s %q) = %v", ind.Type, ind.Value, got)
		}
	}
	if got := m.Owners(nil); got != nil {
		t.Errorf("Owners(nil) = %v", got)
	}
	if got := m.OwnersOfIP(netip.Addr{}); got != nil {
		t.Errorf("OwnersOfIP(zero) = %v", got)
	}
}

// A prefix that covers the top of the space, nested prefixes that end on the
// same address as their parent, and a one-address prefix at each end.
func TestOwnersOfIPEdges(t *testing.T) {
	cs := []gateway.Constituent{
		{ID: "big", Assets: gateway.Assets{Prefixes: []string{"128.0.0.0/1", "8000::/1"}}},
		{ID: "tail", Assets: gateway.Assets{Prefixes: []string{"255.255.255.128/25", "ffff:ffff:ffff:ffff::/64"}}},
		{ID: "last", Assets: gateway.Assets{Prefixes: []string{"255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}}},
		{ID: "first", Assets: gateway.Assets{Prefixes: []string{"0.0.0.0/32", "::/128"}}},
	}
	m, err := Build(cs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want []string
	}{
		{"0.0.0.0", []string{"first"}},
		{"0.0.0.1", nil},
		{"127.255.255.255", nil},
		{"128.0.0.0", []string{"big"}},
		{"255.255.255.127", []string{"big"}},
		{"255.255.255.128", []string{"tail"}},
		{"255.255.255.254", []string{"tail"}},
		{"255.255.255.255", []string{"last"}},
		{"::", []string{"first"}},
		{"::1", nil},
		{"8000::", []string{"big"}},
		{"ffff:ffff:ffff:fffe:ffff:ffff:ffff:ffff", []string{"big"}},
		{"ffff:ffff:ffff:ffff::", []string{"tail"}},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", []string{"tail"}},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"last"}},
	}
	for _, tt := range tests {
		if got := m.OwnersOfIP(netip.MustParseAddr(tt.addr)); !slices.Equal(got, tt.want) {
			t.Errorf("OwnersOfIP(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestBuildReportsBadEntries(t *testing.T) {
	cs := []gateway.Constituent{
		{ID: "good", Assets: gateway.Assets{Prefixes: []string{"10.0.0.0/8"}}},
		{ID: "bad", Assets: gateway.Assets{
			Prefixes: []string{"192.0.2.0/24", "10.0.0.0/33", "nonsense", "0.0.0.0/0", "fe80::1%eth0", "::/0", ""},
			ASNs:     []int64{64500, 0, -1, 1 << 32},
			Domains:  []string{"ok.example", "", "a..example", "münchen.de", "nl", "exa mple.nl", "*.", strings.Repeat("a", 64) + ".nl"},
		}},
		{ID: "", Assets: gateway.Assets{Prefixes: []string{"198.51.100.0/24"}}},
	}
	m, err := Build(cs)
	if err == nil {
		t.Fatal("Build: no error for bad entries")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ee *EntryError
		if !errors.As(e, &ee) {
			t.Fatalf("error %v is not an *EntryError", e)
		}
		got = append(got, ee.Constituent+" "+ee.Field)
	}
	want := []string{
		"bad assets.prefixes[1]", "bad assets.prefixes[2]", "bad assets.prefixes[3]", "bad assets.prefixes[4]",
		"bad assets.prefixes[5]", "bad assets.prefixes[6]",
		"bad assets.asns[1]", "bad assets.asns[2]", "bad assets.asns[3]",
		"bad assets.domains[1]", "bad assets.domains[2]", "bad assets.domains[3]", "bad assets.domains[4]",
		"bad assets.domains[5]", "bad assets.domains[6]", "bad assets.domains[7]",
		" id",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("reported entries:\n got %q\nwant %q", got, want)
	}
	msg := err.Error()
	for _, s := range []string{
		`constituent "bad": assets.prefixes[1]: `,
		`"0.0.0.0/0": a /0 prefix would own every address`,
		`constituent "bad": assets.asns[3]: 4294967296 is not an AS number`,
		`constituent "bad": assets.domains[3]: "münchen.de": non-ASCII name, write it in punycode`,
		`constituents[2]: id: must not be empty`,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error text lacks %q:\n%s", s, msg)
		}
	}

	// The good entries, including the good ones of "bad", are indexed.
	for _, c := range []struct {
		ind  gateway.Indicator
		want []string
	}{
		{gateway.Indicator{Type: "ipv4", Value: "10.1.1.1"}, []string{"good"}},
		{gateway.Indicator{Type: "ipv4", Value: "192.0.2.1"}, []string{"bad"}},
		{gateway.Indicator{Type: "asn", Value: "AS64500"}, []string{"bad"}},
		{gateway.Indicator{Type: "domain", Value: "www.ok.example"}, []string{"bad"}},
		{gateway.Indicator{Type: "ipv4", Value: "198.51.100.1"}, nil}, // constituent without id
		{gateway.Indicator{Type: "ipv4", Value: "172.16.0.1"}, nil},   // the rejected /0
	} {
		if got := m.Owners(&c.ind); !slices.Equal(got, c.want) {
			t.Errorf("after bad entries: Owners(%q) = %v, want %v", c.ind.Value, got, c.want)
		}
	}
	if st := m.Stats(); st != (Stats{Constituents: 2, Prefixes: 2, ASNs: 1, Domains: 1}) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestStats(t *testing.T) {
	m, err := Build(registry())
	if err != nil {
		t.Fatal(err)
	}
	// isp 2, customer 2, twins 1 shared, mapped 1, host 2, top 2 prefixes;
	// ASNs 64500, 64510, 64501, 4200000000; example.nl, shop.example.nl,
	// shared.example, a.example.
	want := Stats{Constituents: 8, Prefixes: 10, ASNs: 4, Domains: 4}
	if got := m.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// The slice Owners returns is shared; appending to it must not change what
// the next caller sees.
func TestOwnersSliceCannotBeGrownIntoNeighbour(t *testing.T) {
	m, err := Build(registry())
	if err != nil {
		t.Fatal(err)
	}
	a := m.OwnersOfIP(netip.MustParseAddr("192.0.2.1"))
	_ = append(a, "intruder")
	for _, addr := range []string{"192.0.2.1", "10.1.2.3", "10.1.5.5"} {
		for _, o := range m.OwnersOfIP(netip.MustParseAddr(addr)) {
			if o == "intruder" {
				t.Fatalf("append to a returned slice changed the owners of %s", addr)
			}
		}
	}
}

func TestURLHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://example.nl/path", "example.nl"},
		{"https://example.nl", "example.nl"},
		{"https://example.nl:8443", "example.nl"},
		{"https://u:p@example.nl:8443/x", "example.nl"},
		{"https://a@b@example.nl/", "example.nl"},
		{"http://example.nl?q=1", "example.nl"},
		{"http://example.nl#frag", "example.nl"},
		{"http://example.nl\\@evil.test/", "example.nl"},
		{"http://[2001:db8::1]:80/", "2001:db8::1"},
		{"http://[2001:db8::1", "2001:db8::1"},
		{"http://2001:db8::1/", "2001:db8::1"},
		{"//example.nl/x", "example.nl"},
		{"example.nl/x", "example.nl"},
		{"example.nl:80", "example.nl"},
		{"", ""},
		{"://", ""},
	}
	for _, tt := range tests {
		if got := urlHost(tt.in); got != tt.want {
			t.Errorf("urlHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
