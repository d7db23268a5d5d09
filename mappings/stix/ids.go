package stix

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

// scoNamespace is the UUIDv5 namespace STIX 2.1 §2.9 prescribes for
// deterministic cyber-observable ids.
var scoNamespace = mustUUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

// schakelNamespace derives the ids of the objects Encode creates for an
// event (report, indicators, observed-data, identity, vulnerabilities), so
// the same event always yields the same ids.
var schakelNamespace = mustUUID("5c4a6b1e-93d2-4f0b-8e61-7a2f0c9d3b47")

func mustUUID(s string) [16]byte {
	u, ok := parseUUID(s)
	if !ok {
		panic("stix: bad namespace uuid " + s)
	}
	return u
}

func parseUUID(s string) ([16]byte, bool) { return gateway.ParseUUID(s) }

func uuidV5(ns [16]byte, name string) string { return gateway.UUIDv5(ns, name) }

// stixUUID reports whether s is a UUID the STIX identifier schema accepts:
// version 1–5 and the RFC 4122 variant.
func stixUUID(s string) bool {
	u, ok := parseUUID(s)
	if !ok {
		return false
	}
	v := u[6] >> 4
	return v >= 1 && v <= 5 && u[8]&0xc0 == 0x80
}

// idUUID returns the UUID part of a STIX id "type--uuid", lower-cased, if
// the id has that form.
func idUUID(id, typ string) (string, bool) {
	rest, ok := strings.CutPrefix(id, typ+"--")
	if !ok || !stixUUID(rest) {
		return "", false
	}
	return strings.ToLower(rest), true
}

// scoID derives a cyber-observable id per STIX 2.1 §2.9: UUIDv5 in the
// STIX namespace over the canonical (RFC 8785) JSON of the id-contributing
// properties. props holds them already in canonical form.
func scoID(typ, props string) string {
	return typ + "--" + uuidV5(scoNamespace, props)
}

// jcsString appends s as an RFC 8785 JSON string: only ", \ and control
// characters are escaped (Go's encoder also escapes <, >, & and U+2028/9,
// which would change the id).
func jcsString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}

// jcsObject renders string properties as canonical JSON; keys must be given
// in sorted order and are ASCII.
func jcsObject(kv ...string) string {
	b := []byte{'{'}
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = jcsString(b, kv[i])
		b = append(b, ':')
		b = jcsString(b, kv[i+1])
	}
	return string(append(b, '}'))
}

// jcsNumberObject renders {"key":n}.
func jcsNumberObject(key string, n int64) string {
	b := jcsString([]byte{'{'}, key)
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return string(append(b, '}'))
}
