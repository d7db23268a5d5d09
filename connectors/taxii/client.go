package taxii

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

// Client reads one collection of an upstream TAXII 2.1 server.
type Client struct {
	objectsURL string
	user, pass string
	token      string
	http       *http.Client
	userAgent  string
}

// maxPageBytes bounds one upstream response.
const maxPageBytes = 256 << 20

// NewClient returns a client for collection of the API root at root
// (e.g. https://taxii.example/api1/). User and password, when either is set,
// go as HTTP Basic.
func NewClient(root, collection, user, password string, hc *http.Client, userAgent string) (*Client, error) {
	return newClient(root, collection, user, password, "", hc, userAgent)
}

// NewTokenClient is NewClient for servers that take a bearer token (another
// Schakel's key, an OpenCTI token).
func NewTokenClient(root, collection, token string, hc *http.Client, userAgent string) (*Client, error) {
	return newClient(root, collection, "", "", token, hc, userAgent)
}

func newClient(root, collection, user, password, token string, hc *http.Client, userAgent string) (*Client, error) {
	u, err := url.Parse(root)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: %q is not an http(s) URL of a TAXII API root", root)
	}
	if strings.TrimSpace(collection) == "" || strings.ContainsAny(collection, "/?#") {
		return nil, fmt.Errorf("collection: %q is not a collection id", collection)
	}
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	if userAgent == "" {
		userAgent = "Schakel"
	}
	base := strings.TrimRight(u.String(), "/") + "/collections/" + url.PathEscape(collection) + "/objects/"
	return &Client{objectsURL: base, user: user, pass: password, token: token, http: hc, userAgent: userAgent}, nil
}

// Page is one response of Get Objects.
type Page struct {
	Objects   []json.RawMessage
	More      bool
	Next      string
	AddedLast time.Time // X-TAXII-Date-Added-Last; zero when absent or unreadable
}

// Objects fetches one page. It is lenient about what servers send back:
// application/stix+json or plain JSON instead of TAXII, a bundle instead of
// an envelope, next as a number, timestamps that are not RFC 3339.
func (c *Client) Objects(ctx context.Context, addedAfter, next string, limit int) (Page, error) {
	q := url.Values{}
	if addedAfter != "" {
		q.Set("added_after", addedAfter)
	}
	if next != "" {
		q.Set("next", next)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	u := c.objectsURL
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Page{}, err
	}
	req.Header.Set("Accept", MediaTAXII)
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case c.user != "" || c.pass != "":
		req.SetBasicAuth(c.user, c.pass)
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Page{}, fmt.Errorf("get %s: %w", c.objectsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Page{}, httpstatus.FromResponse("taxii GET "+c.objectsURL, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return Page{}, fmt.Errorf("read %s: %w", c.objectsURL, err)
	}
	if len(body) > maxPageBytes {
		return Page{}, fmt.Errorf("page from %s is larger than %d bytes", c.objectsURL, maxPageBytes)
	}
	if ct, _ := mediaRange(resp.Header.Get("Content-Type")); ct != "" && !strings.Contains(ct, "json") {
		return Page{}, fmt.Errorf("page from %s has Content-Type %q, not JSON", c.objectsURL, ct)
	}
	return parsePage(body, resp.Header.Get("X-TAXII-Date-Added-Last"))
}

// parsePage reads an envelope or bundle.
func parsePage(body []byte, addedLast string) (Page, error) {
	var raw struct {
		More    json.RawMessage   `json:"more"`
		Next    json.RawMessage   `json:"next"`
		Objects []json.RawMessage `json:"objects"`
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Page{}, nil // some servers answer an empty page with no body
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Page{}, fmt.Errorf("page is not a TAXII envelope: %w", err)
	}
	p := Page{Objects: raw.Objects}
	switch strings.TrimSpace(string(raw.More)) {
	case "true", `"true"`:
		p.More = true
	}
	if len(raw.Next) > 0 && string(raw.Next) != "null" {
		var s string
		if json.Unmarshal(raw.Next, &s) != nil {
			s = strings.TrimSpace(string(raw.Next)) // a number
		}
		p.Next = s
	}
	if t, err := ParseTimestamp(addedLast); err == nil {
		p.AddedLast = t
	}
	return p, nil
}

// clientError reports an upstream refusal that is not about who we are
// (401, 403): a request it will not serve as asked, such as an expired next.
func clientError(err error) bool {
	se, ok := errors.AsType[*httpstatus.StatusError](err)
	return ok && httpstatus.Classify(err).Class == httpstatus.Permanent &&
		se.Code != http.StatusUnauthorized && se.Code != http.StatusForbidden
}
