package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestDeliveryStates(t *testing.T) {
	s, _, clk := newStore(t)
	dlv := func(event, recipient string, ch gateway.Channel) gateway.Delivery {
		return gateway.Delivery{
			ID: gateway.DeliveryID(event, "v1", gateway.ConstituentRecipient(recipient), ch, ""), EventID: event, Version: "v1",
			Recipient: gateway.ConstituentRecipient(recipient), Channel: ch, TLP: gateway.TLPAmber, Rule: "sector",
		}
	}
	a1 := dlv("e1", "utrecht", gateway.ChannelWebhook)
	a2 := dlv("e1", "amsterdam", gateway.ChannelEmail)
	b1 := dlv("e2", "utrecht", gateway.ChannelEmail)
	if err := s.SetDeliveryStates(ctx(t),
		DeliveryState{Delivery: a1, State: StateQueued},
		DeliveryState{Delivery: a2, State: StateQueued},
	); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if err := s.SetDeliveryStates(ctx(t),
		DeliveryState{Delivery: b1, State: StateDeferred},
		DeliveryState{Delivery: a1, State: StateRetrying, Attempts: 1, LastError: "503 Service Unavailable"},
	); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if err := s.SetDeliveryStates(ctx(t), DeliveryState{Delivery: a1, State: StateDelivered, Attempts: 2}); err != nil {
		t.Fatal(err)
	}

	type row struct{ id, state string }
	rows := func(sts []DeliveryState) []row {
		var out []row
		for _, st := range sts {
			out = append(out, row{st.Delivery.ID, st.State})
		}
		return out
	}
	cases := []struct {
		name             string
		event, recipient string
		want             []row
	}{
		{"by event", "e1", "", []row{{a1.ID, StateDelivered}, {a2.ID, StateQueued}}},
		{"by recipient", "", "utrecht", []row{{a1.ID, StateDelivered}, {b1.ID, StateDeferred}}},
		{"both", "e2", "utrecht", []row{{b1.ID, StateDeferred}}},
		{"recipient not on event", "e2", "amsterdam", nil},
		{"unknown event", "e9", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Deliveries(ctx(t), c.event, c.recipient)
			if err != nil {
				t.Fatal(err)
			}
			if r := rows(got); !slices.Equal(r, c.want) {
				t.Errorf("got %v, want %v", r, c.want)
			}
		})
	}
	got, _ := s.Deliveries(ctx(t), "e1", "utrecht")
	if len(got) != 1 || got[0].Attempts != 2 || !got[0].Updated.Equal(clk.Now()) || got[0].Delivery.Channel != gateway.ChannelWebhook {
		t.Errorf("latest state %+v", got)
	}

	var v *gateway.ValidationError
	if _, err := s.Deliveries(ctx(t), "", ""); !errors.As(err, &v) {
		t.Errorf("Deliveries without filter: %v, want a ValidationError", err)
	}
	bad := DeliveryState{Delivery: gateway.Delivery{ID: "d", EventID: "e"}, State: "lost"}
	err := s.SetDeliveryStates(ctx(t), DeliveryState{Delivery: a2, State: StateDead}, bad)
	if !errors.As(err, &v) || len(v.Fields) != 2 || v.Fields[0].Field != "/1/delivery/recipient" || v.Fields[1].Field != "/1/state" {
		t.Errorf("bad state error %v", err)
	}
	if got, _ := s.Deliveries(ctx(t), "e1", "amsterdam"); got[0].State != StateQueued {
		t.Error("a rejected batch was partly written")
	}
}

func TestCursors(t *testing.T) {
	s, _, _ := newStore(t)
	if v, err := s.Cursor(ctx(t), "ncsc-misp"); err != nil || v != "" {
		t.Fatalf("no cursor: %q, %v", v, err)
	}
	for _, v := range []string{"2026-11-20T09:00:00Z", "2026-11-21T10:00:00Z"} {
		if err := s.SetCursor(ctx(t), "ncsc-misp", v); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Cursor(ctx(t), "ncsc-misp"); got != v {
			t.Errorf("cursor %q, want %q", got, v)
		}
	}
	if got, _ := s.Cursor(ctx(t), "other"); got != "" {
		t.Errorf("other source sees cursor %q", got)
	}
	if err := s.SetCursor(ctx(t), "", "x"); err == nil {
		t.Error("SetCursor without a name succeeded")
	}
}
