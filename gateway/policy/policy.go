// Package policy is the one place where TLP and need-to-know are interpreted
// (ARCHITECTURE §4). Push routing and every pull view ask it; nothing else
// reads an event's TLP to decide who may see it.
package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/schakel/schakel/gateway"
)

// Concern is how much a constituent has to do with an event, strongest last.
type Concern int

const (
	ConcernNone Concern = iota
	ConcernCommunity
	ConcernSector
	ConcernOwner
	ConcernAddressed
)

func (c Concern) String() string {
	switch c {
	case ConcernCommunity:
		return "community"
	case ConcernSector:
		return "sector"
	case ConcernOwner:
		return "owner"
	case ConcernAddressed:
		return "addressed"
	}
	return "none"
}

// MarshalText makes concerns read as words in JSON.
func (c Concern) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Verdict is the outcome for one channel.
type Verdict string

const (
	Deliver Verdict = "deliver"
	Hold    Verdict = "hold"
	Deny    Verdict = "deny"
)

// HandlingStrict is the caveat AMBER+STRICT deliveries carry.
const HandlingStrict = "recipient organisation only"

// Decision is the verdict for one channel with the rule that gave it, so every
// decision can be explained to an analyst.
type Decision struct {
	Channel  gateway.Channel `json:"channel"`
	Verdict  Verdict         `json:"verdict"`
	Rule     string          `json:"rule"`
	Handling string          `json:"handling,omitempty"`
}

// Owners is what the policy needs of the asset matcher.
type Owners interface {
	Owners(ind *gateway.Indicator) []string
}

// Assessment holds what the policy learned about one event: which indicators
// each constituent owns. Compute it once per event and ask it per recipient.
type Assessment struct {
	ev    *gateway.Event
	owned map[string][]int // constituent id → indices into ev.Indicators
}

// Assess matches ev's indicators against the constituents' assets. A nil
// matcher means nobody owns anything.
func Assess(ev *gateway.Event, m Owners) *Assessment {
	a := &Assessment{ev: ev}
	if m == nil {
		return a
	}
	for i := range ev.Indicators {
		for _, id := range m.Owners(&ev.Indicators[i]) {
			if a.owned == nil {
				a.owned = make(map[string][]int)
			}
			a.owned[id] = append(a.owned[id], i)
		}
	}
	return a
}

// Event returns the assessed event.
func (a *Assessment) Event() *gateway.Event { return a.ev }

// OwnedBy returns the indices of the indicators constituent id owns.
func (a *Assessment) OwnedBy(id string) []int { return a.owned[id] }

// OwnerIDs returns the constituents owning at least one indicator, sorted.
func (a *Assessment) OwnerIDs() []string {
	ids := make([]string, 0, len(a.owned))
	for id := range a.owned {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Unowned counts indicators no constituent owns (reported for notifications).
func (a *Assessment) Unowned() int {
	seen := make([]bool, len(a.ev.Indicators))
	for _, idx := range a.owned {
		for _, i := range idx {
			seen[i] = true
		}
	}
	n := 0
	for _, s := range seen {
		if !s {
			n++
		}
	}
	return n
}

// Concern computes the strongest concern c has with the event.
func (a *Assessment) Concern(c *gateway.Constituent) Concern {
	if addressed(a.ev, c) {
		return ConcernAddressed
	}
	if len(a.owned[c.ID]) > 0 {
		return ConcernOwner
	}
	for _, s := range a.ev.Sectors {
		if slices.Contains(c.Sectors, s) {
			return ConcernSector
		}
	}
	return ConcernCommunity
}

func addressed(ev *gateway.Event, c *gateway.Constituent) bool {
	for _, ad := range ev.Addressees {
		if ad.Constituent != "" && ad.Constituent == c.ID {
			return true
		}
		if ad.Email != "" {
			for _, ct := range c.Contacts {
				if strings.EqualFold(ct.Email, ad.Email) {
					return true
				}
			}
		}
	}
	return false
}

// ConstituentChannels are the channels specific to one constituent.
var ConstituentChannels = []gateway.Channel{
	gateway.ChannelWebhook, gateway.ChannelEmail, gateway.ChannelMISPPush,
	gateway.ChannelMISPPull, gateway.ChannelTAXII, gateway.ChannelFeed,
}

// Decide says whether constituent c may receive the event over ch, one of the
// constituent-specific channels. For ChannelEmail it decides the constituent's
// contacts as an organisation; TLP:RED e-mail goes only to named persons
// (DecideContact). Subscriptions are not considered here (see Subscribed).
func (a *Assessment) Decide(c *gateway.Constituent, ch gateway.Channel) Decision {
	d := decideTable(a.ev.TLP, a.Concern(c), ch, a.ev.Source.Own)
	if d.Verdict == Deliver && a.ev.Kind == gateway.KindNotification && len(a.owned[c.ID]) == 0 && a.Concern(c) != ConcernAddressed {
		return Decision{Channel: ch, Verdict: Deny, Rule: "notification: no indicator matches the constituent's assets"}
	}
	return d
}

// Rules of the AMBER+STRICT row that depend on who authored the event.
const (
	RuleStrictHeld = "held: AMBER+STRICT from an upstream source; the relay is the recipient organisation"
	RuleStrictOwn  = "own source: delivered with 'recipient organisation only'"
)

// decideTable applies the §4 table. own says the event comes from one of the
// relay's own sources: only then does AMBER+STRICT leave the relay.
func decideTable(tlp gateway.TLP, concern Concern, ch gateway.Channel, own bool) Decision {
	if !slices.Contains(ConstituentChannels, ch) {
		return Decision{Channel: ch, Verdict: Deny, Rule: fmt.Sprintf("%s is not a constituent channel", ch)}
	}
	deny := func(rule string) Decision { return Decision{Channel: ch, Verdict: Deny, Rule: rule} }
	deliver := func(rule string) Decision { return Decision{Channel: ch, Verdict: Deliver, Rule: rule} }
	switch tlp {
	case gateway.TLPClear, gateway.TLPGreen:
		if concern >= ConcernCommunity {
			return deliver(fmt.Sprintf("TLP:%s to community and up (concern %s)", tlp, concern))
		}
		return deny(fmt.Sprintf("TLP:%s needs concern community or up", tlp))
	case gateway.TLPAmber:
		if concern >= ConcernSector {
			return deliver(fmt.Sprintf("TLP:AMBER to addressed, owner or sector (concern %s)", concern))
		}
		return deny(fmt.Sprintf("TLP:AMBER needs concern addressed, owner or sector (concern %s)", concern))
	case gateway.TLPAmberStrict:
		if concern >= ConcernOwner {
			if !own {
				return Decision{Channel: ch, Verdict: Hold, Rule: fmt.Sprintf("%s (concern %s)", RuleStrictHeld, concern)}
			}
			d := deliver(fmt.Sprintf("TLP:AMBER+STRICT to addressed or owner, %s (concern %s)", RuleStrictOwn, concern))
			d.Handling = HandlingStrict
			return d
		}
		return deny(fmt.Sprintf("TLP:AMBER+STRICT needs concern addressed or owner (concern %s)", concern))
	case gateway.TLPRed:
		if ch == gateway.ChannelEmail {
			return deny("TLP:RED goes only to named persons with red: true, never to an organisation's contacts")
		}
		return deny(fmt.Sprintf("TLP:RED is never delivered over %s", ch))
	}
	return deny(fmt.Sprintf("unknown TLP %q: denied", tlp))
}

// DecideContact says whether the named contact of constituent c may receive the
// event by e-mail. Below RED this is the organisation's decision; for RED the
// person must be named in the event's addressees and marked red.
func (a *Assessment) DecideContact(c *gateway.Constituent, ct gateway.Contact) Decision {
	if a.ev.TLP != gateway.TLPRed {
		return a.Decide(c, gateway.ChannelEmail)
	}
	return DecideRedPerson(a.ev, ct)
}

// DecideRedPerson applies the TLP:RED row: only a person named in the event's
// addressees whose contact has red: true.
func DecideRedPerson(ev *gateway.Event, ct gateway.Contact) Decision {
	ch := gateway.ChannelEmail
	if ev.TLP != gateway.TLPRed {
		return Decision{Channel: ch, Verdict: Deny, Rule: "named-person rule applies to TLP:RED only"}
	}
	if !ct.Red {
		return Decision{Channel: ch, Verdict: Deny, Rule: "TLP:RED: contact is not marked red"}
	}
	for _, ad := range ev.Addressees {
		if ad.Email != "" && strings.EqualFold(ad.Email, ct.Email) {
			return Decision{Channel: ch, Verdict: Deliver, Rule: "TLP:RED to a named person with red: true"}
		}
	}
	return Decision{Channel: ch, Verdict: Deny, Rule: "TLP:RED: person is not named in the addressees"}
}

// DecideAudience decides the constituent-independent channels: community
// mailing lists and unscoped feeds, and the public list and feed.
func DecideAudience(ev *gateway.Event, ch gateway.Channel) Decision {
	deny := func(rule string) Decision { return Decision{Channel: ch, Verdict: Deny, Rule: rule} }
	if ev.Kind == gateway.KindNotification {
		return deny("notifications go only to the owners of the observed assets")
	}
	switch ch {
	case gateway.ChannelCommunityList:
		if ev.TLP == gateway.TLPClear || ev.TLP == gateway.TLPGreen {
			return Decision{Channel: ch, Verdict: Deliver, Rule: fmt.Sprintf("TLP:%s to community lists and unscoped feeds", ev.TLP)}
		}
		return deny(fmt.Sprintf("TLP:%s never goes to community lists or unscoped feeds", ev.TLP))
	case gateway.ChannelPublic:
		if ev.TLP == gateway.TLPClear {
			return Decision{Channel: ch, Verdict: Deliver, Rule: "TLP:CLEAR to the public list and feed"}
		}
		return deny(fmt.Sprintf("TLP:%s never goes to public channels", ev.TLP))
	}
	return deny(fmt.Sprintf("%s is not an audience channel", ch))
}

// Push says which push channels have a sink (pipeline.Config.Push): only
// those can deliver, whatever the table allows.
type Push map[gateway.Channel]bool

// Explain returns the decision for every channel for constituent c, as it
// would really turn out: a push channel says deliver only when the policy
// allows it, the channel has a sink (push), c has an endpoint on it and its
// subscriptions want the event. Identical lines for one channel (one per
// contact) are given once.
func (a *Assessment) Explain(c *gateway.Constituent, push Push) []Decision {
	out := make([]Decision, 0, len(ConstituentChannels)+2)
	add := func(d Decision) {
		for _, o := range out {
			if o == d {
				return
			}
		}
		out = append(out, d)
	}
	for _, ch := range ConstituentChannels {
		switch {
		case ch == gateway.ChannelEmail && a.ev.TLP == gateway.TLPRed:
			add(a.explainRedEmail(c, push))
		case ch == gateway.ChannelEmail && len(c.Contacts) > 0:
			for _, ct := range c.Contacts {
				add(a.pushable(c, a.DecideContact(c, ct), push))
			}
		default:
			add(a.pushable(c, a.Decide(c, ch), push))
		}
	}
	for _, ch := range []gateway.Channel{gateway.ChannelCommunityList, gateway.ChannelPublic} {
		add(DecideAudience(a.ev, ch))
	}
	return out
}

// pushable turns a push channel's Deliver into Deny when nothing would be
// sent: no sink for the channel, no endpoint of c's on it, or c's
// subscriptions exclude the event. Pull channels and other verdicts pass.
func (a *Assessment) pushable(c *gateway.Constituent, d Decision, push Push) Decision {
	if d.Verdict != Deliver {
		return d
	}
	var missing string
	switch d.Channel {
	case gateway.ChannelWebhook:
		switch {
		case !push[gateway.ChannelWebhook]:
			missing = "the webhook channel is not configured"
		case len(c.Webhooks) == 0:
			missing = "no webhook configured"
		}
	case gateway.ChannelEmail:
		switch {
		case !push[gateway.ChannelEmail]:
			missing = "no e-mail relay configured"
		case len(c.Contacts) == 0:
			missing = "no contact configured"
		}
	case gateway.ChannelMISPPush:
		switch {
		case !push[gateway.ChannelMISPPush]:
			missing = "the MISP push channel is not configured"
		case c.MISPPush == nil || c.MISPPush.URL == "":
			missing = "no MISP push URL"
		}
	default:
		return d
	}
	if missing == "" {
		if ok, why := Subscribed(a.ev, c); !ok {
			missing = why
		}
	}
	if missing == "" {
		return d
	}
	return Decision{Channel: d.Channel, Verdict: Deny, Rule: missing + "; the policy would allow: " + d.Rule}
}

func (a *Assessment) explainRedEmail(c *gateway.Constituent, push Push) Decision {
	ch := gateway.ChannelEmail
	var named []string
	for _, ct := range c.Contacts {
		if DecideRedPerson(a.ev, ct).Verdict == Deliver {
			named = append(named, ct.Email)
		}
	}
	if len(named) == 0 {
		return Decision{Channel: ch, Verdict: Deny, Rule: "TLP:RED: no contact of this constituent is a named person with red: true"}
	}
	if !push[ch] {
		return Decision{Channel: ch, Verdict: Deny, Rule: "TLP:RED: no e-mail relay configured to reach the named persons: " + strings.Join(named, ", ")}
	}
	if ok, why := Subscribed(a.ev, c); !ok {
		return Decision{Channel: ch, Verdict: Deny, Rule: why + "; TLP:RED would go to the named persons: " + strings.Join(named, ", ")}
	}
	return Decision{Channel: ch, Verdict: Deliver, Rule: "TLP:RED to named persons only: " + strings.Join(named, ", ")}
}

// Project returns the event as constituent c may see it: a notification keeps
// only the indicators c owns; other kinds are shared whole. Addressees show c
// itself at most, as its constituent id, never other constituents or named
// persons (not even c's own contacts). The result never shares memory with
// the assessed event.
func (a *Assessment) Project(c *gateway.Constituent) *gateway.Event {
	var p *gateway.Event
	if a.ev.Kind != gateway.KindNotification {
		p = a.ev.Clone()
	} else {
		idx := a.owned[c.ID]
		out := *a.ev
		out.Indicators = nil
		p = out.Clone()
		if len(idx) > 0 {
			p.Indicators = make([]gateway.Indicator, 0, len(idx))
			for _, i := range idx {
				p.Indicators = append(p.Indicators, a.ev.Indicators[i].Clone())
			}
		}
		if len(idx) < len(a.ev.Indicators) {
			// Pass-through objects (STIX relationships and sightings, MISP
			// objects) may describe the indicators of other constituents.
			p.Extensions = nil
		}
	}
	p.Addressees = nil
	if addressed(a.ev, c) {
		p.Addressees = []gateway.Addressee{{Constituent: c.ID}}
	}
	return p
}

// ProjectAudience returns the event as an audience channel (lists, public and
// community views) may carry it: no addressees, and notifications carry no
// indicators (they are denied there anyway).
func ProjectAudience(ev *gateway.Event) *gateway.Event {
	p := ev.Clone()
	p.Addressees = nil
	if ev.Kind == gateway.KindNotification {
		p.Indicators, p.Extensions = nil, nil
	}
	return p
}

// ProjectPerson returns the event as a named person an admin released it to
// may see it: like an audience copy, but addressees show the person itself
// when it is named there.
func ProjectPerson(ev *gateway.Event, email string) *gateway.Event {
	p := ProjectAudience(ev)
	for _, ad := range ev.Addressees {
		if ad.Email != "" && strings.EqualFold(ad.Email, email) {
			p.Addressees = []gateway.Addressee{{Email: ad.Email, Name: ad.Name}}
			break
		}
	}
	return p
}

// ProjectFor returns the event as recipient r may see it; c is r's
// constituent when r is one. Every outbound push copy is made here.
func (a *Assessment) ProjectFor(r gateway.Recipient, c *gateway.Constituent) *gateway.Event {
	switch {
	case r.Kind == gateway.RecipientConstituent && c != nil:
		return a.Project(c)
	case r.Kind == gateway.RecipientPerson:
		return ProjectPerson(a.ev, r.ID)
	}
	return ProjectAudience(a.ev)
}

// Subscribed reports whether c's subscriptions let the event be pushed to it
// (pull views ignore subscriptions), with the reason when not.
func Subscribed(ev *gateway.Event, c *gateway.Constituent) (bool, string) {
	s := c.Subscriptions
	if s.MinPriority != "" && ev.Priority.Rank() < s.MinPriority.Rank() {
		return false, fmt.Sprintf("subscriptions: priority %s below min_priority %s", orNormal(ev.Priority), s.MinPriority)
	}
	if len(s.Kinds) > 0 && !slices.Contains(s.Kinds, ev.Kind) {
		return false, fmt.Sprintf("subscriptions: kind %s not subscribed", ev.Kind)
	}
	if len(s.Labels) > 0 && !slices.ContainsFunc(ev.Labels, func(l string) bool { return slices.Contains(s.Labels, l) }) {
		return false, "subscriptions: none of the subscribed labels"
	}
	return true, ""
}

func orNormal(p gateway.Priority) gateway.Priority {
	if p == "" {
		return gateway.PriorityNormal
	}
	return p
}

// Reachable reports whether the table lets anybody receive the event: some
// constituent over some channel, an audience channel, or a named RED person.
// An event nobody may receive is held for the analysts, never dropped.
func (a *Assessment) Reachable(cs []gateway.Constituent) bool {
	for _, ch := range []gateway.Channel{gateway.ChannelCommunityList, gateway.ChannelPublic} {
		if DecideAudience(a.ev, ch).Verdict == Deliver {
			return true
		}
	}
	for i := range cs {
		c := &cs[i]
		if a.ev.TLP == gateway.TLPRed {
			for _, ct := range c.Contacts {
				if DecideRedPerson(a.ev, ct).Verdict == Deliver {
					return true
				}
			}
			continue
		}
		if a.Decide(c, gateway.ChannelMISPPull).Verdict == Deliver {
			return true
		}
	}
	return false
}

// Held reports whether routing must hold the event for the analysts, and why:
// the table lets nobody receive it, or it is TLP:RED and routing made no
// delivery (deliveries counts them), which means no named person marked red
// is reachable over a configured channel (push names the channels with a
// sink, so the reason can say whether the e-mail relay is missing).
func (a *Assessment) Held(cs []gateway.Constituent, deliveries int, push Push) (bool, string) {
	red := a.ev.TLP == gateway.TLPRed
	reachable := a.Reachable(cs)
	if reachable && (!red || deliveries > 0) {
		return false, ""
	}
	if red {
		if reachable && !push[gateway.ChannelEmail] {
			return true, "TLP:RED: named persons with red: true exist, but no e-mail relay is configured"
		}
		return true, "TLP:RED with no named person (red: true) reachable by e-mail"
	}
	if a.ev.TLP == gateway.TLPAmberStrict && !a.ev.Source.Own {
		for i := range cs {
			if a.Decide(&cs[i], gateway.ChannelMISPPull).Verdict == Hold {
				return true, RuleStrictHeld
			}
		}
	}
	return true, "the policy lets no recipient receive this event"
}

// PullTLPs lists the labels that some constituent may ever be shown over the
// pull channel ch, from least to most strict: what a pull view can offer as
// a filter.
func PullTLPs(ch gateway.Channel) []gateway.TLP {
	var out []gateway.TLP
	for _, t := range gateway.TLPs {
		if decideTable(t, ConcernAddressed, ch, true).Verdict == Deliver {
			out = append(out, t)
		}
	}
	return out
}
