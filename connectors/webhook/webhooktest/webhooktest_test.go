package webhooktest_test

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpstatus"
)

func payload(t *testing.T, id string) []byte {
	t.Helper()
	b, err := webhook.Payload(id, &gateway.Event{ID: "e-" + id, Kind: gateway.KindIntel, Title: "t", TLP: gateway.TLPGreen, Source: gateway.SourceRef{Name: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReceiverAcceptsAndRejects(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	r := webhooktest.New(t, secret)
	s := webhook.NewSender(webhook.SenderOptions{})

	if err := s.Send(t.Context(), r.URL, secret, "dlv_ok", payload(t, "dlv_ok")); err != nil {
		t.Fatalf("correctly signed delivery: %v", err)
	}
	other, _ := webhook.NewSecret()
	err := s.Send(t.Context(), r.URL, other, "dlv_bad", payload(t, "dlv_bad"))
	if se, ok := errors.AsType[*httpstatus.StatusError](err); !ok || se.Code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed delivery: %v, want 401", err)
	}
	// A replay of a signed request with a stale timestamp is refused too.
	body := payload(t, "dlv_old")
	old := time.Now().Add(-10 * time.Minute)
	sig, _ := webhook.Sign(secret, "dlv_old", old, body)
	req, _ := http.NewRequest(http.MethodPost, r.URL, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "dlv_old")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(old.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stale replay answered %d, want 401", resp.StatusCode)
	}

	if got := r.Rejected(); got != 2 {
		t.Errorf("Rejected = %d, want 2", got)
	}
	if got := r.Requests(); got != 3 {
		t.Errorf("Requests = %d, want 3", got)
	}
	rec := r.Received()
	if len(rec) != 1 || rec[0].DeliveryID != "dlv_ok" || rec[0].Event.ID != "e-dlv_ok" || rec[0].At.IsZero() {
		t.Errorf("Received = %+v, want only dlv_ok", rec)
	}
}

func TestReceiverRefusesMalformedRequests(t *testing.T) {
	r := webhooktest.New(t, "")
	send := func(method, contentType, id string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest(method, r.URL, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", contentType)
		now := time.Now()
		sig, err := webhook.Sign(r.Secret, id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name, method, contentType string
		body                      []byte
		want                      int
	}{
		{"GET", http.MethodGet, "application/json", payload(t, "dlv_1"), http.StatusMethodNotAllowed},
		{"form body", http.MethodPost, "application/x-www-form-urlencoded", payload(t, "dlv_1"), http.StatusUnsupportedMediaType},
		{"signed but not JSON", http.MethodPost, "application/json", []byte("not json"), http.StatusBadRequest},
		{"signed JSON without delivery_id", http.MethodPost, "application/json", []byte(`{"type":"event.published"}`), http.StatusBadRequest},
		{"charset parameter is fine", http.MethodPost, "application/json; charset=utf-8", payload(t, "dlv_1"), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := send(tt.method, tt.contentType, "dlv_1", tt.body); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	if r.Malformed() != 4 || r.Rejected() != 0 || len(r.Received()) != 1 {
		t.Errorf("Malformed %d, Rejected %d, Received %d; want 4, 0, 1", r.Malformed(), r.Rejected(), len(r.Received()))
	}
}

func TestReceiverRespondScript(t *testing.T) {
	r := webhooktest.New(t, "")
	r.Respond(func(n int) (int, int) {
		if n < 2 {
			return http.StatusServiceUnavailable, 5
		}
		return http.StatusAccepted, 0
	})
	s := webhook.NewSender(webhook.SenderOptions{})
	body := payload(t, "dlv_x")
	for i := range 2 {
		err := s.Send(t.Context(), r.URL, r.Secret, "dlv_x", body)
		if d := httpstatus.Classify(err); d.Class != httpstatus.Defer || d.After != 5*time.Second {
			t.Fatalf("attempt %d: err %v, %s after %s; want defer 5s", i, err, d.Class, d.After)
		}
	}
	if len(r.Received()) != 0 {
		t.Fatalf("answers 503 were recorded as received: %+v", r.Received())
	}
	if err := s.Send(t.Context(), r.URL, r.Secret, "dlv_x", body); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	// A redelivery after success (a crashed consumer's reclaim) is accepted
	// again but stays one unique delivery.
	if err := s.Send(t.Context(), r.URL, r.Secret, "dlv_x", body); err != nil {
		t.Fatal(err)
	}
	if len(r.Received()) != 2 || len(r.Unique()) != 1 || r.Requests() != 4 {
		t.Errorf("Received %d, Unique %d, Requests %d; want 2, 1, 4", len(r.Received()), len(r.Unique()), r.Requests())
	}
	r.Respond(nil)
	if err := s.Send(t.Context(), r.URL, r.Secret, "dlv_y", payload(t, "dlv_y")); err != nil {
		t.Errorf("after Respond(nil): %v", err)
	}
}

func TestReceiverWaitFor(t *testing.T) {
	r := webhooktest.New(t, "")
	if err := r.WaitFor(1, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "0 of 1") {
		t.Fatalf("WaitFor with nothing sent = %v, want a timeout saying 0 of 1", err)
	}
	s := webhook.NewSender(webhook.SenderOptions{})
	const n = 40
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = payload(t, fmt.Sprintf("dlv_%d", i))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("dlv_%d", i)
			// Every delivery twice: WaitFor counts unique ones.
			for range 2 {
				if err := s.Send(t.Context(), r.URL, r.Secret, id, bodies[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	if err := r.WaitFor(n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := len(r.Unique()); got != n {
		t.Errorf("Unique = %d, want %d", got, n)
	}
	if got := len(r.Received()); got != 2*n {
		t.Errorf("Received = %d, want %d", got, 2*n)
	}
}
