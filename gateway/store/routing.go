package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// markRoutedScript records that a version's deliveries are enqueued.
// KEYS: cur, routed set, version blob. ARGV: version. Returns 0 when the
// version does not exist.
var markRoutedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'version') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'routed', '1')
end
return 1
`)

// MarkRouted records that the deliveries of a version are enqueued, so the
// version is no longer offered by Unrouted. Routing does this inside its
// Batch; this is for versions routed by hand.
func (s *Store) MarkRouted(ctx context.Context, id, version string) error {
	pipe := s.rdb.Pipeline()
	mark := markRoutedScript.Eval(ctx, pipe,
		[]string{s.eventKey(id, "cur"), s.eventKey(id, "routed"), s.eventKey(id, "v", version)}, version)
	pipe.ZRem(ctx, s.key("routing"), routingMember(id, version))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mark %q version %q routed: %w", id, version, err)
	}
	if n, _ := mark.Int64(); n == 0 {
		return fmt.Errorf("event %q version %q: %w", id, version, gateway.ErrNotFound)
	}
	return nil
}

// Routed reports whether MarkRouted was called for a version.
func (s *Store) Routed(ctx context.Context, id, version string) (bool, error) {
	pipe := s.rdb.Pipeline()
	routed := pipe.SIsMember(ctx, s.eventKey(id, "routed"), version)
	exists := pipe.Exists(ctx, s.eventKey(id, "v", version))
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("read routing of %q version %q: %w", id, version, err)
	}
	if exists.Val() == 0 {
		return false, fmt.Errorf("event %q version %q: %w", id, version, gateway.ErrNotFound)
	}
	return routed.Val(), nil
}

// Unrouted returns up to limit (default 100) versions stored longer than
// olderThan ago whose deliveries were never marked enqueued, oldest first:
// the ones a crash between store and enqueue left behind.
func (s *Store) Unrouted(ctx context.Context, olderThan time.Duration, limit int) ([]VersionRef, error) {
	if limit <= 0 {
		limit = defaultUnroutedLimit
	}
	cutoff := s.now().Add(-olderThan).UnixMilli()
	members, err := s.rdb.ZRangeByScore(ctx, s.key("routing"), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(cutoff, 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read routing queue: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	refs := make([]VersionRef, 0, len(members))
	pipe := s.rdb.Pipeline()
	checks := make([]*redis.BoolCmd, 0, len(members))
	exists := make([]*redis.IntCmd, 0, len(members))
	for _, m := range members {
		id, version, ok := strings.Cut(m, "\x00")
		if !ok {
			continue
		}
		refs = append(refs, VersionRef{ID: id, Version: version})
		checks = append(checks, pipe.SIsMember(ctx, s.eventKey(id, "routed"), version))
		exists = append(exists, pipe.Exists(ctx, s.eventKey(id, "v", version)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read routing state: %w", err)
	}
	// A version marked routed whose queue entry survived (a crash inside
	// MarkRouted's round trip) is dropped from the queue here.
	out := refs[:0]
	var stale []any
	for i, ref := range refs {
		// Routed, or never stored (the entry PutEvent writes first for a
		// version that turned out to be a duplicate): nothing to recover.
		if checks[i].Val() || exists[i].Val() == 0 {
			stale = append(stale, routingMember(ref.ID, ref.Version))
			continue
		}
		out = append(out, ref)
	}
	if len(stale) > 0 {
		if err := s.rdb.ZRem(ctx, s.key("routing"), stale...).Err(); err != nil {
			return nil, fmt.Errorf("drop routed versions from routing queue: %w", err)
		}
	}
	return out, nil
}
