package taxii

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Media types of TAXII 2.1 §1.6.8.
const (
	MediaTAXII = "application/taxii+json;version=2.1"
	MediaSTIX  = "application/stix+json;version=2.1"
)

// acceptable reports whether an Accept header admits a TAXII 2.1 answer.
// Clients are sloppy here (old OpenCTI sends "application/json, text/plain,
// */*", MISP omits the version), so every range that could mean TAXII or
// plain JSON is accepted; only a header that names nothing usable, or TAXII
// of another version alone, is refused.
func acceptable(header string) bool {
	if strings.TrimSpace(header) == "" {
		return true
	}
	for _, part := range strings.Split(header, ",") {
		mt, version := mediaRange(part)
		switch mt {
		case "*/*", "application/*", "application/json":
			return true
		case "application/taxii+json", "application/stix+json":
			if version == "" || version == "2.1" {
				return true
			}
		}
	}
	return false
}

// postable reports whether a request body's Content-Type is one the inbox
// reads: a TAXII envelope or a STIX bundle, as TAXII or plain JSON. A missing
// Content-Type is read as JSON.
func postable(header string) bool {
	if strings.TrimSpace(header) == "" {
		return true
	}
	mt, version := mediaRange(header)
	switch mt {
	case "application/json":
		return true
	case "application/taxii+json", "application/stix+json":
		return version == "" || version == "2.1"
	}
	return false
}

// mediaRange splits "type/sub; version=2.1; q=0.9" into the lower-case
// type and its version parameter.
func mediaRange(s string) (mediaType, version string) {
	parts := strings.Split(s, ";")
	mediaType = strings.ToLower(strings.TrimSpace(parts[0]))
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "version") {
			version = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return mediaType, version
}

// timestampLayout is the TAXII timestamp: UTC, "Z", exactly microseconds.
const timestampLayout = "2006-01-02T15:04:05.000000Z"

// Timestamp renders t as a TAXII timestamp.
func Timestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

var errTimestamp = errors.New("must be an RFC 3339 timestamp such as 2026-11-20T09:14:33.000000Z")

// ParseTimestamp reads a timestamp leniently: any number of fraction digits
// (taxii2-client drops trailing zeros, OpenCTI sends milliseconds), "Z" or an
// offset, a "+" that a query string turned into a space, and, from servers
// that do not follow RFC 3339, a space instead of "T" or no zone at all (UTC).
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errTimestamp
	}
	// "…:00 00:00" is "…:00+00:00" after form decoding.
	if i := strings.LastIndexByte(s, ' '); i > 10 && i == len(s)-6 {
		s = s[:i] + "+" + s[i+1:]
	}
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1 || t.Year() > 9999 {
				break
			}
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC1123, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q: %w", s, errTimestamp)
}
