package stix

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
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

// parseUUID reads the canonical 8-4-4-4-12 hex form, any case.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, false
	}
	return u, true
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// uuidV5 implements RFC 9562 §5.5 (SHA-1, name-based).
func uuidV5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

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
