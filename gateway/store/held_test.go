package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestHeldLifecycle(t *testing.T) {
	s, _, clk := newStore(t)
	v1 := t0.Add(-time.Hour).Format(time.RFC3339Nano)
	v2 := t0.Format(time.RFC3339Nano)
	hold := func(id, version, reason string) {
		t.Helper()
		if err := s.Hold(ctx(t), HeldItem{EventID: id, Version: version, TLP: gateway.TLPRed, Title: id, Reason: reason}); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
	}
	ids := func(items []HeldItem) []string {
		var out []string
		for _, h := range items {
			out = append(out, h.EventID+"@"+h.Reason)
		}
		return out
	}
	hold("red-1", v1, "first")
	hold("strict-1", v1, "no owner")
	if got := ids(mustHeld(t, s, false)); !slices.Equal(got, []string{"strict-1@no owner", "red-1@first"}) {
		t.Errorf("held, newest first: %v", got)
	}

	// A newer version replaces the hold; an older one or a repeat does not.
	hold("red-1", v2, "second")
	hold("red-1", v1, "late older")
	hold("red-1", v2, "repeat")
	h, err := s.Held(ctx(t), "red-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != v2 || h.Reason != "second" {
		t.Errorf("hold is %s/%q, want %s/second", h.Version, h.Reason, v2)
	}
	if got := ids(mustHeld(t, s, false)); !slices.Equal(got, []string{"red-1@second", "strict-1@no owner"}) {
		t.Errorf("held after replacement: %v", got)
	}

	to := []gateway.Addressee{{Email: "ciso@example.nl", Name: "CISO"}}
	clk.Add(time.Minute)
	rel, err := s.Release(ctx(t), "red-1", "admin:0123456789ab", to)
	if err != nil {
		t.Fatal(err)
	}
	if !rel.Released || rel.ReleasedBy != "admin:0123456789ab" || !rel.ReleasedAt.Equal(clk.Now()) || len(rel.ReleasedTo) != 1 {
		t.Errorf("released item %+v", rel)
	}
	if stored, _ := s.Held(ctx(t), "red-1"); !stored.Released || stored.ReleasedTo[0].Email != "ciso@example.nl" {
		t.Errorf("stored item after release %+v", stored)
	}
	if got := ids(mustHeld(t, s, false)); !slices.Equal(got, []string{"strict-1@no owner"}) {
		t.Errorf("open items after release: %v", got)
	}
	if got := ids(mustHeld(t, s, true)); !slices.Equal(got, []string{"red-1@second", "strict-1@no owner"}) {
		t.Errorf("all items after release: %v", got)
	}
	if _, err := s.Release(ctx(t), "red-1", "admin:0123456789ab", to); !errors.Is(err, ErrAlreadyReleased) {
		t.Errorf("second release: %v, want ErrAlreadyReleased", err)
	}
	// Re-routing the released version after a crash must not hold it again.
	hold("red-1", v2, "rerouted")
	if got := ids(mustHeld(t, s, false)); !slices.Equal(got, []string{"strict-1@no owner"}) {
		t.Errorf("open items after re-hold of a released version: %v", got)
	}
	// A later version is held afresh.
	hold("red-1", t0.Add(time.Hour).Format(time.RFC3339Nano), "third")
	if got := ids(mustHeld(t, s, false)); !slices.Equal(got, []string{"red-1@third", "strict-1@no owner"}) {
		t.Errorf("open items after a new version: %v", got)
	}

	if _, err := s.Release(ctx(t), "nope", "admin:x", to); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("release unknown: %v", err)
	}
	if _, err := s.Held(ctx(t), "nope"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("Held unknown: %v", err)
	}
}

func TestHeldBadInput(t *testing.T) {
	s, _, _ := newStore(t)
	var v *gateway.ValidationError
	if err := s.Hold(ctx(t), HeldItem{Version: t0.Format(time.RFC3339)}); !errors.As(err, &v) || v.Fields[0].Field != "event_id" {
		t.Errorf("hold without event id: %v", err)
	}
	if err := s.Hold(ctx(t), HeldItem{EventID: "e", Version: "yesterday"}); !errors.As(err, &v) || v.Fields[0].Field != "version" {
		t.Errorf("hold with bad version: %v", err)
	}
	if err := s.Hold(ctx(t), HeldItem{EventID: "e", Version: t0.Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		by    string
		to    []gateway.Addressee
		field string
	}{
		{"", []gateway.Addressee{{Constituent: "c"}}, "by"},
		{"admin:x", nil, "to"},
		{"admin:x", []gateway.Addressee{{Constituent: "c"}, {Name: "nobody"}}, "/to/1"},
	}
	for _, c := range cases {
		_, err := s.Release(ctx(t), "e", c.by, c.to)
		if !errors.As(err, &v) || v.Fields[0].Field != c.field {
			t.Errorf("Release(by %q, to %v) = %v, want a ValidationError naming %s", c.by, c.to, err, c.field)
		}
	}
	if h, _ := s.Held(ctx(t), "e"); h.Released {
		t.Error("a rejected release released the item")
	}
}

func mustHeld(t *testing.T, s *Store, includeReleased bool) []HeldItem {
	t.Helper()
	items, err := s.HeldItems(ctx(t), includeReleased)
	if err != nil {
		t.Fatal(err)
	}
	return items
}
