package console

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

// KeyExpiryWarning is how far ahead the overview lists contact keys that
// expire: time enough to ask the contact for a new one.
const KeyExpiryWarning = 30 * 24 * time.Hour

// contactRef names one contact of a constituent.
type contactRef struct {
	Constituent, Email, Name string
}

// expiringKey is a contact key that expires within KeyExpiryWarning, or has.
type expiringKey struct {
	contactRef
	Field, ID string
	Expires   time.Time
	Expired   bool
}

// redWithoutKey lists contacts that may be named for TLP:RED but have no
// key: encrypt-only warnings reach them only as a notice without content.
func redWithoutKey(cs []gateway.Constituent) []contactRef {
	var out []contactRef
	for _, c := range cs {
		for _, ct := range c.Contacts {
			if ct.Red && !ct.HasKey() {
				out = append(out, contactRef{c.ID, ct.Email, ct.Name})
			}
		}
	}
	return out
}

// keyReport caches the parsed contact keys per registry version: parsing
// every key on every overview would cost more than the page.
type keyReport struct {
	mu      sync.Mutex
	version int64
	keys    []expiringKey // every key with an expiry, soonest first
	valid   bool
}

func (r *keyReport) expiring(version int64, cs []gateway.Constituent, now time.Time) []expiringKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.valid || r.version != version {
		r.keys, r.version, r.valid = keysWithExpiry(cs), version, true
	}
	var out []expiringKey
	for _, k := range r.keys {
		if k.Expires.Sub(now) > KeyExpiryWarning {
			break
		}
		k.Expired = !now.Before(k.Expires)
		out = append(out, k)
	}
	return out
}

func keysWithExpiry(cs []gateway.Constituent) []expiringKey {
	var out []expiringKey
	for _, c := range cs {
		for _, ct := range c.Contacts {
			// Unreadable keys were refused when the constituent was parsed;
			// one stored before that check is simply not listed.
			keys, _ := config.ContactKeys(ct)
			for _, k := range keys {
				if !k.Expires.IsZero() {
					out = append(out, expiringKey{contactRef: contactRef{c.ID, ct.Email, ct.Name}, Field: k.Field, ID: k.ID, Expires: k.Expires})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b expiringKey) int {
		if c := a.Expires.Compare(b.Expires); c != 0 {
			return c
		}
		return strings.Compare(a.Email, b.Email)
	})
	return out
}
