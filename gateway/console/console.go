// Package console is the operator console: server-rendered HTML pages at
// /console/ for the CSIRT's analysts. It reads and acts through the same
// core the admin API uses (store, audit, outbox, pipeline release, registry,
// policy), so nothing here decides what a recipient may see.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	// Base is where the console is mounted.
	Base = "/console"
	// SessionTTL is how long a login lasts.
	SessionTTL = 8 * time.Hour
	// CookieName is the session cookie.
	CookieName = "schakel_console"
	// ScanLimit bounds the indicator-value search: only the newest ScanLimit
	// events are read, so one search stays a bounded amount of Redis work.
	ScanLimit = 2000
	// LoginsPerMinute is how many login attempts one client IP may make.
	LoginsPerMinute = 10
	// DefaultKeyCheckTTL is the default for Options.KeyCheckTTL.
	DefaultKeyCheckTTL = 10 * time.Second
)

// Releaser sends a held event to named recipients (pipeline.Pipeline).
type Releaser interface {
	Release(ctx context.Context, eventID, by string, to []gateway.Addressee) (store.HeldItem, int, error)
}

// Source names a configured source.
type Source struct {
	Name, Type string
}

// Options are the parts of the gateway the console uses.
type Options struct {
	Redis    redis.UniversalClient
	Prefix   string // Redis key prefix (cfg.Redis.Prefix)
	Store    *store.Store
	Audit    *audit.Log
	Outbox   *outbox.Outbox
	Releaser Releaser
	// Push names the push channels that have a sink, so explanations say
	// deliver only where something would be sent.
	Push     policy.Push
	Registry *registry.Registry
	Limiter  *limit.Limiter
	// AdminKeys are the configured admin keys; store keys with RoleAdmin are
	// accepted too.
	AdminKeys []string
	// Sources are the configured sources, shown on the overview with their
	// events of the last 24 h and pollers' stored cursors.
	Sources []Source
	// Destinations, when set, refuses imported constituents whose webhook
	// or misp_push URL the egress policy blocks.
	Destinations interface {
		CheckConstituent(*gateway.Constituent) []gateway.FieldError
	}
	// Secure marks the session cookie Secure (public_url is https).
	Secure bool
	// KeyCheckTTL is how long the console trusts that a session's store-issued
	// admin key is still valid before asking Redis again; zero means
	// DefaultKeyCheckTTL. It bounds how long a revoked key's sessions live on
	// any replica.
	KeyCheckTTL time.Duration
	Log         *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves the console pages.
type Console struct {
	o           Options
	admin       [][sha256.Size]byte
	pages       map[string]*template.Template
	adminKeys   adminKeyCache
	contactKeys keyReport
}

// New parses the embedded templates and returns a console.
func New(o Options) (*Console, error) {
	if o.Store == nil || o.Audit == nil || o.Outbox == nil || o.Releaser == nil || o.Registry == nil || o.Redis == nil {
		return nil, errors.New("console: redis, store, audit, outbox, releaser and registry are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Prefix == "" {
		o.Prefix = "schakel"
	}
	if o.KeyCheckTTL <= 0 {
		o.KeyCheckTTL = DefaultKeyCheckTTL
	}
	c := &Console{o: o, pages: map[string]*template.Template{}, adminKeys: adminKeyCache{m: map[string]time.Time{}}}
	for _, k := range o.AdminKeys {
		c.admin = append(c.admin, sha256.Sum256([]byte(k)))
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	for _, n := range names {
		base := n[len("templates/") : len(n)-len(".html")]
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", base, err)
		}
		c.pages[base] = t
	}
	return c, nil
}

// Mount adds the console routes to app.
func (c *Console) Mount(app *fiber.App) {
	static, _ := fs.Sub(staticFS, "static")
	g := app.Group(Base, c.headers)
	g.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(static), MaxAge: 3600}))
	g.Get("/login", c.loginPage)
	g.Post("/login", c.login)
	a := g.Group("", c.requireSession)
	a.Post("/logout", c.logout)
	a.Get("/", c.overview)
	a.Get("/events", c.events)
	a.Get("/events/:id", c.event)
	a.Get("/held", c.held)
	a.Post("/held/:id/release", c.release)
	a.Get("/dead-letters", c.deadLetters)
	a.Post("/dead-letters/:id/retry", c.retry)
	a.Post("/dead-letters/:id/discard", c.discard)
	a.Get("/constituents", c.constituents)
	a.Post("/constituents/import", c.importConstituents)
	a.Get("/constituents/:id", c.constituent)
	a.Post("/constituents/:id/keys", c.issueKey)
	a.Post("/constituents/:id/keys/:hash/revoke", c.revokeKey)
}

// headers keep the console's pages out of caches and frames and forbid
// scripts outright: the console needs none.
func (c *Console) headers(ctx *fiber.Ctx) error {
	ctx.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	ctx.Set("X-Frame-Options", "DENY")
	ctx.Set("X-Content-Type-Options", "nosniff")
	ctx.Set("Referrer-Policy", "no-referrer")
	ctx.Set(fiber.HeaderCacheControl, "no-store")
	// Browsers never encode what they post, and fasthttp's form parsing
	// inflates a gzip body without a bound (a 1 MiB bomb becomes 1 GiB),
	// before any session or key is checked.
	if enc := strings.TrimSpace(ctx.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return c.render(ctx.Status(fiber.StatusUnsupportedMediaType), "error", page{Title: "Unsupported Media Type",
			Error: "Content-Encoding " + enc + " is not accepted; send the form uncompressed"})
	}
	return ctx.Next()
}

// session is what a login stores in Redis. Key is the SHA-256 (hex) of the
// admin key it was made with: every request checks that key is still valid,
// so removing or revoking a key ends its sessions on every replica.
type session struct {
	Actor string `json:"actor"`
	CSRF  string `json:"csrf"`
	Key   string `json:"key"`
}

const sessionLocal = "console_session"

func (c *Console) sessionKey(id string) string {
	// Only a hash of the cookie is stored: reading Redis does not give
	// anyone a usable session.
	h := sha256.Sum256([]byte(id))
	return c.o.Prefix + ":console:session:" + hex.EncodeToString(h[:])
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// adminActor returns the audit actor for key when it is an admin key.
func (c *Console) adminActor(ctx context.Context, key string) (string, bool, error) {
	if key == "" {
		return "", false, nil
	}
	h := sha256.Sum256([]byte(key))
	if !c.configured(h) {
		sc, err := c.o.Store.Authenticate(ctx, key)
		if errors.Is(err, gateway.ErrNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		if sc.Role != store.RoleAdmin {
			return "", false, nil
		}
	}
	return "admin:" + store.KeyHash(key), true, nil
}

// configured reports whether h is the hash of a key from admin.keys_file.
func (c *Console) configured(h [sha256.Size]byte) bool {
	ok := 0
	for _, a := range c.admin {
		ok |= subtle.ConstantTimeCompare(h[:], a[:])
	}
	return ok == 1
}

// adminKeyCache remembers, per key hash, until when a store-issued admin key was
// last seen valid. Only positive answers are kept: a revoked key is asked
// about again, and fails again, on every request.
type adminKeyCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// keyValid reports whether the admin key with SHA-256 hexHash is still
// configured or still issued by the store.
func (c *Console) keyValid(ctx context.Context, hexHash string) (bool, error) {
	var h [sha256.Size]byte
	if n, err := hex.Decode(h[:], []byte(hexHash)); err != nil || n != sha256.Size {
		return false, nil
	}
	if c.configured(h) {
		return true, nil
	}
	now := c.o.Now()
	c.adminKeys.mu.Lock()
	until, ok := c.adminKeys.m[hexHash]
	c.adminKeys.mu.Unlock()
	if ok && now.Before(until) {
		return true, nil
	}
	// Keys reads Redis directly, not Authenticate's per-process cache, so a
	// revoke on another replica is seen here within KeyCheckTTL.
	infos, err := c.o.Store.Keys(ctx, store.Scope{Role: store.RoleAdmin})
	if err != nil {
		return false, fmt.Errorf("check admin key: %w", err)
	}
	valid := slices.ContainsFunc(infos, func(k store.KeyInfo) bool { return strings.HasPrefix(hexHash, k.Hash) })
	c.adminKeys.mu.Lock()
	defer c.adminKeys.mu.Unlock()
	if valid {
		c.adminKeys.m[hexHash] = now.Add(c.o.KeyCheckTTL)
	} else {
		delete(c.adminKeys.m, hexHash)
	}
	// Sessions last hours and keys are few; expired entries are swept so the
	// map stays as small as the set of keys in use.
	for k, t := range c.adminKeys.m {
		if !now.Before(t) {
			delete(c.adminKeys.m, k)
		}
	}
	return valid, nil
}

func (c *Console) newSession(ctx context.Context, actor, key string) (string, session, error) {
	id := randomHex(32)
	s := session{Actor: actor, CSRF: randomHex(32), Key: sha256Hex(key)}
	blob, _ := json.Marshal(s)
	if err := c.o.Redis.Set(ctx, c.sessionKey(id), blob, SessionTTL).Err(); err != nil {
		return "", session{}, fmt.Errorf("store session: %w", err)
	}
	return id, s, nil
}

func (c *Console) setCookie(ctx *fiber.Ctx, value string, expires time.Time) {
	ctx.Cookie(&fiber.Cookie{Name: CookieName, Value: value, Path: Base, HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: c.o.Secure, Expires: expires, SessionOnly: value != "" && expires.IsZero()})
}

// requireSession admits requests with a live session and checks the CSRF
// token of every POST; others go to the login page.
func (c *Console) requireSession(ctx *fiber.Ctx) error {
	id := ctx.Cookies(CookieName)
	if id == "" {
		return ctx.Redirect(Base+"/login", fiber.StatusSeeOther)
	}
	blob, err := c.o.Redis.Get(ctx.UserContext(), c.sessionKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return ctx.Redirect(Base+"/login?expired=1", fiber.StatusSeeOther)
	}
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, fmt.Errorf("read session: %w", err))
	}
	var s session
	if err := json.Unmarshal(blob, &s); err != nil || s.Actor == "" || s.CSRF == "" {
		return ctx.Redirect(Base+"/login", fiber.StatusSeeOther)
	}
	valid, err := c.keyValid(ctx.UserContext(), s.Key)
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	if !valid {
		// The key was removed or revoked: the session ends with it.
		if err := c.o.Redis.Del(ctx.UserContext(), c.sessionKey(id)).Err(); err != nil {
			c.o.Log.WarnContext(ctx.UserContext(), "console: end session of a revoked key", "error", err)
		}
		c.setCookie(ctx, "", time.Unix(1, 0))
		c.audit(ctx.UserContext(), audit.Record{Actor: s.Actor, Action: "console.session_ended", Details: map[string]string{"reason": "key revoked"}})
		return ctx.Redirect(Base+"/login?expired=1", fiber.StatusSeeOther)
	}
	if ctx.Method() == fiber.MethodPost {
		got := ctx.FormValue("csrf")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			return c.render(ctx.Status(fiber.StatusForbidden), "error", page{Title: "Forbidden", Error: "the form's CSRF token is missing or wrong; reload the page and try again"})
		}
	}
	ctx.Locals(sessionLocal, s)
	ctx.Locals("console_session_id", id)
	return ctx.Next()
}

func sessionOf(ctx *fiber.Ctx) session {
	s, _ := ctx.Locals(sessionLocal).(session)
	return s
}

func (c *Console) loginPage(ctx *fiber.Ctx) error {
	p := page{Title: "Log in"}
	if ctx.Query("expired") != "" {
		p.Notice = "Your session has ended; log in again."
	}
	return c.render(ctx, "login", p)
}

func (c *Console) login(ctx *fiber.Ctx) error {
	rctx := ctx.UserContext()
	if c.o.Limiter != nil {
		d, err := c.o.Limiter.Allow(rctx, "console-login:"+ctx.IP(), limit.PerMinute(LoginsPerMinute))
		if err != nil {
			return c.fail(ctx, fiber.StatusServiceUnavailable, fmt.Errorf("login limit: %w", err))
		}
		if !d.Allowed {
			secs := int(d.RetryAfter/time.Second) + 1
			ctx.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			return c.render(ctx.Status(fiber.StatusTooManyRequests), "login", page{Title: "Log in",
				Error: fmt.Sprintf("too many login attempts from your address; try again in %d s", secs)})
		}
	}
	actor, ok, err := c.adminActor(rctx, ctx.FormValue("key"))
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	if !ok {
		c.audit(rctx, audit.Record{Actor: "anonymous", Action: "console.login_failed", Details: map[string]string{"ip": ctx.IP()}})
		return c.render(ctx.Status(fiber.StatusUnauthorized), "login", page{Title: "Log in", Error: "key: not an admin key"})
	}
	id, _, err := c.newSession(rctx, actor, ctx.FormValue("key"))
	if err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, err)
	}
	c.setCookie(ctx, id, time.Time{})
	c.audit(rctx, audit.Record{Actor: actor, Action: "console.login", Details: map[string]string{"ip": ctx.IP()}})
	return ctx.Redirect(Base+"/", fiber.StatusSeeOther)
}

func (c *Console) logout(ctx *fiber.Ctx) error {
	s := sessionOf(ctx)
	id, _ := ctx.Locals("console_session_id").(string)
	if err := c.o.Redis.Del(ctx.UserContext(), c.sessionKey(id)).Err(); err != nil {
		return c.fail(ctx, fiber.StatusServiceUnavailable, fmt.Errorf("end session: %w", err))
	}
	c.setCookie(ctx, "", time.Unix(1, 0))
	c.audit(ctx.UserContext(), audit.Record{Actor: s.Actor, Action: "console.logout"})
	return ctx.Redirect(Base+"/login", fiber.StatusSeeOther)
}

// audit appends rec; a failure is logged, the action already happened.
func (c *Console) audit(ctx context.Context, rec audit.Record) {
	rec.Time = c.o.Now().UTC()
	if err := c.o.Audit.Append(ctx, rec); err != nil {
		c.o.Log.WarnContext(ctx, "console audit append failed", "action", rec.Action, "error", err)
	}
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	CSRF   string
	Actor  string
	Notice string
	Error  string
	Data   any
}

func (c *Console) render(ctx *fiber.Ctx, name string, p page) error {
	t, ok := c.pages[name]
	if !ok {
		return fmt.Errorf("console: no template %s", name)
	}
	if s, ok := ctx.Locals(sessionLocal).(session); ok {
		p.CSRF, p.Actor = s.CSRF, s.Actor
	}
	ctx.Type("html", "utf-8")
	return t.ExecuteTemplate(ctx.Response().BodyWriter(), "layout", p)
}

// fail shows an error page; the detail goes to the log, not the browser.
func (c *Console) fail(ctx *fiber.Ctx, status int, err error) error {
	c.o.Log.ErrorContext(ctx.UserContext(), "console request failed", "path", ctx.Path(), "error", err)
	return c.render(ctx.Status(status), "error", page{Title: "Error", Error: "the gateway could not complete this request; see the log"})
}
