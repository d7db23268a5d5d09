package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
)

func TestHeld(t *testing.T) {
	// A is owner of 192.0.2.10; ciso@a.example is A's red contact.
	owned := []gateway.Indicator{{Type: gateway.TypeIPv4, Value: "192.0.2.10"}}
	named := []gateway.Addressee{{Email: "ciso@a.example"}}
	cs := []gateway.Constituent{consA, consB}
	tests := []struct {
		name       string
		ev         gateway.Event
		cs         []gateway.Constituent
		deliveries int
		want       bool
		reason     string // a word the reason must contain
		push       Push   // the push channels with a sink (all when nil)
	}{
		{"green reaches the community", gateway.Event{TLP: gateway.TLPGreen, Kind: gateway.KindIntel}, cs, 0, false, "", nil},
		{"amber with a sector", gateway.Event{TLP: gateway.TLPAmber, Kind: gateway.KindIntel, Sectors: []string{"health"}}, cs, 2, false, "", nil},
		{"amber without sector or owner", gateway.Event{TLP: gateway.TLPAmber, Kind: gateway.KindIntel}, cs, 0, true, "no recipient", nil},
		{"amber+strict from an own source with an owner", gateway.Event{TLP: gateway.TLPAmberStrict, Kind: gateway.KindIntel, Indicators: owned, Source: gateway.SourceRef{Own: true}}, cs, 1, false, "", nil},
		{"amber+strict from upstream with an owner", gateway.Event{TLP: gateway.TLPAmberStrict, Kind: gateway.KindIntel, Indicators: owned}, cs, 0, true, "the relay is the recipient organisation", nil},
		{"amber+strict with a sector only", gateway.Event{TLP: gateway.TLPAmberStrict, Kind: gateway.KindIntel, Sectors: []string{"health"}}, cs, 0, true, "no recipient", nil},
		{"red to a named red person, delivered", gateway.Event{TLP: gateway.TLPRed, Kind: gateway.KindIntel, Addressees: named}, cs, 1, false, "", nil},
		// Reachable by the table, but no e-mail channel made the delivery.
		{"red to a named red person, no delivery", gateway.Event{TLP: gateway.TLPRed, Kind: gateway.KindIntel, Addressees: named}, cs, 0, true, "TLP:RED", nil},
		{"red to a named red person, no e-mail relay", gateway.Event{TLP: gateway.TLPRed, Kind: gateway.KindIntel, Addressees: named}, cs, 0, true, "no e-mail relay", Push{gateway.ChannelWebhook: true}},
		{"red without a named person", gateway.Event{TLP: gateway.TLPRed, Kind: gateway.KindIntel, Indicators: owned}, cs, 0, true, "TLP:RED", nil},
		{"clear with no constituents", gateway.Event{TLP: gateway.TLPClear, Kind: gateway.KindIntel}, nil, 0, false, "", nil},
		{"unknown label", gateway.Event{TLP: "PURPLE", Kind: gateway.KindIntel, Indicators: owned}, cs, 0, true, "no recipient", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			push := tt.push
			if push == nil {
				push = Push{gateway.ChannelWebhook: true, gateway.ChannelEmail: true, gateway.ChannelMISPPush: true}
			}
			held, reason := Assess(&tt.ev, owner).Held(tt.cs, tt.deliveries, push)
			if held != tt.want {
				t.Fatalf("held %v (%q), want %v", held, reason, tt.want)
			}
			if held != (reason != "") || !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q, want one containing %q exactly when held", reason, tt.reason)
			}
		})
	}
}

func TestReleaseChannels(t *testing.T) {
	person, cons := gateway.PersonRecipient("ciso@a.example"), gateway.ConstituentRecipient("a")
	tests := []struct {
		tlp  gateway.TLP
		to   gateway.Recipient
		want []gateway.Channel // nil: refused
	}{
		{gateway.TLPClear, person, []gateway.Channel{gateway.ChannelEmail}},
		{gateway.TLPAmberStrict, person, []gateway.Channel{gateway.ChannelEmail}},
		{gateway.TLPRed, person, []gateway.Channel{gateway.ChannelEmail}},
		{gateway.TLPGreen, cons, []gateway.Channel{gateway.ChannelWebhook, gateway.ChannelMISPPush}},
		{gateway.TLPAmberStrict, cons, []gateway.Channel{gateway.ChannelWebhook, gateway.ChannelMISPPush}},
		{gateway.TLPRed, cons, nil},
		{gateway.TLPAmber, gateway.ListRecipient("members@lists.example"), nil},
		{gateway.TLPAmber, gateway.Recipient{Kind: gateway.RecipientAuthority, ID: "ncsc"}, nil},
		{gateway.TLPAmber, gateway.Recipient{}, nil},
		{"PURPLE", person, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.tlp)+"/"+tt.to.String(), func(t *testing.T) {
			got, err := ReleaseChannels(&gateway.Event{ID: "e", TLP: tt.tlp}, tt.to)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("released over %v, want refused", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("channels %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestDecideRelease(t *testing.T) {
	person, cons := gateway.PersonRecipient("ciso@a.example"), gateway.ConstituentRecipient("a")
	tests := []struct {
		tlp      gateway.TLP
		to       gateway.Recipient
		ch       gateway.Channel
		want     Verdict
		handling string
	}{
		{gateway.TLPRed, person, gateway.ChannelEmail, Deliver, ""},
		{gateway.TLPRed, person, gateway.ChannelWebhook, Deny, ""},
		{gateway.TLPRed, cons, gateway.ChannelWebhook, Deny, ""},
		{gateway.TLPRed, cons, gateway.ChannelEmail, Deny, ""},
		{gateway.TLPAmberStrict, cons, gateway.ChannelWebhook, Deliver, HandlingStrict},
		{gateway.TLPAmberStrict, cons, gateway.ChannelMISPPush, Deliver, HandlingStrict},
		{gateway.TLPAmberStrict, person, gateway.ChannelEmail, Deliver, ""},
		{gateway.TLPAmber, cons, gateway.ChannelMISPPush, Deliver, ""},
		{gateway.TLPAmber, cons, gateway.ChannelTAXII, Deny, ""}, // not a push channel
		{gateway.TLPClear, gateway.ListRecipient("pub@lists.example"), gateway.ChannelEmail, Deny, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.tlp)+"/"+tt.to.String()+"/"+string(tt.ch), func(t *testing.T) {
			d := DecideRelease(&gateway.Event{ID: "e", TLP: tt.tlp}, tt.to, tt.ch)
			if d.Verdict != tt.want || d.Handling != tt.handling || d.Channel != tt.ch {
				t.Fatalf("decision %+v, want verdict %s handling %q", d, tt.want, tt.handling)
			}
			if d.Rule == "" {
				t.Fatal("decision without a rule")
			}
		})
	}
}

func TestPullTLPs(t *testing.T) {
	tests := []struct {
		ch   gateway.Channel
		want []gateway.TLP
	}{
		{gateway.ChannelMISPPull, []gateway.TLP{gateway.TLPClear, gateway.TLPGreen, gateway.TLPAmber, gateway.TLPAmberStrict}},
		{gateway.ChannelTAXII, []gateway.TLP{gateway.TLPClear, gateway.TLPGreen, gateway.TLPAmber, gateway.TLPAmberStrict}},
		{gateway.ChannelPublic, nil}, // not a constituent channel
	}
	for _, tt := range tests {
		t.Run(string(tt.ch), func(t *testing.T) {
			if got := PullTLPs(tt.ch); !slices.Equal(got, tt.want) {
				t.Fatalf("PullTLPs(%s) = %v, want %v", tt.ch, got, tt.want)
			}
		})
	}
}
