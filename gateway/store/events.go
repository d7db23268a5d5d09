package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// PutResult says what PutEvent did with a version.
type PutResult int

const (
	Created   PutResult = iota + 1 // first version of the event
	Updated                        // newer Modified than the current version
	Duplicate                      // same or older Modified: nothing changed
)

func (r PutResult) String() string {
	switch r {
	case Created:
		return "created"
	case Updated:
		return "updated"
	case Duplicate:
		return "duplicate"
	}
	return "unknown"
}

// VersionRef names one event version.
type VersionRef struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// Summary is what an event list shows; it is stored beside the event so a
// page of summaries never loads full event bodies.
type Summary struct {
	ID         string           `json:"id"`
	Title      string           `json:"title"`
	Kind       gateway.Kind     `json:"kind"`
	TLP        gateway.TLP      `json:"tlp"`
	Source     string           `json:"source"`
	Priority   gateway.Priority `json:"priority,omitempty"`
	Modified   time.Time        `json:"modified"`
	Received   time.Time        `json:"received"`
	Indicators int              `json:"indicators"`
	Routed     bool             `json:"routed"` // the current version's deliveries are enqueued
	Held       bool             `json:"held"`   // the current version is held and not released
}

// ListQuery selects a page of events. Limit defaults to 50 and is capped at
// 1000; Cursor is the value a previous page returned.
type ListQuery struct {
	Limit  int
	Cursor string
	Source string
	TLP    gateway.TLP
}

const (
	defaultListLimit = 50
	maxListLimit     = 1000
	// maxFilterRounds bounds the work of one page when entries fail the
	// filter re-check; the page then comes back short, with a cursor.
	maxFilterRounds = 10
	// maxBucket bounds how many same-millisecond members the slow paging
	// path reads.
	maxBucket            = 10000
	defaultUnroutedLimit = 100
)

// putEventScript stores a version when it is newer than the current one.
// KEYS: cur, version blob, versions list, summary.
// ARGV: version, modified nanos, received nanos, blob, summary, tlp, source,
// content hash, "1" when the version's time was assigned on receipt (then the
// same content as the current version is a duplicate, not an update).
// Returns {code, heal, …}: code 0 duplicate, 1 created, 2 updated, 3 the id
// belongs to another source (nothing written); heal 1 when the duplicate is
// the current version and still unrouted, so the caller may re-add index
// entries a crash could have lost. Codes 2 and 3 add the old tlp and source;
// a duplicate by content adds the current version.
var putEventScript = redis.NewScript(luaNotNewer + `
local cur = redis.call('HMGET', KEYS[1], 'modified', 'version', 'routed', 'tlp', 'source', 'content')
if cur[5] and cur[5] ~= ARGV[7] then return {3, 0, cur[4], cur[5]} end
if cur[1] and ARGV[9] == '1' and cur[6] == ARGV[8] then
  if cur[3] == '0' then return {0, 1, cur[2]} end
  return {0, 0, cur[2]}
end
if cur[1] and not_newer(ARGV[2], cur[1]) then
  if cur[2] == ARGV[1] and cur[3] == '0' then return {0, 1} end
  return {0, 0}
end
redis.call('SET', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'modified', ARGV[2], 'received', ARGV[3],
  'routed', '0', 'tlp', ARGV[6], 'source', ARGV[7], 'content', ARGV[8])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[5])
if cur[1] then return {2, 0, cur[4], cur[5]} end
return {1, 0}
`)

// ErrOtherSource refuses a version of an event another source delivered:
// one partner must not be able to rewrite (or downgrade the TLP of) another's
// warning by reusing its id.
var ErrOtherSource = errors.New("event belongs to another source")

// PutEvent stores ev as received at received (now when zero), without
// routing it. A version with the same or an older Modified than the stored
// one is a Duplicate and changes nothing. Routing uses a Batch instead.
func (s *Store) PutEvent(ctx context.Context, ev *gateway.Event, received time.Time) (PutResult, error) {
	b := NewBatch(ev, received)
	b.putOnly = true
	return s.Commit(ctx, b)
}

func checkEvent(ev *gateway.Event) error {
	if ev == nil {
		return invalid("", "event is missing")
	}
	var v gateway.ValidationError
	switch {
	case ev.ID == "":
		v.Add("/id", "is required")
	case strings.ContainsRune(ev.ID, 0):
		v.Add("/id", "must not contain NUL")
	case ev.ID[0] == '}':
		// The id is the hash tag of the event's keys ({<id>}); a leading '}'
		// empties the tag and Redis Cluster would refuse the multi-key scripts.
		v.Add("/id", "must not start with '}'")
	}
	switch {
	case ev.Modified.IsZero():
		v.Add("/modified", "is required")
	case !stampInRange(ev.Modified):
		v.Add("/modified", "must lie between 1970 and 2262")
	}
	if ev.Source.Name == "" {
		v.Add("/source/name", "is required")
	}
	if !ev.TLP.Valid() {
		v.Add("/tlp", fmt.Sprintf("unknown label %q", ev.TLP))
	}
	return v.Err()
}

// routingMember joins id and version with NUL, which neither may contain
// (ids are checked; versions are RFC 3339).
func routingMember(id, version string) string { return id + "\x00" + version }

// Event returns the current version of event id, or gateway.ErrNotFound.
func (s *Store) Event(ctx context.Context, id string) (*gateway.Event, error) {
	version, err := s.rdb.HGet(ctx, s.eventKey(id, "cur"), "version").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("event %q: %w", id, gateway.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read event %q: %w", id, err)
	}
	return s.EventVersion(ctx, id, version)
}

// EventVersion returns one stored version of event id, or gateway.ErrNotFound.
func (s *Store) EventVersion(ctx context.Context, id, version string) (*gateway.Event, error) {
	blob, err := s.rdb.Get(ctx, s.eventKey(id, "v", version)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("event %q version %q: %w", id, version, gateway.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read event %q version %q: %w", id, version, err)
	}
	var ev gateway.Event
	if err := json.Unmarshal(blob, &ev); err != nil {
		return nil, fmt.Errorf("decode event %q version %q: %w", id, version, err)
	}
	return &ev, nil
}

// Versions lists the stored versions of event id, oldest first.
func (s *Store) Versions(ctx context.Context, id string) ([]string, error) {
	vs, err := s.rdb.LRange(ctx, s.eventKey(id, "versions"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read versions of %q: %w", id, err)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("event %q: %w", id, gateway.ErrNotFound)
	}
	return vs, nil
}
