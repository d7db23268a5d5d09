package webhook_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
)

func TestSinkDeliver(t *testing.T) {
	rcv := webhooktest.New(t, "")
	c := &gateway.Constituent{ID: "gemeente-utrecht", Webhooks: []gateway.Webhook{
		{URL: "https://elsewhere.example/hook", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{URL: rcv.URL, Secret: rcv.Secret},
	}}
	ev := testEvent()
	ev.TLP = gateway.TLPAmberStrict
	delivery := func(target string) gateway.Delivery {
		return gateway.Delivery{
			ID:      gateway.DeliveryID(ev.ID, ev.Version(), gateway.ConstituentRecipient(c.ID), gateway.ChannelWebhook, target),
			EventID: ev.ID, Version: ev.Version(), Recipient: gateway.ConstituentRecipient(c.ID), Channel: gateway.ChannelWebhook, Target: target,
		}
	}
	sink := webhook.NewSink(webhook.NewSender(webhook.SenderOptions{}))

	d := delivery(rcv.URL)
	if err := sink.Deliver(t.Context(), d, c, ev, "recipient organisation only"); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got, ok := rcv.Unique()[d.ID]
	if !ok || got.ID != d.ID || got.Handling != "recipient organisation only" || got.Event.ID != ev.ID {
		t.Fatalf("receiver has %+v, want delivery %s with the handling caveat", rcv.Unique(), d.ID)
	}

	tests := []struct {
		name          string
		c             *gateway.Constituent
		target        string
		status, after int
		wantPermanent bool
		wantAfter     time.Duration
	}{
		{name: "receiver gone (410)", c: c, target: rcv.URL, status: http.StatusGone, wantPermanent: true},
		{name: "rate limited (429)", c: c, target: rcv.URL, status: http.StatusTooManyRequests, after: 30, wantAfter: 30 * time.Second},
		{name: "unavailable (503)", c: c, target: rcv.URL, status: http.StatusServiceUnavailable},
		{name: "webhook removed from the registry", c: c, target: "https://removed.example/hook", wantPermanent: true},
		{name: "no constituent", c: nil, target: rcv.URL, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv.Respond(func(int) (int, int) { return tt.status, tt.after })
			err := sink.Deliver(t.Context(), delivery(tt.target), tt.c, ev, "")
			de, ok := errors.AsType[*gateway.DeliveryError](err)
			if !ok {
				t.Fatalf("Deliver = %v, want a gateway.DeliveryError", err)
			}
			if de.Permanent != tt.wantPermanent || de.RetryAfter != tt.wantAfter {
				t.Errorf("permanent %v after %s, want %v after %s (%v)", de.Permanent, de.RetryAfter, tt.wantPermanent, tt.wantAfter, err)
			}
		})
	}
}
