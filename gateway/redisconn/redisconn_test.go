package redisconn

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func TestNewForms(t *testing.T) {
	tests := []struct {
		url      string
		cluster  bool
		addrs    []string
		pool     int
		tls      bool
		password string
	}{
		{url: "redis://127.0.0.1:6379/15", addrs: []string{"127.0.0.1:6379"}, pool: 77},
		{url: "redis://127.0.0.1:6379/0?pool_size=5", addrs: []string{"127.0.0.1:6379"}, pool: 5},
		{url: "rediss://:s3cret@redis.example:6380", addrs: []string{"redis.example:6380"}, pool: 77, tls: true, password: "s3cret"},
		{url: "unix:///run/redis.sock?db=2", addrs: []string{"/run/redis.sock"}, pool: 77},
		{url: "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002", cluster: true,
			addrs: []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}, pool: 77},
		{url: "redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/?pool_size=9&read_timeout=2s", cluster: true,
			addrs: []string{"10.0.0.1:7000", "10.0.0.2:7001"}, pool: 9, password: "p"},
		{url: "rediss+cluster://:pw@node-a:7000", cluster: true, addrs: []string{"node-a:7000"}, pool: 77, tls: true, password: "pw"},
		{url: "REDIS+CLUSTER://10.0.0.1:7000", cluster: true, addrs: []string{"10.0.0.1:7000"}, pool: 77},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := New(tt.url, 77)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			switch c := c.(type) {
			case *redis.ClusterClient:
				if !tt.cluster {
					t.Fatal("got a cluster client for a single-server URL")
				}
				o := c.Options()
				if !slices.Equal(o.Addrs, tt.addrs) || o.PoolSize != tt.pool || (o.TLSConfig != nil) != tt.tls || o.Password != tt.password {
					t.Errorf("options: addrs %v pool %d tls %v password %q", o.Addrs, o.PoolSize, o.TLSConfig != nil, o.Password)
				}
			case *redis.Client:
				if tt.cluster {
					t.Fatal("got a single-server client for a cluster URL")
				}
				o := c.Options()
				if o.Addr != tt.addrs[0] || o.PoolSize != tt.pool || (o.TLSConfig != nil) != tt.tls || o.Password != tt.password {
					t.Errorf("options: addr %v pool %d tls %v password %q", o.Addr, o.PoolSize, o.TLSConfig != nil, o.Password)
				}
			default:
				t.Fatalf("unexpected client %T", c)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct{ url, want string }{
		{"127.0.0.1:6379", "no scheme"},
		{"http://127.0.0.1:6379", `unknown scheme "http"`},
		{"redis+cluster://", "at least one host:port"},
		{"redis+cluster://,,", "at least one host:port"},
		{"redis+cluster://10.0.0.1:7000/3", "no path or database"},
		{"redis+cluster://10.0.0.1:7000?pool_size=x", "pool_size"},
		{"redis+cluster://10.0.0.1:7000?bogus=1", "bogus"},
		{"redis://127.0.0.1:6379/x", "database"},
		{"redis+sentinel://x:1", "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := New(tt.url, 10)
			if err == nil {
				c.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "redis.url") {
				t.Errorf("error %q, want it to start with redis.url and mention %q", err, tt.want)
			}
		})
	}
}

func TestErrorHidesPassword(t *testing.T) {
	_, err := New("s3cretpass@host:6379", 1)
	if err == nil || strings.Contains(err.Error(), "s3cretpass") {
		t.Errorf("error %v", err)
	}
}

func TestOpen(t *testing.T) {
	m := miniredis.RunT(t)
	c, err := Open(context.Background(), "redis://"+m.Addr(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get("k"); got != "v" {
		t.Errorf("value %q", got)
	}

	addr := m.Addr()
	m.Close()
	if _, err := Open(context.Background(), "redis://"+addr+"?dial_timeout=200ms&max_retries=-1", 3); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("Open of a stopped server: %v", err)
	}
}

func FuzzNew(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0", "redis+cluster://a:1,b:2/?pool_size=3", "rediss+cluster://u:p@x:1",
		"unix:///tmp/s", "redis+cluster://@,/", "redis+cluster://a:1?%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, url string) {
		c, err := New(url, 2)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "redis.url") {
				t.Errorf("error %q does not name redis.url", err)
			}
			return
		}
		_ = c.Close()
	})
}
