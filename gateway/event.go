// Package gateway holds Schakel's canonical types: the event every source is
// normalised into, constituents, deliveries and the errors that name fields.
// It imports only the standard library so every other package can depend on it.
package gateway

import (
	"encoding/json"
	"time"
)

// Kind classifies an event. Notifications are projected per constituent:
// each one receives only the indicators that match its own assets.
type Kind string

const (
	KindAdvisory     Kind = "advisory"
	KindIntel        Kind = "intel"
	KindNotification Kind = "notification"
	KindIncident     Kind = "incident"
)

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindAdvisory, KindIntel, KindNotification, KindIncident:
		return true
	}
	return false
}

// Priority is derived from the source's assessment; critical events skip
// rate limits.
type Priority string

const (
	PriorityCritical Priority = "critical"
	PriorityHigh     Priority = "high"
	PriorityNormal   Priority = "normal"
	PriorityLow      Priority = "low"
)

// Rank orders priorities: low 1 … critical 4; unknown or empty counts as normal.
func (p Priority) Rank() int {
	switch p {
	case PriorityLow:
		return 1
	case PriorityHigh:
		return 3
	case PriorityCritical:
		return 4
	}
	return 2
}

// Valid reports whether p is empty or one of the defined priorities.
func (p Priority) Valid() bool {
	switch p {
	case "", PriorityCritical, PriorityHigh, PriorityNormal, PriorityLow:
		return true
	}
	return false
}

// SourceRef says where an event came from.
type SourceRef struct {
	Name   string `json:"name"`
	Org    string `json:"org,omitempty"`
	Format string `json:"format,omitempty"`
	Ref    string `json:"ref,omitempty"`
	// Own records that the source is the relay's own (gateway.Source.Own).
	// The pipeline sets it on ingest, whatever the input says, so it
	// survives storage and the send-time re-check agrees with routing.
	Own bool `json:"own,omitempty"`
}

// Assessment keeps the source's own scale (NCSC kans/schade, or urgency).
type Assessment struct {
	Probability string `json:"probability,omitempty"` // low | medium | high
	Impact      string `json:"impact,omitempty"`      // low | medium | high
	Urgency     string `json:"urgency,omitempty"`     // urgent | normal
}

// Critical reports whether the assessment makes an event critical:
// high probability and high impact, or urgent.
func (a *Assessment) Critical() bool {
	if a == nil {
		return false
	}
	return (a.Probability == "high" && a.Impact == "high") || a.Urgency == "urgent"
}

// Addressee names a constituent or a person an event is addressed to.
type Addressee struct {
	Constituent string `json:"constituent,omitempty"`
	Email       string `json:"email,omitempty"`
	Name        string `json:"name,omitempty"`
}

// Vulnerability is a CVE with its score and affected products.
type Vulnerability struct {
	CVE      string   `json:"cve"`
	CVSS     float64  `json:"cvss,omitempty"`
	Products []string `json:"products,omitempty"`
}

// Event is the canonical event (schemas/event.schema.json). ID and Modified
// identify a version.
type Event struct {
	ID              string          `json:"id,omitempty"`
	Kind            Kind            `json:"kind"`
	Title           string          `json:"title"`
	Description     string          `json:"description,omitempty"`
	TLP             TLP             `json:"tlp,omitempty"`
	Source          SourceRef       `json:"source"`
	Created         time.Time       `json:"created,omitzero"`
	Modified        time.Time       `json:"modified,omitzero"`
	Priority        Priority        `json:"priority,omitempty"`
	Assessment      *Assessment     `json:"assessment,omitempty"`
	Sectors         []string        `json:"sectors,omitempty"`
	Addressees      []Addressee     `json:"addressees,omitempty"`
	Labels          []string        `json:"labels,omitempty"`
	Indicators      []Indicator     `json:"indicators,omitempty"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty"`
	Remediations    []Remediation   `json:"remediations,omitempty"`
	References      []Reference     `json:"references,omitempty"`
	Extensions      *Extensions     `json:"extensions,omitempty"`
}

// Remediation is advice a recipient can act on (ARCHITECTURE §11.5).
type Remediation struct {
	Category string   `json:"category,omitempty"` // CSAF: vendor_fix, workaround, mitigation, …
	Text     string   `json:"text,omitempty"`
	URL      string   `json:"url,omitempty"`
	Products []string `json:"products,omitempty"`
}

// Reference points to further reading.
type Reference struct {
	URL     string `json:"url"`
	Summary string `json:"summary,omitempty"`
}

// Extensions carries, per source format, what the canonical event cannot
// hold, verbatim, so output in the same format gives it back unchanged
// (ARCHITECTURE §11.1). The mappings own their structure.
type Extensions struct {
	MISP json.RawMessage   `json:"misp,omitempty"` // MISP objects, references, galaxies, Orgc, …
	STIX []json.RawMessage `json:"stix,omitempty"` // STIX objects other than indicators and vulnerabilities
}

// Version is the string form of Modified that, with ID, names one version.
func (e *Event) Version() string {
	return e.Modified.UTC().Format(time.RFC3339Nano)
}

// Clone returns a copy that shares no slices or maps with e, so a projection
// for one recipient can never alter what another receives.
func (e *Event) Clone() *Event {
	c := *e
	if e.Assessment != nil {
		a := *e.Assessment
		c.Assessment = &a
	}
	c.Sectors = cloneSlice(e.Sectors)
	c.Addressees = cloneSlice(e.Addressees)
	c.Labels = cloneSlice(e.Labels)
	if e.Indicators != nil {
		c.Indicators = make([]Indicator, len(e.Indicators))
		for i, ind := range e.Indicators {
			c.Indicators[i] = ind.Clone()
		}
	}
	c.References = cloneSlice(e.References)
	if e.Remediations != nil {
		c.Remediations = make([]Remediation, len(e.Remediations))
		for i, r := range e.Remediations {
			r.Products = cloneSlice(r.Products)
			c.Remediations[i] = r
		}
	}
	if e.Extensions != nil {
		x := Extensions{MISP: cloneSlice(e.Extensions.MISP)}
		if e.Extensions.STIX != nil {
			x.STIX = make([]json.RawMessage, len(e.Extensions.STIX))
			for i, o := range e.Extensions.STIX {
				x.STIX[i] = cloneSlice(o)
			}
		}
		c.Extensions = &x
	}
	if e.Vulnerabilities != nil {
		c.Vulnerabilities = make([]Vulnerability, len(e.Vulnerabilities))
		for i, v := range e.Vulnerabilities {
			v.Products = cloneSlice(v.Products)
			c.Vulnerabilities[i] = v
		}
	}
	return &c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}
