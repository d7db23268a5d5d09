package csv_test

import (
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
	"github.com/schakel/schakel/mappings/csv"
)

func fields(errs []gateway.FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

// Every non-empty cell of every row of the shared Shadowserver fixtures
// reaches the event: ip, port, asn and timestamp as indicator fields, the
// rest as attributes (hostname, tag and severity under those names).
// encoding/csv is the independent reader here; it reads these two files
// the same way Shadowserver and IntelMQ do.
func TestNothingIsLost(t *testing.T) {
	for _, name := range []string{"2021-05-14-scan_exchange-nl.csv", "device_id.csv"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/golden", name))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := stdcsv.NewReader(strings.NewReader(string(data))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: name, Data: data})
			if err != nil || errs != nil {
				t.Fatalf("DecodeReport: %v %v", errs, err)
			}
			header, rows := rows[0], rows[1:]
			if len(ev.Indicators) != len(rows) {
				t.Fatalf("%d indicators for %d rows", len(ev.Indicators), len(rows))
			}
			for i, row := range rows {
				ind := ev.Indicators[i]
				for j, v := range row {
					if v == "" {
						continue
					}
					var got string
					switch header[j] {
					case "ip":
						got = ind.Value
					case "port":
						got = strconv.Itoa(ind.Port)
					case "asn":
						got = strconv.FormatInt(ind.ASN, 10)
					case "timestamp":
						got = ind.Observed.Format(time.DateTime)
					default:
						got = ind.Attributes[header[j]]
					}
					if got != v {
						t.Errorf("row %d column %s: %q became %q", i+1, header[j], v, got)
					}
				}
				if ind.Attributes["report_type"] == "" || ind.Detect {
					t.Errorf("row %d: report_type %q, detect %v", i+1, ind.Attributes["report_type"], ind.Detect)
				}
			}
		})
	}
}

func TestReportTypeTitleAndDates(t *testing.T) {
	const rows = "timestamp,ip,port\n2026-11-19 23:00:00,192.0.2.1,80\n2026-11-20 01:02:03,192.0.2.2,443\n"
	const withType = "timestamp,ip,report_type\n2026-11-20 01:02:03,192.0.2.1,scan_ssl\n,192.0.2.2,\n"
	tests := []struct {
		name, file, data string
		profileType      string
		wantType, title  string
		created          string
	}{
		{name: "Shadowserver file name", file: "2026-11-20-scan_exchange-nl.csv", data: rows,
			wantType: "scan_exchange", title: "scan_exchange (2026-11-20)", created: "2026-11-20T01:02:03Z"},
		{name: "path and extra suffix", file: "/var/spool/shadowserver/2026-11-20-event4_sinkhole_http-nl-geo.csv", data: rows,
			wantType: "event4_sinkhole_http", title: "event4_sinkhole_http (2026-11-20)", created: "2026-11-20T01:02:03Z"},
		{name: "file name date without rows' times", file: "2026-11-21-scan_ftp-as64500.csv", data: "ip\n192.0.2.1\n",
			wantType: "scan_ftp", title: "scan_ftp (2026-11-21)", created: "2026-11-21T00:00:00Z"},
		{name: "type column when the name says nothing", file: "", data: withType,
			wantType: "scan_ssl", title: "scan_ssl (2026-11-20)", created: "2026-11-20T01:02:03Z"},
		{name: "plain file name", file: "blocklist.csv", data: rows,
			wantType: "blocklist", title: "blocklist (2026-11-20)", created: "2026-11-20T01:02:03Z"},
		{name: "nothing at all", file: "", data: "ip\n192.0.2.1\n",
			wantType: "report", title: "report", created: "0001-01-01T00:00:00Z"},
		{name: "profile's type wins", file: "2026-11-20-scan_exchange-nl.csv", data: withType, profileType: "partner_feed",
			wantType: "partner_feed", title: "partner_feed (2026-11-20)", created: "2026-11-20T01:02:03Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := csv.Shadowserver
			p.ReportType = tt.profileType
			ev, errs, err := csv.DecodeReport(p, csv.Report{Name: tt.file, Data: []byte(tt.data)})
			if err != nil || errs != nil {
				t.Fatalf("DecodeReport: %v %v", errs, err)
			}
			if ev.Title != tt.title {
				t.Errorf("title %q, want %q", ev.Title, tt.title)
			}
			if want := []string{"shadowserver", tt.wantType}; !slices.Equal(ev.Labels, want) {
				t.Errorf("labels %q, want %q", ev.Labels, want)
			}
			if got := ev.Created.Format(time.RFC3339); got != tt.created || !ev.Modified.Equal(ev.Created) {
				t.Errorf("created %s modified %s, want both %s", got, ev.Modified.Format(time.RFC3339), tt.created)
			}
			if ev.Source.Ref != filepath.Base(tt.file) && tt.file != "" {
				t.Errorf("ref %q", ev.Source.Ref)
			}
			for i, ind := range ev.Indicators {
				if got := ind.Attributes["report_type"]; got != tt.wantType {
					t.Errorf("indicator %d report_type %q, want %q", i, got, tt.wantType)
				}
			}
		})
	}
}

// A profile for another IP-keyed feed: its own headers, a fixed report
// type and kind.
func TestCustomProfile(t *testing.T) {
	p := csv.Profile{
		Name: "partner",
		Columns: map[string]string{
			csv.FieldIP: "source.ip", csv.FieldPort: "source.port", csv.FieldASN: "source.asn",
			csv.FieldTimestamp: "time.source", csv.FieldHostname: "source.reverse_dns",
			csv.FieldTag: "classification.identifier", csv.FieldSeverity: "Severity",
		},
		ReportType: "partner_abuse",
		Kind:       gateway.KindIncident,
	}
	data := "Source.IP,source.port,source.asn,time.source,source.reverse_dns,classification.identifier,severity,comment\n" +
		"2001:db8::1,22,AS64500,2026-11-20T10:00:00+01:00,ssh.example.nl,ssh-bruteforce,High,seen twice\n"
	ev, errs, err := csv.DecodeReport(p, csv.Report{Name: "export.csv", Data: []byte(data)})
	if err != nil || errs != nil {
		t.Fatalf("DecodeReport: %v %v", errs, err)
	}
	want := gateway.Indicator{
		Type: gateway.TypeIPv6, Value: "2001:db8::1", Port: 22, ASN: 64500,
		Observed: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
		Attributes: map[string]string{
			"hostname": "ssh.example.nl", "tag": "ssh-bruteforce", "severity": "High",
			"report_type": "partner_abuse", "comment": "seen twice", "direction": "source",
		},
	}
	if len(ev.Indicators) != 1 || fmt.Sprint(ev.Indicators[0]) != fmt.Sprint(want) {
		t.Errorf("indicators %+v\nwant %+v", ev.Indicators, want)
	}
	if ev.Kind != gateway.KindIncident || ev.Title != "partner_abuse (2026-11-20)" || !slices.Equal(ev.Labels, []string{"partner", "partner_abuse"}) {
		t.Errorf("kind %q title %q labels %q", ev.Kind, ev.Title, ev.Labels)
	}
}

func TestRowProblems(t *testing.T) {
	data := "timestamp,ip,port,asn\n" +
		"2026-11-20 00:00:00,192.0.2.1,80,64500\n" + // line 2: fine
		",,80,64500\n" + // 3: no ip
		"2026-11-20 00:00:00,not-an-ip,80,64500\n" + // 4
		"2026-11-20 00:00:00,192.0.2.5\n" + // 5: too few fields
		"2026-11-20 00:00:00,192.0.2.6,80,64500,extra\n" + // 6: too many
		"2026-11-20 00:00:00,fe80::1%eth0,80,64500\n" + // 7: zone
		"2026-11-20 00:00:00,192.0.2.8,http,AS-X\n" + // 8: kept, two problems
		"yesterday,192.0.2.9,-1,4294967296\n" // 9: kept, three problems
	ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: "2026-11-20-scan_http-nl.csv", Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 8", "line 9", "line 9", "line 9"}
	if got := fields(errs); !slices.Equal(got, want) {
		t.Errorf("problems at %q, want %q:\n%v", got, want, errs)
	}
	var values []string
	for _, ind := range ev.Indicators {
		values = append(values, ind.Value)
	}
	if want := []string{"192.0.2.1", "192.0.2.8", "192.0.2.9"}; !slices.Equal(values, want) {
		t.Errorf("rows kept %q, want %q", values, want)
	}
	// The kept rows carry the unreadable values as sent.
	if a := ev.Indicators[1].Attributes; a["port"] != "http" || a["asn"] != "AS-X" {
		t.Errorf("row 8 attributes %v", a)
	}
	if a := ev.Indicators[2].Attributes; a["timestamp"] != "yesterday" || a["port"] != "-1" || a["asn"] != "4294967296" {
		t.Errorf("row 9 attributes %v", a)
	}
}

func TestUnreadable(t *testing.T) {
	tests := []struct {
		name, data string
		p          csv.Profile
		noHeader   bool
		msg        string
	}{
		{name: "empty", data: "", p: csv.Shadowserver, noHeader: true},
		{name: "blank lines", data: "\n\r\n", p: csv.Shadowserver, noHeader: true},
		{name: "no ip column", data: "timestamp,addr\n2026-11-20 00:00:00,192.0.2.1\n", p: csv.Shadowserver, msg: "no ip column (looked for ip, src_ip)"},
		{name: "profile without ip", data: "ip\n192.0.2.1\n", p: csv.Profile{Name: "broken"}, msg: `profile "broken" maps no ip column`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, errs, err := csv.DecodeReport(tt.p, csv.Report{Data: []byte(tt.data)})
			if err == nil || ev != nil || errs != nil {
				t.Fatalf("got %v %v %v, want only an error", ev, errs, err)
			}
			if errors.Is(err, csv.ErrNoHeader) != tt.noHeader || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestHeaderOnly(t *testing.T) {
	ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: "2026-11-20-scan_rdp-nl.csv", Data: []byte("timestamp,ip,port\n")})
	if err != nil || errs != nil || ev == nil || len(ev.Indicators) != 0 {
		t.Fatalf("got %+v %v %v; want an event without indicators", ev, errs, err)
	}
}

func TestDecode(t *testing.T) {
	data, err := os.ReadFile("testdata/golden/2021-05-14-scan_exchange-nl.csv")
	if err != nil {
		t.Fatal(err)
	}
	evs, errs, err := csv.Decode(data)
	if err != nil || errs != nil || len(evs) != 1 {
		t.Fatalf("Decode: %d events, %v, %v", len(evs), errs, err)
	}
	ev := evs[0]
	if ev.Kind != gateway.KindNotification || ev.Source.Format != "csv" || ev.Source.Ref != "" || len(ev.Indicators) != 7 {
		t.Errorf("kind %q source %+v, %d indicators", ev.Kind, ev.Source, len(ev.Indicators))
	}
	if evs, errs, err := csv.Decode(nil); err == nil || evs != nil || errs != nil {
		t.Errorf("Decode(nil) = %v %v %v", evs, errs, err)
	}
}

func TestRowLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("ip\n")
	for i := range csv.MaxRows + 3 {
		fmt.Fprintf(&b, "10.%d.%d.%d\n", i>>16&255, i>>8&255, i&255)
	}
	ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Data: []byte(b.String())})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Indicators) != csv.MaxRows {
		t.Errorf("%d indicators, want %d", len(ev.Indicators), csv.MaxRows)
	}
	wantLine := "line " + strconv.Itoa(csv.MaxRows+2)
	if len(errs) != 1 || errs[0].Field != wantLine || !strings.Contains(errs[0].Message, "more than 100000 rows") {
		t.Errorf("problems %v, want one at %s", errs, wantLine)
	}
}

func TestProblemLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("ip\n")
	for range csv.MaxProblems + 500 {
		b.WriteString("bad\n")
	}
	b.WriteString("192.0.2.1\n")
	ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Data: []byte(b.String())})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != csv.MaxProblems+1 || errs[csv.MaxProblems].Message != "500 more problems not listed" {
		t.Errorf("%d problems, last %v", len(errs), errs[len(errs)-1])
	}
	if len(ev.Indicators) != 1 {
		t.Errorf("%d indicators, want the one good row", len(ev.Indicators))
	}
}

// The events the mapping makes pass the pipeline's normaliser whole.
func TestGoldenInputsNormalise(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/golden/*.csv")
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		ev, _, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: filepath.Base(in), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if errs := normalize.Event(ev); errs != nil {
			t.Errorf("%s: %v", in, errs)
		}
	}
}

// A report type whose host is not in ip/src_ip columns reads it from the
// columns its Layout names; the sinkhole stays a counterpart attribute.
func TestLayoutHostColumns(t *testing.T) {
	data := "timestamp,http_referer_ip,http_referer_port,http_referer_asn,dst_ip,dst_port,http_host\n" +
		"2026-11-20 08:00:00,192.0.2.7,51000,64500,198.51.100.1,80,sinkhole.example.net\n"
	ev, errs, err := csv.DecodeReport(csv.Shadowserver, csv.Report{Name: "2026-11-20-event4_sinkhole_http_referer-nl.csv", Data: []byte(data)})
	if err != nil || errs != nil {
		t.Fatalf("DecodeReport: %v %v", errs, err)
	}
	if len(ev.Indicators) != 1 {
		t.Fatalf("indicators %+v", ev.Indicators)
	}
	ind := ev.Indicators[0]
	if ind.Value != "192.0.2.7" || ind.Port != 51000 || ind.ASN != 64500 || ind.Attributes[gateway.AttrDirection] != gateway.DirectionSource {
		t.Errorf("host %+v, want 192.0.2.7 port 51000 AS64500 direction source", ind)
	}
	if ind.Attributes["dst_ip"] != "198.51.100.1" || ind.Attributes["dst_port"] != "80" || ind.Attributes["http_host"] != "sinkhole.example.net" {
		t.Errorf("counterpart attributes %v", ind.Attributes)
	}
}
