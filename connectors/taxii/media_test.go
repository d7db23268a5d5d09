package taxii

import (
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 11, 20, 9, 0, 1, 500000000, time.UTC)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2026-11-20T09:00:01.500000Z", true},
		{"2026-11-20T09:00:01.5Z", true}, // taxii2-client drops trailing zeros
		{"2026-11-20T09:00:01.500Z", true},
		{"2026-11-20T10:00:01.5+01:00", true},
		{"2026-11-20T10:00:01.5 01:00", true}, // "+" decoded as a space
		{"2026-11-20 09:00:01.5", true},       // no T, no zone: UTC
		{"2026-11-20T09:00:01.5", true},
		{"", false},
		{"yesterday", false},
		{"2026-13-40T00:00:00Z", false},
		{"1763629201", false},
	} {
		got, err := ParseTimestamp(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(want)) {
			t.Errorf("%q: %v, %v", tc.in, got, err)
		}
	}
	if got, err := ParseTimestamp("Fri, 20 Nov 2026 09:00:03 GMT"); err != nil || !got.Equal(time.Date(2026, 11, 20, 9, 0, 3, 0, time.UTC)) {
		t.Errorf("RFC 1123: %v, %v", got, err)
	}
	if s := Timestamp(want.In(time.FixedZone("CET", 3600))); s != "2026-11-20T09:00:01.500000Z" {
		t.Errorf("Timestamp: %q", s)
	}
}

func TestPostable(t *testing.T) {
	for ct, want := range map[string]bool{
		MediaTAXII: true, "application/taxii+json": true, MediaSTIX: true, "application/json; charset=utf-8": true, "": true,
		"application/taxii+json;version=2.0": false, "application/vnd.oasis.taxii+json": false, "text/plain": false,
	} {
		if postable(ct) != want {
			t.Errorf("postable(%q) = %v", ct, !want)
		}
	}
}

func TestDateAdded(t *testing.T) {
	const a = int64(1_000_000)
	for _, tc := range []struct {
		name    string
		k       int
		next    int64
		hasNext bool
		want    int64
	}{
		{"first object at the entry's time", 0, a + 100, true, a},
		{"one µs per object", 3, a + 100, true, a + 3},
		{"clamped below the next entry", 150, a + 100, true, a + 99},
		{"a tie with the next entry", 5, a, true, a},
		{"the last entry is not clamped", 150, 0, false, a + 150},
		{"spread is capped", spreadCap + 7, 0, false, a + spreadCap - 1},
	} {
		if got := dateAdded(a, tc.k, tc.next, tc.hasNext); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestPositionCodec(t *testing.T) {
	p := position{added: 1763629200000001, member: "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11|2026-11-20T09:00:00Z", offset: 12}
	got, err := decodePosition(p.encode())
	if err != nil || got != p {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "1.", "1.!!!", positionPrefix + "MTIz", "2." + p.encode()[2:]} {
		if _, err := decodePosition(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
