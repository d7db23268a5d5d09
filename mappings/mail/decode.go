// Package mail maps e-mail (RFC 5322, MIME) to canonical events and renders
// canonical events as TLP-labelled e-mail warnings. It does no I/O: the
// connectors read mailboxes and talk SMTP.
//
// Inbound, a message becomes one event: the subject is the title, the TLP
// comes from the subject and from FIRST-style labels in the body (the event
// takes the strictest), indicators and CVEs are extracted from the text and
// HTML parts, and CSAF, MISP and STIX JSON attachments are handed to the
// injected decoders, whose events are returned after the message's own.
package mail

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

// Format is the Source.Format of events decoded from mail.
const Format = "mail"

// AttachmentDecoder maps one attached document to canonical events (the
// Decode function of mappings/csaf, misp or stix). Decoders are injected so
// this package does not import the other mappings.
type AttachmentDecoder func(data []byte) ([]*gateway.Event, []gateway.FieldError, error)

// Options configure DecodeMessage. Zero values take the defaults.
type Options struct {
	CSAF, MISP, STIX AttachmentDecoder
	// MaxSize bounds the raw message in bytes (default 25 MiB).
	MaxSize int
	// MaxParts bounds the number of MIME parts read (default 100).
	MaxParts int
	// MaxDepth bounds multipart and message/rfc822 nesting (default 10).
	MaxDepth int
}

// Defaults for Options.
const (
	DefaultMaxSize  = 25 << 20
	DefaultMaxParts = 100
	DefaultMaxDepth = 10
)

// LabelAttachmentPrefix starts the label that lists an attachment:
// "attachment:report.pdf".
const LabelAttachmentPrefix = "attachment:"

// Bounds on what is copied into the event.
const (
	maxTitleRunes       = 300
	maxDescriptionBytes = normalize.MaxDescriptionSize - len("…") // the cut text ends with an ellipsis
)

// Decode maps one RFC 5322 message to canonical events with the default
// Options and no attachment decoders.
func Decode(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	return DecodeMessage(data, Options{})
}

// DecodeMessage maps one RFC 5322 message to canonical events: the
// message's own event first, then the events of decoded attachments.
// Problems with part of the message (an unreadable part, a bad header, an
// attachment a decoder rejects, a limit reached) are FieldErrors naming the
// header ("header Date") or MIME part ("part 2.1"); err is only for input
// that is not a readable e-mail message at all.
func DecodeMessage(data []byte, o Options) ([]*gateway.Event, []gateway.FieldError, error) {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if len(data) > o.MaxSize {
		return nil, nil, fmt.Errorf("message is %d bytes long; the limit is %d", len(data), o.MaxSize)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("message header cannot be read: %w", err)
	}
	h := textproto.MIMEHeader(msg.Header)
	if h.Get("From") == "" && h.Get("Date") == "" && h.Get("Subject") == "" && h.Get("Message-Id") == "" &&
		h.Get("Content-Type") == "" && h.Get("Mime-Version") == "" {
		return nil, nil, errors.New("not an e-mail message: it has no From, Date, Subject, Message-ID or MIME header")
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("message body cannot be read: %w", err)
	}

	d := &decoder{o: o}
	ev := &gateway.Event{Source: gateway.SourceRef{Format: Format}}
	subject := d.headers(h, ev)
	content := d.walk(h, body, "", 0)

	subjLabels := findLabels(subject)
	var subjTLP gateway.TLP
	white := false
	for _, l := range subjLabels {
		subjTLP = strictest(subjTLP, l.tlp)
		white = white || l.white
	}
	tlp := subjTLP
	x := &extractor{}
	a := &gateway.Assessment{}
	for _, t := range d.texts {
		for _, l := range findLabels(t.text) {
			tlp = strictest(tlp, l.tlp)
			white = white || l.white
		}
		x.text(t.text, subjTLP, t.html)
		assess(a, t.text)
	}
	subjectShorthand(a, subject)
	if x.full {
		d.fail("body", fmt.Sprintf("more than %d indicators; the rest are not read", maxIndicators))
	}
	if x.cveFull {
		d.fail("body", fmt.Sprintf("more than %d CVEs; the rest are not read", maxCVEs))
	}

	title, tags, cut := cleanSubject(stripLabels(subject, subjLabels))
	if cut {
		d.fail("header Subject", fmt.Sprintf("subject is longer than %d characters; the title is cut", maxTitleRunes))
	}
	if title == "" {
		title = firstLine(content.desc)
		if title == "" && len(tags) > 0 {
			title = strings.Join(tags, " ")
		}
		if title == "" {
			if content.desc == "" && len(d.events) == 0 && len(d.attachments) == 0 {
				return nil, nil, errors.New("message has no subject, no text and no attachments")
			}
			title = "(no subject)"
		}
		d.fail("header Subject", "subject is missing or has no title text; the title is taken from the body")
	}
	ev.Title = title
	ev.Description = content.desc
	if len(ev.Description) > maxDescriptionBytes {
		// Indicators came from the whole text; the stored copy is bounded.
		d.fail("body", fmt.Sprintf("text is longer than %d bytes; the description is cut", maxDescriptionBytes))
		ev.Description = strings.ToValidUTF8(ev.Description[:maxDescriptionBytes], "") + "…"
	}
	ev.TLP = tlp
	ev.Labels = append(ev.Labels, tags...)
	if white && tlp == gateway.TLPClear {
		ev.Labels = append(ev.Labels, normalize.LabelTLPWhite)
	}
	ev.Labels = append(ev.Labels, d.attachments...)
	ev.Indicators = x.inds
	ev.Vulnerabilities = x.cves
	ev.Kind = gateway.KindIntel
	if len(x.cves) > 0 {
		ev.Kind = gateway.KindAdvisory
	}
	if *a != (gateway.Assessment{}) {
		ev.Assessment = a
		if a.Critical() {
			ev.Priority = gateway.PriorityCritical
		}
	}

	out := make([]*gateway.Event, 0, 1+len(d.events))
	out = append(out, ev)
	for _, ae := range d.events {
		if ae == nil {
			continue
		}
		inheritTLP(ae, tlp)
		if ae.Source.Org == "" {
			ae.Source.Org = ev.Source.Org
		}
		out = append(out, ae)
	}
	return out, d.errs, nil
}

// inheritTLP raises an attachment's event to at least the message's label:
// a document sent under TLP:AMBER is not CLEAR because its own marking says
// so. An unreadable marking is left for the pipeline to reject.
func inheritTLP(ev *gateway.Event, floor gateway.TLP) {
	if floor == "" {
		return
	}
	if strings.TrimSpace(string(ev.TLP)) == "" {
		ev.TLP = floor
		return
	}
	t, legacy, err := gateway.ParseTLP(string(ev.TLP))
	if err != nil {
		return
	}
	if legacy && t.Rank() >= floor.Rank() {
		return // keep "WHITE" so normalisation records the original label
	}
	ev.TLP = strictest(t, floor)
}

type textPart struct {
	text string
	html bool
}

// content is what a (sub)tree of parts contributes to the description.
type content struct {
	desc  string
	plain bool // desc came from a text/plain part
}

type decoder struct {
	o           Options
	errs        []gateway.FieldError
	parts       int
	read        int  // bytes of part bodies read
	stopped     bool // a limit was reached: read no further parts
	texts       []textPart
	attachments []string
	events      []*gateway.Event
}

func (d *decoder) fail(field, msg string) {
	d.errs = append(d.errs, gateway.FieldError{Field: field, Message: msg})
}

// headers reads From, Date and Message-ID into ev and returns the decoded
// subject.
func (d *decoder) headers(h textproto.MIMEHeader, ev *gateway.Event) string {
	subject := ""
	if raw := h.Get("Subject"); raw != "" {
		s, err := decodeHeader(raw)
		if err != nil {
			d.fail("header Subject", fmt.Sprintf("subject kept undecoded: %v", err))
		}
		subject = s
	}
	if raw := h.Get("From"); raw != "" {
		ev.Source.Org = d.org(raw)
	}
	if raw := h.Get("Date"); raw != "" {
		t, err := mail.ParseDate(raw)
		if err != nil {
			d.fail("header Date", fmt.Sprintf("date %s cannot be read", normalize.Quote(raw)))
		} else {
			ev.Created, ev.Modified = t.UTC(), t.UTC()
		}
	}
	if raw := h.Get("Message-Id"); raw != "" {
		ev.Source.Ref = messageID(raw)
	}
	return subject
}

var addressParser = &mail.AddressParser{WordDecoder: wordDecoder}

// org names the sender: the display name, else the domain of the address.
func (d *decoder) org(raw string) string {
	addr, err := addressParser.Parse(raw)
	if err != nil {
		s, derr := decodeHeader(raw)
		if derr != nil {
			d.fail("header From", fmt.Sprintf("sender kept undecoded: %v", derr))
		} else {
			d.fail("header From", fmt.Sprintf("sender address cannot be read: %v", err))
		}
		return singleLine(s)
	}
	if name := singleLine(addr.Name); name != "" {
		return name
	}
	if at := strings.LastIndexByte(addr.Address, '@'); at >= 0 {
		return strings.ToLower(addr.Address[at+1:])
	}
	return addr.Address
}

// messageID returns the id inside the first "<…>", or the trimmed value.
func messageID(raw string) string {
	s := strings.TrimSpace(raw)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	s = singleLine(s)
	if len(s) > 998 {
		s = s[:998]
	}
	return s
}

// walk reads one MIME entity (the message, a part, an attached message).
func (d *decoder) walk(h textproto.MIMEHeader, body []byte, loc string, depth int) content {
	where := loc
	if where == "" {
		where = "body"
	}
	mediaType, params := d.contentType(h, where)
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := d.filename(params["name"], dparams["filename"])

	if strings.HasPrefix(mediaType, "multipart/") {
		return d.multipart(mediaType, params["boundary"], body, loc, depth)
	}
	data, ok := d.transferDecode(h, body, where)
	if !ok {
		return content{}
	}
	attachment := disp == "attachment" || name != "" && disp != "inline"
	switch {
	case mediaType == "message/rfc822" || mediaType == "message/global":
		if depth+1 > d.o.MaxDepth {
			d.fail(where, fmt.Sprintf("attached message nested deeper than %d levels is not read", d.o.MaxDepth))
			return content{}
		}
		inner, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			d.fail(where, fmt.Sprintf("attached message cannot be read: %v", err))
			d.list(name, mediaType)
			return content{}
		}
		ib, err := io.ReadAll(inner.Body)
		if err != nil {
			d.fail(where, fmt.Sprintf("attached message cannot be read: %v", err))
			return content{}
		}
		// A forwarded warning is content: its text counts, its headers
		// (like the outer ones) give no indicators.
		return d.walk(textproto.MIMEHeader(inner.Header), ib, loc, depth+1)
	case isJSON(mediaType, name):
		d.attachment(data, name, where)
		return content{}
	case attachment:
		d.list(name, mediaType)
		return content{}
	case mediaType == "text/plain" || mediaType == "text/html":
		text := d.charset(data, params["charset"], where)
		html := mediaType == "text/html"
		if html {
			text = htmlText(text)
		} else {
			text = strings.ReplaceAll(text, "\r\n", "\n")
		}
		d.texts = append(d.texts, textPart{text: text, html: html})
		return content{desc: strings.TrimSpace(text), plain: !html}
	case strings.HasPrefix(mediaType, "text/"):
		// text/calendar, text/csv inline: listed, not read.
		d.list(name, mediaType)
		return content{}
	default:
		d.list(name, mediaType)
		return content{}
	}
}

func (d *decoder) contentType(h textproto.MIMEHeader, where string) (string, map[string]string) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "text/plain", nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		if mt == "" {
			// RFC 2045 §5.2: an unreadable Content-Type means text/plain.
			d.fail(where, fmt.Sprintf("content type %s cannot be read; read as text/plain", normalize.Quote(ct)))
			return "text/plain", nil
		}
		if !errors.Is(err, mime.ErrInvalidMediaParameter) {
			d.fail(where, fmt.Sprintf("content type %s: %v", normalize.Quote(ct), err))
		}
	}
	return mt, params
}

func (d *decoder) multipart(mediaType, boundary string, body []byte, loc string, depth int) content {
	where := loc
	if where == "" {
		where = "body"
	}
	if boundary == "" {
		d.fail(where, fmt.Sprintf("%s has no boundary; its parts are not read", mediaType))
		return content{}
	}
	if depth+1 > d.o.MaxDepth {
		d.fail(where, fmt.Sprintf("multipart nested deeper than %d levels is not read", d.o.MaxDepth))
		return content{}
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	var kids []content
	for n := 1; ; n++ {
		if d.stopped {
			break
		}
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		child := strconv.Itoa(n)
		if loc != "" {
			child = strings.TrimPrefix(loc, "part ") + "." + child
		}
		child = "part " + child
		if err != nil {
			d.fail(child, fmt.Sprintf("part cannot be read: %v", err))
			break
		}
		d.parts++
		if d.parts > d.o.MaxParts {
			d.fail(child, fmt.Sprintf("more than %d MIME parts; the rest are not read", d.o.MaxParts))
			d.stopped = true
			break
		}
		// Nested parts hold copies of their parents' bytes; a budget of
		// twice the message size keeps deep nesting from multiplying memory.
		budget := int64(2*d.o.MaxSize - d.read)
		data, err := io.ReadAll(io.LimitReader(p, budget+1))
		if err != nil {
			d.fail(child, fmt.Sprintf("part cannot be read: %v", err))
			break
		}
		if int64(len(data)) > budget {
			d.fail(child, fmt.Sprintf("parts add up to more than %d bytes; the rest are not read", 2*d.o.MaxSize))
			d.stopped = true
			break
		}
		d.read += len(data)
		h := p.Header
		if mediaType == "multipart/digest" && h.Get("Content-Type") == "" {
			h = textproto.MIMEHeader{"Content-Type": {"message/rfc822"}}
		}
		kids = append(kids, d.walk(h, data, child, depth+1))
	}
	if mediaType == "multipart/alternative" {
		// The same content twice: prefer text/plain for the description;
		// indicators were taken from every alternative already.
		var best content
		for _, k := range kids {
			if k.desc == "" {
				continue
			}
			if k.plain {
				return k
			}
			best = k
		}
		return best
	}
	var descs []string
	plain := false
	for _, k := range kids {
		if k.desc != "" {
			descs = append(descs, k.desc)
			plain = plain || k.plain
		}
	}
	return content{desc: strings.Join(descs, "\n\n"), plain: plain}
}

// transferDecode undoes the Content-Transfer-Encoding.
func (d *decoder) transferDecode(h textproto.MIMEHeader, body []byte, where string) ([]byte, bool) {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	switch cte {
	case "", "7bit", "8bit", "binary":
		return body, true
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			// Keep what decoded: a stray "=" should not lose the text.
			d.fail(where, fmt.Sprintf("quoted-printable text is damaged: %v", err))
		}
		return out, true
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, body)
		// Room for the unpadded reading below, which can need more.
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean))+3)
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			// Some mailers drop the padding.
			if n2, err2 := base64.RawStdEncoding.Decode(out, bytes.TrimRight(clean, "=")); err2 == nil {
				return out[:n2], true
			}
			d.fail(where, fmt.Sprintf("base64 content is damaged: %v", err))
			return out[:n], n > 0
		}
		return out[:n], true
	}
	d.fail(where, fmt.Sprintf("unknown transfer encoding %s; read as is", normalize.Quote(cte)))
	return body, true
}

func (d *decoder) charset(b []byte, name, where string) string {
	cs := lookupCharset(name)
	if cs == csUnknown {
		d.fail(where, fmt.Sprintf("unknown charset %s; read as UTF-8", normalize.Quote(name)))
	}
	return decodeBytes(b, cs)
}

// filename decodes an attachment name (RFC 2231 is handled by mime; some
// mailers use RFC 2047 words instead) and keeps only its base name.
func (d *decoder) filename(ctName, dispName string) string {
	n := dispName
	if n == "" {
		n = ctName
	}
	if n == "" {
		return ""
	}
	if s, err := decodeHeader(n); err == nil {
		n = s
	}
	n = strings.ReplaceAll(n, "\\", "/")
	n = path.Base(singleLine(n))
	if n == "." || n == "/" {
		return ""
	}
	if utf8.RuneCountInString(n) > 200 {
		n = string([]rune(n)[:200])
	}
	return n
}

// list records an attachment that is not decoded.
func (d *decoder) list(name, mediaType string) {
	if name == "" {
		if strings.HasPrefix(mediaType, "image/") {
			return // inline logos and signatures
		}
		name = mediaType
	}
	l := LabelAttachmentPrefix + name
	for _, have := range d.attachments {
		if have == l {
			return
		}
	}
	d.attachments = append(d.attachments, l)
}

func isJSON(mediaType, name string) bool {
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json") ||
		strings.HasSuffix(strings.ToLower(name), ".json")
}

// attachment hands a JSON attachment to the decoder for its format.
func (d *decoder) attachment(data []byte, name, where string) {
	d.list(name, "application/json")
	kind, dec := d.sniff(data)
	if kind == "" {
		return // some other JSON: listed only
	}
	shown := name
	if shown == "" {
		shown = "(unnamed)"
	}
	if dec == nil {
		d.fail(where, fmt.Sprintf("%s attachment %s not decoded: no %s decoder configured", kind, normalize.Quote(shown), kind))
		return
	}
	evs, errs, err := dec(data)
	if err != nil {
		d.fail(where, fmt.Sprintf("%s attachment %s cannot be read: %v", kind, normalize.Quote(shown), err))
		return
	}
	for _, fe := range errs {
		d.fail(where+" "+fe.Field, fe.Message)
	}
	d.events = append(d.events, evs...)
}

// sniff tells CSAF ("document" with "csaf_version"), MISP ("Event" or
// "response") and STIX ("type": "bundle") apart by their top-level keys.
func (d *decoder) sniff(data []byte) (string, AttachmentDecoder) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return "", nil
	}
	if doc, ok := top["document"]; ok {
		var v struct {
			CSAFVersion *json.RawMessage `json:"csaf_version"`
		}
		if json.Unmarshal(doc, &v) == nil && v.CSAFVersion != nil {
			return "csaf", d.o.CSAF
		}
	}
	if _, ok := top["Event"]; ok {
		return "misp", d.o.MISP
	}
	if _, ok := top["response"]; ok {
		return "misp", d.o.MISP
	}
	if t, ok := top["type"]; ok {
		var s string
		if json.Unmarshal(t, &s) == nil && s == "bundle" {
			return "stix", d.o.STIX
		}
	}
	return "", nil
}

// subjectPrefixes are reply and forward markers in English and Dutch.
var subjectPrefixes = []string{"re:", "fw:", "fwd:", "antw:", "doorst:", "aw:", "wg:", "tr:", "sv:", "vs:"}

// cleanSubject drops reply/forward markers and leading "[list]" tags
// (returned as labels) and tidies the whitespace left by removed labels.
func cleanSubject(s string) (title string, tags []string, cut bool) {
	s = singleLine(s)
	for {
		s = strings.TrimLeftFunc(s, isSubjectFiller)
		changed := false
		for _, p := range subjectPrefixes {
			if hasPrefixFold(s, p) {
				s, changed = s[len(p):], true
				break
			}
		}
		if strings.HasPrefix(s, "[") {
			if end := strings.IndexByte(s, ']'); end > 0 {
				if tag := strings.TrimSpace(s[1:end]); tag != "" {
					tags = append(tags, tag)
				}
				s, changed = s[end+1:], true
			}
		}
		if !changed {
			break
		}
	}
	s = strings.TrimRightFunc(s, isSubjectFiller)
	if utf8.RuneCountInString(s) > maxTitleRunes {
		s, cut = string([]rune(s)[:maxTitleRunes])+"…", true
	}
	return s, tags, cut
}

// isSubjectFiller matches what is left around a removed label or tag:
// blanks and separators such as "-", "–", ":" and "|".
func isSubjectFiller(r rune) bool {
	return unicode.IsSpace(r) || r == ':' || r == '|' || unicode.Is(unicode.Pd, r)
}

// singleLine replaces control characters with spaces and collapses runs of
// white space, so no header or title value carries a line break.
func singleLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }), " ")
}

func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = singleLine(l); l != "" {
			if utf8.RuneCountInString(l) > maxTitleRunes {
				l = string([]rune(l)[:maxTitleRunes]) + "…"
			}
			return l
		}
	}
	return ""
}
