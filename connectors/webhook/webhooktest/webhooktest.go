// Package webhooktest runs the receiver a SOC might put behind its webhook
// URL: a real HTTP server that verifies Standard Webhooks signatures, decodes
// Schakel's payload and records what it accepted. Tests across the project
// point deliveries at it instead of faking HTTP.
package webhooktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
)

// maxBody bounds a request body; Schakel's events are far smaller.
const maxBody = 16 << 20

// Received is one accepted delivery.
type Received struct {
	ID         string // webhook-id header
	DeliveryID string // delivery_id from the payload
	Type       string
	Event      gateway.Event
	Raw        []byte // the body exactly as signed
	At         time.Time
	Priority   string // top-level "priority", set for critical events
	Handling   string // top-level "handling", the policy's caveat (AMBER+STRICT)
}

// Receiver is a running webhook endpoint. URL and Secret are what a
// constituent's webhook entry holds.
type Receiver struct {
	URL    string
	Secret string

	srv *httptest.Server

	mu        sync.Mutex
	requests  int
	rejected  int
	malformed int
	received  []Received
	first     map[string]int // delivery_id -> index of its first arrival in received
	respond   func(n int) (status, retryAfter int)
	changed   chan struct{} // closed and replaced whenever received grows
}

// New starts a receiver that accepts messages signed with secret (a
// "whsec_…" value; empty generates one) and closes it on t.Cleanup.
func New(t testing.TB, secret string) *Receiver {
	t.Helper()
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			t.Fatalf("webhooktest: %v", err)
		}
	}
	// Fail here, not on every request, when the test passes a broken secret.
	if _, err := webhook.Sign(secret, "probe", time.Now(), nil); err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	r := &Receiver{Secret: secret, first: make(map[string]int), changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.Close)
	return r
}

// Close stops the server; later sends fail with connection refused, which
// tests use to simulate an endpoint that is down. New registers it with
// t.Cleanup, and calling it twice is harmless.
func (r *Receiver) Close() { r.srv.Close() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	n := r.requests
	r.requests++
	respond := r.respond
	r.mu.Unlock()

	if req.Method != http.MethodPost {
		r.fail(w, http.StatusMethodNotAllowed, "method: want POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		r.fail(w, http.StatusUnsupportedMediaType, "content-type: want application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		r.fail(w, http.StatusRequestEntityTooLarge, "body: "+err.Error())
		return
	}
	if err := webhook.Verify(r.Secret, req.Header.Get, body, time.Now(), 0); err != nil {
		r.mu.Lock()
		r.rejected++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p struct {
		Type       string        `json:"type"`
		DeliveryID string        `json:"delivery_id"`
		Priority   string        `json:"priority"`
		Handling   string        `json:"handling"`
		Event      gateway.Event `json:"event"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		r.fail(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if p.DeliveryID == "" {
		r.fail(w, http.StatusBadRequest, "delivery_id: missing")
		return
	}

	status, retryAfter := http.StatusOK, 0
	if respond != nil {
		status, retryAfter = respond(n)
	}
	if status == 0 {
		status = http.StatusOK
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	if status < 200 || status > 299 {
		http.Error(w, fmt.Sprintf("scripted answer to request %d", n), status)
		return
	}
	r.mu.Lock()
	if _, ok := r.first[p.DeliveryID]; !ok {
		r.first[p.DeliveryID] = len(r.received)
	}
	r.received = append(r.received, Received{
		ID:         req.Header.Get(webhook.HeaderID),
		DeliveryID: p.DeliveryID,
		Type:       p.Type,
		Event:      p.Event,
		Raw:        body,
		At:         time.Now(),
		Priority:   p.Priority,
		Handling:   p.Handling,
	})
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *Receiver) fail(w http.ResponseWriter, status int, msg string) {
	r.mu.Lock()
	r.malformed++
	r.mu.Unlock()
	http.Error(w, msg, status)
}

// Respond scripts the answers to correctly signed requests: f returns the
// status (and Retry-After seconds when > 0) for the n-th request, counting
// every request from 0 as Requests does. nil, or a status of 0, answers 200.
// Non-2xx answers are not recorded as received.
func (r *Receiver) Respond(f func(n int) (status int, retryAfter int)) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

// Received returns the accepted (2xx-answered) deliveries in arrival order,
// redeliveries included.
func (r *Receiver) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.received...)
}

// Unique returns the accepted deliveries by delivery_id, keeping the first
// arrival of each.
func (r *Receiver) Unique() map[string]Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]Received, len(r.first))
	for id, i := range r.first {
		m[id] = r.received[i]
	}
	return m
}

// Rejected counts requests refused with 401 for a missing or bad signature
// or timestamp.
func (r *Receiver) Rejected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

// Malformed counts requests refused for anything but the signature: wrong
// method or content type, oversized or undecodable body, no delivery_id.
func (r *Receiver) Malformed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.malformed
}

// Requests counts every request the receiver got.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// WaitFor blocks until at least n unique deliveries were accepted or timeout
// passes; the error says how many arrived.
func (r *Receiver) WaitFor(n int, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		got, changed := len(r.first), r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("webhooktest: %d of %d unique deliveries after %s (%d requests, %d rejected)",
				got, n, timeout, r.Requests(), r.Rejected())
		}
	}
}
