package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/egress"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

const adminKey = "ConsoleAdminKey0123456789abcdefghijklmno"

// fixture is a console on a real listener over a real Redis, with the
// same core parts the gateway wires.
type fixture struct {
	t      *testing.T
	base   string
	client *http.Client
	st     *store.Store
	au     *audit.Log
	ob     *outbox.Outbox
	pl     *pipeline.Pipeline
	reg    *registry.Registry
	rdb    redis.UniversalClient
	prefix string
	opts   Options // what the console was started with
}

func newFixture(t *testing.T, secure bool) *fixture {
	t.Helper()
	return newFixtureWith(t, secure, nil)
}

// newFixtureWith is newFixture with edit applied to the console's options.
func newFixtureWith(t *testing.T, secure bool, edit func(*Options)) *fixture {
	t.Helper()
	r := redistest.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	au := audit.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, []gateway.Constituent{
		{ID: "acme", Name: "Acme Water", Sectors: []string{"water"}, Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/24"}},
			Contacts: []gateway.Contact{{Email: "soc@acme.example", Name: "SOC"}}},
		{ID: "globex", Name: "Globex Energy", Sectors: []string{"energy"}, Assets: gateway.Assets{Domains: []string{"globex.example"}}},
	}); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{MaxAttempts: 2, Logger: log})
	pl := pipeline.New(st, ob, au, reg, pipeline.Config{Push: map[gateway.Channel]bool{gateway.ChannelEmail: true, gateway.ChannelWebhook: true}},
		metrics.New(prometheus.NewRegistry()), log)
	o := Options{Redis: r.Client, Prefix: r.Prefix, Store: st, Audit: au, Outbox: ob, Releaser: pl, Registry: reg,
		Limiter: limit.New(r.Client, r.Prefix), Sources: []Source{{Name: "partner", Type: "api"}, {Name: "feed", Type: "taxii"}}, AdminKeys: []string{adminKey}, Secure: secure, Log: log,
		Destinations: egress.Default()}
	if edit != nil {
		edit(&o)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f := &fixture{t: t, client: client, st: st, au: au, ob: ob, pl: pl, reg: reg, rdb: r.Client, prefix: r.Prefix, opts: o}
	f.base = f.serve(o)
	return f
}

// serve starts a console with o on a fresh listener and returns its base
// URL; a second call is a second replica (or a restart) over the same Redis.
// The cookie jar ignores ports, so the session cookie travels along.
func (f *fixture) serve(o Options) string {
	f.t.Helper()
	c, err := New(o)
	if err != nil {
		f.t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	c.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	f.t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

type response struct {
	status int
	body   string
	header http.Header
}

func (f *fixture) get(path string) response {
	f.t.Helper()
	resp, err := f.client.Get(f.base + path)
	if err != nil {
		f.t.Fatal(err)
	}
	return read(f.t, resp)
}

func (f *fixture) post(path string, form url.Values) response {
	f.t.Helper()
	resp, err := f.client.PostForm(f.base+path, form)
	if err != nil {
		f.t.Fatal(err)
	}
	return read(f.t, resp)
}

func read(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, string(b), resp.Header}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

// login logs in with key and returns the session's CSRF token.
func (f *fixture) login(key string) string {
	f.t.Helper()
	r := f.post("/console/login", url.Values{"key": {key}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		f.t.Fatalf("login: %d %s, want 303 to /console/", r.status, r.header.Get("Location"))
	}
	page := f.get("/console/")
	m := csrfRE.FindStringSubmatch(page.body)
	if page.status != 200 || m == nil {
		f.t.Fatalf("overview after login: %d, csrf token found: %v", page.status, m != nil)
	}
	return m[1]
}

// ingest stores ev through the pipeline as source "partner".
func (f *fixture) ingest(ev *gateway.Event) gateway.Result {
	f.t.Helper()
	res, err := f.pl.Ingest(context.Background(), gateway.Source{Name: "partner", DefaultTLP: gateway.TLPAmber}, ev)
	if err != nil {
		f.t.Fatalf("ingest %s: %v", ev.Title, err)
	}
	return res
}

// actions lists the audit trail's (actor, action) pairs, oldest first.
func (f *fixture) actions() []audit.Record {
	f.t.Helper()
	recs, _, err := f.au.Recent(context.Background(), 1000, "")
	if err != nil {
		f.t.Fatal(err)
	}
	slices.Reverse(recs)
	return recs
}

func (f *fixture) audited(actor, action string) bool {
	return slices.ContainsFunc(f.actions(), func(r audit.Record) bool { return r.Actor == actor && r.Action == action })
}

func adminActor() string { return "admin:" + store.KeyHash(adminKey) }

func TestLoginSessionAndLogout(t *testing.T) {
	f := newFixture(t, true)
	if r := f.get("/console/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login" {
		t.Fatalf("without a session: %d → %q, want 303 to the login page", r.status, r.header.Get("Location"))
	}
	login := f.get("/console/login")
	if login.status != 200 || !strings.Contains(login.body, `<label for="key">`) {
		t.Fatalf("login page: %d, labelled key input present: %v", login.status, strings.Contains(login.body, `<label for="key">`))
	}
	if csp := login.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not forbid scripts", csp)
	}

	r := f.post("/console/login", url.Values{"key": {"WrongKey0123456789abcdefghijklmnopqrstuv"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "key: not an admin key") {
		t.Fatalf("wrong key: %d, want 401 naming the key field", r.status)
	}
	if !f.audited("anonymous", "console.login_failed") {
		t.Error("a failed login is not audited")
	}
	// A source key authenticates to the API but is no admin key.
	srcKey, err := f.st.CreateKey(context.Background(), store.Scope{Role: store.RoleSource, Name: "partner"})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.post("/console/login", url.Values{"key": {srcKey}}); r.status != http.StatusUnauthorized {
		t.Fatalf("source key login: %d, want 401", r.status)
	}

	resp, err := f.client.PostForm(f.base+"/console/login", url.Values{"key": {adminKey}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("login set no session cookie")
	}
	if len(cookie.Value) != 64 || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || !cookie.Secure || cookie.Path != "/console" {
		t.Errorf("cookie %+v: want 32 random bytes (hex), HttpOnly, SameSite=Strict, Secure, Path=/console", cookie)
	}
	ttl, err := f.rdb.TTL(context.Background(), f.prefix+":console:session:"+sha256Hex(cookie.Value)).Result()
	if err != nil || ttl < SessionTTL-time.Minute || ttl > SessionTTL {
		t.Errorf("session TTL %v (%v), want %v; stored under the prefix by the cookie's hash", ttl, err, SessionTTL)
	}
	// The secure cookie is not sent back over http by the jar: send it by hand.
	req, _ := http.NewRequest("GET", f.base+"/console/", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie.Value})
	page := read(t, mustDo(t, f.client, req))
	if page.status != 200 || !strings.Contains(page.body, adminActor()) {
		t.Fatalf("overview with the session: %d, shows the actor: %v", page.status, strings.Contains(page.body, adminActor()))
	}
	if !f.audited(adminActor(), "console.login") {
		t.Error("login is not audited with actor admin:<hash12>")
	}
	csrf := csrfRE.FindStringSubmatch(page.body)[1]

	req, _ = http.NewRequest("POST", f.base+"/console/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie.Value})
	if r := read(t, mustDo(t, f.client, req)); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d, want 303", r.status)
	}
	if !f.audited(adminActor(), "console.logout") {
		t.Error("logout is not audited")
	}
	req, _ = http.NewRequest("GET", f.base+"/console/", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie.Value})
	if r := read(t, mustDo(t, f.client, req)); r.status != http.StatusSeeOther {
		t.Fatalf("the old session after logout: %d, want a redirect to login", r.status)
	}
}

func mustDo(t *testing.T, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestStoreAdminKeyLogsIn(t *testing.T) {
	f := newFixture(t, false)
	key, err := f.st.CreateKey(context.Background(), store.Scope{Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	f.login(key)
	if !f.audited("admin:"+store.KeyHash(key), "console.login") {
		t.Error("store admin key's login not audited under its hash")
	}
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A console session lives only as long as the key it was made with: a key
// dropped from admin.keys_file (seen at restart) or a revoked store key
// (revoked through another replica's store) ends it within KeyCheckTTL.
func TestSessionEndsWithItsKey(t *testing.T) {
	const fileKey = "SecondAdminKey0123456789abcdefghijklmnop"
	const ttl = 2 * time.Second
	tests := []struct {
		name string
		// key returns the admin key to log in with.
		key func(f *fixture) string
		// drop removes the key; it returns the console base URL to use next.
		drop func(f *fixture, key string) string
	}{
		{
			name: "removed from keys_file, then restart",
			key:  func(*fixture) string { return fileKey },
			drop: func(f *fixture, _ string) string {
				o := f.opts
				o.AdminKeys = []string{adminKey}
				return f.serve(o)
			},
		},
		{
			name: "store key revoked on another replica",
			key: func(f *fixture) string {
				k, err := f.st.CreateKey(context.Background(), store.Scope{Role: store.RoleAdmin})
				if err != nil {
					f.t.Fatal(err)
				}
				return k
			},
			drop: func(f *fixture, key string) string {
				other := store.New(f.rdb, f.prefix)
				if err := other.RevokeKey(context.Background(), store.KeyHash(key)); err != nil {
					f.t.Fatal(err)
				}
				return f.base
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
			f := newFixtureWith(t, false, func(o *Options) {
				o.AdminKeys = []string{adminKey, fileKey}
				o.KeyCheckTTL = ttl
				o.Now = clock.Now
			})
			key := tt.key(f)
			f.login(key)
			// A second request is still admitted: the check does not end
			// live sessions of valid keys.
			if r := f.get("/console/"); r.status != http.StatusOK {
				t.Fatalf("second request with a valid key: %d, want 200", r.status)
			}
			f.base = tt.drop(f, key)
			clock.Add(ttl + time.Millisecond)
			r := f.get("/console/")
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/login?expired=1" {
				t.Fatalf("after the key went: %d → %q, want 303 to /console/login?expired=1", r.status, r.header.Get("Location"))
			}
			// The session itself is gone, not only refused.
			if n, err := f.rdb.Keys(context.Background(), f.prefix+":console:session:*").Result(); err != nil || len(n) != 0 {
				t.Errorf("sessions left in Redis: %v (err %v)", n, err)
			}
			if !f.audited("admin:"+store.KeyHash(key), "console.session_ended") {
				t.Error("the ended session is not audited")
			}
			// The remaining configured key still logs in.
			f.login(adminKey)
		})
	}
}

func TestFailedLoginsAreRateLimited(t *testing.T) {
	f := newFixture(t, false)
	var last response
	for range LoginsPerMinute + 1 {
		last = f.post("/console/login", url.Values{"key": {"nope"}})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("attempt %d: %d (Retry-After %q), want 429 with Retry-After", LoginsPerMinute+1, last.status, last.header.Get("Retry-After"))
	}
	// The limit holds even for the right key: guessing cannot continue.
	if r := f.post("/console/login", url.Values{"key": {adminKey}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("right key while limited: %d, want 429", r.status)
	}
}

func TestCSRFIsChecked(t *testing.T) {
	f := newFixture(t, false)
	f.login(adminKey)
	for _, tc := range []struct{ name, csrf string }{{"missing", ""}, {"wrong", strings.Repeat("0", 64)}} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			if tc.csrf != "" {
				form.Set("csrf", tc.csrf)
			}
			r := f.post("/console/constituents/acme/keys", form)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
				t.Fatalf("issue key with %s token: %d, want 403 naming CSRF", tc.name, r.status)
			}
			keys, err := f.st.Keys(context.Background(), store.Scope{Role: store.RoleConstituent, Name: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 0 {
				t.Fatalf("a key was issued despite the %s CSRF token", tc.name)
			}
		})
	}
}

func TestPagesRender(t *testing.T) {
	f := newFixture(t, false)
	f.login(adminKey)
	if err := f.st.SetCursor(context.Background(), "feed", "2026-11-23T08:00:00Z"); err != nil {
		t.Fatal(err)
	}
	owned := f.ingest(&gateway.Event{Kind: gateway.KindNotification, Title: "Scanning from acme range", TLP: gateway.TLPAmber,
		Source: gateway.SourceRef{Name: "partner"}, Priority: gateway.PriorityHigh,
		Indicators: []gateway.Indicator{{Type: "ipv4", Value: "192.0.2.77"}}})
	f.ingest(&gateway.Event{Kind: gateway.KindAdvisory, Title: "Energy advisory", TLP: gateway.TLPGreen, Source: gateway.SourceRef{Name: "partner"},
		Indicators: []gateway.Indicator{{Type: "domain", Value: "evil.example"}}})
	held := f.ingest(&gateway.Event{Kind: gateway.KindIntel, Title: "Red intel", TLP: gateway.TLPRed, Source: gateway.SourceRef{Name: "partner"},
		Indicators: []gateway.Indicator{{Type: "domain", Value: "red.example"}}})
	if !held.Held {
		t.Fatal("a RED event without named red persons was not held")
	}

	tests := []struct {
		path      string
		status    int
		want      []string
		notWanted []string
	}{
		{"/console/", 200, []string{"3 events since", "<svg", "partner", "taxii", "<code>2026-11-23T08:00:00Z</code>", "webhook", "Held, not released: <a href=\"/console/held\">1</a>"}, nil},
		{"/console/events", 200, []string{"Scanning from acme range", "Energy advisory", "Red intel", `<span class="tlp tlp-red">TLP:RED</span>`, "2000"}, nil},
		{"/console/events?value=192.0.2.77", 200, []string{"Scanning from acme range"}, []string{"Energy advisory", "Red intel"}},
		{"/console/events?value=EVIL.example", 200, []string{"Energy advisory"}, []string{"Scanning from acme range"}},
		{"/console/events?tlp=GREEN", 200, []string{"Energy advisory"}, []string{"Scanning from acme range", "Red intel"}},
		{"/console/events?kind=intel", 200, []string{"Red intel"}, []string{"Energy advisory"}},
		{"/console/events?priority=high", 200, []string{"Scanning from acme range"}, []string{"Energy advisory"}},
		{"/console/events?constituent=acme", 200, []string{"Scanning from acme range", "Energy advisory"}, []string{"Red intel"}},
		{"/console/events?constituent=globex", 200, []string{"No events match."}, []string{"Scanning from acme range"}},
		{"/console/events?tlp=PURPLE", 400, []string{"tlp:"}, nil},
		{"/console/events?kind=gossip", 400, []string{"kind: unknown kind"}, nil},
		{"/console/events/" + owned.ID, 200, []string{"192.0.2.77", "Explain", "owner", "deliver", "soc@acme.example"}, nil},
		{"/console/events/" + held.ID, 200, []string{"Red intel", "<dt>Held</dt>", "release"}, nil},
		{"/console/events/no-such-event", 404, []string{"no event no-such-event"}, nil},
		{"/console/held", 200, []string{"Red intel", "Recipients", `name="recipients"`}, nil},
		{"/console/dead-letters", 200, []string{"No dead letters.", "Discard removes the dead letter"}, nil},
		{"/console/constituents", 200, []string{"Acme Water", "Globex Energy", "1 prefixes"}, nil},
		{"/console/constituents/acme", 200, []string{"192.0.2.0/24", "soc@acme.example", "Issue a new key"}, nil},
		{"/console/constituents/nobody", 404, []string{"no constituent nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := f.get(tt.path)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.notWanted {
				if strings.Contains(r.body, w) {
					t.Errorf("page shows %q, which the filter excludes", w)
				}
			}
		})
	}
}

func TestTitlesShowControlsEscaped(t *testing.T) {
	f := newFixture(t, false)
	f.login(adminKey)
	title := "invoice\u202egnp.exe \u2066x\u2069 \x1b[2J"
	ev := f.ingest(&gateway.Event{Kind: gateway.KindIntel, Title: title, Description: "one\u202etwo", TLP: gateway.TLPRed,
		Source: gateway.SourceRef{Name: "partner"}})
	for _, p := range []string{"/console/events", "/console/events/" + ev.ID, "/console/held"} {
		r := f.get(p)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d", p, r.status)
		}
		if strings.ContainsAny(r.body, "\u202e\u2066\u2069\x1b") {
			t.Errorf("%s carries a raw bidi or control character", p)
		}
		if !strings.Contains(r.body, `invoice\u202egnp.exe \u2066x\u2069 \u001b[2J`) {
			t.Errorf("%s does not show the title escaped", p)
		}
	}
	if r := f.get("/console/events/" + ev.ID); !strings.Contains(r.body, `one\u202etwo`) {
		t.Error("event page does not show the description escaped")
	}
	stored, err := f.st.Event(context.Background(), ev.ID)
	if err != nil || stored.Title != title {
		t.Errorf("stored title = %q (%v), want it unchanged", stored.Title, err)
	}
}

func TestPagesNeedASession(t *testing.T) {
	f := newFixture(t, false)
	ev := f.ingest(&gateway.Event{Kind: gateway.KindIntel, Title: "Secret red thing", TLP: gateway.TLPRed, Source: gateway.SourceRef{Name: "partner"}})
	for _, p := range []string{"/console/", "/console/events", "/console/events/" + ev.ID, "/console/held", "/console/dead-letters", "/console/constituents", "/console/constituents/acme"} {
		r := f.get(p)
		if r.status != http.StatusSeeOther || strings.Contains(r.body, "Secret red thing") {
			t.Errorf("%s without a session: %d, want a redirect and nothing of the event", p, r.status)
		}
	}
	if r := f.post("/console/dead-letters/x/retry", nil); r.status != http.StatusSeeOther {
		t.Errorf("an action without a session: %d, want a redirect to login", r.status)
	}
}

func TestReleaseNeedsConfirmationAndIsAudited(t *testing.T) {
	f := newFixture(t, false)
	csrf := f.login(adminKey)
	ctx := context.Background()
	held := f.ingest(&gateway.Event{Kind: gateway.KindIntel, Title: "Red intel", TLP: gateway.TLPRed, Source: gateway.SourceRef{Name: "partner"}})
	path := "/console/held/" + held.ID + "/release"

	r := f.post(path, url.Values{"csrf": {csrf}, "recipients": {"acme"}})
	if r.status != 200 || !strings.Contains(r.body, "Confirm release") {
		t.Fatalf("review step: %d, want a confirmation page", r.status)
	}
	r = f.post(path, url.Values{"csrf": {csrf}, "recipients": {"acme"}, "confirm": {"yes"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "TLP:RED is released only to named persons") {
		t.Fatalf("RED to a constituent: %d, want 422 with the policy's reason", r.status)
	}
	if r := f.post(path, url.Values{"csrf": {csrf}, "recipients": {"not an address <"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "recipients:") {
		t.Fatalf("bad recipient: %d, want 422 naming recipients", r.status)
	}

	r = f.post(path, url.Values{"csrf": {csrf}, "recipients": {"Jan Jansen <jan@acme.example>"}})
	if !strings.Contains(r.body, "jan@acme.example") {
		t.Fatal("confirmation does not name the recipient")
	}
	if items, _ := f.st.HeldItems(ctx, false); len(items) != 1 {
		t.Fatal("the review step released the item")
	}
	r = f.post(path, url.Values{"csrf": {csrf}, "recipients": {"Jan Jansen <jan@acme.example>"}, "confirm": {"yes"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("confirmed release: %d %s, want 303", r.status, r.body)
	}
	h, err := f.st.Held(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Released || h.ReleasedBy != adminActor() || len(h.ReleasedTo) != 1 || h.ReleasedTo[0].Email != "jan@acme.example" {
		t.Fatalf("held item after release: %+v", h)
	}
	st, err := f.ob.Stats(ctx, gateway.ChannelEmail)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready != 1 {
		t.Fatalf("%d e-mail deliveries queued, want 1", st.Ready)
	}
	if !f.audited(adminActor(), "held.released") {
		t.Error("the release is not audited under the admin's actor")
	}
	if r := f.get("/console/held?released=" + held.ID); !strings.Contains(r.body, "Released "+held.ID) {
		t.Error("held page does not confirm the release")
	}
}

// deadLetter enqueues a webhook delivery to acme and lets a worker fail it
// permanently (410 Gone), so it is a dead letter when this returns.
func (f *fixture) deadLetter(id string) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := gateway.Delivery{ID: id, EventID: "ev-" + id, Version: "v1", Recipient: gateway.ConstituentRecipient("acme"), Channel: gateway.ChannelWebhook,
		Target: "https://hooks.acme.example/x", TLP: gateway.TLPAmber, Rule: "owner"}
	if err := f.ob.Enqueue(ctx, d); err != nil {
		f.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.ob.Run(ctx, gateway.ChannelWebhook, 1, func(context.Context, gateway.Delivery) outbox.Result {
			return outbox.Permanent(errors.New("receiver answered 410 Gone"))
		})
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := f.ob.Stats(context.Background(), gateway.ChannelWebhook)
		if err != nil {
			f.t.Fatal(err)
		}
		if st.Dead == 1 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatal("the delivery never became a dead letter")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRetryDeadLetter(t *testing.T) {
	f := newFixture(t, false)
	csrf := f.login(adminKey)
	f.deadLetter("dlv-1")

	page := f.get("/console/dead-letters")
	if !strings.Contains(page.body, "receiver answered 410 Gone") || !strings.Contains(page.body, "dlv-1") {
		t.Fatal("dead-letter page lacks the delivery and its reason")
	}
	if r := f.post("/console/dead-letters/nope/retry", url.Values{"csrf": {csrf}}); r.status != http.StatusNotFound {
		t.Fatalf("retry of an unknown dead letter: %d, want 404", r.status)
	}
	r := f.post("/console/dead-letters/dlv-1/retry", url.Values{"csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("retry: %d, want 303", r.status)
	}
	st, err := f.ob.Stats(context.Background(), gateway.ChannelWebhook)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead != 0 || st.Ready+st.Delayed != 1 {
		t.Fatalf("after retry: %+v, want no dead letter and the delivery queued", st)
	}
	recs := f.actions()
	if !slices.ContainsFunc(recs, func(r audit.Record) bool {
		return r.Actor == adminActor() && r.Action == "deadletter.retry" && r.DeliveryID == "dlv-1" && r.Recipient == "acme"
	}) {
		t.Error("retry is not audited with the delivery")
	}
}

func TestDiscardDeadLetter(t *testing.T) {
	f := newFixture(t, false)
	csrf := f.login(adminKey)
	f.deadLetter("dlv-2")
	if r := f.post("/console/dead-letters/dlv-2/discard", url.Values{"csrf": {csrf}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("discard without confirmation: %d, want 422", r.status)
	}
	if st, _ := f.ob.Stats(context.Background(), gateway.ChannelWebhook); st.Dead != 1 {
		t.Fatal("an unconfirmed discard removed the dead letter")
	}
	if r := f.post("/console/dead-letters/dlv-2/discard", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusSeeOther {
		t.Fatalf("discard: %d, want 303", r.status)
	}
	if st, _ := f.ob.Stats(context.Background(), gateway.ChannelWebhook); st.Dead != 0 || st.Ready+st.Delayed != 0 {
		t.Fatalf("after discard: %+v", st)
	}
	if !slices.ContainsFunc(f.actions(), func(r audit.Record) bool {
		return r.Actor == adminActor() && r.Action == "deadletter.discarded" && r.DeliveryID == "dlv-2"
	}) {
		t.Error("discard is not audited")
	}
}

func upload(t *testing.T, f *fixture, csrf, name, body string) response {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("csrf", csrf)
	fw, _ := w.CreateFormFile("file", name)
	_, _ = io.WriteString(fw, body)
	_ = w.Close()
	resp, err := f.client.Post(f.base+"/console/constituents/import", w.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func TestImportConstituents(t *testing.T) {
	f := newFixture(t, false)
	csrf := f.login(adminKey)
	ctx := context.Background()
	tests := []struct {
		name, file, body string
		status           int
		want             string
		ids              []string
	}{
		{"csv", "c.csv", "id,name,prefixes,contacts\ninitech,Initech,198.51.100.0/24,Bob <bob@initech.example>!red\numbrella,Umbrella,,\n", 303, "", []string{"initech", "umbrella"}},
		{"yaml", "c.yaml", "- id: hooli\n  name: Hooli\n  assets: {domains: [hooli.example]}\n", 303, "", []string{"hooli"}},
		{"csv unknown column", "bad.csv", "id,name,colour\nx,X,blue\n", 422, "unknown column", nil},
		{"yaml not a list", "bad.yaml", "id: [\n", 422, "bad.yaml", nil},
		{"empty", "e.csv", "", 422, "e.csv", nil},
		// A webhook at the metadata service refuses the whole file.
		{"blocked webhook", "ssrf.yaml", "- id: fine\n  name: Fine\n- id: ssrf\n  name: SSRF\n  webhooks: [{url: 'http://169.254.169.254/latest/meta-data', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}]\n",
			422, "constituent ssrf: invalid input: /webhooks/0/url: 169.254.169.254 is link-local", nil},
		// Secrets: a weak one is refused; "generate" is for the admin API,
		// which shows the new secret once.
		{"weak secret", "weak.yaml", "- {id: weak, name: Weak, webhooks: [{url: 'https://weak.example/h', secret: whsec_c2VjcmV0}]}\n",
			422, "constituents[0].webhooks[0].secret", nil},
		{"generate", "gen.yaml", "- {id: gen, name: Gen, webhooks: [{url: 'https://gen.example/h', secret: generate}]}\n",
			422, "constituent gen: /webhooks/0/secret: &#34;generate&#34; works through the admin API", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := upload(t, f, csrf, tt.file, tt.body)
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Fatalf("import %s: %d, want %d with %q in\n%s", tt.file, r.status, tt.status, tt.want, r.body)
			}
			for _, id := range tt.ids {
				if _, err := f.st.Constituent(ctx, id); err != nil {
					t.Errorf("constituent %s after import: %v", id, err)
				}
				if _, ok := f.reg.Current().Get(id); !ok {
					t.Errorf("constituent %s is not in the registry after import", id)
				}
				if !slices.ContainsFunc(f.actions(), func(r audit.Record) bool {
					return r.Actor == adminActor() && r.Action == "constituent.put" && r.Recipient == id
				}) {
					t.Errorf("import of %s is not audited", id)
				}
			}
		})
	}
	if _, err := f.st.Constituent(ctx, "fine"); err == nil {
		t.Error("a file with a blocked URL was partly imported")
	}
	k, err := f.st.Constituent(ctx, "initech")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Contacts) != 1 || !k.Contacts[0].Red {
		t.Errorf("initech contacts %+v: want Bob marked red", k.Contacts)
	}
}

var newKeyRE = regexp.MustCompile(`<code id="newkey">([A-Za-z0-9]{40})</code>`)

func TestIssueAndRevokeKey(t *testing.T) {
	f := newFixture(t, false)
	csrf := f.login(adminKey)
	ctx := context.Background()
	r := f.post("/console/constituents/acme/keys", url.Values{"csrf": {csrf}})
	m := newKeyRE.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil {
		t.Fatalf("issue key: %d, key shown: %v", r.status, m != nil)
	}
	key := m[1]
	sc, err := f.st.Authenticate(ctx, key)
	if err != nil || sc.Role != store.RoleConstituent || sc.Name != "acme" {
		t.Fatalf("the issued key authenticates as %+v, %v; want constituent acme", sc, err)
	}
	again := f.get("/console/constituents/acme")
	if strings.Contains(again.body, key) {
		t.Fatal("the key is shown again after the issuing response")
	}
	hash := store.KeyHash(key)
	if !strings.Contains(again.body, hash) {
		t.Fatal("the constituent page does not list the key's hash")
	}
	if r := f.post("/console/constituents/globex/keys/"+hash+"/revoke", url.Values{"csrf": {csrf}}); r.status != http.StatusNotFound {
		t.Fatalf("revoking acme's key from globex's page: %d, want 404", r.status)
	}
	if r := f.post("/console/constituents/acme/keys/"+hash+"/revoke", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d, want 303", r.status)
	}
	if _, err := f.st.Authenticate(ctx, key); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("the revoked key still authenticates: %v", err)
	}
	recs := f.actions()
	for _, action := range []string{"key.created", "key.revoked"} {
		if !slices.ContainsFunc(recs, func(r audit.Record) bool {
			return r.Actor == adminActor() && r.Action == action && r.Recipient == "acme" && r.Details["key_hash"] == hash
		}) {
			t.Errorf("%s is not audited with the key's hash", action)
		}
	}
	for _, rec := range recs {
		if strings.Contains(fmt.Sprint(rec), key) {
			t.Fatal("the clear key is in the audit trail")
		}
	}
}

func TestParseRecipients(t *testing.T) {
	tests := []struct {
		in      string
		want    []gateway.Addressee
		wantErr string
	}{
		{"jan@a.example", []gateway.Addressee{{Email: "jan@a.example"}}, ""},
		{"Jan <jan@a.example>\nacme", []gateway.Addressee{{Email: "jan@a.example", Name: "Jan"}, {Constituent: "acme"}}, ""},
		{" a@b.example , c@d.example ;", []gateway.Addressee{{Email: "a@b.example"}, {Email: "c@d.example"}}, ""},
		{"", nil, "name at least one"},
		{"\n , ", nil, "name at least one"},
		{"jan@", nil, "not an e-mail address"},
		{"two words", nil, "neither an e-mail address nor a constituent id"},
	}
	for _, tt := range tests {
		got, err := ParseRecipients(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "recipients:") {
				t.Errorf("ParseRecipients(%q) error %v, want one naming recipients with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseRecipients(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseRecipients(f *testing.F) {
	for _, s := range []string{"jan@a.example", "Jan <jan@a.example>\nacme", "\"x\" <@>", ",,;", "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseRecipients(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "recipients:") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no error and no recipients")
		}
		for _, a := range got {
			if (a.Email == "") == (a.Constituent == "") {
				t.Fatalf("recipient %+v is neither exactly an address nor a constituent", a)
			}
		}
	})
}
