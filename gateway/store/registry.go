package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// importChunk is how many constituents one HSET carries in PutConstituents;
// importFlush is how many such commands go in one round trip.
const (
	importChunk = 500
	importFlush = 10
)

// PutConstituent stores c and bumps the registry version, which tells every
// replica to reload. created is false when c replaced an existing entry.
func (s *Store) PutConstituent(ctx context.Context, c gateway.Constituent) (bool, error) {
	if c.ID == "" {
		return false, invalid("/id", "is required")
	}
	blob, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("encode constituent %q: %w", c.ID, err)
	}
	pipe := s.rdb.Pipeline()
	added := pipe.HSet(ctx, s.key("constituents"), c.ID, blob)
	pipe.Incr(ctx, s.key("registry", "version"))
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("store constituent %q: %w", c.ID, err)
	}
	return added.Val() == 1, nil
}

// Constituent returns one constituent, or gateway.ErrNotFound.
func (s *Store) Constituent(ctx context.Context, id string) (gateway.Constituent, error) {
	blob, err := s.rdb.HGet(ctx, s.key("constituents"), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return gateway.Constituent{}, fmt.Errorf("constituent %q: %w", id, gateway.ErrNotFound)
	}
	if err != nil {
		return gateway.Constituent{}, fmt.Errorf("read constituent %q: %w", id, err)
	}
	var c gateway.Constituent
	if err := json.Unmarshal(blob, &c); err != nil {
		return gateway.Constituent{}, fmt.Errorf("decode constituent %q: %w", id, err)
	}
	return c, nil
}

// Constituents returns the whole registry sorted by id.
func (s *Store) Constituents(ctx context.Context) ([]gateway.Constituent, error) {
	all, err := s.rdb.HGetAll(ctx, s.key("constituents")).Result()
	if err != nil {
		return nil, fmt.Errorf("read constituents: %w", err)
	}
	out := make([]gateway.Constituent, 0, len(all))
	for id, blob := range all {
		var c gateway.Constituent
		if err := json.Unmarshal([]byte(blob), &c); err != nil {
			return nil, fmt.Errorf("decode constituent %q: %w", id, err)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b gateway.Constituent) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteConstituent removes a constituent and revokes its API keys.
func (s *Store) DeleteConstituent(ctx context.Context, id string) error {
	// Keys go first: if a later step fails, a retry still finds the
	// constituent and no key outlives it.
	if err := s.revokeScope(ctx, Scope{Role: RoleConstituent, Name: id}); err != nil {
		return err
	}
	n, err := s.rdb.HDel(ctx, s.key("constituents"), id).Result()
	if err != nil {
		return fmt.Errorf("delete constituent %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("constituent %q: %w", id, gateway.ErrNotFound)
	}
	if err := s.rdb.Incr(ctx, s.key("registry", "version")).Err(); err != nil {
		return fmt.Errorf("bump registry version: %w", err)
	}
	return nil
}

// PutConstituents stores many constituents (an import) with one version
// bump at the end. Every entry needs a unique id; nothing is written when
// one does not have one.
func (s *Store) PutConstituents(ctx context.Context, cs []gateway.Constituent) error {
	var v gateway.ValidationError
	seen := make(map[string]int, len(cs))
	for i, c := range cs {
		field := "/" + strconv.Itoa(i) + "/id"
		switch first, dup := seen[c.ID]; {
		case c.ID == "":
			v.Add(field, "is required")
		case dup:
			v.Add(field, fmt.Sprintf("duplicates entry %d (%q)", first, c.ID))
		default:
			seen[c.ID] = i
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if len(cs) == 0 {
		return nil
	}
	key := s.key("constituents")
	pipe := s.rdb.Pipeline()
	for start := 0; start < len(cs); start += importChunk {
		end := min(start+importChunk, len(cs))
		args := make([]any, 0, 2*(end-start))
		for _, c := range cs[start:end] {
			blob, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("encode constituent %q: %w", c.ID, err)
			}
			args = append(args, c.ID, blob)
		}
		pipe.HSet(ctx, key, args...)
		if pipe.Len() == importFlush {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("import constituents: %w", err)
			}
		}
	}
	pipe.Incr(ctx, s.key("registry", "version"))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("import constituents: %w", err)
	}
	return nil
}

// RegistryVersion changes whenever the registry does; 0 before any change.
func (s *Store) RegistryVersion(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.key("registry", "version")).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read registry version: %w", err)
	}
	return n, nil
}
