// Package taxii is Schakel's TAXII 2.1 end: a server whose collections are
// the pull views of gateway/views expanded to STIX objects, with an inbox
// that feeds the pipeline, and a poller that ingests upstream collections
// (source type "taxii").
package taxii

import (
	"context"
	"encoding/base64"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

// Views is what the server reads collections from.
type Views interface {
	List(ctx context.Context, who views.Viewer, q views.Query) ([]views.Entry, string, error)
	Project(who views.Viewer, ev *gateway.Event) (*gateway.Event, error)
}

// Events loads the stored version a view entry names.
type Events interface {
	EventVersion(ctx context.Context, id, version string) (*gateway.Event, error)
}

// Authenticator checks keys (httpapi.Auth).
type Authenticator interface {
	Require(onFail func(c *fiber.Ctx, status int, msg string) error, roles ...store.Role) fiber.Handler
}

// Options configure the server.
type Options struct {
	Views  Views
	Events Events
	Ingest gateway.Ingester
	Redis  redis.UniversalClient
	Prefix string // Redis key prefix
	Log    *slog.Logger
	// PublicURL, when https, makes the discovery resource name the API root
	// absolutely; otherwise it is given relative ("/taxii2/api/").
	PublicURL string
	Title     string // server and API root title; default "Schakel"
	Contact   string
	// MaxContentLength is the largest body the inbox takes (the gateway's
	// body limit).
	MaxContentLength int
	// Sources are the configured sources by name: a source key posting to
	// the inbox ingests as that source, with its default TLP.
	Sources map[string]gateway.Source
	// StatusTTL is how long status resources are kept; at least 24 h.
	StatusTTL time.Duration
}

// Server serves /taxii2/. It is safe for concurrent use.
type Server struct {
	views  Views
	events Events
	ingest gateway.Ingester
	rdb    redis.UniversalClient
	prefix string
	log    *slog.Logger
	o      Options
	index  *objectIndex
	now    func() time.Time
}

// DefaultStatusTTL keeps status resources for two days (TAXII asks ≥ 24 h).
const DefaultStatusTTL = 48 * time.Hour

// NewServer returns a TAXII server over the views.
func NewServer(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Title == "" {
		o.Title = "Schakel"
	}
	if o.MaxContentLength <= 0 {
		o.MaxContentLength = 10 << 20
	}
	if o.StatusTTL < 24*time.Hour {
		o.StatusTTL = DefaultStatusTTL
	}
	log := o.Log.With("connector", "taxii")
	return &Server{
		views: o.Views, events: o.Events, ingest: o.Ingest, rdb: o.Redis, prefix: o.Prefix, log: log, o: o,
		index: &objectIndex{rdb: o.Redis, prefix: o.Prefix, log: log, seen: map[string]struct{}{}},
		now:   time.Now,
	}
}

// APIRoot is the path of the one API root.
const APIRoot = "/taxii2/api/"

// Mount adds the TAXII routes. Paths work with and without the trailing
// slash (the gateway's router is not strict), so taxii2-client's status
// URL without a slash is served too.
func (s *Server) Mount(app *fiber.App, auth Authenticator) {
	g := app.Group("/taxii2", s.normaliseKey,
		auth.Require(s.authFailed, store.RoleAdmin, store.RoleSource, store.RoleConstituent), s.negotiate)
	g.Get("/", s.handle(s.discovery))
	g.Get("/api", s.handle(s.apiRoot))
	g.Get("/api/status/:sid", s.handle(s.status))
	g.Get("/api/collections", s.handle(s.collections))
	g.Get("/api/collections/:cid", s.handle(s.collection))
	g.Get("/api/collections/:cid/manifest", s.handle(s.manifest))
	g.Get("/api/collections/:cid/objects", s.handle(s.objects))
	if il, ok := auth.(interface{ IngestLimit() fiber.Handler }); ok {
		// The inbox shares the per-key ingest limit of every ingest path.
		g.Post("/api/collections/:cid/objects", il.IngestLimit(), s.handle(s.addObjects))
	} else {
		g.Post("/api/collections/:cid/objects", s.handle(s.addObjects))
	}
	g.Get("/api/collections/:cid/objects/:oid", s.handle(s.object))
	g.Delete("/api/collections/:cid/objects/:oid", s.handle(s.deleteObject))
	g.Get("/api/collections/:cid/objects/:oid/versions", s.handle(s.versions))
	g.All("/*", s.handle(s.fallback))
}

// MountFunc adapts Mount to the gateway's wiring.
func (s *Server) MountFunc() func(app *fiber.App, auth *httpapi.Auth) {
	return func(app *fiber.App, auth *httpapi.Auth) { s.Mount(app, auth) }
}

// routeShapes are the TAXII paths, for telling 405 from 404.
var routeShapes = []*regexp.Regexp{
	regexp.MustCompile(`^/taxii2/?$`),
	regexp.MustCompile(`^/taxii2/api/?$`),
	regexp.MustCompile(`^/taxii2/api/status/[^/]+/?$`),
	regexp.MustCompile(`^/taxii2/api/collections(/[^/]+(/manifest|/objects(/[^/]+(/versions)?)?)?)?/?$`),
}

func (s *Server) fallback(c *fiber.Ctx) error {
	for _, re := range routeShapes {
		if re.MatchString(c.Path()) {
			return fail(fiber.StatusMethodNotAllowed, c.Method()+" is not supported on "+c.Path())
		}
	}
	return fail(fiber.StatusNotFound, "no TAXII resource at "+c.Path())
}

// normaliseKey turns the other ways TAXII clients send a key into forms the
// gateway's key check reads: "Authorization: Token <key>" (taxii2-client
// TokenAuth, OpenCTI), HTTP Basic with the key as user name and no
// password, and an X-API-Key header.
func (s *Server) normaliseKey(c *fiber.Ctx) error {
	h := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	set := func(key string) { c.Request().Header.Set(fiber.HeaderAuthorization, "Bearer "+strings.TrimSpace(key)) }
	switch {
	case len(h) > 6 && strings.EqualFold(h[:6], "token "):
		set(h[6:])
	case len(h) > 6 && strings.EqualFold(h[:6], "basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		if err == nil {
			if user, pw, _ := strings.Cut(string(raw), ":"); pw == "" && user != "" {
				set(user)
			}
		}
	case h == "":
		if k := c.Get("X-API-Key"); k != "" {
			set(k)
		}
	}
	return c.Next()
}

func (s *Server) authFailed(c *fiber.Ctx, status int, msg string) error {
	if status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="schakel", Bearer realm="schakel"`)
	}
	return writeError(c, status, msg, nil)
}

// negotiate refuses an Accept header that admits no TAXII 2.1 answer.
func (s *Server) negotiate(c *fiber.Ctx) error {
	if !acceptable(c.Get(fiber.HeaderAccept)) {
		return writeError(c, fiber.StatusNotAcceptable, "Accept must allow "+MediaTAXII, nil)
	}
	return c.Next()
}

func scope(c *fiber.Ctx) store.Scope {
	caller, _ := httpapi.CallerOf(c)
	return caller.Scope
}

type discoveryResource struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Default     string   `json:"default,omitempty"`
	APIRoots    []string `json:"api_roots"`
}

func (s *Server) rootURL() string {
	if u := strings.TrimRight(s.o.PublicURL, "/"); strings.HasPrefix(strings.ToLower(u), "https://") {
		return u + APIRoot
	}
	return APIRoot
}

func (s *Server) discovery(c *fiber.Ctx) error {
	root := s.rootURL()
	return writeJSON(c, fiber.StatusOK, discoveryResource{
		Title:       s.o.Title + " TAXII 2.1",
		Description: "Threat information the gateway may share with the caller, per TLP 2.0 and need-to-know.",
		Contact:     s.o.Contact,
		Default:     root,
		APIRoots:    []string{root},
	})
}

type apiRootResource struct {
	Title            string   `json:"title"`
	Description      string   `json:"description,omitempty"`
	Versions         []string `json:"versions"`
	MaxContentLength int      `json:"max_content_length"`
}

func (s *Server) apiRoot(c *fiber.Ctx) error {
	return writeJSON(c, fiber.StatusOK, apiRootResource{
		Title:            s.o.Title,
		Description:      "Collections public (TLP:CLEAR), community (up to TLP:GREEN), constituent (the caller's own view) and the inbox.",
		Versions:         []string{MediaTAXII},
		MaxContentLength: s.o.MaxContentLength,
	})
}

// collections lists the collections the caller may read or write, in a
// fixed order.
func (s *Server) collections(c *fiber.Ctx) error {
	sc := scope(c)
	var out []collectionResource
	for i := range collections {
		if r := collections[i].resource(sc); r.CanRead || r.CanWrite {
			out = append(out, r)
		}
	}
	return writeJSON(c, fiber.StatusOK, struct {
		Collections []collectionResource `json:"collections,omitempty"`
	}{out})
}

func (s *Server) collection(c *fiber.Ctx) error {
	col, ok := lookupCollection(c.Params("cid"))
	if !ok {
		return fail(fiber.StatusNotFound, "no collection "+c.Params("cid"))
	}
	return writeJSON(c, fiber.StatusOK, col.resource(scope(c)))
}
