package gateway

import (
	"crypto/sha256"
	"encoding/hex"
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

// Delivery is one event version owed to one recipient over one channel.
type Delivery struct {
	ID        string    `json:"delivery_id"`
	EventID   string    `json:"event_id"`
	Version   string    `json:"version"`
	Recipient string    `json:"recipient"` // constituent id or list address
	Channel   Channel   `json:"channel"`
	Target    string    `json:"target,omitempty"` // webhook URL, e-mail address, MISP URL
	TLP       TLP       `json:"tlp"`
	Priority  Priority  `json:"priority,omitempty"`
	Rule      string    `json:"rule"`
	Attempt   int       `json:"attempt,omitempty"`
	Created   time.Time `json:"created,omitzero"`
}

// DeliveryID is stable for (event, version, recipient, channel, target) so
// receivers can de-duplicate redeliveries.
func DeliveryID(eventID, version, recipient string, ch Channel, target string) string {
	h := sha256.New()
	for _, s := range []string{eventID, version, recipient, string(ch), target} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "dlv_" + hex.EncodeToString(h.Sum(nil)[:16])
}
