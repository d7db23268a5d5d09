package mail

import (
	"strings"
	"unicode"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// Caps on what one message can add to an event; the canonical schema
// allows 100,000 indicators, a mail warning never needs that many.
const (
	maxIndicators = 10000
	maxCVEs       = 1000
	maxTokenBytes = 2048
)

// AttrTLP is the indicator attribute naming the TLP label of the text the
// indicator was found in (FIRST: a label applies to the text after it).
const AttrTLP = "tlp"

type indKey struct {
	t gateway.IndicatorType
	v string
}

// extractor collects indicators and CVEs from the text parts of a message,
// without duplicates.
type extractor struct {
	inds    []gateway.Indicator
	index   map[indKey]int
	cves    []gateway.Vulnerability
	cveSeen map[string]bool
	full    bool // maxIndicators reached
	cveFull bool
}

// text scans one text part. start is the label in force before the part's
// first label (the subject's); html says the text came from an HTML part,
// where a signature separator line has lost its trailing space.
func (x *extractor) text(s string, start gateway.TLP, html bool) {
	labels := findLabels(s)
	cur, from, sig := start, 0, false
	for _, l := range labels {
		sig = x.section(s[from:l.start], cur, html, sig)
		cur, from = l.tlp, l.end
	}
	x.section(s[from:], cur, html, sig)
}

// section scans text under one label and returns whether it ends inside a
// signature. Signatures (after "-- ") hold the sender's own links and
// addresses, not indicators; a forwarded or quoted message below one is
// content again.
func (x *extractor) section(s string, tlp gateway.TLP, html, sig bool) bool {
	for line := range strings.Lines(s) {
		l := strings.TrimRight(line, "\r\n")
		switch {
		case l == "-- " || html && strings.TrimSpace(l) == "--":
			sig = true
			continue
		case sig && quoteStart(l):
			sig = false
		}
		if !sig {
			x.line(l, tlp)
		}
	}
	return sig
}

// quoteMarkers start an inline forwarded or quoted message (English and
// Dutch mail clients).
var quoteMarkers = []string{
	"forwarded message", "original message", "begin forwarded message",
	"doorgestuurd bericht", "oorspronkelijk bericht", "origineel bericht",
}

func quoteStart(l string) bool {
	if strings.HasPrefix(l, ">") {
		return true
	}
	for _, m := range quoteMarkers {
		if indexFold(l, m) >= 0 {
			return true
		}
	}
	return false
}

func (x *extractor) line(l string, tlp gateway.TLP) {
	for _, tok := range strings.FieldsFunc(l, unicode.IsSpace) {
		if strings.Contains(tok, "://") {
			x.token(tok, tlp)
			continue
		}
		// Lists like "192.0.2.1,192.0.2.2".
		for _, t := range strings.FieldsFunc(tok, func(r rune) bool { return r == ',' || r == ';' || r == '|' }) {
			x.token(t, tlp)
		}
	}
}

// token classifies one whitespace-separated word and keeps it when it is a
// plausible indicator or CVE.
func (x *extractor) token(tok string, tlp gateway.TLP) {
	if len(tok) < 4 || len(tok) > maxTokenBytes {
		return
	}
	for {
		t := trimOneLeading(tok)
		if t == tok {
			break
		}
		tok = t
	}
	var typ gateway.IndicatorType
	var v string
	for range 4 {
		v = normalize.Refang(tok)
		typ = normalize.Infer(v)
		if typ != gateway.TypeOther {
			break
		}
		t := trimOneTrailing(tok)
		if t == tok {
			break
		}
		tok = t
	}
	if typ == gateway.TypeURL {
		// Sentence punctuation after a link: "(see https://x.example/a)."
		for {
			t := trimOneTrailing(v)
			if t == v {
				break
			}
			v = t
		}
	}
	defanged := v != tok && (strings.ContainsAny(tok, "[({") || hasPrefixFold(tok, "hxxp") || hasPrefixFold(tok, "fxp"))
	if typ == gateway.TypeOther && defanged {
		// "evil[.]example/path": a defanged URL without its scheme.
		if h, _, ok := strings.Cut(v, "/"); ok && normalize.Infer(h) == gateway.TypeDomain {
			typ, v = gateway.TypeDomain, h
		}
	}
	if !plausible(typ, v, tok, defanged) {
		return
	}
	if typ == gateway.TypeCVE {
		x.cve(v)
		return
	}
	x.add(gateway.Indicator{Type: typ, Value: v}, tlp)
}

// Quotes and brackets around a word; the typographic ones are multi-byte.
var (
	leadingQuotes  = []string{"(", "<", "\"", "'", "{", "*", "`", ">", "«", "“", "‘", "„"}
	trailingQuotes = []string{".", ",", ";", ":", "!", "?", "}", ">", "\"", "'", "*", "`", "»", "”", "’"}
)

// trimOneLeading drops one leading quote or bracket; a "[" only when it
// opens nothing that the token closes ("[2001:db8::1]" keeps it).
func trimOneLeading(s string) string {
	for _, q := range leadingQuotes {
		if strings.HasPrefix(s, q) {
			return s[len(q):]
		}
	}
	if strings.HasPrefix(s, "[") && strings.Count(s, "[") > strings.Count(s, "]") {
		return s[1:]
	}
	return s
}

// trimOneTrailing drops one trailing punctuation character or quote; a "]"
// or ")" only when it closes nothing in the token ("…/Foo_(bar)" keeps it).
func trimOneTrailing(s string) string {
	for _, q := range trailingQuotes {
		if strings.HasSuffix(s, q) {
			return s[:len(s)-len(q)]
		}
	}
	if strings.HasSuffix(s, "]") && strings.Count(s, "]") > strings.Count(s, "[") ||
		strings.HasSuffix(s, ")") && strings.Count(s, ")") > strings.Count(s, "(") {
		return s[:len(s)-1]
	}
	return s
}

// plausible applies the conservative rules for free text.
func plausible(t gateway.IndicatorType, v, tok string, defanged bool) bool {
	switch t {
	case gateway.TypeURL:
		scheme, _, _ := strings.Cut(v, "://")
		switch strings.ToLower(scheme) {
		case "http", "https", "ftp", "ftps":
			return true
		}
		return false
	case gateway.TypeDomain:
		return plausibleDomain(v, defanged)
	case gateway.TypeEmail:
		at := strings.LastIndexByte(v, '@')
		return plausibleDomain(v[at+1:], defanged)
	case gateway.TypeIPv4, gateway.TypeIPv6:
		// "::" and "0.0.0.0" mean "any", not a host.
		return v != "::" && v != "0.0.0.0" && strings.Trim(v, "[]") != "::"
	case gateway.TypeCIDR, gateway.TypeCVE:
		return true
	case gateway.TypeMD5, gateway.TypeSHA1, gateway.TypeSHA256, gateway.TypeSHA512:
		// A real digest has both digits and letters; this rejects long
		// numbers and filler such as "000…0" or "deadbeef…".
		return strings.ContainsAny(v, "0123456789") && strings.ContainsAny(v, "abcdefABCDEF")
	case gateway.TypeASN:
		// "AS64500" as written in reports; "as3" is an English word
		// followed by a digit far more often than an ASN.
		return strings.HasPrefix(strings.TrimSpace(tok), "AS")
	}
	return false
}

// detectTypes are the types fit for automated detection when found in a
// warning; e-mail addresses in mail text are mostly contacts, and an ASN is
// context rather than something to alert on.
var detectTypes = map[gateway.IndicatorType]bool{
	gateway.TypeIPv4: true, gateway.TypeIPv6: true, gateway.TypeCIDR: true, gateway.TypeDomain: true,
	gateway.TypeURL: true, gateway.TypeMD5: true, gateway.TypeSHA1: true, gateway.TypeSHA256: true,
	gateway.TypeSHA512: true,
}

func (x *extractor) add(ind gateway.Indicator, tlp gateway.TLP) {
	n, err := normalize.Indicator(ind)
	if err != nil {
		return // a guess from free text that does not hold up
	}
	k := indKey{n.Type, n.Value}
	if i, ok := x.index[k]; ok {
		// Seen in another section or part: keep the stricter label.
		if tlp != "" {
			old := gateway.TLP(x.inds[i].Attributes[AttrTLP])
			x.inds[i].Attributes = map[string]string{AttrTLP: string(strictest(old, tlp))}
		}
		return
	}
	if len(x.inds) >= maxIndicators {
		x.full = true
		return
	}
	if x.index == nil {
		x.index = make(map[indKey]int)
	}
	n.Detect = detectTypes[n.Type]
	if tlp != "" {
		n.Attributes = map[string]string{AttrTLP: string(tlp)}
	}
	x.index[k] = len(x.inds)
	x.inds = append(x.inds, n)
}

func (x *extractor) cve(v string) {
	c, err := normalize.CVE(v)
	if err != nil || x.cveSeen[c] {
		return
	}
	if len(x.cves) >= maxCVEs {
		x.cveFull = true
		return
	}
	if x.cveSeen == nil {
		x.cveSeen = make(map[string]bool)
	}
	x.cveSeen[c] = true
	x.cves = append(x.cves, gateway.Vulnerability{CVE: c})
}
