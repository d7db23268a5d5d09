// Package audit is Schakel's append-only record of who received which event
// version, over which channel, under which TLP, when and why, and of every
// admin action. It lives in Redis Streams: one global stream and one per
// event. Records never carry event bodies, secrets or keys.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// Actions.
const (
	ActionDeliveryAttempt    = "delivery.attempt"
	ActionDeliveryDelivered  = "delivery.delivered"
	ActionDeliveryRetry      = "delivery.retry"
	ActionDeliveryDeferred   = "delivery.deferred"
	ActionDeliveryDead       = "delivery.dead"
	ActionEventAccepted      = "event.accepted"
	ActionEventDuplicate     = "event.duplicate"
	ActionEventHeld          = "event.held"
	ActionHeldReleased       = "held.released"
	ActionDeadLetterRetry    = "deadletter.retry"
	ActionKeyCreated         = "key.created"
	ActionKeyRevoked         = "key.revoked"
	ActionConstituentPut     = "constituent.put"
	ActionConstituentDeleted = "constituent.deleted"
)

// ActorSystem is the actor of everything the gateway does on its own;
// admins appear as "admin:<hash12>".
const ActorSystem = "system"

// Record is one audit entry.
type Record struct {
	Time       time.Time         `json:"time"`
	Actor      string            `json:"actor"`
	Action     string            `json:"action"`
	EventID    string            `json:"event_id,omitempty"`
	Version    string            `json:"version,omitempty"`
	DeliveryID string            `json:"delivery_id,omitempty"`
	Recipient  string            `json:"recipient,omitempty"`
	Channel    gateway.Channel   `json:"channel,omitempty"`
	TLP        gateway.TLP       `json:"tlp,omitempty"`
	Rule       string            `json:"rule,omitempty"`
	Outcome    string            `json:"outcome,omitempty"`
	Error      string            `json:"error,omitempty"`
	Attempt    int               `json:"attempt,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

const (
	defaultLimit = 100
	maxLimit     = 1000
	field        = "r" // the stream entry field that holds the JSON record
)

// Log appends to and reads the audit streams.
type Log struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// New returns a Log that keeps its streams under prefix.
func New(rdb redis.UniversalClient, prefix string) *Log {
	if prefix == "" {
		prefix = "schakel"
	}
	return &Log{rdb: rdb, prefix: prefix, now: time.Now}
}

func (l *Log) globalKey() string { return l.prefix + ":audit" }

// eventKey carries the event id as hash tag, beside the event's other keys.
func (l *Log) eventKey(id string) string { return l.prefix + ":{" + id + "}:audit" }

// Append writes recs in one round trip: each to the global stream and, when
// it names an event, to that event's stream. Time defaults to now and Actor
// to "system"; secrets and keys in Error and Details are redacted.
func (l *Log) Append(ctx context.Context, recs ...Record) error {
	pipe := l.rdb.Pipeline()
	if err := l.Queue(ctx, pipe, recs...); err != nil {
		return err
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("append audit records: %w", err)
	}
	return nil
}

// Queue adds the writes of Append to pipe, so the audit record of a delivery
// attempt shares its round trip with the attempt's state. The caller
// executes pipe.
func (l *Log) Queue(ctx context.Context, pipe redis.Pipeliner, recs ...Record) error {
	var v gateway.ValidationError
	for i, r := range recs {
		if r.Action == "" {
			v.Add("/"+strconv.Itoa(i)+"/action", "is required")
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	now := l.now().UTC()
	for _, r := range recs {
		if r.Time.IsZero() {
			r.Time = now
		}
		if r.Actor == "" {
			r.Actor = ActorSystem
		}
		r.Error = scrub(r.Error)
		r.Details = redactDetails(r.Details)
		blob, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode audit record %s: %w", r.Action, err)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: l.globalKey(), Values: []any{field, blob}})
		if r.EventID != "" {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: l.eventKey(r.EventID), Values: []any{field, blob}})
		}
	}
	return nil
}

// ForEvent returns up to limit (default 100, at most 1000) records of one
// event, oldest first.
func (l *Log) ForEvent(ctx context.Context, eventID string, limit int) ([]Record, error) {
	msgs, err := l.rdb.XRangeN(ctx, l.eventKey(eventID), "-", "+", clamp(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit of %q: %w", eventID, err)
	}
	return decode(msgs)
}

// Recent returns up to limit (default 100, at most 1000) records of the
// global stream, newest first, starting before the cursor `before` (from
// the newest when empty), and the cursor of the next page ("" at the end).
func (l *Log) Recent(ctx context.Context, limit int, before string) ([]Record, string, error) {
	n := clamp(limit)
	start := "+"
	if before != "" {
		if !validID(before) {
			return nil, "", &gateway.ValidationError{Fields: []gateway.FieldError{{Field: "before", Message: "malformed cursor"}}}
		}
		start = "(" + before
	}
	msgs, err := l.rdb.XRevRangeN(ctx, l.globalKey(), start, "-", n+1).Result()
	if err != nil {
		return nil, "", fmt.Errorf("read audit: %w", err)
	}
	next := ""
	if int64(len(msgs)) > n {
		msgs = msgs[:n]
		next = msgs[n-1].ID
	}
	recs, err := decode(msgs)
	if err != nil {
		return nil, "", err
	}
	return recs, next, nil
}

func clamp(limit int) int64 {
	switch {
	case limit <= 0:
		return defaultLimit
	case limit > maxLimit:
		return maxLimit
	}
	return int64(limit)
}

// validID accepts a stream entry id, "<ms>-<seq>".
func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

func decode(msgs []redis.XMessage) ([]Record, error) {
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		blob, ok := m.Values[field].(string)
		if !ok {
			return nil, errors.New("audit entry " + m.ID + " has no record")
		}
		var r Record
		if err := json.Unmarshal([]byte(blob), &r); err != nil {
			return nil, fmt.Errorf("decode audit entry %s: %w", m.ID, err)
		}
		out = append(out, r)
	}
	return out, nil
}

const redacted = "[redacted]"

// secretNames are substrings of detail names whose values are never kept.
var secretNames = []string{"secret", "password", "passwd", "token", "authorization", "credential", "api_key", "apikey"}

func redactDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return d
	}
	out := make(map[string]string, len(d))
	for k, v := range d {
		name := strings.ToLower(k)
		secret := name == "key" || strings.HasSuffix(name, "_key")
		for _, s := range secretNames {
			secret = secret || strings.Contains(name, s)
		}
		if secret {
			out[k] = redacted
			continue
		}
		out[k] = scrub(v)
	}
	return out
}

// scrub replaces what looks like a webhook secret (whsec_…) or an API key
// (a 40-character alphanumeric word that is not a hex digest) in free text.
func scrub(s string) string {
	for {
		i := strings.Index(s, "whsec_")
		if i < 0 {
			break
		}
		j := i + len("whsec_")
		for j < len(s) && (isAlnum(s[j]) || s[j] == '+' || s[j] == '/' || s[j] == '=') {
			j++
		}
		s = s[:i] + redacted + s[j:]
	}
	var b strings.Builder
	last := 0 // s[last:i] is copied when a key is found
	for i := 0; i < len(s); {
		if !isAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if looksLikeKey(s[i:j]) {
			b.WriteString(s[last:i])
			b.WriteString(redacted)
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// looksLikeKey reports whether alphanumeric word w has the form of an API
// key. A SHA-1 indicator is 40 hex digits; a key has other letters with
// overwhelming likelihood ((22/62)^40 ≈ 1e-18 that it has none).
func looksLikeKey(w string) bool {
	if len(w) != 40 {
		return false
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return true
		}
	}
	return false
}
