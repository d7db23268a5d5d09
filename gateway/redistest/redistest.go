// Package redistest gives tests a Redis: the server named by REDIS_URL when it
// is set (CI points it at a real redis-server, database 15), otherwise an
// in-process miniredis. Each test gets its own key prefix, so packages that
// `go test` runs in parallel never see each other's keys.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Redis is one test's view of a Redis server.
type Redis struct {
	Client redis.UniversalClient
	Prefix string               // unique per test, e.g. "t3f9a1c2"
	Addr   string               // host:port, for subprocesses
	URL    string               // redis://…, for subprocesses and configuration
	Mini   *miniredis.Miniredis // nil against a real server
}

// Real reports whether tests run against a real server.
func Real() bool { return os.Getenv("REDIS_URL") != "" }

// New returns a Redis for tb and removes the test's keys when it ends.
func New(tb testing.TB) *Redis {
	tb.Helper()
	prefix := "t" + randomHex(6)
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			tb.Fatalf("REDIS_URL: %v", err)
		}
		c := redis.NewClient(opts)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			tb.Fatalf("REDIS_URL %s does not answer: %v", url, err)
		}
		tb.Cleanup(func() {
			deleteKeys(c, prefix+"*")
			deleteKeys(c, "rate:"+prefix+"*")
			_ = c.Close()
		})
		return &Redis{Client: c, Prefix: prefix, Addr: opts.Addr, URL: url}
	}
	m := miniredis.RunT(tb)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return &Redis{Client: c, Prefix: prefix, Addr: m.Addr(), URL: "redis://" + m.Addr() + "/0", Mini: m}
}

func deleteKeys(c *redis.Client, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
