package webhook_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
)

func testEvent() *gateway.Event {
	ts := time.Date(2026, 11, 20, 9, 14, 33, 0, time.UTC)
	return &gateway.Event{
		ID:          "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11",
		Kind:        gateway.KindAdvisory,
		Title:       "Kwetsbaarheden verholpen in Example VPN <5.2> & co",
		TLP:         gateway.TLPAmber,
		Source:      gateway.SourceRef{Name: "ncsc-csaf", Org: "NCSC-NL", Format: "csaf", Ref: "NCSC-2026-0389"},
		Created:     ts,
		Modified:    ts.Add(time.Hour),
		Priority:    gateway.PriorityHigh,
		Sectors:     []string{"health"},
		Indicators:  []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10", Detect: true, Port: 443, Attributes: map[string]string{"tag": "exchange"}}},
		Labels:      []string{"ransomware"},
		Description: "regel 1\nregel 2",
	}
}

func TestPayload(t *testing.T) {
	urgent := testEvent()
	urgent.Priority = ""
	urgent.Assessment = &gateway.Assessment{Urgency: "urgent"}
	highHigh := testEvent()
	highHigh.Assessment = &gateway.Assessment{Probability: "high", Impact: "high"}
	critical := testEvent()
	critical.Priority = gateway.PriorityCritical

	tests := []struct {
		name         string
		ev           *gateway.Event
		wantPriority string
	}{
		{"high event carries no priority", testEvent(), ""},
		{"critical priority", critical, "critical"},
		{"urgent assessment", urgent, "critical"},
		{"high probability and impact", highHigh, "critical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := webhook.Payload("dlv_abc", tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(b, &top); err != nil {
				t.Fatalf("payload is not JSON: %v\n%s", err, b)
			}
			var typ, id, prio string
			json.Unmarshal(top["type"], &typ)
			json.Unmarshal(top["delivery_id"], &id)
			json.Unmarshal(top["priority"], &prio)
			if typ != "event.published" || id != "dlv_abc" {
				t.Errorf("type %q, delivery_id %q; want event.published, dlv_abc", typ, id)
			}
			if _, present := top["priority"]; present != (tt.wantPriority != "") || prio != tt.wantPriority {
				t.Errorf("priority = %s (present %v), want %q", top["priority"], present, tt.wantPriority)
			}
			var keys []string
			for k := range top {
				keys = append(keys, k)
			}
			wantKeys := 3
			if tt.wantPriority != "" {
				wantKeys = 4
			}
			if len(top) != wantKeys {
				t.Errorf("top-level keys %v, want only type, delivery_id, event (and priority)", keys)
			}
			var ev gateway.Event
			if err := json.Unmarshal(top["event"], &ev); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&ev, tt.ev) {
				t.Errorf("event changed in the payload:\n got %+v\nwant %+v", ev, *tt.ev)
			}
		})
	}
}

func TestPayloadRejectsBadInput(t *testing.T) {
	if _, err := webhook.Payload("", testEvent()); err == nil || !strings.Contains(err.Error(), "delivery_id") {
		t.Errorf("empty delivery id: err = %v, want one naming delivery_id", err)
	}
	if _, err := webhook.Payload("dlv_1", nil); err == nil || !strings.Contains(err.Error(), "event") {
		t.Errorf("nil event: err = %v, want one naming event", err)
	}
}

// TestPayloadThroughReceiver is the whole outbound path as a SOC sees it:
// Payload, Send, and a receiver that verifies and decodes.
func TestPayloadThroughReceiver(t *testing.T) {
	rcv := webhooktest.New(t, "")
	ev := testEvent()
	ev.Priority = gateway.PriorityCritical
	id := gateway.DeliveryID(ev.ID, ev.Version(), gateway.ConstituentRecipient("gemeente-utrecht"), gateway.ChannelWebhook, rcv.URL)
	body, err := webhook.Payload(id, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := webhook.NewSender(webhook.SenderOptions{}).Send(t.Context(), rcv.URL, rcv.Secret, id, body); err != nil {
		t.Fatal(err)
	}
	got, ok := rcv.Unique()[id]
	if !ok {
		t.Fatalf("delivery %s not received; have %v", id, rcv.Unique())
	}
	if got.ID != id || got.Type != webhook.TypeEventPublished || got.Priority != "critical" {
		t.Errorf("received id %q type %q priority %q", got.ID, got.Type, got.Priority)
	}
	if !reflect.DeepEqual(&got.Event, ev) {
		t.Errorf("event changed in transit:\n got %+v\nwant %+v", got.Event, *ev)
	}
}

func TestPayloadForHandling(t *testing.T) {
	tests := []struct {
		name, handling string
	}{
		{"AMBER+STRICT caveat", "recipient organisation only"},
		{"no caveat", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent()
			ev.TLP = gateway.TLPAmberStrict
			b, err := webhook.PayloadFor("dlv_1", ev, tt.handling)
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]any
			if err := json.Unmarshal(b, &top); err != nil {
				t.Fatal(err)
			}
			got, present := top["handling"]
			if present != (tt.handling != "") || (present && got != tt.handling) {
				t.Errorf("handling = %v (present %v), want %q", got, present, tt.handling)
			}
		})
	}
}
