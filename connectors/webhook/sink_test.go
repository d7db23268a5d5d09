package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
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
		want          httpstatus.Decision
	}{
		{name: "receiver gone (410)", c: c, target: rcv.URL, status: http.StatusGone, want: httpstatus.Decision{Class: httpstatus.Permanent}},
		{name: "rate limited (429)", c: c, target: rcv.URL, status: http.StatusTooManyRequests, after: 30,
			want: httpstatus.Decision{Class: httpstatus.Defer, After: 30 * time.Second}},
		{name: "unavailable (503)", c: c, target: rcv.URL, status: http.StatusServiceUnavailable, want: httpstatus.Decision{Class: httpstatus.Retry}},
		{name: "webhook removed from the registry", c: c, target: "https://removed.example/hook", want: httpstatus.Decision{Class: httpstatus.Permanent}},
		{name: "no constituent", c: nil, target: rcv.URL, want: httpstatus.Decision{Class: httpstatus.Permanent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv.Respond(func(int) (int, int) { return tt.status, tt.after })
			err := sink.Deliver(t.Context(), delivery(tt.target), tt.c, ev, "")
			// The dispatcher's decision, the same for every channel.
			if got := httpstatus.Classify(err); got != tt.want {
				t.Errorf("Deliver = %v, classified %+v, want %+v", err, got, tt.want)
			}
		})
	}
}
