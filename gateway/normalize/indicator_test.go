package normalize

import (
	"errors"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

func TestIndicatorValues(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	long64 := strings.Repeat("a", 64)
	md5 := "d41d8cd98f00b204e9800998ecf8427e"
	sha1 := "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	sha256 := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sha512 := strings.Repeat("cf83e1357eefb8bd", 8)

	tests := []struct {
		name     string
		typ      gateway.IndicatorType
		in       string
		wantType gateway.IndicatorType // empty: same as typ
		want     string                // expected value when wantErr is empty
		wantErr  string                // substring of the error message
	}{
		// ipv4
		{name: "ipv4 plain", typ: "ipv4", in: "192.0.2.10", want: "192.0.2.10"},
		{name: "ipv4 defanged", typ: "ipv4", in: "1.2.3[.]4", want: "1.2.3.4"},
		{name: "ipv4 defanged all dots and spaces", typ: "ipv4", in: " 192(.)0 [.] 2{.}1 ", want: "192.0.2.1"},
		{name: "ipv4 quoted", typ: "ipv4", in: `"192.0.2.1"`, want: "192.0.2.1"},
		{name: "ipv4 leading zero", typ: "ipv4", in: "010.1.1.1", wantErr: "leading zero"},
		{name: "ipv4 out of range", typ: "ipv4", in: "256.1.1.1", wantErr: "not an IP address"},
		{name: "ipv4 short", typ: "ipv4", in: "1.2.3", wantErr: "not an IP address"},
		{name: "ipv4 with port", typ: "ipv4", in: "1.2.3.4:80", wantErr: "not an IP address"},
		{name: "ipv4 given a v6", typ: "ipv4", in: "2001:db8::1", wantErr: "IPv6 address, not IPv4"},
		{name: "ipv4 mapped form refused", typ: "ipv4", in: "::ffff:1.2.3.4", wantErr: "IPv4-mapped"},
		{name: "ipv4 cidr refused", typ: "ipv4", in: "192.0.2.0/24", wantErr: "not an IP address"},

		// ipv6
		{name: "ipv6 canonical", typ: "ipv6", in: "2001:DB8:0:0::1", want: "2001:db8::1"},
		{name: "ipv6 longest zero run", typ: "ipv6", in: "2001:db8:0:0:1:0:0:1", want: "2001:db8::1:0:0:1"},
		{name: "ipv6 zone removed", typ: "ipv6", in: "fe80::1%eth0", want: "fe80::1"},
		{name: "ipv6 brackets", typ: "ipv6", in: "[2001:db8::1]", want: "2001:db8::1"},
		{name: "ipv6 defanged colon", typ: "ipv6", in: "2001[:]db8::1", want: "2001:db8::1"},
		{name: "ipv6 mapped becomes ipv4", typ: "ipv6", in: "::ffff:1.2.3.4", wantType: "ipv4", want: "1.2.3.4"},
		{name: "ipv6 really ipv4", typ: "ipv6", in: "192.0.2.7", wantType: "ipv4", want: "192.0.2.7"},
		{name: "ipv6 garbage", typ: "ipv6", in: "2001:db8::g", wantErr: "not an IP address"},
		{name: "ipv6 two double colons", typ: "ipv6", in: "2001::db8::1", wantErr: "not an IP address"},

		// cidr
		{name: "cidr masked", typ: "cidr", in: "192.0.2.10/24", want: "192.0.2.0/24"},
		{name: "cidr /32 stays", typ: "cidr", in: "192.0.2.10/32", want: "192.0.2.10/32"},
		{name: "cidr v6 masked", typ: "cidr", in: "2001:DB8::1/32", want: "2001:db8::/32"},
		{name: "cidr /128 stays", typ: "cidr", in: "2001:db8::1/128", want: "2001:db8::1/128"},
		{name: "cidr bare v4", typ: "cidr", in: "192.0.2.10", want: "192.0.2.10/32"},
		{name: "cidr bare v6", typ: "cidr", in: "2001:db8::1", want: "2001:db8::1/128"},
		{name: "cidr defanged", typ: "cidr", in: "10[.]0[.]0[.]0/8", want: "10.0.0.0/8"},
		{name: "cidr too long", typ: "cidr", in: "192.0.2.0/33", wantErr: "prefix length"},
		{name: "cidr leading zero length", typ: "cidr", in: "192.0.2.0/024", wantErr: "prefix length"},
		{name: "cidr bad address", typ: "cidr", in: "192.0.2/24", wantErr: "not an IP address"},
		{name: "cidr leading zero octet", typ: "cidr", in: "010.0.0.0/8", wantErr: "leading zero"},

		// domain, hostname
		{name: "domain upper with root dot", typ: "domain", in: "EXAMPLE.COM.", want: "example.com"},
		{name: "domain idn", typ: "domain", in: "bücher.example", want: "xn--bcher-kva.example"},
		{name: "domain idn upper", typ: "domain", in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{name: "domain punycode kept", typ: "domain", in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{name: "domain fullwidth", typ: "domain", in: "ｅｘａｍｐｌｅ。ｃｏｍ", want: "example.com"},
		{name: "domain underscore", typ: "domain", in: "_dmarc.Example.org", want: "_dmarc.example.org"},
		{name: "domain triple hyphen", typ: "domain", in: "r3---sn-abc.googlevideo.com", want: "r3---sn-abc.googlevideo.com"},
		{name: "domain defanged", typ: "domain", in: "evil[.]example(dot)com", want: "evil.example.com"},
		{name: "domain 63 label", typ: "domain", in: long63 + ".example", want: long63 + ".example"},
		{name: "domain 64 label", typ: "domain", in: long64 + ".example", wantErr: "limit is 63"},
		{name: "domain too long", typ: "domain", in: strings.Repeat(long63+".", 4) + "example", wantErr: "limit is 253"},
		{name: "domain single label", typ: "domain", in: "localhost", wantErr: "at least two labels"},
		{name: "domain space", typ: "domain", in: "exa mple.com", wantErr: `character " " is not allowed`},
		{name: "domain slash", typ: "domain", in: "example.com/login", wantErr: `character "/" is not allowed`},
		{name: "domain wildcard", typ: "domain", in: "*.example.com", wantErr: `character "*" is not allowed`},
		{name: "domain empty label", typ: "domain", in: "example..com", wantErr: "empty label"},
		{name: "domain only dot", typ: "domain", in: ".", wantErr: "no labels"},
		{name: "domain is an IP", typ: "domain", in: "192.0.2.1", wantErr: "numeric label"},
		{name: "domain bad punycode", typ: "domain", in: "xn--zz.example", wantErr: "internationalised"},
		{name: "domain fullwidth slash", typ: "domain", in: "example．com／x", wantErr: `character "/" is not allowed`},
		{name: "hostname single label", typ: "hostname", in: "FileServer01", want: "fileserver01"},
		{name: "hostname fqdn", typ: "hostname", in: "mail.Example.NL.", want: "mail.example.nl"},
		{name: "hostname colon", typ: "hostname", in: "mail.example.nl:25", wantErr: `character ":" is not allowed`},

		// url
		{name: "url defanged", typ: "url", in: "hxxps://evil[.]example(.)com/x", want: "https://evil.example.com/x"},
		{name: "url hXXp and [:]//", typ: "url", in: "hXXp[:]//Evil.Example/Path?Q=A", want: "http://evil.example/Path?Q=A"},
		{name: "url [://]", typ: "url", in: "hxxp[://]evil.example/", want: "http://evil.example/"},
		{name: "url fxp", typ: "url", in: "fxp://files.example/pub", want: "ftp://files.example/pub"},
		{name: "url angle brackets", typ: "url", in: "<https://example.org/a>", want: "https://example.org/a"},
		{name: "url scheme case", typ: "url", in: "HTTPS://EXAMPLE.ORG/A%2Fb", want: "https://example.org/A%2Fb"},
		{name: "url idn host", typ: "url", in: "https://bücher.example/straße", want: "https://xn--bcher-kva.example/straße"},
		{name: "url port kept", typ: "url", in: "http://example.org:8080/x", want: "http://example.org:8080/x"},
		{name: "url port leading zero", typ: "url", in: "http://example.org:08080", want: "http://example.org:8080"},
		{name: "url ipv4 host", typ: "url", in: "http://192.0.2.1/a", want: "http://192.0.2.1/a"},
		{name: "url ipv6 host", typ: "url", in: "http://[2001:DB8:0::1]:443/", want: "http://[2001:db8::1]:443/"},
		{name: "url userinfo kept", typ: "url", in: "https://paypal.com@EVIL.example/login", want: "https://paypal.com@evil.example/login"},
		{name: "url query only", typ: "url", in: "https://Example.org?x=1", want: "https://example.org?x=1"},
		{name: "url no scheme", typ: "url", in: "www.example.com/path", wantErr: "needs a scheme"},
		{name: "url no host", typ: "url", in: "https:///path", wantErr: "no host"},
		{name: "url bad port", typ: "url", in: "http://example.org:99999/", wantErr: "port"},
		{name: "url bad scheme", typ: "url", in: "1http://example.org/", wantErr: "scheme"},
		{name: "url space in host", typ: "url", in: "http://exa mple.org/", wantErr: "not allowed in a url host"},
		{name: "url control char", typ: "url", in: "http://example.org/a\nb", wantErr: "control character"},
		{name: "url unclosed bracket", typ: "url", in: "http://[2001:db8::1/", wantErr: "unclosed"},

		// email
		{name: "email defanged", typ: "email", in: "user[@]example[.]com", want: "user@example.com"},
		{name: "email [at] [dot]", typ: "email", in: "user [at] example [dot] com", want: "user@example.com"},
		{name: "email local case kept", typ: "email", in: "John.Doe@EXAMPLE.NL", want: "John.Doe@example.nl"},
		{name: "email idn domain", typ: "email", in: "info@bücher.example", want: "info@xn--bcher-kva.example"},
		{name: "email mailto", typ: "email", in: "mailto:abuse@example.org", want: "abuse@example.org"},
		{name: "email quoted local with space", typ: "email", in: `"a b"@example.org`, want: `"a b"@example.org`},
		{name: "email quoted local with @", typ: "email", in: `"a@b"@example.org`, want: `"a@b"@example.org`},
		{name: "email plus tag", typ: "email", in: "first.last+tag@example.com", want: "first.last+tag@example.com"},
		{name: "email no at", typ: "email", in: "user.example.com", wantErr: "needs an @"},
		{name: "email colon in local", typ: "email", in: "mailto:mailto:a@example.com", wantErr: "not allowed in an unquoted e-mail local part"},
		{name: "email two ats", typ: "email", in: "a@b@example.com", wantErr: "more than one @"},
		{name: "email empty local", typ: "email", in: "@example.com", wantErr: "empty local part"},
		{name: "email single label domain", typ: "email", in: "root@localhost", wantErr: "at least two labels"},
		{name: "email space in local", typ: "email", in: "jo hn@example.com", wantErr: "space"},

		// hashes
		{name: "md5 upper", typ: "md5", in: strings.ToUpper(md5), want: md5},
		{name: "md5 short", typ: "md5", in: md5[:31], wantErr: "md5 must be 32 hex characters, got 31"},
		{name: "md5 not hex", typ: "md5", in: "g" + md5[1:], wantErr: "not hex"},
		{name: "md5 given a sha1", typ: "md5", in: sha1, wantErr: "md5 must be 32"},
		{name: "sha1", typ: "sha1", in: sha1, want: sha1},
		{name: "sha1 wrong length", typ: "sha1", in: md5, wantErr: "sha1 must be 40 hex characters, got 32"},
		{name: "sha256 quoted upper", typ: "sha256", in: "'" + strings.ToUpper(sha256) + "'", want: sha256},
		{name: "sha256 wrong length", typ: "sha256", in: sha256 + "0", wantErr: "sha256 must be 64"},
		{name: "sha512", typ: "sha512", in: sha512, want: sha512},
		{name: "sha512 wrong length", typ: "sha512", in: sha256, wantErr: "sha512 must be 128"},
		{name: "ja3", typ: "ja3", in: "E7D705A3286E19EA42F587B344EE6865", want: "e7d705a3286e19ea42f587b344ee6865"},
		{name: "ja3 bad", typ: "ja3", in: "e7d705a3", wantErr: "ja3 must be 32"},

		// asn
		{name: "asn upper", typ: "asn", in: "AS64500", want: "AS64500"},
		{name: "asn lower", typ: "asn", in: "as64500", want: "AS64500"},
		{name: "asn bare", typ: "asn", in: "64500", want: "AS64500"},
		{name: "asn ASN prefix and space", typ: "asn", in: "ASN 64500", want: "AS64500"},
		{name: "asn asdot", typ: "asn", in: "AS1.10", want: "AS65546"},
		{name: "asn max", typ: "asn", in: "4294967295", want: "AS4294967295"},
		{name: "asn too big", typ: "asn", in: "AS4294967296", wantErr: "1..4294967295"},
		{name: "asn zero", typ: "asn", in: "AS0", wantErr: "reserved"},
		{name: "asn negative", typ: "asn", in: "-1", wantErr: "1..4294967295"},
		{name: "asn word", typ: "asn", in: "ASX", wantErr: "1..4294967295"},

		// cve
		{name: "cve", typ: "cve", in: "CVE-2026-12345", want: "CVE-2026-12345"},
		{name: "cve lower", typ: "cve", in: "cve-2026-1234", want: "CVE-2026-1234"},
		{name: "cve unicode hyphens", typ: "cve", in: "CVE\u20112026\u20131234", want: "CVE-2026-1234"},
		{name: "cve short number", typ: "cve", in: "CVE-2026-123", wantErr: "must look like CVE-2026-12345"},
		{name: "cve short year", typ: "cve", in: "CVE-26-12345", wantErr: "must look like"},
		{name: "cve no prefix", typ: "cve", in: "2026-12345", wantErr: "must look like"},

		// filename, mutex
		{name: "filename kept", typ: "filename", in: "  Invoice 2026.PDF.exe ", want: "Invoice 2026.PDF.exe"},
		{name: "filename unicode", typ: "filename", in: "factuur_€.docm", want: "factuur_€.docm"},
		{name: "filename NUL", typ: "filename", in: "a\x00b.exe", wantErr: "control character"},
		{name: "filename too long", typ: "filename", in: strings.Repeat("a", 4097), wantErr: "limit is 4096"},
		{name: "mutex", typ: "mutex", in: `Global\MsWinZonesCacheCounterMutexA`, want: `Global\MsWinZonesCacheCounterMutexA`},
		{name: "mutex control", typ: "mutex", in: "mu\x1btex", wantErr: "control character"},

		// any type
		{name: "empty", typ: "domain", in: "", wantErr: "value is empty"},
		{name: "blank", typ: "md5", in: " \t\n", wantErr: "value is empty"},
		{name: "only quotes", typ: "filename", in: `""`, wantErr: "value is empty"},
		{name: "invalid utf-8", typ: "filename", in: "a\xffb", wantErr: "not valid UTF-8"},
		{name: "too long", typ: "other", in: strings.Repeat("x", 8193), wantErr: "limit is 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Indicator(gateway.Indicator{Type: tt.typ, Value: tt.in})
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Indicator(%s %q) = %q, want error containing %q", tt.typ, tt.in, got.Value, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %q, want it to contain %q", err, tt.wantErr)
				}
				var ie *IndicatorError
				if !errors.As(err, &ie) || ie.Field != "value" {
					t.Fatalf("error field = %+v, want value", ie)
				}
				if strings.HasPrefix(err.Error(), "/") || strings.HasPrefix(err.Error(), "value:") {
					t.Errorf("error %q carries a field path; the caller adds it", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Indicator(%s %q): %v", tt.typ, tt.in, err)
			}
			wantType := tt.wantType
			if wantType == "" {
				wantType = tt.typ
			}
			if got.Type != wantType || got.Value != tt.want {
				t.Fatalf("Indicator(%s %q) = %s %q, want %s %q", tt.typ, tt.in, got.Type, got.Value, wantType, tt.want)
			}
			again, err := Indicator(got)
			if err != nil || again.Type != got.Type || again.Value != got.Value {
				t.Errorf("not idempotent: %s %q → %s %q, %v", got.Type, got.Value, again.Type, again.Value, err)
			}
		})
	}
}

func TestIndicatorFields(t *testing.T) {
	tests := []struct {
		name      string
		in        gateway.Indicator
		wantField string // empty: no error
		wantErr   string
		wantASN   int64
	}{
		{name: "unknown type", in: gateway.Indicator{Type: "ip", Value: "1.2.3.4"}, wantField: "type", wantErr: `unknown indicator type "ip"; allowed: ipv4, ipv6`},
		{name: "empty type", in: gateway.Indicator{Value: "1.2.3.4"}, wantField: "type", wantErr: "unknown indicator type"},
		{name: "port max", in: gateway.Indicator{Type: "ipv4", Value: "1.2.3.4", Port: 65535}},
		{name: "port too big", in: gateway.Indicator{Type: "ipv4", Value: "1.2.3.4", Port: 65536}, wantField: "port", wantErr: "port 65536 is outside 0..65535"},
		{name: "port negative", in: gateway.Indicator{Type: "ipv4", Value: "1.2.3.4", Port: -1}, wantField: "port", wantErr: "outside 0..65535"},
		{name: "asn field max", in: gateway.Indicator{Type: "ipv4", Value: "1.2.3.4", ASN: 4294967295}, wantASN: 4294967295},
		{name: "asn field too big", in: gateway.Indicator{Type: "ipv4", Value: "1.2.3.4", ASN: 4294967296}, wantField: "asn", wantErr: "outside 0..4294967295"},
		{name: "asn field negative", in: gateway.Indicator{Type: "ipv4", Value: "1.2.3.4", ASN: -5}, wantField: "asn", wantErr: "outside"},
		{name: "asn value sets field", in: gateway.Indicator{Type: "asn", Value: "as64500"}, wantASN: 64500},
		{name: "asn value agrees with field", in: gateway.Indicator{Type: "asn", Value: "AS64500", ASN: 64500}, wantASN: 64500},
		{name: "asn value contradicts field", in: gateway.Indicator{Type: "asn", Value: "AS64500", ASN: 64501}, wantField: "asn", wantErr: "asn 64501 contradicts value AS64500"},
		{name: "bad value", in: gateway.Indicator{Type: "ipv4", Value: "nope"}, wantField: "value", wantErr: "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Indicator(tt.in)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got.ASN != tt.wantASN {
					t.Errorf("ASN = %d, want %d", got.ASN, tt.wantASN)
				}
				return
			}
			var ie *IndicatorError
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v, want *IndicatorError", err)
			}
			if ie.Field != tt.wantField || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %s: %q, want %s: …%q…", ie.Field, err, tt.wantField, tt.wantErr)
			}
		})
	}
}

func TestIndicatorOther(t *testing.T) {
	tests := []struct {
		in       string
		wantType gateway.IndicatorType
		want     string
	}{
		{"hxxp://evil[.]example/a", "url", "http://evil.example/a"},
		{"1.2.3[.]4", "ipv4", "1.2.3.4"},
		{"::ffff:192.0.2.1", "ipv4", "192.0.2.1"},
		{"fe80::1%eth0", "ipv6", "fe80::1"},
		{"192.0.2.9/24", "cidr", "192.0.2.0/24"},
		{"user[at]Example.ORG", "email", "user@example.org"},
		{"D41D8CD98F00B204E9800998ECF8427E", "md5", "d41d8cd98f00b204e9800998ecf8427e"},
		{"cve-2024-3400", "cve", "CVE-2024-3400"},
		{"as64500", "asn", "AS64500"},
		{"Bücher.Example", "domain", "xn--bcher-kva.example"},
		{"  some free text  ", "other", "some free text"},
		{"invoice.pdf", "other", "invoice.pdf"},
		{"12345", "other", "12345"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			attrs := map[string]string{"tag": "x"}
			got, err := Indicator(gateway.Indicator{Type: "other", Value: tt.in, Attributes: attrs})
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.wantType || got.Value != tt.want {
				t.Fatalf("got %s %q, want %s %q", got.Type, got.Value, tt.wantType, tt.want)
			}
			wantOrig := ""
			if tt.wantType != "other" {
				wantOrig = "other"
			}
			if got.Attributes[AttrOriginalType] != wantOrig || got.Attributes["tag"] != "x" {
				t.Errorf("attributes = %v, want original_type=%q and tag kept", got.Attributes, wantOrig)
			}
			if _, ok := attrs[AttrOriginalType]; ok {
				t.Error("the caller's attribute map was modified")
			}
		})
	}
}
