package mail

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// digests keeps, per e-mail target (recipient and address), the deliveries
// the rate limit deferred, and the ids of those that already went out inside
// a digest. All keys of one target share a hash tag, so the scripts below
// stay in one Redis Cluster slot:
//
//	<prefix>:mail:{t<hash>}:hold  HASH delivery_id → held JSON (delivery, projected event, handling)
//	<prefix>:mail:{t<hash>}:done  ZSET delivery_id, score = unix ms it went out in a digest
//	<prefix>:mail:{t<hash>}:lock  STRING token while one sender drains the hold
type digests struct {
	rdb    redis.UniversalClient
	prefix string
	// keep is how long a digested id is remembered; the deliveries it
	// covers come back through the outbox well within it.
	keep     time.Duration
	lockTTL  time.Duration
	lockWait time.Duration
}

// held is one deferred delivery, as the dispatcher authorised and projected it.
type held struct {
	Delivery gateway.Delivery `json:"delivery"`
	Event    *gateway.Event   `json:"event"`
	Handling string           `json:"handling,omitempty"`
	HeldAt   time.Time        `json:"held_at"`
}

type targetKeys struct{ hold, done, lock string }

func (g *digests) keys(d gateway.Delivery) targetKeys {
	sum := sha256.Sum256([]byte(d.Recipient.String() + "\x00" + d.Target))
	base := g.prefix + ":mail:{t" + hex.EncodeToString(sum[:12]) + "}:"
	return targetKeys{hold: base + "hold", done: base + "done", lock: base + "lock"}
}

// holdScript records a deferred delivery unless a digest already carried it.
// KEYS: hold, done. ARGV: delivery id, held JSON, ttl ms.
var holdScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// markScript records that ids went out and drops them from the hold.
// KEYS: hold, done. ARGV: now ms, forget-before ms, ttl ms, ids...
var markScript = redis.NewScript(`
for i = 4, #ARGV do
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`)

// unlockScript deletes the lock only when we still own it.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func (g *digests) hold(ctx context.Context, h held) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode held delivery %s: %w", h.Delivery.ID, err)
	}
	k := g.keys(h.Delivery)
	ttl := strconv.FormatInt(g.keep.Milliseconds(), 10)
	if err := holdScript.Run(ctx, g.rdb, []string{k.hold, k.done}, h.Delivery.ID, b, ttl).Err(); err != nil {
		return fmt.Errorf("hold delivery %s for a digest: %w", h.Delivery.ID, err)
	}
	return nil
}

// state says whether d already went out inside a digest and whether it is
// held (was deferred before), in one round trip.
func (g *digests) state(ctx context.Context, d gateway.Delivery) (done, isHeld bool, err error) {
	k := g.keys(d)
	var score *redis.FloatCmd
	var exists *redis.BoolCmd
	_, err = g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		score = p.ZScore(ctx, k.done, d.ID)
		exists = p.HExists(ctx, k.hold, d.ID)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, false, fmt.Errorf("digest state of %s: %w", d.ID, err)
	}
	return score.Err() == nil, exists.Val(), nil
}

// done reports whether d already went out inside a digest.
func (g *digests) done(ctx context.Context, d gateway.Delivery) (bool, error) {
	err := g.rdb.ZScore(ctx, g.keys(d).done, d.ID).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("digest state of %s: %w", d.ID, err)
	}
	return true, nil
}

// pending returns the held deliveries of d's target, oldest first (by when
// routing created them).
func (g *digests) pending(ctx context.Context, d gateway.Delivery) ([]held, error) {
	m, err := g.rdb.HGetAll(ctx, g.keys(d).hold).Result()
	if err != nil {
		return nil, fmt.Errorf("read held deliveries: %w", err)
	}
	out := make([]held, 0, len(m))
	for id, blob := range m {
		var h held
		if err := json.Unmarshal([]byte(blob), &h); err != nil || h.Event == nil {
			// Unreadable: drop it from the hold rather than block every digest;
			// its delivery still goes out on its own through the outbox.
			_ = g.rdb.HDel(ctx, g.keys(d).hold, id).Err()
			continue
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b held) int {
		if c := a.Delivery.Created.Compare(b.Delivery.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Delivery.ID, b.Delivery.ID)
	})
	return out, nil
}

// mark records that ids went out and removes them from the hold.
func (g *digests) mark(ctx context.Context, d gateway.Delivery, now time.Time, ids []string) error {
	k := g.keys(d)
	args := make([]any, 0, 3+len(ids))
	args = append(args, now.UnixMilli(), now.Add(-g.keep).UnixMilli(), g.keep.Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	if err := markScript.Run(ctx, g.rdb, []string{k.hold, k.done}, args...).Err(); err != nil {
		return fmt.Errorf("record digested deliveries: %w", err)
	}
	return nil
}

// lock takes the target's drain lock, waiting up to lockWait; the returned
// function releases it.
func (g *digests) lock(ctx context.Context, d gateway.Delivery) (func(), error) {
	k := g.keys(d)
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	deadline := time.Now().Add(g.lockWait)
	for {
		ok, err := g.rdb.SetNX(ctx, k.lock, token, g.lockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("digest lock: %w", err)
		}
		if ok {
			return func() {
				// Release even when ctx is done, or the next digest waits for the TTL.
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = unlockScript.Run(uctx, g.rdb, []string{k.lock}, token).Err()
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("digest lock: another sender holds it")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
