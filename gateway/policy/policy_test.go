package policy

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// prefixOwners is a tiny matcher for tests: constituent id → prefixes.
type prefixOwners map[string][]netip.Prefix

func (p prefixOwners) Owners(ind *gateway.Indicator) []string {
	a, err := netip.ParseAddr(ind.Value)
	if err != nil {
		return nil
	}
	var out []string
	for id, ps := range p {
		for _, pf := range ps {
			if pf.Contains(a) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

var (
	consA = gateway.Constituent{ID: "a", Name: "A", Contacts: []gateway.Contact{{Email: "soc@a.example"}, {Email: "ciso@a.example", Red: true}}}
	consB = gateway.Constituent{ID: "b", Name: "B", Sectors: []string{"health"}, Contacts: []gateway.Contact{{Email: "soc@b.example", Red: true}}}
	owner = prefixOwners{
		"a": {netip.MustParsePrefix("192.0.2.0/24")},
		"b": {netip.MustParsePrefix("198.51.100.0/24")},
	}
)

func TestDecideTable(t *testing.T) {
	tests := []struct {
		tlp      gateway.TLP
		concern  Concern
		ch       gateway.Channel
		want     Verdict
		upstream bool // from a source that is not the relay's own
	}{
		{gateway.TLPClear, ConcernCommunity, gateway.ChannelWebhook, Deliver, false},
		{gateway.TLPGreen, ConcernCommunity, gateway.ChannelTAXII, Deliver, false},
		{gateway.TLPGreen, ConcernNone, gateway.ChannelWebhook, Deny, false},
		{gateway.TLPAmber, ConcernCommunity, gateway.ChannelWebhook, Deny, false},
		{gateway.TLPAmber, ConcernSector, gateway.ChannelMISPPull, Deliver, false},
		{gateway.TLPAmber, ConcernOwner, gateway.ChannelFeed, Deliver, false},
		{gateway.TLPAmberStrict, ConcernSector, gateway.ChannelWebhook, Deny, false},
		{gateway.TLPAmberStrict, ConcernOwner, gateway.ChannelWebhook, Deliver, false},
		{gateway.TLPAmberStrict, ConcernAddressed, gateway.ChannelEmail, Deliver, false},
		{gateway.TLPRed, ConcernAddressed, gateway.ChannelWebhook, Deny, false},
		{gateway.TLPRed, ConcernAddressed, gateway.ChannelEmail, Deny, false},
		{gateway.TLPRed, ConcernAddressed, gateway.ChannelMISPPull, Deny, false},
		{gateway.TLP("PURPLE"), ConcernAddressed, gateway.ChannelWebhook, Deny, false},
		{gateway.TLPClear, ConcernAddressed, gateway.ChannelPublic, Deny, false}, // not a constituent channel
		// From an upstream source the relay is the AMBER+STRICT recipient organisation.
		{gateway.TLPAmberStrict, ConcernOwner, gateway.ChannelWebhook, Hold, true},
		{gateway.TLPAmberStrict, ConcernAddressed, gateway.ChannelMISPPull, Hold, true},
		{gateway.TLPAmberStrict, ConcernSector, gateway.ChannelWebhook, Deny, true},
		{gateway.TLPAmber, ConcernOwner, gateway.ChannelWebhook, Deliver, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.tlp)+"/"+tt.concern.String()+"/"+string(tt.ch)+map[bool]string{true: "/upstream"}[tt.upstream], func(t *testing.T) {
			d := decideTable(tt.tlp, tt.concern, tt.ch, !tt.upstream)
			if d.Verdict != tt.want {
				t.Fatalf("verdict %s (rule %q), want %s", d.Verdict, d.Rule, tt.want)
			}
			if d.Rule == "" {
				t.Fatal("decision without a rule")
			}
			if tt.tlp == gateway.TLPAmberStrict && d.Verdict == Deliver && d.Handling != HandlingStrict {
				t.Fatalf("AMBER+STRICT delivered without handling caveat")
			}
		})
	}
}

func TestConcern(t *testing.T) {
	ev := &gateway.Event{
		Kind: gateway.KindIntel, TLP: gateway.TLPAmber, Sectors: []string{"health"},
		Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}},
	}
	a := Assess(ev, owner)
	if got := a.Concern(&consA); got != ConcernOwner {
		t.Errorf("A: %s, want owner", got)
	}
	if got := a.Concern(&consB); got != ConcernSector {
		t.Errorf("B: %s, want sector", got)
	}
	ev.Addressees = []gateway.Addressee{{Email: "SOC@b.example"}}
	if got := Assess(ev, owner).Concern(&consB); got != ConcernAddressed {
		t.Errorf("B addressed by contact e-mail: %s", got)
	}
	c := gateway.Constituent{ID: "c"}
	if got := a.Concern(&c); got != ConcernCommunity {
		t.Errorf("C: %s, want community", got)
	}
}

func TestNotificationProjection(t *testing.T) {
	ev := &gateway.Event{
		Kind: gateway.KindNotification, TLP: gateway.TLPAmber,
		Indicators: []gateway.Indicator{
			{Type: gateway.TypeIPv4, Value: "192.0.2.10", Attributes: map[string]string{"tag": "x"}},
			{Type: gateway.TypeIPv4, Value: "198.51.100.7"},
			{Type: gateway.TypeIPv4, Value: "203.0.113.1"},
		},
	}
	a := Assess(ev, owner)
	pa := a.Project(&consA)
	if len(pa.Indicators) != 1 || pa.Indicators[0].Value != "192.0.2.10" {
		t.Fatalf("A sees %+v", pa.Indicators)
	}
	pa.Indicators[0].Attributes["tag"] = "changed"
	if ev.Indicators[0].Attributes["tag"] != "x" {
		t.Fatal("projection shares memory with the event")
	}
	pb := a.Project(&consB)
	if len(pb.Indicators) != 1 || pb.Indicators[0].Value != "198.51.100.7" {
		t.Fatalf("B sees %+v", pb.Indicators)
	}
	c := gateway.Constituent{ID: "c", Sectors: []string{"health"}}
	if d := a.Decide(&c, gateway.ChannelWebhook); d.Verdict != Deny {
		t.Fatalf("a constituent owning nothing got a notification: %+v", d)
	}
	if a.Unowned() != 1 {
		t.Fatalf("unowned = %d, want 1", a.Unowned())
	}
	if d := DecideAudience(ev, gateway.ChannelCommunityList); d.Verdict != Deny {
		t.Fatal("notification on a community list")
	}
}

func TestRedNamedPersons(t *testing.T) {
	ev := &gateway.Event{Kind: gateway.KindIncident, TLP: gateway.TLPRed,
		Addressees: []gateway.Addressee{{Email: "ciso@a.example"}, {Email: "soc@a.example"}}}
	a := Assess(ev, owner)
	if d := a.DecideContact(&consA, consA.Contacts[1]); d.Verdict != Deliver {
		t.Fatalf("named red person denied: %+v", d)
	}
	if d := a.DecideContact(&consA, consA.Contacts[0]); d.Verdict != Deny {
		t.Fatalf("named person without red: true allowed: %+v", d)
	}
	if d := a.DecideContact(&consB, consB.Contacts[0]); d.Verdict != Deny {
		t.Fatalf("red person not named allowed: %+v", d)
	}
	for _, d := range a.Explain(&consA, Push{gateway.ChannelEmail: true}) {
		if d.Channel != gateway.ChannelEmail && d.Verdict == Deliver {
			t.Fatalf("RED deliverable over %s", d.Channel)
		}
	}
	if !a.Reachable([]gateway.Constituent{consA}) {
		t.Fatal("RED with an eligible named person is unreachable")
	}
	ev.Addressees = nil
	if Assess(ev, owner).Reachable([]gateway.Constituent{consA, consB}) {
		t.Fatal("RED without named persons is reachable")
	}
}

func TestAudience(t *testing.T) {
	for _, tt := range []struct {
		tlp            gateway.TLP
		community, pub Verdict
	}{
		{gateway.TLPClear, Deliver, Deliver},
		{gateway.TLPGreen, Deliver, Deny},
		{gateway.TLPAmber, Deny, Deny},
		{gateway.TLPAmberStrict, Deny, Deny},
		{gateway.TLPRed, Deny, Deny},
	} {
		ev := &gateway.Event{Kind: gateway.KindAdvisory, TLP: tt.tlp}
		if d := DecideAudience(ev, gateway.ChannelCommunityList); d.Verdict != tt.community {
			t.Errorf("%s community: %s", tt.tlp, d.Verdict)
		}
		if d := DecideAudience(ev, gateway.ChannelPublic); d.Verdict != tt.pub {
			t.Errorf("%s public: %s", tt.tlp, d.Verdict)
		}
	}
}

func TestSubscribed(t *testing.T) {
	c := gateway.Constituent{ID: "a", Subscriptions: gateway.Subscriptions{MinPriority: gateway.PriorityHigh, Kinds: []gateway.Kind{gateway.KindAdvisory}}}
	tests := []struct {
		ev   gateway.Event
		want bool
	}{
		{gateway.Event{Kind: gateway.KindAdvisory, Priority: gateway.PriorityCritical}, true},
		{gateway.Event{Kind: gateway.KindAdvisory, Priority: gateway.PriorityNormal}, false},
		{gateway.Event{Kind: gateway.KindIntel, Priority: gateway.PriorityCritical}, false},
	}
	for _, tt := range tests {
		if got, why := Subscribed(&tt.ev, &c); got != tt.want {
			t.Errorf("%+v: %v (%s)", tt.ev, got, why)
		}
	}
}

// Every outbound copy shows its recipient only itself among the addressees.
func TestProjectionAddressees(t *testing.T) {
	ev := &gateway.Event{ID: "e", Kind: gateway.KindIntel, Title: "t", TLP: gateway.TLPAmber, Addressees: []gateway.Addressee{
		{Constituent: "a"}, {Constituent: "b"}, {Email: "ciso@a.example", Name: "Alice"}, {Email: "soc@b.example", Name: "Bob"}, {Email: "x@else.example", Name: "X"},
	}}
	a := Assess(ev, owner)
	consC := gateway.Constituent{ID: "c", Name: "C"}
	onlyA := gateway.Constituent{ID: "a2", Contacts: []gateway.Contact{{Email: "x@else.example"}}} // addressed through a contact only
	tests := []struct {
		name string
		got  *gateway.Event
		want []gateway.Addressee
	}{
		{"constituent a", a.Project(&consA), []gateway.Addressee{{Constituent: "a"}}},
		{"constituent b", a.Project(&consB), []gateway.Addressee{{Constituent: "b"}}},
		{"not addressed", a.Project(&consC), nil},
		{"addressed through a named contact", a.Project(&onlyA), []gateway.Addressee{{Constituent: "a2"}}},
		{"audience", ProjectAudience(ev), nil},
		{"named person", ProjectPerson(ev, "CISO@a.example"), []gateway.Addressee{{Email: "ciso@a.example", Name: "Alice"}}},
		{"person not named", ProjectPerson(ev, "nobody@a.example"), nil},
		{"for a constituent recipient", a.ProjectFor(gateway.ConstituentRecipient("b"), &consB), []gateway.Addressee{{Constituent: "b"}}},
		{"for a person recipient", a.ProjectFor(gateway.PersonRecipient("soc@b.example"), nil), []gateway.Addressee{{Email: "soc@b.example", Name: "Bob"}}},
		{"for a list", a.ProjectFor(gateway.ListRecipient("l@lists.example"), nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got.Addressees, tt.want) {
				t.Fatalf("addressees %+v, want %+v", tt.got.Addressees, tt.want)
			}
		})
	}
	if len(ev.Addressees) != 5 {
		t.Fatal("a projection changed the assessed event")
	}
}

// Explain says deliver for a push channel only when something would be sent.
func TestExplainTellsTheTruth(t *testing.T) {
	all := Push{gateway.ChannelWebhook: true, gateway.ChannelEmail: true, gateway.ChannelMISPPush: true}
	hooked := gateway.Constituent{ID: "a", Name: "A", Contacts: []gateway.Contact{{Email: "soc@a.example"}, {Email: "noc@a.example"}, {Email: "ciso@a.example", Red: true}},
		Webhooks: []gateway.Webhook{{URL: "https://a.example/hook"}}, MISPPush: &gateway.MISPPush{URL: "https://misp.a.example"}}
	bare := gateway.Constituent{ID: "a", Name: "A"}
	picky := hooked
	picky.Subscriptions = gateway.Subscriptions{Kinds: []gateway.Kind{gateway.KindAdvisory}}
	owned := []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}}
	amber := &gateway.Event{Kind: gateway.KindIntel, TLP: gateway.TLPAmber, Indicators: owned}
	red := &gateway.Event{Kind: gateway.KindIntel, TLP: gateway.TLPRed, Addressees: []gateway.Addressee{{Email: "ciso@a.example"}}}
	strict := &gateway.Event{Kind: gateway.KindIntel, TLP: gateway.TLPAmberStrict, Indicators: owned}
	ownStrict := &gateway.Event{Kind: gateway.KindIntel, TLP: gateway.TLPAmberStrict, Indicators: owned, Source: gateway.SourceRef{Own: true}}
	tests := []struct {
		name    string
		ev      *gateway.Event
		c       gateway.Constituent
		push    Push
		ch      gateway.Channel
		verdict Verdict
		rule    string // the rule starts with this
	}{
		{"webhook delivers", amber, hooked, all, gateway.ChannelWebhook, Deliver, "TLP:AMBER"},
		{"no webhook", amber, bare, all, gateway.ChannelWebhook, Deny, "no webhook configured"},
		{"no webhook channel", amber, hooked, Push{gateway.ChannelEmail: true}, gateway.ChannelWebhook, Deny, "the webhook channel is not configured"},
		{"no contact", amber, bare, all, gateway.ChannelEmail, Deny, "no contact configured"},
		{"no e-mail relay", amber, hooked, Push{gateway.ChannelWebhook: true}, gateway.ChannelEmail, Deny, "no e-mail relay configured"},
		{"no MISP push URL", amber, bare, all, gateway.ChannelMISPPush, Deny, "no MISP push URL"},
		{"MISP push delivers", amber, hooked, all, gateway.ChannelMISPPush, Deliver, "TLP:AMBER"},
		{"not subscribed", amber, picky, all, gateway.ChannelWebhook, Deny, "subscriptions: kind intel"},
		{"pull views need no sink", amber, bare, nil, gateway.ChannelTAXII, Deliver, "TLP:AMBER"},
		{"red to a named person", red, hooked, all, gateway.ChannelEmail, Deliver, "TLP:RED to named persons only: ciso@a.example"},
		{"red without the relay", red, hooked, Push{gateway.ChannelWebhook: true}, gateway.ChannelEmail, Deny, "TLP:RED: no e-mail relay configured"},
		{"red without a named red person", red, bare, all, gateway.ChannelEmail, Deny, "TLP:RED: no contact of this constituent is a named person"},
		{"strict from upstream", strict, hooked, all, gateway.ChannelWebhook, Hold, RuleStrictHeld},
		{"strict from an own source", ownStrict, hooked, all, gateway.ChannelWebhook, Deliver, "TLP:AMBER+STRICT to addressed or owner, " + RuleStrictOwn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := Assess(tt.ev, owner).Explain(&tt.c, tt.push)
			var got []Decision
			for _, d := range lines {
				if d.Channel == tt.ch {
					got = append(got, d)
				}
			}
			if len(got) != 1 {
				t.Fatalf("%d lines for %s, want one: %+v", len(got), tt.ch, got)
			}
			if got[0].Verdict != tt.verdict || !strings.HasPrefix(got[0].Rule, tt.rule) {
				t.Fatalf("%s: %s %q, want %s %q…", tt.ch, got[0].Verdict, got[0].Rule, tt.verdict, tt.rule)
			}
		})
	}
}

// A notification's pass-through objects may describe other constituents'
// hosts: a constituent that sees only part of the indicators gets none of
// them; one that owns every indicator keeps them.
func TestNotificationProjectionDropsPassThrough(t *testing.T) {
	ext := &gateway.Extensions{STIX: []json.RawMessage{json.RawMessage(`{"type":"relationship","id":"relationship--1","source_ref":"indicator--b"}`)}}
	shared := &gateway.Event{Kind: gateway.KindNotification, TLP: gateway.TLPAmber, Extensions: ext,
		Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}, {Type: gateway.TypeIPv4, Value: "198.51.100.7"}}}
	if p := Assess(shared, owner).Project(&consA); p.Extensions != nil {
		t.Errorf("A sees pass-through of a notification it only partly owns: %s", p.Extensions.STIX[0])
	}
	if p := ProjectAudience(shared); p.Extensions != nil {
		t.Error("an audience copy of a notification keeps pass-through")
	}
	own := &gateway.Event{Kind: gateway.KindNotification, TLP: gateway.TLPAmber, Extensions: ext,
		Indicators: []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}}}
	if p := Assess(own, owner).Project(&consA); p.Extensions == nil {
		t.Error("A lost the pass-through of a notification that is all its own")
	}
	intel := &gateway.Event{Kind: gateway.KindIntel, TLP: gateway.TLPAmber, Extensions: ext, Sectors: consA.Sectors}
	if p := Assess(intel, owner).Project(&consA); p.Extensions == nil {
		t.Error("intel shared whole lost its pass-through")
	}
}
