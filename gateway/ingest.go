package gateway

import "context"

// Source identifies who sent an event, as the edge that received it
// authenticated the sender: a configured source, a source key, or a signed
// webhook. The pipeline trusts Name over whatever the event itself claims.
type Source struct {
	Name       string
	DefaultTLP TLP
	Format     string
	// Own is true for a source the relay's own analysts author (config
	// own: true). Only such a source's AMBER+STRICT events leave the relay;
	// from any other source the relay is the recipient organisation.
	Own bool
}

// IngestStatus is what became of an ingested event.
type IngestStatus string

const (
	// StatusAccepted: a new event or a newer version was stored and routed.
	StatusAccepted IngestStatus = "accepted"
	// StatusDuplicate: the same or an older version; nothing changed.
	StatusDuplicate IngestStatus = "duplicate"
)

// Result tells the source what became of its event. It is written only after
// the event and its deliveries are durable.
type Result struct {
	ID         string       `json:"id"`
	Version    string       `json:"version,omitempty"`
	Status     IngestStatus `json:"status"`
	Update     bool         `json:"update,omitempty"` // a newer version of a known event
	Rejected   []FieldError `json:"rejected,omitempty"`
	Deliveries int          `json:"deliveries"`
	Held       bool         `json:"held,omitempty"`
}

// Ingester takes an event into the gateway: normalise, store, route. Every
// source connector hands its events to one; a *ValidationError means nothing
// was stored.
type Ingester interface {
	Ingest(ctx context.Context, src Source, ev *Event) (Result, error)
}
