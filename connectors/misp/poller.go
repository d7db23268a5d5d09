package misp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/poll"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// Cursors keep a source's poll state across restarts (gateway/store) and
// tell which source an event came from.
type Cursors interface {
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, v string) error
	EventLoader
}

// PollerOptions configure a Poller.
type PollerOptions struct {
	Source     string // the source name events are ingested under
	DefaultTLP gateway.TLP
	// Own: the relay's own analysts author this source (config own: true).
	Own      bool
	Client   *Client
	Interval time.Duration // default 5m
	// Tags filter the upstream index like a MISP pull rule: "tlp:clear"
	// (any of these) and "!tlp:red" (none of these). They are sent to the
	// upstream and checked again here.
	Tags    []string
	Cursors Cursors
	Ingest  gateway.Ingester
	Redis   redis.UniversalClient
	Prefix  string
	Log     *slog.Logger
}

// Poller pulls one upstream MISP the way MISP 2.5 pulls a server: the
// minimal /events/index (with the tag filters and the last ETag), then
// /events/view of every published event that is new or newer than what was
// pulled before, each ingested through the pipeline. The ETag lives in the
// source's cursor (store.Cursor) and the timestamp pulled per uuid in a
// Redis hash, so a restarted gateway resumes without fetching anything
// twice. One replica polls a source at a time.
type Poller struct {
	o PollerOptions
}

// NewPoller returns a poller; Run drives it.
func NewPoller(o PollerOptions) (*Poller, error) {
	if o.Source == "" || o.Client == nil || o.Cursors == nil || o.Ingest == nil || o.Redis == nil {
		return nil, errors.New("misp poller: source, client, cursors, ingest and redis are required")
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("connector", "misp", "source", o.Source)
	return &Poller{o: o}, nil
}

func (p *Poller) seenKey() string { return p.o.Prefix + ":misp:pulled:{" + p.o.Source + "}" }
func (p *Poller) lockKey() string { return p.o.Prefix + ":misp:poll:{" + p.o.Source + "}" }

// cursor is the state kept with store.Cursor.
type cursor struct {
	ETag      string `json:"etag,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"` // newest event timestamp pulled
	Polled    int64  `json:"polled,omitempty"`    // when the last poll finished
}

// Run polls now and then every Interval until ctx ends (gateway.Runner).
func (p *Poller) Run(ctx context.Context) error {
	return poll.Run(ctx, poll.Options{Interval: p.o.Interval, Log: p.o.Log}, func(ctx context.Context) error {
		res, err := p.Poll(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("misp poll (%d ingested): %w", res.Ingested, err)
		case res.Ingested > 0 || res.Failed > 0:
			p.o.Log.Info("misp poll", "listed", res.Listed, "ingested", res.Ingested, "duplicates", res.Duplicates, "failed", res.Failed)
		}
		return nil
	})
}

// PollResult counts what one poll did.
type PollResult struct {
	NotModified bool // the index had not changed (304)
	Listed      int  // published events listed
	Fetched     int  // events viewed
	Ingested    int  // accepted by the pipeline
	Duplicates  int  // already stored in this version
	Filtered    int  // left out by the tag filters, or delivered by another source
	Failed      int  // could not be fetched or ingested (retried next poll)
	Skipped     bool // another replica was polling
}

// Poll runs one pull.
func (p *Poller) Poll(ctx context.Context) (PollResult, error) {
	var res PollResult
	ok, err := p.o.Redis.SetNX(ctx, p.lockKey(), "1", max(2*p.o.Interval, 10*time.Minute)).Result()
	if err != nil {
		return res, fmt.Errorf("poll lock: %w", err)
	}
	if !ok {
		res.Skipped = true
		return res, nil
	}
	defer p.o.Redis.Del(context.WithoutCancel(ctx), p.lockKey())

	var cur cursor
	if raw, err := p.o.Cursors.Cursor(ctx, p.o.Source); err != nil {
		return res, err
	} else if raw != "" {
		_ = json.Unmarshal([]byte(raw), &cur) // a bad cursor means a full pull
	}
	if _, err := p.o.Client.Version(ctx); err != nil {
		return res, err
	}
	filters := map[string]any{"minimal": 1, "published": 1}
	if len(p.o.Tags) > 0 {
		filters["tag"] = p.o.Tags
	}
	entries, etag, unchanged, err := p.o.Client.Index(ctx, filters, cur.ETag)
	if err != nil {
		return res, err
	}
	if unchanged {
		res.NotModified = true
		return res, nil
	}
	var want []IndexEntry
	for _, e := range entries {
		if e.Published {
			want = append(want, e)
		}
	}
	res.Listed = len(want)
	seen, err := p.seen(ctx, want)
	if err != nil {
		return res, err
	}
	todo := want[:0]
	for i, e := range want {
		if e.Timestamp > seen[i] {
			todo = append(todo, e)
		}
	}
	// Oldest first, so an interrupted poll has pulled a prefix of history.
	slices.SortStableFunc(todo, func(a, b IndexEntry) int {
		switch {
		case a.Timestamp < b.Timestamp:
			return -1
		case a.Timestamp > b.Timestamp:
			return 1
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	for _, e := range todo {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		status, err := p.pull(ctx, e)
		if err != nil {
			res.Failed++
			p.o.Log.Warn("misp pull of one event failed", "event_uuid", e.UUID, "error", err)
			continue
		}
		res.Fetched++
		switch status {
		case gateway.StatusAccepted:
			res.Ingested++
		case gateway.StatusDuplicate:
			res.Duplicates++
		default:
			res.Filtered++
		}
		if err := p.o.Redis.HSet(ctx, p.seenKey(), e.UUID, e.Timestamp).Err(); err != nil {
			return res, fmt.Errorf("record pulled event: %w", err)
		}
		cur.Timestamp = max(cur.Timestamp, e.Timestamp)
	}
	if res.Failed == 0 {
		// Only a complete pull may skip the next listing on 304.
		cur.ETag = etag
	}
	cur.Polled = time.Now().Unix()
	blob, _ := json.Marshal(cur)
	if err := p.o.Cursors.SetCursor(ctx, p.o.Source, string(blob)); err != nil {
		return res, err
	}
	return res, nil
}

// seen returns the timestamp pulled before for each entry (0 if never).
func (p *Poller) seen(ctx context.Context, es []IndexEntry) ([]int64, error) {
	out := make([]int64, len(es))
	for start := 0; start < len(es); start += 1000 {
		chunk := es[start:min(start+1000, len(es))]
		fields := make([]string, len(chunk))
		for i, e := range chunk {
			fields[i] = e.UUID
		}
		vals, err := p.o.Redis.HMGet(ctx, p.seenKey(), fields...).Result()
		if err != nil {
			return nil, fmt.Errorf("read pulled events: %w", err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				out[start+i], _ = strconv.ParseInt(s, 10, 64)
			}
		}
	}
	return out, nil
}

// pull fetches one event and ingests it; "" means the tag filters left it
// out.
func (p *Poller) pull(ctx context.Context, e IndexEntry) (gateway.IngestStatus, error) {
	if owner, err := ownerOf(ctx, p.o.Cursors, e.UUID); err != nil {
		return "", err
	} else if owner != "" && owner != p.o.Source {
		p.o.Log.Info("misp pull skips an event another source delivered", "event_uuid", e.UUID, "owner", owner)
		return "", nil
	}
	data, err := p.o.Client.View(ctx, e.UUID)
	if err != nil {
		return "", err
	}
	evs, problems, err := mispmap.Decode(data)
	if err != nil {
		return "", fmt.Errorf("event %s: %w", e.UUID, err)
	}
	if len(evs) != 1 {
		return "", fmt.Errorf("event %s: expected one event, got %d", e.UUID, len(evs))
	}
	ev := evs[0]
	if !p.wanted(ev, data) {
		return "", nil
	}
	if len(problems) > 0 {
		p.o.Log.Warn("misp pull: parts of the event were rejected", "event_uuid", e.UUID, "problems", len(problems), "first", problems[0].Error())
	}
	res, err := p.o.Ingest.Ingest(ctx, gateway.Source{Name: p.o.Source, DefaultTLP: p.o.DefaultTLP, Format: mispmap.Format, Own: p.o.Own}, ev)
	if err != nil {
		return "", fmt.Errorf("ingest %s: %w", e.UUID, err)
	}
	return res.Status, nil
}

// wanted applies the tag filters to the event as the upstream tagged it,
// for upstreams that ignore the index filter: its own tags, its labels and
// its TLP as Schakel reads it.
func (p *Poller) wanted(ev *gateway.Event, raw []byte) bool {
	if len(p.o.Tags) == 0 {
		return true
	}
	names := append(rawTagNames(raw), ev.Labels...)
	if ev.TLP != "" {
		names = append(names, ev.TLP.MachineTag())
	}
	f, err := params{"tag": mustJSON(p.o.Tags)}.tagFilter("tag")
	if err != nil {
		return true
	}
	return f.match(names)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// rawTagNames reads the event-level tag names of a MISP event document.
func rawTagNames(data []byte) []string {
	type tag struct {
		Name string `json:"name"`
	}
	var doc struct {
		Event *struct {
			Tag []tag `json:"Tag"`
		} `json:"Event"`
		Tag []tag `json:"Tag"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	tags := doc.Tag
	if doc.Event != nil {
		tags = doc.Event.Tag
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		out = append(out, t.Name)
	}
	return out
}
