package mail

import (
	"bytes"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.eml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"Subject: [TLP:AMBER] x\r\n\r\nTLP:RED 192.0.2.1 hxxp://a[.]example/b",
		"Subject: s\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--a--",
		"Subject: s\r\nContent-Type: text/html\r\n\r\n<p>TLP:<b>GREEN</b><script>x</script>&amp;evil[.]example</p>",
		"Subject: =?x-unknown?q?a?= =?utf-8?b?////?=\r\nDate: x\r\nFrom: <>\r\n\r\nKans: hoog Schade: hoog",
		"Subject: s\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nTLP:CLEAR 192.0.2.3",
		"Subject: s\r\nContent-Type: application/json\r\nContent-Disposition: attachment\r\n\r\n{\"document\":{\"csaf_version\":\"2.0\"}}",
	} {
		f.Add([]byte(s))
	}
	opts := testDecoders()
	opts.MaxSize = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, errs, err := DecodeMessage(data, opts)
		if err != nil {
			if evs != nil || errs != nil {
				t.Fatalf("error %v with events or field errors", err)
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no error and no events")
		}
		for _, fe := range errs {
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("field error without field or message: %+v", fe)
			}
		}
		ev := evs[0]
		if ev.Source.Format != Format {
			t.Fatalf("format %q", ev.Source.Format)
		}
		if ev.Title == "" || strings.ContainsFunc(ev.Title, unicode.IsControl) {
			t.Fatalf("title %q is empty or has control characters", ev.Title)
		}
		if strings.ContainsFunc(ev.Source.Ref+ev.Source.Org, unicode.IsControl) {
			t.Fatalf("source %+v has control characters", ev.Source)
		}
		// Nothing in the event is less strict than any label inside it.
		for _, ind := range ev.Indicators {
			if l := gateway.TLP(ind.Attributes[AttrTLP]); l != "" && l.Rank() > ev.TLP.Rank() {
				t.Fatalf("indicator %s under %s in an event at %q", ind.Value, l, ev.TLP)
			}
			if n, err := normalize.Indicator(ind); err != nil || n.Value != ind.Value || n.Type != ind.Type {
				t.Fatalf("indicator %s %q is not canonical: %v", ind.Type, ind.Value, err)
			}
		}
		// The message's own event always passes normalisation.
		if nerrs := normalize.Event(ev); len(nerrs) > 0 {
			t.Fatalf("normalize.Event: %v", nerrs)
		}
		for _, ae := range evs[1:] {
			if ev.TLP != "" {
				if t2, _, err := gateway.ParseTLP(string(ae.TLP)); err == nil && t2.Rank() < ev.TLP.Rank() {
					t.Fatalf("attachment event at %s below the message's %s", t2, ev.TLP)
				}
			}
		}
	})
}

// FuzzEncode checks that no event content can inject a header or break the
// message, and that the TLP survives the round trip.
func FuzzEncode(f *testing.F) {
	f.Add("Actief misbruik", "Text with 192.0.2.1", "hxxp://evil[.]example", uint8(2), "Schakel")
	f.Add("a\r\nBcc: x@y.example", "TLP:CLEAR\r\n.\r\n", "\x00", uint8(0), "Ä \"quoted\" <x>")
	f.Add("=?utf-8?q?x?=", strings.Repeat("é", 200), "192.0.2[.]1", uint8(4), "")
	f.Add("", "", "", uint8(1), "")
	f.Fuzz(func(t *testing.T, title, desc, value string, tlpIndex uint8, name string) {
		tlp := gateway.TLPs[int(tlpIndex)%len(gateway.TLPs)]
		ev := &gateway.Event{
			ID: "e", Kind: gateway.KindIntel, Title: title, Description: desc, TLP: tlp,
			Source:     gateway.SourceRef{Org: name},
			Indicators: []gateway.Indicator{{Type: gateway.TypeURL, Value: value, Comment: desc}},
		}
		e := Envelope{From: "warnings@schakel.example", To: []string{"a@b.example"}, Date: time.Unix(1e9, 0), Handling: "", PublicURL: "https://schakel.example"}
		out, err := Encode(ev, e)
		if err != nil {
			if singleLine(title) != "" {
				t.Fatalf("Encode with title %q: %v", title, err)
			}
			return
		}
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatal("bare LF in output")
		}
		m, err := mail.ReadMessage(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		allowed := map[string]bool{"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true,
			"Auto-Submitted": true, "Mime-Version": true, "Content-Type": true}
		for k, v := range m.Header {
			if !allowed[k] || len(v) != 1 {
				t.Fatalf("unexpected header %s: %q", k, v)
			}
		}
		evs, _, err := DecodeMessage(out, Options{})
		if err != nil {
			t.Fatalf("own output does not decode: %v", err)
		}
		if evs[0].TLP.Rank() < tlp.Rank() {
			t.Fatalf("round trip lowered %s to %s", tlp, evs[0].TLP)
		}
	})
}
