package mail

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// plainMsg builds a single-part text/plain message.
func plainMsg(subject, body string) []byte {
	return []byte("From: CERT <cert@cert.example>\r\nSubject: " + subject +
		"\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@cert.example>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
}

// decodeOne decodes a message that must give exactly one event.
func decodeOne(t *testing.T, data []byte, o Options) (*gateway.Event, []gateway.FieldError) {
	t.Helper()
	evs, errs, err := DecodeMessage(data, o)
	if err != nil {
		t.Fatalf("DecodeMessage: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	if nerrs := normalize.Event(evs[0]); len(nerrs) > 0 {
		t.Fatalf("normalize.Event: %v", nerrs)
	}
	return evs[0], errs
}

// indicatorSet renders indicators as "type value [tlp]" lines, sorted.
func indicatorSet(inds []gateway.Indicator, withTLP bool) []string {
	out := make([]string, 0, len(inds))
	for _, ind := range inds {
		s := string(ind.Type) + " " + ind.Value
		if withTLP {
			s += " " + ind.Attributes[AttrTLP]
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func cves(ev *gateway.Event) []string {
	var out []string
	for _, v := range ev.Vulnerabilities {
		out = append(out, v.CVE)
	}
	return out
}

func TestTLPFromSubjectAndBody(t *testing.T) {
	tests := []struct {
		name, subject, body string
		wantTLP             gateway.TLP
		wantInds            []string // with the section's label
		wantWhite           bool
	}{
		{"subject only", "[TLP:GREEN] Scan", "Bron: 192.0.2.1\n", "GREEN", []string{"ipv4 192.0.2.1 GREEN"}, false},
		{"no label anywhere", "Scan", "Bron: 192.0.2.1\n", "", []string{"ipv4 192.0.2.1 "}, false},
		{"body label without subject", "Scan", "TLP:AMBER\n192.0.2.1\n", "AMBER", []string{"ipv4 192.0.2.1 AMBER"}, false},
		{
			"stricter section later", "[TLP:CLEAR] Mixed",
			"Public: 192.0.2.1\nTLP: AMBER+STRICT\nInternal: 192.0.2.2\n",
			"AMBER+STRICT", []string{"ipv4 192.0.2.1 CLEAR", "ipv4 192.0.2.2 AMBER+STRICT"}, false,
		},
		{
			"looser section after a stricter one", "Mixed",
			"tlp:red\n192.0.2.9\nTLP:GREEN\n192.0.2.10\n",
			"RED", []string{"ipv4 192.0.2.10 GREEN", "ipv4 192.0.2.9 RED"}, false,
		},
		{
			"same indicator under two labels keeps the stricter", "Twice",
			"TLP:CLEAR 192.0.2.1\nTLP:RED 192.0.2.1\nTLP:CLEAR again 192.0.2.1\n",
			"RED", []string{"ipv4 192.0.2.1 RED"}, false,
		},
		{"white is clear and remembered", "TLP:WHITE notice", "see 192.0.2.1", "CLEAR", []string{"ipv4 192.0.2.1 CLEAR"}, true},
		{"amber + strict spelled with spaces", "(TLP:AMBER + STRICT) x", "192.0.2.1", "AMBER+STRICT", []string{"ipv4 192.0.2.1 AMBER+STRICT"}, false},
		{"a word that starts with a colour is no label", "TLP:REDACTED report", "192.0.2.1", "", []string{"ipv4 192.0.2.1 "}, false},
		{"label without colon is prose", "About TLP red", "192.0.2.1", "", []string{"ipv4 192.0.2.1 "}, false},
		{"white in body but amber in subject", "[TLP:AMBER] x", "TLP:WHITE 192.0.2.1", "AMBER", []string{"ipv4 192.0.2.1 CLEAR"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := decodeOne(t, plainMsg(tt.subject, tt.body), Options{})
			if ev.TLP != tt.wantTLP {
				t.Errorf("tlp = %q, want %q", ev.TLP, tt.wantTLP)
			}
			if got := indicatorSet(ev.Indicators, true); !slices.Equal(got, tt.wantInds) {
				t.Errorf("indicators = %q, want %q", got, tt.wantInds)
			}
			if got := slices.Contains(ev.Labels, normalize.LabelTLPWhite); got != tt.wantWhite {
				t.Errorf("labels %q: tlp:white present = %v, want %v", ev.Labels, got, tt.wantWhite)
			}
			if strings.Contains(strings.ToUpper(ev.Title), "TLP:") && tt.wantTLP != "" {
				t.Errorf("title %q still carries the label", ev.Title)
			}
		})
	}
}

func TestSubjectTitleAndTags(t *testing.T) {
	tests := []struct {
		subject, title string
		labels         []string
	}{
		{"[TLP:AMBER] Actief misbruik", "Actief misbruik", nil},
		{"Re: Fwd: [sector-zorg] [TLP:GREEN] Phishing", "Phishing", []string{"sector-zorg"}},
		{"[URGENT] [TLP:RED] Ransomware", "Ransomware", []string{"URGENT"}},
		{"Phishing campagne - TLP:GREEN", "Phishing campagne", nil},
		{"NCSC-2024-0369 [1.01] [M/H] Kwetsbaarheden", "NCSC-2024-0369 [1.01] [M/H] Kwetsbaarheden", nil},
		{"=?utf-8?Q?Kwetsbaarheid_in_Gr=C3=BCn?= =?utf-8?Q?_Server?=", "Kwetsbaarheid in Grün Server", nil},
		{"=?windows-1252?Q?=93Quoted=94_=80?=", "“Quoted” €", nil},
		{"=?iso-8859-15?B?pCBwcmlqcw==?=", "€ prijs", nil},
		{"=?ISO-8859-1?Q?Caf=E9?=", "Café", nil},
		{"Subject with\ttabs   and  spaces", "Subject with tabs and spaces", nil},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			ev, _ := decodeOne(t, plainMsg(tt.subject, "text"), Options{})
			if ev.Title != tt.title {
				t.Errorf("title = %q, want %q", ev.Title, tt.title)
			}
			if !slices.Equal(ev.Labels, tt.labels) {
				t.Errorf("labels = %q, want %q", ev.Labels, tt.labels)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name, from, date, msgID string
		org, ref                string
		created                 time.Time
		errField                string
	}{
		{"display name", "Zorg-CERT <w@zorgcert.example>", "Fri, 20 Nov 2026 09:30:55 +0100", "<a@b.example>", "Zorg-CERT", "a@b.example", time.Date(2026, 11, 20, 8, 30, 55, 0, time.UTC), ""},
		{"no display name gives the domain", "w@ZorgCERT.example", "20 Nov 2026 09:30 +0100", "a@b.example", "zorgcert.example", "a@b.example", time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC), ""},
		{"encoded display name", "=?utf-8?Q?CERT_R=C3=A9gion?= <c@r.example>", "Mon, 23 Nov 2026 10:00:00 GMT", "<x@y>", "CERT Région", "x@y", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), ""},
		{"bad date is reported", "c@r.example", "gisteren", "<x@y>", "r.example", "x@y", time.Time{}, "header Date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "From: " + tt.from + "\r\nDate: " + tt.date + "\r\nMessage-ID: " + tt.msgID + "\r\nSubject: s\r\n\r\nbody"
			ev, errs := decodeOne(t, []byte(data), Options{})
			if ev.Source.Org != tt.org || ev.Source.Ref != tt.ref || ev.Source.Format != "mail" {
				t.Errorf("source = %+v, want org %q ref %q format mail", ev.Source, tt.org, tt.ref)
			}
			if !ev.Created.Equal(tt.created) || !ev.Modified.Equal(tt.created) {
				t.Errorf("created/modified = %v/%v, want %v", ev.Created, ev.Modified, tt.created)
			}
			if tt.errField == "" && len(errs) > 0 {
				t.Errorf("unexpected errors %v", errs)
			}
			if tt.errField != "" && (len(errs) != 1 || errs[0].Field != tt.errField) {
				t.Errorf("errors = %v, want one on %q", errs, tt.errField)
			}
		})
	}
}

func TestExtraction(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
		cves       []string
	}{
		{"defanged forms", "hxxp://evil[.]example/a hXXps://x(.)example/b evil[.]example[.]com user[@]evil[.]example 192.0.2[.]7",
			[]string{"domain evil.example.com", "email user@evil.example", "ipv4 192.0.2.7", "url http://evil.example/a", "url https://x.example/b"}, nil},
		{"ftp and fxp", "ftp://files.example/x fxp://files2.example/y", []string{"url ftp://files.example/x", "url ftp://files2.example/y"}, nil},
		{"other schemes are not urls", "ldap://x.example/a jndi:ldap://y.example/a mailto:someone", nil, nil},
		{"ip versions and cidr", "192.0.2.1, 2001:DB8::1; 198.51.100.0/24 [2001:db8::2]", []string{"cidr 198.51.100.0/24", "ipv4 192.0.2.1", "ipv6 2001:db8::1", "ipv6 2001:db8::2"}, nil},
		{"unspecified addresses are not hosts", "listen on 0.0.0.0 and ::", nil, nil},
		{"hashes", "MD5 D41D8CD98F00B204E9800998ECF8427E sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 sha512 " + strings.Repeat("a1", 64),
			[]string{"md5 d41d8cd98f00b204e9800998ecf8427e", "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha512 " + strings.Repeat("a1", 64)}, nil},
		{"not hashes", strings.Repeat("0", 32) + " " + strings.Repeat("1", 64) + " deadbeefdeadbeefdeadbeefdeadbeef abc123", nil, nil},
		{"asn", "Netwerk AS64500 (AS64501). as3 is not one", []string{"asn AS64500", "asn AS64501"}, nil},
		{"cves are vulnerabilities", "CVE-2026-12345, cve-2026-0001 and CVE-2026-12345 again", nil, []string{"CVE-2026-12345", "CVE-2026-0001"}},
		{"file names and versions are not domains", "zie report.pdf, setup.py, README.md, lib.rs, invoice.docx, versie 1.2.3 en 10.0.19041.1", nil, nil},
		{"sentence glue is not a domain", "bijgewerkt.De update.Het advies, e.g. i.e. o.a. z.s.m.", nil, nil},
		{"unknown tld needs defanging", "evil.zzzz evil[.]zzzz", []string{"domain evil.zzzz"}, nil},
		{"ambiguous tld needs three labels", "setup.py www.example.py", []string{"domain www.example.py"}, nil},
		{"punctuation around values", "(https://x.example/a_(b)). \"evil.example.com\", <192.0.2.3>; «bad.example.org»",
			[]string{"domain bad.example.org", "domain evil.example.com", "ipv4 192.0.2.3", "url https://x.example/a_(b)"}, nil},
		{"defanged url without scheme gives its host", "evil[.]example[.]net/path/x", []string{"domain evil.example.net"}, nil},
		{"zero-width space used to defang", "evil\u200b.example.com", []string{"domain evil.example.com"}, nil},
		{"duplicates merge", "192.0.2.1 192.0.2[.]1 192.0.2.1", []string{"ipv4 192.0.2.1"}, nil},
		{"forward below a signature is content", "FYI\n-- \nJan, 192.0.2.99\n\n---------- Forwarded message ---------\nIOC 192.0.2.1\n",
			[]string{"ipv4 192.0.2.1"}, nil},
		{"quote below a signature is content", "Thanks\n-- \nJan, 192.0.2.99\n> see 192.0.2.2\n", []string{"ipv4 192.0.2.2"}, nil},
		{"signature is skipped", "192.0.2.1\n-- \nCERT | https://www.cert.example | cert@cert.example | 192.0.2.99\n", []string{"ipv4 192.0.2.1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := decodeOne(t, plainMsg("s", tt.text), Options{})
			if got := indicatorSet(ev.Indicators, false); !slices.Equal(got, tt.want) && (len(got) > 0 || len(tt.want) > 0) {
				t.Errorf("indicators = %q, want %q", got, tt.want)
			}
			if got := cves(ev); !slices.Equal(got, tt.cves) {
				t.Errorf("cves = %q, want %q", got, tt.cves)
			}
			wantKind := gateway.KindIntel
			if len(tt.cves) > 0 {
				wantKind = gateway.KindAdvisory
			}
			if ev.Kind != wantKind {
				t.Errorf("kind = %s, want %s", ev.Kind, wantKind)
			}
		})
	}
}

func TestDetectFlag(t *testing.T) {
	ev, _ := decodeOne(t, plainMsg("s", "192.0.2.1 contact cert@cert.example AS64500"), Options{})
	want := map[gateway.IndicatorType]bool{gateway.TypeIPv4: true, gateway.TypeEmail: false, gateway.TypeASN: false}
	for _, ind := range ev.Indicators {
		if ind.Detect != want[ind.Type] {
			t.Errorf("%s %s: detect = %v, want %v", ind.Type, ind.Value, ind.Detect, want[ind.Type])
		}
	}
	if len(ev.Indicators) != 3 {
		t.Errorf("got %d indicators, want 3: %v", len(ev.Indicators), ev.Indicators)
	}
}

func TestAssessment(t *testing.T) {
	tests := []struct {
		name, subject, body string
		want                *gateway.Assessment
		priority            gateway.Priority
	}{
		{"dutch high/high", "s", "Kans: hoog / Schade: hoog", &gateway.Assessment{Probability: "high", Impact: "high"}, "critical"},
		{"ncsc wording", "s", "Inschaling: kans HIGH, schade HIGH.", &gateway.Assessment{Probability: "high", Impact: "high"}, "critical"},
		{"english", "s", "Probability: medium\nImpact: high", &gateway.Assessment{Probability: "medium", Impact: "high"}, ""},
		{"urgency dutch", "s", "Urgentie: hoog", &gateway.Assessment{Urgency: "urgent"}, "critical"},
		{"urgency english normal", "s", "Urgency: normal", &gateway.Assessment{Urgency: "normal"}, ""},
		{"subject shorthand", "NCSC-2024-0369 [1.01] [M/H] x", "text", &gateway.Assessment{Probability: "medium", Impact: "high"}, ""},
		{"body beats shorthand", "x [L/L]", "Kans: hoog", &gateway.Assessment{Probability: "high", Impact: "low"}, ""},
		{"prose is not an assessment", "s", "De kans is klein dat de impact groot is.\nKans:\nhoog", nil, ""},
		{"first value wins", "s", "Kans: laag\nKans: hoog", &gateway.Assessment{Probability: "low"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := decodeOne(t, plainMsg(tt.subject, tt.body), Options{})
			if tt.want == nil {
				if ev.Assessment != nil {
					t.Errorf("assessment = %+v, want none", *ev.Assessment)
				}
			} else if ev.Assessment == nil || *ev.Assessment != *tt.want {
				t.Errorf("assessment = %+v, want %+v", ev.Assessment, *tt.want)
			}
			if ev.Priority != tt.priority {
				t.Errorf("priority = %q, want %q", ev.Priority, tt.priority)
			}
		})
	}
}

// multipartMsg builds a message with the given top-level content type and
// parts (each with its own headers).
func multipartMsg(subject, ctype string, parts ...string) []byte {
	var b strings.Builder
	b.WriteString("From: x@cert.example\r\nSubject: " + subject + "\r\nMIME-Version: 1.0\r\nContent-Type: " + ctype + "; boundary=\"BND\"\r\n\r\npreamble\r\n")
	for _, p := range parts {
		b.WriteString("--BND\r\n" + p + "\r\n")
	}
	b.WriteString("--BND--\r\n")
	return []byte(b.String())
}

func TestAlternativeAndHTML(t *testing.T) {
	html := `<html><head><style>p{}</style><script>x="http://script.example/a"</script></head><body>` +
		`<p>Intro&nbsp;text</p><ul><li>evil[.]example[.]com</li><li>203.0.113.9</li></ul>` +
		`<p>Kans: <b>hoog</b></p><table><tr><td>Schade</td><td>Hoog</td></tr></table>` +
		`<p>A&amp;B &lt;tag&gt; &#49;92.0.2.44</p></body></html>`
	data := multipartMsg("[TLP:GREEN] alt", "multipart/alternative",
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nIntro text=\r\n with a soft break\r\nevil[.]example[.]com\r\n",
		"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"+base64.StdEncoding.EncodeToString([]byte(html)),
	)
	ev, errs := decodeOne(t, data, Options{})
	if len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
	if ev.Description != "Intro text with a soft break\nevil[.]example[.]com" {
		t.Errorf("description = %q, want the text/plain alternative", ev.Description)
	}
	want := []string{"domain evil.example.com", "ipv4 192.0.2.44", "ipv4 203.0.113.9"}
	if got := indicatorSet(ev.Indicators, false); !slices.Equal(got, want) {
		t.Errorf("indicators = %q, want %q (both alternatives, once each, no script)", got, want)
	}
	if ev.Assessment == nil || ev.Assessment.Probability != "high" || ev.Assessment.Impact != "high" {
		t.Errorf("assessment = %+v, want high/high from the HTML", ev.Assessment)
	}
}

func TestHTMLText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>a</p><p>b</p>", "a\nb"},
		{"a<br>b<br/>c", "a\nb\nc"},
		{"<b>TLP:</b><i>AMBER</i>", "TLP:AMBER"},
		{"x<script>alert('<p>')</script>y", "xy"},
		{"x<STYLE>p{}</STYLE>y", "xy"},
		{"a <!-- 192.0.2.1 --> b", "a b"},
		{"a < b and c > d", "a < b and c > d"},
		{"&lt;&amp;&gt;&quot;&#39;&euro;&nbsp;x", "<&>\"'€ x"},
		{`<a title="x>y" href="http://h.example">link</a>`, "link"},
		{"<td>a</td><td>b</td>", "a\tb"},
		{"unclosed <a href='x", "unclosed"},
		{"unclosed <script> and the rest", "unclosed"},
		{"<!DOCTYPE html><?xml x?>text", "text"},
	}
	for _, tt := range tests {
		if got := htmlText(tt.in); got != tt.want {
			t.Errorf("htmlText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCharsets(t *testing.T) {
	tests := []struct {
		charset string
		body    []byte
		want    string
		errs    int
	}{
		{"utf-8", []byte("Grün 192.0.2.1"), "Grün 192.0.2.1", 0},
		{"iso-8859-1", []byte("Gr\xfcn 192.0.2.1"), "Grün 192.0.2.1", 0},
		{"windows-1252", []byte("\x93x\x94 \x80 192.0.2.1"), "“x” € 192.0.2.1", 0},
		{"iso-8859-15", []byte("\xa4 192.0.2.1"), "€ 192.0.2.1", 0},
		{"us-ascii", []byte("plain 192.0.2.1"), "plain 192.0.2.1", 0},
		{"utf-8", []byte("bad \xff byte 192.0.2.1"), "bad \uFFFD byte 192.0.2.1", 0},
		{"x-mac-klingon", []byte("odd 192.0.2.1"), "odd 192.0.2.1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.charset, func(t *testing.T) {
			data := []byte("Subject: c\r\nContent-Type: text/plain; charset=" + tt.charset + "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
			data = append(data, tt.body...)
			ev, errs := decodeOne(t, data, Options{})
			if ev.Description != tt.want {
				t.Errorf("description = %q, want %q", ev.Description, tt.want)
			}
			if len(errs) != tt.errs {
				t.Errorf("errors = %v, want %d", errs, tt.errs)
			}
			if len(ev.Indicators) != 1 {
				t.Errorf("indicators = %v, want the one IP", ev.Indicators)
			}
		})
	}
}

func TestUnreadable(t *testing.T) {
	tests := []struct {
		name string
		data string
		max  int
	}{
		{"garbage", "this is not an e-mail at all\x00\x01", 0},
		{"binary", "\x89PNG\r\n\x1a\n\x00\x00", 0},
		{"headers that are no mail headers", "X-Foo: bar\r\n\r\nbody", 0},
		{"nothing to map", "From: a@b.example\r\n\r\n", 0},
		{"too large", "Subject: x\r\n\r\n" + strings.Repeat("a", 100), 50},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, errs, err := DecodeMessage([]byte(tt.data), Options{MaxSize: tt.max})
			if err == nil {
				t.Fatalf("no error; events %v, field errors %v", evs, errs)
			}
			if evs != nil || err.Error() == "" {
				t.Errorf("events %v with error %q; want none and a message", evs, err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("max parts", func(t *testing.T) {
		var parts []string
		for i := range 20 {
			parts = append(parts, fmt.Sprintf("Content-Type: text/plain\r\n\r\npart %d: 192.0.2.%d", i, i+1))
		}
		ev, errs := decodeOne(t, multipartMsg("[TLP:GREEN] many", "multipart/mixed", parts...), Options{MaxParts: 5})
		if len(ev.Indicators) != 5 {
			t.Errorf("got %d indicators, want those of the first 5 parts", len(ev.Indicators))
		}
		if len(errs) != 1 || errs[0].Field != "part 6" || !strings.Contains(errs[0].Message, "more than 5") {
			t.Errorf("errors = %v, want one on part 6 naming the limit", errs)
		}
	})
	t.Run("max depth", func(t *testing.T) {
		// 50 nested multiparts with the indicator at the bottom.
		body := "Content-Type: text/plain\r\n\r\n192.0.2.77\r\n"
		for i := range 50 {
			b := fmt.Sprintf("B%d", i)
			body = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n\r\n--" + b + "\r\n" + body + "\r\n--" + b + "--\r\n"
		}
		data := []byte("Subject: deep\r\n" + body)
		ev, errs := decodeOne(t, data, Options{MaxDepth: 10})
		if len(ev.Indicators) != 0 {
			t.Errorf("indicators %v from below the depth limit", ev.Indicators)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Message, "deeper than 10") {
			t.Errorf("errors = %v, want one naming the depth limit", errs)
		}
		if !strings.HasPrefix(errs[0].Field, "part 1.1.1.1.1.1.1.1.1") {
			t.Errorf("error field %q does not name the nested part", errs[0].Field)
		}
	})
	t.Run("nested messages count as depth", func(t *testing.T) {
		inner := "Subject: inner\r\nContent-Type: text/plain\r\n\r\n192.0.2.5\r\n"
		for range 30 {
			inner = "Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" + inner
		}
		_, errs := decodeOne(t, []byte(inner), Options{})
		if len(errs) != 1 || !strings.Contains(errs[0].Message, "deeper than 10") {
			t.Errorf("errors = %v, want the depth limit", errs)
		}
	})
	t.Run("many indicators are capped", func(t *testing.T) {
		var b strings.Builder
		for i := range maxIndicators + 50 {
			fmt.Fprintf(&b, "10.%d.%d.%d\n", i>>16&255, i>>8&255, i&255)
		}
		ev, errs := decodeOne(t, plainMsg("s", b.String()), Options{})
		if len(ev.Indicators) != maxIndicators {
			t.Errorf("got %d indicators, want the cap %d", len(ev.Indicators), maxIndicators)
		}
		// 10050 addresses are also more text than the description keeps.
		if len(errs) != 2 || errs[0].Field != "body" || !strings.Contains(errs[0].Message, "indicators") {
			t.Errorf("errors = %v, want the indicator cap and the cut text, on body", errs)
		}
	})
}

func TestAttachments(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	csaf := `{"document":{"csaf_version":"2.0","title":"Adv","tracking":{"id":"X-1"},"distribution":{"tlp":{"label":"WHITE"}}},"vulnerabilities":[{"cve":"CVE-2026-1"}]}`
	red := `{"document":{"csaf_version":"2.0","title":"Red adv","tracking":{"id":"X-2"},"distribution":{"tlp":{"label":"RED"}}}}`
	att := func(name, ctype, body string) string {
		return "Content-Type: " + ctype + "\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(body)
	}
	text := "Content-Type: text/plain\r\n\r\nSee attached."
	tests := []struct {
		name      string
		subject   string
		parts     []string
		opts      Options
		wantTLPs  []gateway.TLP // per event, message first
		wantLabel []string
		errSub    string
	}{
		{"csaf takes the message label as floor", "[TLP:AMBER] adv", []string{text, att("a.json", "application/json", csaf)},
			testDecoders(), []gateway.TLP{"AMBER", "AMBER"}, []string{"attachment:a.json"}, ""},
		{"stricter attachment keeps its label", "[TLP:GREEN] adv", []string{text, att("r.json", "application/octet-stream", red)},
			testDecoders(), []gateway.TLP{"GREEN", "RED"}, []string{"attachment:r.json"}, ""},
		{"unlabelled message leaves the attachment's label", "adv", []string{text, att("a.json", "application/json", csaf)},
			testDecoders(), []gateway.TLP{"", "CLEAR"}, []string{"attachment:a.json"}, ""},
		{"no decoder configured is reported", "[TLP:CLEAR] adv", []string{text, att("a.json", "application/json", csaf)},
			Options{}, []gateway.TLP{"CLEAR"}, []string{"attachment:a.json"}, "no csaf decoder configured"},
		{"decoder failure is reported", "[TLP:CLEAR] adv", []string{text, att("a.json", "application/json", csaf)},
			Options{CSAF: func([]byte) ([]*gateway.Event, []gateway.FieldError, error) { return nil, nil, errors.New("broken") }},
			[]gateway.TLP{"CLEAR"}, []string{"attachment:a.json"}, "cannot be read: broken"},
		{"other attachments are listed, not read", "[TLP:CLEAR] adv", []string{text,
			att("iocs.txt", "text/plain", "192.0.2.1"), att("r.pdf", "application/pdf", "%PDF 192.0.2.2"),
			att("x.zip", "application/zip", "PK"), att("o.json", "application/json", `{"x":1}`)},
			testDecoders(), []gateway.TLP{"CLEAR"}, []string{"attachment:iocs.txt", "attachment:r.pdf", "attachment:x.zip", "attachment:o.json"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, errs, err := DecodeMessage(multipartMsg(tt.subject, "multipart/mixed", tt.parts...), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var tlps []gateway.TLP
			for _, ev := range evs {
				normalize.Event(ev)
				tlps = append(tlps, ev.TLP)
			}
			if !slices.Equal(tlps, tt.wantTLPs) {
				t.Errorf("event TLPs = %q, want %q", tlps, tt.wantTLPs)
			}
			if !slices.Equal(evs[0].Labels, tt.wantLabel) {
				t.Errorf("labels = %q, want %q", evs[0].Labels, tt.wantLabel)
			}
			if len(evs[0].Indicators) != 0 {
				t.Errorf("indicators %v read from attachments", evs[0].Indicators)
			}
			if tt.errSub == "" && len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			if tt.errSub != "" && (len(errs) != 1 || errs[0].Field != "part 2" || !strings.Contains(errs[0].Message, tt.errSub)) {
				t.Errorf("errors = %v, want one on part 2 containing %q", errs, tt.errSub)
			}
		})
	}
}

func TestSniff(t *testing.T) {
	o := testDecoders()
	d := &decoder{o: o}
	tests := []struct{ doc, want string }{
		{`{"document":{"csaf_version":"2.0"}}`, "csaf"},
		{`{"document":{"title":"no version"}}`, ""},
		{`{"Event":{}}`, "misp"},
		{`{"response":[]}`, "misp"},
		{`{"type":"bundle","objects":[]}`, "stix"},
		{`{"type":"indicator"}`, ""},
		{`[1,2]`, ""},
		{`not json`, ""},
	}
	for _, tt := range tests {
		if got, _ := d.sniff([]byte(tt.doc)); got != tt.want {
			t.Errorf("sniff(%s) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}

func TestTransferEncodingDamage(t *testing.T) {
	data := []byte("Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("ok 192.0.2.1 and more text"))[:24] + "!!!")
	ev, errs := decodeOne(t, data, Options{})
	if len(errs) != 1 || errs[0].Field != "body" || !strings.Contains(errs[0].Message, "base64") {
		t.Errorf("errors = %v, want one on body about base64", errs)
	}
	if got := indicatorSet(ev.Indicators, false); !slices.Equal(got, []string{"ipv4 192.0.2.1"}) {
		t.Errorf("indicators = %q, want what decoded before the damage", got)
	}
}

func TestLongValuesAreCut(t *testing.T) {
	body := strings.Repeat("x", maxDescriptionBytes) + "\n192.0.2.1\n"
	ev, errs := decodeOne(t, plainMsg(strings.Repeat("t", 400), body), Options{})
	if n := len([]rune(ev.Title)); n != maxTitleRunes+1 {
		t.Errorf("title has %d runes, want %d and an ellipsis", n, maxTitleRunes)
	}
	if len(ev.Description) > maxDescriptionBytes+len("…") {
		t.Errorf("description is %d bytes", len(ev.Description))
	}
	if got := indicatorSet(ev.Indicators, false); !slices.Equal(got, []string{"ipv4 192.0.2.1"}) {
		t.Errorf("indicators = %q, want the one after the cut", got)
	}
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	if !slices.Equal(fields, []string{"header Subject", "body"}) {
		t.Errorf("errors = %v, want one for the subject and one for the body", errs)
	}
}
