package misp

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/normalize"
)

func addSeeds(f *testing.F) {
	f.Helper()
	for _, s := range []string{
		`{"Event":{"uuid":"57c4445b-c548-4654-af0b-4be3950d210f","info":"x","timestamp":"1700000000","Tag":[{"name":"tlp:green"}],"Attribute":[{"type":"domain|ip","value":"a.example|192.0.2.1","to_ids":"1"}]}}`,
		`[{"info":"x","distribution":0,"Attribute":[{"type":"ip-src|port","value":"[2001:db8::1]:80"},{"type":"filename|md5","value":"a|0749bae92ca336a02c83d126e04ec628"}]}]`,
		`{"response":[{"Event":{"info":"x","Object":[{"uuid":"5a4cb2b8-7958-4323-852c-4d2a950d210f","name":"file","Attribute":[{"type":"md5","value":"0749BAE92CA336A02C83D126E04EC628","object_relation":"md5"},{"type":"md5","value":"0749bae92ca336a02c83d126e04ec628"}]}]}}]}`,
		`{"info":"x","Attribute":[{"type":"vulnerability","value":"CVE-2026-1234"},{"type":"link","value":"https://x.example/"}]}`,
		objectEvent,
		// A reference to a deleted attribute, one to an object sharing an
		// attribute's uuid, a galaxy with cluster tags, an object without uuid.
		`{"Event":{"info":"g","Galaxy":[{"name":"x","GalaxyCluster":[{"tag_name":"misp-galaxy:x=\"y\"","Tag":[{"name":"a"}]}]},7],` +
			`"Attribute":[{"uuid":"a0000000-0000-4000-8000-000000000001","type":"md5","value":"0749bae92ca336a02c83d126e04ec628","deleted":true}],` +
			`"Object":[{"uuid":"b0000000-0000-4000-8000-000000000001","name":"file","Attribute":[{"uuid":"b0000000-0000-4000-8000-000000000001","type":"domain","value":"a.example"}],` +
			`"ObjectReference":[{"referenced_uuid":"a0000000-0000-4000-8000-000000000001"},{"referenced_uuid":"b0000000-0000-4000-8000-000000000001"},7,{"referenced_uuid":[1]}]},` +
			`{"name":"x","Attribute":[{"type":"attachment","value":"f","data":"QQ=="}]}]}}`,
	} {
		f.Add([]byte(s))
	}
	all, _ := os.ReadDir("testdata/golden")
	for _, e := range all {
		if strings.HasSuffix(e.Name(), ".golden.json") {
			continue
		}
		if b, err := os.ReadFile("testdata/golden/" + e.Name()); err == nil {
			f.Add(b)
		}
	}
}

// FuzzDecode: Decode never panics, never returns events with an error,
// never returns an event the pipeline would reject whole, and everything it
// returns can be served back over MISP (unless RED) and read again.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, errs, err := Decode(data)
		if err != nil && len(evs) > 0 {
			t.Fatalf("error %v with %d events", err, len(evs))
		}
		if len(errs) > maxFieldErrors+1 {
			t.Fatalf("%d field errors", len(errs))
		}
		for _, fe := range errs {
			if fe.Field != "" && !strings.HasPrefix(fe.Field, "/") {
				t.Fatalf("field %q is not a JSON pointer", fe.Field)
			}
		}
		for _, ev := range evs {
			if len(ev.Indicators) > maxAttributes {
				t.Fatalf("%d indicators", len(ev.Indicators))
			}
			if ev.Source.Format != Format || !ev.Kind.Valid() || (ev.TLP != "" && !ev.TLP.Valid()) {
				t.Fatalf("event %+v", ev)
			}
			for _, ind := range ev.Indicators {
				if !ind.Type.Valid() {
					t.Fatalf("indicator type %q", ind.Type)
				}
			}
			store(t, ev)
			out, err := Encode(ev, testOrg)
			if ev.TLP == gateway.TLPRed {
				if !errors.Is(err, ErrRed) {
					t.Fatalf("RED encoded: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("stored event cannot be encoded: %v", err)
			}
			checkExtension(t, ev, out)
			again, _, err := Decode(out)
			if err != nil || len(again) != 1 {
				t.Fatalf("own output unreadable: %v (%d events)\n%s", err, len(again), out)
			}
		}
	})
}

// checkExtension: extensions.misp is a JSON object, and no reference in the
// encoded event points to an attribute or object of the source event that
// the output does not hold.
func checkExtension(t *testing.T, ev *gateway.Event, out []byte) {
	t.Helper()
	if ev.Extensions == nil || ev.Extensions.MISP == nil {
		return
	}
	var x extMISP
	if err := json.Unmarshal(ev.Extensions.MISP, &x); err != nil {
		t.Fatalf("extensions.misp is not the documented object: %v\n%s", err, ev.Extensions.MISP)
	}
	local := map[string]bool{}
	for u := range x.Attributes {
		local[u] = true
	}
	for _, o := range x.Objects {
		local[o.UUID] = true
	}
	var env struct{ Event Event }
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range env.Event.Attribute {
		have[a.UUID] = true
	}
	for _, o := range env.Event.Object {
		have[o.UUID] = true
		for _, a := range o.Attribute {
			have[a.UUID] = true
		}
	}
	for _, o := range env.Event.Object {
		for _, r := range o.ObjectReference {
			if local[r.ReferencedUUID] && !have[r.ReferencedUUID] {
				t.Fatalf("object %s references %s, which the output does not hold\n%s", o.UUID, r.ReferencedUUID, out)
			}
		}
	}
}

// FuzzRoundTrip: for any event Decode reads, MISP → canonical → MISP →
// canonical gives the same canonical event: TLP, title, kind, priority,
// labels, the indicators (type, value, port, detect) and vulnerabilities,
// and every valid attribute uuid.
func FuzzRoundTrip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, _, err := Decode(data)
		if err != nil {
			return
		}
		for _, ev := range evs {
			store(t, ev)
			if ev.TLP == gateway.TLPRed {
				continue
			}
			out, err := Encode(ev, testOrg)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := Decode(out)
			if err != nil || len(again) != 1 {
				t.Fatalf("own output unreadable: %v", err)
			}
			ev2 := again[0]
			store(t, ev2)
			compareCanonical(t, ev, ev2)
		}
	})
}

func compareCanonical(t *testing.T, a, b *gateway.Event) {
	t.Helper()
	if a.TLP != b.TLP || a.Title != b.Title || a.Kind != b.Kind || a.Priority.Rank() != b.Priority.Rank() ||
		a.Description != b.Description || !a.Modified.Equal(b.Modified) {
		t.Fatalf("event changed:\n%+v\n%+v", a, b)
	}
	if eventUUID(a.ID) != b.ID {
		t.Fatalf("id %s became %s", a.ID, b.ID)
	}
	var la []string
	for _, l := range a.Labels {
		if !strings.HasPrefix(strings.ToLower(l), tlpNamespace) {
			la = append(la, l)
		}
	}
	lb := slices.DeleteFunc(slices.Clone(b.Labels), func(l string) bool { return strings.HasPrefix(strings.ToLower(l), tlpNamespace) })
	if !slices.Equal(la, lb) {
		t.Fatalf("labels %q became %q", la, lb)
	}
	ka, ua := indicatorKeys(a)
	kb, ub := indicatorKeys(b)
	if !slices.Equal(ka, kb) {
		t.Fatalf("indicators changed:\n%q\n%q", ka, kb)
	}
	for _, u := range ua {
		if !slices.Contains(ub, u) {
			t.Fatalf("attribute uuid %s lost", u)
		}
	}
	var ca, cb []string
	for _, v := range a.Vulnerabilities {
		ca = append(ca, v.CVE)
	}
	for _, ind := range a.Indicators {
		if ind.Type == gateway.TypeCVE && ind.Attributes[normalize.AttrOriginalType] == "" {
			ca = append(ca, ind.Value) // written as a vulnerability attribute
		}
	}
	for _, v := range b.Vulnerabilities {
		cb = append(cb, v.CVE)
	}
	slices.Sort(ca)
	ca = slices.Compact(ca)
	slices.Sort(cb)
	if !slices.Equal(ca, cb) {
		t.Fatalf("vulnerabilities %q became %q", ca, cb)
	}
}

// indicatorKeys lists type, value, port and detect of every indicator but
// the cve ones Encode writes as vulnerabilities, and the valid MISP uuids
// the event carries (its own and its duplicates').
func indicatorKeys(ev *gateway.Event) (keys, uuids []string) {
	for _, ind := range ev.Indicators {
		if ind.Type == gateway.TypeCVE && ind.Attributes[normalize.AttrOriginalType] == "" {
			continue
		}
		keys = append(keys, string(ind.Type)+" "+ind.Value+" "+strconv.Itoa(ind.Port)+" "+strconv.FormatBool(ind.Detect))
		if u := ind.Attributes[AttrUUID]; validUUID(u) {
			uuids = append(uuids, u)
		}
		var dups []occurrence
		_ = json.Unmarshal([]byte(ind.Attributes[AttrDuplicates]), &dups)
		for _, d := range dups {
			if validUUID(d.UUID) {
				uuids = append(uuids, d.UUID)
			}
		}
	}
	slices.Sort(keys)
	return keys, uuids
}
