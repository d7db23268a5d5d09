package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestPutEventVersions(t *testing.T) {
	s, _, _ := newStore(t)
	mod := t0.Add(-time.Hour)
	steps := []struct {
		name     string
		modified time.Time
		title    string
		want     PutResult
		current  string // title of the current version afterwards
	}{
		{"first version", mod, "v1", Created, "v1"},
		{"same version again", mod, "v1 resent with other text", Duplicate, "v1"},
		{"older version", mod.Add(-time.Minute), "v0", Duplicate, "v1"},
		{"newer version", mod.Add(time.Minute), "v2", Updated, "v2"},
		{"one nanosecond newer", mod.Add(time.Minute + time.Nanosecond), "v3", Updated, "v3"},
		{"the nanosecond-older one", mod.Add(time.Minute), "v2 again", Duplicate, "v3"},
	}
	for _, st := range steps {
		ev := testEvent("ev-1", st.modified, 2)
		ev.Title = st.title
		got, err := s.PutEvent(ctx(t), ev, t0)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: PutEvent = %v, want %v", st.name, got, st.want)
		}
		cur, err := s.Event(ctx(t), "ev-1")
		if err != nil {
			t.Fatalf("%s: Event: %v", st.name, err)
		}
		if cur.Title != st.current {
			t.Errorf("%s: current title %q, want %q", st.name, cur.Title, st.current)
		}
	}

	versions, err := s.Versions(ctx(t), "ev-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		mod.Format(time.RFC3339Nano),
		mod.Add(time.Minute).Format(time.RFC3339Nano),
		mod.Add(time.Minute + time.Nanosecond).Format(time.RFC3339Nano),
	}
	if len(versions) != len(want) {
		t.Fatalf("versions %v, want %v", versions, want)
	}
	for i, v := range want {
		if versions[i] != v {
			t.Errorf("version %d = %q, want %q", i, versions[i], v)
		}
		ev, err := s.EventVersion(ctx(t), "ev-1", v)
		if err != nil {
			t.Fatalf("EventVersion(%s): %v", v, err)
		}
		if ev.Version() != v || len(ev.Indicators) != 2 {
			t.Errorf("EventVersion(%s) returned version %s with %d indicators", v, ev.Version(), len(ev.Indicators))
		}
	}
	if first, _ := s.EventVersion(ctx(t), "ev-1", want[0]); first.Title != "v1" {
		t.Errorf("first version title %q, want v1 (a duplicate must not overwrite it)", first.Title)
	}
}

func TestEventNotFound(t *testing.T) {
	s, _, _ := newStore(t)
	if _, err := s.Event(ctx(t), "nope"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("Event(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.PutEvent(ctx(t), testEvent("ev", t0, 0), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EventVersion(ctx(t), "ev", t0.Add(time.Second).Format(time.RFC3339Nano)); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("EventVersion(unknown version) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Versions(ctx(t), "nope"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("Versions(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestPutEventConcurrentSameVersion(t *testing.T) {
	s, _, _ := newStore(t)
	const workers = 8
	results := make([]PutResult, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.PutEvent(ctx(t), testEvent("race", t0, 3), t0)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range workers {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		switch results[i] {
		case Created:
			created++
		case Duplicate:
		default:
			t.Errorf("worker %d: %v", i, results[i])
		}
	}
	if created != 1 {
		t.Errorf("%d workers saw Created, want exactly 1", created)
	}
	versions, err := s.Versions(ctx(t), "race")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Errorf("versions %v, want one", versions)
	}
	page, _, err := s.ListEvents(ctx(t), ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 {
		t.Errorf("list has %d entries, want 1", len(page))
	}
}

func TestPutEventRejectsBadInput(t *testing.T) {
	s, _, _ := newStore(t)
	cases := []struct {
		name   string
		mutate func(*gateway.Event)
		field  string
	}{
		{"no id", func(e *gateway.Event) { e.ID = "" }, "/id"},
		{"NUL in id", func(e *gateway.Event) { e.ID = "a\x00b" }, "/id"},
		{"id empties the hash tag", func(e *gateway.Event) { e.ID = "}a" }, "/id"},
		{"no modified", func(e *gateway.Event) { e.Modified = time.Time{} }, "/modified"},
		{"modified before 1970", func(e *gateway.Event) { e.Modified = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "/modified"},
		{"no source", func(e *gateway.Event) { e.Source.Name = "" }, "/source/name"},
		{"bad tlp", func(e *gateway.Event) { e.TLP = "PURPLE" }, "/tlp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := testEvent("ev", t0, 1)
			c.mutate(ev)
			_, err := s.PutEvent(ctx(t), ev, t0)
			var v *gateway.ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("error = %v, want a ValidationError", err)
			}
			if len(v.Fields) != 1 || v.Fields[0].Field != c.field {
				t.Errorf("fields %+v, want one naming %s", v.Fields, c.field)
			}
		})
	}
	if _, err := s.PutEvent(ctx(t), nil, t0); err == nil {
		t.Error("PutEvent(nil) succeeded")
	}
	if n, _ := s.rdb.Exists(ctx(t), s.eventKey("ev", "cur")).Result(); n != 0 {
		t.Error("a rejected event was stored")
	}
}

func TestUnroutedAndMarkRouted(t *testing.T) {
	s, _, clk := newStore(t)
	old := testEvent("old", t0, 1)
	if _, err := s.PutEvent(ctx(t), old, t0); err != nil {
		t.Fatal(err)
	}
	clk.Add(90 * time.Second)
	fresh := testEvent("fresh", t0, 1)
	if _, err := s.PutEvent(ctx(t), fresh, clk.Now()); err != nil {
		t.Fatal(err)
	}

	refs, err := s.Unrouted(ctx(t), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0] != (VersionRef{ID: "old", Version: old.Version()}) {
		t.Fatalf("Unrouted(1m) = %v, want only old", refs)
	}
	if routed, err := s.Routed(ctx(t), "old", old.Version()); err != nil || routed {
		t.Errorf("Routed before MarkRouted = %v, %v", routed, err)
	}

	if err := s.MarkRouted(ctx(t), "old", old.Version()); err != nil {
		t.Fatal(err)
	}
	if routed, err := s.Routed(ctx(t), "old", old.Version()); err != nil || !routed {
		t.Errorf("Routed after MarkRouted = %v, %v", routed, err)
	}
	clk.Add(time.Hour)
	refs, err = s.Unrouted(ctx(t), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].ID != "fresh" {
		t.Errorf("Unrouted after marking old = %v, want only fresh", refs)
	}

	// A newer version is unrouted again; the old one stays routed.
	upd := testEvent("old", t0.Add(time.Minute), 1)
	if res, err := s.PutEvent(ctx(t), upd, clk.Now().Add(-2*time.Hour)); err != nil || res != Updated {
		t.Fatalf("update: %v, %v", res, err)
	}
	refs, _ = s.Unrouted(ctx(t), time.Minute, 10)
	if len(refs) != 2 || refs[0] != (VersionRef{ID: "old", Version: upd.Version()}) {
		t.Errorf("Unrouted after update = %v, want the new version of old first", refs)
	}
	if routed, _ := s.Routed(ctx(t), "old", old.Version()); !routed {
		t.Error("the first version lost its routed mark")
	}

	if err := s.MarkRouted(ctx(t), "nope", old.Version()); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("MarkRouted(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Routed(ctx(t), "nope", old.Version()); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("Routed(unknown) = %v, want ErrNotFound", err)
	}
}

// A crash between the stored version and its index entries must not lose
// the version: the sender retries (it got an error), PutEvent reports a
// duplicate, and the version is queued for routing again.
func TestPutEventHealsLostIndexStep(t *testing.T) {
	s, _, clk := newStore(t)
	ev := testEvent("crash", t0, 1)
	if _, err := s.PutEvent(ctx(t), ev, t0); err != nil {
		t.Fatal(err)
	}
	// Simulate the crash: the second step never ran.
	for _, k := range []string{s.key("routing"), s.key("events"), s.key("events", "src", "ncsc-csaf"), s.key("events", "tlp", "AMBER")} {
		s.rdb.Del(ctx(t), k)
	}
	clk.Add(time.Hour)
	if res, err := s.PutEvent(ctx(t), ev, clk.Now()); err != nil || res != Duplicate {
		t.Fatalf("retry: %v, %v; want Duplicate", res, err)
	}
	refs, _ := s.Unrouted(ctx(t), time.Minute, 10)
	if len(refs) != 0 {
		t.Errorf("Unrouted(1m) = %v right after the retry; the retry's receive time should count", refs)
	}
	clk.Add(time.Hour)
	refs, _ = s.Unrouted(ctx(t), time.Minute, 10)
	if len(refs) != 1 || refs[0].ID != "crash" {
		t.Errorf("Unrouted = %v, want the healed version", refs)
	}
	page, _, _ := s.ListEvents(ctx(t), ListQuery{Source: "ncsc-csaf"})
	if len(page) != 1 {
		t.Errorf("source list has %d entries after heal, want 1", len(page))
	}

	// Once routed, a resend changes nothing, not even the queue.
	if err := s.MarkRouted(ctx(t), "crash", ev.Version()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutEvent(ctx(t), ev, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.rdb.ZCard(ctx(t), s.key("routing")).Result(); n != 0 {
		t.Errorf("routing queue has %d entries after a duplicate of a routed version", n)
	}
}

// MarkRouted's queue removal may be lost in a crash; Unrouted notices the
// version is routed and does not offer it again.
func TestUnroutedSkipsRoutedLeftovers(t *testing.T) {
	s, _, clk := newStore(t)
	ev := testEvent("left", t0, 1)
	if _, err := s.PutEvent(ctx(t), ev, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRouted(ctx(t), "left", ev.Version()); err != nil {
		t.Fatal(err)
	}
	s.rdb.ZAdd(ctx(t), s.key("routing"), redisZ(t0, routingMember("left", ev.Version())))
	clk.Add(time.Hour)
	refs, err := s.Unrouted(ctx(t), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 0 {
		t.Errorf("Unrouted = %v, want nothing", refs)
	}
	if n, _ := s.rdb.ZCard(ctx(t), s.key("routing")).Result(); n != 0 {
		t.Errorf("the leftover stayed in the routing queue")
	}
}

func TestPutEventRefusesAnotherSourcesEvent(t *testing.T) {
	s, _, _ := newStore(t)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	ev := &gateway.Event{ID: "shared", Kind: gateway.KindIntel, Title: "t", TLP: gateway.TLPAmber,
		Source: gateway.SourceRef{Name: "ncsc"}, Created: now, Modified: now}
	if _, err := s.PutEvent(ctx(t), ev, now); err != nil {
		t.Fatal(err)
	}
	forged := *ev
	forged.Source.Name = "partner"
	forged.TLP = gateway.TLPClear
	forged.Modified = now.Add(time.Hour)
	if _, err := s.PutEvent(ctx(t), &forged, now); !errors.Is(err, ErrOtherSource) {
		t.Fatalf("another source's update: %v, want ErrOtherSource", err)
	}
	got, err := s.Event(ctx(t), "shared")
	if err != nil || got.TLP != gateway.TLPAmber || got.Source.Name != "ncsc" {
		t.Fatalf("stored event changed: %+v %v", got, err)
	}
}
