// Package store keeps Schakel's shared state in Redis: event versions and
// their summaries, routing bookkeeping, the constituent registry, API keys,
// held items, delivery states and source poll cursors.
//
// Per-event keys carry the event id as a hash tag (<prefix>:{<id>}:…) so a
// script that touches several of them stays in one Redis Cluster slot. Global
// indexes (<prefix>:events, <prefix>:routing, …) are written in a separate
// pipelined step, never inside a per-event script.
package store

import (
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// DefaultPrefix is used when New is given an empty prefix.
const DefaultPrefix = "schakel"

// Store is Schakel's Redis-backed state. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
	auth   *authCache
	group  groupCommit
}

// New returns a Store that keeps every key under prefix.
func New(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: prefix, now: time.Now, auth: newAuthCache(authCacheSize)}
}

// key joins the prefix and parts with ':'.
func (s *Store) key(parts ...string) string {
	return s.prefix + ":" + strings.Join(parts, ":")
}

// eventKey names a per-event key; the braces make the id the hash tag.
func (s *Store) eventKey(id string, parts ...string) string {
	return s.key(append([]string{"{" + id + "}"}, parts...)...)
}

// invalid reports one bad field the way the HTTP layer renders as 400/422.
func invalid(field, msg string) error {
	return &gateway.ValidationError{Fields: []gateway.FieldError{{Field: field, Message: msg}}}
}

// Timestamps are compared inside Lua as decimal strings: Lua numbers are
// doubles and cannot hold unix nanoseconds exactly.
var (
	minStamp = time.Unix(0, 0)
	maxStamp = time.Unix(0, 1<<63-1)
)

func nanos(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func stampInRange(t time.Time) bool { return !t.Before(minStamp) && !t.After(maxStamp) }

// luaNotNewer is shared by scripts that keep the newest version: it reports
// whether decimal string a (non-negative, no leading zeros) is <= b. It splits
// off the last nine digits so each half fits a double exactly.
const luaNotNewer = `
local function not_newer(a, b)
  if #a ~= #b then return #a < #b end
  local ah, bh = tonumber(string.sub(a, 1, -10)) or 0, tonumber(string.sub(b, 1, -10)) or 0
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, -9)) <= tonumber(string.sub(b, -9))
end
`
