package retention

import (
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/store"
)

func TestSweep(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name              string
		events, audits    time.Duration
		later             time.Duration // how far after ingest the sweep runs
		wantEvents        int
		wantAuditTrimmed  bool
		wantEventReadable bool
	}{
		{"unset keeps everything", 0, 0, 1000 * time.Hour, 0, false, true},
		{"not yet expired", time.Hour, time.Hour, 30 * time.Minute, 0, false, true},
		{"expired", time.Hour, time.Hour, 2 * time.Hour, 1, true, false},
		{"only audit expires", 0, time.Hour, 2 * time.Hour, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := redistest.New(t)
			ctx := t.Context()
			st := store.New(r.Client, r.Prefix)
			log := audit.New(r.Client, r.Prefix)
			ev := &gateway.Event{ID: "e1", Kind: gateway.KindAdvisory, Title: "t", TLP: gateway.TLPGreen,
				Source: gateway.SourceRef{Name: "s"}, Created: now, Modified: now}
			if _, err := st.PutEvent(ctx, ev, now); err != nil {
				t.Fatal(err)
			}
			if err := log.Append(ctx, audit.Record{Action: audit.ActionEventAccepted, EventID: "e1"}, audit.Record{Action: audit.ActionKeyCreated}); err != nil {
				t.Fatal(err)
			}
			sw := New(Options{Redis: r.Client, Prefix: r.Prefix, Events: st, EventsAfter: tt.events, AuditAfter: tt.audits,
				Now: func() time.Time { return now.Add(tt.later) }})
			if sw.Enabled() != (tt.events > 0 || tt.audits > 0) {
				t.Errorf("Enabled = %v", sw.Enabled())
			}
			res, err := sw.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != tt.wantEvents {
				t.Errorf("deleted %d events, want %d", res.Events, tt.wantEvents)
			}
			recs, _, err := log.Recent(ctx, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if trimmed := len(recs) == 0; trimmed != tt.wantAuditTrimmed {
				t.Errorf("audit trimmed = %v (%d left), want %v", trimmed, len(recs), tt.wantAuditTrimmed)
			}
			_, err = st.Event(ctx, "e1")
			if (err == nil) != tt.wantEventReadable {
				t.Errorf("event readable = %v, want %v", err == nil, tt.wantEventReadable)
			}
			if tt.wantEventReadable && tt.wantAuditTrimmed {
				if own, _ := log.ForEvent(ctx, "e1", 10); len(own) != 0 {
					t.Errorf("event's own audit stream not trimmed: %d records", len(own))
				}
			}
		})
	}
}
