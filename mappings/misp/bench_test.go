package misp

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/schakel/schakel/gateway"
)

// bigMISP is a MISP event with n attributes of the common types, a tenth
// of them in file objects, as PyMISP would push it.
func bigMISP(n int) []byte {
	type attr struct {
		UUID           string           `json:"uuid"`
		Type           string           `json:"type"`
		Category       string           `json:"category"`
		Value          string           `json:"value"`
		ToIDs          bool             `json:"to_ids"`
		Timestamp      string           `json:"timestamp"`
		ObjectRelation string           `json:"object_relation,omitempty"`
		Tag            []map[string]any `json:"Tag,omitempty"`
	}
	type object struct {
		UUID      string `json:"uuid"`
		Name      string `json:"name"`
		Attribute []attr `json:"Attribute"`
	}
	ev := map[string]any{
		"uuid": "5c0661f7-77a0-4ec9-bdcf-d447950d210f", "info": "bulk push", "date": "2026-11-20",
		"timestamp": "1795255200", "threat_level_id": "2", "distribution": "1",
		"Orgc": map[string]string{"name": "Upstream CERT"},
		"Tag":  []map[string]string{{"name": "tlp:amber"}, {"name": "botnet"}},
	}
	var attrs []attr
	var objects []object
	for i := range n {
		u := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		var a attr
		switch i % 8 {
		case 0:
			a = attr{Type: "ip-dst", Category: "Network activity", Value: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		case 1:
			a = attr{Type: "domain", Category: "Network activity", Value: fmt.Sprintf("host%d.example.org", i)}
		case 2:
			a = attr{Type: "url", Category: "Network activity", Value: fmt.Sprintf("https://host%d.example.org/gate.php?id=%d", i, i)}
		case 3:
			a = attr{Type: "sha256", Category: "Payload delivery", Value: fmt.Sprintf("%064x", i)}
		case 4:
			a = attr{Type: "md5", Category: "Payload delivery", Value: fmt.Sprintf("%032x", i)}
		case 5:
			a = attr{Type: "ip-dst|port", Category: "Network activity", Value: fmt.Sprintf("192.0.%d.%d|%d", i>>8&255, i&255, 1024+i%60000)}
		case 6:
			a = attr{Type: "email-src", Category: "Payload delivery", Value: fmt.Sprintf("sender%d@example.net", i)}
		case 7:
			a = attr{Type: "text", Category: "Other", Value: fmt.Sprintf("note %d", i)}
		}
		a.UUID, a.ToIDs, a.Timestamp = u, i%3 != 0, "1795255200"
		if i%10 == 9 {
			a.ObjectRelation = a.Type
			objects = append(objects, object{UUID: fmt.Sprintf("00000000-0000-4000-9000-%012d", i), Name: "file", Attribute: []attr{a}})
			continue
		}
		if i%50 == 0 {
			a.Tag = []map[string]any{{"name": "kill-chain:Command and Control", "local": false}}
		}
		attrs = append(attrs, a)
	}
	ev["Attribute"], ev["Object"] = attrs, objects
	b, err := json.Marshal(map[string]any{"Event": ev})
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkDecode(b *testing.B) {
	data := bigMISP(10_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	inds := 0
	for b.Loop() {
		evs, errs, err := Decode(data)
		if err != nil || len(errs) > 0 {
			b.Fatal(err, errs)
		}
		inds += len(evs[0].Indicators)
	}
	b.ReportMetric(float64(inds)/b.Elapsed().Seconds(), "indicators/s")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/event")
}

// bigEvent is bigMISP(n) as the pipeline stores it.
func bigEvent(tb testing.TB, n int) *gateway.Event {
	evs, _, err := Decode(bigMISP(n))
	if err != nil {
		tb.Fatal(err)
	}
	store(tb, evs[0])
	return evs[0]
}

// objectHeavyMISP is a MISP event of n file objects, each with four
// attributes, template fields and two references to its neighbours.
func objectHeavyMISP(n int) []byte {
	var objects []map[string]any
	for i := range n {
		ou := fmt.Sprintf("00000000-0000-4000-9000-%012d", i)
		var attrs []map[string]any
		for j, typ := range []string{"md5", "sha256", "filename", "size-in-bytes"} {
			var v string
			switch typ {
			case "md5":
				v = fmt.Sprintf("%032x", i)
			case "sha256":
				v = fmt.Sprintf("%064x", i)
			case "filename":
				v = fmt.Sprintf("sample%d.exe", i)
			default:
				v = fmt.Sprint(1000 + i)
			}
			attrs = append(attrs, map[string]any{
				"uuid": fmt.Sprintf("00000000-0000-4000-8000-%08d%04d", i, j), "type": typ, "category": "Payload delivery",
				"value": v, "object_relation": typ, "to_ids": typ != "size-in-bytes", "timestamp": "1795255100",
				"disable_correlation": typ == "size-in-bytes", "first_seen": "2026-11-19T10:00:00.000000+00:00",
			})
		}
		var refs []map[string]any
		for _, k := range []int{(i + 1) % n, (i + 2) % n} {
			refs = append(refs, map[string]any{
				"uuid": fmt.Sprintf("00000000-0000-4000-a000-%08d%04d", i, k%10000), "relationship_type": "related-to",
				"referenced_uuid": fmt.Sprintf("00000000-0000-4000-9000-%012d", k), "timestamp": "1795255100",
			})
		}
		objects = append(objects, map[string]any{
			"uuid": ou, "name": "file", "meta-category": "file", "description": "File object",
			"template_uuid": "688c46fb-5edb-40a3-8273-1af7923e2215", "template_version": "24",
			"distribution": "5", "timestamp": "1795255100", "Attribute": attrs, "ObjectReference": refs,
		})
	}
	b, err := json.Marshal(map[string]any{"Event": map[string]any{
		"uuid": "5c0661f7-77a0-4ec9-bdcf-d447950d210f", "info": "object-heavy", "date": "2026-11-20",
		"timestamp": "1795255200", "threat_level_id": "2", "analysis": "2", "distribution": "1",
		"Orgc": map[string]string{"name": "Upstream CERT", "uuid": "11111111-2222-4333-8444-555555555555"},
		"Tag":  []map[string]string{{"name": "tlp:amber"}}, "Object": objects,
	}})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkRoundTripObjects: decode and encode of an event of 1,000 MISP
// objects (4 attributes and 2 references each); the figure counts objects.
func BenchmarkRoundTripObjects(b *testing.B) {
	const n = 1000
	data := objectHeavyMISP(n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	objs := 0
	for b.Loop() {
		evs, errs, err := Decode(data)
		if err != nil || len(errs) > 0 {
			b.Fatal(err, errs)
		}
		e, err := EncodeEvent(evs[0], testOrg)
		if err != nil {
			b.Fatal(err)
		}
		if len(e.Object) != n || len(e.Object[0].ObjectReference) != 2 {
			b.Fatalf("%d objects, %d references on the first", len(e.Object), len(e.Object[0].ObjectReference))
		}
		objs += len(e.Object)
	}
	b.ReportMetric(float64(objs)/b.Elapsed().Seconds(), "misp_roundtrip_objects_per_s")
}
