package taxii

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway/views"
)

// objectIndex finds the view entries an object id was served from, so
// "get an object" and "versions" need not walk a whole collection. Object
// ids cannot be traced back to their event (they are hashes of its
// content), so the index is written as entries are encoded for a page, and
// by catchUp for ids no page has served yet. Each replica records an entry
// once; the index lives in Redis and is shared.
//
// Layout, about 80 bytes per object: 65,536 hashes
// <prefix>:taxii:oidx:{hhhh}; the field is 96 bits of the object id's
// SHA-256, the value up to maxOccurrences "<added µs, base 36>:<event id>"
// joined by ";", oldest first. A hash collision costs a look at the wrong
// event, which does not hold the object.
type objectIndex struct {
	rdb    redis.UniversalClient
	prefix string
	log    *slog.Logger

	mu     sync.Mutex
	seen   map[string]struct{}
	loaded atomic.Bool // recordScript is in the server's script cache
}

const (
	maxOccurrences = 8
	maxSeen        = 200_000
)

// shared objects are the same in every event that carries them.
func shared(typ string) bool {
	return typ == "marking-definition" || typ == "extension-definition" || typ == "identity"
}

// recordScript adds occurrences to one bucket. ARGV: cap, then field and
// occurrence pairs.
var recordScript = redis.NewScript(`
local cap = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local f, occ = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], f)
  if not cur then
    redis.call('HSET', KEYS[1], f, occ)
  elseif not string.find(';' .. cur .. ';', ';' .. occ .. ';', 1, true) then
    local parts = {}
    for p in string.gmatch(cur, '[^;]+') do parts[#parts + 1] = p end
    parts[#parts + 1] = occ
    while #parts > cap do table.remove(parts, 1) end
    redis.call('HSET', KEYS[1], f, table.concat(parts, ';'))
  end
end
return 0
`)

func (x *objectIndex) slot(oid string) (key, field string) {
	h := sha256.Sum256([]byte(oid))
	return x.prefix + ":taxii:oidx:{" + hex.EncodeToString(h[:2]) + "}", base64.RawURLEncoding.EncodeToString(h[2:14])
}

// occurrence names an entry an object was served from.
type occurrence struct {
	added   int64 // µs
	eventID string
}

func (o occurrence) String() string { return strconv.FormatInt(o.added, 36) + ":" + o.eventID }

// record notes where the objects of the given entries were served.
func (x *objectIndex) record(ctx context.Context, ls []*loaded) {
	var todo []*loaded
	x.mu.Lock()
	for _, l := range ls {
		if l == nil || len(l.objs) == 0 {
			continue
		}
		if _, ok := x.seen[l.indexKey]; ok {
			continue
		}
		if len(x.seen) >= maxSeen {
			x.seen = map[string]struct{}{} // forget; re-recording is harmless
		}
		x.seen[l.indexKey] = struct{}{}
		todo = append(todo, l)
	}
	x.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	buckets := map[string][]any{}
	for _, l := range todo {
		occ := occurrence{added: l.added, eventID: l.eventID}.String()
		for _, o := range l.objs {
			k, f := x.slot(o.ID)
			if buckets[k] == nil {
				buckets[k] = []any{maxOccurrences}
			}
			buckets[k] = append(buckets[k], f, occ)
		}
	}
	if err := x.run(ctx, buckets); err != nil {
		x.log.WarnContext(ctx, "taxii object index not updated", "error", err)
		x.mu.Lock()
		for _, l := range todo {
			delete(x.seen, l.indexKey)
		}
		x.mu.Unlock()
	}
}

// run applies recordScript to every bucket in one round trip, loading the
// script first when the server may not have it.
func (x *objectIndex) run(ctx context.Context, buckets map[string][]any) error {
	for attempt := 0; ; attempt++ {
		if !x.loaded.Load() {
			if err := recordScript.Load(ctx, x.rdb).Err(); err != nil {
				return err
			}
			x.loaded.Store(true)
		}
		pipe := x.rdb.Pipeline()
		for k, args := range buckets {
			recordScript.EvalSha(ctx, pipe, []string{k}, args...)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			x.loaded.Store(false) // the server restarted or flushed its scripts
			continue
		}
		return err
	}
}

// candidates lists the entries object oid was served from, newest first.
func (x *objectIndex) candidates(ctx context.Context, oid string) ([]occurrence, error) {
	k, f := x.slot(oid)
	v, err := x.rdb.HGet(ctx, k, f).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []occurrence
	for _, part := range strings.Split(v, ";") {
		a, id, ok := strings.Cut(part, ":")
		added, err := strconv.ParseInt(a, 36, 64)
		if ok && err == nil && id != "" {
			out = append(out, occurrence{added: added, eventID: id})
		}
	}
	slices.SortFunc(out, func(a, b occurrence) int { return cmp.Compare(b.added, a.added) })
	return out, nil
}

// catchUp indexes the viewer's entries added since its last catch-up (at
// most maxScanEntries of them per call), for lookups of objects no page has
// served yet: an id learnt elsewhere, such as a report id from MISP.
func (s *Server) catchUp(ctx context.Context, who views.Viewer) error {
	field := strconv.Itoa(int(who.Audience)) + "|" + who.Constituent
	key := s.prefix + ":taxii:indexed"
	var from *position
	if raw, err := s.rdb.HGet(ctx, key, field).Result(); err == nil {
		if p, err := decodePosition(raw); err == nil {
			from = &p
		}
	} else if !errors.Is(err, redis.Nil) {
		return err
	}
	var start time.Time
	if from != nil {
		start = time.UnixMicro(from.added - 1)
	}
	w := s.newWalker(who, start)
	var last *position
	for n := 0; n < maxScanEntries; {
		e, _, ok, _, err := w.next(ctx)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if from != nil && (from.after(e) || from.names(e)) {
			continue
		}
		if _, err := w.load(ctx, e, maxLoadBatch); err != nil {
			return err
		}
		n++
		p := entryPosition(e, 0)
		last = &p
		if len(w.used) >= listChunk {
			s.index.record(ctx, w.used)
			w.used = w.used[:0]
		}
	}
	s.index.record(ctx, w.used)
	if last == nil {
		return nil
	}
	return s.rdb.HSet(ctx, key, field, last.encode()).Err()
}
