package normalize

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// dnsProfile is UTS #46 lookup mapping (case folding, width and NFC, Bidi
// rule) without the STD3 character rules and hyphen checks that
// idna.Lookup applies: real names carry underscores ("_dmarc.example") and
// "r3---sn-abc.googlevideo.com" style labels. dnsName checks the ASCII
// result itself, with messages that say what is wrong.
var dnsProfile = idna.New(
	idna.MapForLookup(),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
	idna.BidiRule(),
	idna.Transitional(false),
)

const (
	maxLabel = 63
	maxName  = 253
)

// dnsName returns s as a lower-case, punycoded DNS name without its trailing
// dot. what names the thing in messages ("domain", "url host"); needDot
// demands at least two labels.
func dnsName(s, what string, needDot bool) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	if isASCII(s) && !hasACE(s) {
		if err := checkDNSChars(s, what); err != nil {
			return "", err
		}
		s = toLowerASCII(s)
	} else {
		// Check the ASCII characters first so that "/" or a space gets a
		// clear message rather than an IDNA error code.
		if err := checkDNSChars(s, what); err != nil {
			return "", err
		}
		a, err := dnsProfile.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("%s %s is not a valid internationalised name: %w", what, Quote(s), err)
		}
		// The mapping can turn runes into ASCII we do not accept
		// (U+FF0F FULLWIDTH SOLIDUS becomes "/").
		if err := checkDNSChars(a, what); err != nil {
			return "", err
		}
		s = a
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", fmt.Errorf("%s has no labels", what)
	}
	if len(s) > maxName {
		return "", fmt.Errorf("%s is %d characters long; the limit is %d", what, len(s), maxName)
	}
	labels, lastStart := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		n := i - lastStart
		if n == 0 {
			return "", fmt.Errorf("%s %s has an empty label", what, Quote(s))
		}
		if n > maxLabel {
			return "", fmt.Errorf("%s label %s is %d characters long; the limit is %d", what, Quote(s[lastStart:i]), n, maxLabel)
		}
		labels++
		if i < len(s) {
			lastStart = i + 1
		}
	}
	if needDot && labels < 2 {
		return "", fmt.Errorf("%s %s needs at least two labels (a dot)", what, Quote(s))
	}
	if allDigits(s[lastStart:]) {
		return "", fmt.Errorf("%s %s ends in a numeric label, like an IP address", what, Quote(s))
	}
	return s, nil
}

// checkDNSChars rejects ASCII characters that cannot appear in a DNS name;
// non-ASCII runes are left to IDNA.
func checkDNSChars(s, what string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf,
			'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("character %s is not allowed in a %s", Quote(string(c)), what)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hasACE reports whether a label starts with "xn--", which IDNA must check.
func hasACE(s string) bool {
	for i := 0; i+4 <= len(s); i++ {
		if (i == 0 || s[i-1] == '.') && hasPrefixFold(s[i:], "xn--") {
			return true
		}
	}
	return false
}

// toLowerASCII lower-cases s, allocating only when it has upper case.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// normEmail keeps the local part as sent (it is case-sensitive in principle)
// and normalises the domain.
func normEmail(s string) (string, error) {
	if hasPrefixFold(s, "mailto:") {
		s = s[len("mailto:"):]
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", errors.New("e-mail address needs an @")
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return "", errors.New("e-mail address has an empty local part")
	case len(local) > 64:
		return "", fmt.Errorf("e-mail local part is %d characters long; the limit is 64", len(local))
	case strings.ContainsFunc(local, unicode.IsControl):
		return "", errors.New("e-mail local part contains a control character")
	case len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"':
		// A quoted local part may hold any printable character.
	case strings.ContainsFunc(local, unicode.IsSpace):
		return "", errors.New("e-mail local part contains a space; only a quoted local part may")
	case strings.IndexByte(local, '@') >= 0:
		return "", errors.New("e-mail address has more than one @")
	default:
		if i := strings.IndexFunc(local, func(r rune) bool { return r < utf8.RuneSelf && !isAtext(byte(r)) }); i >= 0 {
			return "", fmt.Errorf("character %s is not allowed in an unquoted e-mail local part", Quote(local[i:i+1]))
		}
	}
	d, err := dnsName(domain, "e-mail domain", true)
	if err != nil {
		return "", err
	}
	if d == domain {
		return s, nil
	}
	return local + "@" + d, nil
}

// isAtext reports whether c may appear in an unquoted local part (RFC 5322
// atext, plus the dot); non-ASCII is allowed by RFC 6531.
func isAtext(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// normURL lower-cases the scheme, normalises the host like a domain (or an
// IP address) and keeps everything else as sent.
func normURL(s string) (string, error) {
	i := strings.Index(s, "://")
	if i < 0 {
		return "", errors.New("url needs a scheme such as https://")
	}
	scheme := s[:i]
	if !validScheme(scheme) {
		return "", fmt.Errorf("url scheme %s is not valid", Quote(scheme))
	}
	if j := strings.IndexFunc(s, unicode.IsControl); j >= 0 {
		return "", fmt.Errorf("url contains a control character at byte %d", j)
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	var userinfo string
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	host, port, err := splitHostPort(authority)
	if err != nil {
		return "", err
	}
	if host, err = urlHost(host); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(toLowerASCII(scheme))
	b.WriteString("://")
	b.WriteString(userinfo)
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(tail)
	if b.String() == s {
		return s, nil
	}
	return b.String(), nil
}

// validScheme follows RFC 3986: a letter, then letters, digits, "+", "-", ".".
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// splitHostPort splits "host:port" or "[v6]:port"; the port comes back
// without leading zeros, and empty when absent.
func splitHostPort(hp string) (host, port string, err error) {
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", errors.New("url host has an unclosed [")
		}
		host, hp = hp[:end+1], hp[end+1:]
		if hp != "" && hp[0] != ':' {
			return "", "", fmt.Errorf("url has %s after the IPv6 host", Quote(hp))
		}
	} else if c := strings.LastIndexByte(hp, ':'); c >= 0 {
		host, hp = hp[:c], hp[c:]
	} else {
		return hp, "", nil
	}
	port = strings.TrimPrefix(hp, ":")
	if port == "" {
		return host, "", nil
	}
	n, perr := strconv.ParseUint(port, 10, 16)
	if perr != nil || !allDigits(port) {
		return "", "", fmt.Errorf("url port %s must be a number 0..65535", Quote(port))
	}
	return host, strconv.FormatUint(n, 10), nil
}

func urlHost(h string) (string, error) {
	if h == "" {
		return "", errors.New("url has no host")
	}
	if h[0] == '[' {
		inner := h[1 : len(h)-1]
		// RFC 6874 writes the zone as %25zone; a zone means nothing
		// outside the sender's own network.
		inner, _, _ = strings.Cut(inner, "%")
		a, err := netip.ParseAddr(inner)
		if err != nil || !a.Is6() {
			return "", fmt.Errorf("url host %s is not an IPv6 address", Quote(h))
		}
		return "[" + a.String() + "]", nil
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
		return a.String(), nil
	}
	return dnsName(h, "url host", false)
}
