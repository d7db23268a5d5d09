package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway/httpstatus"
)

// Client speaks to a remote MISP (or another Schakel) the way MISP 2.5's
// own sync does: raw key in Authorization, JSON both ways. It is safe for
// concurrent use.
type Client struct {
	base      string // without a trailing slash
	key       string
	http      *http.Client
	userAgent string
	maxBody   int64
}

// ClientOptions configure a Client; zero values take the defaults.
type ClientOptions struct {
	HTTP      *http.Client // default: one with Timeout
	Timeout   time.Duration
	UserAgent string
	// MaxBody caps a response body read (an event view can be large);
	// default 256 MiB.
	MaxBody int64
}

var errKey = errors.New("key: must be 40 letters and digits (a MISP auth key)")

// NewClient returns a client for the MISP at baseURL (a sub-path is fine).
func NewClient(baseURL, key string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: %q is not an absolute http or https URL", baseURL)
	}
	if !wellFormedKey(key) {
		return nil, errKey
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: o.Timeout}
	}
	if o.UserAgent == "" {
		o.UserAgent = "Schakel (MISP-compatible gateway)"
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 256 << 20
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), key: key, http: o.HTTP, userAgent: o.UserAgent, maxBody: o.MaxBody}, nil
}

func wellFormedKey(k string) bool {
	if len(k) != 40 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// notNewer reports MISP's benign refusal of a version it already has.
func notNewer(se *httpstatus.StatusError) bool {
	return se.Code == http.StatusForbidden && strings.Contains(se.Body, "not newer than the local copy")
}

// request sends one call; the caller closes the body of a 2xx response.
// Other statuses come back as *httpstatus.StatusError with the body read.
func (c *Client) request(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("misp %s %s: %w", method, path, err)
	}
	req.Header = http.Header{
		"Authorization": {c.key},
		"Accept":        {"application/json"},
		"User-Agent":    {c.userAgent},
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("misp %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, httpstatus.FromResponse("misp "+method+" "+path, resp)
}

// readAll reads a 2xx body up to the limit.
func (c *Client) readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("misp %s: read body: %w", resp.Request.URL.Path, err)
	}
	if int64(len(data)) > c.maxBody {
		return nil, fmt.Errorf("misp %s: body larger than %d bytes", resp.Request.URL.Path, c.maxBody)
	}
	return data, nil
}

// Version is what GET /servers/getVersion says.
type Version struct {
	Version  string `json:"version"`
	PermSync bool   `json:"perm_sync"`
	UUID     string `json:"uuid"`
}

// Version asks GET /servers/getVersion.
func (c *Client) Version(ctx context.Context) (Version, error) {
	resp, err := c.request(ctx, http.MethodGet, "/servers/getVersion", nil, nil)
	if err != nil {
		return Version{}, err
	}
	data, err := c.readAll(resp)
	if err != nil {
		return Version{}, err
	}
	var v Version
	if err := json.Unmarshal(data, &v); err != nil || v.Version == "" {
		return Version{}, fmt.Errorf("misp getVersion: not a MISP version reply: %.100s", data)
	}
	return v, nil
}

// IndexEntry is one event of a minimal /events/index.
type IndexEntry struct {
	UUID      string
	Timestamp int64
	Published bool
}

// Index runs POST /events/index with filters (minimal form). With a
// previous ETag it may answer notModified.
func (c *Client) Index(ctx context.Context, filters map[string]any, etag string) (entries []IndexEntry, newETag string, notModified bool, err error) {
	body, err := json.Marshal(filters)
	if err != nil {
		return nil, "", false, fmt.Errorf("misp index: filters: %w", err)
	}
	h := http.Header{"If-None-Match": {etag}}
	if etag == "" {
		h["If-None-Match"] = []string{`""`}
	}
	resp, err := c.request(ctx, http.MethodPost, "/events/index", body, h)
	if err != nil {
		return nil, "", false, err
	}
	if resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		return nil, etag, true, nil
	}
	data, err := c.readAll(resp)
	if err != nil {
		return nil, "", false, err
	}
	entries, err = parseIndex(data)
	if err != nil {
		return nil, "", false, err
	}
	return entries, resp.Header.Get("ETag"), false, nil
}

// parseIndex reads an index reply: a list of events, bare or wrapped in
// {"Event":…}, or {"response":[…]}. Numbers may be strings.
func parseIndex(data []byte) ([]IndexEntry, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var wrap struct {
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(data, &wrap); err != nil || wrap.Response == nil {
			return nil, fmt.Errorf("misp index: expected a list of events: %.100s", data)
		}
		data = wrap.Response
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("misp index: expected a list of events: %w", err)
	}
	out := make([]IndexEntry, 0, len(raw))
	for i, r := range raw {
		if inner, ok := r["Event"]; ok {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(inner, &m); err == nil {
				r = m
			}
		}
		var e IndexEntry
		u, _ := scalar(r["uuid"])
		e.UUID = strings.ToLower(strings.TrimSpace(u))
		ts, _ := scalar(r["timestamp"])
		n, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
		if e.UUID == "" || err != nil {
			return nil, fmt.Errorf("misp index: [%d]: uuid and timestamp are required", i)
		}
		e.Timestamp = n
		e.Published = true
		if raw, ok := r["published"]; ok {
			p := params{"published": raw}
			e.Published, _, _ = p.bool("published")
		}
		out = append(out, e)
	}
	return out, nil
}

// viewPath is the path MISP 2.5's pull asks an event by.
func viewPath(uuid string) string {
	return "/events/view/" + url.PathEscape(uuid) +
		"/deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1"
}

// View fetches one event as MISP's pull does.
func (c *Client) View(ctx context.Context, uuid string) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, viewPath(uuid), nil, nil)
	if err != nil {
		return nil, err
	}
	return c.readAll(resp)
}

// Exists asks HEAD /events/view/{uuid}, as MISP's push does before saving.
func (c *Client) Exists(ctx context.Context, uuid string) (bool, error) {
	resp, err := c.request(ctx, http.MethodHead, "/events/view/"+url.PathEscape(uuid), nil, nil)
	if se, ok := errors.AsType[*httpstatus.StatusError](err); ok && se.Code == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// Save pushes {"Event":…}: POST /events/edit/{uuid}/metadata:1 when the
// remote has the event, else /events/add/metadata:1 (retried as an edit
// when the remote answers that it has it after all). MISP's benign
// "not newer than the local copy" counts as saved.
func (c *Client) Save(ctx context.Context, uuid string, body []byte, exists bool) error {
	path := "/events/add/metadata:1"
	if exists {
		path = "/events/edit/" + url.PathEscape(uuid) + "/metadata:1"
	}
	err := c.post(ctx, path, body)
	if se, ok := errors.AsType[*httpstatus.StatusError](err); ok && !exists && (se.Code == http.StatusNotFound && se.Location != "" ||
		se.Code == http.StatusForbidden && strings.Contains(strings.ToLower(se.Body), "already exists")) {
		err = c.post(ctx, "/events/edit/"+url.PathEscape(uuid)+"/metadata:1", body)
	}
	if se, ok := errors.AsType[*httpstatus.StatusError](err); ok && notNewer(se) {
		return nil
	}
	return err
}

func (c *Client) post(ctx context.Context, path string, body []byte) error {
	resp, err := c.request(ctx, http.MethodPost, path, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return nil
}
