package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// ErrAlreadyReleased is returned when a held item is released twice.
var ErrAlreadyReleased = errors.New("held item already released")

// HeldItem is an event version the policy lets nobody receive. It is kept,
// visible to admins, until an admin releases it to named recipients; a
// released item stays for the record.
type HeldItem struct {
	EventID    string              `json:"event_id"`
	Version    string              `json:"version"`
	TLP        gateway.TLP         `json:"tlp"`
	Title      string              `json:"title"`
	Reason     string              `json:"reason"`
	HeldAt     time.Time           `json:"held_at"`
	Released   bool                `json:"released"`
	ReleasedAt time.Time           `json:"released_at,omitzero"`
	ReleasedBy string              `json:"released_by,omitempty"`
	ReleasedTo []gateway.Addressee `json:"released_to,omitempty"`
}

// holdScript keeps the hold of the newest version. KEYS: held hash.
// ARGV: item, version modified nanos. Returns 1 when stored, 2 when this
// version is already held and unreleased, 0 when ignored (an older version,
// or this version already released).
var holdScript = redis.NewScript(luaNotNewer + `
local cur = redis.call('HMGET', KEYS[1], 'modified', 'released')
if cur[1] then
  if cur[1] == ARGV[2] then
    if cur[2] == '0' then return 2 end
    return 0
  end
  if not_newer(ARGV[2], cur[1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'item', ARGV[1], 'modified', ARGV[2], 'released', '0')
return 1
`)

// releaseScript swaps the item for its released form if nobody changed it
// since it was read. KEYS: held hash. ARGV: item as read, released item.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'item') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'item', ARGV[2], 'released', '1')
return 1
`)

// Hold records that h's event version is held. A newer version's hold
// replaces an older one; holding a version again keeps the first record
// (and its release, if any), so re-routing after a crash is harmless.
func (s *Store) Hold(ctx context.Context, h HeldItem) error {
	var v gateway.ValidationError
	if h.EventID == "" {
		v.Add("event_id", "is required")
	}
	modified, err := time.Parse(time.RFC3339Nano, h.Version)
	if err != nil || !stampInRange(modified) {
		v.Add("version", "must be an RFC 3339 time between 1970 and 2262")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if h.HeldAt.IsZero() {
		h.HeldAt = s.now().UTC()
	}
	h.Released, h.ReleasedAt, h.ReleasedBy, h.ReleasedTo = false, time.Time{}, "", nil
	blob, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode held item %q: %w", h.EventID, err)
	}
	code, err := holdScript.Run(ctx, s.rdb, []string{s.eventKey(h.EventID, "held")}, blob, nanos(modified)).Int64()
	if err != nil {
		return fmt.Errorf("hold %q: %w", h.EventID, err)
	}
	if code == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	zadd := pipe.ZAdd
	if code == 2 {
		zadd = pipe.ZAddNX // only restore what a crash lost
	}
	z := redis.Z{Score: float64(h.HeldAt.UnixMilli()), Member: h.EventID}
	zadd(ctx, s.key("held"), z)
	zadd(ctx, s.key("held", "open"), z)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("index held item %q: %w", h.EventID, err)
	}
	return nil
}

// Held returns the hold of an event, or gateway.ErrNotFound.
func (s *Store) Held(ctx context.Context, eventID string) (HeldItem, error) {
	blob, err := s.rdb.HGet(ctx, s.eventKey(eventID, "held"), "item").Bytes()
	if errors.Is(err, redis.Nil) {
		return HeldItem{}, fmt.Errorf("held item %q: %w", eventID, gateway.ErrNotFound)
	}
	if err != nil {
		return HeldItem{}, fmt.Errorf("read held item %q: %w", eventID, err)
	}
	var h HeldItem
	if err := json.Unmarshal(blob, &h); err != nil {
		return HeldItem{}, fmt.Errorf("decode held item %q: %w", eventID, err)
	}
	return h, nil
}

// HeldItems lists held items newest first; released ones only when asked.
func (s *Store) HeldItems(ctx context.Context, includeReleased bool) ([]HeldItem, error) {
	index := s.key("held", "open")
	if includeReleased {
		index = s.key("held")
	}
	ids, err := s.rdb.ZRevRange(ctx, index, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list held items: %w", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.eventKey(id, "held"), "item")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read held items: %w", err)
	}
	out := make([]HeldItem, 0, len(ids))
	for i, c := range cmds {
		blob, err := c.Bytes()
		if err != nil {
			continue
		}
		var h HeldItem
		if err := json.Unmarshal(blob, &h); err != nil {
			return nil, fmt.Errorf("decode held item %q: %w", ids[i], err)
		}
		if h.Released && !includeReleased {
			continue
		}
		out = append(out, h)
	}
	return out, nil
}

// Release marks an event's hold released by admin `by` to the named
// recipients and returns the updated item. The caller routes the event to
// them and writes the audit record.
func (s *Store) Release(ctx context.Context, eventID, by string, to []gateway.Addressee) (HeldItem, error) {
	var v gateway.ValidationError
	if by == "" {
		v.Add("by", "is required")
	}
	if len(to) == 0 {
		v.Add("to", "names no recipient")
	}
	for i, a := range to {
		if a.Constituent == "" && a.Email == "" {
			v.Add("/to/"+strconv.Itoa(i), "needs a constituent or an email")
		}
	}
	if err := v.Err(); err != nil {
		return HeldItem{}, err
	}
	key := s.eventKey(eventID, "held")
	// Optimistic: re-read and retry when a concurrent Hold or Release won.
	for range 5 {
		blob, err := s.rdb.HGet(ctx, key, "item").Result()
		if errors.Is(err, redis.Nil) {
			return HeldItem{}, fmt.Errorf("held item %q: %w", eventID, gateway.ErrNotFound)
		}
		if err != nil {
			return HeldItem{}, fmt.Errorf("read held item %q: %w", eventID, err)
		}
		var h HeldItem
		if err := json.Unmarshal([]byte(blob), &h); err != nil {
			return HeldItem{}, fmt.Errorf("decode held item %q: %w", eventID, err)
		}
		if h.Released {
			return h, fmt.Errorf("held item %q: %w", eventID, ErrAlreadyReleased)
		}
		h.Released, h.ReleasedAt, h.ReleasedBy = true, s.now().UTC(), by
		h.ReleasedTo = append([]gateway.Addressee(nil), to...)
		released, err := json.Marshal(h)
		if err != nil {
			return HeldItem{}, fmt.Errorf("encode held item %q: %w", eventID, err)
		}
		ok, err := releaseScript.Run(ctx, s.rdb, []string{key}, blob, released).Int64()
		if err != nil {
			return HeldItem{}, fmt.Errorf("release %q: %w", eventID, err)
		}
		if ok == 0 {
			continue
		}
		if err := s.rdb.ZRem(ctx, s.key("held", "open"), eventID).Err(); err != nil {
			return HeldItem{}, fmt.Errorf("unindex held item %q: %w", eventID, err)
		}
		return h, nil
	}
	return HeldItem{}, fmt.Errorf("release %q: held item keeps changing, try again", eventID)
}
