package webhook_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/httpstatus"
)

func TestSendReachesVerifyingReceiver(t *testing.T) {
	rcv := webhooktest.New(t, "")
	s := webhook.NewSender(webhook.SenderOptions{})
	body := []byte(`{"type":"event.published","delivery_id":"dlv_1","event":{"id":"e1","title":"t"}}`)

	if err := s.Send(t.Context(), rcv.URL, rcv.Secret, "dlv_1", body); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := rcv.Received()
	if len(got) != 1 || rcv.Rejected() != 0 {
		t.Fatalf("receiver accepted %d, rejected %d; want 1 and 0", len(got), rcv.Rejected())
	}
	if got[0].ID != "dlv_1" || got[0].DeliveryID != "dlv_1" {
		t.Errorf("webhook-id %q, delivery_id %q; want both dlv_1", got[0].ID, got[0].DeliveryID)
	}
	if string(got[0].Raw) != string(body) {
		t.Errorf("body changed in transit: %s", got[0].Raw)
	}

	// The same delivery under another secret must be refused by a real receiver.
	wrong, _ := webhook.NewSecret()
	err := s.Send(t.Context(), rcv.URL, wrong, "dlv_2", body)
	if se, ok := errors.AsType[*httpstatus.StatusError](err); !ok || se.Code != http.StatusUnauthorized {
		t.Fatalf("Send with a wrong secret = %v, want a 401 StatusError", err)
	}
	if rcv.Rejected() != 1 {
		t.Errorf("Rejected = %d, want 1", rcv.Rejected())
	}
}

func TestSendHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	s := webhook.NewSender(webhook.SenderOptions{UserAgent: "schakel-test"})
	before := time.Now().Unix()
	if err := s.Send(t.Context(), srv.URL, specSecret, "dlv_h", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "schakel-test", "webhook-id": "dlv_h",
	} {
		if v := got.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if ts := got.Get("webhook-timestamp"); ts < "1" || ts > "9999999999" {
		t.Errorf("webhook-timestamp = %q, want unix seconds", ts)
	}
	if err := webhook.Verify(specSecret, got.Get, []byte("{}"), time.Unix(before, 0), 0); err != nil {
		t.Errorf("the sent headers do not verify: %v", err)
	}
}

func TestSendStatus(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	pastDate := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name          string
		status        int
		retryAfter    string
		body          string
		wantNil       bool
		wantPermanent bool
		wantDelay     [2]time.Duration // inclusive range
	}{
		{name: "200", status: 200, wantNil: true},
		{name: "202", status: 202, wantNil: true},
		{name: "204", status: 204, wantNil: true},
		{name: "2xx with a large body", status: 200, body: strings.Repeat("x", 1<<20), wantNil: true},
		{name: "410 gone is permanent", status: 410, wantPermanent: true},
		{name: "400 is permanent", status: 400, wantPermanent: true},
		{name: "404 is permanent", status: 404, wantPermanent: true},
		{name: "413 is permanent", status: 413, wantPermanent: true},
		{name: "408 is retryable", status: 408},
		{name: "429 with seconds", status: 429, retryAfter: "7", wantDelay: [2]time.Duration{7 * time.Second, 7 * time.Second}},
		{name: "429 with an HTTP date", status: 429, retryAfter: httpDate, wantDelay: [2]time.Duration{85 * time.Second, 90 * time.Second}},
		{name: "429 without Retry-After uses back-off", status: 429},
		{name: "503 is retryable", status: 503},
		{name: "503 with seconds", status: 503, retryAfter: "120", wantDelay: [2]time.Duration{2 * time.Minute, 2 * time.Minute}},
		{name: "500 with Retry-After is honoured", status: 500, retryAfter: "3", wantDelay: [2]time.Duration{3 * time.Second, 3 * time.Second}},
		{name: "502 is retryable", status: 502},
		{name: "Retry-After in the past", status: 503, retryAfter: pastDate},
		{name: "Retry-After garbage", status: 503, retryAfter: "soon"},
		{name: "Retry-After negative", status: 503, retryAfter: "-5"},
		{name: "Retry-After absurd is capped at a day", status: 503, retryAfter: "99999999999999", wantDelay: [2]time.Duration{24 * time.Hour, 24 * time.Hour}},
		{name: "redirect is permanent, not followed", status: 301, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var redirected atomic.Bool
			mux := http.NewServeMux()
			mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { redirected.Store(true) })
			mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status >= 300 && tt.status < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)

			err := webhook.NewSender(webhook.SenderOptions{}).Send(t.Context(), srv.URL+"/hook", specSecret, "dlv_s", []byte("{}"))
			if redirected.Load() {
				t.Error("Send followed a redirect")
			}
			if tt.wantNil {
				if err != nil {
					t.Fatalf("Send = %v, want nil", err)
				}
				return
			}
			se, ok := errors.AsType[*httpstatus.StatusError](err)
			if !ok || se.Code != tt.status {
				t.Fatalf("Send = %v, want StatusError %d", err, tt.status)
			}
			if !strings.Contains(err.Error(), http.StatusText(tt.status)) {
				t.Errorf("error %q does not say the status", err)
			}
			permanent, delay := classify(err)
			if permanent != tt.wantPermanent {
				t.Errorf("Classify permanent = %v, want %v", permanent, tt.wantPermanent)
			}
			if delay < tt.wantDelay[0] || delay > tt.wantDelay[1] {
				t.Errorf("Classify after = %s, want %s..%s", delay, tt.wantDelay[0], tt.wantDelay[1])
			}
		})
	}
}

func TestSendKeepsErrorBody(t *testing.T) {
	long := strings.Repeat("ab", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, long, http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	err := webhook.NewSender(webhook.SenderOptions{}).Send(t.Context(), srv.URL, specSecret, "dlv_b", []byte("{}"))
	se, ok := errors.AsType[*httpstatus.StatusError](err)
	if !ok {
		t.Fatalf("Send = %v, want a StatusError", err)
	}
	if se.Body != long[:512] {
		t.Errorf("Body has %d bytes, want the first 512 of the answer", len(se.Body))
	}
}

func TestSendTransportErrorsAreRetryable(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		s := webhook.NewSender(webhook.SenderOptions{Timeout: 100 * time.Millisecond})
		start := time.Now()
		err := s.Send(t.Context(), srv.URL, specSecret, "dlv_t", []byte("{}"))
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send = %v, want a deadline error", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Send took %s with a 100ms timeout", took)
		}
		if permanent, delay := classify(err); permanent || delay != 0 {
			t.Errorf("Classify = %v, %s; want retryable with back-off", permanent, delay)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		rcv := webhooktest.New(t, "")
		rcv.Close()
		err := webhook.NewSender(webhook.SenderOptions{}).Send(t.Context(), rcv.URL, rcv.Secret, "dlv_r", []byte("{}"))
		if err == nil {
			t.Fatal("Send to a closed endpoint = nil")
		}
		if permanent, _ := classify(err); permanent {
			t.Errorf("Classify(%v) = permanent, want retryable", err)
		}
	})
	t.Run("caller cancelled", func(t *testing.T) {
		rcv := webhooktest.New(t, "")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := webhook.NewSender(webhook.SenderOptions{}).Send(ctx, rcv.URL, rcv.Secret, "dlv_c", []byte("{}"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v, want context.Canceled", err)
		}
		if permanent, _ := classify(err); permanent {
			t.Error("a cancelled attempt (shutdown) is permanent; it must stay retryable")
		}
	})
}

func TestSendRejectsUnusableInput(t *testing.T) {
	rcv := webhooktest.New(t, "")
	tests := []struct {
		name, url, secret, msgID string
		want                     error
	}{
		{name: "ftp url", url: "ftp://example.org/hook", secret: rcv.Secret, msgID: "dlv_1"},
		{name: "relative url", url: "/hook", secret: rcv.Secret, msgID: "dlv_1"},
		{name: "empty url", url: "", secret: rcv.Secret, msgID: "dlv_1"},
		{name: "url with control character", url: "http://exa mple.org/\x7f", secret: rcv.Secret, msgID: "dlv_1"},
		{name: "bad secret", url: rcv.URL, secret: "whsec_%%%", msgID: "dlv_1", want: webhook.ErrSecret},
		{name: "dot in message id", url: rcv.URL, secret: rcv.Secret, msgID: "dlv.1"},
		{name: "empty message id", url: rcv.URL, secret: rcv.Secret, msgID: ""},
		{name: "newline in message id", url: rcv.URL, secret: rcv.Secret, msgID: "dlv\n1"},
		{name: "empty secret", url: rcv.URL, secret: "", msgID: "dlv_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.NewSender(webhook.SenderOptions{}).Send(t.Context(), tt.url, tt.secret, tt.msgID, []byte("{}"))
			if err == nil {
				t.Fatal("Send = nil, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
			if permanent, _ := classify(err); !permanent {
				t.Errorf("Classify(%v) = retryable, want permanent", err)
			}
		})
	}
	if rcv.Requests() != 0 {
		t.Errorf("receiver got %d requests from unusable input", rcv.Requests())
	}
}

// TestSendReusesConnections guards the hot path: sequential sends to one
// receiver share one keep-alive connection, even when it answers with a body.
func TestSendReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-id") == "dlv_3" {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := webhook.NewSender(webhook.SenderOptions{})
	for i := range 50 {
		id := "dlv_" + string(rune('0'+i%10))
		_ = s.Send(t.Context(), srv.URL, specSecret, id, []byte(`{"n":1}`))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential sends opened %d connections, want 1", n)
	}
}

// classify is httpstatus.Classify as the old two-valued answer the tables
// below were written against.
func classify(err error) (permanent bool, after time.Duration) {
	d := httpstatus.Classify(err)
	return d.Class == httpstatus.Permanent, d.After
}
