package taxii

import (
	"strings"

	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

// collection is one of the fixed collections of the API root. Ids are
// constants (UUIDv4, as TAXII requires) so clients that store them — MISP
// insists on a 36-character id, OpenCTI on the title — keep working across
// restarts and replicas.
type collection struct {
	ID          string
	Alias       string
	Title       string
	Description string
	audience    views.Audience
	inbox       bool
}

// Collection ids.
const (
	PublicID      = "3c9d5a6e-0b57-4c1e-8f0a-5e3b1d7c2a41"
	CommunityID   = "8e2f4b17-6a3d-4d58-9c2e-1f7a0b5d3e62"
	ConstituentID = "b5a7c3d9-2e4f-4a61-8b3c-7d9e1f0a2b83"
	InboxID       = "d1e3f5a7-9b2c-4d4e-a6f8-0a2c4e6f8b14"
)

var collections = []collection{
	{ID: PublicID, Alias: "public", Title: "public", audience: views.Public,
		Description: "TLP:CLEAR information, as on the public list and feed."},
	{ID: CommunityID, Alias: "community", Title: "community", audience: views.Community,
		Description: "Information shared with the whole community: TLP:CLEAR and TLP:GREEN."},
	{ID: ConstituentID, Alias: "constituent", Title: "constituent", audience: views.Constituent,
		Description: "Everything the policy lets the calling constituent see, projected for it."},
	{ID: InboxID, Alias: "inbox", Title: "inbox", inbox: true,
		Description: "Write-only: sources post STIX 2.1 envelopes or bundles here for ingest."},
}

// lookupCollection finds a collection by id or, for convenience, by alias.
func lookupCollection(idOrAlias string) (*collection, bool) {
	for i := range collections {
		c := &collections[i]
		if strings.EqualFold(c.ID, idOrAlias) || strings.EqualFold(c.Alias, idOrAlias) {
			return c, true
		}
	}
	return nil, false
}

// access says what a key may do with a collection. Sources only write (the
// inbox) and read what is public anyway; constituents read up to their own
// view; admin keys read the unscoped collections (they see everything in
// the admin API). Nobody may both read and write one collection, so DELETE
// is never allowed and answers 403 or 404 by the TAXII §5.7 table.
func (c *collection) access(sc store.Scope) (read, write bool) {
	if c.inbox {
		return false, sc.Role == store.RoleSource && sc.Name != ""
	}
	switch c.audience {
	case views.Public:
		return true, false
	case views.Community:
		return sc.Role == store.RoleAdmin || sc.Role == store.RoleConstituent, false
	case views.Constituent:
		return sc.Role == store.RoleConstituent && sc.Name != "", false
	}
	return false, false
}

// viewer is who reads the collection, for gateway/views.
func (c *collection) viewer(sc store.Scope) views.Viewer {
	v := views.Viewer{Audience: c.audience}
	if c.audience == views.Constituent {
		v.Constituent = sc.Name
	}
	return v
}

// collectionResource is the TAXII collection resource (§5.2.1).
type collectionResource struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

func (c *collection) resource(sc store.Scope) collectionResource {
	r, w := c.access(sc)
	return collectionResource{ID: c.ID, Title: c.Title, Description: c.Description, Alias: c.Alias,
		CanRead: r, CanWrite: w, MediaTypes: []string{MediaSTIX}}
}
