package normalize

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

// LabelTLPWhite is added to an event's labels when its TLP was the TLP 1.0
// label WHITE, which is read as CLEAR.
const LabelTLPWhite = "tlp:white"

// Bounds on event fields, the same as in schemas/event.schema.json: they
// keep one event's text within what mail subjects, consoles and Redis
// entries can carry. Characters are Unicode code points; the description is
// bounded in bytes (the schema can only count characters, so it checks a
// looser bound and this one decides).
const (
	MaxTitleChars      = 512
	MaxDescriptionSize = 64 << 10
	MaxLabels          = 64
	MaxLabelChars      = 128
	MaxRefChars        = 256
)

// idPattern is what an event id may look like; a UUID fits it. Ids become
// Redis key tags, URL path segments and MISP/STIX identifiers, so they are
// limited to characters that need no escaping anywhere.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

var (
	tlpList = func() string {
		names := make([]string, len(gateway.TLPs))
		for i, t := range gateway.TLPs {
			names[i] = string(t)
		}
		return strings.Join(names, ", ")
	}()
	kindList     = "advisory, intel, notification, incident"
	priorityList = "critical, high, normal, low"
)

// Event normalises ev in place and returns the problems found, each with its
// JSON pointer into the event as the caller sent it ("/indicators/3/value",
// "/tlp", "/vulnerabilities/0/cve"). Indicators that fail are removed from
// ev.Indicators (the rest are kept); duplicates (same type, value and port)
// are merged: Detect ORed, the first non-empty comment kept, attributes
// added where missing, the earliest observation kept. Other fields that fail
// are left as sent for the caller to reject. It does not assign id, tlp,
// created or modified defaults (the pipeline does that).
func Event(ev *gateway.Event) []gateway.FieldError {
	if ev == nil {
		return []gateway.FieldError{{Message: "event is missing"}}
	}
	var errs []gateway.FieldError
	add := func(field string, err error) {
		errs = append(errs, gateway.FieldError{Field: field, Message: err.Error()})
	}

	bounds(ev, add)
	ev.Title = strings.TrimSpace(ev.Title)
	if ev.Title == "" {
		add("/title", errors.New("title is empty"))
	}
	if k := gateway.Kind(strings.ToLower(strings.TrimSpace(string(ev.Kind)))); k.Valid() {
		ev.Kind = k
	} else if k == "" {
		add("/kind", fmt.Errorf("kind is missing; allowed: %s", kindList))
	} else {
		add("/kind", fmt.Errorf("unknown kind %s; allowed: %s", Quote(string(ev.Kind)), kindList))
	}
	if p := gateway.Priority(strings.ToLower(strings.TrimSpace(string(ev.Priority)))); p.Valid() {
		ev.Priority = p
	} else {
		add("/priority", fmt.Errorf("unknown priority %s; allowed: %s", Quote(string(ev.Priority)), priorityList))
	}
	if strings.TrimSpace(string(ev.TLP)) == "" {
		ev.TLP = "" // the pipeline applies the source's default
	} else if t, legacy, err := gateway.ParseTLP(string(ev.TLP)); err != nil {
		add("/tlp", fmt.Errorf("unknown TLP label %s; allowed: %s (WHITE is read as CLEAR)", Quote(string(ev.TLP)), tlpList))
	} else {
		ev.TLP = t
		if legacy && !containsFold(ev.Labels, LabelTLPWhite) {
			ev.Labels = append(ev.Labels, LabelTLPWhite)
		}
	}
	if a := ev.Assessment; a != nil {
		a.Probability = strings.ToLower(strings.TrimSpace(a.Probability))
		a.Impact = strings.ToLower(strings.TrimSpace(a.Impact))
		a.Urgency = strings.ToLower(strings.TrimSpace(a.Urgency))
	}
	if ev.Assessment.Critical() {
		ev.Priority = gateway.PriorityCritical // the highest, so never a lowering
	}
	ev.Labels = cleanList(ev.Labels, false)
	ev.Sectors = cleanList(ev.Sectors, true)

	for i := range ev.Addressees {
		a := &ev.Addressees[i]
		a.Constituent = strings.TrimSpace(a.Constituent)
		a.Name = strings.TrimSpace(a.Name)
		a.Email = strings.TrimSpace(a.Email)
		switch {
		case a.Constituent == "" && a.Email == "":
			add("/addressees/"+strconv.Itoa(i), errors.New("addressee needs a constituent or an email"))
		case a.Email != "":
			if e, err := Email(a.Email); err != nil {
				add("/addressees/"+strconv.Itoa(i)+"/email", err)
			} else {
				a.Email = e
			}
		}
	}

	for i := range ev.Vulnerabilities {
		v := &ev.Vulnerabilities[i]
		if c, err := CVE(v.CVE); err != nil {
			add("/vulnerabilities/"+strconv.Itoa(i)+"/cve", err)
		} else {
			v.CVE = c
		}
		if math.IsNaN(v.CVSS) || v.CVSS < 0 || v.CVSS > 10 {
			add("/vulnerabilities/"+strconv.Itoa(i)+"/cvss", fmt.Errorf("cvss %v is outside 0..10", v.CVSS))
		}
	}

	ev.Indicators, errs = indicators(ev.Indicators, errs)
	return errs
}

// bounds checks the lengths and the id form, on the values as sent (before
// trimming and de-duplication, so the pointers match the input).
func bounds(ev *gateway.Event, add func(string, error)) {
	if ev.ID != "" && !idPattern.MatchString(ev.ID) {
		add("/id", errors.New("id must be a UUID or 1 to 128 characters from A-Z a-z 0-9 . _ : - starting with a letter or digit"))
	}
	if n := utf8.RuneCountInString(ev.Title); n > MaxTitleChars {
		add("/title", fmt.Errorf("title is %d characters long; the limit is %d", n, MaxTitleChars))
	}
	if n := len(ev.Description); n > MaxDescriptionSize {
		add("/description", fmt.Errorf("description is %d bytes long; the limit is %d", n, MaxDescriptionSize))
	}
	if n := utf8.RuneCountInString(ev.Source.Ref); n > MaxRefChars {
		add("/source/ref", fmt.Errorf("source ref is %d characters long; the limit is %d", n, MaxRefChars))
	}
	if n := len(ev.Labels); n > MaxLabels {
		add("/labels", fmt.Errorf("%d labels; the limit is %d", n, MaxLabels))
	}
	for i, l := range ev.Labels {
		if n := utf8.RuneCountInString(l); n > MaxLabelChars {
			add("/labels/"+strconv.Itoa(i), fmt.Errorf("label is %d characters long; the limit is %d", n, MaxLabelChars))
		}
	}
}

// indicators normalises inds in place, dropping failures and merging
// duplicates; pointers use the index the caller sent.
func indicators(inds []gateway.Indicator, errs []gateway.FieldError) ([]gateway.Indicator, []gateway.FieldError) {
	if len(inds) == 0 {
		return inds, errs
	}
	type key struct {
		t    gateway.IndicatorType
		v    string
		port int
	}
	seen := make(map[key]int, len(inds))
	out := inds[:0] // writes never overtake reads
	for i, ind := range inds {
		n, err := Indicator(ind)
		if err != nil {
			field := "value"
			if ie, ok := errors.AsType[*IndicatorError](err); ok {
				field = ie.Field
			}
			errs = append(errs, gateway.FieldError{Field: "/indicators/" + strconv.Itoa(i) + "/" + field, Message: err.Error()})
			continue
		}
		k := key{n.Type, n.Value, n.Port}
		if j, ok := seen[k]; ok {
			out[j] = merge(out[j], n)
			continue
		}
		seen[k] = len(out)
		out = append(out, n)
	}
	clear(inds[len(out):]) // drop references held by the unused tail
	return out, errs
}

// merge folds dup into first: Detect ORed, first non-empty comment, earliest
// observation, missing attributes and ASN filled in.
func merge(first, dup gateway.Indicator) gateway.Indicator {
	first.Detect = first.Detect || dup.Detect
	if first.Comment == "" {
		first.Comment = dup.Comment
	}
	if !dup.Observed.IsZero() && (first.Observed.IsZero() || dup.Observed.Before(first.Observed)) {
		first.Observed = dup.Observed
	}
	if first.ASN == 0 {
		first.ASN = dup.ASN
	}
	for k := range dup.Attributes {
		if _, ok := first.Attributes[k]; ok {
			continue
		}
		// Copy before writing: the map may be shared with the caller's
		// other indicators.
		attrs := make(map[string]string, len(first.Attributes)+len(dup.Attributes))
		maps.Copy(attrs, dup.Attributes)
		maps.Copy(attrs, first.Attributes) // first wins
		first.Attributes = attrs
		break
	}
	return first
}

// cleanList trims, drops empty entries and removes duplicates (after
// lower-casing when lower is set), keeping the first occurrence's order.
func cleanList(list []string, lower bool) []string {
	if len(list) == 0 {
		return list
	}
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, s := range list {
		s = strings.TrimSpace(s)
		if lower {
			s = strings.ToLower(s)
		}
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	clear(list[len(out):])
	return out
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(strings.TrimSpace(l), s) {
			return true
		}
	}
	return false
}
