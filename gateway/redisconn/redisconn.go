// Package redisconn turns the configured redis.url into a go-redis client:
// a single server (redis://, rediss://, unix://) or a Redis Cluster
// (redis+cluster://, rediss+cluster://). The rest of Schakel only sees a
// redis.UniversalClient, so the same code runs on both.
package redisconn

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// pingTimeout bounds the check that the server answers before start-up
// goes on; a cluster needs a round trip to every seed to learn its slots.
const pingTimeout = 10 * time.Second

// Open connects to the Redis named by rawURL and checks that it answers.
// poolSize applies (per node for a cluster) unless the URL sets pool_size.
//
// Accepted forms:
//
//	redis://[user:pass@]host:port[/db][?opts]           one server
//	rediss://…                                          one server over TLS
//	unix://[user:pass@]/path/to/socket[?db=N]           one server, local socket
//	redis+cluster://[user:pass@]h1:p1,h2:p2[/][?opts]   Redis Cluster (seed nodes)
//	rediss+cluster://…                                  Redis Cluster over TLS
//
// opts are go-redis's URL options (dial_timeout, read_timeout, pool_size, …).
func Open(ctx context.Context, rawURL string, poolSize int) (redis.UniversalClient, error) {
	c, err := New(rawURL, poolSize)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := ping(pctx, c); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis does not answer: %w", err)
	}
	return c, nil
}

// New builds the client for rawURL without contacting the server.
func New(rawURL string, poolSize int) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("redis.url: %q has no scheme (want redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://)", redact(rawURL))
	}
	setPool := poolSize > 0 && !hasPoolSize(rawURL)
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		if setPool {
			opts.PoolSize = poolSize
		}
		return redis.NewClient(opts), nil
	case "redis+cluster", "rediss+cluster":
		opts, err := parseCluster(strings.TrimSuffix(strings.ToLower(scheme), "+cluster"), rest)
		if err != nil {
			return nil, err
		}
		if setPool {
			opts.PoolSize = poolSize
		}
		return redis.NewClusterClient(opts), nil
	default:
		return nil, fmt.Errorf("redis.url: unknown scheme %q (want redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://)", scheme)
	}
}

// parseCluster reads "[userinfo@]h1:p1,h2:p2[/][?query]" and hands go-redis
// the form it understands: the first seed as host, the others as addr=.
func parseCluster(scheme, rest string) (*redis.ClusterOptions, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	path, query, _ := strings.Cut(tail, "?")
	if path != "" && path != "/" {
		return nil, fmt.Errorf("redis.url: a cluster URL takes no path or database number (got %q): Redis Cluster has only database 0", path)
	}
	userinfo, hosts := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	var seeds []string
	for h := range strings.SplitSeq(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		seeds = append(seeds, h)
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("redis.url: a cluster URL needs at least one host:port seed node")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("redis.url: query: %w", err)
	}
	for _, s := range seeds[1:] {
		q.Add("addr", s)
	}
	u := scheme + "://" + userinfo + seeds[0]
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	opts, err := redis.ParseClusterURL(u)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	return opts, nil
}

// ping checks every cluster shard (a cluster answers PING on one node even
// when others are down) or the one server.
func ping(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return n.Ping(ctx).Err()
		})
	}
	return c.Ping(ctx).Err()
}

func hasPoolSize(rawURL string) bool {
	_, query, ok := strings.Cut(rawURL, "?")
	if !ok {
		return false
	}
	q, err := url.ParseQuery(query)
	return err == nil && q.Has("pool_size")
}

// redact hides a password so an error about the URL can be logged.
func redact(rawURL string) string {
	at := strings.LastIndex(rawURL, "@")
	if at < 0 {
		return rawURL
	}
	return "…@" + rawURL[at+1:]
}
