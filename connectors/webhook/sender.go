package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
)

// Defaults for SenderOptions.
const (
	DefaultTimeout             = 10 * time.Second
	DefaultMaxIdleConnsPerHost = 64
	DefaultUserAgent           = "schakel-webhook/1"
)

const (
	// drainLimit bounds how much of a response body Send reads so the
	// connection can be reused; a larger body costs a new connection instead
	// of unbounded reading.
	drainLimit = 64 << 10
)

// errURL marks a target URL that no retry can fix.
var errURL = errors.New("url: must be an absolute http or https URL")

// SenderOptions configure a Sender; zero values take the defaults.
type SenderOptions struct {
	Timeout             time.Duration // per attempt; default 10s
	UserAgent           string        // default DefaultUserAgent
	Client              *http.Client  // optional; used as given (its redirect policy included)
	MaxIdleConnsPerHost int           // for the built-in transport; default 64
	// Guard, when set, wraps the built-in transport (the egress policy's
	// dialer and scheme rule).
	Guard func(*http.Transport) http.RoundTripper
}

// Sender POSTs signed payloads. It is safe for concurrent use and shares one
// connection pool across all calls.
type Sender struct {
	client    *http.Client
	timeout   time.Duration
	timedOut  error // cause of an attempt's deadline; names the limit
	userAgent []string
}

// NewSender returns a Sender. Without o.Client it builds one transport with
// a large idle pool per host, because deliveries to one constituent come in
// bursts, and it does not follow redirects: the specification treats 3xx as
// a failure that the constituent fixes by updating its URL.
func NewSender(o SenderOptions) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	client := o.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.MaxIdleConnsPerHost
		tr.MaxIdleConns = max(tr.MaxIdleConns, 16*o.MaxIdleConnsPerHost)
		var rt http.RoundTripper = tr
		if o.Guard != nil {
			rt = o.Guard(tr)
		}
		client = &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &Sender{
		client:    client,
		timeout:   o.Timeout,
		timedOut:  fmt.Errorf("no answer within %s: %w", o.Timeout, context.DeadlineExceeded),
		userAgent: []string{o.UserAgent},
	}
}

// Send signs body with secret using msgID as webhook-id (the delivery_id,
// stable across retries, so receivers can de-duplicate) and POSTs it with
// Content-Type application/json. It returns nil on any 2xx, otherwise an
// *httpstatus.StatusError or a transport error, for httpstatus.Classify to
// decide; input no retry can fix (URL, secret, message id) comes back
// marked gateway.Permanent.
func (s *Sender) Send(ctx context.Context, target, secret, msgID string, body []byte) error {
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, s.timedOut)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return gateway.Permanent(fmt.Errorf("%w: %q", errURL, target))
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := signText(secret, msgID, ts, body)
	if err != nil {
		return gateway.Permanent(err)
	}
	// Canonical keys set directly: no per-call canonicalisation.
	req.Header = http.Header{
		"Content-Type":      {"application/json"},
		"User-Agent":        s.userAgent,
		"Webhook-Id":        {msgID},
		"Webhook-Timestamp": {ts},
		"Webhook-Signature": {sig},
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
		return nil
	}
	return httpstatus.FromResponse("webhook receiver", resp)
}
