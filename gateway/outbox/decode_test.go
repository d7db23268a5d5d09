package outbox

import (
	"encoding/json"
	"testing"

	"github.com/redis/go-redis/v9"
)

// FuzzDecode feeds arbitrary stream payloads to the entry decoder: it must
// never panic, and what it accepts must carry a delivery id and an attempt.
func FuzzDecode(f *testing.F) {
	f.Add(`{"delivery_id":"dlv_1","event_id":"e","version":"v","recipient":"r","channel":"webhook","tlp":"AMBER","rule":"sector","attempt":3}`)
	f.Add(`{"delivery_id":"dlv_1"}`)
	f.Add(`{"delivery_id":""}`)
	f.Add(`{not json`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, payload string) {
		d, err := decode(redis.XMessage{ID: "1-0", Values: map[string]any{"d": payload}})
		if err != nil {
			return
		}
		if d.ID == "" || d.Attempt < 1 {
			t.Fatalf("decode(%q) accepted %+v", payload, d)
		}
		// What was accepted survives a round trip through the stream format.
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decode(redis.XMessage{ID: "1-0", Values: map[string]any{"d": string(b)}})
		if err != nil || again.ID != d.ID || again.Attempt != d.Attempt {
			t.Fatalf("round trip of %+v: %+v, %v", d, again, err)
		}
	})
}
