package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Channel is a way information leaves Schakel. Push channels produce
// deliveries; pull views are served on request. The policy decides all of them.
type Channel string

const (
	ChannelWebhook       Channel = "webhook"        // push, constituent-specific
	ChannelEmail         Channel = "email"          // push, constituent contacts / named persons
	ChannelMISPPush      Channel = "misp_push"      // push, constituent MISP
	ChannelMISPPull      Channel = "misp_pull"      // pull, constituent key on the MISP server API
	ChannelTAXII         Channel = "taxii"          // pull, constituent key on TAXII
	ChannelFeed          Channel = "feed"           // pull, constituent key on the MISP feed
	ChannelCommunityList Channel = "community_list" // push/pull, community mailing lists and unscoped feeds
	ChannelPublic        Channel = "public"         // push/pull, public list and public feed
)

// Channels lists every channel, constituent-specific ones first.
var Channels = []Channel{
	ChannelWebhook, ChannelEmail, ChannelMISPPush, ChannelMISPPull, ChannelTAXII,
	ChannelFeed, ChannelCommunityList, ChannelPublic,
}

// RecipientKind says what kind of party a delivery is for.
type RecipientKind string

const (
	RecipientConstituent RecipientKind = "constituent" // a registered constituent (its webhooks, contacts, MISP)
	RecipientList        RecipientKind = "list"        // a configured mailing list
	RecipientPerson      RecipientKind = "person"      // a named person an admin released a held event to
	RecipientAuthority   RecipientKind = "authority"   // a competent authority (incident reports)
	RecipientUpstream    RecipientKind = "upstream"    // an upstream the relay shares back with
)

// recipientKinds are the kinds written with a "kind:" prefix; a constituent
// is written as its bare id, which can never contain a colon.
var recipientKinds = []RecipientKind{RecipientList, RecipientPerson, RecipientAuthority, RecipientUpstream}

// Recipient names who a delivery is for. Its text form, which is also the
// form stored in Redis, hashed into delivery ids and shown by the admin API,
// is the bare id for a constituent and "<kind>:<id>" for the others
// ("list:soc@lists.example", "person:ciso@a.example").
type Recipient struct {
	Kind RecipientKind
	ID   string // constituent id, list address, person's address, authority or upstream name
}

// ConstituentRecipient names constituent id.
func ConstituentRecipient(id string) Recipient { return Recipient{Kind: RecipientConstituent, ID: id} }

// ListRecipient names the mailing list at address.
func ListRecipient(address string) Recipient { return Recipient{Kind: RecipientList, ID: address} }

// PersonRecipient names a person by e-mail address.
func PersonRecipient(address string) Recipient { return Recipient{Kind: RecipientPerson, ID: address} }

// ParseRecipient reads the text form. Anything without a known kind prefix is
// a constituent id, so every stored recipient reads back as what it was.
func ParseRecipient(s string) Recipient {
	if s == "" {
		return Recipient{}
	}
	for _, k := range recipientKinds {
		if id, ok := strings.CutPrefix(s, string(k)+":"); ok {
			return Recipient{Kind: k, ID: id}
		}
	}
	return ConstituentRecipient(s)
}

// String returns the text form (see Recipient).
func (r Recipient) String() string {
	switch r.Kind {
	case RecipientConstituent, "":
		return r.ID
	}
	return string(r.Kind) + ":" + r.ID
}

// IsZero reports whether r names nobody.
func (r Recipient) IsZero() bool { return r.ID == "" }

// MarshalText writes the text form, so JSON keeps the string it always had.
func (r Recipient) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the text form.
func (r *Recipient) UnmarshalText(b []byte) error {
	*r = ParseRecipient(string(b))
	return nil
}

// Delivery is one event version owed to one recipient over one channel.
type Delivery struct {
	ID        string    `json:"delivery_id"`
	EventID   string    `json:"event_id"`
	Version   string    `json:"version"`
	Recipient Recipient `json:"recipient"`
	Channel   Channel   `json:"channel"`
	Target    string    `json:"target,omitempty"` // webhook URL, e-mail address, MISP URL
	TLP       TLP       `json:"tlp"`
	Priority  Priority  `json:"priority,omitempty"`
	Rule      string    `json:"rule"`
	// Released says an admin released the held event to this recipient;
	// the rule then reads "released by <admin>".
	Released bool      `json:"released,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Created  time.Time `json:"created,omitzero"`
}

// releasedRulePrefix starts the rule of every released delivery; deliveries
// stored before Released existed are recognised by it.
const releasedRulePrefix = "released by "

// ReleasedRule is the rule a delivery released by admin by carries.
func ReleasedRule(by string) string { return releasedRulePrefix + by }

// UnmarshalJSON reads a delivery, including those stored before Released
// existed, whose release shows only in the rule.
func (d *Delivery) UnmarshalJSON(b []byte) error {
	type plain Delivery
	if err := json.Unmarshal(b, (*plain)(d)); err != nil {
		return err
	}
	if !d.Released && strings.HasPrefix(d.Rule, releasedRulePrefix) {
		d.Released = true
	}
	return nil
}

// DeliveryID is stable for (event, version, recipient, channel, target) so
// receivers can de-duplicate redeliveries. It hashes the recipient's text
// form, so ids stay what they were when recipients were plain strings.
func DeliveryID(eventID, version string, r Recipient, ch Channel, target string) string {
	h := sha256.New()
	for _, s := range []string{eventID, version, r.String(), string(ch), target} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "dlv_" + hex.EncodeToString(h.Sum(nil)[:16])
}
