package pipeline_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

// AMBER+STRICT leaves the relay only when one of its own sources authored
// it; from upstream the relay is the recipient organisation and holds it.
// Whether a source is own comes from the edge, never from the event, and is
// stored with the event so the send-time re-check agrees.
func TestAmberStrictOnlyFromOwnSources(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	acme := gateway.Constituent{ID: "acme", Name: "Acme", Assets: gateway.Assets{Prefixes: []string{"203.0.113.0/24"}},
		Webhooks: []gateway.Webhook{{URL: "https://hooks.acme.example/x", Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}}
	if err := st.PutConstituents(ctx, []gateway.Constituent{acme}); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	ob := &recordingOutbox{Outbox: outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})}
	p := pipeline.New(st, ob, audit.New(r.Client, r.Prefix), reg, pipeline.Config{Push: map[gateway.Channel]bool{gateway.ChannelWebhook: true}},
		metrics.New(prometheus.NewRegistry()), log)

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
