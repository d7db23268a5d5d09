package outbox

import "github.com/redis/go-redis/v9"

// Each move out of the stream acknowledges and deletes the entry in the same
// script that stores it elsewhere, so a crash never leaves it in both places
// or in neither. XACK returning 0 means another consumer already settled the
// entry (it was reclaimed from us), and then nothing is moved.

// moveDelayed: KEYS stream, delayed; ARGV group, entry id, due ms, delivery JSON.
var moveDelayed = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
`)

// moveDead: KEYS stream, dead, deadidx; ARGV group, entry id, delivery id,
// delivery JSON, reason, attempts, failed_at. A delivery has at most one dead
// letter: an older one is replaced.
var moveDead = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
local old = redis.call('HGET', KEYS[3], ARGV[3])
if old then redis.call('XDEL', KEYS[2], old) end
local id = redis.call('XADD', KEYS[2], '*', 'd', ARGV[4], 'reason', ARGV[5], 'attempts', ARGV[6], 'failed_at', ARGV[7])
redis.call('HSET', KEYS[3], ARGV[3], id)
return 1
`)

// promote: KEYS stream, delayed; ARGV now ms, limit. Moves due members to the
// stream and returns {moved, score of the next member or ""}.
var promote = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'd', m)
  redis.call('ZREM', KEYS[2], m)
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or ''}
`)

// retryDead: KEYS stream, dead, deadidx; ARGV delivery id, dead entry id,
// delivery JSON. Returns 0 when the dead letter changed since it was read.
var retryDead = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[1], '*', 'd', ARGV[3])
return 1
`)

// discardDead: KEYS dead, deadidx; ARGV delivery id, dead entry id. Returns
// 0 when the dead letter changed since it was read.
var discardDead = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// dropStaleIndex: KEYS deadidx; ARGV delivery id, dead entry id. Removes an
// index entry that points at a missing dead letter, unless it changed meanwhile.
var dropStaleIndex = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`)
