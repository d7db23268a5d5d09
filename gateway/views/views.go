// Package views serves the pull views (MISP server API, MISP feed, TAXII)
// with the same policy as push routing. Routing writes an index of who may
// see each event version; reads trust that index only while it was built for
// the registry in force, and otherwise re-decide every entry, so a registry
// change can delay what a constituent sees but never widen it.
package views

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/registry"
)

// Audience is who is looking.
type Audience int

const (
	// Public sees TLP:CLEAR only (public feed, TAXII "public", anonymous feed).
	Public Audience = iota
	// Community sees up to TLP:GREEN (community lists, unscoped feeds, TAXII "community").
	Community
	// Constituent sees everything the policy allows one constituent.
	Constituent
)

// Viewer is one caller of a pull view.
type Viewer struct {
	Audience    Audience
	Constituent string // constituent id, for Audience Constituent
}

// Events loads stored events.
type Events interface {
	Event(ctx context.Context, id string) (*gateway.Event, error)
}

// Views is safe for concurrent use.
type Views struct {
	rdb    redis.UniversalClient
	prefix string
	events Events
	reg    *registry.Registry
	// channel is the constituent channel whose decision applies to pull
	// views; the table treats all pull channels alike.
	channel gateway.Channel
}

// New returns the views over rdb.
func New(rdb redis.UniversalClient, prefix string, ev Events, reg *registry.Registry) *Views {
	return &Views{rdb: rdb, prefix: prefix, events: ev, reg: reg, channel: gateway.ChannelMISPPull}
}

func (v *Views) key(parts ...string) string {
	k := v.prefix + ":view"
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

func (v *Views) memberKey(id string) string { return v.prefix + ":{" + id + "}:views" }

// Entry is one event in a view, in the order it was added.
type Entry struct {
	ID      string
	Version string    // the event version (Modified, RFC 3339)
	Added   time.Time // when this version was routed: TAXII date_added, MISP ordering
}

// Lister walks every stored event id.
type Lister interface {
	EachEventID(ctx context.Context, fn func(id string) error) error
}

// Reindex recomputes every event's view entries under the registry in force
// and then stamps the index with it, so reads take the fast path again. Run it
// after a registry change; until it finishes reads re-decide every entry.
// One replica at a time: others skip while the lock is held.
func (v *Views) Reindex(ctx context.Context, all Lister) (int, error) {
	snap := v.reg.Current()
	// The index already stands for this registry (a restart without a
	// change, or another replica got there first): nothing to redo.
	if stamp, err := v.rdb.Get(ctx, v.key("regver")).Int64(); err == nil && stamp == snap.Version {
		return 0, nil
	}
	lock := v.key("reindex", "lock")
	ok, err := v.rdb.SetNX(ctx, lock, snap.Version, 10*time.Minute).Result()
	if err != nil || !ok {
		return 0, err
	}
	defer v.rdb.Del(context.WithoutCancel(ctx), lock)
	n := 0
	err = all.EachEventID(ctx, func(id string) error {
		ev, err := v.events.Event(ctx, id)
		if errors.Is(err, gateway.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		added, err := v.added(ctx, ev)
		if err != nil {
			return err
		}
		entry := v.Index(policy.Assess(ev, snap), snap, added)
		if err := entry.Prepare(ctx, true); err != nil {
			return err
		}
		pipe := v.rdb.Pipeline()
		if err := entry.Queue(ctx, pipe); err != nil {
			return err
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("reindex %s: %w", id, err)
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, v.rdb.Set(ctx, v.key("regver"), snap.Version, 0).Err()
}

// added finds when the current version was indexed, so a reindex keeps the
// order (and TAXII date_added) consumers already paged through.
func (v *Views) added(ctx context.Context, ev *gateway.Event) (time.Time, error) {
	keys, err := v.rdb.SMembers(ctx, v.memberKey(ev.ID)).Result()
	if err != nil {
		return time.Time{}, err
	}
	member := ev.ID + "|" + ev.Version()
	for _, k := range keys {
		if sc, err := v.rdb.ZScore(ctx, k, member).Result(); err == nil {
			return time.UnixMicro(int64(sc)), nil
		}
	}
	return time.Now(), nil
}

// Placement is one event version's place in the pull views, computed under one
// registry snapshot: the view keys it belongs in. Routing commits it with
// the version's routed mark (store.Batch); Reindex on its own.
type Placement struct {
	v        *Views
	id       string
	member   string
	score    float64
	keys     []string
	regVer   int64
	old      []string
	oldMatch string
}

// Index computes the view entry of a version first made available at added.
func (v *Views) Index(a *policy.Assessment, snap *registry.Snapshot, added time.Time) *Placement {
	ev := a.Event()
	var keys []string
	if policy.DecideAudience(ev, gateway.ChannelPublic).Verdict == policy.Deliver {
		keys = append(keys, v.key("public"))
	}
	community := policy.DecideAudience(ev, gateway.ChannelCommunityList).Verdict == policy.Deliver
	if community {
		keys = append(keys, v.key("community"))
	} else {
		// Community-wide events are found through the community set; only
		// need-to-know events get per-constituent entries.
		for i := range snap.Constituents {
			c := &snap.Constituents[i]
			if a.Decide(c, v.channel).Verdict == policy.Deliver {
				keys = append(keys, v.key("c", c.ID))
			}
		}
	}
	return &Placement{v: v, id: ev.ID, member: ev.ID + "|" + ev.Version(), score: float64(added.UnixMicro()), keys: keys, regVer: snap.Version}
}

// Prepare reads the views an earlier version of the event is in, so Queue
// can move it out of those it leaves. Only an update needs it.
func (e *Placement) Prepare(ctx context.Context, update bool) error {
	if !update {
		return nil
	}
	// The event's member set lists the view keys it is in and, as
	// "=<member>", the member it was indexed under.
	entries, err := e.v.rdb.SMembers(ctx, e.v.memberKey(e.id)).Result()
	if err != nil {
		return fmt.Errorf("views of %s: %w", e.id, err)
	}
	e.old, e.oldMatch = e.old[:0], ""
	for _, m := range entries {
		if rest, ok := strings.CutPrefix(m, "="); ok {
			e.oldMatch = rest
			continue
		}
		e.old = append(e.old, m)
	}
	return nil
}

// Queue adds the entry's writes to pipe.
func (e *Placement) Queue(ctx context.Context, pipe redis.Pipeliner) error {
	// Add first, then remove the previous member by name: a concurrent
	// reader never sees the event missing from a view it stays in.
	for _, k := range e.keys {
		pipe.ZAdd(ctx, k, redis.Z{Score: e.score, Member: e.member})
	}
	if e.oldMatch != "" {
		for _, k := range e.old {
			if e.oldMatch != e.member || !slices.Contains(e.keys, k) {
				pipe.ZRem(ctx, k, e.oldMatch)
			}
		}
	}
	mk := e.v.memberKey(e.id)
	pipe.Del(ctx, mk)
	pipe.SAdd(ctx, mk, append(toAny(e.keys), "="+e.member)...)
	// The first routing stamps the index with the registry it was built
	// under; after a registry change only Reindex moves the stamp.
	pipe.SetNX(ctx, e.v.key("regver"), e.regVer, 0)
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// ErrNotVisible is returned (wrapping gateway.ErrNotFound) when an event
// exists but the viewer may not see it: callers answer exactly as for a
// missing event, so existence is not revealed.
var ErrNotVisible = fmt.Errorf("not visible: %w", gateway.ErrNotFound)

// Query pages a view.
type Query struct {
	After time.Time // only entries added strictly after (TAXII added_after, MISP timestamp)
	From  string    // opaque cursor from a previous page; wins over After
	Limit int       // default 1000, at most 100000
}

// List returns entries the viewer may see, oldest first, and the cursor of
// the next page ("" at the end).
func (v *Views) List(ctx context.Context, who Viewer, q Query) ([]Entry, string, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	if q.Limit > 100000 {
		q.Limit = 100000
	}
	min := "(" + strconv.FormatInt(q.After.UnixMicro(), 10)
	if q.After.IsZero() {
		min = "-inf"
	}
	var (
		cScore  int64
		cMember string
	)
	keys, err := v.keysFor(who)
	if err != nil {
		return nil, "", err
	}
	extra := make([]int64, len(keys))
	if q.From != "" {
		if cScore, cMember, err = decodeCursor(q.From); err != nil {
			return nil, "", err
		}
		min = strconv.FormatInt(cScore, 10)
		// Entries sharing the cursor's score come first in the range; read
		// past them.
		pipe := v.rdb.Pipeline()
		counts := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			counts[i] = pipe.ZCount(ctx, k, min, min)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, "", fmt.Errorf("read view: %w", err)
		}
		for i, c := range counts {
			extra[i] = c.Val()
		}
	}
	snap := v.reg.Current()
	exact, err := v.indexCurrent(ctx, snap)
	if err != nil {
		return nil, "", err
	}
	// Read a little more than asked from each set and merge; equal scores are
	// ordered by member so the cursor is stable.
	pipe := v.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: min, Max: "+inf", Count: int64(q.Limit) + 1 + extra[i]})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("read view: %w", err)
	}
	merged := merge(cmds, q.From != "", cScore, cMember)
	out := make([]Entry, 0, min2(len(merged), q.Limit))
	next := ""
	var lastSeen redis.Z
	for _, z := range merged {
		if len(out) == q.Limit {
			last := out[len(out)-1]
			next = encodeCursor(last.Added.UnixMicro(), last.ID+"|"+last.Version)
			break
		}
		lastSeen = z
		e := entryOf(z)
		if !exact {
			// The index predates the registry in force: decide again.
			if _, err := v.Event(ctx, who, e.ID); err != nil {
				if errors.Is(err, gateway.ErrNotFound) {
					continue
				}
				return nil, "", err
			}
		}
		out = append(out, e)
	}
	if next == "" && lastSeen.Member != nil {
		// Entries were filtered out: if any set may hold more than was
		// read, continue after the last entry examined.
		for i, c := range cmds {
			if int64(len(c.Val())) >= int64(q.Limit)+1+extra[i] {
				next = encodeCursor(int64(lastSeen.Score), lastSeen.Member.(string))
				break
			}
		}
	}
	return out, next, nil
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func (v *Views) keysFor(who Viewer) ([]string, error) {
	switch who.Audience {
	case Public:
		return []string{v.key("public")}, nil
	case Community:
		return []string{v.key("public"), v.key("community")}, nil
	case Constituent:
		if who.Constituent == "" {
			return nil, errors.New("viewer: constituent id is empty")
		}
		return []string{v.key("public"), v.key("community"), v.key("c", who.Constituent)}, nil
	}
	return nil, fmt.Errorf("viewer: unknown audience %d", who.Audience)
}

// indexCurrent reports whether the index was last written under the registry
// version in force, so its entries can be trusted without re-deciding.
func (v *Views) indexCurrent(ctx context.Context, snap *registry.Snapshot) (bool, error) {
	s, err := v.rdb.Get(ctx, v.key("regver")).Int64()
	if errors.Is(err, redis.Nil) {
		return true, nil // nothing indexed yet
	}
	if err != nil {
		return false, fmt.Errorf("view index version: %w", err)
	}
	return s == snap.Version, nil
}

// Event returns the current version of event id as the viewer may see it
// (projected for a constituent), or ErrNotVisible.
func (v *Views) Event(ctx context.Context, who Viewer, id string) (*gateway.Event, error) {
	ev, err := v.events.Event(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Project(who, ev)
}

// Project applies the policy to an event the caller already loaded.
func (v *Views) Project(who Viewer, ev *gateway.Event) (*gateway.Event, error) {
	switch who.Audience {
	case Public:
		if policy.DecideAudience(ev, gateway.ChannelPublic).Verdict != policy.Deliver {
			return nil, ErrNotVisible
		}
		return policy.ProjectAudience(ev), nil
	case Community:
		if policy.DecideAudience(ev, gateway.ChannelCommunityList).Verdict != policy.Deliver {
			return nil, ErrNotVisible
		}
		return policy.ProjectAudience(ev), nil
	case Constituent:
		snap := v.reg.Current()
		c, ok := snap.Get(who.Constituent)
		if !ok {
			return nil, ErrNotVisible
		}
		a := policy.Assess(ev, snap)
		if a.Decide(c, v.channel).Verdict != policy.Deliver {
			return nil, ErrNotVisible
		}
		return a.Project(c), nil
	}
	return nil, ErrNotVisible
}
