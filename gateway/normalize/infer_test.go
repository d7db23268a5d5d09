package normalize

import (
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

func TestInfer(t *testing.T) {
	tests := []struct {
		in   string
		want gateway.IndicatorType
	}{
		{"192.0.2.1", "ipv4"},
		{"::ffff:192.0.2.1", "ipv4"},
		{"2001:db8::1", "ipv6"},
		{"fe80::1%eth0", "ipv6"},
		{"[2001:db8::1]", "ipv6"},
		{"192.0.2.0/24", "cidr"},
		{"2001:db8::/32", "cidr"},
		{"https://evil.example/x", "url"},
		{"ftp://files.example", "url"},
		{"user@example.com", "email"},
		{"d41d8cd98f00b204e9800998ecf8427e", "md5"},
		{"E7D705A3286E19EA42F587B344EE6865", "md5"}, // a JA3 looks like md5; keep md5
		{"da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha1"},
		{strings.Repeat("ab", 32), "sha256"},
		{strings.Repeat("ab", 64), "sha512"},
		{"CVE-2026-12345", "cve"},
		{"cve-2026-1234", "cve"},
		{"AS64500", "asn"},
		{"as64500", "asn"},
		{"example.com", "domain"},
		{"Sub.Example.NL", "domain"},
		{"bücher.example", "domain"},
		{"xn--bcher-kva.example", "domain"},
		{"пример.рф", "domain"},
		{"evil.xn--p1ai", "domain"},
		{"_dmarc.example.org", "domain"},

		{"", "other"},
		{"hello", "other"},
		{"64500", "other"},
		{"AS99999999999", "other"},
		{"invoice.pdf", "other"},
		{"setup.EXE", "other"},
		{"1.2.3", "other"},
		{"010.1.1.1", "other"},
		{"example.c0m", "other"},
		{"example.c", "other"},
		{"deadbeef", "other"},
		{"d41d8cd98f00b204e9800998ecf8427g", "other"},
		{"://nothing", "other"},
		{"1http://x", "other"},
		{"foo/bar", "other"},
		{"user@localhost", "other"},
		{"some text with example.com inside", "other"},
		{"a\xffb.com", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Infer(tt.in); got != tt.want {
				t.Errorf("Infer(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
