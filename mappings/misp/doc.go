// Package misp translates between the MISP core format (misp-rfc, as MISP
// 2.5 and PyMISP write it) and Schakel's canonical event. It does no I/O.
//
// # Decode (MISP → canonical)
//
// Decode accepts {"Event":{…}}, {"response":[{"Event":{…}},…]}, a bare
// event object and a JSON array of any of these. Numbers may be JSON
// numbers or strings, booleans true/false, 1/0 or "1"/"0". The results of
// /objects/restSearch ({"response":[{"Object":{…}},…]}) and
// /attributes/restSearch ({"response":{"Attribute":[…]}}) become one event
// per event they name (the Event summary's uuid and info, else event_id;
// titled "MISP objects of event 41"); what names none becomes one event.
//
//	uuid                       → id and source.ref (source.format "misp")
//	info                       → title
//	Orgc.name                  → source.org
//	timestamp                  → modified
//	date, publish_timestamp    → created: the earliest that is not after
//	                             modified (else modified)
//	threat_level_id            → priority: 1 high, 2 normal, 3 low, 4 unset
//	EventReport (not deleted)  → description
//	analysis, published        → not kept: they are the upstream analyst's
//	                             workflow; Encode writes analysis 2 (completed)
//
// Priority critical comes only from explicit tags: schakel:priority="critical"
// (which Encode writes for critical events) or the MISP taxonomy tag
// priority-level:emergency (which is also kept as a label).
//
// Kind: a schakel:kind="…" tag (which Encode writes for kinds other than
// intel) wins. Otherwise an event is an advisory when it names at least one
// vulnerability and all its indicators are of type other (links, text,
// comments); an event with any observable (address, domain, hash, file
// name, …) is intel.
//
// Attributes and object attributes become indicators (deleted ones, and
// all attributes of deleted objects, are skipped):
//
//	ip-src, ip-dst              → ipv4 / ipv6 / cidr by value
//	ip-src|port, ip-dst|port    → ip with port
//	hostname|port               → hostname with port
//	domain, hostname            → domain, hostname
//	domain|ip                   → a domain and an ip indicator
//	url; uri                    → url; uri only when absolute, else other
//	email, email-src, email-dst → email
//	md5, sha1, sha256, sha512   → the same
//	filename|md5 … |sha512      → the hash (attributes["filename"]) and a filename
//	filename                    → filename
//	AS                          → asn
//	ja3-fingerprint-md5         → ja3
//	mutex                       → mutex
//	vulnerability               → event vulnerabilities (not an indicator); a
//	                              value that is not a CVE id stays an other
//	everything else             → other
//
// to_ids → detect, comment → comment, first_seen → observed. Attachment and
// malware-sample data (the base64 file) is not kept. Every indicator keeps
// its MISP identity in attributes: misp_type, misp_category, misp_uuid and,
// for object attributes, misp_object, misp_object_uuid and
// misp_object_relation; non-TLP attribute tags go in attributes["tags"]
// (JoinTags). Schakel keeps one indicator per type, value and port: when an
// event repeats a value (a hash in two file objects), the repeats are folded
// into the first indicator's attributes["misp_duplicates"] so Encode can
// give MISP all of them back (and attributes["misp_to_ids"] = "false" keeps
// the first one's own to_ids when only a repeat had it on).
//
// Limits: at most 100,000 attributes and 100,000 indicators per event and
// 1,000,000 attributes and 10,000 events per document are mapped; the rest
// is reported in one FieldError each. At most 1,000 FieldErrors are listed.
//
// # TLP
//
// TLP is the strictest of the tlp:* tags (case-insensitive, on the event
// and on any attribute) and a floor set by distribution (of the event, and
// of any attribute or object that does not inherit):
//
//	distribution 0 your organisation   → at least AMBER+STRICT
//	distribution 1 this community      → at least AMBER
//	distribution 2 connected communities → at least GREEN
//	distribution 3 all communities     → at least CLEAR
//	distribution 4 sharing group       → at least AMBER
//	distribution 5 inherit (attributes, objects) → no floor
//	an unknown distribution            → read as 0 (fails closed)
//
// A tlp tag stricter than the floor wins; a looser one is raised to the
// floor. tlp:white is read as CLEAR and kept as the label "tlp:white";
// tlp:amber+strict is AMBER+STRICT; tlp:ex:chr and other tlp: values that
// are not labels of TLP stay ordinary tags. With no tlp tag and no
// distribution, TLP is left empty for the pipeline's source default. Local
// tags (local: true) count for TLP but are otherwise dropped. Other event
// tags become labels (galaxy clusters by their tag names).
//
// # Encode (canonical → MISP)
//
// Encode writes one event for one recipient's view: event uuid = the id
// when it is an RFC 4122 UUID (version 1–5), else UUIDv5 of the id;
// attribute uuid = misp_uuid when present, valid and not yet used in the
// event, else UUIDv5(event uuid, type|value|port). Exactly one lower-case
// tlp:* tag with local false, then the labels (those in the tlp: namespace
// left out) and Schakel's priority and kind tags. Distribution: CLEAR 3,
// GREEN 2, AMBER and AMBER+STRICT 1; RED is refused (ErrRed). Numbers and
// timestamps are JSON strings. An indicator keeps its original MISP type
// (and category, uuid and object) whenever Decode could have produced it
// from that type; otherwise the canonical type decides: ipv4/ipv6 → ip-dst
// (ip-dst|port with a port), cidr → ip-dst, domain, hostname (hostname|port
// with a port), url, email → email-dst, hashes, asn → AS, cve →
// vulnerability, filename, ja3 → ja3-fingerprint-md5, mutex, other → text.
// Categories default per MISP's describeTypes (defaults.go). Vulnerabilities
// become vulnerability attributes (CVSS and products in the comment); the
// description becomes an event report named "Description".
//
// # Pass-through (extensions.misp)
//
// What the canonical event cannot say travels in extensions.misp (layout:
// extMISP in passthrough.go): the objects with their template fields,
// members by attribute uuid and ObjectReferences; per attribute uuid its
// timestamp, comment, category, first_seen/last_seen, disable_correlation
// and attachment or malware-sample data (up to DecodeOptions.MaxDataBytes,
// default 10 MiB; larger data is dropped with a field error naming the
// attribute); Galaxy blocks verbatim; the originator's Orgc; analysis,
// threat_level_id, date and extends_uuid. Encode writes them back: the
// originator stays Orgc while Schakel is Org; an object's distribution is
// kept only when it is no wider than the event is served, else 5; the
// source's threat level only while it still says what the priority says.
// Encode first prunes the pass-through to the attributes the (projected)
// event still holds (Prune), so no ObjectReference dangles.
package misp
