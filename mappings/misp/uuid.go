package misp

import "github.com/schakel/schakel/gateway"

// eventNamespace is the UUIDv5 namespace for MISP event uuids derived from
// canonical ids that are not UUIDs themselves.
var eventNamespace = [16]byte{0x1c, 0xb7, 0xb2, 0x0f, 0x6f, 0xd8, 0x4b, 0x31, 0x94, 0x7a, 0x61, 0x53, 0xa3, 0x24, 0xfc, 0x21}

// validUUID reports whether s is an RFC 4122 UUID that every MISP version
// accepts: 8-4-4-4-12 hex, version 1–5, variant 8/9/a/b.
func validUUID(s string) bool {
	_, ok := parseUUID(s)
	return ok
}

// parseUUID accepts what MISP's validator accepts: the canonical form,
// version 1–5, RFC 4122 variant.
func parseUUID(s string) ([16]byte, bool) {
	u, ok := gateway.ParseUUID(s)
	if !ok {
		return u, false
	}
	if v := u[6] >> 4; v < 1 || v > 5 {
		return u, false
	}
	if u[8]>>6 != 0b10 {
		return u, false
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func uuidV5(ns [16]byte, name string) string { return gateway.UUIDv5(ns, name) }

func formatUUID(u [16]byte) string { return gateway.FormatUUID(u) }
