// Package egress decides which addresses Schakel may open connections to.
//
// URLs reach Schakel from operators (sources, constituents' webhooks and MISP
// push targets) and from remote documents (a CSAF provider's feed list, an
// HTTP redirect). Any of them can point at the gateway's own host or at a
// cloud metadata service, so the check runs in the dialer, on the address
// actually connected to after DNS resolution: a hostname that resolves (or
// re-resolves) to a blocked address is caught as well as a literal.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/schakel/schakel/gateway"
)

// ErrBlocked matches (errors.Is) every refusal by a Policy.
var ErrBlocked = errors.New("destination blocked by egress policy")

// BlockedError names the refused address and why.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("%s is %s: outbound connections there are blocked (list it under egress.allow to permit it)", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrBlocked) true through any wrapping (url.Error,
// net.OpError, a sink's DeliveryError).
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

type rule struct {
	prefix netip.Prefix
	reason string
	// embedded: also refused when carried inside an IPv6 address (NAT64,
	// 6to4, Teredo, IPv4-compatible). Only the rules that reach this host
	// or a metadata service: the unspecified and multicast ones would
	// match the zero bytes of ordinary NAT64 addresses.
	embedded bool
}

// builtin is blocked unless allowed. Private ranges (RFC 1918, ULA) are not:
// constituents' MISP instances and SOC receivers often live on internal
// networks; an operator who wants them blocked lists them under egress.deny.
var builtin = []rule{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", true},
	{netip.MustParsePrefix("::1/128"), "loopback", false},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata lives here)", true},
	{netip.MustParsePrefix("fe80::/10"), "link-local", false},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address", false},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address", true},
	{netip.MustParsePrefix("192.0.0.192/32"), "a cloud metadata address", true},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this host)", false},
	{netip.MustParsePrefix("::/128"), "unspecified (this host)", false},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", false},
	{netip.MustParsePrefix("ff00::/8"), "multicast", false},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast", false},
}

// Policy is the set of allowed and denied prefixes. The zero value and a nil
// *Policy apply the built-in blocks only.
type Policy struct {
	allow      []netip.Prefix
	deny       []netip.Prefix
	requireTLS bool
}

// Option adjusts a Policy made by New.
type Option func(*Policy)

// RequireTLS refuses plain http:// wherever the policy judges a URL or a
// request: what Schakel sends (AMBER deliveries) and what it polls must
// then travel over verified TLS.
func RequireTLS(on bool) Option { return func(p *Policy) { p.requireTLS = on } }

// Default is the built-in policy: nothing allowed beyond it, nothing
// denied besides it.
func Default() *Policy { return &Policy{} }

// New builds a policy. allow entries win over everything (a local MISP on
// 127.0.0.1, a test receiver); deny entries are blocked in addition to the
// built-in ones. Entries are CIDR prefixes or single addresses; a bad entry
// is reported with its list and index.
func New(allow, deny []string, opts ...Option) (*Policy, error) {
	p := &Policy{}
	for _, o := range opts {
		o(p)
	}
	var errs []error
	parse := func(name string, in []string) []netip.Prefix {
		out := make([]netip.Prefix, 0, len(in))
		for i, s := range in {
			pf, err := ParsePrefix(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("egress.%s[%d]: %w", name, i, err))
				continue
			}
			out = append(out, pf)
		}
		return out
	}
	p.allow = parse("allow", allow)
	p.deny = parse("deny", deny)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// ParsePrefix reads "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		return pf.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Check returns a *BlockedError when a connection to a is not allowed.
func (p *Policy) Check(a netip.Addr) error {
	// ::ffff:127.0.0.1 is 127.0.0.1 to the kernel; judge it as such.
	a = a.Unmap().WithZone("")
	if p != nil {
		for _, pf := range p.allow {
			if pf.Contains(a) {
				return nil
			}
		}
	}
	if reason := p.blocked(a, false); reason != "" {
		return &BlockedError{Addr: a, Reason: reason}
	}
	// An IPv6 address that carries an IPv4 one may reach it through a
	// translator or tunnel (NAT64 on the host's network, a 6to4 relay):
	// judge the IPv4 address too.
	for _, e := range embedded(a) {
		if reason := p.blocked(e.addr, true); reason != "" {
			return &BlockedError{Addr: a, Reason: e.form + " of " + e.addr.String() + ", which is " + reason}
		}
	}
	return nil
}

// blocked returns why a is denied or built-in blocked, or "". inside says
// a was found embedded in an IPv6 address.
func (p *Policy) blocked(a netip.Addr, inside bool) string {
	if p != nil {
		for _, pf := range p.deny {
			if pf.Contains(a) {
				return "in egress.deny (" + pf.String() + ")"
			}
		}
	}
	for _, r := range builtin {
		if r.prefix.Contains(a) && (r.embedded || !inside) {
			return r.reason
		}
	}
	return ""
}

var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215
	sixToFour      = netip.MustParsePrefix("2002::/16")      // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")      // RFC 4380
	v4Compatible   = netip.MustParsePrefix("::/96")          // RFC 4291 2.5.5.1, deprecated
)

type embedding struct {
	form string
	addr netip.Addr
}

// embedded returns the IPv4 addresses an IPv6 address carries in the
// translation and tunnelling forms that can lead to them.
func embedded(a netip.Addr) []embedding {
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(x []byte) netip.Addr { return netip.AddrFrom4([4]byte(x)) }
	switch {
	case v4Compatible.Contains(a):
		return []embedding{{"the IPv4-compatible form", v4(b[12:16])}}
	case nat64WellKnown.Contains(a):
		return []embedding{{"a NAT64 form", v4(b[12:16])}}
	case nat64Local.Contains(a):
		// The operator picks the prefix length (RFC 6052 2.2); bits 64-71
		// are always zero. Try every placement a /48 prefix allows.
		return []embedding{
			{"a NAT64 form", v4([]byte{b[6], b[7], b[9], b[10]})},  // /48
			{"a NAT64 form", v4([]byte{b[7], b[9], b[10], b[11]})}, // /56
			{"a NAT64 form", v4(b[9:13])},                          // /64
			{"a NAT64 form", v4(b[12:16])},                         // /96
		}
	case sixToFour.Contains(a):
		return []embedding{{"a 6to4 form", v4(b[2:6])}}
	case teredo.Contains(a):
		// The client's address is stored with every bit inverted.
		return []embedding{{"a Teredo form", v4([]byte{^b[12], ^b[13], ^b[14], ^b[15]})}}
	}
	return nil
}

// CheckURL refuses, before any connection, a URL whose host is a blocked
// address literal or a name that always means this host ("localhost").
// Other names are judged when dialled. It does not judge the URL's scheme.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if err := p.checkScheme(u.Scheme); err != nil {
		return err
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		// RFC 6761: localhost names resolve to loopback.
		return p.Check(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	return nil
}

// ErrPlainHTTP is returned (and matches ErrBlocked) for http:// under
// RequireTLS.
var ErrPlainHTTP = fmt.Errorf("%w: plain http:// is refused because egress.require_tls is set; use https://", ErrBlocked)

func (p *Policy) checkScheme(scheme string) error {
	if p != nil && p.requireTLS && strings.EqualFold(scheme, "http") {
		return ErrPlainHTTP
	}
	return nil
}

// control runs after DNS and before connect, for every address tried.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot judge address %q: %w", address, err)
	}
	return p.Check(ap.Addr())
}

// Dialer returns a dialer that refuses blocked addresses.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
}

// DialContext dials through the policy with a 30 s connect timeout.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.Dialer(30*time.Second).DialContext(ctx, network, addr)
}

// Transport is http.DefaultTransport's settings, guarded.
func (p *Policy) Transport() http.RoundTripper {
	return p.Guard(http.DefaultTransport.(*http.Transport).Clone())
}

// Guard puts tr under the policy: its connections are dialled through the
// guarded dialer and, under RequireTLS, every request (each redirect hop
// too) must be https. Senders that tune their own transport pass it here.
// With an HTTP proxy configured (HTTPS_PROXY), the address judged is the
// proxy's; the proxy then decides where requests may go.
func (p *Policy) Guard(tr *http.Transport) http.RoundTripper {
	tr.DialContext = p.DialContext
	if p != nil && p.requireTLS {
		return schemeGuard{p: p, next: tr}
	}
	return tr
}

// schemeGuard refuses plain http per request, so every redirect hop is
// judged too.
type schemeGuard struct {
	p    *Policy
	next http.RoundTripper
}

func (g schemeGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := g.p.checkScheme(r.URL.Scheme); err != nil {
		if r.Body != nil {
			r.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	return g.next.RoundTrip(r)
}

// Client is an *http.Client with the guarded transport and a total timeout.
// Redirects are followed (at most 10) and each hop is dialled through the
// policy.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.Transport(), Timeout: timeout}
}

// CheckConstituent judges a constituent's webhook and misp_push URLs with
// CheckURL, naming each refused one by its JSON pointer, so an operator
// learns at registration, not at the first delivery.
func (p *Policy) CheckConstituent(c *gateway.Constituent) []gateway.FieldError {
	var out []gateway.FieldError
	for i, w := range c.Webhooks {
		if err := p.CheckURL(w.URL); err != nil {
			out = append(out, gateway.FieldError{Field: fmt.Sprintf("/webhooks/%d/url", i), Message: err.Error()})
		}
	}
	if c.MISPPush != nil {
		if err := p.CheckURL(c.MISPPush.URL); err != nil {
			out = append(out, gateway.FieldError{Field: "/misp_push/url", Message: err.Error()})
		}
	}
	return out
}
