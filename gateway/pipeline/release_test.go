package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
)

// recordingOutbox is the real outbox that also remembers what it was given.
type recordingOutbox struct {
	*outbox.Outbox
	got []gateway.Delivery
}

func (o *recordingOutbox) Enqueue(ctx context.Context, ds ...gateway.Delivery) error {
	o.got = append(o.got, ds...)
	return o.Outbox.Enqueue(ctx, ds...)
}

func (o *recordingOutbox) Entries(ds ...gateway.Delivery) outbox.Entries {
	o.got = append(o.got, ds...)
	return o.Outbox.Entries(ds...)
}

// TestRelease checks what a release of a held event creates: typed, flagged
// released deliveries over the channels the policy allows, and refusals for
// what it never allows.
func TestRelease(t *testing.T) {
	ctx := context.Background()
	env := newPipelineEnv(t, []gateway.Constituent{{ID: "acme", Name: "Acme",
		Webhooks: []gateway.Webhook{{URL: "https://hooks.acme.example/x", Secret: testWebhookSecret}},
		MISPPush: &gateway.MISPPush{URL: "https://misp.acme.example", Key: strings.Repeat("k", 40)}}},
		gateway.ChannelEmail, gateway.ChannelWebhook, gateway.ChannelMISPPush)
	p, ob := env.p, env.ob

	hold := func(id string, tlp gateway.TLP) *gateway.Event {
		t.Helper()
		at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
		ev := &gateway.Event{ID: id, Kind: gateway.KindIntel, Title: "held " + id, TLP: tlp, Created: at, Modified: at,
			Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "203.0.113.7"}}}
		res, err := p.Ingest(ctx, gateway.Source{Name: "partner"}, ev)
		if err != nil || !res.Held {
			t.Fatalf("ingest %s: %+v %v, want held", id, res, err)
		}
		return ev
	}
	red := hold("b6f0c7a2-7c1e-4a8e-9f3a-5d2b1c0e9a01", gateway.TLPRed)
	strict := hold("b6f0c7a2-7c1e-4a8e-9f3a-5d2b1c0e9a02", gateway.TLPAmberStrict)

	if _, _, err := p.Release(ctx, red.ID, "admin:alice", []gateway.Addressee{{Constituent: "acme"}}); !errors.Is(err, pipeline.ErrRelease) || !strings.Contains(err.Error(), "TLP:RED is released only to named persons") {
		t.Fatalf("RED to a constituent: %v, want ErrRelease naming the rule", err)
	}
	ob.got = nil
	if _, n, err := p.Release(ctx, red.ID, "admin:alice", []gateway.Addressee{{Email: "ciso@x.example"}}); err != nil || n != 1 {
		t.Fatalf("RED to a named person: %d, %v", n, err)
	}
	want := gateway.Delivery{Recipient: gateway.PersonRecipient("ciso@x.example"), Channel: gateway.ChannelEmail, Target: "ciso@x.example"}
	checkReleased(t, ob.got, red, "admin:alice", want)

	ob.got = nil
	if _, n, err := p.Release(ctx, strict.ID, "admin:bob", []gateway.Addressee{{Constituent: "acme"}}); err != nil || n != 2 {
		t.Fatalf("AMBER+STRICT to a constituent: %d, %v", n, err)
	}
	acme := gateway.ConstituentRecipient("acme")
	checkReleased(t, ob.got, strict, "admin:bob",
		gateway.Delivery{Recipient: acme, Channel: gateway.ChannelWebhook, Target: "https://hooks.acme.example/x"},
		gateway.Delivery{Recipient: acme, Channel: gateway.ChannelMISPPush, Target: "https://misp.acme.example"})
}

func checkReleased(t *testing.T, got []gateway.Delivery, ev *gateway.Event, by string, want ...gateway.Delivery) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d deliveries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Recipient != w.Recipient || g.Channel != w.Channel || g.Target != w.Target || !g.Released || g.Rule != "released by "+by || g.TLP != ev.TLP ||
			g.ID != gateway.DeliveryID(ev.ID, ev.Version(), w.Recipient, w.Channel, w.Target) {
			t.Errorf("delivery %d: %+v, want released %s %s %s", i, g, w.Recipient, w.Channel, w.Target)
		}
	}
}
