package httpstatus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		v      string
		want   time.Duration
		wantOK bool
	}{
		{"empty", "", 0, false},
		{"blank", "   ", 0, false},
		{"seconds", "120", 2 * time.Minute, true},
		{"seconds with spaces", " 7 ", 7 * time.Second, true},
		{"zero", "0", 0, true},
		{"negative", "-5", 0, true},
		{"huge seconds are capped", "99999999999999", httpstatus.MaxRetryAfter, true},
		{"seconds beyond int64 are capped", "999999999999999999999999", httpstatus.MaxRetryAfter, true},
		{"just over a day is capped", "86401", httpstatus.MaxRetryAfter, true},
		{"IMF-fixdate in the future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"IMF-fixdate in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"IMF-fixdate years ahead is capped", now.AddDate(5, 0, 0).Format(http.TimeFormat), httpstatus.MaxRetryAfter, true},
		{"RFC 850 date", now.Add(time.Minute).Format(time.RFC850), time.Minute, true},
		{"asctime date", now.Add(time.Hour).Format(time.ANSIC), time.Hour, true},
		{"garbage", "soon", 0, false},
		{"fraction", "1.5", 0, false},
		{"plus sign", "+5", 0, false},
		{"RFC 3339 is not an HTTP date", now.Add(time.Minute).Format(time.RFC3339), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := httpstatus.ParseRetryAfter(tt.v, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.v, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	status := func(code int, after time.Duration) error {
		return fmt.Errorf("deliver: %w", &httpstatus.StatusError{Code: code, RetryAfter: after})
	}
	tests := []struct {
		name string
		err  error
		want httpstatus.Decision
	}{
		{"nil", nil, httpstatus.Decision{Class: httpstatus.OK}},
		{"301 redirect left unfollowed", status(301, 0), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"308 redirect with Retry-After", status(308, time.Minute), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"400", status(400, 0), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"401", status(401, 0), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"404", status(404, 0), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"410 gone", status(410, 0), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"410 with Retry-After stays permanent", status(410, time.Minute), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"413", status(413, 0), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"408", status(408, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"425 too early", status(425, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"429 without Retry-After", status(429, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"429 with Retry-After", status(429, 30*time.Second), httpstatus.Decision{Class: httpstatus.Defer, After: 30 * time.Second}},
		{"500", status(500, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"500 with Retry-After", status(500, 3*time.Second), httpstatus.Decision{Class: httpstatus.Defer, After: 3 * time.Second}},
		{"502", status(502, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"503", status(503, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"503 with Retry-After", status(503, 2*time.Minute), httpstatus.Decision{Class: httpstatus.Defer, After: 2 * time.Minute}},
		{"503 with an absurd Retry-After", status(503, 1000*time.Hour), httpstatus.Decision{Class: httpstatus.Defer, After: httpstatus.MaxRetryAfter}},
		{"unexpected 204", status(204, 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"network error", &netError{}, httpstatus.Decision{Class: httpstatus.Retry}},
		{"timeout", fmt.Errorf("post: %w", context.DeadlineExceeded), httpstatus.Decision{Class: httpstatus.Retry}},
		{"cancelled (shutdown)", context.Canceled, httpstatus.Decision{Class: httpstatus.Retry}},
		{"plain error", errors.New("boom"), httpstatus.Decision{Class: httpstatus.Retry}},
		{"gateway.Permanent", gateway.Permanent(errors.New("smtp 550")), httpstatus.Decision{Class: httpstatus.Permanent}},
		{"gateway.RetryAfter with a delay", gateway.RetryAfter(errors.New("x"), time.Minute), httpstatus.Decision{Class: httpstatus.Defer, After: time.Minute}},
		{"gateway.RetryAfter without a delay", gateway.RetryAfter(errors.New("smtp 451"), 0), httpstatus.Decision{Class: httpstatus.Retry}},
		{"the sink's verdict wins over the status", gateway.Permanent(status(503, 0)), httpstatus.Decision{Class: httpstatus.Permanent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := httpstatus.Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}

type netError struct{}

func (*netError) Error() string   { return "dial tcp 192.0.2.1:443: connect: connection refused" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return false }

func TestFromResponse(t *testing.T) {
	long := "x" + strings.Repeat("é", 4000) // cut mid-rune at the limit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, long)
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	se := httpstatus.FromResponse("GET "+srv.URL, resp)
	if se.Code != 429 || se.RetryAfter != 7*time.Second || se.Location != "/elsewhere" {
		t.Errorf("StatusError %+v", se)
	}
	if len(se.Body) > httpstatus.BodyLimit+3 || !strings.HasPrefix(se.Body, "xé") || !strings.HasSuffix(se.Body, "\uFFFD") {
		t.Errorf("Body is %d bytes (%q…), want at most %d, valid UTF-8", len(se.Body), se.Body[:8], httpstatus.BodyLimit)
	}
	msg := se.Error()
	for _, want := range []string{"GET " + srv.URL, "429 Too Many Requests", "retry after 7s", "éé"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %.120q, want it to say %q", msg, want)
		}
	}
	if got := httpstatus.Classify(se); got != (httpstatus.Decision{Class: httpstatus.Defer, After: 7 * time.Second}) {
		t.Errorf("Classify = %+v", got)
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[httpstatus.Class]string{httpstatus.OK: "ok", httpstatus.Retry: "retry",
		httpstatus.Defer: "defer", httpstatus.Permanent: "permanent", 9: "class(9)"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", c, c.String(), want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "99999999999999999999", "Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := httpstatus.ParseRetryAfter(v, now)
		if d < 0 || d > httpstatus.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %s, outside 0..%s", v, d, httpstatus.MaxRetryAfter)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s but not ok", v, d)
		}
		// Whatever was parsed classifies a 503 without panicking and within bounds.
		if dec := httpstatus.ForStatus(503, d); dec.After != d || (d > 0) != (dec.Class == httpstatus.Defer) {
			t.Fatalf("ForStatus(503, %s) = %+v", d, dec)
		}
	})
}
