package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/retention"
	"github.com/schakel/schakel/gateway/views"
)

type secResp struct {
	status int
	header http.Header
	body   []byte
}

// secSend sends one request with exactly the headers given (pairs).
func secSend(t *testing.T, c *http.Client, base, method, path string, body []byte, hdr ...string) secResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return secResp{status: resp.StatusCode, header: resp.Header, body: data}
}

// pullPath is one keyed pull path, called the way its clients call it.
type pullPath struct {
	name         string
	method, path string
	body         []byte
	headers      func(key string) []string
}

var pullPaths = []pullPath{
	{"misp index", "POST", "/events/index", []byte(`{"minimal": 1, "published": 1}`), func(k string) []string {
		return []string{"Authorization", k, "Accept", "application/json", "Content-Type", "application/json", "User-Agent", "MISP 2.5.17"}
	}},
	{"misp feed manifest", "GET", "/feeds/misp/manifest.json", nil, func(k string) []string {
		return []string{"Authorization", k}
	}},
	{"taxii constituent collection", "GET", "/taxii2/api/collections/constituent/objects/?match[type]=report&limit=1000", nil, func(k string) []string {
		return []string{"Accept", "application/taxii+json;version=2.1", "User-Agent", "taxii2-client/2.3.0",
			"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("taxii:"+k))}
	}},
}

// ids reads the event ids a pull path answered.
func (p pullPath) ids(t *testing.T, r secResp) []string {
	t.Helper()
	var out []string
	switch p.name {
	case "misp index":
		var idx []struct {
			UUID string `json:"uuid"`
		}
		if err := json.Unmarshal(r.body, &idx); err != nil {
			t.Fatalf("%s: %v: %.200s", p.name, err, r.body)
		}
		for _, e := range idx {
			out = append(out, e.UUID)
		}
	case "misp feed manifest":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("%s: %v: %.200s", p.name, err, r.body)
		}
		for id := range m {
			out = append(out, id)
		}
	default:
		var env struct {
			More    bool `json:"more"`
			Objects []struct {
				ID string `json:"id"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatalf("%s: %v: %.200s", p.name, err, r.body)
		}
		if env.More {
			t.Fatalf("%s: more than one page", p.name)
		}
		for _, o := range env.Objects {
			out = append(out, strings.TrimPrefix(o.ID, "report--"))
		}
	}
	sort.Strings(out)
	return out
}

func secKey(t *testing.T, h *harness, path string) string {
	t.Helper()
	var out struct{ Key string }
	h.do("POST", path, testAdminKey, nil, 201, &out)
	return out.Key
}

const (
	secClear  = "c1ea0000-0000-4000-8000-00000000005e"
	secGreen  = "91ee0000-0000-4000-8000-00000000005e"
	secHealth = "4ea10000-0000-4000-8000-00000000005e"
	secNotif  = "a0710000-0000-4000-8000-00000000005e"
	secRed    = "4ed00000-0000-4000-8000-00000000005e"
	secStrict = "57410000-0000-4000-8000-00000000005e"
)

// ingestMix stores one event of every kind of visibility: public, community,
// sector, owned by A and B, RED and AMBER+STRICT addressed to A.
func ingestMix(h *harness) {
	ind := func(v string) map[string]any { return map[string]any{"type": "ipv4", "value": v, "detect": true} }
	h.ingest(event(secClear, "advisory", "CLEAR", map[string]any{"indicators": []any{ind("203.0.113.1")}}), 202)
	h.ingest(event(secGreen, "advisory", "GREEN", nil), 202)
	h.ingest(event(secHealth, "intel", "AMBER", map[string]any{"sectors": []any{"health"}}), 202)
	h.ingest(event(secNotif, "notification", "AMBER", map[string]any{"indicators": []any{ind("192.0.2.10"), ind("198.51.100.7")}}), 202)
	h.ingest(event(secRed, "incident", "RED", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}), 202)
	h.ingest(event(secStrict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}), 202)
}

// TestSecurityEachKeySeesExactlyItsView: on every pull path a constituent key
// gets the same set of events, exactly its view, never anything RED; the
// admin API answers its key 403.
func TestSecurityEachKeySeesExactlyItsView(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ingestMix(h)
	keys := map[string]string{
		"a": secKey(t, h, "/api/v1/constituents/a/keys"),
		"b": secKey(t, h, "/api/v1/constituents/b/keys"),
	}
	// The expected sets are written out, not read back from the views, so a
	// view that leaked would fail here too.
	want := map[string][]string{
		"a": {secClear, secGreen, secNotif, secStrict},
		"b": {secClear, secGreen, secHealth, secNotif},
	}
	for c, key := range keys {
		sort.Strings(want[c])
		es, _, err := h.g.Views.List(t.Context(), views.Viewer{Audience: views.Constituent, Constituent: c}, views.Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var view []string
		for _, e := range es {
			view = append(view, e.ID)
		}
		sort.Strings(view)
		if !slices.Equal(view, want[c]) {
			t.Errorf("%s: view %v, want %v", c, view, want[c])
		}
		for _, p := range pullPaths {
			r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(key)...)
			if r.status != 200 {
				t.Fatalf("%s for %s: status %d: %.300s", p.name, c, r.status, r.body)
			}
			if got := p.ids(t, r); !slices.Equal(got, want[c]) {
				t.Errorf("%s for %s: %v, want %v", p.name, c, got, want[c])
			}
			if bytes.Contains(r.body, []byte(secRed)) || bytes.Contains(bytes.ToLower(r.body), []byte("tlp:red")) {
				t.Errorf("%s for %s: TLP:RED served: %.300s", p.name, c, r.body)
			}
		}
		for _, adm := range []struct{ method, path string }{
			{"GET", "/api/v1/events"}, {"GET", "/api/v1/events/" + secNotif}, {"GET", "/api/v1/constituents"},
			{"GET", "/api/v1/keys"}, {"POST", "/api/v1/constituents/" + c + "/keys"}, {"GET", "/api/v1/held"},
		} {
			if r := secSend(t, http.DefaultClient, h.base, adm.method, adm.path, nil, "Authorization", key); r.status != 403 {
				t.Errorf("%s %s with %s's key: %d, want 403", adm.method, adm.path, c, r.status)
			}
		}
	}
}

// TestSecurityKeyListingAndRevocation: the admin API lists keys by hash
// prefix (never the key), revokes by hash (audited), 404s unknown hashes,
// and a revoked constituent key gets 401 on every pull path. Rotation is
// issue new, then revoke old: the new key keeps working.
func TestSecurityKeyListingAndRevocation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ingestMix(h)
	old := secKey(t, h, "/api/v1/constituents/a/keys")
	other := secKey(t, h, "/api/v1/constituents/b/keys")

	type keyInfo struct {
		Hash  string `json:"hash"`
		Scope struct {
			Role string `json:"role"`
			Name string `json:"name"`
		} `json:"scope"`
		Created time.Time `json:"created"`
	}
	list := func(q string) []keyInfo {
		var out struct{ Keys []keyInfo }
		body := h.do("GET", "/api/v1/keys"+q, testAdminKey, nil, 200, &out)
		for _, k := range []string{old, other, h.sourceKey} {
			if bytes.Contains(body, []byte(k)) {
				t.Fatalf("key listing shows a key: %s", body)
			}
		}
		return out.Keys
	}
	if n := len(list("")); n != 3 {
		t.Errorf("all keys: %d, want 3 (source, a, b)", n)
	}
	if n := len(list("?role=source")); n != 1 {
		t.Errorf("source keys: %d, want 1", n)
	}
	h.do("GET", "/api/v1/keys?role=king", testAdminKey, nil, 400, nil)
	a := list("?role=constituent&name=a")
	if len(a) != 1 || a[0].Scope.Name != "a" || a[0].Scope.Role != "constituent" || len(a[0].Hash) != 12 || a[0].Created.IsZero() {
		t.Fatalf("a's keys: %+v", a)
	}

	// Rotation: issue the new key first, then revoke the old one.
	fresh := secKey(t, h, "/api/v1/constituents/a/keys")
	h.do("DELETE", "/api/v1/keys/"+a[0].Hash, testAdminKey, nil, 204, nil)
	h.do("DELETE", "/api/v1/keys/"+a[0].Hash, testAdminKey, nil, 404, nil)
	h.do("DELETE", "/api/v1/keys/0123456789ab", testAdminKey, nil, 404, nil)
	h.do("DELETE", "/api/v1/keys/not-hex", testAdminKey, nil, 400, nil)
	// Only admins revoke.
	if r := secSend(t, http.DefaultClient, h.base, "DELETE", "/api/v1/keys/"+a[0].Hash, nil, "Authorization", other); r.status != 403 {
		t.Errorf("constituent revoking: %d, want 403", r.status)
	}

	for _, p := range pullPaths {
		if r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(old)...); r.status != 401 {
			t.Errorf("%s with the revoked key: %d, want 401: %.200s", p.name, r.status, r.body)
		}
		if r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(fresh)...); r.status != 200 {
			t.Errorf("%s with the rotated key: %d, want 200", p.name, r.status)
		}
		if r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(other)...); r.status != 200 {
			t.Errorf("%s with b's key after a's revoke: %d, want 200", p.name, r.status)
		}
	}
	// The revoked key is simply unknown to the admin API too; the live
	// constituent key is forbidden there.
	if r := secSend(t, http.DefaultClient, h.base, "GET", "/api/v1/events", nil, "Authorization", old); r.status != 401 {
		t.Errorf("admin API with the revoked key: %d, want 401", r.status)
	}
	if r := secSend(t, http.DefaultClient, h.base, "GET", "/api/v1/events", nil, "Authorization", fresh); r.status != 403 {
		t.Errorf("admin API with a constituent key: %d, want 403", r.status)
	}

	recs, _, err := h.g.Audit.Recent(t.Context(), 100, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Action == "key.revoked" {
			found = r.Recipient == "a" && r.Details["key_hash"] == a[0].Hash && r.Details["role"] == "constituent" && strings.HasPrefix(r.Actor, "admin:")
			if !found {
				t.Errorf("key.revoked record: %+v", r)
			}
		}
	}
	if !found {
		t.Error("no key.revoked audit record")
	}
}

// TestSecurityFailedAuthLimitedPerIP: after 20 wrong keys in a minute from
// one address, every keyed path answers it 429 with Retry-After, right key
// or not, so guessing stops paying; anonymous public paths still work.
func TestSecurityFailedAuthLimitedPerIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ingestMix(h)
	good := secKey(t, h, "/api/v1/constituents/a/keys")
	for i := range 20 {
		wrong := fmt.Sprintf("Wrong%035d", i)
		p := pullPaths[i%len(pullPaths)]
		if r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(wrong)...); r.status != 401 {
			t.Fatalf("wrong key %d on %s: %d, want 401", i, p.name, r.status)
		}
	}
	r := secSend(t, http.DefaultClient, h.base, "GET", "/api/v1/events", nil, "Authorization", "Wrong-twenty-first-key-0000000000000000")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("21st wrong key: %d Retry-After %q, want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	for _, p := range pullPaths {
		r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(good)...)
		if r.status != 429 || r.header.Get("Retry-After") == "" {
			t.Errorf("%s with a good key from the blocked address: %d, want 429 with Retry-After", p.name, r.status)
		}
	}
	for _, k := range []string{testAdminKey, h.sourceKey} {
		if r := secSend(t, http.DefaultClient, h.base, "GET", "/api/v1/events", nil, "Authorization", k); r.status != 429 {
			t.Errorf("admin API from the blocked address: %d, want 429", r.status)
		}
	}
	// Anonymous paths take no key, so there is nothing to guess there.
	if r := secSend(t, http.DefaultClient, h.base, "GET", "/feeds/misp/manifest.json", nil); r.status != 200 {
		t.Errorf("anonymous feed from the blocked address: %d, want 200", r.status)
	}
	if r := secSend(t, http.DefaultClient, h.base, "GET", "/healthz", nil); r.status != 200 {
		t.Errorf("healthz from the blocked address: %d", r.status)
	}
}

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 (or a CA
// when isCA) and returns the PEM paths and the parsed pair.
func selfSigned(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPath, keyPath string, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	certPath = writeFile(t, dir, name+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath = writeFile(t, dir, name+".key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certPath, keyPath, cert, key
}

// serveTLS starts a gateway from a harness configuration with a tls block
// appended, through listen() as `schakel serve` does.
func serveTLS(t *testing.T, tlsBlock string) string {
	t.Helper()
	h := newHarness(t, harnessOpts{})
	// Reuse the harness's files; a second gateway on the same state.
	path := filepath.Join(h.dir, "schakel.yaml")
	cfgText := strings.Replace(readFile(t, path), "listen: 127.0.0.1:0", "listen: 127.0.0.1:0\n"+tlsBlock, 1)
	writeFile(t, h.dir, "schakel-tls.yaml", cfgText)
	cfg, err := config.Load(filepath.Join(h.dir, "schakel-tls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, err := start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = g.Serve(ctx, ln, 5*time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecurityTLSListener: with tls.cert_file/key_file the listener speaks
// HTTPS only; with client_ca_file a client without a certificate signed by
// that CA is refused.
func TestSecurityTLSListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath, cert, _ := selfSigned(t, dir, "server", false, nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}

	t.Run("server certificate", func(t *testing.T) {
		addr := serveTLS(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", certPath, keyPath))
		if r := secSend(t, client(), "https://"+addr, "GET", "/healthz", nil); r.status != 200 {
			t.Fatalf("https healthz: %d", r.status)
		}
		plain := &http.Client{Timeout: 5 * time.Second}
		resp, err := plain.Get("http://" + addr + "/healthz")
		if err == nil {
			// Go's TLS server answers plain HTTP with a 400 telling to use HTTPS.
			if resp.StatusCode == 200 {
				t.Error("plain HTTP got 200 from the TLS listener")
			}
			resp.Body.Close()
		}
	})

	t.Run("client certificates", func(t *testing.T) {
		caPath, _, ca, caKey := selfSigned(t, dir, "client-ca", true, nil, nil)
		cPath, cKey, _, _ := selfSigned(t, dir, "client", false, ca, caKey)
		_, _, _, _ = selfSigned(t, dir, "stranger", false, nil, nil)
		addr := serveTLS(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_file: %q}", certPath, keyPath, caPath))
		good, err := tls.LoadX509KeyPair(cPath, cKey)
		if err != nil {
			t.Fatal(err)
		}
		stranger, err := tls.LoadX509KeyPair(filepath.Join(dir, "stranger.crt"), filepath.Join(dir, "stranger.key"))
		if err != nil {
			t.Fatal(err)
		}
		if r := secSend(t, client(good), "https://"+addr, "GET", "/healthz", nil); r.status != 200 {
			t.Fatalf("client with a CA-signed certificate: %d", r.status)
		}
		for name, c := range map[string]*http.Client{"no certificate": client(), "foreign certificate": client(stranger)} {
			resp, err := c.Get("https://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: got %d, want the handshake refused", name, resp.StatusCode)
			}
		}
	})

	t.Run("bad files name the setting", func(t *testing.T) {
		cfg := &config.Config{Listen: "127.0.0.1:0", TLS: config.TLS{CertFile: filepath.Join(dir, "missing.crt"), KeyFile: keyPath}}
		if _, err := listen(cfg); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
			t.Errorf("missing cert: %v", err)
		}
		cfg.TLS = config.TLS{CertFile: certPath, KeyFile: keyPath, ClientCAFile: keyPath}
		if _, err := listen(cfg); err == nil || !strings.Contains(err.Error(), "tls.client_ca_file") {
			t.Errorf("CA file without a certificate: %v", err)
		}
	})
}

// startWithExtra runs a gateway from the harness configuration with extra
// top-level YAML appended.
func startWithExtra(t *testing.T, extra string) *harness {
	t.Helper()
	r := redistest.New(t)
	dir := t.TempDir()
	a, b := webhooktest.New(t, ""), webhooktest.New(t, "")
	path := harnessConfig(t, dir, r.URL, r.Prefix, "127.0.0.1:0", a, b, harnessOpts{})
	writeFile(t, dir, "schakel.yaml", readFile(t, path)+extra+"\n")
	h := startFromConfig(t, path)
	h.a, h.b, h.dir, h.redis = a, b, dir, r
	return h
}

// allKeys lists the keys matching pattern, on every master of a cluster.
func allKeys(t *testing.T, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		keys, err := c.Keys(t.Context(), pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	var mu sync.Mutex
	var out []string
	err := cc.ForEachMaster(t.Context(), func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventKeys lists the Redis keys that name event id.
func eventKeys(t *testing.T, h *harness, id string) []string {
	t.Helper()
	return allKeys(t, h.redis.Client, h.redis.Prefix+"*"+id+"*")
}

// memberOf lists the sorted sets and sets under the prefix holding a member
// that names event id (indexes, views, routing, recipients).
func memberOf(t *testing.T, h *harness, id string) []string {
	t.Helper()
	ctx := t.Context()
	rdb := h.redis.Client
	var out []string
	for _, k := range allKeys(t, rdb, h.redis.Prefix+"*") {
		var members []string
		switch rdb.Type(ctx, k).Val() {
		case "zset":
			members = rdb.ZRange(ctx, k, 0, -1).Val()
		case "set":
			members = rdb.SMembers(ctx, k).Val()
		}
		for _, m := range members {
			if strings.Contains(m, id) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// TestRetentionDeletesExpiredEventsAndAudit: an event whose current version
// is older than retention.events disappears from every pull path, the admin
// API and Redis (all its keys, index and view entries); a newer event stays;
// audit records older than retention.audit are trimmed.
func TestRetentionDeletesExpiredEventsAndAudit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	keyA := secKey(t, h, "/api/v1/constituents/a/keys")
	ind := func(v string) map[string]any { return map[string]any{"type": "ipv4", "value": v, "detect": true} }
	h.ingest(event(secNotif, "notification", "AMBER", map[string]any{"indicators": []any{ind("192.0.2.10")}}), 202)
	h.ingest(event(secClear, "advisory", "CLEAR", nil), 202)
	if err := h.a.WaitFor(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	settle(h.a, h.b)
	if len(eventKeys(t, h, secNotif)) < 4 {
		t.Fatalf("expected the stored event's keys, got %v", eventKeys(t, h, secNotif))
	}
	if len(memberOf(t, h, secNotif)) < 3 {
		t.Fatalf("expected index and view entries, got %v", memberOf(t, h, secNotif))
	}
	time.Sleep(1100 * time.Millisecond)
	h.ingest(event(secGreen, "advisory", "GREEN", nil), 202)

	sw := retention.New(retention.Options{Redis: h.redis.Client, Prefix: h.redis.Prefix, Events: h.g.Store,
		EventsAfter: time.Second, AuditAfter: time.Second})
	res, err := sw.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 2 || res.AuditRecords == 0 {
		t.Errorf("sweep: %+v, want 2 events and some audit records", res)
	}
	for _, id := range []string{secNotif, secClear} {
		if keys := eventKeys(t, h, id); len(keys) != 0 {
			t.Errorf("%s left keys behind: %v", id, keys)
		}
		if where := memberOf(t, h, id); len(where) != 0 {
			t.Errorf("%s left index or view entries in %v", id, where)
		}
		h.do("GET", "/api/v1/events/"+id, testAdminKey, nil, 404, nil)
	}
	for _, p := range pullPaths {
		r := secSend(t, http.DefaultClient, h.base, p.method, p.path, p.body, p.headers(keyA)...)
		if got := p.ids(t, r); !slices.Equal(got, []string{secGreen}) {
			t.Errorf("%s after retention: %v, want only the newer event", p.name, got)
		}
	}
	var list struct {
		Events []struct{ ID string }
	}
	h.do("GET", "/api/v1/events", testAdminKey, nil, 200, &list)
	if len(list.Events) != 1 || list.Events[0].ID != secGreen {
		t.Errorf("admin list after retention: %+v", list.Events)
	}
	recs, _, err := h.g.Audit.Recent(t.Context(), 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Time.Before(time.Now().Add(-2 * time.Second)) {
			t.Errorf("audit record older than retention kept: %+v", r)
		}
		if r.EventID == secNotif {
			t.Errorf("audit record of the expired event kept: %+v", r)
		}
	}
	// A second sweep finds nothing more; the newer event is still whole.
	if res, err := sw.Sweep(t.Context()); err != nil || res.Events != 0 {
		t.Errorf("second sweep: %+v %v", res, err)
	}
	h.do("GET", "/api/v1/events/"+secGreen, testAdminKey, nil, 200, nil)
}

// TestRetentionWorkerRunsFromConfig: with retention in the configuration
// the gateway sweeps on its own.
func TestRetentionWorkerRunsFromConfig(t *testing.T) {
	t.Parallel()
	h := startWithExtra(t, "retention: {events: 1s, audit: 1h}")
	h.ingest(event(secGreen, "advisory", "GREEN", nil), 202)
	deadline := time.Now().Add(15 * time.Second)
	for len(eventKeys(t, h, secGreen)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("event not deleted by the retention worker: %v", eventKeys(t, h, secGreen))
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.do("GET", "/api/v1/events/"+secGreen, testAdminKey, nil, 404, nil)
}
