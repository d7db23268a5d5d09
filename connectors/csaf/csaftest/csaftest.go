// Package csaftest runs a CSAF 2.0 trusted provider for tests: a real HTTP
// server publishing provider-metadata.json, an OpenPGP public key it
// generates, a changes.csv directory and/or a ROLIE feed, and each advisory
// with its .sha256, .sha512 and detached .asc signature, laid out as CSAF §7
// prescribes. Tests publish documents, publish revisions and tamper with
// files, then point a CSAF source at URL.
package csaftest

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	csafmap "github.com/schakel/schakel/mappings/csaf"
)

// Layout chooses how the provider lists its advisories.
type Layout int

const (
	Directory Layout = iota // directory_url with changes.csv (NCSC-NL's layout)
	ROLIE                   // one ROLIE feed for TLP:WHITE
)

// Provider is a running provider. URL is its provider-metadata.json.
type Provider struct {
	URL         string // provider-metadata.json
	Base        string // scheme://host
	Fingerprint string // upper-case hex of the signing key
	Key         *openpgp.Entity

	layout Layout
	srv    *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte // path → body
	listed   map[string]time.Time
	requests map[string]int
}

// New starts a provider with a fresh Ed25519 signing key and closes it on
// t.Cleanup.
func New(t testing.TB, layout Layout) *Provider {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return time.Now().Add(-time.Hour) }}
	key, err := openpgp.NewEntity("Test CSAF Provider", "csaftest", "csaf@provider.example", cfg)
	if err != nil {
		t.Fatalf("csaftest: generate key: %v", err)
	}
	p := &Provider{Key: key, layout: layout, files: map[string][]byte{}, listed: map[string]time.Time{}, requests: map[string]int{}}
	p.Fingerprint = strings.ToUpper(hex.EncodeToString(key.PrimaryKey.Fingerprint))
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.Base = p.srv.URL
	p.URL = p.Base + "/.well-known/csaf/provider-metadata.json"

	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Serialize(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	p.files["/.well-known/csaf/openpgp/"+p.Fingerprint+".asc"] = pub.Bytes()
	p.rebuild()
	return p
}

// Close stops the server.
func (p *Provider) Close() { p.srv.Close() }

// Metadata returns provider-metadata.json as served (changes with
// SetFile).
func (p *Provider) Metadata() []byte { return p.File("/.well-known/csaf/provider-metadata.json") }

func (p *Provider) metadata() []byte {
	dist := map[string]any{}
	if p.layout == ROLIE {
		dist["rolie"] = map[string]any{"feeds": []any{map[string]any{
			"summary": "WHITE advisories", "tlp_label": "WHITE", "url": p.Base + "/.well-known/csaf/white/provider-feed-tlp-white.json",
		}}}
	} else {
		dist["directory_url"] = p.Base + "/.well-known/csaf/white/"
	}
	pm := map[string]any{
		"canonical_url":              p.URL,
		"distributions":              []any{dist},
		"last_updated":               time.Now().UTC().Format(time.RFC3339),
		"list_on_CSAF_aggregators":   true,
		"metadata_version":           "2.0",
		"mirror_on_CSAF_aggregators": true,
		"public_openpgp_keys": []any{map[string]any{
			"fingerprint": p.Fingerprint, "url": p.Base + "/.well-known/csaf/openpgp/" + p.Fingerprint + ".asc",
		}},
		"publisher": map[string]any{"category": "coordinator", "name": "Test Provider", "namespace": "https://provider.example"},
		"role":      "csaf_trusted_provider",
	}
	b, _ := json.MarshalIndent(pm, "", "  ")
	return b
}

// Publish signs doc and puts it at white/<year>/<file name from the
// tracking id> with its sidecars, listed with the given time (zero: the
// document's current_release_date). It returns the path. Publishing a new
// revision of the same tracking id overwrites the file, as NCSC does.
func (p *Provider) Publish(t testing.TB, doc []byte, listed time.Time) string {
	t.Helper()
	var d struct {
		Document struct {
			Tracking struct {
				ID                 string `json:"id"`
				InitialReleaseDate string `json:"initial_release_date"`
				CurrentReleaseDate string `json:"current_release_date"`
			} `json:"tracking"`
		} `json:"document"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("csaftest: publish: %v", err)
	}
	year := "2026"
	if len(d.Document.Tracking.InitialReleaseDate) >= 4 {
		year = d.Document.Tracking.InitialReleaseDate[:4]
	}
	if listed.IsZero() {
		var err error
		if listed, err = time.Parse(time.RFC3339Nano, d.Document.Tracking.CurrentReleaseDate); err != nil {
			t.Fatalf("csaftest: current_release_date: %v", err)
		}
	}
	path := "/.well-known/csaf/white/" + year + "/" + csafmap.FileName(d.Document.Tracking.ID)
	p.PublishAt(t, path, doc, listed)
	return path
}

// PublishAt is Publish at an explicit path (for a wrong file name).
func (p *Provider) PublishAt(t testing.TB, path string, doc []byte, listed time.Time) {
	t.Helper()
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, p.Key, bytes.NewReader(doc), nil); err != nil {
		t.Fatalf("csaftest: sign: %v", err)
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	s256 := sha256.Sum256(doc)
	s512 := sha512.Sum512(doc)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[path] = slices.Clone(doc)
	p.files[path+".sha256"] = fmt.Appendf(nil, "%s  %s\n", hex.EncodeToString(s256[:]), name)
	p.files[path+".sha512"] = fmt.Appendf(nil, "%s  %s\n", hex.EncodeToString(s512[:]), name)
	p.files[path+".asc"] = sig.Bytes()
	p.listed[path] = listed
	p.rebuild()
}

// SetFile replaces (or with nil removes) any served file, sidecars and
// listings included, without re-signing: the way to tamper.
func (p *Provider) SetFile(path string, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if body == nil {
		delete(p.files, path)
		return
	}
	p.files[path] = slices.Clone(body)
}

// File returns a served file.
func (p *Provider) File(path string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.files[path])
}

// Relist changes the time the listing gives for path, as a provider does
// when it republishes.
func (p *Provider) Relist(path string, listed time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listed[path] = listed
	p.rebuild()
}

// Withdraw removes path and its sidecars and takes it out of the listings.
func (p *Provider) Withdraw(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, suffix := range []string{"", ".sha256", ".sha512", ".asc"} {
		delete(p.files, path+suffix)
	}
	delete(p.listed, path)
	p.rebuild()
}

// Requests counts GETs of path.
func (p *Provider) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[path]
}

// rebuild regenerates metadata, changes.csv, index.txt and the ROLIE feed;
// called with mu held (or before serving).
func (p *Provider) rebuild() {
	p.files["/.well-known/csaf/provider-metadata.json"] = p.metadata()
	paths := make([]string, 0, len(p.listed))
	for path := range p.listed {
		paths = append(paths, path)
	}
	// Newest first, as CSAF §7.1.13 asks.
	slices.SortFunc(paths, func(a, b string) int {
		if c := p.listed[b].Compare(p.listed[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	const dir = "/.well-known/csaf/white/"
	var changes, index bytes.Buffer
	var entries []any
	for _, path := range paths {
		rel := strings.TrimPrefix(path, dir)
		// NCSC's form: quoted, microseconds, "+00:00".
		fmt.Fprintf(&changes, "%q,%q\n", rel, p.listed[path].UTC().Format("2006-01-02T15:04:05.000000")+"+00:00")
		fmt.Fprintf(&index, "%s\n", rel)
		u := p.Base + path
		entries = append(entries, map[string]any{
			"id": strings.TrimSuffix(rel[strings.LastIndexByte(rel, '/')+1:], ".json"), "title": rel,
			"link": []any{
				map[string]any{"rel": "self", "href": u},
				map[string]any{"rel": "hash", "href": u + ".sha256"},
				map[string]any{"rel": "hash", "href": u + ".sha512"},
				map[string]any{"rel": "signature", "href": u + ".asc"},
			},
			"published": p.listed[path].UTC().Format(time.RFC3339),
			"updated":   p.listed[path].UTC().Format(time.RFC3339Nano),
			"content":   map[string]any{"type": "application/json", "src": u},
			"format":    map[string]any{"schema": "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json", "version": "2.0"},
		})
	}
	p.files[dir+"changes.csv"] = changes.Bytes()
	p.files[dir+"index.txt"] = index.Bytes()
	feed, _ := json.MarshalIndent(map[string]any{"feed": map[string]any{
		"id": "test-provider-white", "title": "Test provider TLP:WHITE",
		"link":     []any{map[string]any{"rel": "self", "href": p.Base + dir + "provider-feed-tlp-white.json"}},
		"category": []any{map[string]any{"scheme": "urn:ietf:params:rolie:category:information-type", "term": "csaf"}},
		"updated":  time.Now().UTC().Format(time.RFC3339), "entry": entries,
	}}, "", "  ")
	p.files[dir+"provider-feed-tlp-white.json"] = feed
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests[r.URL.Path]++
	body, ok := p.files[r.URL.Path]
	p.mu.Unlock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, ".json"):
		w.Header().Set("Content-Type", "application/json")
	case strings.HasSuffix(r.URL.Path, ".csv"):
		w.Header().Set("Content-Type", "text/csv")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	_, _ = w.Write(body)
}
