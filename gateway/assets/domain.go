package assets

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// OwnersOfDomain returns the owners of the longest registered domain that
// is name or a parent of name on a label boundary: a.example owns a.example
// and x.a.example, not ba.example. name should be normalised (lower case, no
// trailing dot); other forms are still matched, at the cost of an allocation
// for upper case.
func (m *Matcher) OwnersOfDomain(name string) []string {
	if m == nil || len(m.domains) == 0 {
		return nil
	}
	name = lowerASCII(strings.TrimSuffix(name, "."))
	// Walk from the whole name towards its last label, so the first hit is
	// the longest suffix; every candidate is a substring of name.
	for s := name; ; {
		if v, ok := m.domains[s]; ok {
			return m.sets[v]
		}
		dot := strings.IndexByte(s, '.')
		if dot < 0 {
			return nil
		}
		s = s[dot+1:]
	}
}

// lowerASCII folds ASCII letters only, allocating only when there are any:
// Unicode folding could turn a lookalike (the Kelvin sign) into an ASCII
// letter and so into someone else's domain.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// parseConfigDomain normalises a registry domain: case, a leading "*." or
// "." (both mean "this domain and everything under it", which is what every
// entry means) and a trailing dot.
func parseConfigDomain(s string) (string, error) {
	d := lowerASCII(strings.TrimSpace(s))
	d = strings.TrimPrefix(d, "*.")
	d = strings.TrimPrefix(d, ".")
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if len(d) > 253 {
		return "", fmt.Errorf("%q: longer than 253 characters", s)
	}
	labels := 0
	for label := range strings.SplitSeq(d, ".") {
		labels++
		if label == "" {
			return "", fmt.Errorf("%q: empty label", s)
		}
		if len(label) > 63 {
			return "", fmt.Errorf("%q: label longer than 63 characters", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case c >= 0x80:
				// Indicators arrive IDNA-encoded, so a Unicode entry would
				// silently never match.
				return "", fmt.Errorf("%q: non-ASCII name, write it in punycode (xn--…)", s)
			default:
				return "", fmt.Errorf("%q: character %q not allowed in a domain", s, c)
			}
		}
	}
	if labels == 1 {
		// A bare top-level domain would make one constituent own a whole
		// namespace of other people's names.
		return "", fmt.Errorf("%q: a single-label domain would own a whole top-level domain", s)
	}
	return d, nil
}

// urlHost extracts the host of a URL without allocating: scheme, userinfo,
// port, path, query and fragment are cut off, IPv6 brackets removed.
// Scheme-less values ("example.org/x") are read as authority first.
func urlHost(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else {
		s = strings.TrimPrefix(s, "//")
	}
	if i := strings.IndexAny(s, "/?#\\"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end >= 0 {
			return s[1:end]
		}
		return s[1:]
	}
	// One colon separates a port; more mean an unbracketed IPv6 address.
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		s = s[:i]
	}
	return s
}

// parseHostAddr reads an IP address used as a host, bracketed or not
// ("192.0.2.1", "[2001:db8::1]", the e-mail literal "[IPv6:2001:db8::1]").
func parseHostAddr(host string) (netip.Addr, bool) {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if len(host) > 5 && strings.EqualFold(host[:5], "ipv6:") {
		host = host[5:]
	}
	if !maybeAddr(host) {
		return netip.Addr{}, false // ordinary names: skip the parser's error value
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// maybeAddr is true for anything with a colon or made of digits and dots.
func maybeAddr(s string) bool {
	if s == "" {
		return false
	}
	if strings.IndexByte(s, ':') >= 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}
