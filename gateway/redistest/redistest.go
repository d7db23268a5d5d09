// Package redistest gives tests a Redis: the server named by REDIS_URL when it
// is set (CI points it at a real redis-server, database 15), otherwise an
// in-process miniredis; a redis+cluster:// REDIS_URL runs them against a
// Redis Cluster. Each test gets its own key prefix, so packages that `go test`
// runs in parallel never see each other's keys.
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

	"github.com/schakel/schakel/gateway/redisconn"
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
		// redis+cluster://… runs the tests against a Redis Cluster.
		c, err := redisconn.New(url, 0)
		if err != nil {
			tb.Fatalf("REDIS_URL: %v", err)
		}
		addr := ""
		if sc, ok := c.(*redis.Client); ok {
			addr = sc.Options().Addr
		}
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
		return &Redis{Client: c, Prefix: prefix, Addr: addr, URL: url}
	}
	m := miniredis.RunT(tb)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return &Redis{Client: c, Prefix: prefix, Addr: m.Addr(), URL: "redis://" + m.Addr() + "/0", Mini: m}
}

func deleteKeys(c redis.UniversalClient, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cc, ok := c.(*redis.ClusterClient); ok {
		// SCAN sees only the node it is sent to.
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			deleteNodeKeys(ctx, n, pattern)
			return nil
		})
		return
	}
	deleteNodeKeys(ctx, c, pattern)
}

// deleteNodeKeys unlinks key by key in pipelines: a cluster node refuses a
// multi-key UNLINK whose keys lie in different slots.
func deleteNodeKeys(ctx context.Context, c redis.Cmdable, pattern string) {
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	pipe := c.Pipeline()
	for iter.Next(ctx) {
		pipe.Unlink(ctx, iter.Val())
		if pipe.Len() == 500 {
			_, _ = pipe.Exec(ctx)
		}
	}
	_, _ = pipe.Exec(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
