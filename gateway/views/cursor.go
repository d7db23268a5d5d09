package views

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
)

// Cursors are stateless and opaque: the score and member of the last entry
// of a page, so they stay valid across restarts and replicas.
func encodeCursor(score int64, member string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(score, 10) + " " + member))
}

func decodeCursor(c string) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", &gateway.ValidationError{Fields: []gateway.FieldError{{Field: "cursor", Message: "not a cursor this server issued"}}}
	}
	s, member, ok := strings.Cut(string(raw), " ")
	score, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || member == "" {
		return 0, "", &gateway.ValidationError{Fields: []gateway.FieldError{{Field: "cursor", Message: "not a cursor this server issued"}}}
	}
	return score, member, nil
}

// merge combines the sets' entries in (score, member) order, dropping
// duplicates and the entries at or before the cursor (score, member).
func merge(cmds []*redis.ZSliceCmd, hasCursor bool, cScore int64, cMember string) []redis.Z {
	var all []redis.Z
	seen := map[string]bool{}
	for _, c := range cmds {
		for _, z := range c.Val() {
			m := z.Member.(string)
			if seen[m] {
				continue
			}
			seen[m] = true
			if hasCursor && int64(z.Score) == cScore && m <= cMember {
				continue
			}
			all = append(all, z)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Score != all[j].Score {
			return all[i].Score < all[j].Score
		}
		return all[i].Member.(string) < all[j].Member.(string)
	})
	return all
}

func entryOf(z redis.Z) Entry {
	m := z.Member.(string)
	// Versions (RFC 3339) never hold '|'; ids may, so split at the last one.
	i := strings.LastIndexByte(m, '|')
	id, version := m, ""
	if i >= 0 {
		id, version = m[:i], m[i+1:]
	}
	return Entry{ID: id, Version: version, Added: time.UnixMicro(int64(z.Score)).UTC()}
}
