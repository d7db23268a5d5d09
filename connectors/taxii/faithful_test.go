package taxii

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	stixschema "github.com/schakel/schakel/schemas/stix"
)

// faithfulEnvelope is the OASIS threat-actor example (threat actor,
// malware, attack pattern, identity, relationships) with an indicator
// that indicates the malware, all in one report, as a source posts it.
func faithfulEnvelope(t *testing.T, pattern, modified string) (body []byte, posted map[string]json.RawMessage) {
	t.Helper()
	raw, err := os.ReadFile("testdata/oasis-threat-actor.json")
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(raw, &bundle); err != nil {
		t.Fatal(err)
	}
	objs := bundle.Objects
	var malware string
	var refs []string
	for _, h := range heads(t, objs) {
		refs = append(refs, h.ID)
		if h.Type == "malware" {
			malware = h.ID
		}
	}
	const ind = "indicator--5a2e0f81-6273-4eb5-9f40-b5c6d7e8f9a0"
	add := func(v map[string]any) {
		b, _ := json.Marshal(v)
		objs = append(objs, b)
	}
	add(map[string]any{"type": "indicator", "spec_version": "2.1", "id": ind, "created": "2026-11-20T08:00:00.000Z", "modified": modified,
		"name": "Poison Ivy C2", "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-11-20T08:00:00Z",
		"object_marking_refs": []string{"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"}})
	add(map[string]any{"type": "relationship", "spec_version": "2.1", "id": "relationship--0c0b0a09-0807-4605-8403-020100000001",
		"created": "2026-11-20T08:00:00.000Z", "modified": "2026-11-20T08:00:00.000Z", "relationship_type": "indicates", "source_ref": ind, "target_ref": malware})
	refs = append(refs, ind)
	add(map[string]any{"type": "report", "spec_version": "2.1", "id": "report--0c0b0a09-0807-4605-8403-020100000002",
		"created": "2026-11-20T08:00:00.000Z", "modified": modified, "published": "2026-11-20T08:00:00Z", "name": "Adversary Bravo uses Poison Ivy",
		"object_refs": refs, "object_marking_refs": []string{"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"}})
	posted = map[string]json.RawMessage{}
	for i, h := range heads(t, objs) {
		posted[h.ID] = objs[i]
	}
	body, _ = json.Marshal(map[string]any{"objects": objs})
	return body, posted
}

func canonicalJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v) // map keys sorted
	return string(b)
}

// TestFaithfulRelay: a report with a threat actor, malware, an attack
// pattern and relationships, posted to the inbox, is served back on the
// community collection with every object unchanged and valid, the
// indicator with its own id, times and pattern text; updating the
// indicator yields a new version, and no version ever changes.
func TestFaithfulRelay(t *testing.T) {
	e := newEnv(t)
	const pattern1 = "[ipv4-addr:value = '198.51.100.7']"
	body, posted := faithfulEnvelope(t, pattern1, "2026-11-20T08:00:00.000Z")
	r := e.post(InboxID, e.keys["src"], body)
	var st statusResource
	r.json(t, &st)
	checkStatus(t, st, len(posted))
	if st.FailureCount != 0 {
		t.Fatalf("failures: %+v", st.Failures)
	}

	served := map[string]string{} // id|version → content, over the whole test
	serve := func() map[string]json.RawMessage {
		t.Helper()
		r := e.get(collectionPath(CommunityID)+"objects/?limit=1000", e.keys["a"])
		var env testEnvelope
		r.json(t, &env)
		out := map[string]json.RawMessage{}
		for i, h := range heads(t, env.Objects) {
			if _, dup := out[h.ID]; dup {
				t.Errorf("%s twice on one page", h.ID)
			}
			out[h.ID] = env.Objects[i]
			if errs := stixschema.ValidateObject(env.Objects[i]); errs != nil {
				t.Errorf("%s does not validate: %v", h.ID, errs)
			}
			var v struct{ Modified, Created string }
			_ = json.Unmarshal(env.Objects[i], &v)
			key := h.ID + "|" + v.Modified + v.Created
			c := canonicalJSON(t, env.Objects[i])
			if prev, ok := served[key]; ok && prev != c {
				t.Errorf("%s changed without a new version:\n%s\n%s", key, prev, c)
			}
			served[key] = c
		}
		// Nothing dangles.
		for id, raw := range out {
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			for k, v := range m {
				var ids []any
				switch {
				case strings.HasSuffix(k, "_ref"):
					ids = []any{v}
				case strings.HasSuffix(k, "_refs"):
					ids, _ = v.([]any)
				}
				for _, x := range ids {
					// The OASIS TC identity the TLP 2.0 extension
					// definition names is not shipped by OASIS either.
					if s, _ := x.(string); out[s] == nil && s != "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01" {
						t.Errorf("%s: %s %v does not resolve", id, k, s)
					}
				}
			}
		}
		return out
	}
	got := serve()
	for id, raw := range posted {
		typ, _, _ := strings.Cut(id, "--")
		switch typ {
		case "report":
			if got[id] == nil {
				t.Errorf("report %s not served", id)
			}
		case "indicator":
			var a, b struct{ Created, Modified, Pattern string }
			_ = json.Unmarshal(raw, &a)
			_ = json.Unmarshal(got[id], &b)
			if a != b {
				t.Errorf("indicator served as %+v, posted %+v", b, a)
			}
		default:
			if got[id] == nil || canonicalJSON(t, got[id]) != canonicalJSON(t, raw) {
				t.Errorf("%s served as %s, posted %s", id, got[id], raw)
			}
		}
	}

	// The source updates the indicator: a new version, the old one is
	// never served changed (serve checks that across both rounds).
	const pattern2 = "[ipv4-addr:value = '198.51.100.8']"
	body, _ = faithfulEnvelope(t, pattern2, "2026-11-21T08:00:00.000Z")
	if r := e.post(InboxID, e.keys["src"], body); r.status != 202 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	got = serve()
	var ind struct{ Modified, Pattern string }
	_ = json.Unmarshal(got["indicator--5a2e0f81-6273-4eb5-9f40-b5c6d7e8f9a0"], &ind)
	if ind.Modified != "2026-11-21T08:00:00.000Z" || ind.Pattern != pattern2 {
		t.Errorf("updated indicator served as %+v", ind)
	}
	r = e.get(collectionPath(CommunityID)+"objects/indicator--5a2e0f81-6273-4eb5-9f40-b5c6d7e8f9a0/versions/", e.keys["a"])
	var vs struct{ Versions []string }
	r.json(t, &vs)
	seen := map[string]bool{}
	for _, v := range vs.Versions {
		if seen[v] {
			t.Errorf("version %s listed twice: %v", v, vs.Versions)
		}
		seen[v] = true
	}
	if !seen["2026-11-21T08:00:00.000Z"] {
		t.Errorf("versions %v lack the update", vs.Versions)
	}
}

// TestSharedObjectsOncePerResult: identities, definitions and pass-through
// objects that several events carry appear once per page, once per
// match[id] result and once in the manifest.
func TestSharedObjectsOncePerResult(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		body, _ := faithfulEnvelope(t, fmt.Sprintf("[ipv4-addr:value = '198.51.100.%d']", i+1), "2026-11-20T08:00:00.000Z")
		// Three reports that share everything but the report and indicator.
		body = bytes.ReplaceAll(body, []byte("020100000002"), []byte(fmt.Sprintf("02010000010%d", i)))
		body = bytes.ReplaceAll(body, []byte("b5c6d7e8f9a0"), []byte(fmt.Sprintf("b5c6d7e8f9a%d", i)))
		body = bytes.ReplaceAll(body, []byte("020100000001"), []byte(fmt.Sprintf("02010000020%d", i)))
		if r := e.post(InboxID, e.keys["src"], body); r.status != 202 {
			t.Fatalf("post: %d %s", r.status, r.body)
		}
	}
	once := func(what string, ids []string) {
		t.Helper()
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("%s: %s more than once", what, id)
			}
			seen[id] = true
		}
		if !seen["identity--1621d4d4-b67d-41e3-9670-f01faf20d111"] || !seen["malware--d1c612bc-146f-4b65-b7b0-9a54a14150a4"] {
			t.Errorf("%s: shared objects missing: %v", what, ids)
		}
	}
	r := e.get(collectionPath(CommunityID)+"objects/?limit=1000", e.keys["a"])
	var env testEnvelope
	r.json(t, &env)
	var ids []string
	reports := 0
	for _, h := range heads(t, env.Objects) {
		ids = append(ids, h.ID)
		if h.Type == "report" {
			reports++
		}
	}
	if reports != 3 {
		t.Fatalf("%d reports, want 3", reports)
	}
	once("objects", ids)
	m := e.get(collectionPath(CommunityID)+"manifest/?limit=1000", e.keys["a"])
	var man struct{ Objects []manifestRecord }
	m.json(t, &man)
	ids = ids[:0]
	for _, rec := range man.Objects {
		ids = append(ids, rec.ID)
	}
	once("manifest", ids)
	r = e.get(collectionPath(CommunityID)+"objects/?match[id]=identity--1621d4d4-b67d-41e3-9670-f01faf20d111,malware--d1c612bc-146f-4b65-b7b0-9a54a14150a4", e.keys["a"])
	r.json(t, &env)
	ids = ids[:0]
	for _, h := range heads(t, env.Objects) {
		ids = append(ids, h.ID)
	}
	once("match[id]", ids)
	if len(ids) != 2 {
		t.Errorf("match[id]: %v", ids)
	}
	r = e.get(collectionPath(CommunityID)+"objects/malware--d1c612bc-146f-4b65-b7b0-9a54a14150a4/versions/", e.keys["a"])
	var vs struct{ Versions []string }
	r.json(t, &vs)
	if len(vs.Versions) != 1 {
		t.Errorf("versions %v, want the one version once", vs.Versions)
	}
}

// TestInboxCountsOnlyRelayedObjects: success_count counts what became part
// of an event (mapped or passed through); the rest fail with the reason.
func TestInboxCountsOnlyRelayedObjects(t *testing.T) {
	e := newEnv(t)
	objs := []string{
		`{"type":"malware","spec_version":"2.1","id":"malware--0c0b0a09-0807-4605-8403-020100000011","created":"2026-11-20T08:00:00.000Z","modified":"2026-11-20T08:00:00.000Z","name":"m","is_family":true}`,
		`{"type":"malware","spec_version":"2.1","id":"malware--0c0b0a09-0807-4605-8403-020100000011","created":"2026-11-20T08:00:00.000Z","modified":"2026-11-19T08:00:00.000Z","name":"older","is_family":true}`,
		`{"type":"tool","spec_version":"2.1","id":"tool--0c0b0a09-0807-4605-8403-020100000012","created":"2026-11-20T08:00:00.000Z","modified":"2026-11-20T08:00:00.000Z","name":"t","revoked":true}`,
		`{"type":"campaign","spec_version":"2.1","id":"campaign--0c0b0a09-0807-4605-8403-020100000013","created":"2026-11-20T08:00:00.000Z","modified":"2026-11-20T08:00:00.000Z"}`,
	}
	body := []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
	r := e.post(InboxID, e.keys["src"], body)
	var st statusResource
	r.json(t, &st)
	checkStatus(t, st, 4)
	why := map[string]string{}
	for _, d := range st.Failures {
		why[d.ID+"|"+d.Version] = d.Message
	}
	if st.SuccessCount != 1 || st.Successes[0].ID != "malware--0c0b0a09-0807-4605-8403-020100000011" || st.Successes[0].Version != "2026-11-20T08:00:00.000Z" {
		t.Errorf("successes %+v", st.Successes)
	}
	for key, want := range map[string]string{
		"malware--0c0b0a09-0807-4605-8403-020100000011|2026-11-19T08:00:00.000Z":  "newer version",
		"tool--0c0b0a09-0807-4605-8403-020100000012|2026-11-20T08:00:00.000Z":     "revoked",
		"campaign--0c0b0a09-0807-4605-8403-020100000013|2026-11-20T08:00:00.000Z": "does not validate",
	} {
		if !strings.Contains(why[key], want) {
			t.Errorf("%s: failure %q, want it to say %q (all: %v)", key, why[key], want, why)
		}
	}
}

// TestPendingStatus: while an envelope is ingested its status says
// pending, every object pending, counts consistent (taxii2-client checks).
func TestPendingStatus(t *testing.T) {
	b := newBook([]posted{{ID: "malware--1", Modified: "2026-11-20T08:00:00.000Z"}, {}}, "2026-11-20T09:00:00.000000Z")
	st := b.pending("s1", "2026-11-20T09:00:00.000000Z")
	if st.Status != "pending" || st.TotalCount != 2 || st.PendingCount != 2 || len(st.Pendings) != 2 ||
		st.SuccessCount+st.FailureCount != 0 || st.Pendings[1].ID != "/objects/1" || st.Pendings[1].Version == "" {
		t.Errorf("pending status %+v", st)
	}
}
