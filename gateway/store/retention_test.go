package store

import (
	"errors"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestDeleteEventKeepsWhatIsNewerThanTheCutoff(t *testing.T) {
	s, r, _ := newStore(t)
	ctx := t.Context()
	old, fresh := testEvent("old", t0, 2), testEvent("fresh", t0, 1)
	if _, err := s.PutEvent(ctx, old, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutEvent(ctx, fresh, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cutoff := t0.Add(time.Minute)
	ids, err := s.ExpiredEvents(ctx, cutoff, 10)
	if err != nil || len(ids) != 1 || ids[0] != "old" {
		t.Fatalf("ExpiredEvents = %v, %v; want [old]", ids, err)
	}
	// A cutoff the fresh event is not older than leaves it alone, even when
	// asked by id (a version that arrived after the listing).
	if ok, err := s.DeleteEvent(ctx, "fresh", cutoff); ok || err != nil {
		t.Errorf("DeleteEvent(fresh) = %v, %v; want kept", ok, err)
	}
	if _, err := s.Event(ctx, "fresh"); err != nil {
		t.Errorf("fresh event gone: %v", err)
	}
	if ok, err := s.DeleteEvent(ctx, "old", cutoff); !ok || err != nil {
		t.Fatalf("DeleteEvent(old) = %v, %v", ok, err)
	}
	if _, err := s.Event(ctx, "old"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("old event still readable: %v", err)
	}
	for _, k := range []string{s.eventKey("old", "cur"), s.eventKey("old", "versions"), s.eventKey("old", "sum"),
		s.eventKey("old", "v", old.Version())} {
		if n := r.Client.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("key left: %s", k)
		}
	}
	list, _, err := s.ListEvents(ctx, ListQuery{})
	if err != nil || len(list) != 1 || list[0].ID != "fresh" {
		t.Errorf("list after delete = %+v, %v", list, err)
	}
	// Deleting again is harmless; the id may be ingested anew.
	if ok, err := s.DeleteEvent(ctx, "old", cutoff); ok || err != nil {
		t.Errorf("second DeleteEvent = %v, %v", ok, err)
	}
	if res, err := s.PutEvent(ctx, old, t0.Add(2*time.Hour)); err != nil || res != Created {
		t.Errorf("re-ingest after delete = %v, %v; want Created", res, err)
	}
	if _, err := s.DeleteEvent(ctx, "", cutoff); err == nil {
		t.Error("empty id accepted")
	}
}
