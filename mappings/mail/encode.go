package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// Envelope is what the e-mail channel knows about one outgoing message.
type Envelope struct {
	From string
	To   []string
	// ListID and ListUnsubscribe are set for mailing lists (RFC 2919,
	// RFC 2369); bare values are put in angle brackets.
	ListID, ListUnsubscribe string
	// MessageID is generated from the content when empty; InReplyTo
	// threads an update under the message that announced the event.
	MessageID, InReplyTo string
	Date                 time.Time
	// PublicURL is the gateway's public address, named in the footer.
	PublicURL string
	// Handling is an extra restriction stated after every TLP label, such
	// as "recipient organisation only"; AMBER+STRICT gets that one when
	// Handling is empty.
	Handling string
	// Digest makes Encode render a one-warning digest.
	Digest bool
	// Sign, when set, returns an ASCII-armored detached OpenPGP signature
	// (SHA-256) over the bytes it is given; the message is then PGP/MIME
	// signed (RFC 3156, multipart/signed), so recipients can check that a
	// warning really comes from the CSIRT.
	Sign func(entity []byte) (string, error)
}

// HandlingAmberStrict is the caveat FIRST's TLP:AMBER+STRICT implies.
const HandlingAmberStrict = "recipient organisation only"

// tlpColours are FIRST's TLP 2.0 colours, shown on a black background.
var tlpColours = map[gateway.TLP]string{
	gateway.TLPRed:         "#FF2B2B",
	gateway.TLPAmberStrict: "#FFC000",
	gateway.TLPAmber:       "#FFC000",
	gateway.TLPGreen:       "#33FF00",
	gateway.TLPClear:       "#FFFFFF",
}

// Encode renders one warning as an RFC 5322 message: subject
// "[TLP:X] title" ("[URGENT] " first for critical events), a
// multipart/alternative body with UTF-8 quoted-printable text/plain and
// text/html parts, the TLP label directly before the labelled text (FIRST),
// the handling caveat after each label, the indicators (defanged) and CVEs
// listed, Message-ID, In-Reply-To and References for updates, and List-Id
// and List-Unsubscribe on lists. Lines end in CRLF. An envelope value with
// a line break is rejected, so no header can be injected.
func Encode(ev *gateway.Event, e Envelope) ([]byte, error) {
	if e.Digest {
		return EncodeDigest([]*gateway.Event{ev}, e)
	}
	w, err := prepare([]*gateway.Event{ev})
	if err != nil {
		return nil, err
	}
	d := newDoc()
	d.label(w[0].tlp, handling(w[0].tlp, e.Handling))
	d.event(w[0], e.Handling, 1, "")
	d.footer(e.PublicURL, w[0])
	prefix := "[" + w[0].tlp.Label() + "] "
	if w[0].critical() {
		prefix = "[URGENT] " + prefix
	}
	return render(prefix, w[0].title, d, e, w)
}

// EncodeDigest renders several warnings for one recipient as one message,
// subject "[TLP:<strictest>] Digest: N warnings", each warning its own
// section under its own label.
func EncodeDigest(evs []*gateway.Event, e Envelope) ([]byte, error) {
	if len(evs) == 0 {
		return nil, errors.New("digest has no events")
	}
	w, err := prepare(evs)
	if err != nil {
		return nil, err
	}
	var top gateway.TLP
	for _, x := range w {
		top = strictest(top, x.tlp)
	}
	n := strconv.Itoa(len(w)) + " warnings"
	if len(w) == 1 {
		n = "1 warning"
	}
	d := newDoc()
	d.label(top, handling(top, e.Handling))
	d.heading(1, "Digest: "+n)
	for i, x := range w {
		d.rule()
		d.label(x.tlp, handling(x.tlp, e.Handling))
		d.event(x, e.Handling, 2, strconv.Itoa(i+1)+". ")
	}
	d.footer(e.PublicURL, warning{})
	return render("["+top.Label()+"] ", "Digest: "+n, d, e, w)
}

// warning is an event checked for rendering.
type warning struct {
	ev    *gateway.Event
	tlp   gateway.TLP
	title string
}

func prepare(evs []*gateway.Event) ([]warning, error) {
	out := make([]warning, 0, len(evs))
	for i, ev := range evs {
		where := "event"
		if len(evs) > 1 {
			where = "event " + strconv.Itoa(i)
		}
		if ev == nil {
			return nil, fmt.Errorf("%s is missing", where)
		}
		t, _, err := gateway.ParseTLP(string(ev.TLP))
		if err != nil {
			// Never send a warning without a label.
			return nil, fmt.Errorf("%s tlp %s cannot be rendered: %w", where, normalize.Quote(string(ev.TLP)), err)
		}
		// Line breaks become spaces; other controls and bidi overrides are
		// shown escaped, never obeyed.
		title := sanitizeLabels(singleLine(normalize.VisibleText(ev.Title)), t)
		if title == "" {
			return nil, fmt.Errorf("%s title is empty", where)
		}
		out = append(out, warning{ev: ev, tlp: t, title: title})
	}
	return out, nil
}

func (w warning) critical() bool {
	return w.ev.Priority == gateway.PriorityCritical || w.ev.Assessment.Critical()
}

func handling(t gateway.TLP, h string) string {
	if h = singleLine(h); h != "" {
		return h
	}
	if t == gateway.TLPAmberStrict {
		return HandlingAmberStrict
	}
	return ""
}

// sanitizeLabels raises every TLP label in s that is looser than t to t.
// Text carried over from a source may hold its own labels; in a message
// sent under t a looser one would tell the reader that what follows may be
// shared more widely than the event allows.
func sanitizeLabels(s string, t gateway.TLP) string {
	labels := findLabels(s)
	if len(labels) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, l := range labels {
		if l.tlp.Rank() >= t.Rank() {
			continue
		}
		b.WriteString(s[last:l.start])
		b.WriteString(t.Label())
		last = l.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// doc is a small document model rendered both as text and as HTML, so the
// two parts always say the same thing in the same order.
type doc struct {
	blocks []block
}

type blockKind int

const (
	bLabel blockKind = iota
	bHeading
	bPara
	bList
	bRule
	bFooter
	bAdvice // a list of prose items, not code
	bTable  // header and rows
)

type block struct {
	kind   blockKind
	tlp    gateway.TLP
	level  int
	text   string
	items  []string
	link   string
	header []string
	rows   [][]string
}

func newDoc() *doc { return &doc{} }

func (d *doc) label(t gateway.TLP, caveat string) {
	d.blocks = append(d.blocks, block{kind: bLabel, tlp: t, text: caveat})
}

func (d *doc) heading(level int, s string) {
	d.blocks = append(d.blocks, block{kind: bHeading, level: level, text: s})
}

func (d *doc) para(s string) {
	if s = strings.TrimSpace(s); s != "" {
		d.blocks = append(d.blocks, block{kind: bPara, text: s})
	}
}

func (d *doc) list(heading string, items []string) {
	if len(items) > 0 {
		d.blocks = append(d.blocks, block{kind: bList, text: heading, items: items})
	}
}

func (d *doc) rule() { d.blocks = append(d.blocks, block{kind: bRule}) }

// event adds one warning's content; the caller has put its label first.
func (d *doc) event(w warning, caveat string, level int, prefix string) {
	ev := w.ev
	d.heading(level, prefix+w.title)
	var meta []string
	if ev.Priority != "" {
		meta = append(meta, "Priority: "+singleLine(string(ev.Priority)))
	}
	if a := ev.Assessment; a != nil {
		if a.Probability != "" {
			meta = append(meta, "Probability: "+singleLine(a.Probability))
		}
		if a.Impact != "" {
			meta = append(meta, "Impact: "+singleLine(a.Impact))
		}
		if a.Urgency != "" {
			meta = append(meta, "Urgency: "+singleLine(a.Urgency))
		}
	}
	d.para(strings.Join(meta, "\n"))
	// What to do comes first: it is what a recipient acts on.
	if adv := advice(ev.Remediations, w.tlp); len(adv) > 0 {
		d.blocks = append(d.blocks, block{kind: bAdvice, text: "What to do", items: adv})
	}
	desc := sanitizeLabels(ev.Description, w.tlp)
	d.para(desc)
	defer d.references(ev.References, w.tlp)
	if len(ev.Vulnerabilities) == 0 && len(ev.Indicators) == 0 {
		return
	}
	if len(findLabels(desc)) > 0 {
		// The description switched labels; the lists are under the
		// event's own label again.
		d.label(w.tlp, handling(w.tlp, caveat))
	}
	var vulns []string
	for _, v := range ev.Vulnerabilities {
		s := singleLine(v.CVE)
		if v.CVSS > 0 {
			s += " (CVSS " + strconv.FormatFloat(v.CVSS, 'f', -1, 64) + ")"
		}
		if len(v.Products) > 0 {
			ps := make([]string, len(v.Products))
			for i, p := range v.Products {
				ps[i] = sanitizeLabels(singleLine(p), w.tlp)
			}
			s += ": " + strings.Join(ps, "; ")
		}
		vulns = append(vulns, s)
	}
	d.list("Vulnerabilities", vulns)
	var inds []string
	for _, ind := range ev.Indicators {
		s := string(ind.Type) + ": " + defang(ind.Type, singleLine(ind.Value))
		if ind.Port != 0 {
			s += " port " + strconv.Itoa(ind.Port)
		}
		if c := singleLine(ind.Comment); c != "" {
			s += " (" + sanitizeLabels(c, w.tlp) + ")"
		}
		inds = append(inds, s)
	}
	if len(inds) > 0 {
		d.list("Indicators (defanged)", inds)
	}
	d.columns(ev.Indicators, w.tlp)
}

// footer goes after the signature separator, where the decoder looks for
// no indicators, so the gateway's address and the source's names (often
// domains or Message-IDs) never come back as indicators.
func (d *doc) footer(publicURL string, w warning) {
	lines := []string{"Sent by Schakel"}
	if ev := w.ev; ev != nil {
		if ev.Source.Org != "" {
			lines = append(lines, "Source: "+sanitizeLabels(singleLine(ev.Source.Org), w.tlp))
		}
		if ev.Source.Ref != "" {
			lines = append(lines, "Source reference: "+sanitizeLabels(singleLine(ev.Source.Ref), w.tlp))
		}
		if ev.ID != "" {
			l := "Event " + singleLine(ev.ID)
			if !ev.Modified.IsZero() {
				l += ", version " + ev.Version()
			}
			lines = append(lines, l)
		}
	}
	d.blocks = append(d.blocks, block{kind: bFooter, items: lines, link: singleLine(publicURL)})
}

// defang makes an indicator safe to show: no clickable links, no
// auto-linked addresses. The decoder refangs all of these.
func defang(t gateway.IndicatorType, v string) string {
	switch t {
	case gateway.TypeURL:
		scheme, rest, ok := strings.Cut(v, "://")
		if !ok {
			return v
		}
		switch strings.ToLower(scheme) {
		case "http":
			scheme = "hxxp"
		case "https":
			scheme = "hxxps"
		case "ftp":
			scheme = "fxp"
		case "ftps":
			scheme = "fxps"
		}
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		return scheme + "://" + strings.ReplaceAll(rest[:end], ".", "[.]") + rest[end:]
	case gateway.TypeDomain, gateway.TypeHostname:
		return strings.ReplaceAll(v, ".", "[.]")
	case gateway.TypeIPv4, gateway.TypeCIDR:
		if !strings.Contains(v, ".") {
			return v // IPv6 CIDR
		}
		i := strings.LastIndexByte(v, '.')
		return v[:i] + "[.]" + v[i+1:]
	case gateway.TypeEmail:
		at := strings.LastIndexByte(v, '@')
		if at < 0 {
			return v
		}
		return v[:at] + "[@]" + strings.ReplaceAll(v[at+1:], ".", "[.]")
	}
	return v
}

func (d *doc) text() string {
	var b strings.Builder
	for i, bl := range d.blocks {
		if i > 0 {
			b.WriteString("\n")
		}
		switch bl.kind {
		case bLabel:
			b.WriteString(bl.tlp.Label() + "\n")
			if bl.text != "" {
				b.WriteString("Handling: " + bl.text + "\n")
			}
		case bHeading:
			b.WriteString(bl.text + "\n")
		case bPara:
			b.WriteString(bl.text + "\n")
		case bList:
			b.WriteString(bl.text + ":\n")
			for _, it := range bl.items {
				b.WriteString("- " + it + "\n")
			}
		case bAdvice:
			b.WriteString(bl.text + ":\n")
			for _, it := range bl.items {
				b.WriteString("- " + strings.ReplaceAll(it, "\n", "\n  ") + "\n")
			}
		case bTable:
			// Too wide for a text table: one group of "column: value"
			// lines per row, empty cells left out.
			b.WriteString(bl.text + ":\n")
			for _, row := range bl.rows {
				for i, c := range row {
					switch {
					case i == 0:
						b.WriteString("- " + c + "\n")
					case c != "":
						b.WriteString("    " + bl.header[i] + ": " + c + "\n")
					}
				}
			}
		case bRule:
			b.WriteString(strings.Repeat("-", 40) + "\n")
		case bFooter:
			b.WriteString("-- \n")
			for _, l := range bl.items {
				b.WriteString(l + "\n")
			}
			if bl.link != "" {
				b.WriteString(bl.link + "\n")
			}
		}
	}
	return normalize.VisibleText(b.String())
}

func (d *doc) html(subject string) string {
	var b strings.Builder
	esc := func(s string) string { return html.EscapeString(normalize.VisibleText(s)) }
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + esc(subject) + "</title></head>\n")
	b.WriteString("<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:14px\">\n")
	for _, bl := range d.blocks {
		switch bl.kind {
		case bLabel:
			b.WriteString("<p><span style=\"background-color:#000000;color:" + tlpColours[bl.tlp] +
				";font-family:monospace;font-weight:bold;padding:2px 6px\">" + esc(bl.tlp.Label()) + "</span>")
			if bl.text != "" {
				b.WriteString("<br>\n<strong>Handling: " + esc(bl.text) + "</strong>")
			}
			b.WriteString("</p>\n")
		case bHeading:
			tag := "h" + strconv.Itoa(bl.level)
			b.WriteString("<" + tag + ">" + esc(bl.text) + "</" + tag + ">\n")
		case bPara:
			b.WriteString("<p>" + strings.ReplaceAll(esc(bl.text), "\n", "<br>\n") + "</p>\n")
		case bList:
			b.WriteString("<p><strong>" + esc(bl.text) + "</strong></p>\n<ul>\n")
			for _, it := range bl.items {
				b.WriteString("<li><code>" + esc(it) + "</code></li>\n")
			}
			b.WriteString("</ul>\n")
		case bAdvice:
			b.WriteString("<p><strong>" + esc(bl.text) + "</strong></p>\n<ul>\n")
			for _, it := range bl.items {
				b.WriteString("<li>" + strings.ReplaceAll(esc(it), "\n", "<br>\n") + "</li>\n")
			}
			b.WriteString("</ul>\n")
		case bTable:
			b.WriteString("<p><strong>" + esc(bl.text) + "</strong></p>\n<table border=\"1\" cellpadding=\"3\" style=\"border-collapse:collapse;font-size:12px\">\n<tr>")
			for _, h := range bl.header {
				b.WriteString("<th>" + esc(h) + "</th>")
			}
			b.WriteString("</tr>\n")
			for _, row := range bl.rows {
				b.WriteString("<tr>")
				for _, c := range row {
					b.WriteString("<td><code>" + esc(c) + "</code></td>")
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</table>\n")
		case bRule:
			b.WriteString("<hr>\n")
		case bFooter:
			b.WriteString("<p style=\"color:#666666;font-size:12px\">-- <br>\n")
			for _, l := range bl.items {
				b.WriteString(esc(l) + "<br>\n")
			}
			if bl.link != "" {
				b.WriteString("<a href=\"" + esc(bl.link) + "\">" + esc(bl.link) + "</a>\n")
			}
			b.WriteString("</p>\n")
		}
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// render writes the headers and the two body parts.
func render(prefix, title string, d *doc, e Envelope, w []warning) ([]byte, error) {
	title = shorten(title, maxSubjectTitleRunes)
	subject := prefix + title
	from, err := checkAddress("from", e.From)
	if err != nil {
		return nil, err
	}
	if len(e.To) == 0 {
		return nil, errors.New("envelope to is empty")
	}
	to := make([]string, len(e.To))
	for i, a := range e.To {
		if to[i], err = checkAddress("to "+strconv.Itoa(i), a); err != nil {
			return nil, err
		}
	}
	if e.Date.IsZero() {
		return nil, errors.New("envelope date is missing")
	}
	for _, f := range []struct{ name, v string }{
		{"list_id", e.ListID}, {"list_unsubscribe", e.ListUnsubscribe}, {"message_id", e.MessageID},
		{"in_reply_to", e.InReplyTo}, {"public_url", e.PublicURL}, {"handling", e.Handling},
	} {
		if strings.ContainsFunc(f.v, unicode.IsControl) {
			return nil, fmt.Errorf("envelope %s contains a line break or control character", f.name)
		}
		if f.name == "list_id" || f.name == "list_unsubscribe" {
			if strings.ContainsFunc(f.v, func(r rune) bool { return r > unicode.MaxASCII }) {
				return nil, fmt.Errorf("envelope %s must be ASCII", f.name)
			}
		}
	}
	msgID := e.MessageID
	if msgID == "" {
		msgID = generatedID(w, e, from)
	}
	if msgID, err = angleID("message_id", msgID); err != nil {
		return nil, err
	}
	plain, htm := d.text(), d.html(subject)
	sum := sha256.Sum256([]byte(msgID))
	// "=_" cannot occur in quoted-printable output, so the boundary can
	// never collide with the body.
	boundary := "=_schakel_" + hex.EncodeToString(sum[:12])

	var b bytes.Buffer
	b.Grow(len(plain) + len(htm) + 2048)
	writeHeader(&b, "From", from)
	writeHeader(&b, "To", strings.Join(to, ", "))
	// The ASCII "[TLP:X]" prefix stays readable in the raw header; the
	// title is RFC 2047-encoded when it is not ASCII or cannot be folded.
	writeHeader(&b, "Subject", prefix+subjectWords(title))
	writeHeader(&b, "Date", e.Date.Format(time.RFC1123Z))
	writeHeader(&b, "Message-ID", msgID)
	if e.InReplyTo != "" {
		irt, err := angleID("in_reply_to", e.InReplyTo)
		if err != nil {
			return nil, err
		}
		writeHeader(&b, "In-Reply-To", irt)
		writeHeader(&b, "References", irt)
	}
	if e.ListID != "" {
		writeHeader(&b, "List-Id", bracket(e.ListID))
	}
	if e.ListUnsubscribe != "" {
		writeHeader(&b, "List-Unsubscribe", bracket(e.ListUnsubscribe))
	}
	writeHeader(&b, "Auto-Submitted", "auto-generated")
	writeHeader(&b, "MIME-Version", "1.0")
	if e.Sign == nil {
		if err := alternative(&b, boundary, plain, htm); err != nil {
			return nil, err
		}
		b.WriteString("\r\n")
		return b.Bytes(), nil
	}
	// RFC 3156: the signature covers the whole first part, its headers
	// included, up to the CRLF before the next delimiter. The body is
	// quoted-printable, so no MTA re-encodes it on the way.
	var inner bytes.Buffer
	if err := alternative(&inner, boundary, plain, htm); err != nil {
		return nil, err
	}
	sig, err := e.Sign(inner.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	outer := "=_schakel_signed_" + hex.EncodeToString(sum[12:24])
	writeHeader(&b, "Content-Type", `multipart/signed; boundary="`+outer+`"; micalg=pgp-sha256; protocol="application/pgp-signature"`)
	b.WriteString("\r\n--" + outer + "\r\n")
	b.Write(inner.Bytes())
	b.WriteString("\r\n--" + outer + "\r\n")
	writeHeader(&b, "Content-Type", `application/pgp-signature; name="signature.asc"`)
	writeHeader(&b, "Content-Description", "OpenPGP digital signature")
	writeHeader(&b, "Content-Disposition", `attachment; filename="signature.asc"`)
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.TrimRight(sig, "\r\n"), "\n", "\r\n"))
	b.WriteString("\r\n--" + outer + "--\r\n")
	return b.Bytes(), nil
}

// alternative writes the multipart/alternative entity (its Content-Type
// header, a blank line, the plain and HTML parts), ending with the close
// delimiter and no line break after it.
func alternative(b *bytes.Buffer, boundary, plain, htm string) error {
	writeHeader(b, "Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, p := range []struct{ ct, body string }{{"text/plain", plain}, {"text/html", htm}} {
		b.WriteString("--" + boundary + "\r\n")
		writeHeader(b, "Content-Type", p.ct+"; charset=utf-8")
		writeHeader(b, "Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		qp := quotedprintable.NewWriter(b)
		if _, err := qp.Write([]byte(p.body)); err != nil {
			return err
		}
		if err := qp.Close(); err != nil {
			return err
		}
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--")
	return nil
}

func checkAddress(field, s string) (string, error) {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("envelope %s contains a line break or control character", field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("envelope %s %s is not an e-mail address: %w", field, normalize.Quote(s), err)
	}
	return a.String(), nil
}

// angleID checks a msg-id and puts it in angle brackets.
func angleID(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if s == "" || strings.ContainsAny(s, "<> \t") || !strings.Contains(s, "@") {
		return "", fmt.Errorf("envelope %s %s must look like <id@domain>", field, normalize.Quote(s))
	}
	for _, r := range s {
		if r > unicode.MaxASCII {
			return "", fmt.Errorf("envelope %s %s must be ASCII", field, normalize.Quote(s))
		}
	}
	return "<" + s + ">", nil
}

func bracket(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "<") {
		return s
	}
	return "<" + s + ">"
}

// generatedID derives a Message-ID from what is sent, so a retry of the same
// delivery carries the same id and receivers can drop the duplicate.
func generatedID(w []warning, e Envelope, from string) string {
	h := sha256.New()
	for _, x := range w {
		h.Write([]byte(x.ev.ID + "\x00" + x.ev.Version() + "\x00"))
	}
	h.Write([]byte(strings.Join(e.To, ",") + "\x00" + e.Date.UTC().Format(time.RFC3339)))
	domain := "schakel.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 {
		domain = strings.TrimSuffix(from[at+1:], ">")
	}
	return hex.EncodeToString(h.Sum(nil)[:16]) + "@" + domain
}

// maxSubjectTitleRunes bounds the title in a Subject: mail clients show
// far less, and the whole title is in the body.
const maxSubjectTitleRunes = 200

// shorten cuts s to limit runes, marking the cut with an ellipsis.
func shorten(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:limit-1])) + "…"
}

// subjectWords renders title for the Subject header so that writeHeader
// can fold it into lines of at most 78 characters (RFC 5322 2.1.1): plain
// ASCII when every word fits on a line, otherwise RFC 2047 encoded-words,
// which the encoder keeps to 75 characters each.
func subjectWords(title string) string {
	if s := mime.QEncoding.Encode("utf-8", title); s != title {
		return s
	}
	for w := range strings.FieldsSeq(title) {
		if len(w) > maxPlainWord {
			return qWords(title)
		}
	}
	return title
}

// maxPlainWord is the longest word that still fits on a folded line
// (" [URGENT] [TLP:AMBER+STRICT] " may precede it on the first).
const maxPlainWord = 40

// qWords Q-encodes ASCII s (RFC 2047 4.2) as encoded-words of at most 75
// characters separated by spaces; mime.WordEncoder leaves ASCII as it is.
func qWords(s string) string {
	const open, end = "=?utf-8?q?", "?="
	var out, w strings.Builder
	flush := func() {
		if w.Len() == 0 {
			return
		}
		if out.Len() > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(open + w.String() + end)
		w.Reset()
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		var enc string
		switch {
		case c == ' ':
			enc = "_"
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', strings.IndexByte("!*+-/", c) >= 0:
			enc = string(c)
		default:
			enc = fmt.Sprintf("=%02X", c)
		}
		if len(open)+w.Len()+len(enc)+len(end) > 75 {
			flush()
		}
		w.WriteString(enc)
	}
	flush()
	return out.String()
}

// writeHeader writes "Name: value" folded at spaces to lines of at most 78
// characters where the value allows.
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ": " + value
	const limit = 78
	for len(line) > limit {
		cut := strings.LastIndexByte(line[:limit+1], ' ')
		if cut <= len(name)+1 {
			// A word longer than a line: break after it instead.
			next := strings.IndexByte(line[limit:], ' ')
			if next < 0 {
				break
			}
			cut = limit + next
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n")
		line = line[cut:] // keeps the space, which is the folding white space
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}
