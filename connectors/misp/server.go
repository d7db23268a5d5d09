package misp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
	mispmap "github.com/schakel/schakel/mappings/misp"
)

// Views are the pull views (gateway/views): every event the server lists or
// shows comes through them, so MISP sees exactly what the policy allows.
type Views interface {
	List(ctx context.Context, who views.Viewer, q views.Query) ([]views.Entry, string, error)
	Event(ctx context.Context, who views.Viewer, id string) (*gateway.Event, error)
}

// Store is what the server reads of the event store directly: versions for
// push bookkeeping and a source's own events (never served from here).
type Store interface {
	EventVersions
	Event(ctx context.Context, id string) (*gateway.Event, error)
	Versions(ctx context.Context, id string) ([]string, error)
}

// Org is Schakel's identity towards MISP: the creator organisation (Orgc) of
// everything it serves.
type Org struct {
	Name string
	UUID string
}

// Source is a configured `type: misp` source; its keys may push events in.
type Source struct {
	Name       string
	DefaultTLP gateway.TLP
	// Own: the relay's own analysts author this source (config own: true).
	Own bool
}

// Options wire a Server.
type Options struct {
	Views  Views
	Store  Store
	Ingest gateway.Ingester
	Redis  redis.UniversalClient
	Prefix string
	Org    Org
	// Sources are the configured MISP sources, by name.
	Sources []Source
	// Constituent looks up a constituent for /users/view/me.
	Constituent func(id string) (*gateway.Constituent, bool)
	// BodyLimit caps a pushed event after decompression (default 64 MiB).
	BodyLimit int
	Log       *slog.Logger
	Now       func() time.Time
}

// Server is the MISP server API and the MISP feed. Safe for concurrent use.
type Server struct {
	o       Options
	enc     mispmap.EncodeOptions
	metas   *metas
	sources map[string]Source
	// instance is the uuid getVersion reports (MISP uses it to spot loops).
	instance string
}

// NewServer returns the server; Mount adds its routes.
func NewServer(o Options) (*Server, error) {
	if o.Views == nil || o.Store == nil || o.Ingest == nil || o.Redis == nil {
		return nil, errors.New("misp server: views, store, ingest and redis are required")
	}
	if strings.TrimSpace(o.Org.Name) == "" {
		return nil, errors.New("misp server: org name is required")
	}
	if _, err := uuid.Parse(o.Org.UUID); err != nil {
		return nil, fmt.Errorf("misp server: org uuid %q: %w", o.Org.UUID, err)
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = 64 << 20
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Constituent == nil {
		o.Constituent = func(string) (*gateway.Constituent, bool) { return nil, false }
	}
	enc := mispmap.EncodeOptions{OrgName: o.Org.Name, OrgUUID: strings.ToLower(o.Org.UUID), Published: true}
	s := &Server{
		o: o, enc: enc, sources: map[string]Source{},
		metas:    newMetas(o.Redis, o.Prefix, o.Store, enc, o.Log),
		instance: uuid.NewSHA1(uuid.MustParse(o.Org.UUID), []byte("schakel-instance")).String(),
	}
	for _, src := range o.Sources {
		s.sources[src.Name] = src
	}
	return s, nil
}

// Mount adds the MISP routes to app. Every MISP path takes the caller's key
// (Authorization or X-MISP-AUTH); the feed also serves anonymous callers.
func (s *Server) Mount(app *fiber.App, auth *httpapi.Auth) {
	roles := []store.Role{store.RoleConstituent, store.RoleSource, store.RoleAdmin}
	key := auth.Require(authFailed, roles...)
	var routes []route
	add := func(method, path string, hs ...fiber.Handler) {
		routes = append(routes, route{method, path})
		app.Add(method, path, append([]fiber.Handler{key, exact(path)}, hs...)...)
		if method == fiber.MethodGet {
			app.Add(fiber.MethodHead, path, append([]fiber.Handler{key, exact(path)}, hs...)...)
		}
	}
	get := func(path string, h fiber.Handler) { add(fiber.MethodGet, path, h) }
	post := func(path string, h fiber.Handler) { add(fiber.MethodPost, path, h) }

	get("/servers/getVersion*", s.getVersion)
	get("/users/view/me*", s.me)
	post("/servers/postTest*", s.postTest)
	get("/servers/getAvailableSyncFilteringRules*", s.syncRules)
	post("/events/index*", s.index)
	get("/events/index*", s.index)
	get("/events/view/*", s.view)
	get("/shadow_attributes/index*", emptyList)
	post("/galaxy_clusters/restSearch*", emptyList)
	post("/events/filterEventIdsForPush*", s.filterForPush)
	// PyMISP's get_event(deleted=…) asks by POST.
	post("/events/view/*", s.view)
	limited := auth.IngestLimit()
	add(fiber.MethodPost, "/events/add*", limited, s.add)
	add(fiber.MethodPost, "/events/edit/*", limited, s.edit)
	post("/events/pushProposals/*", pushProposals)
	post("/events/restSearch*", s.searchEvents)
	post("/attributes/restSearch*", s.searchAttributes)
	post("/objects/restSearch*", s.searchObjects)

	// The read API of a PyMISP user.
	get("/attributes/describeTypes*", s.describeTypes)
	get("/attributes/view/*", s.attributeView)
	post("/attributes/view/*", s.attributeView)
	get("/tags/index*", s.tagsIndex)
	get("/tags/search/*", s.tagsSearch)
	post("/tags/search*", s.tagsSearch)
	get("/organisations/index*", s.organisations)
	get("/taxonomies/index*", s.taxonomies)
	get("/galaxies/index*", s.galaxies)
	get("/sharing_groups/index*", sharingGroups)
	get("/sharingGroups/index*", sharingGroups)

	// Last: whatever else is asked under a MISP controller answers as MISP
	// would, not with the framework's plain text.
	for _, ctl := range mispControllers {
		app.All("/"+ctl, key, unrouted(routes))
		app.All("/"+ctl+"/*", key, unrouted(routes))
	}

	feed := auth.Optional(roles...)
	app.Get("/feeds/misp/manifest.json", feed, s.manifest)
	app.Get("/feeds/misp/hashes.csv", feed, s.hashes)
	app.Get("/feeds/misp/:file", feed, s.feedEvent)
}

// exact rejects paths that only share a prefix with a route
// ("/events/indexes"): what follows the route must be empty, ".json" or
// "/…" (CakePHP named parameters).
func exact(route string) fiber.Handler {
	wild := strings.HasSuffix(route, "*") && !strings.HasSuffix(route, "/*")
	return func(c *fiber.Ctx) error {
		if !wild {
			return c.Next()
		}
		rest := c.Params("*")
		if rest == "" || rest == ".json" || strings.HasPrefix(rest, "/") {
			return c.Next()
		}
		return fail(c, fiber.StatusNotFound, "Not Found")
	}
}

// viewerOf is the pull view of the caller: a constituent key sees its
// constituent's view; every other caller (source and admin keys, anonymous
// feed readers) sees TLP:CLEAR only.
func viewerOf(c *fiber.Ctx) (views.Viewer, httpapi.Caller) {
	caller, ok := httpapi.CallerOf(c)
	if ok && caller.Scope.Role == store.RoleConstituent {
		return views.Viewer{Audience: views.Constituent, Constituent: caller.Scope.Name}, caller
	}
	return views.Viewer{Audience: views.Public}, caller
}

// body returns the request body, gunzipped when MISP compressed it (a
// MISP sends RequestEncoding gzip), never more than BodyLimit bytes.
func (s *Server) body(c *fiber.Ctx) ([]byte, error) {
	return httpapi.RequestBody(c, s.o.BodyLimit)
}

// requestParams reads filters from the body and the named parameters.
func (s *Server) requestParams(c *fiber.Ctx) (params, error) {
	body, err := s.body(c)
	if err != nil {
		return nil, err
	}
	_, named := splitPath(c.Params("*"))
	return parseParams(body, named)
}

// reply maps an error to a MISP-shaped answer.
func (s *Server) reply(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		return fail(c, fe.Code, fe.Message)
	case errors.Is(err, gateway.ErrNotFound):
		return fail(c, fiber.StatusNotFound, "Invalid event")
	case isBadRequest(err):
		return fail(c, fiber.StatusBadRequest, httpapi.PlainError(err))
	}
	s.o.Log.ErrorContext(c.UserContext(), "misp request failed", "path", c.Path(), "method", c.Method(), "error", err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return fail(c, fiber.StatusServiceUnavailable, "Temporarily unavailable; retry later")
	}
	return fail(c, fiber.StatusInternalServerError, "Internal error")
}

// badRequest marks an error in the caller's input.
type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }
func (e badRequest) Unwrap() error { return e.err }

func isBadRequest(err error) bool {
	var br badRequest
	var ve *gateway.ValidationError
	return errors.As(err, &br) || errors.As(err, &ve)
}

var (
	mispUA   = regexp.MustCompile(`MISP[ /](\d+)\.(\d+)\.(\d+)`)
	pymispUA = regexp.MustCompile(`PyMISP[ /](\d+\.\d+\.\d+)`)
)

const defaultVersion = "2.5.1"

type versionReply struct {
	Version           string   `json:"version"`
	PyMISPRecommended string   `json:"pymisp_recommended_version"`
	PermSync          bool     `json:"perm_sync"`
	PermSighting      bool     `json:"perm_sighting"`
	PermGalaxyEditor  bool     `json:"perm_galaxy_editor"`
	PermAnalystData   bool     `json:"perm_analyst_data"`
	UUID              string   `json:"uuid"`
	RequestEncoding   []string `json:"request_encoding"`
	FilterSightings   bool     `json:"filter_sightings"`
}

// getVersion mirrors the caller's MISP version so no version-mismatch
// warning fires; perm_sync is true only for source keys (the only ones
// that may push), which also stops a constituent MISP from trying.
func (s *Server) getVersion(c *fiber.Ctx) error {
	_, caller := viewerOf(c)
	ua := c.Get(fiber.HeaderUserAgent)
	v := versionReply{Version: defaultVersion, PyMISPRecommended: defaultVersion, UUID: s.instance,
		RequestEncoding: []string{"gzip"}, FilterSightings: true, PermSync: caller.Scope.Role == store.RoleSource}
	if m := mispUA.FindStringSubmatch(ua); m != nil {
		v.Version = m[1] + "." + m[2] + "." + m[3]
	}
	if m := pymispUA.FindStringSubmatch(ua); m != nil {
		v.PyMISPRecommended = m[1]
	}
	return c.JSON(v)
}

type meUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	OrgID string `json:"org_id"`
	Role  string `json:"role_id"`
}

type meRole struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	PermAdd           bool   `json:"perm_add"`
	PermModify        bool   `json:"perm_modify"`
	PermPublish       bool   `json:"perm_publish"`
	PermSync          bool   `json:"perm_sync"`
	PermSighting      bool   `json:"perm_sighting"`
	PermTagger        bool   `json:"perm_tagger"`
	PermSyncInternal  bool   `json:"perm_sync_internal"`
	PermAuth          bool   `json:"perm_auth"`
	PermSiteAdmin     bool   `json:"perm_site_admin"`
	PermAdmin         bool   `json:"perm_admin"`
	PermAudit         bool   `json:"perm_audit"`
	PermGalaxyEditor  bool   `json:"perm_galaxy_editor"`
	PermAnalystData   bool   `json:"perm_analyst_data"`
	PermTemplate      bool   `json:"perm_template"`
	PermSharingGroup  bool   `json:"perm_sharing_group"`
	PermRegexpAccess  bool   `json:"perm_regexp_access"`
	PermTagEditor     bool   `json:"perm_tag_editor"`
	PermDecaying      bool   `json:"perm_decaying"`
	PermWarninglist   bool   `json:"perm_warninglist"`
	PermObjectTemplat bool   `json:"perm_object_template"`
}

type meOrg struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type meReply struct {
	User         meUser         `json:"User"`
	Role         meRole         `json:"Role"`
	UserSetting  map[string]any `json:"UserSetting"`
	Organisation meOrg          `json:"Organisation"`
}

// me describes the key's holder as a MISP user of its own organisation.
func (s *Server) me(c *fiber.Ctx) error {
	_, caller := viewerOf(c)
	org := meOrg{ID: "1", Name: s.o.Org.Name, UUID: s.enc.OrgUUID}
	role := meRole{ID: "6", Name: "read only", PermAuth: true}
	email := "admin@schakel.invalid"
	switch caller.Scope.Role {
	case store.RoleConstituent:
		id := caller.Scope.Name
		name, email := id, id+"@constituent.schakel.invalid"
		if con, ok := s.o.Constituent(id); ok {
			if con.Name != "" {
				name = con.Name
			}
			if len(con.Contacts) > 0 && con.Contacts[0].Email != "" {
				email = con.Contacts[0].Email
			}
		}
		org = meOrg{ID: numID("constituent:" + id), Name: name, UUID: s.scopeUUID("constituent", id)}
		return c.JSON(meReply{User: meUser{ID: numID(caller.Actor()), Email: email, OrgID: org.ID, Role: role.ID},
			Role: role, UserSetting: map[string]any{}, Organisation: org})
	case store.RoleSource:
		role = meRole{ID: "5", Name: "sync user", PermAdd: true, PermModify: true, PermPublish: true, PermSync: true, PermTagger: true, PermAuth: true}
		email = caller.Scope.Name + "@source.schakel.invalid"
		org = meOrg{ID: numID("source:" + caller.Scope.Name), Name: caller.Scope.Name, UUID: s.scopeUUID("source", caller.Scope.Name)}
	}
	return c.JSON(meReply{
		User: meUser{ID: numID(caller.Actor()), Email: email, OrgID: org.ID, Role: role.ID},
		Role: role, UserSetting: map[string]any{}, Organisation: org,
	})
}

func (s *Server) scopeUUID(kind, name string) string {
	return uuid.NewSHA1(uuid.MustParse(s.enc.OrgUUID), []byte(kind+":"+name)).String()
}

// postTest echoes the test string as MISP's connection test expects.
func (s *Server) postTest(c *fiber.Ctx) error {
	p, err := s.requestParams(c)
	if err != nil {
		return s.reply(c, badRequest{err})
	}
	var test string
	if raw, ok := p["testString"]; ok {
		test, _ = scalar(raw)
	}
	return c.JSON(fiber.Map{
		"body":    fiber.Map{"testString": test},
		"headers": fiber.Map{"Content-type": "application/json", "Accept": "application/json", "Authorization": "OK"},
	})
}

// syncRules lists what a pull rule can filter on here: Schakel's org and
// the TLP tags this view can ever serve.
func (s *Server) syncRules(c *fiber.Ctx) error {
	var tags []string
	for _, t := range policy.PullTLPs(gateway.ChannelMISPPull) {
		tags = append(tags, t.MachineTag())
	}
	return c.JSON(fiber.Map{"organisations": []string{s.o.Org.Name}, "tags": tags})
}

func emptyList(c *fiber.Ctx) error { return c.JSON([]any{}) }

// pushProposals accepts nothing: Schakel keeps no proposals.
func pushProposals(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"success": true, "message": "Proposals are not kept by this server.", "counter": 0})
}
