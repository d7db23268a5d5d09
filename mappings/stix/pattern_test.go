package stix

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// TestPatternIndicators: which patterns become which indicators.
func TestPatternIndicators(t *testing.T) {
	type ind struct {
		Type  gateway.IndicatorType
		Value string
		Port  int
		ASN   int64
	}
	other := func(p string) []ind { return []ind{{Type: gateway.TypeOther, Value: p}} }
	tests := []struct {
		pattern string
		want    []ind
		err     string // part of the FieldError message; "" = none
	}{
		{`[ipv4-addr:value = '192.0.2.1']`, []ind{{Type: "ipv4", Value: "192.0.2.1"}}, ""},
		{`[ipv4-addr:value = '192.0.2.0/24']`, []ind{{Type: "cidr", Value: "192.0.2.0/24"}}, ""},
		{`[ipv6-addr:value = '2001:db8::1']`, []ind{{Type: "ipv6", Value: "2001:db8::1"}}, ""},
		{`[domain-name:value = 'example.org']`, []ind{{Type: "domain", Value: "example.org"}}, ""},
		{`[url:value = 'http://example.org/a b']`, []ind{{Type: "url", Value: "http://example.org/a b"}}, ""},
		{`[email-addr:value = 'a@example.org']`, []ind{{Type: "email", Value: "a@example.org"}}, ""},
		{`[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']`, []ind{{Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e"}}, ""},
		{`[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']`, []ind{{Type: "sha1", Value: "da39a3ee5e6b4b0d3255bfef95601890afd80709"}}, ""},
		{`[file:hashes.SHA256 = 'x']`, []ind{{Type: "sha256", Value: "x"}}, ""},
		{`[file:hashes.'sha-512' = 'x']`, []ind{{Type: "sha512", Value: "x"}}, ""},
		{`[file:name = 'invoice.pdf.exe']`, []ind{{Type: "filename", Value: "invoice.pdf.exe"}}, ""},
		{`[mutex:name = 'Global\\m']`, []ind{{Type: "mutex", Value: `Global\m`}}, ""},
		{`[autonomous-system:number = 64500]`, []ind{{Type: "asn", Value: "AS64500", ASN: 64500}}, ""},
		{`[autonomous-system:number = '174']`, []ind{{Type: "asn", Value: "AS174", ASN: 174}}, ""},
		{`[x-schakel-ja3:value = 'e7d705a3286e19ea42f587b344ee6865']`, []ind{{Type: "ja3", Value: "e7d705a3286e19ea42f587b344ee6865"}}, ""},
		{`[url:value = 'http://a.example/it\'s']`, []ind{{Type: "url", Value: "http://a.example/it's"}}, ""},
		{"  [ domain-name:value='a.example' ]\n", []ind{{Type: "domain", Value: "a.example"}}, ""},
		// OR, at either level, and parentheses around it.
		{`[ipv4-addr:value = '192.0.2.1'] OR [domain-name:value = 'a.example']`,
			[]ind{{Type: "ipv4", Value: "192.0.2.1"}, {Type: "domain", Value: "a.example"}}, ""},
		{`[ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.2']`,
			[]ind{{Type: "ipv4", Value: "192.0.2.1"}, {Type: "ipv4", Value: "192.0.2.2"}}, ""},
		{`([url:value = 'http://a.example/'] OR ([file:name = 'x']))`,
			[]ind{{Type: "url", Value: "http://a.example/"}, {Type: "filename", Value: "x"}}, ""},
		{`[(domain-name:value = 'a.example') OR (domain-name:value = 'b.example')]`,
			[]ind{{Type: "domain", Value: "a.example"}, {Type: "domain", Value: "b.example"}}, ""},
		// MISP's address-and-port form.
		{`[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '192.0.2.1' AND network-traffic:dst_port = '443']`,
			[]ind{{Type: "ipv4", Value: "192.0.2.1", Port: 443}}, ""},
		{`[network-traffic:dst_ref.type = 'ipv6-addr' AND network-traffic:dst_ref.value = '2001:db8::1']`,
			[]ind{{Type: "ipv6", Value: "2001:db8::1"}}, ""},
		{`[network-traffic:src_ref.value = '198.51.100.1' AND network-traffic:src_port = 1234]`,
			[]ind{{Type: "ipv4", Value: "198.51.100.1", Port: 1234}}, ""},
		// Certificate fingerprints have no canonical type: kept as the test itself.
		{`[x509-certificate:hashes.'SHA-256' = 'ab']`, other(`[x509-certificate:hashes.'SHA-256' = 'ab']`), ""},
		// Anything else is one "other" with the whole pattern.
		{`[domain-name:value = 'a.example' AND domain-name:resolves_to_refs[*].value = '192.0.2.1']`,
			other(`[domain-name:value = 'a.example' AND domain-name:resolves_to_refs[*].value = '192.0.2.1']`), ""},
		{`[ipv4-addr:value = '192.0.2.1'] OR [file:size > 10]`, other(`[ipv4-addr:value = '192.0.2.1'] OR [file:size > 10]`), ""},
		{`[ipv4-addr:value != '192.0.2.1']`, other(`[ipv4-addr:value != '192.0.2.1']`), ""},
		{`[ipv4-addr:value NOT = '192.0.2.1']`, other(`[ipv4-addr:value NOT = '192.0.2.1']`), ""},
		{`[url:value LIKE 'http://%']`, other(`[url:value LIKE 'http://%']`), ""},
		{`[ipv4-addr:value ISSUBSET '192.0.2.0/24']`, other(`[ipv4-addr:value ISSUBSET '192.0.2.0/24']`), ""},
		{`[ipv4-addr:value IN ('192.0.2.1', '192.0.2.2')]`, other(`[ipv4-addr:value IN ('192.0.2.1', '192.0.2.2')]`), ""},
		{`[file:hashes.MD5 = 'x'] AND [file:name = 'y']`, other(`[file:hashes.MD5 = 'x'] AND [file:name = 'y']`), ""},
		{`[file:name = 'x'] FOLLOWEDBY [file:name = 'y']`, other(`[file:name = 'x'] FOLLOWEDBY [file:name = 'y']`), ""},
		{`[file:name = 'x'] WITHIN 300 SECONDS`, other(`[file:name = 'x'] WITHIN 300 SECONDS`), ""},
		{`[file:name = 'x'] REPEATS 5 TIMES`, other(`[file:name = 'x'] REPEATS 5 TIMES`), ""},
		{`[file:name = 'x'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`,
			other(`[file:name = 'x'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`), ""},
		{`[EXISTS windows-registry-key:values]`, other(`[EXISTS windows-registry-key:values]`), ""},
		{`[artifact:payload_bin = b'AAAA']`, other(`[artifact:payload_bin = b'AAAA']`), ""},
		{`[file:size = 12.5]`, other(`[file:size = 12.5]`), ""},
		{`[windows-registry-key:key = 'HKLM\\x']`, other(`[windows-registry-key:key = 'HKLM\\x']`), ""},
		{`[network-traffic:dst_ref.value = '192.0.2.1' AND network-traffic:src_port = 1]`,
			other(`[network-traffic:dst_ref.value = '192.0.2.1' AND network-traffic:src_port = 1]`), ""},
		{`[ipv4-addr:value = '192.0.2.1' AND (ipv4-addr:value = '192.0.2.2' OR ipv4-addr:value = '192.0.2.3')]`,
			other(`[ipv4-addr:value = '192.0.2.1' AND (ipv4-addr:value = '192.0.2.2' OR ipv4-addr:value = '192.0.2.3')]`), ""},
		{strings.Repeat("(", 40) + `[file:name = 'x']` + strings.Repeat(")", 40), other(strings.Repeat("(", 40) + `[file:name = 'x']` + strings.Repeat(")", 40)), "nested more than"},
		// Not patterns at all: kept, and reported.
		{`[ipv4-addr:value = '192.0.2.1'`, other(`[ipv4-addr:value = '192.0.2.1'`), "expected ]"},
		{`[ipv4-addr:value = '192.0.2.1\x']`, other(`[ipv4-addr:value = '192.0.2.1\x']`), "invalid escape"},
		{`ipv4-addr:value = '192.0.2.1'`, other(`ipv4-addr:value = '192.0.2.1'`), "expected [ or ("},
		{`[ipv4-addr:value == '192.0.2.1']`, other(`[ipv4-addr:value == '192.0.2.1']`), ""},
		{`[a:b = 'c'] OR`, other(`[a:b = 'c'] OR`), "expected [ or ("},
		{`[a:b = 'unterminated]`, other(`[a:b = 'unterminated]`), "unterminated string"},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			obj, _ := json.Marshal(map[string]any{
				"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
				"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
				"pattern": tc.pattern, "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z",
			})
			evs, errs, err := Decode(obj)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Decode: %v, %d events", err, len(evs))
			}
			var got []ind
			for _, i := range evs[0].Indicators {
				got = append(got, ind{i.Type, i.Value, i.Port, i.ASN})
				if !i.Detect || i.Attributes[AttrID] != "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" {
					t.Errorf("indicator %+v: want detect and stix_id", i)
				}
				if i.Type == gateway.TypeOther && i.Attributes[AttrPattern] != i.Value {
					t.Errorf("other %q: stix_pattern = %q", i.Value, i.Attributes[AttrPattern])
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("indicator %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			switch {
			case tc.err == "" && len(errs) > 0:
				t.Errorf("unexpected errors %v", errs)
			case tc.err != "" && (len(errs) != 1 || errs[0].Field != "/pattern" || !strings.Contains(errs[0].Message, tc.err)):
				t.Errorf("errors %v, want one at /pattern containing %q", errs, tc.err)
			}
		})
	}
}

// TestRenderParses: what Encode writes reads back as the same tests,
// whatever the value holds.
func TestRenderParses(t *testing.T) {
	for _, v := range []string{"plain", `it's`, `back\slash`, `\'`, `''\\`, "new\nline", "ünïcode", "] OR [x:y = 'z'", ""} {
		c := comparison{Object: "x-schakel-other", Path: "value", Str: v}
		p := render([]comparison{c})
		alts, ok, err := alternatives(p)
		if err != nil || !ok || len(alts) != 1 || len(alts[0]) != 1 || alts[0][0] != c {
			t.Errorf("value %q rendered as %s reads back as %+v (ok %v, err %v)", v, p, alts, ok, err)
		}
	}
	c := comparison{Object: "file", Path: "hashes.'SHA-256'", Str: "ab"}
	if got := render([]comparison{c}); got != `[file:hashes.'SHA-256' = 'ab']` {
		t.Errorf("render = %s", got)
	}
}
