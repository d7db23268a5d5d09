package normalize

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// canonical returns the text form of a (from AppendTo) but reuses orig when
// it already is that text, so a canonical input costs no allocation.
func canonical(orig string, form []byte) string {
	if string(form) == orig {
		return orig
	}
	return string(form)
}

// parseIP parses an IPv4 or IPv6 address and says clearly what is wrong.
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err == nil {
		return a, nil
	}
	if hasLeadingZeroOctet(s) {
		// netip refuses these because "010" means 8 to inet_aton and 10 to
		// people; guessing would put the wrong host on a block list.
		return netip.Addr{}, fmt.Errorf("IP address %s has an octet with a leading zero, which is ambiguous (octal or decimal)", Quote(s))
	}
	return netip.Addr{}, fmt.Errorf("%s is not an IP address", Quote(s))
}

// hasLeadingZeroOctet reports whether s ends in a dotted quad with an octet
// like "010".
func hasLeadingZeroOctet(s string) bool {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:] // embedded IPv4 in an IPv6 address
	}
	parts, zero := 0, false
	for part := range strings.SplitSeq(s, ".") {
		parts++
		if part == "" || len(part) > 3 || !allDigits(part) {
			return false
		}
		zero = zero || (len(part) > 1 && part[0] == '0')
	}
	return parts == 4 && zero
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func normIPv4(s string) (string, error) {
	a, err := parseIP(s)
	if err != nil {
		return "", err
	}
	if !a.Is4() {
		if a.Is4In6() {
			return "", fmt.Errorf("%s is an IPv4-mapped IPv6 address; send it as ipv4 %s or as type ipv6", Quote(s), a.Unmap())
		}
		return "", fmt.Errorf("%s is an IPv6 address, not IPv4", Quote(s))
	}
	var buf [16]byte
	return canonical(s, a.AppendTo(buf[:0])), nil
}

// normIPv6 returns the RFC 5952 form without zone, or the IPv4 form (and type
// ipv4) when the address is really IPv4.
func normIPv6(s string) (gateway.IndicatorType, string, error) {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := parseIP(s)
	if err != nil {
		return "", "", err
	}
	if a.Is4() || a.Is4In6() {
		a = a.Unmap()
		var buf [16]byte
		return gateway.TypeIPv4, canonical(s, a.AppendTo(buf[:0])), nil
	}
	a = a.WithZone("")
	var buf [48]byte
	return gateway.TypeIPv6, canonical(s, a.AppendTo(buf[:0])), nil
}

// normCIDR masks a prefix to its network; a bare address becomes a /32 or
// /128.
func normCIDR(s string) (string, error) {
	var p netip.Prefix
	if !strings.Contains(s, "/") {
		a, err := parseIP(s)
		if err != nil {
			return "", err
		}
		a = a.Unmap().WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	} else {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			addr, bits, _ := strings.Cut(s, "/")
			a, aerr := parseIP(addr)
			if aerr != nil {
				return "", aerr
			}
			if a.Zone() != "" {
				return "", fmt.Errorf("CIDR prefix %s must not carry a zone", Quote(s))
			}
			return "", fmt.Errorf("prefix length %s in %s must be a number 0..%d without leading zeros", Quote(bits), Quote(s), a.BitLen())
		}
	}
	var buf [52]byte
	return canonical(s, p.Masked().AppendTo(buf[:0])), nil
}
