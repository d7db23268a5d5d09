package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/poll"
	"github.com/schakel/schakel/mappings/stix"
)

// CursorStore keeps a poller's place upstream (gateway/store).
type CursorStore interface {
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, v string) error
}

// PollerOptions configure one source of type taxii.
type PollerOptions struct {
	Source     gateway.Source // name and default TLP; Format defaults to "stix"
	URL        string         // the upstream API root
	Collection string
	Username   string
	Password   string
	Token      string        // sent as a bearer token when there is no user name or password
	Interval   time.Duration // default 5m
	Ingest     gateway.Ingester
	Cursors    CursorStore
	HTTP       *http.Client
	UserAgent  string
	Log        *slog.Logger
	// PageSize is the limit asked per request (default 1000).
	PageSize int
	// BatchObjects is how many objects are mapped together; a report and
	// the objects it refers to map to one event only within one batch
	// (default 20,000).
	BatchObjects int
}

// Poller ingests one upstream collection.
type Poller struct {
	o      PollerOptions
	client *Client
	log    *slog.Logger
	cursor string
}

// Defaults for a taxii source.
const (
	DefaultInterval  = 5 * time.Minute
	defaultPageSize  = 1000
	defaultBatch     = 20_000
	maxPagesPerSweep = 100_000
)

// NewPoller checks the options and returns the poller.
func NewPoller(o PollerOptions) (*Poller, error) {
	if o.Source.Name == "" {
		return nil, errors.New("source name is empty")
	}
	if o.Ingest == nil || o.Cursors == nil {
		return nil, fmt.Errorf("source %s: ingest and cursor store are required", o.Source.Name)
	}
	c, err := newClient(o.URL, o.Collection, o.Username, o.Password, o.Token, o.HTTP, o.UserAgent)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", o.Source.Name, err)
	}
	if o.Source.Format == "" {
		o.Source.Format = "stix"
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.PageSize <= 0 {
		o.PageSize = defaultPageSize
	}
	if o.BatchObjects <= 0 {
		o.BatchObjects = defaultBatch
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Poller{o: o, client: c, cursor: "taxii:" + o.Source.Name,
		log: o.Log.With("connector", "taxii", "source", o.Source.Name)}, nil
}

// cursorState is what is kept in Redis between polls: the request that
// continues the sweep under way (its added_after and the upstream's next,
// and how much of that page is in already) and the newest
// X-TAXII-Date-Added-Last seen, where the next sweep starts.
type cursorState struct {
	AddedAfter string `json:"added_after,omitempty"`
	Next       string `json:"next,omitempty"`
	Skip       int    `json:"skip,omitempty"` // objects of the page it names that are in already
	Last       string `json:"last,omitempty"`
}

// PollResult counts what one poll did.
type PollResult struct {
	Pages      int
	Objects    int
	Events     int
	Accepted   int
	Duplicates int
	Rejected   int
}

// Run polls at once and then every interval until ctx ends (gateway.Runner).
func (p *Poller) Run(ctx context.Context) error {
	return poll.Run(ctx, poll.Options{Interval: p.o.Interval, Log: p.log}, func(ctx context.Context) error {
		res, err := p.Poll(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("taxii poll (%d pages): %w", res.Pages, err)
		case res.Objects > 0:
			p.log.InfoContext(ctx, "taxii poll", "pages", res.Pages, "objects", res.Objects, "events", res.Events,
				"accepted", res.Accepted, "duplicates", res.Duplicates, "rejected", res.Rejected)
		}
		return nil
	})
}

func (p *Poller) loadCursor(ctx context.Context) (cursorState, error) {
	var st cursorState
	raw, err := p.o.Cursors.Cursor(ctx, p.cursor)
	if err != nil || raw == "" {
		return st, err
	}
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		p.log.WarnContext(ctx, "unreadable taxii cursor; starting from the beginning", "error", err)
		return cursorState{}, nil
	}
	return st, nil
}

func (p *Poller) saveCursor(ctx context.Context, st cursorState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return p.o.Cursors.SetCursor(ctx, p.cursor, string(raw))
}

// Poll reads everything added upstream since the last poll: it follows
// next while the server gives one, continues from X-TAXII-Date-Added-Last
// when it says more without a next, and keeps its place in Redis after
// every batch, so a restart resumes rather than starts over. Objects
// delivered twice are duplicates to the pipeline, never new events.
func (p *Poller) Poll(ctx context.Context) (PollResult, error) {
	var res PollResult
	st, err := p.loadCursor(ctx)
	if err != nil {
		return res, err
	}
	var b sweepBatch
	retried := false
	for res.Pages < maxPagesPerSweep {
		req := st
		pg, err := p.client.Objects(ctx, st.AddedAfter, st.Next, p.o.PageSize)
		if err != nil {
			if st.Next != "" && clientError(err) && !retried {
				// The upstream forgot its next (medallion keeps them 30 s):
				// continue from the newest date seen instead.
				p.log.WarnContext(ctx, "upstream refused its next; continuing from the last date added", "error", err)
				retried = true
				st = cursorState{AddedAfter: st.Last, Last: st.Last}
				continue
			}
			// What this sweep read since the last saved batch is dropped and
			// read again next time.
			return res, err
		}
		res.Pages++
		objs := pg.Objects
		if st.Skip > 0 {
			// Resuming inside this page: its first objects are in already.
			objs = objs[min(st.Skip, len(objs)):]
			st.Skip = 0
		}
		res.Objects += len(objs)
		b.add(req, len(pg.Objects)-len(objs), objs)
		if !pg.AddedLast.IsZero() {
			if last, err := ParseTimestamp(st.Last); err != nil || pg.AddedLast.After(last) {
				st.Last = Timestamp(pg.AddedLast)
			}
		}
		done := false
		switch {
		case pg.More && pg.Next != "":
			st.Next = pg.Next
		case pg.More && !pg.AddedLast.IsZero():
			// TAXII §3.5: without a next, continue after the last date.
			st.AddedAfter, st.Next = Timestamp(pg.AddedLast), ""
		default:
			done = true
		}
		if !done && len(pg.Objects) == 0 && st.Next == req.Next && st.AddedAfter == req.AddedAfter {
			// more=true that does not move (OpenCTI #7793 and kin): stop here.
			p.log.WarnContext(ctx, "upstream says more but gives nothing new; ending this poll")
			done = true
		}
		if done {
			if err := p.ingest(ctx, b.objs, &res); err != nil {
				return res, err
			}
			next := cursorState{AddedAfter: st.Last, Last: st.Last}
			if st.Last == "" {
				next.AddedAfter = req.AddedAfter // the server sends no dates: read all again, as duplicates
			}
			return res, p.saveCursor(ctx, next)
		}
		if len(b.objs) >= p.o.BatchObjects {
			cut := splitPoint(b.objs)
			if err := p.ingest(ctx, b.objs[:cut], &res); err != nil {
				return res, err
			}
			resume := b.cut(cut, st)
			resume.Last = st.Last
			if err := p.saveCursor(ctx, resume); err != nil {
				return res, err
			}
		}
	}
	if err := p.ingest(ctx, b.objs, &res); err != nil {
		return res, err
	}
	return res, p.saveCursor(ctx, st)
}

// sweepBatch holds the objects read but not yet ingested, and for each page
// the request that fetched it, so that the cursor saved after a partial
// flush names the page (and the offset in it) where the rest begins.
type sweepBatch struct {
	objs    []json.RawMessage
	origins []pageOrigin
}

type pageOrigin struct {
	req   cursorState // the request; Skip = objects of the page not in objs
	start int         // index in objs of the page's first object kept
}

func (b *sweepBatch) add(req cursorState, skipped int, objs []json.RawMessage) {
	req.Skip = skipped
	b.origins = append(b.origins, pageOrigin{req: req, start: len(b.objs)})
	b.objs = append(b.objs, objs...)
}

// cut drops the first n objects (ingested) and returns where a restart
// continues: the page of the first object kept, or after, the next request.
func (b *sweepBatch) cut(n int, next cursorState) cursorState {
	if n >= len(b.objs) {
		b.objs, b.origins = nil, nil
		next.Skip = 0
		return next
	}
	i := 0
	for j, o := range b.origins {
		if o.start <= n {
			i = j
		}
	}
	o := b.origins[i]
	resume := o.req
	resume.Skip += n - o.start
	b.origins = b.origins[i:]
	b.origins[0] = pageOrigin{req: resume, start: n}
	for j := range b.origins {
		b.origins[j].start -= n
	}
	b.objs = append([]json.RawMessage(nil), b.objs[n:]...)
	return resume
}

// splitPoint is where a batch may be cut without separating a report,
// grouping or observed-data from objects it refers to that are still to
// come: before the first such container with references missing from the
// batch, together with the definitions and identity just before it (or
// before the definitions and identity that end the batch). A batch that
// cannot be cut is taken whole.
func splitPoint(objs []json.RawMessage) int {
	type head struct {
		ID         string   `json:"id"`
		Type       string   `json:"type"`
		ObjectRefs []string `json:"object_refs"`
	}
	hs := make([]head, len(objs))
	at := make(map[string]int, len(objs))
	for i, raw := range objs {
		_ = json.Unmarshal(raw, &hs[i])
		if _, ok := at[hs[i].ID]; !ok {
			at[hs[i].ID] = i
		}
	}
	cut := len(objs)
	for i, h := range hs {
		if h.Type != "report" && h.Type != "grouping" && h.Type != "observed-data" {
			continue
		}
		first, missing := i, false
		for _, r := range h.ObjectRefs {
			if j, ok := at[r]; ok {
				first = min(first, j)
			} else {
				missing = true
			}
		}
		if missing {
			cut = min(cut, first)
		}
	}
	// Definitions and identities go with the container that follows them,
	// which may still be to come.
	for cut > 0 {
		switch hs[cut-1].Type {
		case "marking-definition", "extension-definition", "identity":
			cut--
			continue
		}
		break
	}
	if cut == 0 {
		return len(objs)
	}
	return cut
}

// ingest maps a batch of objects and takes the events in. An event the
// gateway refuses is logged and skipped; a failure to store stops the poll
// before the cursor moves past it.
func (p *Poller) ingest(ctx context.Context, objs []json.RawMessage, res *PollResult) error {
	body, err := json.Marshal(struct {
		Objects []json.RawMessage `json:"objects"`
	}{objs})
	if err != nil {
		return err
	}
	events, ferrs, err := stix.Decode(body)
	if err != nil {
		return fmt.Errorf("map upstream objects: %w", err)
	}
	if len(ferrs) > 0 {
		p.log.WarnContext(ctx, "upstream objects partly mapped", "problems", len(ferrs), "first", ferrs[0].Error())
	}
	for _, ev := range events {
		r, err := p.o.Ingest.Ingest(ctx, p.o.Source, ev)
		var ve *gateway.ValidationError
		switch {
		case errors.As(err, &ve):
			res.Rejected++
			p.log.WarnContext(ctx, "upstream event rejected", "ref", ev.Source.Ref, "error", err)
			continue
		case err != nil:
			return fmt.Errorf("ingest upstream event %s: %w", ev.Source.Ref, err)
		}
		res.Events++
		if r.Status == gateway.StatusDuplicate {
			res.Duplicates++
		} else {
			res.Accepted++
		}
	}
	return nil
}
