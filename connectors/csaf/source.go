// Package csaf is the CSAF 2.0 provider source (ARCHITECTURE §1):
// it reads a provider's provider-metadata.json, lists its advisories from
// ROLIE feeds or changes.csv directories, downloads each new or changed
// advisory, checks it the way the BSI csaf_downloader does (file name,
// strict JSON, SHA-256/512 sidecars, OpenPGP signature by a key the provider
// names with its fingerprint, CSAF 2.0 schema, tracking id ↔ file name) and
// ingests it through the pipeline. Every failure is logged, counted in
// schakel_rejected_total{source,reason} and written to the audit stream;
// nothing is skipped silently.
package csaf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/poll"
	csafmap "github.com/schakel/schakel/mappings/csaf"
)

// Defaults for Options fields left zero.
const (
	DefaultInterval    = 15 * time.Minute
	DefaultMaxDocument = 32 << 20
	maxMetadata        = 4 << 20
	maxListing         = 64 << 20
	maxSidecar         = 64 << 10
)

// ActionRejected is the audit action of every reported failure.
const ActionRejected = "source.rejected"

// Cursors keeps per-advisory state between polls (store.Store).
type Cursors interface {
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, v string) error
}

// Auditor records failures (audit.Log).
type Auditor interface {
	Append(ctx context.Context, recs ...audit.Record) error
}

// Options configure one CSAF source.
type Options struct {
	Name       string      // source name (config sources[].name)
	URL        string      // provider-metadata.json URL, or an origin for the well-known path
	DefaultTLP gateway.TLP // for advisories that carry no TLP label
	// Own: the relay's own analysts author this source (config own: true).
	Own      bool
	Interval time.Duration
	// Client makes the requests; nil means one with a 60 s timeout.
	Client      *http.Client
	UserAgent   string
	MaxDocument int64 // largest advisory accepted, bytes
	Log         *slog.Logger
	Metrics     *metrics.Metrics // nil: not counted
	Now         func() time.Time
}

// Stats counts what one poll did.
type Stats struct {
	Listed    int // advisories listed by the provider
	Unchanged int // already ingested in this revision
	Ingested  int // new events
	Updated   int // new versions of known events
	Duplicate int // accepted by the pipeline as already known
	Rejected  int // failed a check (reported)
	Failed    int // could not be downloaded; tried again next poll
}

// Source polls one CSAF provider.
type Source struct {
	opts     Options
	metaURL  *url.URL
	fetch    *fetcher
	in       gateway.Ingester
	cursors  Cursors
	audit    Auditor
	log      *slog.Logger
	interval time.Duration
	maxDoc   int64
	now      func() time.Time
}

// NewSource checks opts and returns a source; nothing is fetched yet.
func NewSource(opts Options, in gateway.Ingester, cur Cursors, au Auditor) (*Source, error) {
	if opts.Name == "" {
		return nil, errors.New("name: is required")
	}
	u, err := MetadataURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if in == nil || cur == nil || au == nil {
		return nil, errors.New("csaf source: ingester, cursors and auditor are required")
	}
	s := &Source{
		opts: opts, metaURL: u, in: in, cursors: cur, audit: au,
		log: opts.Log, interval: opts.Interval, maxDoc: opts.MaxDocument, now: opts.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("connector", "source.csaf", "source", opts.Name)
	if s.interval <= 0 {
		s.interval = DefaultInterval
	}
	if s.maxDoc <= 0 {
		s.maxDoc = DefaultMaxDocument
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.fetch = newFetcher(opts.Client, u.Scheme == "http", opts.UserAgent)
	return s, nil
}

// MetadataURL is the provider-metadata.json URL the source reads.
func (s *Source) MetadataURL() string { return s.metaURL.String() }

// Run polls now and then every interval until ctx ends (gateway.Runner).
func (s *Source) Run(ctx context.Context) error {
	return poll.Run(ctx, poll.Options{Interval: s.interval, Log: s.log}, func(ctx context.Context) error {
		start := s.now()
		st, err := s.Poll(ctx)
		if err == nil {
			s.log.Info("csaf poll done", "listed", st.Listed, "ingested", st.Ingested, "updated", st.Updated,
				"unchanged", st.Unchanged, "rejected", st.Rejected, "failed", st.Failed, "took_ms", s.now().Sub(start).Milliseconds())
		}
		return err
	})
}

// Poll reads the provider once and ingests every new or changed advisory.
// The error reports what stopped the whole poll (metadata unreadable, the
// gateway's store failing); single advisories that fail are reported and
// counted in Stats instead.
func (s *Source) Poll(ctx context.Context) (Stats, error) {
	var st Stats
	meta := s.metaURL.String()
	resp, err := s.fetch.get(ctx, meta, maxMetadata)
	if err != nil {
		s.report(ctx, ReasonProvider, meta, err)
		return st, err
	}
	pm, err := parseMetadata(resp.Body)
	if err != nil {
		s.report(ctx, ReasonProvider, meta, err)
		return st, err
	}
	keys := s.keys(ctx, pm)
	entries := s.list(ctx, pm)
	st.Listed = len(entries)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := s.process(ctx, e, keys, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// keys loads the provider's OpenPGP keys; each one that fails is reported.
func (s *Source) keys(ctx context.Context, pm *providerMetadata) openpgp.EntityList {
	var ring openpgp.EntityList
	for i, k := range pm.PublicKeys {
		u, err := s.metaURL.Parse(k.URL)
		if err != nil {
			s.report(ctx, ReasonKey, k.URL, fmt.Errorf("public_openpgp_keys/%d/url: %w", i, err))
			continue
		}
		resp, err := s.fetch.get(ctx, u.String(), maxMetadata)
		if err != nil {
			s.report(ctx, ReasonKey, u.String(), err)
			continue
		}
		e, err := keyFromArmor(resp.Body, k.Fingerprint)
		if err != nil {
			s.report(ctx, ReasonKey, u.String(), fmt.Errorf("public_openpgp_keys/%d: %w", i, err))
			continue
		}
		ring = append(ring, e)
	}
	return ring
}

// list collects the advisories from the ROLIE feeds when the provider has
// any (as the BSI downloader does), else from each directory's changes.csv.
// The same URL listed twice counts once, with its latest time; the result is
// oldest first so that revisions are ingested in order.
func (s *Source) list(ctx context.Context, pm *providerMetadata) []entry {
	var all []entry
	rolie := false
	for _, d := range pm.Distributions {
		if d.ROLIE != nil && len(d.ROLIE.Feeds) > 0 {
			rolie = true
		}
	}
	for _, d := range pm.Distributions {
		if rolie {
			if d.ROLIE == nil {
				continue
			}
			for _, f := range d.ROLIE.Feeds {
				all = append(all, s.listFeed(ctx, f.URL, f.TLPLabel)...)
			}
			continue
		}
		if d.DirectoryURL != "" {
			all = append(all, s.listDirectory(ctx, d.DirectoryURL)...)
		}
	}
	latest := map[string]int{}
	var out []entry
	for _, e := range all {
		if i, ok := latest[e.URL]; ok {
			if e.Updated.After(out[i].Updated) {
				out[i] = e
			}
			continue
		}
		latest[e.URL] = len(out)
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b entry) int { return a.Updated.Compare(b.Updated) })
	return out
}

func (s *Source) listFeed(ctx context.Context, raw, label string) []entry {
	u, err := s.metaURL.Parse(raw)
	if err != nil {
		s.report(ctx, ReasonListing, raw, fmt.Errorf("rolie feed url: %w", err))
		return nil
	}
	var tlp gateway.TLP
	if label != "" && !strings.EqualFold(label, "UNLABELED") {
		if tlp, _, err = gateway.ParseTLP(label); err != nil {
			s.report(ctx, ReasonListing, u.String(), fmt.Errorf("tlp_label: %w", err))
			return nil
		}
	}
	resp, err := s.fetch.get(ctx, u.String(), maxListing)
	if err != nil {
		s.report(ctx, ReasonListing, u.String(), err)
		return nil
	}
	entries, problems, err := parseROLIE(resp.Body, u, tlp)
	if err != nil {
		s.report(ctx, ReasonListing, u.String(), err)
		return nil
	}
	for _, p := range problems {
		s.report(ctx, ReasonListing, u.String(), errors.New(p))
	}
	for i := range entries {
		entries[i].ListedBy = u.String()
	}
	return entries
}

func (s *Source) listDirectory(ctx context.Context, raw string) []entry {
	dir, err := s.metaURL.Parse(raw)
	if err != nil {
		s.report(ctx, ReasonListing, raw, fmt.Errorf("directory_url: %w", err))
		return nil
	}
	if !strings.HasSuffix(dir.Path, "/") {
		dir.Path += "/"
	}
	changes := dir.JoinPath("changes.csv").String()
	resp, err := s.fetch.get(ctx, changes, maxListing)
	if err != nil {
		s.report(ctx, ReasonListing, changes, err)
		return nil
	}
	entries, problems := parseChanges(resp.Body, dir)
	for _, p := range problems {
		s.report(ctx, ReasonListing, changes, errors.New(p))
	}
	for i := range entries {
		entries[i].ListedBy = changes
	}
	return entries
}

// state is what the source remembers of one advisory URL.
type state struct {
	Listed string `json:"listed"`           // the listing's time, RFC 3339
	SHA256 string `json:"sha256,omitempty"` // of the content last checked
	Status string `json:"status"`           // ingested | rejected
	Reason string `json:"reason,omitempty"`
	Event  string `json:"event,omitempty"`
}

const (
	statusIngested = "ingested"
	statusRejected = "rejected"
)

func (s *Source) cursorName(u string) string { return "csaf:" + s.opts.Name + ":" + u }

func (s *Source) loadState(ctx context.Context, u string) (state, error) {
	v, err := s.cursors.Cursor(ctx, s.cursorName(u))
	if err != nil || v == "" {
		return state{}, err
	}
	var st state
	if json.Unmarshal([]byte(v), &st) != nil {
		return state{}, nil // unreadable: treat the advisory as new
	}
	return st, nil
}

func (s *Source) saveState(ctx context.Context, u string, st state) error {
	b, _ := json.Marshal(st)
	return s.cursors.SetCursor(ctx, s.cursorName(u), string(b))
}

// rejection is a check an advisory failed.
type rejection struct {
	reason string
	err    error
}

func (r *rejection) Error() string { return r.reason + ": " + r.err.Error() }

func reject(reason string, err error) error { return &rejection{reason: reason, err: err} }

// process handles one listed advisory. It returns only errors that should
// stop the poll (the gateway's own store failing).
func (s *Source) process(ctx context.Context, e entry, keys openpgp.EntityList, st *Stats) error {
	prev, err := s.loadState(ctx, e.URL)
	if err != nil {
		return err
	}
	listed := e.Updated.UTC().Format(time.RFC3339Nano)
	if prev.Status == statusIngested && prev.Listed == listed {
		st.Unchanged++
		return nil
	}
	sum, evs, err := s.check(ctx, e, keys)
	var rej *rejection
	switch {
	case errors.As(err, &rej):
		return s.rejected(ctx, e.URL, prev, state{Listed: listed, SHA256: sum, Status: statusRejected, Reason: rej.reason}, rej.err, st)
	case err != nil:
		st.Failed++
		s.report(ctx, ReasonFetch, e.URL, err)
		return nil
	}
	if sum == prev.SHA256 && prev.Status == statusIngested {
		// Listed anew (a touched timestamp) with the same content.
		st.Unchanged++
		return s.saveState(ctx, e.URL, state{Listed: listed, SHA256: sum, Status: statusIngested, Event: prev.Event})
	}
	var id string
	for _, ev := range evs {
		res, err := s.in.Ingest(ctx, gateway.Source{Name: s.opts.Name, DefaultTLP: s.opts.DefaultTLP, Format: csafmap.Format, Own: s.opts.Own}, ev)
		var verr *gateway.ValidationError
		if errors.As(err, &verr) {
			return s.rejected(ctx, e.URL, prev, state{Listed: listed, SHA256: sum, Status: statusRejected, Reason: ReasonInvalid}, err, st)
		}
		if err != nil {
			return fmt.Errorf("ingest %s: %w", e.URL, err)
		}
		id = res.ID
		switch {
		case res.Status == gateway.StatusDuplicate:
			st.Duplicate++
		case res.Update:
			st.Updated++
		default:
			st.Ingested++
		}
		s.log.Info("csaf advisory ingested", "url", e.URL, "event", res.ID, "version", res.Version,
			"status", res.Status, "update", res.Update, "deliveries", res.Deliveries, "priority", ev.Priority)
	}
	return s.saveState(ctx, e.URL, state{Listed: listed, SHA256: sum, Status: statusIngested, Event: id})
}

// rejected records a failed check. The advisory is checked again on every
// poll (the provider may repair a sidecar without relisting it) but the
// same failure of the same content is reported only once.
func (s *Source) rejected(ctx context.Context, u string, prev, next state, why error, st *Stats) error {
	st.Rejected++
	if prev.Status == statusRejected && prev.Reason == next.Reason && prev.Listed == next.Listed && prev.SHA256 == next.SHA256 {
		s.log.Debug("advisory still rejected", "url", u, "reason", next.Reason, "error", why)
	} else {
		s.report(ctx, next.Reason, u, why)
	}
	return s.saveState(ctx, u, next)
}

// check downloads one advisory and runs every check on it. It returns the
// content's SHA-256 (once downloaded) and the mapped events; a *rejection
// for a failed check, any other error for a download that may succeed later.
func (s *Source) check(ctx context.Context, e entry, keys openpgp.EntityList) (string, []*gateway.Event, error) {
	u, err := url.Parse(e.URL)
	if err != nil {
		return "", nil, reject(ReasonListing, fmt.Errorf("advisory url %q: %w", e.URL, err))
	}
	name := path.Base(u.Path)
	if !fileNameRE.MatchString(name) {
		return "", nil, reject(ReasonFilename, fmt.Errorf("file name %q does not conform to CSAF §5.1 (lower case [+-a-z0-9_], .json)", name))
	}
	resp, err := s.fetch.get(ctx, e.URL, s.maxDoc)
	if errors.Is(err, errInsecure) {
		return "", nil, reject(ReasonInsecure, err)
	}
	if err != nil {
		return "", nil, err
	}
	data := resp.Body
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	if resp.ContentType != "application/json" {
		s.log.Warn("advisory served with an unexpected content type", "url", e.URL, "content_type", resp.ContentType)
	}
	if err := strictJSON(data); err != nil {
		return sum, nil, reject(ReasonJSON, err)
	}
	if err := s.checkHashes(ctx, e, data); err != nil {
		return sum, nil, err
	}
	if err := s.checkSignature(ctx, e, data, keys); err != nil {
		return sum, nil, err
	}
	if errs := csafmap.Valid(data); len(errs) > 0 {
		return sum, nil, reject(ReasonSchema, schemaError(errs))
	}
	var doc struct {
		Document struct {
			Tracking struct {
				ID string `json:"id"`
			} `json:"tracking"`
		} `json:"document"`
	}
	_ = json.Unmarshal(data, &doc) // strictJSON and the schema passed
	if want := csafmap.FileName(doc.Document.Tracking.ID); want != name {
		return sum, nil, reject(ReasonFilename, fmt.Errorf("/document/tracking/id %q wants file name %q, served as %q", doc.Document.Tracking.ID, want, name))
	}
	evs, problems, err := csafmap.Decode(data)
	if err != nil {
		return sum, nil, reject(ReasonSchema, err)
	}
	for _, p := range problems {
		s.log.Warn("csaf mapping problem", "url", e.URL, "field", p.Field, "message", p.Message)
	}
	for _, ev := range evs {
		applyFeedTLP(ev, e.FeedTLP)
	}
	return sum, evs, nil
}

// applyFeedTLP makes the event at least as strict as the ROLIE feed it was
// listed in: a document without a label inherits the feed's, and a
// conflict resolves to the stricter (ARCHITECTURE §3).
func applyFeedTLP(ev *gateway.Event, feed gateway.TLP) {
	if feed == "" {
		return
	}
	if ev.TLP == "" {
		ev.TLP = feed
		return
	}
	ev.TLP = gateway.Stricter(ev.TLP, feed)
}

func schemaError(errs []gateway.FieldError) error {
	const show = 5
	parts := make([]string, 0, show)
	for i, fe := range errs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-show))
			break
		}
		parts = append(parts, fe.Error())
	}
	return fmt.Errorf("%d CSAF schema violation(s): %s", len(errs), strings.Join(parts, "; "))
}

// checkHashes requires at least one SHA-256/512 sidecar and that every one
// found matches.
func (s *Source) checkHashes(ctx context.Context, e entry, data []byte) error {
	explicit := len(e.HashURLs) > 0
	urls := e.HashURLs
	if !explicit {
		urls = []string{e.URL + ".sha256", e.URL + ".sha512"}
	}
	found := 0
	for _, hu := range urls {
		resp, err := s.fetch.get(ctx, hu, maxSidecar)
		switch {
		case notFound(err) && !explicit:
			continue
		case notFound(err):
			return reject(ReasonHash, fmt.Errorf("hash file listed by the feed is missing: %w", err))
		case errors.Is(err, errInsecure):
			return reject(ReasonInsecure, err)
		case err != nil:
			return err
		}
		found++
		if err := checkHash(data, resp.Body, hu); err != nil {
			return reject(ReasonHash, err)
		}
	}
	if found == 0 {
		return reject(ReasonHash, errors.New("no .sha256 or .sha512 hash file is published beside the advisory"))
	}
	return nil
}

func (s *Source) checkSignature(ctx context.Context, e entry, data []byte, keys openpgp.EntityList) error {
	su := e.SigURL
	if su == "" {
		su = e.URL + ".asc"
	}
	resp, err := s.fetch.get(ctx, su, maxSidecar)
	switch {
	case notFound(err):
		return reject(ReasonSignature, fmt.Errorf("no OpenPGP signature: %w", err))
	case errors.Is(err, errInsecure):
		return reject(ReasonInsecure, err)
	case err != nil:
		return err
	}
	signer, err := checkSignature(data, resp.Body, keys, s.now())
	if err != nil {
		return reject(ReasonSignature, fmt.Errorf("%s: %w", su, err))
	}
	s.log.Debug("advisory signature verified", "url", e.URL, "signer", signer)
	return nil
}

// report makes a failure visible: a warning in the log, the rejected
// counter and an audit record.
func (s *Source) report(ctx context.Context, reason, where string, err error) {
	if ctx.Err() != nil {
		return // shutting down: nothing was decided, the next run tries again
	}
	s.log.Warn("csaf input rejected", "reason", reason, "url", where, "error", err)
	if s.opts.Metrics != nil {
		s.opts.Metrics.Rejected.WithLabelValues(s.opts.Name, reason).Inc()
	}
	rec := audit.Record{Action: ActionRejected, Outcome: reason, Error: err.Error(),
		Details: map[string]string{"source": s.opts.Name, "url": where, "reason": reason}}
	if aerr := s.audit.Append(ctx, rec); aerr != nil {
		s.log.Warn("audit append failed", "error", aerr)
	}
}
