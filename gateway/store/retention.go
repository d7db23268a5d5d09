package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ExpiredEvents returns up to limit ids of events whose current version was
// received before cutoff, oldest first.
func (s *Store) ExpiredEvents(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 1000
	}
	ids, err := s.rdb.ZRangeByScore(ctx, s.key("events"), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(cutoff.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list expired events: %w", err)
	}
	return ids, nil
}

// deleteEventScript removes an event's own keys (one slot) when its current
// version was received before the cutoff, so a version that arrives while
// retention runs is never deleted.
// KEYS: cur, versions, sum, routed, dlv, held, views, audit.
// ARGV: cutoff nanos, key prefix of version blobs ("…:{id}:v:").
// Returns {0} when kept, else {1 (2 when there was no event), tlp, source,
// views members…, "", versions…, "", delivery states…}.
var deleteEventScript = redis.NewScript(luaNotNewer + `
local cur = redis.call('HMGET', KEYS[1], 'received', 'tlp', 'source')
if cur[1] and not not_newer(cur[1], ARGV[1]) then return {'0'} end
local out = {cur[1] and '1' or '2', cur[2] or '', cur[3] or ''}
for _, k in ipairs(redis.call('SMEMBERS', KEYS[7])) do out[#out+1] = k end
out[#out+1] = ''
for _, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  out[#out+1] = v
  redis.call('DEL', ARGV[2] .. v)
end
out[#out+1] = ''
for _, d in ipairs(redis.call('HVALS', KEYS[5])) do out[#out+1] = d end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return out
`)

// zremIfOlderScript removes member from a sorted set only while its score
// is below the cutoff, so an event re-ingested meanwhile keeps its entry.
var zremIfOlderScript = redis.NewScript(`
local sc = redis.call('ZSCORE', KEYS[1], ARGV[1])
if sc and tonumber(sc) < tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`)

// DeleteEvent deletes event id when its current version was received
// before cutoff: every version, its summary, delivery states, held item,
// pull-view entries, its own audit stream (the global audit stream keeps
// the records until audit retention trims them) and its index entries. It
// reports whether an event was deleted; an unknown id only has leftover
// index entries removed.
func (s *Store) DeleteEvent(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	if id == "" {
		return false, invalid("id", "is required")
	}
	keys := []string{
		s.eventKey(id, "cur"), s.eventKey(id, "versions"), s.eventKey(id, "sum"), s.eventKey(id, "routed"),
		s.eventKey(id, "dlv"), s.eventKey(id, "held"),
		// The layouts of gateway/views and gateway/audit for one event.
		s.eventKey(id, "views"), s.eventKey(id, "audit"),
	}
	reply, err := deleteEventScript.Run(ctx, s.rdb, keys, nanos(cutoff), s.eventKey(id, "v", "")).StringSlice()
	if err != nil {
		return false, fmt.Errorf("delete event %s: %w", id, err)
	}
	if len(reply) < 3 || reply[0] == "0" {
		return false, nil
	}
	deleted := reply[0] == "1"
	tlp, source := reply[1], reply[2]
	var viewKeys, versions, states []string
	part := 0
	for _, x := range reply[3:] {
		if x == "" && part < 2 {
			part++
			continue
		}
		switch part {
		case 0:
			viewKeys = append(viewKeys, x)
		case 1:
			versions = append(versions, x)
		default:
			states = append(states, x)
		}
	}

	// Second step: entries in shared indexes, each on its own slot.
	limit := strconv.FormatInt(cutoff.UnixMilli(), 10)
	pipe := s.rdb.Pipeline()
	zremIfOlder := func(key string) {
		zremIfOlderScript.Eval(ctx, pipe, []string{key}, id, limit)
	}
	zremIfOlder(s.key("events"))
	if source != "" {
		zremIfOlder(s.key("events", "src", source))
	}
	if tlp != "" {
		zremIfOlder(s.key("events", "tlp", tlp))
	}
	pipe.ZRem(ctx, s.key("held"), id)
	pipe.ZRem(ctx, s.key("held", "open"), id)
	for _, v := range versions {
		pipe.ZRem(ctx, s.key("routing"), routingMember(id, v))
		for _, k := range viewKeys {
			pipe.ZRem(ctx, k, id+"|"+v)
		}
	}
	seen := map[string]bool{}
	for _, blob := range states {
		var st DeliveryState
		if json.Unmarshal([]byte(blob), &st) != nil {
			continue
		}
		r := st.Delivery.Recipient.String()
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		pipe.SRem(ctx, s.key("recipient", r, "events"), id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return deleted, fmt.Errorf("unindex deleted event %s: %w", id, err)
	}
	return deleted, nil
}
