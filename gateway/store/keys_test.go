package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

func TestKeyLifecycle(t *testing.T) {
	s, r, _ := newStore(t)
	if _, err := s.PutConstituent(ctx(t), gateway.Constituent{ID: "utrecht"}); err != nil {
		t.Fatal(err)
	}
	scopes := []Scope{
		{Role: RoleAdmin},
		{Role: RoleSource, Name: "partner-api"},
		{Role: RoleConstituent, Name: "utrecht"},
	}
	keys := map[string]Scope{}
	for _, sc := range scopes {
		key, err := s.CreateKey(ctx(t), sc)
		if err != nil {
			t.Fatalf("CreateKey(%v): %v", sc, err)
		}
		if !wellFormedKey(key) {
			t.Errorf("key %q is not 40 alphanumeric characters", key)
		}
		keys[key] = sc
	}
	for key, sc := range keys {
		got, err := s.Authenticate(ctx(t), key)
		if err != nil || got != sc {
			t.Errorf("Authenticate = %v, %v; want %v", got, err, sc)
		}
	}

	// Nothing in Redis holds a plaintext key.
	dump := dumpRedis(t, r.Client, r.Prefix)
	for key := range keys {
		if strings.Contains(dump, key) {
			t.Errorf("plaintext key found in Redis")
		}
		if !strings.Contains(dump, hashKey(key)) {
			t.Errorf("key hash not found in Redis")
		}
	}

	infos, err := s.Keys(ctx(t), Scope{Role: RoleSource, Name: "partner-api"})
	if err != nil || len(infos) != 1 {
		t.Fatalf("Keys = %v, %v", infos, err)
	}
	if infos[0].Hash != KeyHash(sourceKeyOf(keys)) || infos[0].Created.IsZero() {
		t.Errorf("KeyInfo %+v", infos[0])
	}
	sourceKey := sourceKeyOf(keys)
	if err := s.RevokeKey(ctx(t), infos[0].Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx(t), sourceKey); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if infos, _ := s.Keys(ctx(t), Scope{Role: RoleSource, Name: "partner-api"}); len(infos) != 0 {
		t.Errorf("revoked key still listed: %v", infos)
	}
	if err := s.RevokeKey(ctx(t), infos[0].Hash); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("second revoke: %v, want ErrNotFound", err)
	}
}

func TestCreateKeyRejectsBadScope(t *testing.T) {
	s, _, _ := newStore(t)
	cases := []struct {
		sc    Scope
		field string
	}{
		{Scope{Role: "root"}, "role"},
		{Scope{Role: RoleAdmin, Name: "x"}, "name"},
		{Scope{Role: RoleSource}, "name"},
		{Scope{Role: RoleConstituent}, "name"},
	}
	for _, c := range cases {
		_, err := s.CreateKey(ctx(t), c.sc)
		var v *gateway.ValidationError
		if !errors.As(err, &v) || v.Fields[0].Field != c.field {
			t.Errorf("CreateKey(%+v) = %v, want a ValidationError naming %s", c.sc, err, c.field)
		}
	}
	if _, err := s.CreateKey(ctx(t), Scope{Role: RoleConstituent, Name: "ghost"}); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("key for unknown constituent: %v, want ErrNotFound", err)
	}
	var v *gateway.ValidationError
	for _, p := range []string{"", "abc", "zzzzzzzzzzzz", strings.Repeat("a", 13)} {
		if err := s.RevokeKey(ctx(t), p); !errors.As(err, &v) {
			t.Errorf("RevokeKey(%q) = %v, want a ValidationError", p, err)
		}
	}
}

func TestAuthenticateRejectsWrongKeys(t *testing.T) {
	s, _, _ := newStore(t)
	key, err := s.CreateKey(ctx(t), Scope{Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	alt := "a"
	if key[39] == 'a' {
		alt = "b"
	}
	cases := map[string]string{
		"empty":        "",
		"too short":    key[:39],
		"too long":     key + "a",
		"non-alnum":    key[:39] + "-",
		"unicode":      key[:38] + "é",
		"padded":       " " + key[:39],
		"one char off": key[:39] + alt,
		"lower-cased":  strings.ToLower(key),
		"random":       NewKey(),
		"with bearer":  "Bearer " + key,
	}
	for name, k := range cases {
		if k == key {
			continue // lower-casing an all-lower key
		}
		if _, err := s.Authenticate(ctx(t), k); !errors.Is(err, gateway.ErrNotFound) {
			t.Errorf("%s: Authenticate = %v, want ErrNotFound", name, err)
		}
	}
}

// A malformed key is refused before Redis is asked: a Store whose Redis is
// unreachable still answers ErrNotFound, not a connection error.
func TestAuthenticateMalformedSkipsRedis(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	s := New(dead, "x")
	if _, err := s.Authenticate(ctx(t), "short"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("malformed: %v, want ErrNotFound", err)
	}
	if _, err := s.Authenticate(ctx(t), NewKey()); err == nil || errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("well-formed key with Redis down: %v, want a connection error", err)
	}
}

func TestAuthenticateCache(t *testing.T) {
	a, r, clk := newStore(t)
	b := New(r.Client, r.Prefix) // another replica
	b.now = clk.Now

	key, err := a.CreateKey(ctx(t), Scope{Role: RoleSource, Name: "feed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx(t), key); err != nil {
		t.Fatal(err)
	}
	infos, _ := b.Keys(ctx(t), Scope{Role: RoleSource, Name: "feed"})
	if err := b.RevokeKey(ctx(t), infos[0].Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx(t), key); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("revoking replica still accepts the key: %v", err)
	}
	clk.Add(authPositiveTTL - time.Second)
	if _, err := a.Authenticate(ctx(t), key); err != nil {
		t.Errorf("other replica within the cache TTL: %v (expected the cached scope)", err)
	}
	clk.Add(time.Second)
	if _, err := a.Authenticate(ctx(t), key); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("other replica after the cache TTL still accepts: %v", err)
	}

	// Unknown keys are remembered for at most a second.
	late := NewKey()
	if _, err := a.Authenticate(ctx(t), late); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatal(err)
	}
	if err := b.storeKey(ctx(t), late, Scope{Role: RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	clk.Add(authNegativeTTL)
	if _, err := a.Authenticate(ctx(t), late); err != nil {
		t.Errorf("key issued elsewhere still unknown after %v: %v", authNegativeTTL, err)
	}
}

func TestNewKeyIsUniform(t *testing.T) {
	const keys = 2500 // 100,000 characters, about 1613 per symbol
	counts := map[rune]int{}
	seen := map[string]bool{}
	for range keys {
		k := NewKey()
		if seen[k] {
			t.Fatal("a key repeated")
		}
		seen[k] = true
		for _, c := range k {
			counts[c]++
		}
	}
	if len(counts) != len(keyAlphabet) {
		t.Errorf("%d distinct characters, want %d", len(counts), len(keyAlphabet))
	}
	// Modulo bias (256 % 62) would make 'A'…'H' about 25% more frequent;
	// chance alone stays within ±15% (about 6 standard deviations).
	want := float64(keys*keyLen) / float64(len(keyAlphabet))
	for c, n := range counts {
		if d := float64(n)/want - 1; d > 0.15 || d < -0.15 {
			t.Errorf("character %q occurs %d times, expected about %.0f", c, n, want)
		}
	}
}

func TestAuthCacheBounded(t *testing.T) {
	c := newAuthCache(3)
	now := t0
	for i, h := range []string{"a", "b", "c"} {
		c.put(h, authEntry{found: true, expires: now.Add(time.Duration(i+1) * time.Second)}, 0, now)
	}
	c.put("wrong", authEntry{expires: now.Add(time.Second)}, 0, now)
	if _, _, ok := c.get("wrong", now); ok {
		t.Error("a negative entry pushed out a valid key")
	}
	c.put("d", authEntry{found: true, expires: now.Add(time.Minute)}, 0, now.Add(1500*time.Millisecond))
	if len(c.m) != 3 {
		t.Errorf("cache holds %d entries, want 3", len(c.m))
	}
	if _, _, ok := c.get("a", now); ok {
		t.Error("expired entry a survived a full-cache insert")
	}
	_, gen, _ := c.get("d", now)
	c.drop("d")
	c.put("d", authEntry{found: true, expires: now.Add(time.Minute)}, gen, now)
	if _, _, ok := c.get("d", now); ok {
		t.Error("a lookup that raced a revoke put the key back")
	}
}

func sourceKeyOf(keys map[string]Scope) string {
	for k, sc := range keys {
		if sc.Role == RoleSource {
			return k
		}
	}
	return ""
}

// dumpRedis returns every value under prefix as text.
func dumpRedis(t *testing.T, c redis.UniversalClient, prefix string) string {
	t.Helper()
	var sb strings.Builder
	bg := context.Background()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, n redis.Cmdable) error {
		iter := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		// SCAN sees only the node it is sent to.
		err = cc.ForEachMaster(bg, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	} else {
		err = scan(bg, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sb.WriteString(k + "\n")
		switch c.Type(bg, k).Val() {
		case "string":
			sb.WriteString(c.Get(bg, k).Val())
		case "hash":
			for f, v := range c.HGetAll(bg, k).Val() {
				sb.WriteString(f + "=" + v + "\n")
			}
		case "set":
			sb.WriteString(strings.Join(c.SMembers(bg, k).Val(), "\n"))
		case "zset":
			sb.WriteString(strings.Join(c.ZRange(bg, k, 0, -1).Val(), "\n"))
		case "list":
			sb.WriteString(strings.Join(c.LRange(bg, k, 0, -1).Val(), "\n"))
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
