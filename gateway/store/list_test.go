package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

// putAt stores events ev-00…ev-(n-1), three per millisecond, so pages cut
// through groups with equal receive times.
func putAt(t *testing.T, s *Store, n int) []string {
	t.Helper()
	type rec struct {
		id string
		ms int64
	}
	var recs []rec
	for i := range n {
		id := fmt.Sprintf("ev-%02d", i)
		received := t0.Add(time.Duration(i/3) * time.Millisecond)
		if _, err := s.PutEvent(ctx(t), testEvent(id, t0, 1), received); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec{id, received.UnixMilli()})
	}
	// Newest received first, equal times by id descending.
	slices.SortFunc(recs, func(a, b rec) int {
		if a.ms != b.ms {
			return int(b.ms - a.ms)
		}
		if a.id > b.id {
			return -1
		}
		return 1
	})
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.id
	}
	return ids
}

// listAll pages through q, calling between after every page.
func listAll(t *testing.T, s *Store, q ListQuery, between func(page int, last Summary)) []string {
	t.Helper()
	var got []string
	for page := 0; ; page++ {
		sums, next, err := s.ListEvents(ctx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, sum := range sums {
			got = append(got, sum.ID)
		}
		if next == "" {
			return got
		}
		if page > 100 {
			t.Fatal("paging does not end")
		}
		if between != nil && len(sums) > 0 {
			between(page, sums[len(sums)-1])
		}
		q.Cursor = next
	}
}

func TestListEventsPaging(t *testing.T) {
	t.Run("stable while new events arrive", func(t *testing.T) {
		s, _, _ := newStore(t)
		want := putAt(t, s, 30)
		got := listAll(t, s, ListQuery{Limit: 7}, func(page int, _ Summary) {
			for j := range 3 {
				id := fmt.Sprintf("new-%d-%d", page, j)
				if _, err := s.PutEvent(ctx(t), testEvent(id, t0, 1), t0.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Errorf("paged ids\n got %v\nwant %v", got, want)
		}
	})

	t.Run("cursor event updated between pages", func(t *testing.T) {
		s, _, _ := newStore(t)
		want := putAt(t, s, 30)
		moved := map[string]bool{}
		got := listAll(t, s, ListQuery{Limit: 4}, func(_ int, last Summary) {
			// The update moves the cursor's own event to the top.
			if _, err := s.PutEvent(ctx(t), testEvent(last.ID, t0.Add(time.Minute), 1), t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			moved[last.ID] = true
		})
		if !slices.Equal(got, want) {
			t.Errorf("paged ids\n got %v\nwant %v", got, want)
		}
		if len(moved) < 5 {
			t.Errorf("only %d updates happened between pages", len(moved))
		}
	})

	t.Run("limits", func(t *testing.T) {
		s, _, _ := newStore(t)
		putAt(t, s, 60)
		cases := []struct {
			limit, want int
		}{{0, 50}, {-1, 50}, {10, 10}, {2000, 60}}
		for _, c := range cases {
			sums, next, err := s.ListEvents(ctx(t), ListQuery{Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(sums) != c.want {
				t.Errorf("Limit %d: %d summaries, want %d", c.limit, len(sums), c.want)
			}
			if (next == "") != (c.want == 60) {
				t.Errorf("Limit %d: next cursor %q", c.limit, next)
			}
		}
	})
}

func TestListEventsMaxLimit(t *testing.T) {
	s, _, _ := newStore(t)
	for i := range maxListLimit + 1 {
		if _, err := s.PutEvent(ctx(t), testEvent(fmt.Sprintf("ev-%04d", i), t0, 0), t0); err != nil {
			t.Fatal(err)
		}
	}
	sums, next, err := s.ListEvents(ctx(t), ListQuery{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != maxListLimit || next == "" {
		t.Fatalf("Limit 5000 gave %d summaries and cursor %q, want %d and a cursor", len(sums), next, maxListLimit)
	}
	rest, next, err := s.ListEvents(ctx(t), ListQuery{Limit: 5000, Cursor: next})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0].ID != "ev-0000" || next != "" {
		t.Errorf("second page %v, cursor %q; want only ev-0000 and the end", rest, next)
	}
}

// Index entries whose event is gone (deleted underneath) are skipped.
func TestListEventsSkipsMissing(t *testing.T) {
	s, _, _ := newStore(t)
	for i := range 30 {
		s.rdb.ZAdd(ctx(t), s.key("events"), redisZ(t0, fmt.Sprintf("ghost-%02d", i)))
	}
	if _, err := s.PutEvent(ctx(t), testEvent("real", t0, 0), t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, s, ListQuery{Limit: 5}, nil); !slices.Equal(got, []string{"real"}) {
		t.Errorf("got %v, want only the real event", got)
	}
}

func TestListEventsFilters(t *testing.T) {
	s, _, _ := newStore(t)
	type spec struct {
		id     string
		source string
		tlp    gateway.TLP
	}
	specs := []spec{
		{"a1", "alpha", gateway.TLPGreen}, {"a2", "alpha", gateway.TLPAmber}, {"a3", "alpha", gateway.TLPGreen},
		{"b1", "beta", gateway.TLPGreen}, {"b2", "beta", gateway.TLPRed},
	}
	// Many alpha/AMBER events push the matching ones apart.
	for i := range 25 {
		specs = append(specs, spec{fmt.Sprintf("filler-%02d", i), "alpha", gateway.TLPAmber})
	}
	for i, sp := range specs {
		ev := testEvent(sp.id, t0, 1)
		ev.Source.Name, ev.TLP = sp.source, sp.tlp
		if _, err := s.PutEvent(ctx(t), ev, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		q    ListQuery
		want []string
	}{
		{"source", ListQuery{Source: "beta"}, []string{"b2", "b1"}},
		{"tlp", ListQuery{TLP: gateway.TLPGreen}, []string{"b1", "a3", "a1"}},
		{"source and tlp", ListQuery{Source: "alpha", TLP: gateway.TLPGreen, Limit: 1}, []string{"a3", "a1"}},
		{"unknown source", ListQuery{Source: "gamma"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := listAll(t, s, c.q, nil); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}

	// An update that changes the label moves the event between TLP lists.
	ev := testEvent("a1", t0.Add(time.Hour), 1)
	ev.Source.Name, ev.TLP = "alpha", gateway.TLPRed
	if res, err := s.PutEvent(ctx(t), ev, t0.Add(time.Hour)); err != nil || res != Updated {
		t.Fatalf("update: %v %v", res, err)
	}
	if got := listAll(t, s, ListQuery{TLP: gateway.TLPGreen}, nil); !slices.Equal(got, []string{"b1", "a3"}) {
		t.Errorf("GREEN after relabel: %v", got)
	}
	if got := listAll(t, s, ListQuery{TLP: gateway.TLPRed}, nil); !slices.Equal(got, []string{"a1", "b2"}) {
		t.Errorf("RED after relabel: %v", got)
	}
	if n, _ := s.rdb.ZCard(ctx(t), s.key("events", "tlp", "GREEN")).Result(); n != 2 {
		t.Errorf("GREEN index holds %d members, want 2", n)
	}
	if got := listAll(t, s, ListQuery{Limit: 1000}, nil); len(got) != len(specs) {
		t.Errorf("unfiltered list has %d entries, want %d", len(got), len(specs))
	}
}

func TestListEventsSummary(t *testing.T) {
	s, _, _ := newStore(t)
	ev := testEvent("sum", t0.Add(-time.Hour), 10)
	if _, err := s.PutEvent(ctx(t), ev, t0); err != nil {
		t.Fatal(err)
	}
	get := func() Summary {
		t.Helper()
		sums, _, err := s.ListEvents(ctx(t), ListQuery{})
		if err != nil || len(sums) != 1 {
			t.Fatalf("ListEvents: %v, %v", sums, err)
		}
		return sums[0]
	}
	sum := get()
	want := Summary{
		ID: "sum", Title: ev.Title, Kind: gateway.KindAdvisory, TLP: gateway.TLPAmber, Source: "ncsc-csaf",
		Priority: gateway.PriorityHigh, Indicators: 10,
	}
	got := sum
	got.Modified, got.Received = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("summary %+v, want %+v", got, want)
	}
	if !sum.Modified.Equal(ev.Modified) || !sum.Received.Equal(t0) {
		t.Errorf("summary times %v / %v, want %v / %v", sum.Modified, sum.Received, ev.Modified, t0)
	}

	if err := s.Hold(ctx(t), HeldItem{EventID: "sum", Version: ev.Version(), Reason: "no eligible recipient"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRouted(ctx(t), "sum", ev.Version()); err != nil {
		t.Fatal(err)
	}
	if sum := get(); !sum.Held || !sum.Routed {
		t.Errorf("after hold and routing: held %v routed %v", sum.Held, sum.Routed)
	}
	// A newer version is neither routed nor (yet) held.
	if _, err := s.PutEvent(ctx(t), testEvent("sum", t0, 10), t0); err != nil {
		t.Fatal(err)
	}
	if sum := get(); sum.Held || sum.Routed {
		t.Errorf("newer version: held %v routed %v, want neither", sum.Held, sum.Routed)
	}
}

func TestListEventsBadInput(t *testing.T) {
	s, _, _ := newStore(t)
	cases := []struct {
		name  string
		q     ListQuery
		field string
	}{
		{"cursor not base64", ListQuery{Cursor: "!!!"}, "cursor"},
		{"cursor without member", ListQuery{Cursor: encodeCursor(position{score: 1})}, "cursor"},
		{"cursor with bad score", ListQuery{Cursor: "eDph"}, "cursor"}, // "x:a"
		{"unknown tlp", ListQuery{TLP: "BLUE"}, "tlp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := s.ListEvents(ctx(t), c.q)
			var v *gateway.ValidationError
			if !errors.As(err, &v) || v.Fields[0].Field != c.field {
				t.Errorf("error = %v, want a ValidationError naming %s", err, c.field)
			}
		})
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(position{score: 1763629200000, member: "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11"}))
	f.Add("")
	f.Add("eDph")
	f.Add("MTIzOg")
	f.Fuzz(func(t *testing.T, c string) {
		p, err := decodeCursor(c)
		if err != nil {
			return
		}
		if p.member == "" {
			t.Fatalf("decoded %q to an empty member", c)
		}
		again, err := decodeCursor(encodeCursor(p))
		if err != nil || again != p {
			t.Fatalf("round trip of %+v gave %+v, %v", p, again, err)
		}
	})
}
