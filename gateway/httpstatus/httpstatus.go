// Package httpstatus is the one place that decides what an outbound HTTP
// call's failure means: give up, try again after the back-off, or come back
// at the time the server named. Every client Schakel runs (webhook sender,
// MISP pull and push, TAXII, CSAF, CSV) returns its non-2xx answers as a
// *StatusError built here, and the dispatcher turns every sink's error into
// an outbox result through Classify, so a 410 means the same thing whoever
// received it.
//
// It imports no connector and no other core package: the connectors and
// gateway/dispatch both depend on it.
package httpstatus

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
)

const (
	// MaxRetryAfter caps a server's Retry-After so a bogus value cannot
	// park a delivery or a poll for years.
	MaxRetryAfter = 24 * time.Hour
	// BodyLimit is how much of a failed answer a StatusError keeps.
	BodyLimit = 512
	// drainLimit is how much more FromResponse reads so the connection can
	// be reused; a longer body costs a new connection, not unbounded reading.
	drainLimit = 4 << 10
)

// StatusError is an answer other than the one a client asked for (usually
// a non-2xx status).
type StatusError struct {
	Code int
	// Op names the call: "POST https://…/hook", "misp GET /servers/getVersion".
	Op string
	// Body is the start of the answer (at most BodyLimit bytes, valid UTF-8),
	// which usually says why.
	Body string
	// RetryAfter is the server's Retry-After; 0 when absent, unparsable or
	// in the past.
	RetryAfter time.Duration
	// Location is the Location header, for redirects and MISP's "it
	// exists" answer to an add.
	Location string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op + ": ")
	}
	b.WriteString("answered " + strconv.Itoa(e.Code))
	if t := http.StatusText(e.Code); t != "" {
		b.WriteString(" " + t)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after " + e.RetryAfter.String() + ")")
	}
	if body := strings.TrimSpace(e.Body); body != "" {
		b.WriteString(": " + body)
	}
	return b.String()
}

// FromResponse builds the StatusError for resp and reads (at most a few KiB
// of) its body; the caller still closes it. op names the call for the
// message; credentials in it are the caller's to keep out.
func FromResponse(op string, resp *http.Response) *StatusError {
	var head [BodyLimit]byte
	n, _ := io.ReadFull(resp.Body, head[:])
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	ra, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return &StatusError{
		Code:       resp.StatusCode,
		Op:         op,
		Body:       strings.ToValidUTF8(string(head[:n]), "\uFFFD"),
		RetryAfter: ra,
		Location:   resp.Header.Get("Location"),
	}
}

// ParseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): delay
// seconds or an HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime
// forms). ok is false when v is neither. A date in the past or a negative
// delay is 0; a delay beyond MaxRetryAfter is MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	switch {
	case isDigits(v):
		secs, err := strconv.ParseInt(v, 10, 64)
		// Digits that overflow int64 are a delay too, an absurd one.
		if err != nil || secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	case v[0] == '-' && isDigits(v[1:]):
		return 0, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(at.Sub(now), 0), MaxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Class is what to do after a failed call.
type Class uint8

const (
	// OK: there was no error.
	OK Class = iota
	// Retry: the failure may pass; try again after the caller's back-off.
	Retry
	// Defer: the server named when to come back (Decision.After). The
	// dispatcher still counts the attempt, so a receiver that answers 429
	// for ever ends in the dead letters rather than holding the delivery.
	Defer
	// Permanent: no retry can succeed until someone changes something.
	Permanent
)

func (c Class) String() string {
	switch c {
	case OK:
		return "ok"
	case Retry:
		return "retry"
	case Defer:
		return "defer"
	case Permanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Decision is Classify's answer.
type Decision struct {
	Class Class
	// After is how long to wait for Defer; 0 otherwise.
	After time.Duration
}

// Classify decides what err means:
//
//   - a *gateway.DeliveryError is the sink's own verdict and wins
//     (Permanent, or RetryAfter as Defer; SMTP and other non-HTTP sinks);
//   - a *StatusError: 3xx (a redirect left unfollowed: the URL must change)
//     and 4xx other than 408, 425 and 429 are Permanent; 429 and every
//     other status with a Retry-After are Defer; 408, 425, 5xx and the
//     rest are Retry;
//   - anything else (network errors, timeouts, cancellation) is Retry.
//
// Refusals by the egress policy are not decided here: gateway/dispatch
// makes them permanent, since this package imports no core package.
func Classify(err error) Decision {
	if err == nil {
		return Decision{Class: OK}
	}
	if de, ok := errors.AsType[*gateway.DeliveryError](err); ok {
		switch {
		case de.Permanent:
			return Decision{Class: Permanent}
		case de.RetryAfter > 0:
			return Decision{Class: Defer, After: de.RetryAfter}
		}
		return Decision{Class: Retry}
	}
	if se, ok := errors.AsType[*StatusError](err); ok {
		return ForStatus(se.Code, se.RetryAfter)
	}
	return Decision{Class: Retry}
}

// ForStatus is Classify for a status code and its Retry-After.
func ForStatus(code int, retryAfter time.Duration) Decision {
	switch {
	case code >= 300 && code <= 499 && code != http.StatusRequestTimeout &&
		code != http.StatusTooEarly && code != http.StatusTooManyRequests:
		return Decision{Class: Permanent}
	case retryAfter > 0:
		// RFC 9110 names 503 and RFC 6585 names 429; a delay sent with any
		// other retryable answer is honoured too.
		return Decision{Class: Defer, After: min(retryAfter, MaxRetryAfter)}
	}
	return Decision{Class: Retry}
}
