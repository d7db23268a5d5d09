// Package misp is Schakel's MISP end: a MISP sync server that a
// constituent's MISP adds as a remote server, a MISP feed, a poller that
// pulls upstream MISPs, and the misp_push channel that pushes to
// constituents' MISPs. The translation itself is mappings/misp.
//
// # Who sees what
//
// The caller's key decides the view, always through gateway/views: a
// constituent key sees what the policy allows that constituent (a
// notification only with the attributes that match its assets); source and
// admin keys, and anonymous feed readers, see TLP:CLEAR only. An event a
// caller may not see answers exactly like one that does not exist. Keys of
// a configured `type: misp` source may push events in (filterEventIdsForPush,
// HEAD, /events/add, /events/edit); the pushed event is decoded and ingested
// like any other, and a version that is not newer than the stored one gets
// MISP's benign 403 "not newer than the local copy". A source speaks only
// for itself: an event another source delivered is never overwritten by a
// push or a pull that carries the same uuid.
//
// # Paths
//
// GET /servers/getVersion (mirrors the caller's MISP version),
// GET /users/view/me, POST /servers/postTest,
// GET /servers/getAvailableSyncFilteringRules, POST /events/index (minimal
// and full form, tag/org/timestamp/published filters, ETag and 304),
// GET|HEAD /events/view/{uuid|id}, GET /shadow_attributes/index → [],
// POST /galaxy_clusters/restSearch → [], POST /events/filterEventIdsForPush,
// POST /events/add, POST /events/edit/{uuid}, POST /events/pushProposals,
// POST /events/restSearch and POST /attributes/restSearch (json), and the
// feed GET /feeds/misp/manifest.json, /hashes.csv and /{uuid}.json. Every
// MISP path accepts CakePHP named parameters (/k:v, /k[]:v) and a ".json"
// suffix. Errors have MISP's shape {"name","message","url"}.
//
// # Large events and streaming
//
// Listings (index, manifest, restSearch) never load event bodies to list:
// what they show of an event is computed once per version (meta) and kept in
// Redis. restSearch and hashes.csv write their JSON or CSV while they read
// events, a few events ahead, so a response of a quarter of a million
// attributes is never held in memory. Events above PartSize attributes are
// served as several MISP events (see PartSize).
package misp
