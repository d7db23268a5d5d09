package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/schakel/schakel/gateway"
)

// TypeEventPublished is the payload type of every event delivery.
const TypeEventPublished = "event.published"

// payload is the body ARCHITECTURE §5 fixes. Priority appears only for
// critical events, so receivers can mark them urgent without parsing the
// event; handling only when the policy attached a caveat.
type payload struct {
	Type       string         `json:"type"`
	DeliveryID string         `json:"delivery_id"`
	Priority   string         `json:"priority,omitempty"`
	Handling   string         `json:"handling,omitempty"`
	Event      *gateway.Event `json:"event"`
}

// Payload builds the webhook body for one delivery:
// {"type":"event.published","delivery_id":…,"event":{…}}, plus
// "priority":"critical" when the event is critical by its priority or by its
// assessment (whichever says so; an urgent warning is never left unmarked).
// ev must already be projected for the recipient.
func Payload(deliveryID string, ev *gateway.Event) ([]byte, error) {
	return PayloadFor(deliveryID, ev, "")
}

// PayloadFor is Payload with the policy's handling caveat (AMBER+STRICT:
// "recipient organisation only") as a top-level "handling" field, so the
// receiving SOC sees the restriction next to the event. An empty handling
// adds nothing.
func PayloadFor(deliveryID string, ev *gateway.Event, handling string) ([]byte, error) {
	if deliveryID == "" {
		return nil, errors.New("delivery_id: empty")
	}
	if ev == nil {
		return nil, errors.New("event: nil")
	}
	p := payload{Type: TypeEventPublished, DeliveryID: deliveryID, Handling: handling, Event: ev}
	if ev.Priority == gateway.PriorityCritical || ev.Assessment.Critical() {
		p.Priority = string(gateway.PriorityCritical)
	}
	b, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("event: encode %s: %w", ev.ID, err)
	}
	return b, nil
}
