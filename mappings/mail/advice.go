package mail

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// remediationNames are CSAF's remediation categories in words.
var remediationNames = map[string]string{
	"vendor_fix":      "Vendor fix",
	"workaround":      "Workaround",
	"mitigation":      "Mitigation",
	"no_fix_planned":  "No fix planned",
	"none_available":  "No fix available",
	"optional_patch":  "Optional patch",
	"fix_planned":     "Fix planned",
	"remediation":     "Remediation",
	"":                "Advice",
	"no_fix_possible": "No fix possible",
}

// advice renders remediations as "What to do" items: "<Category>: <text>",
// then the products it applies to and its link on lines of their own.
func advice(rs []gateway.Remediation, t gateway.TLP) []string {
	var out []string
	for _, r := range rs {
		name, ok := remediationNames[strings.ToLower(strings.TrimSpace(r.Category))]
		if !ok {
			name = singleLine(r.Category)
		}
		s := name
		if txt := strings.TrimSpace(sanitizeLabels(r.Text, t)); txt != "" {
			s += ": " + txt
		}
		if len(r.Products) > 0 {
			ps := make([]string, len(r.Products))
			for i, p := range r.Products {
				ps[i] = sanitizeLabels(singleLine(p), t)
			}
			s += "\nApplies to: " + strings.Join(ps, "; ")
		}
		if u := singleLine(r.URL); u != "" {
			s += "\n" + u
		}
		out = append(out, s)
	}
	return out
}

// references lists further reading after the indicators.
func (d *doc) references(refs []gateway.Reference, t gateway.TLP) {
	var items []string
	for _, r := range refs {
		u := singleLine(r.URL)
		if u == "" {
			continue
		}
		if sum := sanitizeLabels(singleLine(r.Summary), t); sum != "" {
			u = sum + ": " + u
		}
		items = append(items, u)
	}
	if len(items) > 0 {
		d.blocks = append(d.blocks, block{kind: bAdvice, text: "References", items: items})
	}
}

// hiddenAttribute says which indicator attributes are bookkeeping of a
// mapping, not something the source said about the indicator.
func hiddenAttribute(k string) bool {
	return strings.HasPrefix(k, "misp_") || strings.HasPrefix(k, "stix_") ||
		k == normalize.AttrOriginalType || k == AttrTLP
}

// columns adds a table of what the source said about each indicator
// besides its value — for a Shadowserver row, every column of the report
// (direction, port, asn, time, infection, tag, hostname, …) — when any
// indicator has such attributes. Values that look like addresses, host
// names or URLs are defanged like the indicators.
func (d *doc) columns(inds []gateway.Indicator, t gateway.TLP) {
	keys := map[string]bool{}
	var hasPort, hasASN, hasObserved bool
	for _, ind := range inds {
		for k := range ind.Attributes {
			if !hiddenAttribute(k) {
				keys[k] = true
			}
		}
		hasPort = hasPort || ind.Port != 0
		hasASN = hasASN || ind.ASN != 0
		hasObserved = hasObserved || !ind.Observed.IsZero()
	}
	if len(keys) == 0 {
		return
	}
	header := []string{"indicator"}
	if hasPort {
		header = append(header, "port")
	}
	if hasASN {
		header = append(header, "asn")
	}
	if hasObserved {
		header = append(header, "observed")
	}
	fixed := len(header)
	// Direction and report type first, the other columns in name order.
	var rest []string
	for k := range keys {
		if k != gateway.AttrDirection && k != "report_type" {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range []string{gateway.AttrDirection, "report_type"} {
		if keys[k] {
			header = append(header, k)
		}
	}
	header = append(header, rest...)

	rows := make([][]string, 0, len(inds))
	for _, ind := range inds {
		row := make([]string, len(header))
		row[0] = string(ind.Type) + ": " + defang(ind.Type, singleLine(ind.Value))
		for i := 1; i < fixed; i++ {
			switch header[i] {
			case "port":
				if ind.Port != 0 {
					row[i] = strconv.Itoa(ind.Port)
				}
			case "asn":
				if ind.ASN != 0 {
					row[i] = "AS" + strconv.FormatInt(ind.ASN, 10)
				}
			case "observed":
				if !ind.Observed.IsZero() {
					row[i] = ind.Observed.UTC().Format(time.DateTime) + " UTC"
				}
			}
		}
		for i := fixed; i < len(header); i++ {
			if v, ok := ind.Attributes[header[i]]; ok {
				row[i] = sanitizeLabels(defangValue(singleLine(v)), t)
			}
		}
		rows = append(rows, row)
	}
	d.blocks = append(d.blocks, block{kind: bTable, text: "Details per indicator (defanged)", header: header, rows: rows})
}

// defangValue defangs a free-form value that is an IP address, a URL, an
// e-mail address or a host name; anything else is returned as it is.
func defangValue(v string) string {
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Is4() {
			return defang(gateway.TypeIPv4, v)
		}
		return v
	}
	if strings.Contains(v, "://") && !strings.ContainsAny(v, " \t") {
		return defang(gateway.TypeURL, v)
	}
	if strings.Count(v, "@") == 1 && !strings.ContainsAny(v, " \t") && looksLikeHost(v[strings.IndexByte(v, '@')+1:]) {
		return defang(gateway.TypeEmail, v)
	}
	if looksLikeHost(v) {
		return defang(gateway.TypeHostname, v)
	}
	return v
}

// looksLikeHost: dot-separated labels of letters, digits and hyphens, the
// last alphabetic ("mail.example.nl", not the version "15.2.721").
func looksLikeHost(v string) bool {
	labels := strings.Split(strings.TrimSuffix(v, "."), ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	for _, c := range []byte(last) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return len(last) >= 2
}
