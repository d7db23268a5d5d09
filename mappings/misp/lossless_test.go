package misp

import (
	"encoding/json"
	"fmt"
	"os"
	pathpkg "path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// flatMISP flattens one MISP event (generic JSON) to field paths keyed by
// uuid, so two events compare field by field whatever their order:
// event/<k>, event/Orgc/<k>, event/Tag/<name>, event/Galaxy,
// attr/<uuid>/<k>, attr/<uuid>/object, attr/<uuid>/Tag/<name>,
// object/<uuid>/<k>, object/<uuid>/attributes,
// object/<uuid>/ref/<uuid>/<k>, report/<uuid>/<k>. Empty values are left
// out: "" and absent mean the same to MISP.
func flatMISP(ev map[string]any) map[string]string {
	out := map[string]string{}
	set := func(k string, v any) {
		if s := flatValue(k, v); s != "" {
			out[k] = s
		}
	}
	tags := func(prefix string, m map[string]any) {
		for _, key := range []string{"Tag", "EventTag", "AttributeTag"} {
			l, _ := m[key].([]any)
			for _, el := range l {
				t, _ := el.(map[string]any)
				if inner, ok := t["Tag"].(map[string]any); ok {
					t = inner
				}
				name, _ := t["name"].(string)
				if name == "" {
					continue
				}
				v := "1"
				if flatValue("local", t["local"]) == "true" {
					v = "local"
				}
				out[prefix+"/Tag/"+name] = v
			}
		}
	}
	attr := func(a map[string]any, object string) {
		u := strings.ToLower(fmt.Sprint(a["uuid"]))
		for k, v := range a {
			switch k {
			case "Tag", "AttributeTag":
			case "ShadowAttribute", "Sighting", "Galaxy":
				set("attr/"+u+"/"+k, v)
			default:
				set("attr/"+u+"/"+k, v)
			}
		}
		if object != "" {
			out["attr/"+u+"/object"] = object
		}
		tags("attr/"+u, a)
	}
	for k, v := range ev {
		switch k {
		case "Attribute":
			l, _ := v.([]any)
			for _, el := range l {
				if a, ok := el.(map[string]any); ok {
					attr(a, "")
				}
			}
		case "Object":
			l, _ := v.([]any)
			for _, el := range l {
				o, ok := el.(map[string]any)
				if !ok {
					continue
				}
				ou := strings.ToLower(fmt.Sprint(o["uuid"]))
				var members []string
				for ok, ov := range o {
					switch ok {
					case "Attribute":
						al, _ := ov.([]any)
						for _, ael := range al {
							if a, ok := ael.(map[string]any); ok {
								attr(a, ou)
								members = append(members, strings.ToLower(fmt.Sprint(a["uuid"])))
							}
						}
					case "ObjectReference":
						rl, _ := ov.([]any)
						for _, rel := range rl {
							r, _ := rel.(map[string]any)
							ru := strings.ToLower(fmt.Sprint(r["uuid"]))
							for rk, rv := range r {
								set("object/"+ou+"/ref/"+ru+"/"+rk, rv)
							}
						}
					default:
						set("object/"+ou+"/"+ok, ov)
					}
				}
				out["object/"+ou+"/attributes"] = strings.Join(members, ",")
			}
		case "Tag", "EventTag":
		case "Orgc", "Org":
			if m, ok := v.(map[string]any); ok {
				for ok, ov := range m {
					set("event/"+k+"/"+ok, ov)
				}
			} else {
				set("event/"+k, v)
			}
		case "EventReport":
			l, _ := v.([]any)
			for _, el := range l {
				r, _ := el.(map[string]any)
				ru := strings.ToLower(fmt.Sprint(r["uuid"]))
				for rk, rv := range r {
					set("report/"+ru+"/"+rk, rv)
				}
			}
		default:
			set("event/"+k, v)
		}
	}
	tags("event", ev)
	return out
}

var boolFields = map[string]bool{"to_ids": true, "deleted": true, "disable_correlation": true, "published": true,
	"local": true, "exportable": true, "locked": true, "proposal_email_lock": true, "hide_tag": true}

func flatValue(k string, v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x) // maps marshal with sorted keys
		s = string(b)
		if s == "[]" || s == "{}" {
			return ""
		}
	}
	if boolFields[pathpkg.Base(k)] {
		switch strings.ToLower(s) {
		case "1", "true":
			return "true"
		case "0", "false", "":
			return "" // false is MISP's default
		}
	}
	return s
}

// genericKey replaces uuids in a flat key by *, for the allow-list.
func genericKey(k string) string {
	parts := strings.Split(k, "/")
	for i, p := range parts {
		if uuidShaped(p) {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, "/")
}

// allowed is one documented difference between a MISP event and what
// Schakel gives back after decode → store → encode.
type allowed struct {
	pattern string                    // path.Match over genericKey
	when    func(in, out string) bool // nil: any values
	reason  string
}

func missing(_, out string) bool { return out == "" }

// losslessAllow lists every difference TestLosslessFixtures accepts.
var losslessAllow = []allowed{
	{"event/id", nil, "numeric ids are the sending server's; Schakel's own server sets its own"},
	{"*/*/id", nil, "numeric ids are the sending server's"},
	{"object/*/ref/*/id", nil, "numeric ids are the sending server's"},
	{"event/orgc_id", missing, "server-local numeric id; Orgc carries the name and uuid"},
	{"event/org_id", missing, "server-local numeric id"},
	{"*/*/event_id", missing, "server-local numeric id"},
	{"*/*/object_id", missing, "server-local numeric id"},
	{"object/*/ref/*/object_id", missing, "server-local numeric id"},
	{"object/*/ref/*/referenced_id", missing, "server-local numeric id; referenced_uuid carries the target"},
	{"object/*/ref/*/event_id", missing, "server-local numeric id"},
	{"object/*/ref/*/referenced_type", missing, "MISP derives it from referenced_uuid on save"},
	{"object/*/ref/*/source_uuid", missing, "MISP's name for object_uuid in some exports"},
	{"object/*/ref/*/object_uuid", func(in, _ string) bool { return in == "" }, "written for PyMISP; the source left it implicit"},
	{"object/*/ref/*/deleted", missing, "deleted references are not kept"},
	{"event/Org/*", nil, "Org is the owner on the serving instance: Schakel when it serves (Orgc stays the originator)"},
	{"event/Orgc/id", missing, "server-local numeric id"},
	{"event/Orgc/local", missing, "whether the org is local to the sending server"},
	{"event/event_creator_email", missing, "the sending server's user; not shared by MISP sync either"},
	{"event/published", nil, "Schakel publishes what it serves (EncodeOptions.Published)"},
	{"event/publish_timestamp", nil, "set when Schakel publishes"},
	{"event/distribution", nil, "derived from the event's TLP (ARCHITECTURE §6)"},
	{"event/sharing_group_id", nil, "sharing groups are the sending server's"},
	{"event/SharingGroup", missing, "sharing groups are the sending server's"},
	{"event/analysis", func(in, _ string) bool { return in == "" }, "the source did not say; Schakel writes 2 (completed): what it relays is published"},
	{"event/proposal_email_lock", missing, "sending server's UI state"},
	{"event/locked", missing, "sending server's sync state"},
	{"event/attribute_count", nil, "counts what Schakel writes (vulnerabilities and composites folded)"},
	{"event/disable_correlation", missing, "event-level correlation is the receiving server's choice"},
	{"event/ShadowAttribute", missing, "proposals are not intelligence the source published"},
	{"event/RelatedEvent", missing, "computed by each MISP from its own correlations"},
	{"event/Tag/[tT][lL][pP]:*", nil, "exactly one tlp tag, the resolved TLP (strictest of tags and distribution)"},
	{"event/Tag/schakel:*", func(in, _ string) bool { return in == "" }, "Schakel's kind/priority/sector tags, so they survive a trip through MISP"},
	{"*/*/Tag/*", func(in, _ string) bool { return in == "local" }, "local tags never leave the instance that set them"},
	{"attr/*/Tag/tlp:*", missing, "the event's one tlp tag rules"},
	{"attr/*/distribution", nil, "Schakel writes 5 (inherit): the event's TLP rules"},
	{"attr/*/sharing_group_id", nil, "sharing groups are the sending server's"},
	{"attr/*/ShadowAttribute", missing, "proposals are not intelligence the source published"},
	{"attr/*/value1", missing, "MISP's internal split of value"},
	{"attr/*/value2", missing, "MISP's internal split of value"},
	{"object/*/distribution", nil, "never wider than the event is served; sharing groups are the sending server's"},
	{"object/*/sharing_group_id", nil, "sharing groups are the sending server's"},
}

func allowedDiff(k, in, out string) (string, bool) {
	g := genericKey(k)
	for _, a := range losslessAllow {
		if ok, _ := pathpkg.Match(a.pattern, g); ok && (a.when == nil || a.when(in, out)) {
			return a.reason, true
		}
	}
	return "", false
}

// losslessInputs are every MISP event fixture of the shared set (see
// testdata/SOURCES.txt).
func losslessInputs(t *testing.T) []string {
	t.Helper()
	var in []string
	for _, g := range []string{"pymisp_malware_sample", "pymisp_proposals", "pymisp_events_index", "circl_feed_xorist", "mispstix_restsearch_events"} {
		in = append(in, filepath.Join("testdata", "golden", g+".json"))
	}
	return append(in, filepath.Join("testdata", "roundtrip", "circl_feed_samsam_full.json"))
}

// genericEvents returns the events of a MISP document as generic maps.
func genericEvents(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var top any
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, el := range x {
				walk(el)
			}
		case map[string]any:
			if e, ok := x["Event"]; ok {
				walk(e)
			} else if r, ok := x["response"]; ok {
				walk(r)
			} else {
				out = append(out, x)
			}
		}
	}
	walk(top)
	return out
}

// TestLosslessFixtures: every MISP fixture event, decoded, stored as the
// pipeline stores it and encoded again, differs from the original in no
// field except those losslessAllow documents.
func TestLosslessFixtures(t *testing.T) {
	ran := 0
	for _, in := range losslessInputs(t) {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		evs, _, err := Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		originals := genericEvents(t, data)
		if len(originals) != len(evs) {
			t.Fatalf("%s: test read %d events, Decode %d", in, len(originals), len(evs))
		}
		for i, ev := range evs {
			t.Run(filepath.Base(in)+"/"+fmt.Sprint(originals[i]["uuid"]), func(t *testing.T) {
				ran++
				store(t, ev)
				b, err := Encode(ev, testOrg)
				if err != nil {
					t.Fatal(err)
				}
				var env struct{ Event map[string]any }
				if err := json.Unmarshal(b, &env); err != nil {
					t.Fatal(err)
				}
				want, got := flatMISP(originals[i]), flatMISP(env.Event)
				for _, d := range losslessDiff(want, got) {
					t.Error(d)
				}
			})
		}
	}
	if ran < 6 {
		t.Errorf("only %d fixture events compared", ran)
	}
}

// losslessDiff lists every difference not allowed, sorted.
func losslessDiff(want, got map[string]string) []string {
	var diffs []string
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		in, out := want[k], got[k]
		if in == out {
			continue
		}
		if strings.HasSuffix(k, "/value") && strings.HasPrefix(k, "attr/") {
			typ := strings.TrimSuffix(k, "/value") + "/type"
			if sameValue(want[typ], in, out) {
				continue // MISP stores the same value (case, refang, IPv6 form)
			}
		}
		if _, ok := allowedDiff(k, in, out); ok {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s: sent %q, got back %q", k, shorten(in), shorten(out)))
	}
	slices.Sort(diffs)
	return diffs
}
