package pipeline

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/policy"
	"github.com/schakel/schakel/gateway/registry"
)

// The TLP property test of ARCHITECTURE §10: random events × random
// constituents × every channel. Routing (push) and the pull-view decisions
// are checked against an oracle written from the §4 table alone, sharing no
// code with the policy package.

var sectors = []string{"health", "energy", "water", "finance"}

func randConstituents(r *rand.Rand, n int) []gateway.Constituent {
	cs := make([]gateway.Constituent, n)
	for i := range cs {
		id := fmt.Sprintf("c%02d", i)
		c := gateway.Constituent{ID: id, Name: id}
		if r.IntN(2) == 0 {
			c.Sectors = []string{sectors[r.IntN(len(sectors))]}
		}
		// Each constituent owns 10.<i>.0.0/16, some also a nested /24 of another's.
		c.Assets.Prefixes = []string{fmt.Sprintf("10.%d.0.0/16", i)}
		if r.IntN(4) == 0 {
			c.Assets.Prefixes = append(c.Assets.Prefixes, fmt.Sprintf("10.%d.7.0/24", r.IntN(n)))
		}
		for j := range 1 + r.IntN(2) {
			c.Contacts = append(c.Contacts, gateway.Contact{Email: fmt.Sprintf("p%d@%s.example", j, id), Red: r.IntN(2) == 0})
		}
		if r.IntN(5) > 0 {
			c.Webhooks = []gateway.Webhook{{URL: "https://" + id + ".example/hook", Secret: "whsec_AAAA"}}
		}
		if r.IntN(3) == 0 {
			c.MISPPush = &gateway.MISPPush{URL: "https://misp." + id + ".example", Key: strings.Repeat("k", 40)}
		}
		cs[i] = c
	}
	return cs
}

func randEvent(r *rand.Rand, n int) *gateway.Event {
	kinds := []gateway.Kind{gateway.KindAdvisory, gateway.KindIntel, gateway.KindNotification, gateway.KindIncident}
	ev := &gateway.Event{ID: "e", Kind: kinds[r.IntN(len(kinds))], Title: "t", TLP: gateway.TLPs[r.IntN(len(gateway.TLPs))]}
	ev.Modified = ev.Created
	// Half the events come from one of the relay's own sources.
	ev.Source.Own = r.IntN(2) == 0
	if r.IntN(2) == 0 {
		ev.Sectors = []string{sectors[r.IntN(len(sectors))]}
	}
	for range r.IntN(3) {
		if r.IntN(2) == 0 {
			ev.Addressees = append(ev.Addressees, gateway.Addressee{Constituent: fmt.Sprintf("c%02d", r.IntN(n+1))})
		} else {
			pi, ci := r.IntN(2), r.IntN(n)
			ev.Addressees = append(ev.Addressees, gateway.Addressee{Email: fmt.Sprintf("p%d@c%02d.example", pi, ci), Name: fmt.Sprintf("Person %d of C%02d", pi, ci)})
		}
	}
	for range r.IntN(6) {
		ev.Indicators = append(ev.Indicators, gateway.Indicator{Type: gateway.TypeIPv4,
			Value: fmt.Sprintf("10.%d.%d.%d", r.IntN(n+2), []int{7, 9}[r.IntN(2)], 1+r.IntN(250))})
	}
	return ev
}

// oracleOwner says whether c owns the address, by the longest-prefix rule.
func oracleOwns(cs []gateway.Constituent, c *gateway.Constituent, value string) bool {
	a, err := netip.ParseAddr(value)
	if err != nil {
		return false
	}
	best := -1
	var owners []string
	for _, k := range cs {
		for _, p := range k.Assets.Prefixes {
			pf := netip.MustParsePrefix(p)
			if !pf.Contains(a) {
				continue
			}
			switch {
			case pf.Bits() > best:
				best, owners = pf.Bits(), []string{k.ID}
			case pf.Bits() == best:
				owners = append(owners, k.ID)
			}
		}
	}
	return slices.Contains(owners, c.ID)
}

func oracleAddressed(ev *gateway.Event, c *gateway.Constituent) bool {
	for _, ad := range ev.Addressees {
		if ad.Constituent == c.ID {
			return true
		}
		for _, ct := range c.Contacts {
			if ad.Email != "" && ad.Email == ct.Email {
				return true
			}
		}
	}
	return false
}

// oracleAllows is ARCHITECTURE §4 for a constituent channel (target is the
// contact e-mail for ChannelEmail).
func oracleAllows(cs []gateway.Constituent, ev *gateway.Event, c *gateway.Constituent, ch gateway.Channel, target string) bool {
	addressed := oracleAddressed(ev, c)
	owner := false
	for _, ind := range ev.Indicators {
		owner = owner || oracleOwns(cs, c, ind.Value)
	}
	sector := false
	for _, s := range ev.Sectors {
		sector = sector || slices.Contains(c.Sectors, s)
	}
	if ev.Kind == gateway.KindNotification && !owner && !addressed {
		return false
	}
	switch ev.TLP {
	case gateway.TLPClear, gateway.TLPGreen:
		return true
	case gateway.TLPAmber:
		return addressed || owner || sector
	case gateway.TLPAmberStrict:
		// The relay is the recipient organisation of STRICT from upstream.
		return (addressed || owner) && ev.Source.Own
	case gateway.TLPRed:
		if ch != gateway.ChannelEmail {
			return false
		}
		for _, ct := range c.Contacts {
			if ct.Email == target && ct.Red {
				for _, ad := range ev.Addressees {
					if ad.Email == target {
						return true
					}
				}
			}
		}
	}
	return false
}

// oracleLeak returns what a copy for recipient self shows of the other
// addressees ("" when nothing): a constituent may see only
// {"constituent": its own id}, a named person only itself, a list nobody.
func oracleLeak(ev, copy *gateway.Event, self gateway.Recipient) string {
	body, err := json.Marshal(copy)
	if err != nil {
		return err.Error()
	}
	text := string(body)
	for _, ad := range ev.Addressees {
		if ad.Constituent != "" && !(self.Kind == gateway.RecipientConstituent && ad.Constituent == self.ID) &&
			strings.Contains(text, `"constituent":"`+ad.Constituent+`"`) {
			return "constituent " + ad.Constituent
		}
		if ad.Email == "" || (self.Kind == gateway.RecipientPerson && ad.Email == self.ID) {
			continue
		}
		if strings.Contains(text, ad.Email) {
			return "address " + ad.Email
		}
		if ad.Name != "" && strings.Contains(text, ad.Name) {
			return "name " + ad.Name
		}
	}
	for _, ad := range copy.Addressees {
		switch {
		case self.Kind == gateway.RecipientConstituent && ad == gateway.Addressee{Constituent: self.ID}:
		case self.Kind == gateway.RecipientPerson && ad.Constituent == "" && ad.Email == self.ID:
		default:
			return fmt.Sprintf("addressee %+v", ad)
		}
	}
	return ""
}

func TestTLPProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(20261123, 1))
	lists := []MailingList{{Address: "pub@lists.example", Audience: gateway.ChannelPublic}, {Address: "members@lists.example", Audience: gateway.ChannelCommunityList}}
	p := &Pipeline{cfg: Config{
		Push:         map[gateway.Channel]bool{gateway.ChannelWebhook: true, gateway.ChannelEmail: true, gateway.ChannelMISPPush: true},
		MailingLists: lists,
	}}
	var (
		delivered, denied int
		n                 int
		cs                []gateway.Constituent
		snap              *registry.Snapshot
	)
	for iter := range 3000 {
		// A fresh random constituency for every fifth event: building its
		// address tables is what costs (most of all under -race), and five
		// random events against each still vary every input of §4.
		if iter%5 == 0 {
			n = 2 + r.IntN(8)
			cs = randConstituents(r, n)
			var err error
			if snap, err = registry.Build(int64(iter), cs); err != nil {
				t.Fatal(err)
			}
		}
		ev := randEvent(r, n)
		a := policy.Assess(ev, snap)
		ds := p.plan(a, snap, ev.Created)
		for _, d := range ds {
			if d.Recipient.Kind == gateway.RecipientList {
				if leak := oracleLeak(ev, a.ProjectFor(d.Recipient, nil), d.Recipient); leak != "" {
					t.Fatalf("iter %d: the copy for list %s shows %s", iter, d.Target, leak)
				}
				okPublic := ev.TLP == gateway.TLPClear
				okCommunity := ev.TLP == gateway.TLPClear || ev.TLP == gateway.TLPGreen
				if ev.Kind == gateway.KindNotification ||
					(d.Target == "pub@lists.example" && !okPublic) || (d.Target == "members@lists.example" && !okCommunity) {
					t.Fatalf("iter %d: %s %s sent to list %s", iter, ev.TLP, ev.Kind, d.Target)
				}
				continue
			}
			c, _ := snap.Get(d.Recipient.ID)
			if !oracleAllows(cs, ev, c, d.Channel, d.Target) {
				t.Fatalf("iter %d: delivery exceeds §4: %s %s to %s over %s (%s); event %+v", iter, ev.TLP, ev.Kind, d.Recipient, d.Channel, d.Rule, ev)
			}
			if d.TLP != ev.TLP {
				t.Fatalf("iter %d: delivery TLP %s for a %s event", iter, d.TLP, ev.TLP)
			}
			// The projection never carries an indicator the recipient may not
			// see, nor another recipient's identity.
			proj := a.ProjectFor(d.Recipient, c)
			if leak := oracleLeak(ev, proj, d.Recipient); leak != "" {
				t.Fatalf("iter %d: the copy for %s over %s shows %s", iter, d.Recipient, d.Channel, leak)
			}
			for _, ind := range proj.Indicators {
				if ev.Kind == gateway.KindNotification && !oracleOwns(cs, c, ind.Value) {
					t.Fatalf("iter %d: notification indicator %s projected to non-owner %s", iter, ind.Value, c.ID)
				}
			}
			delivered++
		}
		// Pull views: the decision for every constituent and pull channel.
		for i := range cs {
			c := &cs[i]
			for _, ch := range []gateway.Channel{gateway.ChannelMISPPull, gateway.ChannelTAXII, gateway.ChannelFeed, gateway.ChannelWebhook, gateway.ChannelMISPPush} {
				got := a.Decide(c, ch).Verdict == policy.Deliver
				if got != oracleAllows(cs, ev, c, ch, "") {
					t.Fatalf("iter %d: %s decision for %s over %s is %v; oracle disagrees; event %+v", iter, ev.TLP, c.ID, ch, got, ev)
				}
				if got {
					if leak := oracleLeak(ev, a.Project(c), gateway.ConstituentRecipient(c.ID)); leak != "" {
						t.Fatalf("iter %d: the %s view of %s shows %s", iter, ch, c.ID, leak)
					}
				}
				if !got {
					denied++
				}
			}
		}
		// A named person an admin may release the event to sees only itself.
		for _, ad := range ev.Addressees {
			if ad.Email != "" {
				who := gateway.PersonRecipient(ad.Email)
				if leak := oracleLeak(ev, a.ProjectFor(who, nil), who); leak != "" {
					t.Fatalf("iter %d: the copy for %s shows %s", iter, ad.Email, leak)
				}
			}
		}
		for _, ch := range []gateway.Channel{gateway.ChannelPublic, gateway.ChannelCommunityList} {
			if policy.DecideAudience(ev, ch).Verdict == policy.Deliver {
				if leak := oracleLeak(ev, policy.ProjectAudience(ev), gateway.Recipient{}); leak != "" {
					t.Fatalf("iter %d: the %s copy shows %s", iter, ch, leak)
				}
				if ev.Kind == gateway.KindNotification || ev.TLP.Rank() > gateway.TLPGreen.Rank() || (ch == gateway.ChannelPublic && ev.TLP != gateway.TLPClear) {
					t.Fatalf("iter %d: %s %s allowed on %s", iter, ev.TLP, ev.Kind, ch)
				}
			}
		}
	}
	if delivered < 1000 || denied < 1000 {
		t.Fatalf("the generator is too narrow: %d deliveries, %d denials", delivered, denied)
	}
}
