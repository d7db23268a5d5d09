package stix

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	stixschema "github.com/schakel/schakel/schemas/stix"
)

// FuzzDecode: any input gives events or an error, never a panic; events
// carry the format and valid types; errors name a JSON pointer.
func FuzzDecode(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/golden/*.json")
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		if data, err := os.ReadFile(in); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"type":"observed-data","id":"observed-data--x","objects":{"0":{"type":"network-traffic","dst_ref":"0"}}}`))
	f.Add([]byte(`{"objects":[{"type":"report","id":"report--r","object_refs":["report--r","x--1"]},{"type":"x","id":"x--1"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, errs, err := Decode(data)
		if err != nil {
			if events != nil || errs != nil {
				t.Fatalf("error %v with %d events and %d field errors", err, len(events), len(errs))
			}
			return
		}
		for _, fe := range errs {
			if fe.Message == "" || (fe.Field != "" && fe.Field[0] != '/') {
				t.Fatalf("field error %+v", fe)
			}
		}
		for _, ev := range events {
			if ev.Source.Format != Format || !ev.Kind.Valid() || ev.Title == "" {
				t.Fatalf("event %+v", ev)
			}
			if len(ev.Indicators) > MaxIndicators {
				t.Fatalf("%d indicators", len(ev.Indicators))
			}
			for _, ind := range ev.Indicators {
				if !ind.Type.Valid() {
					t.Fatalf("indicator type %q", ind.Type)
				}
			}
			if ev.Extensions != nil {
				for _, raw := range ev.Extensions.STIX {
					var o struct{ Type, ID string }
					if err := json.Unmarshal(raw, &o); err != nil || o.Type == "" || o.ID == "" {
						t.Fatalf("pass-through %s: %v", raw, err)
					}
				}
			}
			normalize.Event(ev) // must not panic on what Decode makes
			if ev.Title != "" && !ev.Created.IsZero() {
				_, _ = Encode(ev, EncodeOptions{}) // nor Encode on what it holds
			}
		}
	})
}

// FuzzPattern: the pattern reader never panics, and what it reads renders
// back to a pattern that reads the same.
func FuzzPattern(f *testing.F) {
	for _, p := range []string{
		`[ipv4-addr:value = '192.0.2.1'] OR [file:hashes.'SHA-256' = 'ab']`,
		`[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '1.2.3.4' AND network-traffic:dst_port = 80]`,
		`([a:b = 'c'] REPEATS 5 TIMES) FOLLOWEDBY [d:e[*].f NOT IN (1, 2.5, true, h'ff')]`,
		`[x:y = 'it\'s \\ here' OR (x:z = -5)]`,
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		alts, ok, err := alternatives(p)
		if err != nil || !ok {
			return
		}
		parts := make([]string, len(alts))
		for i, a := range alts {
			parts[i] = render(a)
		}
		again, ok, err := alternatives(strings.Join(parts, " OR "))
		if err != nil || !ok || len(again) != len(alts) {
			t.Fatalf("%q read as %v; rendered %q reads as %v (ok %v, err %v)", p, alts, parts, again, ok, err)
		}
		for i := range alts {
			if len(again[i]) != len(alts[i]) {
				t.Fatalf("branch %d: %v became %v", i, alts[i], again[i])
			}
			for j := range alts[i] {
				if again[i][j] != alts[i][j] {
					t.Fatalf("branch %d test %d: %+v became %+v", i, j, alts[i][j], again[i][j])
				}
			}
		}
	})
}

// FuzzRoundTrip: a normalised indicator of any type and value survives
// canonical → STIX → canonical, and every object Encode writes validates.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), "192.0.2.1", uint16(443), true, "c2")
	f.Add(uint8(5), "http://a.example/it's\\", uint16(0), false, "")
	f.Add(uint8(16), "free text ' \\ ] OR [", uint16(0), true, "x")
	f.Add(uint8(11), "AS64500", uint16(0), false, "")
	f.Add(uint8(13), "Global\\m", uint16(0), true, "")
	f.Fuzz(func(t *testing.T, typ uint8, value string, port uint16, detect bool, comment string) {
		it := gateway.IndicatorTypes[int(typ)%len(gateway.IndicatorTypes)]
		ind := gateway.Indicator{Type: it, Value: value, Detect: detect, Comment: comment, Port: int(port)}
		ev := &gateway.Event{Title: "fuzz", Created: time.Unix(1700000000, 0).UTC(), TLP: gateway.TLPGreen, Indicators: []gateway.Indicator{ind}}
		if errs := normalize.Event(ev); len(errs) > 0 || len(ev.Indicators) != 1 {
			return // not a value Schakel stores
		}
		want := ev.Indicators[0]
		objs, err := EncodeObjects(ev, EncodeOptions{})
		if err != nil {
			t.Fatalf("Encode %+v: %v", want, err)
		}
		var buf bytes.Buffer
		for _, o := range objs {
			if errs := stixschema.ValidateObject(o.JSON); errs != nil {
				t.Fatalf("%s does not validate: %v\n%s", o.ID, errs, o.JSON)
			}
		}
		out, _ := Encode(ev, EncodeOptions{})
		buf.Write(out)
		evs, errs, err := Decode(buf.Bytes())
		if err != nil || len(errs) > 0 || len(evs) != 1 {
			t.Fatalf("Decode: %v %v (%d events)\n%s", err, errs, len(evs), out)
		}
		normalize.Event(evs[0])
		if want.Type == gateway.TypeCVE {
			if len(evs[0].Vulnerabilities) != 1 || evs[0].Vulnerabilities[0].CVE != want.Value {
				t.Fatalf("cve %q came back as %+v", want.Value, evs[0].Vulnerabilities)
			}
			return
		}
		if want.Type == gateway.TypeHostname {
			want.Type = gateway.TypeDomain // STIX has one domain-name type
		}
		if want.Port != 0 && want.Type != gateway.TypeIPv4 && want.Type != gateway.TypeIPv6 && want.Type != gateway.TypeCIDR {
			want.Port = 0 // only addresses carry a port in STIX
		}
		if len(evs[0].Indicators) != 1 {
			t.Fatalf("%+v came back as %+v", want, evs[0].Indicators)
		}
		got := evs[0].Indicators[0]
		if got.Type != want.Type || got.Value != want.Value || got.Port != want.Port || got.Detect != want.Detect || got.Comment != want.Comment {
			t.Fatalf("%+v came back as %+v\n%s", want, got, out)
		}
	})
}
