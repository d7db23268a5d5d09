package misp

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

const (
	uuidA = "57c4445b-c548-4654-af0b-4be3950d210f"
	uuidB = "5a4cb19a-f550-437f-bd29-48ed950d210f"
)

func bare(uuid string) string {
	return `{"uuid":"` + uuid + `","info":"x","Attribute":[{"type":"ip-dst","value":"192.0.2.1"}]}`
}

func TestDecodeForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ids  []string
	}{
		{"Event wrapper", `{"Event":` + bare(uuidA) + `}`, []string{uuidA}},
		{"bare event", bare(uuidA), []string{uuidA}},
		{"restSearch response", `{"response":[{"Event":` + bare(uuidA) + `},{"Event":` + bare(uuidB) + `}]}`, []string{uuidA, uuidB}},
		{"response of bare events", `{"response":[` + bare(uuidA) + `]}`, []string{uuidA}},
		{"response holding one event", `{"response":{"Event":` + bare(uuidA) + `}}`, []string{uuidA}},
		{"array of forms", `[{"Event":` + bare(uuidA) + `},{"response":[` + bare(uuidB) + `]}]`, []string{uuidA, uuidB}},
		{"upper-case uuid", bare(strings.ToUpper(uuidA)), []string{uuidA}},
		{"empty search result", `{"response":[]}`, nil},
		{"empty array", `[]`, nil},
		{"odd Event key inside", `{"Event":{"uuid":"` + uuidA + `","info":"x","Event":"?","Attribute":[{"type":"ip-dst","value":"192.0.2.1"}]}}`, []string{uuidA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, errs, err := Decode([]byte(tt.in))
			if err != nil || len(errs) > 0 {
				t.Fatalf("err %v, field errors %v", err, errs)
			}
			var ids []string
			for _, ev := range evs {
				ids = append(ids, ev.ID)
				if ev.Source.Format != "misp" || ev.Source.Ref != ev.ID || len(ev.Indicators) != 1 {
					t.Errorf("event %+v", ev)
				}
			}
			if !slices.Equal(ids, tt.ids) {
				t.Errorf("ids %q, want %q", ids, tt.ids)
			}
		})
	}
}

func TestDecodeUnreadable(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", `{"Event":`, "not valid JSON"},
		{"empty", ``, "not valid JSON"},
		{"null", `null`, "null"},
		{"string", `"event"`, "expected a JSON object or array"},
		{"number", `42`, "expected a JSON object or array"},
		{"empty object", `{}`, "not a MISP event"},
		{"sharing groups", `[{"SharingGroup":{"name":"x"}}]`, "/0: not a MISP event"},
		{"Event not an object", `{"Event":"x"}`, "/Event: Event must be an object"},
		{"empty attribute search", `{"response":{"Attribute":[]}}`, "holds no attributes"},
		{"nested response", `{"response":[{"response":[` + bare(uuidA) + `]}]}`, "/response/0: not a MISP event"},
		{"too deep", deep, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, _, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || len(evs) > 0 {
				t.Errorf("got %d events, err %v; want an error containing %q", len(evs), err, tt.want)
			}
		})
	}
}

// TestDecodeLenientForms: MISP writes numbers as strings, PyMISP as
// numbers; booleans come as true, 1 and "1".
func TestDecodeLenientForms(t *testing.T) {
	want := time.Unix(1700000000, 0).UTC()
	for _, ts := range []string{`"1700000000"`, `1700000000`, `1.7e9`, `" 1700000000 "`, `1700000000.0`} {
		for _, tid := range []string{`true`, `1`, `"1"`, `"true"`, `"True"`} {
			for _, fid := range []string{`false`, `0`, `"0"`, `"false"`, `null`, `""`} {
				in := fmt.Sprintf(`{"uuid":%q,"info":"x","timestamp":%s,"threat_level_id":%s,"Attribute":[`+
					`{"type":"md5","value":"0749bae92ca336a02c83d126e04ec628","to_ids":%s},`+
					`{"type":"sha1","value":"77b0c41b7d340b8a3d903f21347bbf06aa766b5b","to_ids":%s}]}`,
					uuidA, ts, `"1"`, tid, fid)
				evs, errs, err := Decode([]byte(in))
				if err != nil || len(errs) > 0 || len(evs) != 1 {
					t.Fatalf("%s: %v %v", in, err, errs)
				}
				ev := evs[0]
				if !ev.Modified.Equal(want) || ev.Priority != gateway.PriorityHigh {
					t.Errorf("timestamp %s: modified %s priority %s", ts, ev.Modified, ev.Priority)
				}
				if !ev.Indicators[0].Detect || ev.Indicators[1].Detect {
					t.Errorf("to_ids %s / %s: detect %v / %v", tid, fid, ev.Indicators[0].Detect, ev.Indicators[1].Detect)
				}
			}
		}
	}
	// A value sent as a number is kept as its text.
	evs, _, _ := Decode([]byte(`{"info":"x","Attribute":[{"type":"port","value":443},{"type":"AS","value":64500}]}`))
	if got := evs[0].Indicators; got[0].Value != "443" || got[1].Type != gateway.TypeASN || got[1].Value != "64500" {
		t.Errorf("numeric values: %+v", got)
	}
}

func TestDecodeCreated(t *testing.T) {
	day := func(d int, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		name             string
		fields           string
		created, modifed time.Time
	}{
		{"date before publish", `"date":"2026-11-20","publish_timestamp":"1795168800","timestamp":"1795255200"`, day(20, 0), day(21, 10)},
		{"publish before date", `"date":"2026-11-21","publish_timestamp":"1795168800","timestamp":"1795255200"`, day(20, 10), day(21, 10)},
		{"never published", `"date":"2026-11-20","publish_timestamp":"0","timestamp":"1795255200"`, day(20, 0), day(21, 10)},
		{"date after the last change", `"date":"2027-01-01","timestamp":"1795255200"`, day(21, 10), day(21, 10)},
		{"only a date", `"date":"2026-11-20"`, day(20, 0), time.Time{}},
		{"nothing", ``, time.Time{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"info":"x","uuid":"` + uuidA + `"`
			if tt.fields != "" {
				in += "," + tt.fields
			}
			evs, errs, err := Decode([]byte(in + "}"))
			if err != nil || len(errs) > 0 {
				t.Fatal(err, errs)
			}
			if !evs[0].Created.Equal(tt.created) || !evs[0].Modified.Equal(tt.modifed) {
				t.Errorf("created %s modified %s, want %s %s", evs[0].Created, evs[0].Modified, tt.created, tt.modifed)
			}
		})
	}
}

// TestDecodeLimit: an event over 100,000 attributes maps the first 100,000
// and reports the rest in one FieldError; split composites never push an
// event past 100,000 indicators (the canonical schema's maxItems).
func TestDecodeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100k-attribute events")
	}
	build := func(n int, typ string, val func(int) string) []byte {
		var b strings.Builder
		b.WriteString(`{"Event":{"info":"big","Attribute":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"type":"` + typ + `","value":"` + val(i) + `"}`)
		}
		b.WriteString(`]}}`)
		return []byte(b.String())
	}
	ip := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }
	tests := []struct {
		name     string
		data     []byte
		inds     int
		mentions string
	}{
		{"attributes", build(maxAttributes+5, "ip-dst", ip), maxAttributes, "has 100005 attributes; only the first 100000"},
		{"split composites", build(60_000, "domain|ip", func(i int) string { return "d" + strconv.Itoa(i) + ".example|" + ip(i) }), maxAttributes, "has 60000 attributes; only the first 50000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, errs, err := Decode(tt.data)
			if err != nil || len(evs) != 1 {
				t.Fatal(err)
			}
			if got := len(evs[0].Indicators); got != tt.inds {
				t.Errorf("%d indicators, want %d", got, tt.inds)
			}
			if len(errs) != 1 || errs[0].Field != "/Event" || !strings.Contains(errs[0].Message, tt.mentions) {
				t.Errorf("field errors %v, want one at /Event mentioning %q", errs, tt.mentions)
			}
		})
	}
}

func TestDecodeFieldErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"info":"x","Attribute":[`)
	for i := range 5000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`1`)
	}
	b.WriteString(`]}`)
	evs, errs, err := Decode([]byte(b.String()))
	if err != nil || len(evs) != 1 {
		t.Fatal(err)
	}
	if len(errs) != maxFieldErrors+1 || !strings.Contains(errs[len(errs)-1].Message, "4000 more problems") {
		t.Errorf("%d field errors, last %v", len(errs), errs[len(errs)-1])
	}
}

// TestFieldErrorPointers: every FieldError Decode reports for the golden
// inputs points into the input (at the field, or at the object that lacks
// it), so a user can find the problem.
func TestFieldErrorPointers(t *testing.T) {
	for _, in := range goldenInputs(t) {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		_, errs, _ := Decode(data)
		var doc any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, fe := range errs {
			if fe.Field == "" {
				continue
			}
			if !resolves(doc, fe.Field) {
				t.Errorf("%s: field %q does not point into the input", in, fe.Field)
			}
		}
	}
}

// resolves reports whether ptr, or its parent, names a value in doc.
func resolves(doc any, ptr string) bool {
	parts := strings.Split(ptr, "/")[1:]
	cur := doc
	for i, p := range parts {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[p]
			if !ok {
				return i == len(parts)-1
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(x) {
				return false
			}
			cur = x[n]
		default:
			return false
		}
	}
	return true
}

func TestTags(t *testing.T) {
	tests := [][]string{
		{"a", "b"},
		{`misp-galaxy:threat-actor="Sofacy"`, "kill-chain:Delivery"},
		{"needs, review", `"quoted"`, `say "hi"`, " padded "},
		{`","`, `""`, ","},
		{"ünïcode, tag"},
	}
	for _, tags := range tests {
		got := SplitTags(JoinTags(tags))
		if !slices.Equal(got, tags) {
			t.Errorf("SplitTags(JoinTags(%q)) = %q", tags, got)
		}
	}
	if got := SplitTags("a, b ,,c"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("hand-written list: %q", got)
	}
	if got := JoinTags([]string{`misp-galaxy:x="y"`}); got != `misp-galaxy:x="y"` {
		t.Errorf("galaxy tag quoted needlessly: %s", got)
	}
}
