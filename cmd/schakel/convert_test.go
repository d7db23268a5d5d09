package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/mappings/csaf"
	"github.com/schakel/schakel/mappings/mail"
)

const (
	fixtureCSAF      = "../../mappings/csaf/testdata/golden/cisa_va-24-254-02.json"
	fixtureCSAF21    = "../../mappings/csaf/testdata/golden/oasis-example-2.1_bsi-2022-0001.json"
	fixtureCSAFNCSC  = "../../mappings/csaf/testdata/golden/ncsc-2026-0389.json"
	fixtureSTIX      = "../../mappings/stix/testdata/golden/oasis-indicator-url.json"
	fixtureMISP      = "testdata/webhook/misp-event.json"
	fixtureMail      = "testdata/mail/sector-warning-amber.eml"
	fixtureMailCSAF  = "testdata/mail/csaf-attachment-clear.eml"
	fixtureSinkhole  = "../../mappings/csv/testdata/golden/2026-11-20-event4_sinkhole_http-nl.csv"
	fixtureExchange  = "../../mappings/csv/testdata/golden/2021-05-14-scan_exchange-nl.csv"
	sinkholeFileName = "2026-11-20-event4_sinkhole_http-nl.csv"
)

// runConvert runs `schakel convert args` through the CLI entry with input
// on stdin.
func runConvert(t testing.TB, input []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = convert(args, bytes.NewReader(input), &out, &errb)
	return code, out.String(), errb.String()
}

func readConvertFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Each input format converts its fixture to every output format; the
// canonical output is one valid event per line.
func TestConvertEachFormat(t *testing.T) {
	cases := []struct {
		from, file string
		args       []string
		check      func(t *testing.T, ev gateway.Event)
	}{
		{"misp", fixtureMISP, nil, func(t *testing.T, ev gateway.Event) {
			if ev.Source.Format != "misp" || len(ev.Indicators) == 0 {
				t.Errorf("misp: format %q, %d indicators", ev.Source.Format, len(ev.Indicators))
			}
		}},
		{"stix", fixtureSTIX, nil, func(t *testing.T, ev gateway.Event) {
			if ev.Source.Format != "stix" || len(ev.Indicators) == 0 {
				t.Errorf("stix: format %q, %d indicators", ev.Source.Format, len(ev.Indicators))
			}
		}},
		{"csaf", fixtureCSAF, nil, func(t *testing.T, ev gateway.Event) {
			if ev.Kind != gateway.KindAdvisory || len(ev.Remediations) == 0 || len(ev.References) == 0 {
				t.Errorf("csaf: kind %q, %d remediations, %d references", ev.Kind, len(ev.Remediations), len(ev.References))
			}
			if r := ev.Remediations[0]; r.Category == "" || r.Text == "" || len(r.Products) == 0 {
				t.Errorf("csaf: remediation %+v lacks category, text or products", r)
			}
		}},
		{"mail", fixtureMail, nil, func(t *testing.T, ev gateway.Event) {
			if ev.Source.Format != "mail" || ev.TLP != gateway.TLPAmber || len(ev.Indicators) == 0 {
				t.Errorf("mail: format %q tlp %q, %d indicators", ev.Source.Format, ev.TLP, len(ev.Indicators))
			}
		}},
		{"csv", fixtureSinkhole, []string{"--name", sinkholeFileName, "--tlp", "GREEN"}, func(t *testing.T, ev gateway.Event) {
			if ev.TLP != gateway.TLPGreen || ev.Title != "event4_sinkhole_http (2026-11-20)" || len(ev.Indicators) == 0 {
				t.Errorf("csv: tlp %q title %q, %d indicators", ev.TLP, ev.Title, len(ev.Indicators))
			}
			for _, ind := range ev.Indicators {
				if ind.Attributes[gateway.AttrDirection] != gateway.DirectionSource {
					t.Errorf("csv: %s without direction source", ind.Value)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.from, func(t *testing.T) {
			in := readConvertFixture(t, c.file)
			code, out, stderr := runConvert(t, in, append([]string{"--from", c.from}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				var ev gateway.Event
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("canonical line: %v\n%s", err, l)
				}
				if ev.ID == "" || ev.TLP == "" || ev.Modified.IsZero() {
					t.Errorf("event lacks ingest defaults: id %q tlp %q modified %v", ev.ID, ev.TLP, ev.Modified)
				}
			}
			var first gateway.Event
			_ = json.Unmarshal([]byte(lines[0]), &first)
			c.check(t, first)

			for _, to := range []string{"misp", "stix"} {
				code, out, stderr := runConvert(t, in, append([]string{"--from", c.from, "--to", to}, c.args...)...)
				if code != 0 {
					t.Fatalf("--to %s: exit %d, stderr:\n%s", to, code, stderr)
				}
				var doc map[string]json.RawMessage
				if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &doc); err != nil {
					t.Fatalf("--to %s: %v", to, err)
				}
				key := "Event"
				if to == "stix" {
					key = "objects"
				}
				if _, ok := doc[key]; !ok {
					t.Errorf("--to %s: output has no %q: %.200s", to, key, out)
				}
			}
		})
	}
}

// schakel dispatches convert (a usage error exits 2 before stdin is read).
func TestConvertDispatch(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"convert", "--from", "pdf"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `--from "pdf"`) {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// The same conversion twice gives the same bytes (derived ids are stable).
func TestConvertDeterministic(t *testing.T) {
	in := readConvertFixture(t, fixtureExchange)
	_, a, _ := runConvert(t, in, "--from", "csv", "--to", "misp")
	_, b, _ := runConvert(t, in, "--from", "csv", "--to", "misp")
	if a == "" || a != b {
		t.Error("two conversions of the same report differ")
	}
}

// Exit codes and stderr: 1 naming the field for input that cannot be
// converted, 0 with a warning line per dropped element, 2 for usage.
func TestConvertErrors(t *testing.T) {
	cases := []struct {
		name   string
		input  string
		args   []string
		code   int
		stderr []string
	}{
		{"misp not JSON", "{", []string{"--from", "misp"}, 1, []string{"error: misp: input is not valid JSON"}},
		{"csaf without document", `{"vulnerabilities": []}`, []string{"--from", "csaf"}, 1, []string{"error:", "/document is missing"}},
		{"csv without ip column", "timestamp,port\n2026-11-20 00:00:00,80\n", []string{"--from", "csv"}, 1, []string{"error: csv: header (line 1) has no ip column"}},
		{"csv empty", "", []string{"--from", "csv"}, 1, []string{"error: csv: report has no header line"}},
		{"stix without objects", `{"type":"bundle","id":"bundle--6f9d7d3c-5c5c-4a4a-9b9b-000000000001"}`, []string{"--from", "stix"}, 1, []string{"error:"}},
		{"misp info empty", `{"Event":{"info":"","date":"2026-11-20","Attribute":[{"type":"ip-dst","value":"192.0.2.1"}]}}`, []string{"--from", "misp"}, 0, []string{`warning: /Event/info: info is empty; the title is "MISP event"`}},
		{"csv bad rows dropped", "ip,port\n192.0.2.1,80\n192.0.2.999,80\n", []string{"--from", "csv"}, 0, []string{`warning: line 3: ip "192.0.2.999" is not an IP address`}},
		{"misp bad attribute dropped", `{"Event":{"info":"x","date":"2026-11-20","Attribute":[{"type":"ip-dst","value":"192.0.2.1"},{"type":"ip-dst","value":"not-an-ip"}]}}`, []string{"--from", "misp"}, 0, []string{`warning: /indicators/1/value: "not-an-ip" is not an IP address (left out)`}},
		{"missing --from", "", nil, 2, []string{"--from is required"}},
		{"unknown --to", "", []string{"--from", "csv", "--to", "mail"}, 2, []string{`--to "mail"`}},
		{"unknown profile", "", []string{"--from", "csv", "--profile", "abusech"}, 2, []string{`--profile "abusech"`}},
		{"bad tlp", "", []string{"--from", "csv", "--tlp", "PURPLE"}, 2, []string{"--tlp:"}},
		{"red to misp", "ip\n192.0.2.1\n", []string{"--from", "csv", "--to", "misp", "--tlp", "RED"}, 1, []string{"error:", "TLP:RED is never served over MISP"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, stderr := runConvert(t, []byte(c.input), c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if c.code != 0 && out != "" {
				t.Errorf("failed conversion wrote to stdout: %.200s", out)
			}
		})
	}
}

// A CSAF 2.1 document is accepted: validated against the 2.1 schema with
// no problems, converted with exit 0.
func TestConvertCSAF21(t *testing.T) {
	in := readConvertFixture(t, fixtureCSAF21)
	if errs := csaf.Valid(in); errs != nil {
		t.Fatalf("2.1 fixture invalid: %v", errs)
	}
	code, out, stderr := runConvert(t, in, "--from", "csaf")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var ev gateway.Event
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Kind != gateway.KindAdvisory || len(ev.Remediations) == 0 {
		t.Errorf("event %+v (%v)", ev, err)
	}
}

// The CSAF advisory's remediations reach the canonical JSON and the mail
// warning, where "What to do" comes before the indicators and CVEs.
func TestCSAFAdviceReachesMail(t *testing.T) {
	for _, f := range []string{fixtureCSAF, fixtureCSAFNCSC} {
		code, out, stderr := runConvert(t, readConvertFixture(t, f), "--from", "csaf")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, stderr)
		}
		var ev gateway.Event
		if err := json.Unmarshal([]byte(out), &ev); err != nil {
			t.Fatal(err)
		}
		if f == fixtureCSAFNCSC {
			// The synthetic NCSC advisory has no remediations (NCSC's
			// often lack them), but references and the CWE travel.
			if len(ev.References) == 0 || !strings.Contains(strings.Join(ev.Labels, " "), "cwe:CWE-787") {
				t.Errorf("%s: references %v labels %v", f, ev.References, ev.Labels)
			}
			continue
		}
		if !strings.Contains(out, `"remediations":[{"category":"`) {
			t.Errorf("%s: canonical JSON has no remediations", f)
		}
		msg, err := mail.Encode(&ev, mail.Envelope{From: "s@schakel.example", To: []string{"soc@example.nl"}, Date: ev.Modified})
		if err != nil {
			t.Fatal(err)
		}
		plain := mailPlain(t, msg)
		what := strings.Index(plain, "What to do:")
		vulns := strings.Index(plain, "Vulnerabilities:")
		if what < 0 || vulns < what || !strings.Contains(plain[what:], ev.Remediations[0].Text[:20]) {
			t.Errorf("%s: \"What to do\" at %d, vulnerabilities at %d:\n%s", f, what, vulns, plain)
		}
		if html := string(msg); !strings.Contains(html, "<strong>What to do</strong>") {
			t.Errorf("%s: HTML part lacks the What to do section", f)
		}
	}
}

// A mail with a CSAF attachment converts through the attachment decoder.
func TestConvertMailWithCSAF(t *testing.T) {
	code, out, stderr := runConvert(t, readConvertFixture(t, fixtureMailCSAF), "--from", "mail", "--to", "stix")
	if code != 0 || !strings.Contains(out, `"type":"bundle"`) {
		t.Fatalf("exit %d, stderr %s, out %.200s", code, stderr, out)
	}
}

// FuzzConvert feeds bytes through the CLI entry for each --from and each
// --to: it never panics, exits 0 with output or 1 with an error line, and
// never writes output on failure.
func FuzzConvert(f *testing.F) {
	froms := []string{"misp", "stix", "csaf", "mail", "csv"}
	seeds := map[string][]string{
		"misp": {fixtureMISP},
		"stix": {fixtureSTIX},
		"csaf": {fixtureCSAFNCSC, fixtureCSAF21},
		"mail": {fixtureMail},
		"csv":  {fixtureSinkhole},
	}
	for i, from := range froms {
		for _, name := range seeds[from] {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(uint8(i), data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		from := froms[int(sel)%len(froms)]
		to := []string{"canonical", "misp", "stix"}[int(sel/8)%3]
		code, out, stderr := runConvert(t, data, "--from", from, "--to", to)
		switch code {
		case 0:
			if out == "" {
				t.Fatalf("%s→%s: exit 0 without output", from, to)
			}
		case 1:
			if out != "" || !strings.Contains(stderr, "error:") {
				t.Fatalf("%s→%s: exit 1 with output %q, stderr %q", from, to, out, stderr)
			}
		default:
			t.Fatalf("%s→%s: exit %d: %s", from, to, code, stderr)
		}
	})
}

// MISP → STIX keeps MISP's ids, as misp-stix does: the event's uuid is the
// report's, each attribute's uuid its indicator's or observed-data's; and
// STIX → STIX keeps every id of the source.
func TestConvertKeepsIDs(t *testing.T) {
	in := readConvertFixture(t, fixtureMISP)
	code, out, errs := runConvert(t, in, "--from", "misp", "--to", "stix")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var uuids []string
	for _, m := range regexp.MustCompile(`"uuid":\s*"([0-9a-fA-F-]{36})"`).FindAllStringSubmatch(string(in), -1) {
		uuids = append(uuids, strings.ToLower(m[1]))
	}
	kept := 0
	for _, u := range uuids {
		if strings.Contains(out, "--"+u+`"`) {
			kept++
		}
	}
	if kept == 0 || !strings.Contains(out, `"report--`) {
		t.Fatalf("no MISP uuid became a STIX id:\n%s", out)
	}
	for _, typ := range []string{"indicator", "observed-data"} {
		for _, m := range regexp.MustCompile(`"id":"`+typ+`--([0-9a-f-]{36})"`).FindAllStringSubmatch(out, -1) {
			if !slices.Contains(uuids, m[1]) {
				t.Errorf("%s--%s is not a MISP attribute uuid", typ, m[1])
			}
		}
	}
	in = readConvertFixture(t, fixtureSTIX)
	code, out, errs = runConvert(t, in, "--from", "stix", "--to", "stix")
	if code != 0 {
		t.Fatalf("stix → stix: exit %d: %s", code, errs)
	}
	for _, m := range regexp.MustCompile(`"id":\s*"((?:indicator|threat-actor|malware|attack-pattern|relationship)--[0-9a-f-]{36})"`).FindAllStringSubmatch(string(in), -1) {
		if !strings.Contains(out, `"`+m[1]+`"`) {
			t.Errorf("stix → stix lost %s", m[1])
		}
	}
}

// TestConvertMISPSearchResults: the objects-only and attributes-only
// results of MISP's restSearch convert, grouped by the event they name.
func TestConvertMISPSearchResults(t *testing.T) {
	objects := `{"response":[{"Object":{"id":"7","event_id":"41","name":"domain-ip","uuid":"5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e02",` +
		`"ObjectReference":[],"Attribute":[{"event_id":"41","object_id":"7","object_relation":"domain","type":"domain","value":"objects.example","uuid":"5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e03"}]}}]}`
	attributes := `{"response":{"Attribute":[{"event_id":"41","object_id":"0","type":"domain","value":"attrs.example",` +
		`"uuid":"5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e04","Event":{"id":"41","info":"Campaign A","uuid":"5c1a5ab5-9a1c-4d2e-8a6f-0a0b0c0d0e01"}}]}}`
	for _, c := range []struct{ name, in, want string }{
		{"objects", objects, `"title":"MISP objects of event 41"`},
		{"attributes", attributes, `"title":"Campaign A"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, stderr := runConvert(t, []byte(c.in), "--from", "misp")
			if code != 0 || !strings.Contains(out, c.want) || strings.Count(out, "\n") != 1 {
				t.Errorf("exit %d, stderr %s, out %s; want one event with %s", code, stderr, out, c.want)
			}
		})
	}
	code, _, stderr := runConvert(t, []byte(`{"response":{"Attribute":[]}}`), "--from", "misp")
	if code != 1 || !strings.Contains(stderr, "holds no attributes") {
		t.Errorf("empty attribute result: exit %d, %s", code, stderr)
	}
}
