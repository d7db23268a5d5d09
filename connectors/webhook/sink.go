package webhook

import (
	"context"
	"fmt"

	"github.com/schakel/schakel/gateway"
)

// Sink is the webhook channel: it delivers a projected event to one of a
// constituent's webhook endpoints, signed with that endpoint's secret.
type Sink struct{ sender *Sender }

// NewSink returns the channel sink for the dispatcher.
func NewSink(s *Sender) *Sink { return &Sink{sender: s} }

// Deliver posts ev to d.Target. The endpoint's secret comes from the
// constituent's registry entry, never from the queued delivery, so secrets do
// not sit in the outbox.
func (k *Sink) Deliver(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, ev *gateway.Event, handling string) error {
	if c == nil {
		return gateway.Permanent(fmt.Errorf("webhook delivery %s has no constituent", d.ID))
	}
	secret := ""
	for _, w := range c.Webhooks {
		if w.URL == d.Target {
			secret = w.Secret
			break
		}
	}
	if secret == "" {
		return gateway.Permanent(fmt.Errorf("constituent %s no longer has webhook %s", c.ID, d.Target))
	}
	body, err := PayloadFor(d.ID, ev, handling)
	if err != nil {
		return gateway.Permanent(err)
	}
	// The dispatcher classifies Send's error (httpstatus.Classify), the same
	// way for every channel.
	return k.sender.Send(ctx, d.Target, secret, d.ID, body)
}
