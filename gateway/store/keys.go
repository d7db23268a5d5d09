package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// Role is what an API key may do.
type Role string

const (
	RoleAdmin       Role = "admin"
	RoleSource      Role = "source"
	RoleConstituent Role = "constituent"
)

// Scope is who a key speaks for. Name is the source name or constituent id,
// empty for admin keys.
type Scope struct {
	Role Role   `json:"role"`
	Name string `json:"name,omitempty"`
}

// KeyInfo describes an issued key without revealing it. Hash is the first
// 12 hex digits of its SHA-256, enough to name it for revocation.
type KeyInfo struct {
	Hash    string    `json:"hash"`
	Scope   Scope     `json:"scope"`
	Created time.Time `json:"created"`
}

const (
	keyLen      = 40 // MISP requires 40 alphanumeric characters
	keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// keyByteLimit is the largest multiple of len(keyAlphabet) that fits a
	// byte; bytes at or above it are rejected so every character is equally
	// likely.
	keyByteLimit  = 256 - 256%len(keyAlphabet)
	hashPrefixLen = 12

	authPositiveTTL = 10 * time.Second
	authNegativeTTL = time.Second
	authCacheSize   = 10000
)

type storedKey struct {
	Scope
	Created time.Time `json:"created"`
}

// NewKey returns a key of keyLen (40) characters drawn uniformly from
// keyAlphabet: the form MISP requires. Admin keys for admin.keys_file are
// made with it too.
func NewKey() string {
	out := make([]byte, 0, keyLen)
	buf := make([]byte, 2*keyLen)
	for len(out) < keyLen {
		_, _ = rand.Read(buf) // never fails (crypto/rand since Go 1.24)
		for _, b := range buf {
			if int(b) >= keyByteLimit {
				continue
			}
			out = append(out, keyAlphabet[int(b)%len(keyAlphabet)])
			if len(out) == keyLen {
				break
			}
		}
	}
	return string(out)
}

func wellFormedKey(key string) bool {
	if len(key) != keyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// KeyHash is the 12-hex-digit display form of a key's SHA-256: what KeyInfo,
// RevokeKey and audit actors ("admin:<hash12>") use to name a key.
func KeyHash(key string) string { return hashKey(key)[:hashPrefixLen] }

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func checkScope(sc Scope) error {
	switch sc.Role {
	case RoleAdmin:
		if sc.Name != "" {
			return invalid("name", "must be empty for admin keys")
		}
	case RoleSource, RoleConstituent:
		if sc.Name == "" {
			return invalid("name", "is required for "+string(sc.Role)+" keys")
		}
	default:
		return invalid("role", fmt.Sprintf("unknown role %q", sc.Role))
	}
	return nil
}

func (s *Store) scopeKey(sc Scope) string { return s.key("keys", string(sc.Role), sc.Name) }

// CreateKey issues a key for sc and returns it; only its SHA-256 is stored,
// so this is the one time it is seen. A constituent key needs the
// constituent to exist.
func (s *Store) CreateKey(ctx context.Context, sc Scope) (string, error) {
	if err := checkScope(sc); err != nil {
		return "", err
	}
	if sc.Role == RoleConstituent {
		ok, err := s.rdb.HExists(ctx, s.key("constituents"), sc.Name).Result()
		if err != nil {
			return "", fmt.Errorf("look up constituent %q: %w", sc.Name, err)
		}
		if !ok {
			return "", fmt.Errorf("constituent %q: %w", sc.Name, gateway.ErrNotFound)
		}
	}
	// A clash of 48-bit display prefixes is astronomically rare; drawing
	// again keeps every prefix naming one key.
	for range 3 {
		key := NewKey()
		if err := s.storeKey(ctx, key, sc); errors.Is(err, errPrefixTaken) {
			continue
		} else if err != nil {
			return "", err
		}
		return key, nil
	}
	return "", errors.New("create key: display prefix clashes persist")
}

var errPrefixTaken = errors.New("key hash prefix taken")

func (s *Store) storeKey(ctx context.Context, key string, sc Scope) error {
	h := hashKey(key)
	ok, err := s.rdb.HSetNX(ctx, s.key("keys", "short"), h[:hashPrefixLen], h).Result()
	if err != nil {
		return fmt.Errorf("store key: %w", err)
	}
	if !ok {
		return errPrefixTaken
	}
	blob, err := json.Marshal(storedKey{Scope: sc, Created: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, s.key("keys"), h, blob)
	pipe.SAdd(ctx, s.scopeKey(sc), h)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store key: %w", err)
	}
	// A lookup of this key may have been cached as unknown a moment ago.
	s.auth.drop(h)
	return nil
}

// Authenticate returns the scope of key, or gateway.ErrNotFound for an
// unknown, revoked or malformed key. Results are cached in process: found
// keys for 10 s (a revoke on another replica takes that long to bite; a
// revoke through this Store bites at once), unknown keys for 1 s.
func (s *Store) Authenticate(ctx context.Context, key string) (Scope, error) {
	if !wellFormedKey(key) {
		return Scope{}, fmt.Errorf("api key: %w", gateway.ErrNotFound)
	}
	h := hashKey(key)
	now := s.now()
	e, gen, ok := s.auth.get(h, now)
	if ok {
		if !e.found {
			return Scope{}, fmt.Errorf("api key: %w", gateway.ErrNotFound)
		}
		return e.scope, nil
	}
	blob, err := s.rdb.HGet(ctx, s.key("keys"), h).Bytes()
	if errors.Is(err, redis.Nil) {
		s.auth.put(h, authEntry{expires: now.Add(authNegativeTTL)}, gen, now)
		return Scope{}, fmt.Errorf("api key: %w", gateway.ErrNotFound)
	}
	if err != nil {
		return Scope{}, fmt.Errorf("look up api key: %w", err)
	}
	var k storedKey
	if err := json.Unmarshal(blob, &k); err != nil {
		return Scope{}, fmt.Errorf("decode api key %s: %w", h[:hashPrefixLen], err)
	}
	s.auth.put(h, authEntry{scope: k.Scope, found: true, expires: now.Add(authPositiveTTL)}, gen, now)
	return k.Scope, nil
}

// RevokeKey removes the key whose hash starts with hashPrefix (the 12 hex
// digits KeyInfo shows, or the full 64).
func (s *Store) RevokeKey(ctx context.Context, hashPrefix string) error {
	p := strings.ToLower(hashPrefix)
	if (len(p) != hashPrefixLen && len(p) != sha256.Size*2) || !isHex(p) {
		return invalid("hash", "must be 12 or 64 hex digits")
	}
	h := p
	if len(p) == hashPrefixLen {
		var err error
		h, err = s.rdb.HGet(ctx, s.key("keys", "short"), p).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("key %s: %w", p, gateway.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("look up key %s: %w", p, err)
		}
	}
	blob, err := s.rdb.HGet(ctx, s.key("keys"), h).Bytes()
	if errors.Is(err, redis.Nil) {
		s.rdb.HDel(ctx, s.key("keys", "short"), h[:hashPrefixLen]) // tidy a half-written key
		return fmt.Errorf("key %s: %w", h[:hashPrefixLen], gateway.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("look up key %s: %w", h[:hashPrefixLen], err)
	}
	var k storedKey
	if err := json.Unmarshal(blob, &k); err != nil {
		return fmt.Errorf("decode key %s: %w", h[:hashPrefixLen], err)
	}
	return s.dropKeys(ctx, k.Scope, h)
}

// dropKeys deletes the hashes hs, all issued for sc, and forgets them locally.
func (s *Store) dropKeys(ctx context.Context, sc Scope, hs ...string) error {
	if len(hs) == 0 {
		return nil
	}
	shorts := make([]string, len(hs))
	members := make([]any, len(hs))
	for i, h := range hs {
		shorts[i] = h[:hashPrefixLen]
		members[i] = h
	}
	pipe := s.rdb.Pipeline()
	pipe.HDel(ctx, s.key("keys"), hs...)
	pipe.HDel(ctx, s.key("keys", "short"), shorts...)
	pipe.SRem(ctx, s.scopeKey(sc), members...)
	_, err := pipe.Exec(ctx)
	// Forget them locally even on error: failing closed is the safe side.
	s.auth.drop(hs...)
	if err != nil {
		return fmt.Errorf("revoke keys: %w", err)
	}
	return nil
}

// revokeScope revokes every key issued for sc.
func (s *Store) revokeScope(ctx context.Context, sc Scope) error {
	hs, err := s.rdb.SMembers(ctx, s.scopeKey(sc)).Result()
	if err != nil {
		return fmt.Errorf("list keys of %s %q: %w", sc.Role, sc.Name, err)
	}
	return s.dropKeys(ctx, sc, hs...)
}

// Keys lists the keys issued for sc, oldest first.
func (s *Store) Keys(ctx context.Context, sc Scope) ([]KeyInfo, error) {
	if err := checkScope(sc); err != nil {
		return nil, err
	}
	hs, err := s.rdb.SMembers(ctx, s.scopeKey(sc)).Result()
	if err != nil {
		return nil, fmt.Errorf("list keys of %s %q: %w", sc.Role, sc.Name, err)
	}
	if len(hs) == 0 {
		return nil, nil
	}
	blobs, err := s.rdb.HMGet(ctx, s.key("keys"), hs...).Result()
	if err != nil {
		return nil, fmt.Errorf("read keys of %s %q: %w", sc.Role, sc.Name, err)
	}
	out := make([]KeyInfo, 0, len(hs))
	for i, b := range blobs {
		blob, ok := b.(string)
		if !ok {
			continue
		}
		var k storedKey
		if err := json.Unmarshal([]byte(blob), &k); err != nil {
			return nil, fmt.Errorf("decode key %s: %w", hs[i][:hashPrefixLen], err)
		}
		out = append(out, KeyInfo{Hash: hs[i][:hashPrefixLen], Scope: k.Scope, Created: k.Created})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return out, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// authCache remembers Authenticate results by key hash. gen changes on every
// drop, so a lookup that raced a revoke does not put the revoked key back.
type authCache struct {
	mu  sync.Mutex
	m   map[string]authEntry
	gen uint64
	max int
}

type authEntry struct {
	scope   Scope
	found   bool
	expires time.Time
}

func newAuthCache(max int) *authCache {
	return &authCache{m: make(map[string]authEntry), max: max}
}

func (c *authCache) get(h string, now time.Time) (authEntry, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if ok && now.Before(e.expires) {
		return e, c.gen, true
	}
	return authEntry{}, c.gen, false
}

func (c *authCache) put(h string, e authEntry, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
	}
	if len(c.m) >= c.max {
		if !e.found {
			return // a flood of wrong keys must not push out good ones
		}
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[h] = e
}

func (c *authCache) drop(hs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hs {
		delete(c.m, h)
	}
	c.gen++
}

// ListKeys lists every issued key whose role is role and name is name (an
// empty filter matches all), oldest first. It reads the whole key hash: there
// are as many keys as sources and constituents, not more.
func (s *Store) ListKeys(ctx context.Context, role Role, name string) ([]KeyInfo, error) {
	all, err := s.rdb.HGetAll(ctx, s.key("keys")).Result()
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(all))
	for h, blob := range all {
		var k storedKey
		if err := json.Unmarshal([]byte(blob), &k); err != nil {
			return nil, fmt.Errorf("decode key %s: %w", h[:min(len(h), hashPrefixLen)], err)
		}
		if (role != "" && k.Role != role) || (name != "" && k.Name != name) || len(h) < hashPrefixLen {
			continue
		}
		out = append(out, KeyInfo{Hash: h[:hashPrefixLen], Scope: k.Scope, Created: k.Created})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return out, nil
}
