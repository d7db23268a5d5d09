package store

import (
	"strings"
	"testing"
)

// hashTag is the part of a key Redis Cluster hashes: the text between the
// first '{' and the next '}', when that is not empty; else the whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// The per-event scripts (putEvent, markRouted) take several keys of one
// event; on Redis Cluster they must share a hash slot for every id the
// store accepts.
func TestEventKeysShareOneSlot(t *testing.T) {
	s := New(nil, "schakel")
	for _, id := range []string{
		"c0000000-0000-4000-8000-000000000001", "indicator--x", "a}b", "{x}", "a{b}c", "{", "}}", "<msg@host>", "x:y",
		"}a", // refused by checkEvent: its tag would be empty
	} {
		keys := []string{
			s.eventKey(id, "cur"), s.eventKey(id, "v", "2026-11-20T09:00:00Z"), s.eventKey(id, "versions"),
			s.eventKey(id, "sum"), s.eventKey(id, "routed"), s.eventKey(id, "held"),
		}
		same := true
		for _, k := range keys[1:] {
			if hashTag(k) != hashTag(keys[0]) {
				same = false
			}
		}
		accepted := checkEvent(testEvent(id, t0, 1)) == nil
		if accepted && !same {
			t.Errorf("id %q is accepted but its keys %v hash to different slots", id, keys)
		}
		if !accepted && same {
			t.Errorf("id %q is refused though its keys share a slot", id)
		}
	}
}
