package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/mappings/csv"
	"github.com/schakel/schakel/mappings/mail"
	"github.com/schakel/schakel/mappings/misp"
	"github.com/schakel/schakel/mappings/stix"
)

// One case per Shadowserver report type in the fixtures (three shared
// IntelMQ fixtures and the synthetic sinkhole event report): the row's
// address is the source side, and every non-empty column of every mapped
// row reaches the mail warning, the webhook JSON, the MISP event and the
// STIX bundle.
func TestShadowserverColumnsReachEveryOutput(t *testing.T) {
	files, _ := filepath.Glob("../../mappings/csv/testdata/golden/*.csv")
	if len(files) < 4 {
		t.Fatalf("found %d report fixtures, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ev, _, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: filepath.Base(f), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			ev.ID, ev.TLP = "report-"+filepath.Base(f), gateway.TLPAmber
			if ev.Modified.IsZero() {
				ev.Modified = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			}

			msg, err := mail.Encode(ev, mail.Envelope{From: "s@schakel.example", To: []string{"soc@example.nl"}, Date: ev.Modified})
			if err != nil {
				t.Fatal(err)
			}
			plain := refang(mailPlain(t, msg))
			hook, err := webhook.Payload("d-1", ev)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Event gateway.Event `json:"event"`
			}
			if err := json.Unmarshal(hook, &body); err != nil {
				t.Fatal(err)
			}
			me, err := misp.EncodeEvent(ev, misp.EncodeOptions{OrgName: "Schakel"})
			if err != nil {
				t.Fatal(err)
			}

			bundle, err := stix.Encode(ev, stix.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			traffic := stixTraffic(t, bundle)

			rows := validRows(data)
			if len(rows) != len(ev.Indicators) || len(me.Object) != len(ev.Indicators) {
				t.Fatalf("%d valid rows, %d indicators, %d MISP objects", len(rows), len(ev.Indicators), len(me.Object))
			}
			for i, row := range rows {
				ind, hind, obj := ev.Indicators[i], body.Event.Indicators[i], me.Object[i]
				if ind.Attributes[gateway.AttrDirection] != gateway.DirectionSource {
					t.Errorf("row %d: direction %q, want source", i, ind.Attributes[gateway.AttrDirection])
				}
				misp := map[string]string{}
				for _, a := range obj.Attribute {
					misp[a.ObjectRelation] = a.Value
				}
				if obj.Name != "ip-port" || misp["ip-src"] != ind.Value || ind.Port != 0 && misp["src-port"] != strconv.Itoa(ind.Port) {
					t.Errorf("row %d: MISP object %s %v, want ip-src %s src-port %d", i, obj.Name, misp, ind.Value, ind.Port)
				}
				nt, ok := traffic[ind.Value]
				if !ok || ind.Port != 0 && nt.srcPort != ind.Port {
					t.Errorf("row %d: STIX network-traffic %+v, want src_ref %s src_port %d", i, nt, ind.Value, ind.Port)
				}
				if d := ind.Attributes["dst_ip"]; d != "" && nt.dst != d {
					t.Errorf("row %d: STIX dst_ref is %q, want the counterpart %s", i, nt.dst, d)
				}
				for col, v := range row {
					v = strings.TrimSpace(v)
					if v == "" {
						continue
					}
					inMail, inHook, inMISP := columnShown(col, v, ind, hind, plain, obj, misp)
					inSTIX := stixShows(bundle, col, v, ind)
					if !inMail || !inHook || !inMISP || !inSTIX {
						t.Errorf("row %d column %s=%q: mail %v, webhook %v, MISP %v, STIX %v", i, col, v, inMail, inHook, inMISP, inSTIX)
					}
				}
			}
		})
	}
}

// trafficEnds is one network-traffic object with its ends resolved.
type trafficEnds struct {
	dst     string
	srcPort int
}

// stixTraffic maps each source-side address in a bundle to its
// network-traffic object.
func stixTraffic(t *testing.T, bundle []byte) map[string]trafficEnds {
	t.Helper()
	var b struct {
		Objects []struct {
			Type    string `json:"type"`
			ID      string `json:"id"`
			Value   string `json:"value"`
			SrcRef  string `json:"src_ref"`
			DstRef  string `json:"dst_ref"`
			SrcPort int    `json:"src_port"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, o := range b.Objects {
		if o.Value != "" {
			values[o.ID] = o.Value
		}
	}
	out := map[string]trafficEnds{}
	for _, o := range b.Objects {
		if o.Type == "network-traffic" && o.SrcRef != "" {
			out[values[o.SrcRef]] = trafficEnds{dst: values[o.DstRef], srcPort: o.SrcPort}
		}
	}
	return out
}

// stixShows says whether a column's value is in the bundle: as a standard
// property (address, port, ASN, time) or in x_schakel_attributes.
func stixShows(bundle []byte, col, v string, ind gateway.Indicator) bool {
	switch strings.ToLower(col) {
	case "ip", "src_ip":
		return strings.Contains(string(bundle), `"value":"`+ind.Value+`"`)
	case "port", "src_port":
		return ind.Port == 0 || strings.Contains(string(bundle), `"src_port":`+strconv.Itoa(ind.Port))
	case "asn", "src_asn":
		return ind.ASN == 0 || strings.Contains(string(bundle), strconv.FormatInt(ind.ASN, 10))
	case "timestamp":
		return ind.Observed.IsZero() || strings.Contains(string(bundle), ind.Observed.UTC().Format("2006-01-02T15:04:05"))
	}
	quoted, _ := json.Marshal(v)
	return strings.Contains(string(bundle), strings.Trim(string(quoted), `"`))
}

// columnShown says whether a CSV column's value is in each output.
func columnShown(col, v string, ind, hind gateway.Indicator, plain string, obj misp.Object, mispRel map[string]string) (inMail, inHook, inMISP bool) {
	lower := strings.ToLower(col)
	if raw, ok := ind.Attributes[col]; ok && raw == v {
		lower = "" // an unreadable port, asn or time is kept as it was
	}
	switch lower {
	case "ip", "src_ip":
		return strings.Contains(plain, string(ind.Type)+": "+ind.Value), hind.Value == ind.Value, mispRel["ip-src"] == ind.Value
	case "port", "src_port":
		p := strconv.Itoa(ind.Port)
		return strings.Contains(plain, "port: "+p), hind.Port == ind.Port, mispRel["src-port"] == p
	case "asn", "src_asn":
		a := strconv.FormatInt(ind.ASN, 10)
		return strings.Contains(plain, "asn: AS"+a), hind.ASN == ind.ASN, strings.Contains(obj.Comment, "asn: "+a)
	case "timestamp":
		ts := ind.Observed.Format(time.DateTime)
		return strings.Contains(plain, "observed: "+ts+" UTC"), hind.Observed.Equal(ind.Observed), obj.Attribute[0].FirstSeen != "" && strings.HasPrefix(obj.Attribute[0].FirstSeen, ind.Observed.Format("2006-01-02T15:04:05"))
	}
	key := strings.ToLower(col)
	switch key {
	case "src_hostname":
		key = csv.FieldHostname
	case "type":
		key = csv.FieldReportType
	}
	got, ok := ind.Attributes[key]
	if !ok {
		got, ok = ind.Attributes[col]
		key = col
	}
	if !ok {
		return false, false, false
	}
	inMail = strings.Contains(plain, key+": "+got)
	inHook = hind.Attributes[key] == got
	switch key {
	case "dst_ip":
		inMISP = mispRel["ip-dst"] == got || strings.Contains(obj.Comment, key+": "+got)
	case "dst_port":
		inMISP = mispRel["dst-port"] == got || strings.Contains(obj.Comment, key+": "+got)
	default:
		inMISP = strings.Contains(obj.Comment, key+": "+got)
	}
	return inMail, inHook, inMISP
}

// validRows reads the report as column→value maps, keeping the rows
// DecodeReport maps (a parsable address in ip or src_ip, all fields).
func validRows(data []byte) []map[string]string {
	header, recs := csv.Records(data)
	var out []map[string]string
	for _, rec := range recs {
		if len(rec) != len(header) {
			continue
		}
		row := map[string]string{}
		for i, h := range header {
			row[h] = rec[i]
		}
		ip := row["ip"]
		if ip == "" {
			ip = row["src_ip"]
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(ip)); err != nil || a.Zone() != "" {
			continue
		}
		out = append(out, row)
	}
	return out
}

// mailPlain returns the text/plain part of an encoded warning.
func mailPlain(t *testing.T, msg []byte) string {
	t.Helper()
	s := strings.ReplaceAll(string(msg), "=\r\n", "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	i := strings.Index(s, "Content-Type: text/plain")
	j := strings.Index(s, "Content-Type: text/html")
	if i < 0 || j < i {
		t.Fatalf("no text/plain part before the HTML part:\n%s", s)
	}
	return qpDecode(s[i:j])
}

// qpDecode undoes quoted-printable =XX escapes (soft breaks are gone).
func qpDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '=' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// refang undoes the mail's defanging, so values compare as the source
// wrote them.
func refang(s string) string {
	return strings.NewReplacer("[.]", ".", "[@]", "@", "hxxps://", "https://", "hxxp://", "http://").Replace(s)
}
