package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

// An event sent without times gets the receive time as its version; the
// same content sent again is a duplicate of that version, not an update
// (and so not delivered again). Changed content, or a newer time the source
// sets itself, is a new version.
func TestResendWithoutTimesIsDuplicate(t *testing.T) {
	ctx := context.Background()
	env := newPipelineEnv(t, []gateway.Constituent{{ID: "acme", Name: "Acme",
		Webhooks: []gateway.Webhook{{URL: "https://hooks.acme.example/x", Secret: testWebhookSecret}}}}, gateway.ChannelWebhook)
	p, st := env.p, env.st
	mk := func(title string) *gateway.Event {
		return &gateway.Event{ID: "5f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5", Kind: gateway.KindAdvisory, Title: title, TLP: gateway.TLPGreen,
			Indicators: []gateway.Indicator{{Type: gateway.TypeDomain, Value: "bad.example"}}}
	}
	first, err := p.Ingest(ctx, gateway.Source{Name: "partner"}, mk("Patch now"))
	if err != nil || first.Status != gateway.StatusAccepted || first.Deliveries != 1 {
		t.Fatalf("first: %+v, %v", first, err)
	}
	time.Sleep(2 * time.Millisecond) // a later receive time
	again, err := p.Ingest(ctx, gateway.Source{Name: "partner"}, mk("Patch now"))
	if err != nil || again.Status != gateway.StatusDuplicate || again.Version != first.Version || again.Update {
		t.Fatalf("resend: %+v, %v; want a duplicate of version %s", again, err, first.Version)
	}
	if vs, _ := st.Versions(ctx, first.ID); len(vs) != 1 {
		t.Errorf("versions = %v, want one", vs)
	}
	changed, err := p.Ingest(ctx, gateway.Source{Name: "partner"}, mk("Patch now, exploited"))
	if err != nil || changed.Status != gateway.StatusAccepted || !changed.Update {
		t.Fatalf("changed content: %+v, %v; want an update", changed, err)
	}
	// The source's own newer time makes a new version even of the same content.
	ev := mk("Patch now, exploited")
	ev.Modified = time.Now().Add(time.Hour)
	bumped, err := p.Ingest(ctx, gateway.Source{Name: "partner"}, ev)
	if err != nil || bumped.Status != gateway.StatusAccepted || !bumped.Update {
		t.Fatalf("same content with a newer modified: %+v, %v; want an update", bumped, err)
	}
}
