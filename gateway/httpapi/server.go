// Package httpapi is Schakel's one HTTP surface (ARCHITECTURE §7): health,
// metrics, keyed ingest and the admin API. Connectors (MISP, TAXII, feed,
// signed-webhook ingest) mount their routes on the same app with Mount.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

// SourceConfig is what the API needs to know of a configured source.
type SourceConfig struct {
	Name       string
	Type       string // api, webhook, misp, …
	DefaultTLP gateway.TLP
	// Own: the relay's own analysts author this source (config own: true).
	Own    bool
	Format string
}

// Limiter is the per-key ingest limiter.
type Limiter interface {
	Allow(ctx context.Context, key string, lim limit.Limit) (limit.Decision, error)
}

// Options wire the API.
type Options struct {
	Redis           redis.UniversalClient
	Store           *store.Store
	Audit           *audit.Log
	Outbox          *outbox.Outbox
	Pipeline        *pipeline.Pipeline
	Registry        *registry.Registry
	Limiter         Limiter
	Metrics         *metrics.Metrics
	Gatherer        prometheus.Gatherer
	Log             *slog.Logger
	AdminKeys       []string // plaintext from admin.keys_file; kept only as hashes
	Sources         []SourceConfig
	IngestPerMinute int
	BodyLimit       int
	ReadTimeout     time.Duration

	// Destinations, when set, refuses constituents whose webhook or
	// misp_push URL points where Schakel may not connect (egress policy).
	Destinations Destinations

	// MetricsKey, when set, is the bearer key GET /metrics requires.
	MetricsKey string

	// AuthFailuresPerMinute is how many wrong keys one client IP may send a
	// minute; 0 means DefaultAuthFailuresPerMinute, negative disables.
	AuthFailuresPerMinute int
}

// Destinations judges a constituent's outbound URLs (*egress.Policy).
type Destinations interface {
	CheckConstituent(*gateway.Constituent) []gateway.FieldError
}

// Server is the fiber app with its dependencies.
type Server struct {
	app      *fiber.App
	o        Options
	admin    [][32]byte
	sources  map[string]SourceConfig
	authFail *authFailures
	linger   time.Duration // how long a close drains an unread request; lingerTime when 0
	sealed   sync.Once     // the admin API is added after the mounts (seal)
}

// New builds the app and its routes.
func New(o Options) *Server {
	if o.BodyLimit <= 0 {
		o.BodyLimit = 10 << 20
	}
	if o.AuthFailuresPerMinute == 0 {
		o.AuthFailuresPerMinute = DefaultAuthFailuresPerMinute
	}
	s := &Server{o: o, sources: make(map[string]SourceConfig), authFail: newAuthFailures(o.Limiter, o.AuthFailuresPerMinute)}
	for _, k := range o.AdminKeys {
		s.admin = append(s.admin, sha256.Sum256([]byte(k)))
	}
	for _, sc := range o.Sources {
		s.sources[sc.Name] = sc
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "schakel",
		BodyLimit:             o.BodyLimit,
		ReadTimeout:           o.ReadTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
	})
	s.routes()
	return s
}

// App exposes the fiber app (for tests with app.Test and for Listen).
func (s *Server) App() *fiber.App {
	s.seal()
	return s.app
}

// Serve serves on ln until Shutdown. Connections close lingering (see
// lingerListener), so a client that sent an oversized body reads its 413.
func (s *Server) Serve(ln net.Listener) error {
	wait := s.linger
	if wait <= 0 {
		wait = lingerTime
	}
	s.seal()
	return s.app.Listener(lingerListener{Listener: ln, wait: wait})
}

// Shutdown stops accepting and waits for in-flight requests up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

// Mount lets a connector add routes, before the server is served (the admin
// API is added after them). auth checks keys for the given roles.
func (s *Server) Mount(f func(app *fiber.App, auth *Auth)) { f(s.app, &Auth{s: s}) }

func (s *Server) routes() {
	a := s.app
	a.Use(s.requestID)
	a.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	a.Get("/readyz", s.readyz)
	if s.o.Gatherer != nil {
		a.Get("/metrics", s.metricsAuth, adaptor.HTTPHandler(promhttp.HandlerFor(s.o.Gatherer, promhttp.HandlerOpts{})))
	}
	v1 := a.Group("/api/v1")
	v1.Post("/events", s.requireRole(store.RoleSource), s.ingestLimit, s.postEvent)
}

// seal adds the admin API last, once every connector has mounted its routes:
// its guard covers everything under /api/v1 that no route before it
// answered, so an unknown path answers 401 to a caller without a key rather
// than revealing which paths exist, while a connector's own route under
// /api/v1 (signed-webhook ingest) keeps its own authentication.
func (s *Server) seal() { s.sealed.Do(s.adminRoutes) }

func (s *Server) adminRoutes() {
	adm := s.app.Group("/api/v1", s.requireRole(store.RoleAdmin))
	adm.Get("/events", s.listEvents)
	adm.Get("/events/:id", s.getEvent)
	adm.Get("/constituents", s.listConstituents)
	adm.Get("/constituents/:id", s.getConstituent)
	adm.Put("/constituents/:id", s.putConstituent)
	adm.Delete("/constituents/:id", s.deleteConstituent)
	adm.Post("/constituents/:id/keys", s.constituentKey)
	adm.Post("/sources/:name/keys", s.sourceKey)
	adm.Get("/keys", s.listKeys)
	adm.Delete("/keys/:hash", s.revokeKey)
	adm.Get("/deliveries", s.deliveries)
	adm.Get("/explain", s.explain)
	adm.Get("/held", s.listHeld)
	adm.Post("/held/:id/release", s.release)
	adm.Get("/dead-letters", s.deadLetters)
	adm.Post("/dead-letters/:id/retry", s.retryDead)
	adm.Delete("/dead-letters/:id", s.discardDead)
}

// metricsAuth requires "Authorization: Bearer <MetricsKey>" when a key is
// configured. Hashing both sides first makes the comparison constant-time
// in the length too.
func (s *Server) metricsAuth(c *fiber.Ctx) error {
	if s.o.MetricsKey == "" {
		return c.Next()
	}
	scheme, key, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	got := sha256.Sum256([]byte(strings.TrimSpace(key)))
	want := sha256.Sum256([]byte(s.o.MetricsKey))
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="schakel metrics"`)
		return fail(c, fiber.StatusUnauthorized, "metrics need Authorization: Bearer <metrics key>")
	}
	return c.Next()
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.o.Redis.Ping(ctx).Err(); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": "redis: " + err.Error()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get("X-Request-Id")
	if id == "" || len(id) > 128 {
		id = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	c.Set("X-Request-Id", id)
	c.Locals("request_id", id)
	return c.Next()
}

// ErrorBody is the JSON error shape of ARCHITECTURE §7.
type ErrorBody struct {
	Error   string               `json:"error"`
	Details []gateway.FieldError `json:"details,omitempty"`
}

func fail(c *fiber.Ctx, status int, msg string, details ...gateway.FieldError) error {
	return c.Status(status).JSON(ErrorBody{Error: msg, Details: details})
}

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		if fe.Code == fiber.StatusRequestEntityTooLarge {
			msg = "request body is larger than " + strconv.Itoa(s.o.BodyLimit) + " bytes"
		}
		return fail(c, fe.Code, msg)
	}
	var ve *gateway.ValidationError
	if errors.As(err, &ve) {
		return fail(c, fiber.StatusBadRequest, "invalid input", ve.Fields...)
	}
	if errors.Is(err, gateway.ErrNotFound) {
		return fail(c, fiber.StatusNotFound, "not found")
	}
	if errors.Is(err, store.ErrOtherSource) {
		return fail(c, fiber.StatusConflict, "event id belongs to another source",
			gateway.FieldError{Field: "/id", Message: "a source may only update its own events"})
	}
	s.o.Log.ErrorContext(c.UserContext(), "request failed", "path", c.Path(), "method", c.Method(),
		"request_id", c.Locals("request_id"), "error", err)
	if errors.Is(err, context.DeadlineExceeded) || isRedisDown(err) {
		c.Set("Retry-After", "5")
		return fail(c, fiber.StatusServiceUnavailable, "temporarily unavailable; retry later")
	}
	return fail(c, fiber.StatusInternalServerError, "internal error")
}

func isRedisDown(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) || errors.Is(err, redis.ErrClosed) || redis.IsOOMError(err)
}

// hashHex is how keys appear in audit records and logs: a short hash prefix.
func hashHex(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:6])
}

func (s *Server) isAdminKey(key string) bool {
	h := sha256.Sum256([]byte(key))
	ok := 0
	for _, a := range s.admin {
		ok |= subtle.ConstantTimeCompare(h[:], a[:])
	}
	return ok == 1
}
