package mail

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

var fixedDate = time.Date(2026, 11, 24, 9, 0, 0, 0, time.FixedZone("CET", 3600))

func sampleEvent() *gateway.Event {
	return &gateway.Event{
		ID:          "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11",
		Kind:        gateway.KindAdvisory,
		Title:       "Actief misbruik van Example VPN",
		Description: "Wij zien actief misbruik bij instellingen in de zorg.\nInstalleer de update.",
		TLP:         gateway.TLPAmber,
		Source:      gateway.SourceRef{Name: "zorgcert-mail", Org: "Zorg-CERT", Format: "mail", Ref: "zc-2026-117.1@zorgcert.example"},
		Created:     time.Date(2026, 11, 20, 8, 30, 55, 0, time.UTC),
		Modified:    time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Priority:    gateway.PriorityHigh,
		Assessment:  &gateway.Assessment{Probability: "medium", Impact: "high"},
		Indicators: []gateway.Indicator{
			{Type: gateway.TypeURL, Value: "https://update-check.example-cdn.net/vpn/login", Detect: true},
			{Type: gateway.TypeIPv4, Value: "45.155.205.99", Detect: true, Port: 443},
			{Type: gateway.TypeIPv6, Value: "2001:db8::bad", Detect: true},
			{Type: gateway.TypeCIDR, Value: "198.51.100.0/24", Detect: true},
			{Type: gateway.TypeDomain, Value: "c2.badhost.example", Detect: true},
			{Type: gateway.TypeEmail, Value: "phish@badhost.example"},
			{Type: gateway.TypeSHA256, Value: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Detect: true},
			{Type: gateway.TypeASN, Value: "AS64500", ASN: 64500},
		},
		Vulnerabilities: []gateway.Vulnerability{{CVE: "CVE-2026-12345", CVSS: 9.8, Products: []string{"Example VPN < 5.2.1"}}},
	}
}

func envelope() Envelope {
	return Envelope{
		From:      "Schakel <warnings@schakel.example>",
		To:        []string{"soc@gemeente-utrecht.example"},
		MessageID: "<w-1@schakel.example>",
		Date:      fixedDate,
		PublicURL: "https://schakel.example.org",
	}
}

// encodeCases are rendered to testdata/encode/<name>.golden.eml.
func encodeCases() []struct {
	name   string
	evs    []*gateway.Event
	env    Envelope
	digest bool
} {
	strict := sampleEvent()
	strict.TLP = gateway.TLPAmberStrict
	strict.Title = "Kwetsbaarheid in Grün-Server – actie vereist"
	strict.Priority = gateway.PriorityCritical
	strict.Assessment = &gateway.Assessment{Urgency: "urgent"}
	update := envelope()
	update.InReplyTo = "w-0@schakel.example"
	update.MessageID = "<w-2@schakel.example>"

	clear := &gateway.Event{
		ID: "0b7c3b4e-5d6f-4a1b-8c9d-0e1f2a3b4c5d", Kind: gateway.KindAdvisory,
		Title: "Kwetsbaarheden verholpen in Example VPN Gateway", TLP: gateway.TLPClear,
		Source:          gateway.SourceRef{Org: "NCSC-NL", Ref: "NCSC-2026-0389"},
		Modified:        time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Vulnerabilities: []gateway.Vulnerability{{CVE: "CVE-2026-12345"}, {CVE: "CVE-2026-12346"}},
	}
	list := envelope()
	list.To = []string{"public-warnings@lists.example"}
	list.ListID = "Public warnings <public-warnings.lists.example>"
	list.ListUnsubscribe = "<mailto:public-warnings-leave@lists.example>, <https://lists.example/leave>"
	list.MessageID = ""

	red := sampleEvent()
	red.ID = "3f2e1d0c-1111-4222-8333-944455556666"
	red.TLP = gateway.TLPRed
	red.Title = "Named recipients only"
	red.Indicators = red.Indicators[:1]
	red.Vulnerabilities = nil
	digest := envelope()
	digest.MessageID = "<digest-1@schakel.example>"

	return []struct {
		name   string
		evs    []*gateway.Event
		env    Envelope
		digest bool
	}{
		{"amber", []*gateway.Event{sampleEvent()}, envelope(), false},
		{"amber-strict-update", []*gateway.Event{strict}, update, false},
		{"clear-public-list", []*gateway.Event{clear}, list, false},
		{"digest", []*gateway.Event{clear, sampleEvent(), red}, digest, true},
	}
}

func TestGoldenEncode(t *testing.T) {
	for _, tc := range encodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			var err error
			if tc.digest {
				got, err = EncodeDigest(tc.evs, tc.env)
			} else {
				got, err = Encode(tc.evs[0], tc.env)
			}
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "encode", tc.name+".golden.eml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; got:\n%s", path, got)
			}
		})
	}
}

// parsed is an encoded message read back with the standard library.
type parsed struct {
	header      mail.Header
	subject     string
	plain, html string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	if i := bytes.IndexByte(bytes.ReplaceAll(data, []byte("\r\n"), nil), '\n'); i >= 0 {
		t.Fatalf("bare LF in message at byte %d", i)
	}
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\r")) {
		t.Fatal("bare CR in message")
	}
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: m.Header}
	if p.subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cte := part.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Errorf("part transfer encoding %q, want quoted-printable", cte)
		}
		if ct := part.Header.Get("Content-Type"); !strings.HasSuffix(ct, "charset=utf-8") {
			t.Errorf("part content type %q is not UTF-8", ct)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(part))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(body), "\r\n", "\n")
		switch {
		case strings.HasPrefix(part.Header.Get("Content-Type"), "text/plain"):
			p.plain = text
		case strings.HasPrefix(part.Header.Get("Content-Type"), "text/html"):
			p.html = text
		}
	}
	if p.plain == "" || p.html == "" {
		t.Fatal("message lacks a text or an HTML part")
	}
	for _, line := range strings.Split(string(data), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d characters", len(line))
		}
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	for _, tlp := range gateway.TLPs {
		t.Run(string(tlp), func(t *testing.T) {
			ev := sampleEvent()
			ev.TLP = tlp
			ev.Title = "Ünïcode title for " + string(tlp) + " with a long tail that needs folding in the subject header line"
			out, err := Encode(ev, envelope())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := decodeOne(t, out, Options{})
			if got.Title != ev.Title {
				t.Errorf("title = %q, want %q", got.Title, ev.Title)
			}
			if got.TLP != tlp {
				t.Errorf("tlp = %q, want %q", got.TLP, tlp)
			}
			orig := ev.Clone()
			normalize.Event(orig)
			if g, w := indicatorSet(got.Indicators, false), indicatorSet(orig.Indicators, false); !slices.Equal(g, w) {
				t.Errorf("indicators = %q, want %q", g, w)
			}
			for _, ind := range got.Indicators {
				if ind.Attributes[AttrTLP] != string(tlp) {
					t.Errorf("%s %s decoded under %q, want %q", ind.Type, ind.Value, ind.Attributes[AttrTLP], tlp)
				}
			}
			if g := cves(got); !slices.Equal(g, []string{"CVE-2026-12345"}) {
				t.Errorf("cves = %q", g)
			}
			if got.Assessment == nil || *got.Assessment != *ev.Assessment {
				t.Errorf("assessment = %+v, want %+v", got.Assessment, ev.Assessment)
			}
		})
	}
}

func TestDigestRoundTrip(t *testing.T) {
	a, b := sampleEvent(), sampleEvent()
	a.TLP, b.TLP = gateway.TLPClear, gateway.TLPAmber
	a.Title, b.Title = "First", "Second"
	a.Indicators = []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.1"}}
	b.Indicators = []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.2"}}
	out, err := EncodeDigest([]*gateway.Event{b, a}, envelope())
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	if p.subject != "[TLP:AMBER] Digest: 2 warnings" {
		t.Errorf("subject = %q", p.subject)
	}
	got, _ := decodeOne(t, out, Options{})
	if got.TLP != gateway.TLPAmber {
		t.Errorf("tlp = %q, want AMBER", got.TLP)
	}
	// Each section keeps its own label: the CLEAR warning's indicator is
	// read back under CLEAR, the AMBER one's under AMBER.
	want := []string{"ipv4 192.0.2.1 CLEAR", "ipv4 192.0.2.2 AMBER"}
	if g := indicatorSet(got.Indicators, true); !slices.Equal(g, want) {
		t.Errorf("indicators = %q, want %q", g, want)
	}
}

func TestLabelPlacement(t *testing.T) {
	for _, tlp := range gateway.TLPs {
		t.Run(string(tlp), func(t *testing.T) {
			ev := sampleEvent()
			ev.TLP = tlp
			out, err := Encode(ev, envelope())
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, out)
			if !strings.HasPrefix(p.subject, "["+tlp.Label()+"] ") {
				t.Errorf("subject %q does not start with the label", p.subject)
			}
			if first, _, _ := strings.Cut(p.plain, "\n"); first != tlp.Label() {
				t.Errorf("plain text starts with %q, want the label %s", first, tlp.Label())
			}
			span := "color:" + tlpColours[tlp] + ";"
			i, j := strings.Index(p.html, span), strings.Index(p.html, "<h1>")
			if i < 0 || j < 0 || i > j || !strings.Contains(p.html, "background-color:#000000;"+span) {
				t.Errorf("HTML has no %s label on black before the title", tlp.Label())
			}
			caveat := strings.Contains(p.plain, "Handling: "+HandlingAmberStrict) && strings.Contains(p.html, "Handling: "+HandlingAmberStrict)
			if caveat != (tlp == gateway.TLPAmberStrict) {
				t.Errorf("handling caveat present = %v for %s", caveat, tlp)
			}
		})
	}
}

func TestFIRSTColours(t *testing.T) {
	want := map[gateway.TLP]string{"RED": "#FF2B2B", "AMBER": "#FFC000", "AMBER+STRICT": "#FFC000", "GREEN": "#33FF00", "CLEAR": "#FFFFFF"}
	for tlp, c := range want {
		if tlpColours[tlp] != c {
			t.Errorf("%s colour %q, want %q", tlp, tlpColours[tlp], c)
		}
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*gateway.Event)
		want  string
		ascii bool
	}{
		{"plain", func(*gateway.Event) {}, "[TLP:AMBER] Actief misbruik van Example VPN", true},
		{"critical by priority", func(e *gateway.Event) { e.Priority = gateway.PriorityCritical }, "[URGENT] [TLP:AMBER] Actief misbruik van Example VPN", true},
		{"critical by assessment", func(e *gateway.Event) { e.Assessment = &gateway.Assessment{Probability: "high", Impact: "high"} }, "[URGENT] [TLP:AMBER] Actief misbruik van Example VPN", true},
		{"non-ascii", func(e *gateway.Event) { e.Title = "Grüße – €" }, "[TLP:AMBER] Grüße – €", false},
		{"line breaks collapse", func(e *gateway.Event) { e.Title = "a\r\nBcc: victim@example.com\r\n\r\nbody" }, "[TLP:AMBER] a Bcc: victim@example.com body", true},
		{"looser label in title raised", func(e *gateway.Event) { e.Title = "TLP:CLEAR summary" }, "[TLP:AMBER] TLP:AMBER summary", true},
		{"bidi override shown escaped", func(e *gateway.Event) { e.Title = "invoice\u202egnp.exe" }, `[TLP:AMBER] invoice\u202egnp.exe`, true},
		{"controls shown escaped", func(e *gateway.Event) { e.Title = "a\x1b[2Jb\u0085c" }, `[TLP:AMBER] a\u001b[2Jb\u0085c`, true},
		{"long title capped", func(e *gateway.Event) { e.Title = strings.Repeat("woord ", 100) }, "[TLP:AMBER] " + strings.Repeat("woord ", 33) + "w…", false},
		{"long word encoded", func(e *gateway.Event) { e.Title = "see " + strings.Repeat("x", 120) }, "[TLP:AMBER] see " + strings.Repeat("x", 120), false},
		{"long non-ascii title capped", func(e *gateway.Event) { e.Title = strings.Repeat("é", 512) }, "[TLP:AMBER] " + strings.Repeat("é", 199) + "…", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleEvent()
			tt.edit(ev)
			out, err := Encode(ev, envelope())
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, out)
			if p.subject != tt.want {
				t.Errorf("subject = %q, want %q", p.subject, tt.want)
			}
			raw := p.header.Get("Subject")
			if ascii := !strings.Contains(raw, "=?utf-8?"); ascii != tt.ascii {
				t.Errorf("raw subject %q: plain ASCII = %v, want %v", raw, ascii, tt.ascii)
			}
			if p.header.Get("Bcc") != "" {
				t.Error("title injected a Bcc header")
			}
			head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
			for _, l := range strings.Split(string(head), "\r\n") {
				if len(l) > 78 {
					t.Errorf("header line of %d characters: %q", len(l), l)
				}
			}
		})
	}
}

func TestBodyShowsControlsEscaped(t *testing.T) {
	ev := sampleEvent()
	ev.Title = "invoice\u202egnp.exe"
	ev.Description = "line one\nsee \u2066hidden\u2069 and \x1b[31m"
	out, err := Encode(ev, envelope())
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	for _, part := range []string{p.plain, p.html} {
		if strings.ContainsAny(part, "\u202e\u2066\u2069\x1b") {
			t.Errorf("body carries a raw control or bidi character:\n%s", part)
		}
		for _, want := range []string{`invoice\u202egnp.exe`, `\u2066hidden\u2069`, `\u001b[31m`} {
			if !strings.Contains(part, want) {
				t.Errorf("body lacks %q:\n%s", want, part)
			}
		}
	}
	if !strings.Contains(p.plain, "line one\nsee") {
		t.Errorf("line break in the description lost:\n%s", p.plain)
	}
	if ev.Title != "invoice\u202egnp.exe" {
		t.Errorf("event title changed to %q", ev.Title)
	}
}

func TestEncodeHeaders(t *testing.T) {
	e := envelope()
	e.InReplyTo = "w-0@schakel.example"
	e.ListID = "members.lists.example"
	e.ListUnsubscribe = "mailto:leave@lists.example"
	out, err := Encode(sampleEvent(), e)
	if err != nil {
		t.Fatal(err)
	}
	h := parse(t, out).header
	want := map[string]string{
		"From":             `"Schakel" <warnings@schakel.example>`,
		"To":               "<soc@gemeente-utrecht.example>",
		"Date":             "Tue, 24 Nov 2026 09:00:00 +0100",
		"Message-Id":       "<w-1@schakel.example>",
		"In-Reply-To":      "<w-0@schakel.example>",
		"References":       "<w-0@schakel.example>",
		"List-Id":          "<members.lists.example>",
		"List-Unsubscribe": "<mailto:leave@lists.example>",
		"Mime-Version":     "1.0",
		"Auto-Submitted":   "auto-generated",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// Without list fields there are no list headers, and a generated
	// Message-ID is stable for the same delivery.
	e2 := envelope()
	e2.MessageID = ""
	a, _ := Encode(sampleEvent(), e2)
	b, _ := Encode(sampleEvent(), e2)
	ha := parse(t, a).header
	if ha.Get("List-Id") != "" || ha.Get("In-Reply-To") != "" {
		t.Error("list or reply headers on a direct first message")
	}
	if id := ha.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@schakel.example>") || id != parse(t, b).header.Get("Message-Id") {
		t.Errorf("generated Message-ID %q is not stable or not at the sender's domain", id)
	}
}

func TestFolding(t *testing.T) {
	e := envelope()
	for i := range 12 {
		e.To = append(e.To, "contact"+string(rune('a'+i))+"@gemeente.example")
	}
	ev := sampleEvent()
	ev.Title = strings.Repeat("lange titel ", 16) // under the subject cap
	out, err := Encode(ev, e)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line of %d characters: %q", len(l), l)
		}
	}
	p := parse(t, out)
	if len(p.header["To"]) != 1 || strings.Count(p.header.Get("To"), "@") != 13 {
		t.Errorf("To = %q, want all 13 addresses in one header", p.header.Get("To"))
	}
	if p.subject != "[TLP:AMBER] "+strings.TrimSpace(ev.Title) {
		t.Errorf("subject = %q after unfolding", p.subject)
	}
}

func TestEnvelopeRejected(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Envelope)
	}{
		{"from with CRLF", func(e *Envelope) { e.From = "a@b.example\r\nBcc: x@y.example" }},
		{"to with LF", func(e *Envelope) { e.To = []string{"a@b.example\nBcc: x@y.example"} }},
		{"list id with CR", func(e *Envelope) { e.ListID = "l.example\rBcc: x@y.example" }},
		{"unsubscribe with LF", func(e *Envelope) { e.ListUnsubscribe = "<mailto:a@b>\nX: y" }},
		{"message id with LF", func(e *Envelope) { e.MessageID = "<a@b>\nX: y" }},
		{"in-reply-to with CRLF", func(e *Envelope) { e.InReplyTo = "<a@b>\r\nX: y" }},
		{"handling with LF", func(e *Envelope) { e.Handling = "org only\nX: y" }},
		{"public url with LF", func(e *Envelope) { e.PublicURL = "https://x\nX: y" }},
		{"non-ascii list id", func(e *Envelope) { e.ListID = "Wärnings <w.lists.example>" }},
		{"bad from", func(e *Envelope) { e.From = "not an address" }},
		{"no recipients", func(e *Envelope) { e.To = nil }},
		{"bad message id", func(e *Envelope) { e.MessageID = "no at sign" }},
		{"no date", func(e *Envelope) { e.Date = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := envelope()
			tt.edit(&e)
			out, err := Encode(sampleEvent(), e)
			if err == nil {
				t.Fatalf("accepted; message:\n%s", out)
			}
			if !strings.Contains(err.Error(), "envelope") {
				t.Errorf("error %q does not name the envelope field", err)
			}
		})
	}
}

func TestEventRejected(t *testing.T) {
	tests := []struct {
		name string
		edit func(*gateway.Event)
	}{
		{"no tlp", func(e *gateway.Event) { e.TLP = "" }},
		{"unknown tlp", func(e *gateway.Event) { e.TLP = "PURPLE" }},
		{"empty title", func(e *gateway.Event) { e.Title = " \r\n " }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleEvent()
			tt.edit(ev)
			if _, err := Encode(ev, envelope()); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := Encode(nil, envelope()); err == nil {
		t.Error("nil event accepted")
	}
	if _, err := EncodeDigest(nil, envelope()); err == nil {
		t.Error("empty digest accepted")
	}
}

func TestLooserLabelsInTextAreRaised(t *testing.T) {
	ev := sampleEvent()
	ev.TLP = gateway.TLPAmber
	ev.Description = "TLP:CLEAR\nPublic intro.\nTLP:RED\nOnly for named people."
	out, err := Encode(ev, envelope())
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	for _, part := range []string{p.plain, p.html} {
		if strings.Contains(part, "TLP:CLEAR") {
			t.Error("a TLP:CLEAR label survives in a TLP:AMBER message")
		}
		if !strings.Contains(part, "TLP:RED") {
			t.Error("the stricter TLP:RED label in the text was lost")
		}
	}
	// After the description switched to RED, the lists are labelled AMBER
	// again, directly before them.
	i := strings.LastIndex(p.plain, "TLP:AMBER\n")
	if i < strings.Index(p.plain, "TLP:RED") || i > strings.Index(p.plain, "Vulnerabilities:") {
		t.Error("no TLP:AMBER label between the description and the lists")
	}
}

func TestEncodeDigestFlag(t *testing.T) {
	e := envelope()
	e.Digest = true
	out, err := Encode(sampleEvent(), e)
	if err != nil {
		t.Fatal(err)
	}
	if s := parse(t, out).subject; s != "[TLP:AMBER] Digest: 1 warning" {
		t.Errorf("subject = %q", s)
	}
}
