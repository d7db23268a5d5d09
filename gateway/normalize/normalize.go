// Package normalize turns what sources send into the canonical values of
// ARCHITECTURE §3: refanged, lower-cased, punycoded, canonical IP forms and
// length-checked hashes. It does no I/O.
package normalize

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/schakel/schakel/gateway"
)

// Limits on indicator values.
const (
	MaxValueBytes = 8192 // any type
	MaxTextBytes  = 4096 // filename, mutex
)

// AttrOriginalType is the attribute set on an indicator sent as "other"
// whose type Infer recognised.
const AttrOriginalType = "original_type"

// IndicatorError is what Indicator returns. Error gives only the message;
// Field says which indicator field is wrong ("type", "value", "port" or
// "asn") so the caller can build the JSON pointer.
type IndicatorError struct {
	Field string
	Err   error
}

func (e *IndicatorError) Error() string { return e.Err.Error() }
func (e *IndicatorError) Unwrap() error { return e.Err }

var typeList = func() string {
	names := make([]string, len(gateway.IndicatorTypes))
	for i, t := range gateway.IndicatorTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}()

// Indicator returns ind with its value in canonical form, or an error whose
// message says what is wrong (no field path; the caller adds it, and
// errors.As to *IndicatorError tells which field). It never panics.
//
// An ipv6 value that is really IPv4 comes back as type ipv4. An "other"
// value whose type Infer recognises comes back as that type with
// Attributes["original_type"] = "other".
func Indicator(ind gateway.Indicator) (gateway.Indicator, error) {
	if !ind.Type.Valid() {
		return ind, &IndicatorError{Field: "type", Err: fmt.Errorf("unknown indicator type %s; allowed: %s", Quote(string(ind.Type)), typeList)}
	}
	if ind.Port < 0 || ind.Port > math.MaxUint16 {
		return ind, &IndicatorError{Field: "port", Err: fmt.Errorf("port %d is outside 0..65535", ind.Port)}
	}
	if ind.ASN < 0 || ind.ASN > math.MaxUint32 {
		return ind, &IndicatorError{Field: "asn", Err: fmt.Errorf("asn %d is outside 0..4294967295", ind.ASN)}
	}
	v, err := prepare(ind.Value)
	if err != nil {
		return ind, &IndicatorError{Field: "value", Err: err}
	}
	if ind.Type == gateway.TypeOther {
		return other(ind, v), nil
	}
	t, nv, err := value(ind.Type, v)
	if err != nil {
		return ind, &IndicatorError{Field: "value", Err: err}
	}
	if len(nv) > MaxValueBytes {
		// Punycode can make a URL longer than it came in.
		return ind, &IndicatorError{Field: "value", Err: fmt.Errorf("normalised value is %d bytes long; the limit is %d", len(nv), MaxValueBytes)}
	}
	if t == gateway.TypeASN {
		n := asnNumber(nv)
		if ind.ASN != 0 && ind.ASN != n {
			return ind, &IndicatorError{Field: "asn", Err: fmt.Errorf("asn %d contradicts value %s", ind.ASN, nv)}
		}
		ind.ASN = n
	}
	ind.Type, ind.Value = t, nv
	return ind, nil
}

// other keeps an unrecognised value as it is (refanged and trimmed) and
// gives a recognised one its real type.
func other(ind gateway.Indicator, v string) gateway.Indicator {
	ind.Value = v
	t := Infer(v)
	if t == gateway.TypeOther {
		return ind
	}
	if t == gateway.TypeIPv4 {
		// Infer calls "::ffff:192.0.2.1" IPv4; the ipv6 rules convert it.
		t = gateway.TypeIPv6
	}
	t, nv, err := value(t, v)
	if err != nil || len(nv) > MaxValueBytes {
		return ind // Infer guessed; the value stays usable as other
	}
	if t == gateway.TypeASN {
		n := asnNumber(nv)
		if ind.ASN != 0 && ind.ASN != n {
			return ind
		}
		ind.ASN = n
	}
	attrs := make(map[string]string, len(ind.Attributes)+1)
	maps.Copy(attrs, ind.Attributes)
	attrs[AttrOriginalType] = string(gateway.TypeOther)
	ind.Type, ind.Value, ind.Attributes = t, nv, attrs
	return ind
}

// prepare applies the checks every type shares and refangs the value.
func prepare(v string) (string, error) {
	if len(v) > MaxValueBytes {
		return "", fmt.Errorf("value is %d bytes long; the limit is %d", len(v), MaxValueBytes)
	}
	if !utf8.ValidString(v) {
		return "", errors.New("value is not valid UTF-8")
	}
	v = Refang(v)
	if v == "" {
		return "", errors.New("value is empty")
	}
	return v, nil
}

// value normalises a prepared (refanged, trimmed, non-empty) value of type
// t. Only ipv6 can change the type (to ipv4).
func value(t gateway.IndicatorType, v string) (gateway.IndicatorType, string, error) {
	var err error
	switch t {
	case gateway.TypeIPv4:
		v, err = normIPv4(v)
	case gateway.TypeIPv6:
		return normIPv6(v)
	case gateway.TypeCIDR:
		v, err = normCIDR(v)
	case gateway.TypeDomain:
		v, err = dnsName(v, "domain", true)
	case gateway.TypeHostname:
		v, err = dnsName(v, "hostname", false)
	case gateway.TypeURL:
		v, err = normURL(v)
	case gateway.TypeEmail:
		v, err = normEmail(v)
	case gateway.TypeMD5, gateway.TypeJA3:
		v, err = hexDigest(v, string(t), 32)
	case gateway.TypeSHA1:
		v, err = hexDigest(v, string(t), 40)
	case gateway.TypeSHA256:
		v, err = hexDigest(v, string(t), 64)
	case gateway.TypeSHA512:
		v, err = hexDigest(v, string(t), 128)
	case gateway.TypeASN:
		v, err = normASN(v)
	case gateway.TypeCVE:
		v, err = normCVE(v)
	case gateway.TypeFilename, gateway.TypeMutex:
		v, err = text(v, string(t))
	case gateway.TypeOther:
	default:
		err = fmt.Errorf("unknown indicator type %s", Quote(string(t)))
	}
	if err != nil {
		return "", "", err
	}
	return t, v, nil
}

// hexDigest checks length and alphabet and lower-cases, allocating only when
// the input has upper case.
func hexDigest(s, name string, n int) (string, error) {
	if len(s) != n {
		return "", fmt.Errorf("%s must be %d hex characters, got %d", name, n, utf8.RuneCountInString(s))
	}
	upper := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return "", fmt.Errorf("%s must be %d hex characters; %s at byte %d is not hex", name, n, Quote(s[i:i+1]), i)
		}
	}
	if upper {
		return strings.ToLower(s), nil
	}
	return s, nil
}

// normASN accepts "AS64500", "as64500", "ASN 64500", "64500" and asdot
// "AS1.10" and returns "AS64500".
func normASN(s string) (string, error) {
	v := s
	switch {
	case hasPrefixFold(v, "asn"):
		v = v[3:]
	case hasPrefixFold(v, "as"):
		v = v[2:]
	}
	v = strings.TrimSpace(v)
	var n uint64
	var err error
	if hi, lo, ok := strings.Cut(v, "."); ok {
		// asdot (RFC 5396): high.low, each 0..65535.
		var h, l uint64
		h, err = strconv.ParseUint(hi, 10, 16)
		if err == nil {
			l, err = strconv.ParseUint(lo, 10, 16)
		}
		n = h<<16 | l
	} else {
		n, err = strconv.ParseUint(v, 10, 32)
	}
	if err != nil || !allDigits(strings.Replace(v, ".", "", 1)) {
		return "", fmt.Errorf("asn %s must be AS followed by a number 1..4294967295", Quote(s))
	}
	if n == 0 {
		return "", errors.New("asn 0 is reserved; use 1..4294967295")
	}
	return "AS" + strconv.FormatUint(n, 10), nil
}

// asnNumber reads the number back from a value normASN produced.
func asnNumber(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(v, "AS"), 10, 64)
	return n
}

// CVE returns s as "CVE-YYYY-NNNN…" in upper case, for vulnerability records
// outside indicators. Like Indicator it refangs and trims first.
func CVE(s string) (string, error) { return prepared(s, normCVE) }

// Email returns s with its domain normalised like a domain and its local
// part kept, for addressees and contacts.
func Email(s string) (string, error) { return prepared(s, normEmail) }

// Domain returns s as a lower-case, punycoded domain name without trailing
// dot, for constituent assets and subscriptions.
func Domain(s string) (string, error) {
	return prepared(s, func(v string) (string, error) { return dnsName(v, "domain", true) })
}

func prepared(s string, norm func(string) (string, error)) (string, error) {
	v, err := prepare(s)
	if err != nil {
		return "", err
	}
	return norm(v)
}

// normCVE accepts lower case and the Unicode dashes that copying from
// documents brings in.
func normCVE(s string) (string, error) {
	v := strings.TrimSpace(s)
	if !isASCII(v) {
		v = strings.Map(func(r rune) rune {
			if unicode.Is(unicode.Pd, r) {
				return '-'
			}
			return r
		}, v)
	}
	if !isCVE(v) {
		return "", fmt.Errorf("cve %s must look like CVE-2026-12345 (CVE-, a 4-digit year, -, 4 or more digits)", Quote(s))
	}
	return strings.ToUpper(v), nil
}

// isCVE matches CVE-\d{4}-\d{4,}, case-insensitively.
func isCVE(v string) bool {
	return len(v) >= len("CVE-0000-0000") && hasPrefixFold(v, "cve-") &&
		allDigits(v[4:8]) && v[8] == '-' && allDigits(v[9:])
}

// text checks free-form names: filenames and mutexes.
func text(s, name string) (string, error) {
	if len(s) > MaxTextBytes {
		return "", fmt.Errorf("%s is %d bytes long; the limit is %d", name, len(s), MaxTextBytes)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return "", fmt.Errorf("%s contains a control character at byte %d", name, i)
	}
	return s, nil
}
