package csv

// Layout says, for one Shadowserver report type, which columns describe the
// constituent's own host and which a counterpart. It follows IntelMQ's
// harmonisation of the same reports (intelmq/bots/parsers/shadowserver):
// the host a report is sent about is IntelMQ's source.* — its address and
// port are the source side in every report type — and a counterpart in the
// row (the sinkhole, C2, honeypot or scanner it talked to: dst_ip,
// dst_port, http_host, …) is destination.*.
//
// The row's host becomes the indicator with attribute
// gateway.AttrDirection = "source"; every other column, counterpart
// included, stays an attribute under its own header name.
type Layout struct {
	// Host is the prefix of the host's columns: "" for ip, port, asn and
	// hostname (single-host reports), "src_" for src_ip, src_port, … (event
	// reports), "http_referer_" for the referer reports.
	Host string
	// Counterpart lists the columns naming the other side, if any.
	Counterpart []string
	// Classification is IntelMQ's classification.type for the report
	// (RSIT taxonomy), for reference; it is not written to events.
	Classification string
}

// ShadowserverReports is the table of report types Schakel knows by name.
// A report type not listed is read with the profile's columns (ip|src_ip,
// port|src_port): its host is still the source side.
var ShadowserverReports = map[string]Layout{
	// Single-host scan and identification reports: the row is the host.
	"device_id":            {Host: "", Classification: "undetermined"},
	"scan_exchange":        {Host: "", Counterpart: []string{"url"}, Classification: "vulnerable-system"},
	"scan_http_vulnerable": {Host: "", Classification: "vulnerable-system"},
	"scan_http":            {Host: "", Classification: "vulnerable-system"},
	"scan_smb":             {Host: "", Classification: "vulnerable-system"},
	"scan_rdp":             {Host: "", Classification: "vulnerable-system"},
	"scan_ssl":             {Host: "", Classification: "vulnerable-system"},
	"scan_telnet":          {Host: "", Classification: "vulnerable-system"},
	// Event reports: the infected or abusive host is src_*; the sinkhole,
	// honeypot or C2 it reached is dst_*.
	"event4_sinkhole":              {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "dst_hostname"}, Classification: "infected-system"},
	"event6_sinkhole":              {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "dst_hostname"}, Classification: "infected-system"},
	"event4_microsoft_sinkhole":    {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "dst_hostname"}, Classification: "infected-system"},
	"event4_sinkhole_http":         {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "dst_hostname", "http_host", "http_url"}, Classification: "infected-system"},
	"event6_sinkhole_http":         {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "dst_hostname", "http_host", "http_url"}, Classification: "infected-system"},
	"event4_sinkhole_dns":          {Host: "src_", Counterpart: []string{"query"}, Classification: "other"},
	"event4_honeypot_brute_force":  {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn"}, Classification: "brute-force"},
	"event4_honeypot_darknet":      {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn"}, Classification: "scanner"},
	"event4_honeypot_http_scan":    {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn"}, Classification: "scanner"},
	"event4_ip_spoofer":            {Host: "src_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn"}, Classification: "masquerade"},
	"event4_sinkhole_http_referer": {Host: "http_referer_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "http_host", "http_url"}, Classification: "other"},
	"event6_sinkhole_http_referer": {Host: "http_referer_", Counterpart: []string{"dst_ip", "dst_port", "dst_asn", "http_host", "http_url"}, Classification: "other"},
}
