package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// leader lets one gateway replica at a time read a mailbox, so replicas do
// not fetch and move the same messages. Losing the lease (Redis gone, a
// pause longer than the TTL) cancels the holder's context.
type leader struct {
	rdb redis.UniversalClient
	key string
	ttl time.Duration
}

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

// acquire waits for the lease and returns a context that ends when ctx does
// or the lease is lost, and a release function.
func (l *leader) acquire(ctx context.Context) (context.Context, func(), error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	for {
		ok, err := l.rdb.SetNX(ctx, l.key, token, l.ttl).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("mailbox lease: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(l.ttl / 3):
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			n, err := renewScript.Run(lctx, l.rdb, []string{l.key}, token, l.ttl.Milliseconds()).Int()
			if err != nil || n == 0 {
				if lctx.Err() == nil {
					cancel()
				}
				return
			}
		}
	}()
	release := func() {
		cancel()
		<-done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = unlockScript.Run(rctx, l.rdb, []string{l.key}, token).Err()
	}
	return lctx, release, nil
}
