package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// check reports what the schema cannot express: uniqueness, positive
// intervals and addresses that must parse.
func (p *parser) check(c *Config) {
	p.hostPort("/listen", c.Listen)
	if c.Channels.Email.Relay != "" {
		p.hostPort("/channels/email/relay", c.Channels.Email.Relay)
	}

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

func (p *parser) present(ptr string) bool { return lookup(p.doc, ptr) != nil }

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
