package csv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
)

// fetcher downloads the feed URL; plain http:// only when the configured
// URL is http:// (no downgrade on redirect from https).
type fetcher struct {
	url       *url.URL
	client    *http.Client
	userAgent string
}

func newFetcher(raw string, c *http.Client, userAgent string) (*fetcher, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("url: %q is not an http(s) URL", raw)
	}
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Minute}
	}
	cc := *c
	secure := u.Scheme == "https"
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if secure && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to %s: plain http:// is not allowed for an https:// feed", req.URL.Redacted())
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}
	return &fetcher{url: u, client: &cc, userAgent: userAgent}, nil
}

// get asks for the feed, conditionally on what prev remembers. It returns
// the response for a 200 or 304 (the caller closes its body), an
// *httpstatus.StatusError for any other answer, or the transport's error.
func (f *fetcher) get(ctx context.Context, prev urlState) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	if f.userAgent != "" {
		req.Header.Set("User-Agent", f.userAgent)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified {
		defer resp.Body.Close()
		return nil, httpstatus.FromResponse("get "+f.url.Redacted(), resp)
	}
	return resp, nil
}

// urlState is what the URL source remembers between polls.
type urlState struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	SHA256       string `json:"sha256,omitempty"`
}

func (s *Source) cursorName() string { return "csv:" + s.opts.Name }

func (s *Source) pollURL(ctx context.Context) (Stats, error) {
	var st Stats
	var prev urlState
	if v, err := s.cursors.Cursor(ctx, s.cursorName()); err != nil {
		return st, err
	} else if v != "" {
		_ = json.Unmarshal([]byte(v), &prev) // unreadable: fetch unconditionally
	}
	where := s.fetch.url.Redacted()
	resp, err := s.fetch.get(ctx, prev)
	if err != nil {
		s.report(ctx, ReasonFetch, where, err)
		return st, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		st.Unchanged++
		return st, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxFile+1))
	if err != nil {
		s.report(ctx, ReasonFetch, where, fmt.Errorf("get %s: %w", where, err))
		return st, nil
	}
	next := urlState{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	sum := sha256.Sum256(data)
	next.SHA256 = hex.EncodeToString(sum[:])
	save := func() error {
		b, _ := json.Marshal(next)
		return s.cursors.SetCursor(ctx, s.cursorName(), string(b))
	}
	if int64(len(data)) > s.opts.MaxFile {
		st.Failed++
		s.report(ctx, ReasonTooLarge, where, fmt.Errorf("more than %d bytes", s.opts.MaxFile))
		return st, save()
	}
	if next.SHA256 == prev.SHA256 {
		st.Unchanged++ // the server ignores conditional requests
		return st, save()
	}
	name := reportName(resp, s.fetch.url)
	modified := s.opts.Now()
	if t, err := http.ParseTime(next.LastModified); err == nil {
		modified = t
	}
	st.Files++
	res, err := s.ingestFetched(ctx, name, data, modified, next.SHA256)
	var verr *gateway.ValidationError
	switch {
	case errors.As(err, &verr):
		reason := ReasonInvalid
		if len(verr.Fields) == 1 && verr.Fields[0].Field == "file" {
			reason = ReasonUnreadable
		}
		st.Failed++
		s.report(ctx, reason, name, err)
		return st, save() // this content is reported once; a new one is read
	case err != nil:
		return st, fmt.Errorf("ingest %s: %w", name, err)
	}
	if res.Status == "duplicate" {
		st.Duplicate++
	} else {
		st.Ingested++
	}
	st.Rows += res.Rows
	st.Unowned += res.Unowned
	return st, save()
}

// ingestFetched names the report after its content as well as its file
// name: a feed URL often serves every day's report under one name, and each
// distinct report is its own notification.
func (s *Source) ingestFetched(ctx context.Context, name string, data []byte, modified time.Time, sum string) (Result, error) {
	return s.ingest(ctx, name, name+"#sha256:"+sum[:16], data, modified)
}

// reportName is the file name the server gives (Content-Disposition) or the
// URL's last path segment.
func reportName(resp *http.Response, u *url.URL) string {
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		return path.Base(params["filename"])
	}
	if b := path.Base(u.Path); b != "/" && b != "." {
		return b
	}
	return "report.csv"
}
