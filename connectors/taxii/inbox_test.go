package taxii

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// mispEnvelope is what MISP's TAXII push sends: misp-stix output wrapped in
// an envelope.
func mispEnvelope(t *testing.T) ([]byte, []string) {
	t.Helper()
	raw, err := os.ReadFile("testdata/misp-stix-test_events_collection_stix21.json")
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(raw, &bundle); err != nil {
		t.Fatal(err)
	}
	var groupings []string
	for _, h := range heads(t, bundle.Objects) {
		if h.Type == "grouping" {
			groupings = append(groupings, strings.TrimPrefix(h.ID, "grouping--"))
		}
	}
	body, _ := json.Marshal(map[string]any{"objects": bundle.Objects})
	return body, groupings
}

func (e *env) post(coll, key string, body []byte, headers ...string) response {
	e.t.Helper()
	h := append([]string{"Content-Type", MediaTAXII}, headers...)
	return e.do("POST", collectionPath(coll)+"objects/", key, body, h...)
}

func checkStatus(t *testing.T, st statusResource, total int) {
	t.Helper()
	if st.ID == "" || st.Status != "complete" || st.TotalCount != total || st.PendingCount != 0 ||
		st.SuccessCount+st.FailureCount != total || len(st.Successes) != st.SuccessCount || len(st.Failures) != st.FailureCount {
		t.Fatalf("status %+v for %d objects", st, total)
	}
	for _, d := range append(slices.Clone(st.Successes), st.Failures...) {
		if d.ID == "" || d.Version == "" {
			t.Errorf("status detail without id or version: %+v", d)
		}
	}
}

func TestInboxTakesMISPPush(t *testing.T) {
	e := newEnv(t)
	body, groupings := mispEnvelope(t)
	var bundle testEnvelope
	json.Unmarshal(body, &bundle)

	r := e.post(InboxID, e.keys["src"], body)
	if r.status != 202 || r.header.Get("Content-Type") != MediaTAXII {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	var st statusResource
	r.json(t, &st)
	checkStatus(t, st, len(bundle.Objects))
	if st.FailureCount != 0 {
		t.Errorf("failures: %+v", st.Failures)
	}

	// The status is kept for the poster (taxii2-client asks without the
	// trailing slash) and admins, and is nobody else's business.
	for who, want := range map[string]int{"src": 200, "admin": 200, "other-src": 404, "a": 404} {
		r := e.get(APIRoot+"status/"+st.ID, e.keys[who])
		if r.status != want {
			t.Errorf("status for %s: %d, want %d", who, r.status, want)
		}
		if want == 200 {
			var got statusResource
			r.json(t, &got)
			if got.ID != st.ID || got.TotalCount != st.TotalCount {
				t.Errorf("stored status %+v", got)
			}
		}
	}
	if ttl := e.r.Client.TTL(t.Context(), e.srv.statusKey(st.ID)).Val(); ttl < 24*3600e9 {
		t.Errorf("status kept only %v", ttl)
	}

	// The events are in: unlabelled, so the source's default TLP:GREEN.
	objs, _ := walk(t, e, CommunityID, e.keys["a"], "&match[type]=report", 100)
	slices.Sort(groupings)
	if got := reportIDs(objs); !slices.Equal(got, groupings) {
		t.Errorf("community reports %v, want the posted groupings %v", got, groupings)
	}
	if objs, _ := walk(t, e, PublicID, e.keys["a"], "", 100); len(objs) != 0 {
		t.Errorf("GREEN events in the public collection: %d objects", len(objs))
	}

	// Posting the same again is no error: every object succeeds.
	r = e.post(InboxID, e.keys["src"], body, "Content-Type", "application/taxii+json")
	var again statusResource
	r.json(t, &again)
	checkStatus(t, again, len(bundle.Objects))
	if again.FailureCount != 0 || again.ID == st.ID {
		t.Errorf("re-post: %+v", again)
	}
	dup := 0
	for _, d := range again.Successes {
		if strings.Contains(d.Message, "already present") {
			dup++
		}
	}
	if dup != len(groupings) {
		t.Errorf("%d objects reported already present, want the %d groupings", dup, len(groupings))
	}
}

func TestInboxReportsWhatFailed(t *testing.T) {
	e := newEnv(t)
	obj := func(typ, id string, extra map[string]any) map[string]any {
		o := map[string]any{"type": typ, "spec_version": "2.1", "id": typ + "--" + id,
			"created": "2026-11-20T09:00:00.000Z", "modified": "2026-11-20T09:00:00.000Z"}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	good := obj("indicator", "aaaaaaaa-0000-4000-8000-000000000001", map[string]any{"pattern": "[ipv4-addr:value = '192.0.2.1']", "pattern_type": "stix", "valid_from": "2026-11-20T09:00:00Z"})
	bad := obj("indicator", "aaaaaaaa-0000-4000-8000-000000000002", map[string]any{"pattern": "[ipv4-addr:value = '300.1.2.3']", "pattern_type": "stix", "valid_from": "2026-11-20T09:00:00Z"})
	report := obj("report", "aaaaaaaa-0000-4000-8000-000000000003", map[string]any{"name": "r", "published": "2026-11-20T09:00:00Z",
		"object_refs": []string{good["id"].(string), bad["id"].(string)}})
	body, _ := json.Marshal(map[string]any{"objects": []any{report, good, bad, map[string]any{"no": "type"}}})
	r := e.post(InboxID, e.keys["src"], body)
	var st statusResource
	r.json(t, &st)
	checkStatus(t, st, 4)
	failed := map[string]string{}
	for _, d := range st.Failures {
		failed[d.ID] = d.Message
	}
	if !strings.Contains(failed[bad["id"].(string)], "rejected") || failed["/objects/3"] == "" || len(failed) != 2 {
		t.Errorf("failures %+v", st.Failures)
	}
}

func TestInboxRefusals(t *testing.T) {
	e := newEnv(t)
	body, _ := mispEnvelope(t)
	big := append([]byte(`{"objects":[],"x_pad":"`), bytes.Repeat([]byte("x"), maxContent)...)
	big = append(big, '"', '}')
	cases := []struct {
		name, coll, key string
		body            []byte
		headers         []string
		want            int
	}{
		{"constituent key", InboxID, "a", body, nil, 403},
		{"admin key", InboxID, "admin", body, nil, 403},
		{"source not configured", InboxID, "unconfigured-src", body, nil, 403},
		{"read-only collection", CommunityID, "src", body, nil, 403},
		{"unknown collection", "nope", "src", body, nil, 404},
		{"anonymous", InboxID, "", body, []string{"Authorization", ""}, 401},
		{"unsupported Content-Type", InboxID, "src", body, []string{"Content-Type", "text/plain"}, 415},
		{"TAXII 2.0 Content-Type", InboxID, "src", body, []string{"Content-Type", "application/vnd.oasis.taxii+json; version=2.0"}, 415},
		{"bad Accept", InboxID, "src", body, []string{"Accept", "text/html"}, 406},
		{"not JSON", InboxID, "src", []byte(`{"objects": [`), nil, 400},
		{"JSON but no envelope", InboxID, "src", []byte(`[1, 2]`), nil, 422},
		{"objects not a list", InboxID, "src", []byte(`{"objects": {"a": 1}}`), nil, 422},
		{"larger than max_content_length", InboxID, "src", big, nil, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tc.coll, e.keys[tc.key], tc.body, tc.headers...)
			if r.status != tc.want || r.header.Get("Content-Type") != MediaTAXII {
				t.Fatalf("status %d (%q), want %d: %s", r.status, r.header.Get("Content-Type"), tc.want, r.body)
			}
			var eb ErrorBody
			r.json(t, &eb)
			if eb.HTTPStatus == "" || eb.Title == "" {
				t.Errorf("error body %s", r.body)
			}
			if strings.Contains(string(r.body), "Go ") || strings.Contains(string(r.body), "json.RawMessage") {
				t.Errorf("error body names Go types: %s", r.body)
			}
		})
	}
	// A bundle (application/stix+json) and an empty envelope are taken too.
	r := e.post(InboxID, e.keys["src"], []byte(`{}`))
	var st statusResource
	r.json(t, &st)
	if r.status != 202 || st.TotalCount != 0 {
		t.Errorf("empty envelope: %d %s", r.status, r.body)
	}
	raw, _ := os.ReadFile("testdata/misp-stix-test_events_collection_stix21.json")
	if r := e.post(InboxID, e.keys["src"], raw, "Content-Type", MediaSTIX); r.status != 202 {
		t.Errorf("bundle: %d %s", r.status, r.body)
	}
}
