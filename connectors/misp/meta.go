package misp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// meta is what /events/index, the feed manifest and the filters need of one
// event version, so listing 100,000 events never loads their bodies. It is
// computed from the stored (unprojected) event once per version and kept in
// Redis and in memory. It holds nothing a viewer may not see of an event it
// is allowed to list, except Parts for notifications, which hold the whole
// event's attributes and are therefore never shown: a notification's
// attribute counts are computed from the viewer's projection.
type meta struct {
	// Hot fields, filled by prepare: what every listing reads per event.
	u   [16]byte
	num uint64
	hot bool

	Version      string        `json:"v"`
	Schema       int           `json:"s,omitempty"` // metaSchema when built
	UUID         string        `json:"u,omitempty"`
	TS           int64         `json:"ts,omitempty"`
	Info         string        `json:"i,omitempty"`
	Date         string        `json:"d,omitempty"`
	Threat       string        `json:"tl,omitempty"`
	Analysis     string        `json:"an,omitempty"`
	Distribution string        `json:"di,omitempty"`
	Tags         []mispmap.Tag `json:"tg,omitempty"`
	Notification bool          `json:"n,omitempty"`
	// OrgcName and OrgcUUID are the event's originator (its pass-through
	// Orgc) when that is not this server; empty means this server.
	OrgcName string `json:"oc,omitempty"`
	OrgcUUID string `json:"ocu,omitempty"`
	Parts    []int  `json:"p,omitempty"`
	// Skip says why the event cannot be served over MISP (it failed to
	// encode); such events are left out of every MISP view.
	Skip string `json:"skip,omitempty"`
}

func (m *meta) tagNames() []string {
	out := make([]string, len(m.Tags))
	for i, t := range m.Tags {
		out[i] = t.Name
	}
	return out
}

func (m *meta) total() int {
	n := 0
	for _, p := range m.Parts {
		n += p
	}
	return n
}

// metaSchema changes when meta gains a field, so metas stored by an
// older Schakel are computed again rather than served without it (1: Orgc).
const metaSchema = 1

// EventVersions loads stored event versions.
type EventVersions interface {
	EventVersion(ctx context.Context, id, version string) (*gateway.Event, error)
}

// metas caches meta per event in memory (bounded) and in Redis, and keeps
// the maps from served uuids and numeric ids back to canonical event ids.
type metas struct {
	rdb    redis.UniversalClient
	prefix string
	events EventVersions
	enc    mispmap.EncodeOptions
	log    *slog.Logger

	mu sync.RWMutex
	m  map[string]*meta
}

const (
	metaMemMax  = 250_000
	metaWorkers = 4
	metaChunk   = 1000
)

func newMetas(rdb redis.UniversalClient, prefix string, ev EventVersions, enc mispmap.EncodeOptions, log *slog.Logger) *metas {
	return &metas{rdb: rdb, prefix: prefix, events: ev, enc: enc, log: log, m: map[string]*meta{}}
}

func (c *metas) key(id string) string { return c.prefix + ":misp:meta:{" + id + "}" }
func (c *metas) uuidKey() string      { return c.prefix + ":misp:uuid" }
func (c *metas) numKey() string       { return c.prefix + ":misp:num" }

// get returns the meta of each entry's version (nil for an event that is no
// longer stored).
func (c *metas) get(ctx context.Context, entries []views.Entry) ([]*meta, error) {
	out := make([]*meta, len(entries))
	var miss []int
	c.mu.RLock()
	for i, e := range entries {
		if m := c.m[e.ID]; m != nil && m.Version == e.Version {
			out[i] = m
		} else {
			miss = append(miss, i)
		}
	}
	c.mu.RUnlock()
	if len(miss) == 0 {
		return out, nil
	}
	var still []int
	for start := 0; start < len(miss); start += metaChunk {
		chunk := miss[start:min(start+metaChunk, len(miss))]
		pipe := c.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(chunk))
		for j, i := range chunk {
			cmds[j] = pipe.Get(ctx, c.key(entries[i].ID))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read misp meta: %w", err)
		}
		for j, i := range chunk {
			blob, err := cmds[j].Bytes()
			var m meta
			if err != nil || json.Unmarshal(blob, &m) != nil || m.Version != entries[i].Version || m.Schema != metaSchema {
				still = append(still, i)
				continue
			}
			m.prepare()
			out[i] = &m
		}
	}
	if err := c.compute(ctx, entries, still, out); err != nil {
		return nil, err
	}
	c.remember(entries, miss, out)
	return out, nil
}

// compute builds the metas of entries[idx] from the stored events, with a
// few loads in flight, and writes them to Redis.
func (c *metas) compute(ctx context.Context, entries []views.Entry, idx []int, out []*meta) error {
	if len(idx) == 0 {
		return nil
	}
	jobs := make(chan int)
	errc := make(chan error, metaWorkers)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(metaWorkers, len(idx)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ev, err := c.events.EventVersion(ctx, entries[i].ID, entries[i].Version)
				if errors.Is(err, gateway.ErrNotFound) {
					continue
				}
				if err != nil {
					errc <- err
					cancel()
					return
				}
				out[i] = buildMeta(ev, c.enc)
			}
		}()
	}
send:
	for _, i := range idx {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("load events for misp meta: %w", err)
	default:
	}
	for start := 0; start < len(idx); start += metaChunk {
		pipe := c.rdb.Pipeline()
		for _, i := range idx[start:min(start+metaChunk, len(idx))] {
			if m := out[i]; m != nil {
				c.queueWrite(ctx, pipe, entries[i].ID, m)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("write misp meta: %w", err)
		}
	}
	return nil
}

// queueWrite stores m and the uuid and numeric-id maps of its parts.
func (c *metas) queueWrite(ctx context.Context, pipe redis.Pipeliner, id string, m *meta) {
	blob, _ := json.Marshal(m)
	pipe.Set(ctx, c.key(id), blob, 0)
	if m.Skip != "" {
		return
	}
	c.queueParts(ctx, pipe, id, m.UUID, 1, max(len(m.Parts), 1))
}

// queueParts maps the uuids (and numeric ids) of parts from..to of an event.
func (c *metas) queueParts(ctx context.Context, pipe redis.Pipeliner, id, eventUUID string, from, to int) {
	uuids := make([]any, 0, 2*(to-from+1))
	nums := make([]any, 0, 2*(to-from+1))
	for n := from; n <= to; n++ {
		u := partUUID(eventUUID, n)
		if n > 1 || u != id {
			uuids = append(uuids, u, id+"\x00"+strconv.Itoa(n))
		}
		nums = append(nums, numID(u), u)
	}
	if len(uuids) > 0 {
		pipe.HSet(ctx, c.uuidKey(), uuids...)
	}
	pipe.HSet(ctx, c.numKey(), nums...)
}

// ensureParts records part uuids beyond those of the full event (a
// notification's projection can in rare cases cut into more parts).
func (c *metas) ensureParts(ctx context.Context, id string, m *meta, parts int) error {
	if parts <= len(m.Parts) {
		return nil
	}
	pipe := c.rdb.Pipeline()
	c.queueParts(ctx, pipe, id, m.UUID, len(m.Parts)+1, parts)
	_, err := pipe.Exec(ctx)
	return err
}

func (c *metas) remember(entries []views.Entry, idx []int, out []*meta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m)+len(idx) > metaMemMax {
		// Drop about half; map order is random enough for a cache.
		n := 0
		for k := range c.m {
			if n >= len(c.m)/2 {
				break
			}
			delete(c.m, k)
			n++
		}
	}
	for _, i := range idx {
		if out[i] != nil {
			c.m[entries[i].ID] = out[i]
		}
	}
}

// buildMeta encodes the whole event once to learn what the index shows.
func buildMeta(ev *gateway.Event, enc mispmap.EncodeOptions) *meta {
	m := &meta{Version: ev.Version(), Schema: metaSchema}
	e, err := mispmap.EncodeEvent(ev, enc)
	if err != nil {
		m.Skip = err.Error()
		return m
	}
	m.UUID, m.Info, m.Date = e.UUID, e.Info, e.Date
	m.TS, _ = strconv.ParseInt(e.Timestamp, 10, 64)
	m.Threat, m.Analysis, m.Distribution = e.ThreatLevelID, e.Analysis, e.Distribution
	m.Tags = e.Tag
	if e.Orgc != e.Org {
		m.OrgcName, m.OrgcUUID = e.Orgc.Name, e.Orgc.UUID
	}
	m.Notification = ev.Kind == gateway.KindNotification
	m.Parts = sizes(plan(e, PartSize))
	m.prepare()
	return m
}

// creator is the event's Orgc: the originator it came with, else this
// server (own).
func (m *meta) creator(own Org) orgRef {
	if m.OrgcName == "" {
		return orgRef{ID: "1", Name: own.Name, UUID: strings.ToLower(own.UUID)}
	}
	return orgRef{ID: orgNum(m.OrgcName, m.OrgcUUID), Name: m.OrgcName, UUID: m.OrgcUUID}
}

// orgNum is the numeric id served for an organisation other than this
// server, the same in every listing and in /organisations/index.
func orgNum(name, uuid string) string {
	key := strings.ToLower(uuid)
	if key == "" {
		key = name
	}
	return numID("org:" + key)
}

// prepare fills in the hot fields from UUID.
func (m *meta) prepare() {
	if u, err := uuid.Parse(m.UUID); err == nil {
		m.u, m.num, m.hot = u, numIDValue(m.UUID), true
	}
}

// ref is what a served uuid or numeric id stands for.
type ref struct {
	id   string // canonical event id
	part int    // 1-based
}

// resolve maps a uuid or numeric id from a request to the event and part it
// names. A uuid that is in no map is taken as the canonical id itself (the
// common case: MISP-sourced events keep their uuid as id).
func (c *metas) resolve(ctx context.Context, s string) (ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ref{}, gateway.ErrNotFound
	}
	if isDigits(s) {
		u, err := c.rdb.HGet(ctx, c.numKey(), s).Result()
		if errors.Is(err, redis.Nil) {
			return ref{}, fmt.Errorf("event id %s: %w", s, gateway.ErrNotFound)
		}
		if err != nil {
			return ref{}, fmt.Errorf("resolve event id: %w", err)
		}
		s = u
	}
	v, err := c.rdb.HGet(ctx, c.uuidKey(), strings.ToLower(s)).Result()
	if errors.Is(err, redis.Nil) {
		if u, err := uuid.Parse(s); err == nil && len(s) == 36 {
			s = u.String() // canonical ids from MISP are lower-case uuids
		}
		return ref{id: s, part: 1}, nil
	}
	if err != nil {
		return ref{}, fmt.Errorf("resolve event uuid: %w", err)
	}
	id, n, _ := strings.Cut(v, "\x00")
	part, err := strconv.Atoi(n)
	if err != nil || part < 1 {
		part = 1
	}
	return ref{id: id, part: part}, nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
