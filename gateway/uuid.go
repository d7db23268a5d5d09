package gateway

import (
	"crypto/sha1"
	"encoding/hex"
)

// UUIDv5 is the name-based UUID of RFC 9562 §5.5 (SHA-1). Schakel derives
// stable ids with it wherever an input has none (events, MISP attributes,
// STIX objects), so the same input always gets the same id.
func UUIDv5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return FormatUUID(u)
}

// ParseUUID reads the canonical 8-4-4-4-12 hex form (either case).
func ParseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	if _, err := hex.Decode(u[:], []byte(s[0:8]+s[9:13]+s[14:18]+s[19:23]+s[24:36])); err != nil {
		return u, false
	}
	return u, true
}

// FormatUUID writes u in the canonical lower-case form.
func FormatUUID(u [16]byte) string {
	var b [36]byte
	return string(AppendUUID(b[:0], u))
}

// AppendUUID appends u in the canonical lower-case form to b, for writers
// that list millions of ids without an allocation each.
func AppendUUID(b []byte, u [16]byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], u[10:16])
	return append(b, buf[:]...)
}
