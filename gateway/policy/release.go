package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/schakel/schakel/gateway"
)

// A release is an analyst's word that a held event may go to recipients the
// table does not allow. It overrides need-to-know, never the hard rules:
// TLP:RED leaves only by e-mail to a named person, and only push channels
// carry a release.

// ReleaseChannels lists the push channels an admin may release a held event
// to r over, or says why r may not have it.
func ReleaseChannels(ev *gateway.Event, r gateway.Recipient) ([]gateway.Channel, error) {
	if !ev.TLP.Valid() {
		return nil, fmt.Errorf("unknown TLP %q: never released", ev.TLP)
	}
	switch r.Kind {
	case gateway.RecipientPerson:
		return []gateway.Channel{gateway.ChannelEmail}, nil
	case gateway.RecipientConstituent:
		if ev.TLP == gateway.TLPRed {
			return nil, errors.New("TLP:RED is released only to named persons by e-mail")
		}
		return []gateway.Channel{gateway.ChannelWebhook, gateway.ChannelMISPPush}, nil
	}
	return nil, fmt.Errorf("a release goes to named persons or constituents, not to a %s", orNone(r.Kind))
}

// DecideRelease re-checks one released delivery, to r over ch, when it is
// sent: the same rules as the release itself, so a stored delivery that claims
// to be released cannot carry more than a release could have.
func DecideRelease(ev *gateway.Event, r gateway.Recipient, ch gateway.Channel) Decision {
	chs, err := ReleaseChannels(ev, r)
	if err != nil {
		return Decision{Channel: ch, Verdict: Deny, Rule: err.Error()}
	}
	if !slices.Contains(chs, ch) {
		return Decision{Channel: ch, Verdict: Deny, Rule: fmt.Sprintf("TLP:%s released to a %s never goes over %s", ev.TLP, r.Kind, ch)}
	}
	d := Decision{Channel: ch, Verdict: Deliver, Rule: fmt.Sprintf("TLP:%s released to a %s over %s", ev.TLP, r.Kind, ch)}
	// Only constituents are told "recipient organisation only"; releases
	// to named persons never carried the caveat.
	if ev.TLP == gateway.TLPAmberStrict && r.Kind == gateway.RecipientConstituent {
		d.Handling = HandlingStrict
	}
	return d
}

func orNone(k gateway.RecipientKind) gateway.RecipientKind {
	if k == "" {
		return "recipient of no kind"
	}
	return k
}
