package misp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/schakel/schakel/gateway"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// SinkOptions configure the misp_push channel.
type SinkOptions struct {
	Org       Org
	HTTP      *http.Client  // default: one with Timeout
	Timeout   time.Duration // per request; default 30s
	UserAgent string
	// VersionTTL is how long a remote's getVersion answer is trusted.
	VersionTTL time.Duration
	Log        *slog.Logger
}

// Sink is the misp_push channel: it pushes a constituent's projection of an
// event to the constituent's own MISP (misp_push: {url, key}) the way a
// MISP pushes to a sync server — getVersion (cached), then per event part
// HEAD /events/view/{uuid} and /events/add or /events/edit. MISP's "not
// newer than the local copy" counts as delivered; every other failure goes
// back as it came (an *httpstatus.StatusError, a transport error) for the
// dispatcher to classify as it does a webhook's.
//
// The event carries the distribution the server API serves (CLEAR 3, GREEN
// 2, AMBER and AMBER+STRICT 1), so a receiving Schakel reads the same TLP
// as it would by pulling; a receiving MISP never pushes distribution 1 on
// to other instances, so AMBER stays on the constituent's own MISP.
type Sink struct {
	enc      mispmap.EncodeOptions
	http     *http.Client
	ua       string
	ttl      time.Duration
	log      *slog.Logger
	mu       sync.Mutex
	versions map[[32]byte]time.Time // url+key → when getVersion last answered
}

// NewSink returns the channel sink for the dispatcher.
func NewSink(o SinkOptions) (*Sink, error) {
	if strings.TrimSpace(o.Org.Name) == "" {
		return nil, errors.New("misp push: org name is required")
	}
	if _, err := uuid.Parse(o.Org.UUID); err != nil {
		return nil, fmt.Errorf("misp push: org uuid %q: %w", o.Org.UUID, err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: o.Timeout}
	}
	if o.VersionTTL <= 0 {
		o.VersionTTL = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sink{
		enc:  mispmap.EncodeOptions{OrgName: o.Org.Name, OrgUUID: strings.ToLower(o.Org.UUID), Published: true},
		http: o.HTTP, ua: o.UserAgent, ttl: o.VersionTTL, log: o.Log.With("connector", "misp_push"),
		versions: map[[32]byte]time.Time{},
	}, nil
}

// Deliver pushes ev (already projected for c by the dispatcher) to c's MISP.
func (s *Sink) Deliver(ctx context.Context, d gateway.Delivery, c *gateway.Constituent, ev *gateway.Event, _ string) error {
	if c == nil || c.MISPPush == nil {
		return gateway.Permanent(fmt.Errorf("misp_push delivery %s: the recipient has no misp_push", d.ID))
	}
	if c.MISPPush.URL != d.Target {
		return gateway.Permanent(fmt.Errorf("constituent %s no longer pushes to %s", c.ID, d.Target))
	}
	client, err := NewClient(c.MISPPush.URL, c.MISPPush.Key, ClientOptions{HTTP: s.http, UserAgent: s.ua})
	if err != nil {
		return gateway.Permanent(fmt.Errorf("constituent %s misp_push: %w", c.ID, err))
	}
	e, err := mispmap.EncodeEvent(ev, s.enc)
	if err != nil {
		return gateway.Permanent(fmt.Errorf("encode event %s for misp_push: %w", ev.ID, err))
	}
	if err := s.checkVersion(ctx, client, c); err != nil {
		return err
	}
	cuts := plan(e, PartSize)
	for k := range cuts {
		p := part(e, cuts, k)
		body, err := marshalEvent(served(p, false))
		if err != nil {
			return gateway.Permanent(err)
		}
		exists, err := client.Exists(ctx, p.UUID)
		if err != nil {
			return err
		}
		if err := client.Save(ctx, p.UUID, body, exists); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion asks getVersion once per TTL and target, as MISP does before
// a push; a remote that answers but denies sync is logged, not refused: a
// MISP user with add rights can still receive events.
func (s *Sink) checkVersion(ctx context.Context, client *Client, c *gateway.Constituent) error {
	k := sha256.Sum256([]byte(c.MISPPush.URL + "\x00" + c.MISPPush.Key))
	s.mu.Lock()
	at, ok := s.versions[k]
	s.mu.Unlock()
	if ok && time.Since(at) < s.ttl {
		return nil
	}
	v, err := client.Version(ctx)
	if err != nil {
		return err
	}
	if !v.PermSync {
		s.log.InfoContext(ctx, "constituent MISP key has no sync permission; pushing as a regular user", "constituent", c.ID, "misp_version", v.Version)
	}
	s.mu.Lock()
	s.versions[k] = time.Now()
	s.mu.Unlock()
	return nil
}
