package misp

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

type oneEvent struct{ ev *gateway.Event }

func (o oneEvent) EventVersion(context.Context, string, string) (*gateway.Event, error) {
	return o.ev, nil
}

// TestMetaSchema: a meta an older Schakel stored (no schema, so no Orgc)
// is computed again, not served as it is.
func TestMetaSchema(t *testing.T) {
	r := redistest.New(t)
	ev := &gateway.Event{ID: "40000000-0000-4000-8000-000000000001", Kind: gateway.KindIntel, Title: "t", TLP: gateway.TLPClear,
		Modified:   time.Unix(1_700_000_000, 0).UTC(),
		Extensions: &gateway.Extensions{MISP: []byte(`{"orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"}}`)}}
	c := newMetas(r.Client, r.Prefix, oneEvent{ev}, mispmap.EncodeOptions{OrgName: "Schakel"}, slog.Default())
	entry := views.Entry{ID: ev.ID, Version: ev.Version()}
	if err := r.Client.Set(t.Context(), c.key(ev.ID), `{"v":"`+ev.Version()+`","u":"`+ev.ID+`","i":"old"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	ms, err := c.get(t.Context(), []views.Entry{entry})
	if err != nil {
		t.Fatal(err)
	}
	if m := ms[0]; m == nil || m.Info != "t" || m.OrgcName != "CIRCL" || m.Schema != metaSchema {
		t.Fatalf("meta = %+v, want it computed again with Orgc CIRCL", m)
	}
}
