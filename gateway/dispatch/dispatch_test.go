package dispatch_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/dispatch"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

// sink records what it was asked to deliver.
type sink struct{ got []*gateway.Event }

func (s *sink) Deliver(_ context.Context, _ gateway.Delivery, _ *gateway.Constituent, ev *gateway.Event, _ string) error {
	s.got = append(s.got, ev)
	return nil
}

func setup(t *testing.T, limitA int) (*store.Store, *registry.Registry, *dispatch.Dispatcher) {
	t.Helper()
	r := redistest.New(t)
	ctx := context.Background()
	st := store.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, []gateway.Constituent{
		{ID: "a", Name: "A", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/24"}}, Limits: gateway.Limits{WebhookPerMinute: limitA}},
	}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(dispatch.Options{Redis: r.Client, Events: st, States: st, Audit: audit.New(r.Client, r.Prefix), Reg: reg,
		Limiter: limit.New(r.Client, r.Prefix), Limits: gateway.Limits{WebhookPerMinute: 600},
		Metrics: metrics.New(prometheus.NewRegistry()), Log: log})
	return st, reg, d
}

func notification(t *testing.T, st *store.Store, id string, prio gateway.Priority) gateway.Delivery {
	t.Helper()
	now := time.Now().UTC()
	ev := &gateway.Event{ID: id, Kind: gateway.KindNotification, Title: "n", TLP: gateway.TLPAmber, Priority: prio,
		Source: gateway.SourceRef{Name: "s"}, Created: now, Modified: now,
		Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}, {Type: gateway.TypeIPv4, Value: "203.0.113.9"}}}
	if _, err := st.PutEvent(context.Background(), ev, now); err != nil {
		t.Fatal(err)
	}
	return gateway.Delivery{ID: "d-" + id, EventID: id, Version: ev.Version(), Recipient: gateway.ConstituentRecipient("a"), Channel: gateway.ChannelWebhook,
		Target: "https://a.example/hook", TLP: ev.TLP, Rule: "test", Attempt: 1}
}

func TestSendTimePolicyRecheck(t *testing.T) {
	st, reg, d := setup(t, 0)
	ctx := context.Background()
	dl := notification(t, st, "n1", gateway.PriorityNormal)
	s := &sink{}
	h := d.Handler(gateway.ChannelWebhook, s)
	if res := h(ctx, dl); res.Status() != outbox.StatusDelivered {
		t.Fatalf("first delivery: %s %v", res.Status(), res.Err())
	}
	if len(s.got) != 1 || len(s.got[0].Indicators) != 1 || s.got[0].Indicators[0].Value != "192.0.2.10" {
		t.Fatalf("projection: %+v", s.got)
	}
	// A no longer owns the prefix: a redelivery must not go out.
	if _, err := st.PutConstituent(ctx, gateway.Constituent{ID: "a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if res := h(ctx, dl); res.Status() != outbox.StatusDead {
		t.Fatalf("after the registry change: %s, want dead (permanent)", res.Status())
	}
	if len(s.got) != 1 {
		t.Fatal("the sink was called although the policy now denies")
	}
}

func TestLimitDefersAndCriticalBypasses(t *testing.T) {
	st, _, d := setup(t, 2)
	ctx := context.Background()
	s := &sink{}
	h := d.Handler(gateway.ChannelWebhook, s)
	for i, id := range []string{"x1", "x2"} {
		if res := h(ctx, notification(t, st, id, gateway.PriorityNormal)); res.Status() != outbox.StatusDelivered {
			t.Fatalf("delivery %d: %s", i, res.Status())
		}
	}
	res := h(ctx, notification(t, st, "x3", gateway.PriorityNormal))
	if res.Status() != outbox.StatusDeferred || res.Until().Before(time.Now()) {
		t.Fatalf("over the limit: %s until %v", res.Status(), res.Until())
	}
	if res := h(ctx, notification(t, st, "x4", gateway.PriorityCritical)); res.Status() != outbox.StatusDelivered {
		t.Fatalf("critical over the limit: %s", res.Status())
	}
	if len(s.got) != 3 {
		t.Fatalf("sink got %d", len(s.got))
	}
}

// handlingSink records the caveat each delivery went out with.
type handlingSink struct{ handling []string }

func (s *handlingSink) Deliver(_ context.Context, _ gateway.Delivery, _ *gateway.Constituent, _ *gateway.Event, handling string) error {
	s.handling = append(s.handling, handling)
	return nil
}

// Released deliveries are re-checked against the release rules when sent,
// including those stored before deliveries carried a typed recipient and a
// released flag (their JSON is what older versions wrote to the outbox).
func TestReleasedDeliveriesRecheck(t *testing.T) {
	st, _, d := setup(t, 0)
	ctx := context.Background()
	now := time.Now().UTC()
	versions := map[gateway.TLP]string{}
	for id, tlp := range map[string]gateway.TLP{"red": gateway.TLPRed, "strict": gateway.TLPAmberStrict} {
		ev := &gateway.Event{ID: id, Kind: gateway.KindIntel, Title: id, TLP: tlp, Source: gateway.SourceRef{Name: "s"}, Created: now, Modified: now}
		if _, err := st.PutEvent(ctx, ev, now); err != nil {
			t.Fatal(err)
		}
		versions[tlp] = ev.Version()
	}
	stored := func(event string, tlp gateway.TLP, recipient string, ch gateway.Channel, target, rule string) gateway.Delivery {
		var dl gateway.Delivery
		b := `{"delivery_id":"dlv_` + event + recipient + `","event_id":"` + event + `","version":"` + versions[tlp] + `","recipient":"` + recipient +
			`","channel":"` + string(ch) + `","target":"` + target + `","tlp":"` + string(tlp) + `","rule":"` + rule + `","attempt":1}`
		if err := json.Unmarshal([]byte(b), &dl); err != nil {
			t.Fatal(err)
		}
		return dl
	}
	tests := []struct {
		name     string
		dl       gateway.Delivery
		want     outbox.Status
		handling string
	}{
		{"red released to a named person", stored("red", gateway.TLPRed, "person:ciso@x.example", gateway.ChannelEmail, "ciso@x.example", "released by admin:alice"), outbox.StatusDelivered, ""},
		{"red to a person without a release", stored("red", gateway.TLPRed, "person:ciso@x.example", gateway.ChannelEmail, "ciso@x.example", "sector"), outbox.StatusDead, ""},
		{"red released to a constituent's webhook", stored("red", gateway.TLPRed, "a", gateway.ChannelWebhook, "https://a.example/hook", "released by admin:alice"), outbox.StatusDead, ""},
		{"amber+strict released to a constituent", stored("strict", gateway.TLPAmberStrict, "a", gateway.ChannelWebhook, "https://a.example/hook", "released by admin:bob"), outbox.StatusDelivered, "recipient organisation only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &handlingSink{}
			res := d.Handler(tt.dl.Channel, s)(ctx, tt.dl)
			if res.Status() != tt.want {
				t.Fatalf("status %s (%v), want %s", res.Status(), res.Err(), tt.want)
			}
			if tt.want == outbox.StatusDelivered && (len(s.handling) != 1 || s.handling[0] != tt.handling) {
				t.Fatalf("sent with handling %q, want [%q]", s.handling, tt.handling)
			}
			if tt.want != outbox.StatusDelivered && len(s.handling) != 0 {
				t.Fatal("the sink was called although the release rules deny")
			}
		})
	}
}

// Every copy a constituent or a released person receives shows only that
// recipient among the addressees: no other constituent, no named person.
func TestDeliveredCopyHidesOtherAddressees(t *testing.T) {
	st, _, d := setup(t, 0)
	ctx := context.Background()
	now := time.Now().UTC()
	ev := &gateway.Event{ID: "addr", Kind: gateway.KindIntel, Title: "t", TLP: gateway.TLPAmber, Source: gateway.SourceRef{Name: "s"}, Created: now, Modified: now,
		Addressees: []gateway.Addressee{{Constituent: "a"}, {Constituent: "other"}, {Email: "ciso@other.example", Name: "Carol Other"}}}
	if _, err := st.PutEvent(ctx, ev, now); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dl   gateway.Delivery
		want string
	}{
		{"constituent webhook", gateway.Delivery{ID: "d1", Recipient: gateway.ConstituentRecipient("a"), Channel: gateway.ChannelWebhook, Target: "https://a.example/hook"},
			`[{"constituent":"a"}]`},
		{"released named person", gateway.Delivery{ID: "d2", Recipient: gateway.PersonRecipient("ciso@other.example"), Channel: gateway.ChannelEmail, Target: "ciso@other.example", Released: true},
			`[{"email":"ciso@other.example","name":"Carol Other"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := tt.dl
			dl.EventID, dl.Version, dl.TLP, dl.Rule, dl.Attempt = ev.ID, ev.Version(), ev.TLP, "test", 1
			s := &sink{}
			if res := d.Handler(dl.Channel, s)(ctx, dl); res.Status() != outbox.StatusDelivered {
				t.Fatalf("delivery: %s %v", res.Status(), res.Err())
			}
			got, _ := json.Marshal(s.got[0].Addressees)
			if string(got) != tt.want {
				t.Fatalf("addressees %s, want %s", got, tt.want)
			}
		})
	}
}
