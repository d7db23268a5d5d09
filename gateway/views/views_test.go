package views_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

type fixture struct {
	st  *store.Store
	reg *registry.Registry
	v   *views.Views
	r   *redistest.Redis
}

func setup(t *testing.T) *fixture {
	t.Helper()
	r := redistest.New(t)
	st := store.New(r.Client, r.Prefix)
	ctx := context.Background()
	if err := st.PutConstituents(ctx, []gateway.Constituent{
		{ID: "a", Name: "A", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/24"}}},
		{ID: "b", Name: "B", Sectors: []string{"health"}, Assets: gateway.Assets{Prefixes: []string{"198.51.100.0/24"}}},
	}); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, reg: reg, v: views.New(r.Client, r.Prefix, st, reg), r: r}
}

// put stores and indexes an event the way the pipeline does.
func (f *fixture) put(t *testing.T, ev *gateway.Event, added time.Time) {
	t.Helper()
	ctx := context.Background()
	snap := f.reg.Current()
	b := store.NewBatch(ev, added)
	b.Index(f.v.Index(policy.Assess(ev, snap), snap, added))
	if _, err := f.st.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func ev(id string, tlp gateway.TLP, kind gateway.Kind, mod time.Time, inds ...string) *gateway.Event {
	e := &gateway.Event{ID: id, Kind: kind, Title: id, TLP: tlp, Source: gateway.SourceRef{Name: "s"}, Created: mod, Modified: mod}
	for _, v := range inds {
		e.Indicators = append(e.Indicators, gateway.Indicator{Type: gateway.TypeIPv4, Value: v})
	}
	return e
}

func ids(t *testing.T, f *fixture, who views.Viewer) []string {
	t.Helper()
	es, _, err := f.v.List(context.Background(), who, views.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestVisibility(t *testing.T) {
	f := setup(t)
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f.put(t, ev("clear", gateway.TLPClear, gateway.KindAdvisory, t0), t0)
	f.put(t, ev("green", gateway.TLPGreen, gateway.KindAdvisory, t0), t0.Add(time.Second))
	amber := ev("amber-health", gateway.TLPAmber, gateway.KindIntel, t0)
	amber.Sectors = []string{"health"}
	f.put(t, amber, t0.Add(2*time.Second))
	f.put(t, ev("notif", gateway.TLPAmber, gateway.KindNotification, t0, "192.0.2.10", "198.51.100.7"), t0.Add(3*time.Second))
	f.put(t, ev("red", gateway.TLPRed, gateway.KindIncident, t0), t0.Add(4*time.Second))

	for _, tt := range []struct {
		who  views.Viewer
		want string
	}{
		{views.Viewer{Audience: views.Public}, "[clear]"},
		{views.Viewer{Audience: views.Community}, "[clear green]"},
		{views.Viewer{Audience: views.Constituent, Constituent: "a"}, "[clear green notif]"},
		{views.Viewer{Audience: views.Constituent, Constituent: "b"}, "[clear green amber-health notif]"},
		{views.Viewer{Audience: views.Constituent, Constituent: "nobody"}, "[clear green]"},
	} {
		if got := fmt.Sprint(ids(t, f, tt.who)); got != tt.want {
			t.Errorf("%+v sees %s, want %s", tt.who, got, tt.want)
		}
	}
	// The notification is projected per constituent.
	got, err := f.v.Event(context.Background(), views.Viewer{Audience: views.Constituent, Constituent: "a"}, "notif")
	if err != nil || len(got.Indicators) != 1 || got.Indicators[0].Value != "192.0.2.10" {
		t.Fatalf("A's notification: %+v %v", got, err)
	}
	if _, err := f.v.Event(context.Background(), views.Viewer{Audience: views.Constituent, Constituent: "a"}, "red"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("RED visible: %v", err)
	}
	if _, err := f.v.Event(context.Background(), views.Viewer{Audience: views.Constituent, Constituent: "a"}, "amber-health"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("AMBER health visible to A: %v", err)
	}
}

func TestUpdateReplacesEntries(t *testing.T) {
	f := setup(t)
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f.put(t, ev("x", gateway.TLPGreen, gateway.KindAdvisory, t0), t0)
	// A newer version is raised to AMBER for the health sector: A loses it.
	up := ev("x", gateway.TLPAmber, gateway.KindAdvisory, t0.Add(time.Hour))
	up.Sectors = []string{"health"}
	f.put(t, up, t0.Add(time.Hour))
	if got := fmt.Sprint(ids(t, f, views.Viewer{Audience: views.Constituent, Constituent: "a"})); got != "[]" {
		t.Errorf("A sees %s after the raise", got)
	}
	es, _, err := f.v.List(context.Background(), views.Viewer{Audience: views.Constituent, Constituent: "b"}, views.Query{})
	if err != nil || len(es) != 1 || es[0].Version != up.Version() {
		t.Errorf("B's entries: %+v %v", es, err)
	}
}

func TestRegistryChangeNeverWidens(t *testing.T) {
	f := setup(t)
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f.put(t, ev("n", gateway.TLPAmber, gateway.KindNotification, t0, "192.0.2.10"), t0)
	ctx := context.Background()
	// A hands its prefix to B: the index still lists it under A, but A must
	// no longer see it.
	if _, err := f.st.PutConstituent(ctx, gateway.Constituent{ID: "a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.PutConstituent(ctx, gateway.Constituent{ID: "b", Name: "B", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids(t, f, views.Viewer{Audience: views.Constituent, Constituent: "a"})); got != "[]" {
		t.Errorf("A still sees %s after losing the prefix", got)
	}
}

func TestPaging(t *testing.T) {
	f := setup(t)
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	const n = 250
	for i := range n {
		// Many share one timestamp: the cursor must not skip or repeat them.
		f.put(t, ev(fmt.Sprintf("e%03d", i), gateway.TLPGreen, gateway.KindAdvisory, t0), t0.Add(time.Duration(i/50)*time.Millisecond))
	}
	seen := map[string]bool{}
	q := views.Query{Limit: 30}
	pages := 0
	for {
		es, next, err := f.v.List(context.Background(), views.Viewer{Audience: views.Community}, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if seen[e.ID] {
				t.Fatalf("%s repeated", e.ID)
			}
			seen[e.ID] = true
		}
		pages++
		if next == "" {
			break
		}
		q = views.Query{Limit: 30, From: next}
	}
	if len(seen) != n {
		t.Fatalf("paged %d of %d in %d pages", len(seen), n, pages)
	}
	if _, _, err := f.v.List(context.Background(), views.Viewer{Audience: views.Community}, views.Query{From: "garbage!"}); err == nil {
		t.Fatal("a garbage cursor was accepted")
	}
}

func TestReindexRestoresFastPath(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f.put(t, ev("n", gateway.TLPAmber, gateway.KindNotification, t0, "192.0.2.10"), t0)
	if _, err := f.st.PutConstituent(ctx, gateway.Constituent{ID: "c", Name: "C", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/25"}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// A newer event routed after the change must not re-stamp the old index.
	f.put(t, ev("m", gateway.TLPClear, gateway.KindAdvisory, t0), t0.Add(time.Second))
	if got := fmt.Sprint(ids(t, f, views.Viewer{Audience: views.Constituent, Constituent: "a"})); got != "[m]" {
		t.Errorf("A sees %s; the more specific /25 now belongs to C", got)
	}
	n, err := f.v.Reindex(ctx, f.st)
	if err != nil || n != 2 {
		t.Fatalf("reindex: %d %v", n, err)
	}
	if got := fmt.Sprint(ids(t, f, views.Viewer{Audience: views.Constituent, Constituent: "c"})); got != "[n m]" {
		t.Errorf("C sees %s after reindex", got)
	}
	if got := fmt.Sprint(ids(t, f, views.Viewer{Audience: views.Constituent, Constituent: "a"})); got != "[m]" {
		t.Errorf("A sees %s after reindex", got)
	}
	// Under the same registry again (a restart), nothing is redone.
	if n, err := f.v.Reindex(ctx, f.st); err != nil || n != 0 {
		t.Errorf("second reindex under the same registry: %d %v; want 0", n, err)
	}
}

// An update replaces only its own entry: other events sharing the view keep
// theirs, whatever their scores.
func TestUpdateLeavesOtherEventsAlone(t *testing.T) {
	f := setup(t)
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"b", "a", "ab", "a|x", "c"} {
		f.put(t, ev(id, gateway.TLPGreen, gateway.KindAdvisory, t0), t0.Add(time.Duration(5-i)*time.Second))
	}
	f.put(t, ev("a", gateway.TLPGreen, gateway.KindAdvisory, t0.Add(time.Hour)), t0.Add(time.Minute))
	got := ids(t, f, views.Viewer{Audience: views.Community})
	if fmt.Sprint(got) != "[c a|x ab b a]" {
		t.Fatalf("community view after updating a: %v", got)
	}
	es, _, _ := f.v.List(context.Background(), views.Viewer{Audience: views.Community}, views.Query{})
	if last := es[len(es)-1]; last.ID != "a" || last.Version != t0.Add(time.Hour).Format(time.RFC3339Nano) {
		t.Fatalf("a's entry: %+v", last)
	}
}
