package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// position is a place in an index ZSET: order is score descending, then
// member descending (Redis' own order for ZREVRANGE).
type position struct {
	score  float64
	member string
}

func encodeCursor(p position) string {
	raw := strconv.FormatFloat(p.score, 'f', -1, 64) + ":" + p.member
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(c string) (position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return position{}, errors.New("not base64url")
	}
	score, member, ok := strings.Cut(string(raw), ":")
	if !ok || member == "" {
		return position{}, errors.New("missing member")
	}
	f, err := strconv.ParseFloat(score, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return position{}, errors.New("bad score")
	}
	return position{score: f, member: member}, nil
}

// pageAfterScript reads the n members after (score, member) in one atomic
// step, so events arriving meanwhile cannot shift the page. It returns nil
// when the member has gone or moved (an update re-scores it); the caller
// then pages by score instead.
var pageAfterScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not s or tonumber(s) ~= tonumber(ARGV[1]) then return false end
local r = redis.call('ZREVRANK', KEYS[1], ARGV[2])
return redis.call('ZREVRANGE', KEYS[1], r + 1, r + tonumber(ARGV[3]), 'WITHSCORES')
`)

// ListEvents returns summaries newest received first and the cursor of the
// next page ("" on the last page). Source and TLP filter through their
// index sets and are re-checked against each summary, so an event whose
// label changed never shows under its old one.
func (s *Store) ListEvents(ctx context.Context, q ListQuery) ([]Summary, string, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultListLimit
	case limit > maxListLimit:
		limit = maxListLimit
	}
	if q.TLP != "" && !q.TLP.Valid() {
		return nil, "", invalid("tlp", fmt.Sprintf("unknown label %q", q.TLP))
	}
	index := s.key("events")
	switch {
	case q.Source != "":
		index = s.key("events", "src", q.Source)
	case q.TLP != "":
		index = s.key("events", "tlp", string(q.TLP))
	}
	var after *position
	if q.Cursor != "" {
		p, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", invalid("cursor", "malformed: "+err.Error())
		}
		after = &p
	}

	out := make([]Summary, 0, limit)
	for range maxFilterRounds {
		page, more, err := s.indexPage(ctx, index, after, limit)
		if err != nil {
			return nil, "", err
		}
		ids := make([]string, len(page))
		for i, p := range page {
			ids[i] = p.member
		}
		sums, err := s.summaries(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for i, sum := range sums {
			if len(out) == limit {
				return out, encodeCursor(*after), nil
			}
			after = &page[i]
			if sum == nil || (q.Source != "" && sum.Source != q.Source) || (q.TLP != "" && sum.TLP != q.TLP) {
				continue
			}
			out = append(out, *sum)
		}
		if !more {
			return out, "", nil
		}
		if len(out) == limit {
			break
		}
	}
	return out, encodeCursor(*after), nil
}

// indexPage returns up to n positions after `after` (from the top when nil)
// and whether more follow.
func (s *Store) indexPage(ctx context.Context, key string, after *position, n int) ([]position, bool, error) {
	var page []position
	if after == nil {
		zs, err := s.rdb.ZRevRangeWithScores(ctx, key, 0, int64(n)).Result()
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", key, err)
		}
		for _, z := range zs {
			page = append(page, position{score: z.Score, member: z.Member.(string)})
		}
	} else {
		flat, err := pageAfterScript.Run(ctx, s.rdb, []string{key},
			strconv.FormatFloat(after.score, 'f', -1, 64), after.member, n+1).StringSlice()
		switch {
		case errors.Is(err, redis.Nil):
			if page, err = s.pageByScore(ctx, key, *after, n+1); err != nil {
				return nil, false, err
			}
		case err != nil:
			return nil, false, fmt.Errorf("read %s: %w", key, err)
		default:
			for i := 0; i+1 < len(flat); i += 2 {
				f, err := strconv.ParseFloat(flat[i+1], 64)
				if err != nil {
					return nil, false, fmt.Errorf("read %s: score %q: %w", key, flat[i+1], err)
				}
				page = append(page, position{score: f, member: flat[i]})
			}
		}
	}
	if len(page) > n {
		return page[:n], true, nil
	}
	return page, false, nil
}

// pageByScore is the slow path for a cursor whose member is gone: the rest
// of its score bucket (members ordered below it) and then lower scores.
func (s *Store) pageByScore(ctx context.Context, key string, after position, n int) ([]position, error) {
	score := strconv.FormatFloat(after.score, 'f', -1, 64)
	pipe := s.rdb.Pipeline()
	bucket := pipe.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{Min: score, Max: score, Count: maxBucket})
	lower := pipe.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Min: "-inf", Max: "(" + score, Count: int64(n)})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var page []position
	// Equal scores are ordered bytewise, as Go compares strings.
	for _, m := range bucket.Val() {
		if m < after.member && len(page) < n {
			page = append(page, position{score: after.score, member: m})
		}
	}
	for _, z := range lower.Val() {
		if len(page) == n {
			break
		}
		page = append(page, position{score: z.Score, member: z.Member.(string)})
	}
	return page, nil
}

// summaries fetches the summaries of ids in one round trip; an id whose
// summary is missing yields nil.
func (s *Store) summaries(ctx context.Context, ids []string) ([]*Summary, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	type cmds struct {
		sum  *redis.StringCmd
		cur  *redis.SliceCmd
		held *redis.SliceCmd
	}
	pipe := s.rdb.Pipeline()
	cs := make([]cmds, len(ids))
	for i, id := range ids {
		cs[i] = cmds{
			sum:  pipe.Get(ctx, s.eventKey(id, "sum")),
			cur:  pipe.HMGet(ctx, s.eventKey(id, "cur"), "routed", "modified"),
			held: pipe.HMGet(ctx, s.eventKey(id, "held"), "modified", "released"),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read summaries: %w", err)
	}
	out := make([]*Summary, len(ids))
	for i, c := range cs {
		blob, err := c.sum.Bytes()
		if err != nil {
			continue // gone between index and read
		}
		var sum Summary
		if err := json.Unmarshal(blob, &sum); err != nil {
			return nil, fmt.Errorf("decode summary of %q: %w", ids[i], err)
		}
		cur, held := c.cur.Val(), c.held.Val()
		sum.Routed = cur[0] == "1"
		sum.Held = held[0] != nil && held[0] == cur[1] && held[1] == "0"
		out[i] = &sum
	}
	return out, nil
}

// EachEventID calls fn for every stored event id, oldest first, reading the
// index in pages (for maintenance jobs such as a view reindex, never for
// requests).
func (s *Store) EachEventID(ctx context.Context, fn func(id string) error) error {
	const page = 1000
	for start := int64(0); ; start += page {
		ids, err := s.rdb.ZRange(ctx, s.key("events"), start, start+page-1).Result()
		if err != nil {
			return fmt.Errorf("read event index: %w", err)
		}
		for _, id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
		if len(ids) < page {
			return nil
		}
	}
}
