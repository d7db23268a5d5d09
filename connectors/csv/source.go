// Package csv is the CSV feed source: Shadowserver-style reports
// (IP-keyed victim notifications) read from a drop folder or an HTTP URL.
// Each report file becomes one notification event through mappings/csv and
// the pipeline, so each constituent receives only the rows about its own
// addresses; rows no constituent owns stay in the stored event for the
// analysts, are counted (schakel_notification_unowned_indicators_total, by
// the pipeline) and recorded in the audit stream with their number.
//
// Drop folder contract: write a report under a name starting with "." or
// ending in .part or .tmp and rename it when complete (or just write it:
// files younger than MinAge are left for the next scan). Each file is read
// once and then moved to processed/, or to failed/ with <name>.reason
// saying why.
package csv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/poll"
	csvmap "github.com/schakel/schakel/mappings/csv"
)

// Defaults for Options fields left zero.
const (
	DefaultFolderInterval = 30 * time.Second
	DefaultURLInterval    = time.Hour
	DefaultMinAge         = 2 * time.Second
	DefaultMaxFile        = 512 << 20
)

// Audit actions.
const (
	ActionRejected = "source.rejected"      // a file or rows of it could not be used
	ActionUnowned  = "notification.unowned" // rows of a report nobody owns: kept, not sent
)

// Reasons label schakel_rejected_total{source,reason} and audit records.
const (
	ReasonUnreadable = "unreadable" // no header, no ip column: the file is not a report
	ReasonRow        = "row"        // rows left out (bad ip, wrong field count)
	ReasonInvalid    = "invalid"    // the gateway refused the event
	ReasonTooLarge   = "too_large"  // larger than MaxFile
	ReasonRead       = "read"       // the file could not be read or moved
	ReasonFetch      = "fetch"      // the URL could not be downloaded (retried next poll)
)

// Cursors keeps the URL source's validators between polls (store.Store).
type Cursors interface {
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, v string) error
}

// Auditor records failures and unowned rows (audit.Log).
type Auditor interface {
	Append(ctx context.Context, recs ...audit.Record) error
}

// OwnersFunc returns the asset matcher in force (the registry's current
// snapshot), to count the rows nobody owns.
type OwnersFunc func() policy.Owners

// Options configure one CSV source: Path (a drop folder) or URL.
type Options struct {
	Name       string
	Path       string
	URL        string
	Profile    csvmap.Profile
	DefaultTLP gateway.TLP
	// Own: the relay's own analysts author this source (config own: true).
	Own      bool
	Interval time.Duration
	// MinAge is how long a file must have been left alone before it is
	// read, so a report still being written is not read half.
	MinAge    time.Duration
	MaxFile   int64
	Client    *http.Client
	UserAgent string
	Log       *slog.Logger
	Metrics   *metrics.Metrics
	Now       func() time.Time
}

// Stats counts what one poll did.
type Stats struct {
	Files     int // reports read
	Ingested  int // events accepted (new or updated)
	Duplicate int // reports the gateway already had
	Failed    int // reports moved to failed/ or rejected
	Waiting   int // files left for the next scan (too young)
	Unchanged int // URL not modified
	Rows      int // rows mapped
	Unowned   int // rows no constituent owns
}

// Source reads one CSV feed.
type Source struct {
	opts    Options
	in      gateway.Ingester
	cursors Cursors
	audit   Auditor
	owners  OwnersFunc
	log     *slog.Logger
	fetch   *fetcher
}

// NewSource checks opts; nothing is read yet.
func NewSource(opts Options, in gateway.Ingester, cur Cursors, au Auditor, owners OwnersFunc) (*Source, error) {
	if opts.Name == "" {
		return nil, errors.New("name: is required")
	}
	if (opts.Path == "") == (opts.URL == "") {
		return nil, errors.New("path, url: set exactly one (a drop folder or an HTTP URL)")
	}
	if in == nil || au == nil || owners == nil || (opts.URL != "" && cur == nil) {
		return nil, errors.New("csv source: ingester, auditor, owners (and cursors for a url) are required")
	}
	if opts.Profile.Columns[csvmap.FieldIP] == "" {
		return nil, errors.New("columns.ip: is required (the column that holds the address)")
	}
	s := &Source{opts: opts, in: in, cursors: cur, audit: au, owners: owners}
	if s.opts.Log == nil {
		s.opts.Log = slog.New(slog.DiscardHandler)
	}
	s.log = s.opts.Log.With("connector", "source.csv", "source", opts.Name)
	if s.opts.Interval <= 0 {
		s.opts.Interval = DefaultFolderInterval
		if opts.URL != "" {
			s.opts.Interval = DefaultURLInterval
		}
	}
	if s.opts.MinAge == 0 {
		s.opts.MinAge = DefaultMinAge
	}
	if s.opts.MaxFile <= 0 {
		s.opts.MaxFile = DefaultMaxFile
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if opts.URL != "" {
		f, err := newFetcher(opts.URL, opts.Client, opts.UserAgent)
		if err != nil {
			return nil, err
		}
		s.fetch = f
	}
	return s, nil
}

// ProfileFor builds the column map of a configured source: "shadowserver"
// (the default) with columns overriding single fields, or any other profile
// name with its own columns (ip required).
func ProfileFor(profile string, columns map[string]string) (csvmap.Profile, error) {
	known := []string{csvmap.FieldIP, csvmap.FieldPort, csvmap.FieldASN, csvmap.FieldTimestamp, csvmap.FieldHostname,
		csvmap.FieldTag, csvmap.FieldSeverity, csvmap.FieldReportType}
	for _, k := range slices.Sorted(maps.Keys(columns)) {
		if !slices.Contains(known, k) {
			return csvmap.Profile{}, fmt.Errorf("columns.%s: unknown field; use one of %s", k, strings.Join(known, ", "))
		}
		if strings.TrimSpace(columns[k]) == "" {
			return csvmap.Profile{}, fmt.Errorf("columns.%s: names no CSV header", k)
		}
	}
	var p csvmap.Profile
	switch {
	case profile == "" || strings.EqualFold(profile, csvmap.Shadowserver.Name):
		p = csvmap.Shadowserver
		p.Columns = maps.Clone(p.Columns)
	case len(columns) == 0:
		return csvmap.Profile{}, fmt.Errorf("profile: %q is not a built-in profile (shadowserver); give its columns", profile)
	default:
		p = csvmap.Profile{Name: profile, Columns: map[string]string{}, Kind: gateway.KindNotification}
	}
	maps.Copy(p.Columns, columns)
	if p.Columns[csvmap.FieldIP] == "" {
		return csvmap.Profile{}, errors.New("columns.ip: is required (the column that holds the address)")
	}
	return p, nil
}

// Run polls now and then every interval until ctx ends (gateway.Runner).
func (s *Source) Run(ctx context.Context) error {
	return poll.Run(ctx, poll.Options{Interval: s.opts.Interval, Log: s.log}, func(ctx context.Context) error {
		st, err := s.Poll(ctx)
		if err == nil && st.Files > 0 {
			s.log.Info("csv poll done", "files", st.Files, "ingested", st.Ingested, "duplicate", st.Duplicate,
				"failed", st.Failed, "rows", st.Rows, "unowned", st.Unowned)
		}
		return err
	})
}

// Poll reads whatever is new: the folder's complete files, or the URL when
// it changed.
func (s *Source) Poll(ctx context.Context) (Stats, error) {
	if s.opts.URL != "" {
		return s.pollURL(ctx)
	}
	return s.pollFolder(ctx)
}

// Result is what became of one report.
type Result struct {
	gateway.Result
	Rows    int // rows mapped to indicators
	Unowned int // rows no constituent owns
	Skipped int // rows left out (reported)
}

// IngestReport maps one report file and ingests it. modified stands in for
// the event's time when no row has a timestamp. A *gateway.ValidationError
// (or an error wrapping csvmap's) means the report was refused; the
// caller decides where the file goes.
func (s *Source) IngestReport(ctx context.Context, name string, data []byte, modified time.Time) (Result, error) {
	return s.ingest(ctx, name, "", data, modified)
}

// ingest is IngestReport with the source ref (and so the event id) set to
// ref when not empty.
func (s *Source) ingest(ctx context.Context, name, ref string, data []byte, modified time.Time) (Result, error) {
	ev, problems, err := csvmap.DecodeReport(s.opts.Profile, csvmap.Report{Name: name, Data: data})
	if err != nil {
		return Result{}, &gateway.ValidationError{Fields: []gateway.FieldError{{Field: "file", Message: name + ": " + err.Error()}}}
	}
	if ref != "" {
		ev.Source.Ref = ref
	}
	if ev.Modified.IsZero() && !modified.IsZero() {
		ev.Created, ev.Modified = modified.UTC(), modified.UTC()
	}
	if len(problems) > 0 {
		s.reportRows(ctx, name, problems)
	}
	rows := len(ev.Indicators)
	res, err := s.in.Ingest(ctx, gateway.Source{Name: s.opts.Name, DefaultTLP: s.opts.DefaultTLP, Format: csvmap.Format, Own: s.opts.Own}, ev)
	if err != nil {
		return Result{}, err
	}
	out := Result{Result: res, Rows: rows, Skipped: len(problems)}
	if res.Status == gateway.StatusDuplicate {
		return out, nil
	}
	// ev is the event as stored (normalised, with its id); rows owned by
	// nobody are kept there for the analysts but reach no constituent.
	out.Unowned = policy.Assess(ev, s.owners()).Unowned()
	if out.Unowned > 0 {
		rec := audit.Record{Action: ActionUnowned, EventID: res.ID, Version: res.Version, TLP: ev.TLP, Outcome: "kept",
			Rule:    "notification rows no constituent owns are stored, visible to admins, and not sent",
			Details: map[string]string{"source": s.opts.Name, "file": name, "rows": strconv.Itoa(rows), "unowned": strconv.Itoa(out.Unowned)}}
		if err := s.audit.Append(ctx, rec); err != nil {
			s.log.Warn("audit append failed", "error", err)
		}
	}
	s.log.Info("csv report ingested", "file", name, "event", res.ID, "status", res.Status, "update", res.Update,
		"rows", rows, "unowned", out.Unowned, "skipped", len(problems), "deliveries", res.Deliveries)
	return out, nil
}

// reportRows reports the rows a report lost: one log line, the counter by
// their number and one audit record listing the first few.
func (s *Source) reportRows(ctx context.Context, name string, problems []gateway.FieldError) {
	const show = 10
	var parts []string
	for i, p := range problems {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(problems)-show))
			break
		}
		parts = append(parts, p.Error())
	}
	msg := strings.Join(parts, "; ")
	s.log.Warn("csv rows left out", "file", name, "count", len(problems), "first", problems[0].Error())
	if s.opts.Metrics != nil {
		s.opts.Metrics.Rejected.WithLabelValues(s.opts.Name, ReasonRow).Add(float64(len(problems)))
	}
	rec := audit.Record{Action: ActionRejected, Outcome: ReasonRow, Error: msg,
		Details: map[string]string{"source": s.opts.Name, "file": name, "reason": ReasonRow, "count": strconv.Itoa(len(problems))}}
	if err := s.audit.Append(ctx, rec); err != nil {
		s.log.Warn("audit append failed", "error", err)
	}
}

// report makes a failure visible: log, counter, audit record.
func (s *Source) report(ctx context.Context, reason, file string, err error) {
	if ctx.Err() != nil {
		return // shutting down: nothing was decided, the next run tries again
	}
	s.log.Warn("csv report rejected", "reason", reason, "file", file, "error", err)
	if s.opts.Metrics != nil {
		s.opts.Metrics.Rejected.WithLabelValues(s.opts.Name, reason).Inc()
	}
	rec := audit.Record{Action: ActionRejected, Outcome: reason, Error: err.Error(),
		Details: map[string]string{"source": s.opts.Name, "file": file, "reason": reason}}
	if aerr := s.audit.Append(ctx, rec); aerr != nil {
		s.log.Warn("audit append failed", "error", aerr)
	}
}
