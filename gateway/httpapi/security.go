package httpapi

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/store"
)

// DefaultAuthFailuresPerMinute is how many wrong keys one client IP may send
// a minute before every keyed path answers it 429.
const DefaultAuthFailuresPerMinute = 20

func (s *Server) listKeys(c *fiber.Ctx) error {
	role := store.Role(c.Query("role"))
	switch role {
	case "", store.RoleAdmin, store.RoleSource, store.RoleConstituent:
	default:
		return fail(c, fiber.StatusBadRequest, "invalid query", gateway.FieldError{Field: "role", Message: "must be admin, source or constituent"})
	}
	keys, err := s.o.Store.ListKeys(c.UserContext(), role, c.Query("name"))
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []store.KeyInfo{}
	}
	return c.JSON(fiber.Map{"keys": keys})
}

func (s *Server) revokeKey(c *fiber.Ctx) error {
	h := strings.ToLower(c.Params("hash"))
	// Look the scope up first so the audit record says whose key it was.
	keys, err := s.o.Store.ListKeys(c.UserContext(), "", "")
	if err != nil {
		return err
	}
	var info store.KeyInfo
	for _, k := range keys {
		if len(h) >= len(k.Hash) && k.Hash == h[:len(k.Hash)] {
			info = k
		}
	}
	if err := s.o.Store.RevokeKey(c.UserContext(), h); err != nil {
		return err
	}
	s.auditAdmin(c, audit.Record{Action: audit.ActionKeyRevoked, Recipient: info.Scope.Name,
		Details: map[string]string{"role": string(info.Scope.Role), "key_hash": info.Hash}})
	return c.SendStatus(fiber.StatusNoContent)
}

// authFailures limits wrong keys per client IP with GCRA in Redis
// ("authfail:<ip>", shared by all replicas). Once an IP is over the limit it
// is blocked locally for the time the limiter names, before any key is
// checked, so a guesser cannot tell a right key from a wrong one by the
// status. Another replica blocks the IP at its first wrong key.
type authFailures struct {
	lim  Limiter
	rate int

	mu      sync.Mutex
	blocked map[string]time.Time
}

const maxBlockedIPs = 100000

func newAuthFailures(lim Limiter, perMinute int) *authFailures {
	return &authFailures{lim: lim, rate: perMinute, blocked: make(map[string]time.Time)}
}

func (a *authFailures) enabled() bool { return a != nil && a.lim != nil && a.rate > 0 }

// blockedFor reports how long ip is still blocked; 0 when it is not.
func (a *authFailures) blockedFor(ip string, now time.Time) time.Duration {
	if !a.enabled() {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.blocked[ip]
	if !ok {
		return 0
	}
	if !now.Before(until) {
		delete(a.blocked, ip)
		return 0
	}
	return until.Sub(now)
}

// failed counts a wrong key from ip and returns how long the IP is blocked
// when this failure went over the limit.
func (a *authFailures) failed(ctx context.Context, ip string, now time.Time) (time.Duration, error) {
	if !a.enabled() {
		return 0, nil
	}
	d, err := a.lim.Allow(ctx, "authfail:"+ip, limit.PerMinute(a.rate))
	if err != nil {
		return 0, err
	}
	if d.Allowed {
		return 0, nil
	}
	wait := max(d.RetryAfter, time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.blocked) >= maxBlockedIPs {
		for k, until := range a.blocked {
			if !now.Before(until) {
				delete(a.blocked, k)
			}
		}
		if len(a.blocked) >= maxBlockedIPs {
			clear(a.blocked) // bound memory; the Redis limiter still counts
		}
	}
	a.blocked[ip] = now.Add(wait)
	return wait, nil
}

func tooManyFailures(c *fiber.Ctx, wait time.Duration, onFail func(c *fiber.Ctx, status int, msg string) error) error {
	secs := int(wait.Seconds() + 0.999)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(secs, 1)))
	return onFail(c, fiber.StatusTooManyRequests, "too many failed authentications from this address; retry later")
}
