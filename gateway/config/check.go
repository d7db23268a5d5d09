package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/schakel/schakel/gateway/egress"
	"github.com/schakel/schakel/schemas"
)

// check reports what the schema cannot express: uniqueness, positive
// intervals and addresses that must parse.
func (p *parser) check(c *Config) {
	p.hostPort("/listen", c.Listen)
	if c.Channels.Email.Relay != "" {
		p.hostPort("/channels/email/relay", c.Channels.Email.Relay)
	}

	enc := c.Channels.Email.Encrypt
	for i, t := range enc.PreferredFor {
		if slices.Contains(enc.RequiredFor, t) {
			p.fail(fmt.Sprintf("/channels/email/encrypt/preferred_for/%d", i), nil, "%s is also in required_for; name each TLP in one list", t.Label())
		}
	}

	pol := p.egress(c.Egress)
	names := map[string]int{}
	for i, s := range c.Sources {
		base := fmt.Sprintf("/sources/%d/", i)
		if first, dup := names[s.Name]; dup {
			p.fail(base+"name", nil, "source name %q is already used by sources[%d] (line %d)", s.Name, first, locate(p.root, fmt.Sprintf("/sources/%d/name", first)))
		} else {
			names[s.Name] = i
		}
		if p.present(base+"interval") && s.Interval.Duration <= 0 {
			p.fail(base+"interval", nil, "must be greater than zero")
		}
		if s.Listen != "" {
			p.hostPort(base+"listen", s.Listen)
		}
		if s.Address != "" {
			p.hostPort(base+"address", s.Address)
		}
		if s.URL != "" && !p.failed[base+"url"] {
			if err := pol.CheckURL(s.URL); err != nil {
				p.fail(base+"url", err, "%v", err)
			}
		}
	}

	lists := map[string]int{}
	for i, l := range c.MailingLists {
		addr := strings.ToLower(l.Address)
		if first, dup := lists[addr]; dup {
			p.fail(fmt.Sprintf("/mailing_lists/%d/address", i), nil, "list %q is already configured as mailing_lists[%d] with audience %q",
				l.Address, first, c.MailingLists[first].Audience)
			continue
		}
		lists[addr] = i
	}
}

// egress checks each allow and deny entry and returns the policy built
// from the good ones, so configured URLs are judged as they will be dialled.
func (p *parser) egress(e Egress) *egress.Policy {
	var lists [2][]string
	for j, l := range [2]struct {
		name    string
		entries []string
	}{{"allow", e.Allow}, {"deny", e.Deny}} {
		for i, v := range l.entries {
			if _, err := egress.ParsePrefix(v); err != nil {
				p.fail(fmt.Sprintf("/egress/%s/%d", l.name, i), err, "%v", err)
				continue
			}
			lists[j] = append(lists[j], v)
		}
	}
	pol, _ := egress.New(lists[0], lists[1], egress.RequireTLS(e.RequireTLS))
	return pol
}

func (p *parser) present(ptr string) bool { return schemas.Lookup(p.doc, ptr) != nil }

// hostPort checks "host:port" with a port in 0…65535; the host may be
// empty (all interfaces) or a bracketed IPv6 address.
func (p *parser) hostPort(ptr, v string) {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		p.fail(ptr, err, "must be host:port: %s", strings.TrimPrefix(err.Error(), "address "+v+": "))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(ptr, nil, "port %q must be a number from 0 to 65535", port)
	}
}
