package httpapi

import (
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/store"
)

// Caller is who made a request, once authenticated.
type Caller struct {
	Scope store.Scope
	Key   string // short hash of the key, for audit records
}

// Actor names the caller in audit records.
func (c Caller) Actor() string { return string(c.Scope.Role) + ":" + c.Key }

const callerKey = "schakel_caller"

// CallerOf returns the authenticated caller of a request.
func CallerOf(c *fiber.Ctx) (Caller, bool) {
	v, ok := c.Locals(callerKey).(Caller)
	return v, ok
}

// KeyFrom extracts a key from the forms ARCHITECTURE §7 accepts:
// "Authorization: <key>", "Authorization: Bearer <key>", "X-MISP-AUTH: <key>"
// and HTTP Basic with the key as password; and, for TAXII clients,
// "Authorization: Token <key>", Basic with the key as user name, "X-API-Key".
func KeyFrom(c *fiber.Ctx) string {
	if k := strings.TrimSpace(c.Get("X-MISP-AUTH")); k != "" {
		// MISP allows a comma-separated list; the first is enough.
		k, _, _ = strings.Cut(k, ",")
		return strings.TrimSpace(k)
	}
	h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	switch {
	case h == "":
		return strings.TrimSpace(c.Get("X-API-Key"))
	case len(h) > 7 && strings.EqualFold(h[:7], "bearer "):
		return strings.TrimSpace(h[7:])
	case len(h) > 6 && strings.EqualFold(h[:6], "token "):
		// taxii2-client's TokenAuth and OpenCTI.
		return strings.TrimSpace(h[6:])
	case len(h) > 6 && strings.EqualFold(h[:6], "basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		if err != nil {
			return ""
		}
		user, pw, _ := strings.Cut(string(raw), ":")
		if pw == "" {
			return user // some clients put the key in the user name
		}
		return pw
	}
	return h
}

// Auth lets connectors protect their routes with the gateway's keys.
type Auth struct{ s *Server }

// Require returns middleware admitting callers with one of roles. onFail
// writes the protocol's own error shape (MISP and TAXII differ); nil uses
// the JSON error of ARCHITECTURE §7.
func (a *Auth) Require(onFail func(c *fiber.Ctx, status int, msg string) error, roles ...store.Role) fiber.Handler {
	return a.s.authenticate(onFail, roles...)
}

// IngestLimit returns the per-key ingest limit (429 with Retry-After) for
// connector routes that ingest (MISP push-in, the TAXII inbox), so every
// ingest path shares one limit per key. Use it after Require.
func (a *Auth) IngestLimit() fiber.Handler { return a.s.ingestLimit }

// Optional returns middleware that authenticates when a key is present and
// lets anonymous callers through (public feeds).
func (a *Auth) Optional(roles ...store.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if KeyFrom(c) == "" {
			return c.Next()
		}
		return a.s.authenticate(nil, roles...)(c)
	}
}

func (s *Server) requireRole(roles ...store.Role) fiber.Handler { return s.authenticate(nil, roles...) }

func (s *Server) authenticate(onFail func(c *fiber.Ctx, status int, msg string) error, roles ...store.Role) fiber.Handler {
	if onFail == nil {
		onFail = func(c *fiber.Ctx, status int, msg string) error { return fail(c, status, msg) }
	}
	return func(c *fiber.Ctx) error {
		key := KeyFrom(c)
		if key == "" {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="schakel"`)
			return onFail(c, fiber.StatusUnauthorized, "missing API key (Authorization header)")
		}
		if wait := s.authFail.blockedFor(c.IP(), time.Now()); wait > 0 {
			return tooManyFailures(c, wait, onFail)
		}
		var sc store.Scope
		if s.isAdminKey(key) {
			sc = store.Scope{Role: store.RoleAdmin}
		} else {
			var err error
			sc, err = s.o.Store.Authenticate(c.UserContext(), key)
			if errors.Is(err, gateway.ErrNotFound) {
				wait, lerr := s.authFail.failed(c.UserContext(), c.IP(), time.Now())
				if lerr != nil {
					s.o.Log.WarnContext(c.UserContext(), "counting a failed authentication failed", "error", lerr)
				}
				if wait > 0 {
					return tooManyFailures(c, wait, onFail)
				}
				return onFail(c, fiber.StatusUnauthorized, "invalid API key")
			}
			if err != nil {
				return err
			}
		}
		if !slices.Contains(roles, sc.Role) {
			return onFail(c, fiber.StatusForbidden, "this key may not use "+c.Path())
		}
		c.Locals(callerKey, Caller{Scope: sc, Key: hashHex(key)})
		return c.Next()
	}
}

// ingestLimit applies the per-key ingest limit: 429 with Retry-After.
func (s *Server) ingestLimit(c *fiber.Ctx) error {
	if s.o.IngestPerMinute <= 0 || s.o.Limiter == nil {
		return c.Next()
	}
	caller, _ := CallerOf(c)
	d, err := s.o.Limiter.Allow(c.UserContext(), "ingest:"+caller.Key, limit.PerMinute(s.o.IngestPerMinute))
	if err != nil {
		return err
	}
	if !d.Allowed {
		secs := int(d.RetryAfter.Seconds() + 0.999)
		if secs < 1 {
			secs = 1
		}
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		s.o.Metrics.Rejected.WithLabelValues(metricSource(caller.Scope), "limit").Inc()
		return fail(c, fiber.StatusTooManyRequests, "ingest rate limit exceeded for this key")
	}
	return c.Next()
}

// metricSource is the source label for a caller: the source's name, or
// the key's role for other keys (the TAXII inbox and MISP push-in apply the
// ingest limit before they check the role), so that no constituent id
// becomes a metric label.
func metricSource(sc store.Scope) string {
	if sc.Role == store.RoleSource {
		return sc.Name
	}
	return "role:" + string(sc.Role)
}
