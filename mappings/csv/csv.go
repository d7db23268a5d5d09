// Package csv maps IP-keyed CSV reports — Shadowserver's daily reports and
// feeds shaped like them — to canonical notification events. It is a pure
// translation: no I/O.
//
// One report file becomes one event of kind notification whose indicators
// are the rows, so that each constituent receives only the rows about its
// own addresses (ARCHITECTURE §3). A row becomes an ipv4 or ipv6 indicator
// with Port, ASN and Observed (the row's timestamp, UTC) set, Detect false
// (these are victims' addresses, not addresses to block), and as attributes
// the row's tag, severity, hostname and report_type plus every other
// non-empty column under its own header name, so nothing in the report is
// lost.
//
// Event reports (Shadowserver's event4_* and event6_*) have two sides,
// src_* and dst_*. Shadowserver sends a subscriber the events whose source
// is in the subscriber's networks: the infected or abusive host is the
// src side, while dst is the sinkhole, honeypot or victim elsewhere. So
// src_ip/src_port/src_asn/src_hostname are read as the indicator (the
// Shadowserver profile lists them as alternatives of ip, port, asn and
// hostname) and dst_* are kept as attributes.
//
// Every indicator carries gateway.AttrDirection = "source": the row's
// address and port are the constituent's own host, the source side, as in
// IntelMQ's harmonisation; encoders write it as MISP ip-src/src-port and
// STIX network-traffic src_ref/src_port. ShadowserverReports lists, per
// report type, the host's columns and the counterpart columns.
package csv

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

// Format is the value of Source.Format for events from this mapping.
const Format = "csv"

// Canonical fields a Profile maps to CSV headers.
const (
	FieldIP         = "ip"
	FieldPort       = "port"
	FieldASN        = "asn"
	FieldTimestamp  = "timestamp"
	FieldHostname   = "hostname"
	FieldTag        = "tag"
	FieldSeverity   = "severity"
	FieldReportType = "report_type"
)

// Limits. A report may have at most MaxRows rows, the canonical event's
// limit on indicators; later rows are reported, not mapped. At most
// MaxProblems row problems are listed, then one summary.
const (
	MaxRows     = 100_000
	MaxProblems = 1000
)

// Profile says how one kind of CSV feed maps to the canonical fields.
type Profile struct {
	// Name is the feed's name, used as the first label ("shadowserver").
	Name string
	// Org is the organisation behind the feed (Source.Org), when known.
	Org string
	// Columns maps a canonical field (FieldIP …) to the CSV header that
	// holds it. "a|b" lists alternatives: the first header present in the
	// file is used. Header names match case-insensitively. FieldIP is
	// required.
	Columns map[string]string
	// ReportType, when set, names the report type of every file of this
	// feed; otherwise it comes from the file name
	// (YYYY-MM-DD-<type>[-…].csv), else the FieldReportType column, else
	// the file name without its extension.
	ReportType string
	// Kind of the events; empty means notification.
	Kind gateway.Kind
	// Layouts names, per report type, the columns of the host a row is
	// about; a report of a listed type reads its host from those columns
	// first (see Layout).
	Layouts map[string]Layout
}

// Shadowserver is the profile of Shadowserver's report CSVs: single-host
// reports (scan_*, device_id, …) and event reports (event4_*, event6_*).
var Shadowserver = Profile{
	Name: "shadowserver",
	Org:  "The Shadowserver Foundation",
	Columns: map[string]string{
		FieldIP:         "ip|src_ip",
		FieldPort:       "port|src_port",
		FieldASN:        "asn|src_asn",
		FieldTimestamp:  "timestamp",
		FieldHostname:   "hostname|src_hostname",
		FieldTag:        "tag",
		FieldSeverity:   "severity",
		FieldReportType: "report_type|type",
	},
	Kind:    gateway.KindNotification,
	Layouts: ShadowserverReports,
}

// Report is one report file.
type Report struct {
	Name string // file name, e.g. 2026-11-20-scan_exchange-nl.csv; may be empty
	Data []byte
}

// ErrNoHeader is returned for a report without a header line.
var ErrNoHeader = errors.New("csv: report has no header line")

// Decode maps one Shadowserver report whose file name is unknown.
func Decode(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	ev, errs, err := DecodeReport(Shadowserver, Report{Data: data})
	if err != nil {
		return nil, nil, err
	}
	return []*gateway.Event{ev}, errs, nil
}

// DecodeReport maps one report file to one event whose indicators are its
// rows. A bad row (unparsable ip, wrong number of fields) is reported as a
// FieldError "line N: …" and left out; a bad port, asn or timestamp is
// reported and the row kept with the raw value as an attribute. err is set
// only when the file cannot be read at all: no header, or no ip column.
func DecodeReport(p Profile, r Report) (*gateway.Event, []gateway.FieldError, error) {
	rd := newReader(r.Data)
	header, _, _, ok := rd.next()
	if !ok {
		return nil, nil, ErrNoHeader
	}
	name := baseName(r.Name)
	date, nameType := parseFileName(name)
	if p.ReportType != "" {
		nameType = p.ReportType
	}
	if l, ok := p.Layouts[nameType]; ok && l.Host != "" {
		p.Columns = withHost(p.Columns, l.Host)
	}
	cols, err := resolve(p, header, nameType != "")
	if err != nil {
		return nil, nil, err
	}
	rd.want = len(header)

	d := &decoder{cols: cols, rowType: nameType}
	est := bytes.Count(r.Data, []byte{'\n'}) + 1
	d.inds = make([]gateway.Indicator, 0, min(est, MaxRows))
	for {
		rec, line, cut, ok := rd.next()
		if !ok {
			break
		}
		if len(rec) != len(header) {
			if cut {
				d.problem(line, "%d fields, the header has %d (a quote opened on this line is not closed on it)", len(rec), len(header))
			} else {
				d.problem(line, "%d fields, the header has %d", len(rec), len(header))
			}
			continue
		}
		if len(d.inds) == MaxRows {
			d.problem(line, "the report has more than %d rows; this row and the rest are not mapped", MaxRows)
			break
		}
		d.row(rec, line)
	}

	reportType := nameType
	if reportType == "" {
		reportType = d.colType
	}
	if reportType == "" {
		reportType = strings.TrimSuffix(name, path.Ext(name))
	}
	if reportType == "" {
		reportType = "report"
	}
	if nameType == "" {
		// Rows without their own report_type get the report's.
		for i := range d.inds {
			if _, ok := d.inds[i].Attributes[FieldReportType]; !ok {
				d.inds[i].Attributes[FieldReportType] = reportType
			}
		}
	}

	ev := &gateway.Event{
		Kind:       p.Kind,
		Source:     gateway.SourceRef{Format: Format, Org: p.Org, Ref: name},
		Indicators: d.inds,
	}
	if ev.Kind == "" {
		ev.Kind = gateway.KindNotification
	}
	// A report is as new as its newest row; re-reading the same file then
	// yields the same version (a duplicate, not an update).
	ev.Created, ev.Modified = d.newest, d.newest
	if ev.Created.IsZero() && !date.IsZero() {
		ev.Created, ev.Modified = date, date
	}
	switch {
	case !date.IsZero():
		ev.Title = reportType + " (" + date.Format(time.DateOnly) + ")"
	case !d.newest.IsZero():
		ev.Title = reportType + " (" + d.newest.Format(time.DateOnly) + ")"
	default:
		ev.Title = reportType
	}
	if p.Name != "" {
		ev.Labels = append(ev.Labels, p.Name)
	}
	ev.Labels = append(ev.Labels, reportType)
	if d.dropped > 0 {
		d.errs = append(d.errs, gateway.FieldError{Message: fmt.Sprintf("%d more problems not listed", d.dropped)})
	}
	return ev, d.errs, nil
}

// withHost returns columns with the host columns named by prefix tried
// first: prefix+"ip" for FieldIP, and so on.
func withHost(columns map[string]string, prefix string) map[string]string {
	out := make(map[string]string, len(columns))
	for k, v := range columns {
		out[k] = v
	}
	for _, f := range []string{FieldIP, FieldPort, FieldASN, FieldHostname} {
		if out[f] != "" {
			out[f] = prefix + f + "|" + out[f]
		} else {
			out[f] = prefix + f
		}
	}
	return out
}

func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// parseFileName reads Shadowserver's file names,
// "2026-11-20-scan_exchange-nl.csv": the report date and the report type
// (lower-case letters, digits and underscores up to the next "-").
func parseFileName(name string) (time.Time, string) {
	if len(name) < len("2006-01-02-x") || name[10] != '-' {
		return time.Time{}, ""
	}
	date, err := time.Parse(time.DateOnly, name[:10])
	if err != nil {
		return time.Time{}, ""
	}
	rest := strings.TrimSuffix(name[11:], path.Ext(name))
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		rest = rest[:i]
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return date, ""
		}
	}
	return date, rest
}

// columns holds the index of each canonical field in a record, -1 when the
// file lacks it, and per index whether the column is consumed by a field
// (not repeated as an attribute).
type columns struct {
	ip, port, asn, ts, host, tag, sev, rtype int
	names                                    []string // header names, trimmed
	used                                     []bool
}

// resolve finds the profile's columns in the header. With nameType set the
// report type is known and a report_type/type column is an ordinary one.
func resolve(p Profile, header []string, nameType bool) (*columns, error) {
	c := &columns{names: make([]string, len(header)), used: make([]bool, len(header))}
	index := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" {
			h = "column_" + strconv.Itoa(i+1)
		}
		c.names[i] = h
		k := strings.ToLower(h)
		if _, dup := index[k]; !dup {
			index[k] = i
		}
	}
	find := func(field string) int {
		for _, alt := range strings.Split(p.Columns[field], "|") {
			if i, ok := index[strings.ToLower(strings.TrimSpace(alt))]; ok && alt != "" {
				c.used[i] = true
				return i
			}
		}
		return -1
	}
	if strings.TrimSpace(p.Columns[FieldIP]) == "" {
		return nil, fmt.Errorf("csv: profile %q maps no %s column", p.Name, FieldIP)
	}
	c.ip = find(FieldIP)
	if c.ip < 0 {
		return nil, fmt.Errorf("csv: header (line 1) has no %s column (looked for %s)", FieldIP, strings.ReplaceAll(p.Columns[FieldIP], "|", ", "))
	}
	c.port, c.asn, c.ts = find(FieldPort), find(FieldASN), find(FieldTimestamp)
	c.host, c.tag, c.sev = find(FieldHostname), find(FieldTag), find(FieldSeverity)
	c.rtype = -1
	if !nameType {
		c.rtype = find(FieldReportType)
	}
	return c, nil
}

type decoder struct {
	cols    *columns
	rowType string // the report type every row gets, when known up front
	colType string // the first report type read from a column
	inds    []gateway.Indicator
	errs    []gateway.FieldError
	dropped int
	newest  time.Time
	// The last timestamp parsed: rows come in bursts with the same second.
	lastTS   string
	lastTime time.Time
}

func (d *decoder) problem(line int, format string, args ...any) {
	if len(d.errs) >= MaxProblems {
		d.dropped++
		return
	}
	d.errs = append(d.errs, gateway.FieldError{Field: "line " + strconv.Itoa(line), Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) row(rec []string, line int) {
	c := d.cols
	raw := strings.TrimSpace(rec[c.ip])
	if raw == "" {
		d.problem(line, "%s is empty", c.names[c.ip])
		return
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		d.problem(line, "%s %s is not an IP address", c.names[c.ip], quote(raw))
		return
	}
	if a.Zone() != "" {
		d.problem(line, "%s %s has a zone, which means nothing outside the reporter's network", c.names[c.ip], quote(raw))
		return
	}
	ind := gateway.Indicator{Type: gateway.TypeIPv4, Value: raw}
	if a.Is6() {
		ind.Type = gateway.TypeIPv6 // the normaliser turns ::ffff:a.b.c.d into ipv4
	}

	n := 2 // report_type, direction
	for i, v := range rec {
		if v != "" && (!c.used[i] || i == c.host || i == c.tag || i == c.sev) {
			n++
		}
	}
	attrs := make(map[string]string, n) // exact: a map's size class is costly to outgrow
	for i, v := range rec {
		if !c.used[i] && v != "" {
			attrs[c.names[i]] = v
		}
	}
	set := func(idx int, key string) {
		if idx >= 0 && rec[idx] != "" {
			attrs[key] = rec[idx]
		}
	}
	// The row's address is the host the report is about: the source side
	// (IntelMQ's source.*); counterparts stay under their column names.
	attrs[gateway.AttrDirection] = gateway.DirectionSource
	set(c.host, FieldHostname)
	set(c.tag, FieldTag)
	set(c.sev, FieldSeverity)
	if d.rowType != "" {
		attrs[FieldReportType] = d.rowType
	} else if c.rtype >= 0 {
		if t := strings.TrimSpace(rec[c.rtype]); t != "" {
			attrs[FieldReportType] = t
			if d.colType == "" {
				d.colType = t
			}
		}
	}

	if c.port >= 0 {
		if s := strings.TrimSpace(rec[c.port]); s != "" {
			if p, err := strconv.Atoi(s); err == nil && p >= 0 && p <= 65535 {
				ind.Port = p
			} else {
				d.problem(line, "%s %s is not a port number 0..65535", c.names[c.port], quote(s))
				attrs[c.names[c.port]] = s
			}
		}
	}
	if c.asn >= 0 {
		if s := strings.TrimSpace(rec[c.asn]); s != "" {
			if asn, ok := parseASN(s); ok {
				ind.ASN = asn
			} else {
				d.problem(line, "%s %s is not an AS number", c.names[c.asn], quote(s))
				attrs[c.names[c.asn]] = s
			}
		}
	}
	if c.ts >= 0 {
		if s := strings.TrimSpace(rec[c.ts]); s != "" {
			if t, ok := d.parseTime(s); ok {
				ind.Observed = t
				if t.After(d.newest) {
					d.newest = t
				}
			} else {
				d.problem(line, "%s %s is not a date and time such as 2026-11-20 08:00:00", c.names[c.ts], quote(s))
				attrs[c.names[c.ts]] = s
			}
		}
	}
	ind.Attributes = attrs
	d.inds = append(d.inds, ind)
}

func parseASN(s string) (int64, bool) {
	if len(s) > 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's') {
		s = s[2:]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0 && n <= 1<<32-1
}

// timeLayouts are the forms report timestamps take: Shadowserver writes
// "2026-11-20 08:00:00" in UTC; other feeds use RFC 3339.
var timeLayouts = []string{
	time.DateTime,
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05Z07",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

func (d *decoder) parseTime(s string) (time.Time, bool) {
	if s == d.lastTS {
		return d.lastTime, true
	}
	if t, ok := parseDateTime(s); ok {
		d.lastTS, d.lastTime = s, t
		return t, true
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			d.lastTS, d.lastTime = s, t.UTC()
			return d.lastTime, true
		}
	}
	return time.Time{}, false
}

// parseDateTime reads Shadowserver's "2026-11-20 08:00:00" (UTC) without
// the generality of time.Parse, which costs more than the rest of a row.
func parseDateTime(s string) (time.Time, bool) {
	if len(s) != len(time.DateTime) || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // 31 November rolls over; time.Parse rejects it
		return time.Time{}, false
	}
	return t, true
}

// quote quotes s for a message, cut to a readable length.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strconv.Quote(s)
}
