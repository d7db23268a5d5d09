package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/policy"
)

// AMBER+STRICT leaves the relay only when one of its own sources authored
// it; from upstream the relay is the recipient organisation and holds it.
// Whether a source is own comes from the edge, never from the event, and is
// stored with the event so the send-time re-check agrees.
func TestAmberStrictOnlyFromOwnSources(t *testing.T) {
	ctx := context.Background()
	acme := gateway.Constituent{ID: "acme", Name: "Acme", Assets: gateway.Assets{Prefixes: []string{"203.0.113.0/24"}},
		Webhooks: []gateway.Webhook{{URL: "https://hooks.acme.example/x", Secret: testWebhookSecret}}}
	env := newPipelineEnv(t, []gateway.Constituent{acme}, gateway.ChannelWebhook)
	p, st, ob, reg := env.p, env.st, env.ob, env.reg

	tests := []struct {
		name    string
		src     gateway.Source
		claim   bool // the event's own claim, which must not count
		held    bool
		handled string
	}{
		{"upstream", gateway.Source{Name: "partner"}, false, true, ""},
		{"upstream claiming to be own", gateway.Source{Name: "partner"}, true, true, ""},
		{"own source", gateway.Source{Name: "analysts", Own: true}, false, false, policy.HandlingStrict},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ob.got = nil
			at := time.Date(2026, 12, 1, 8, i, 0, 0, time.UTC)
			ev := &gateway.Event{Kind: gateway.KindIntel, Title: tt.name, TLP: gateway.TLPAmberStrict, Created: at, Modified: at,
				Source: gateway.SourceRef{Own: tt.claim}, Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "203.0.113.7"}}}
			res, err := p.Ingest(ctx, tt.src, ev)
			if err != nil {
				t.Fatal(err)
			}
			if res.Held != tt.held || (res.Deliveries == 0) != tt.held || len(ob.got) != res.Deliveries {
				t.Fatalf("held %v with %d deliveries, want held %v", res.Held, res.Deliveries, tt.held)
			}
			stored, err := st.EventVersion(ctx, res.ID, res.Version)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Source.Own != tt.src.Own {
				t.Fatalf("stored source own %v, want %v (from the edge)", stored.Source.Own, tt.src.Own)
			}
			snap := reg.Current()
			c, _ := snap.Get("acme")
			a := policy.Assess(stored, snap)
			d := a.Decide(c, gateway.ChannelWebhook)
			if (d.Verdict == policy.Deliver) == tt.held || d.Handling != tt.handled {
				t.Fatalf("send-time decision %+v disagrees with routing (held %v)", d, tt.held)
			}
			if tt.held {
				h, err := st.Held(ctx, res.ID)
				if err != nil {
					t.Fatal(err)
				}
				if h.Reason != policy.RuleStrictHeld {
					t.Fatalf("held for %q, want %q", h.Reason, policy.RuleStrictHeld)
				}
			}
		})
	}
}
