package views

import "testing"

// FuzzDecodeCursor: a cursor is either one this server made or a clear
// error; it round-trips.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(1732000000000000, "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11|2026-11-20T09:00:00Z"))
	f.Add("")
	f.Add("!!!")
	f.Add("MTIz")
	f.Fuzz(func(t *testing.T, c string) {
		score, member, err := decodeCursor(c)
		if err != nil {
			return
		}
		s2, m2, err := decodeCursor(encodeCursor(score, member))
		if err != nil || s2 != score || m2 != member {
			t.Fatalf("round trip: %d %q -> %d %q %v", score, member, s2, m2, err)
		}
	})
}
