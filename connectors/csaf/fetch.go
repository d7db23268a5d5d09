package csaf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/schakel/schakel/gateway/httpstatus"
)

// errInsecure marks a plain http:// URL reached from an https:// provider.
var errInsecure = errors.New("plain http:// is not allowed for this provider")

// fetcher downloads with a size limit and refuses plain http:// unless the
// configured URL itself is http:// (an internal mirror, a test).
type fetcher struct {
	client    *http.Client
	allowHTTP bool
	userAgent string
}

func newFetcher(c *http.Client, allowHTTP bool, userAgent string) *fetcher {
	if c == nil {
		c = &http.Client{Timeout: 60 * time.Second}
	}
	f := &fetcher{allowHTTP: allowHTTP, userAgent: userAgent}
	cc := *c
	prev := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := f.allowed(req.URL); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}
	f.client = &cc
	return f
}

func (f *fetcher) allowed(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if f.allowHTTP {
			return nil
		}
		return fmt.Errorf("%s: %w", u.Redacted(), errInsecure)
	}
	return fmt.Errorf("%s: scheme %q is not http(s)", u.Redacted(), u.Scheme)
}

// response is a downloaded body with what the checks need of its headers.
type response struct {
	Body        []byte
	ContentType string
}

// get downloads raw (an absolute URL) with at most limit bytes. A non-200
// answer is an *httpstatus.StatusError (notFound tells 404 and 410).
func (f *fetcher) get(ctx context.Context, raw string, limit int64) (response, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return response{}, fmt.Errorf("url %q: %w", raw, err)
	}
	if err := f.allowed(u); err != nil {
		return response{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return response{}, fmt.Errorf("url %s: %w", u.Redacted(), err)
	}
	if f.userAgent != "" {
		req.Header.Set("User-Agent", f.userAgent)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return response{}, httpstatus.FromResponse("get "+u.Redacted(), resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return response{}, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return response{}, fmt.Errorf("get %s: larger than %d bytes", u.Redacted(), limit)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return response{Body: body, ContentType: ct}, nil
}

// notFound reports a 404 or 410: for a sidecar it means "not published".
func notFound(err error) bool {
	se, ok := errors.AsType[*httpstatus.StatusError](err)
	return ok && (se.Code == http.StatusNotFound || se.Code == http.StatusGone)
}
