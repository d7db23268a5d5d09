package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/schemas"
)

// want is one expected violation: the pointer, and a fragment of the message.
type want struct {
	ptr, msg string
}

type schemaCase struct {
	name string
	doc  string
	want []want // nil: valid
}

func runCases(t *testing.T, name schemas.Name, cases []schemaCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := schemas.ValidateJSON(name, []byte(tc.doc))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), dump(got))
			}
			for i, w := range tc.want {
				if got[i].Field != w.ptr || !strings.Contains(got[i].Message, w.msg) {
					t.Errorf("error %d = %q %q, want %q containing %q\nall:\n%s", i, got[i].Field, got[i].Message, w.ptr, w.msg, dump(got))
				}
			}
		})
	}
}

func dump(errs []gateway.FieldError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %q: %s\n", e.Field, e.Message)
	}
	return b.String()
}

const minimalEvent = `{"kind":"intel","title":"t","source":{"name":"s"}`

// ev builds an event document from the minimal one plus extra members.
func ev(extra string) string {
	if extra == "" {
		return minimalEvent + "}"
	}
	return minimalEvent + "," + extra + "}"
}

func TestEventSchema(t *testing.T) {
	arch, err := os.ReadFile("testdata/event-architecture.json")
	if err != nil {
		t.Fatal(err)
	}
	runCases(t, schemas.Event, []schemaCase{
		{name: "architecture example", doc: string(arch)},
		{name: "minimal", doc: ev("")},
		{name: "tlp canonical", doc: ev(`"tlp":"AMBER+STRICT"`)},
		{name: "tlp lower case", doc: ev(`"tlp":"amber"`)},
		{name: "tlp prefixed", doc: ev(`"tlp":"TLP:RED"`)},
		{name: "tlp misp tag", doc: ev(`"tlp":"tlp:amber+strict"`)},
		{name: "tlp white", doc: ev(`"tlp":"WHITE"`)},
		{name: "tlp spaced", doc: ev(`"tlp":"TLP: Amber Strict"`)},
		{name: "x- extension keys", doc: ev(`"x-origin":{"a":1},"indicators":[{"type":"md5","value":"x","x-note":"n"}]`)},
		{name: "indicator value format is not checked", doc: ev(`"indicators":[{"type":"ipv4","value":"999.1.1.1"}]`)},
		{name: "asn upper bound", doc: ev(`"indicators":[{"type":"asn","value":"AS1","asn":4294967295,"port":0}]`)},
		{name: "integral float port", doc: ev(`"indicators":[{"type":"url","value":"u","port":443.0}]`)},
		{
			name: "missing required",
			doc:  `{"source":{}}`,
			want: []want{{"/kind", `missing property "kind"`}, {"/source/name", `missing property "name"`}, {"/title", `missing property "title"`}},
		},
		{
			name: "typo at top level",
			doc:  ev(`"tlpp":"RED"`),
			want: []want{{"/tlpp", `additional property "tlpp" is not allowed`}},
		},
		{
			name: "unknown tlp",
			doc:  ev(`"tlp":"PURPLE"`),
			want: []want{{"/tlp", `value must be one of "CLEAR", "GREEN"`}},
		},
		{
			name: "tlp not a string",
			doc:  ev(`"tlp":3`),
			want: []want{{"/tlp", `value must be one of`}},
		},
		{
			name: "bad kind and empty title",
			doc:  `{"kind":"news","title":"","source":{"name":"s"}}`,
			want: []want{{"/kind", `value must be one of "advisory", "intel", "notification", "incident"`}, {"/title", "must not be empty"}},
		},
		{name: "id uuid", doc: ev(`"id":"8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11"`)},
		{name: "id tracking number", doc: ev(`"id":"NCSC-2026-0389"`)},
		{name: "id longest", doc: ev(`"id":"` + strings.Repeat("a", 128) + `"`)},
		{name: "bounds at their limits", doc: `{"kind":"intel","title":"` + strings.Repeat("é", 512) + `","description":"` + strings.Repeat("d", 65536) + `","labels":[` + strings.Repeat(`"`+strings.Repeat("l", 128)+`",`, 63) + `"x"],"source":{"name":"s","ref":"` + strings.Repeat("r", 256) + `"}}`},
		{
			name: "id too long",
			doc:  ev(`"id":"` + strings.Repeat("a", 129) + `"`),
			want: []want{{"/id", "id must be a UUID or 1 to 128 characters"}},
		},
		{
			name: "id with a slash",
			doc:  ev(`"id":"a/../b"`),
			want: []want{{"/id", "id must be a UUID"}},
		},
		{
			name: "id starting with a dash",
			doc:  ev(`"id":"-a"`),
			want: []want{{"/id", "id must be a UUID"}},
		},
		{
			name: "title too long",
			doc:  `{"kind":"intel","title":"` + strings.Repeat("t", 513) + `","source":{"name":"s"}}`,
			want: []want{{"/title", "at most 512 characters"}},
		},
		{
			name: "description too long",
			doc:  ev(`"description":"` + strings.Repeat("d", 65537) + `"`),
			want: []want{{"/description", "at most 65536 characters"}},
		},
		{
			name: "too many labels",
			doc:  ev(`"labels":[` + strings.Repeat(`"l",`, 64) + `"l"]`),
			want: []want{{"/labels", "at most 64 items"}},
		},
		{
			name: "label too long",
			doc:  ev(`"labels":["a","` + strings.Repeat("l", 129) + `"]`),
			want: []want{{"/labels/1", "at most 128 characters"}},
		},
		{
			name: "source ref too long",
			doc:  `{"kind":"intel","title":"t","source":{"name":"s","ref":"` + strings.Repeat("r", 257) + `"}}`,
			want: []want{{"/source/ref", "at most 256 characters"}},
		},
		{
			name: "date-time asserted",
			doc:  ev(`"created":"2026-11-20 09:14","modified":"2026-11-21T10:00:00Z"`),
			want: []want{{"/created", "RFC 3339 date-time"}},
		},
		{
			name: "assessment enums",
			doc:  ev(`"priority":"urgent","assessment":{"probability":"certain","impact":"high","urgency":"now"}`),
			want: []want{{"/assessment/probability", "value must be one of"}, {"/assessment/urgency", `"urgent", "normal"`}, {"/priority", "value must be one of"}},
		},
		{
			name: "indicator problems",
			doc:  ev(`"indicators":[{"type":"ipv4","value":"192.0.2.1"},{"type":"ip","value":"","port":70000,"asn":-1,"observed":"now","detect":"yes","attributes":{"a":1},"tpye":"x"}]`),
			want: []want{
				{"/indicators/1/asn", "must be at least 0"},
				{"/indicators/1/attributes/a", "expected string, got number"},
				{"/indicators/1/detect", "expected boolean, got string"},
				{"/indicators/1/observed", "RFC 3339"},
				{"/indicators/1/port", "must be at most 65535"},
				{"/indicators/1/tpye", `additional property "tpye" is not allowed`},
				{"/indicators/1/type", `"ipv4", "ipv6", "cidr"`},
				{"/indicators/1/value", "must not be empty"},
			},
		},
		{
			name: "indicator without type and value",
			doc:  ev(`"indicators":[{}]`),
			want: []want{{"/indicators/0/type", `missing property "type"`}, {"/indicators/0/value", `missing property "value"`}},
		},
		{
			name: "addressee must name someone",
			doc:  ev(`"addressees":[{"constituent":"a"},{}]`),
			want: []want{{"/addressees/1", "at least one property"}},
		},
		{
			name: "vulnerabilities",
			doc:  ev(`"vulnerabilities":[{"cvss":10.5,"products":[1]}]`),
			want: []want{{"/vulnerabilities/0/cve", `missing property "cve"`}, {"/vulnerabilities/0/cvss", "must be at most 10"}, {"/vulnerabilities/0/products/0", "expected string"}},
		},
		{
			name: "strings arrays",
			doc:  ev(`"sectors":"health","labels":[true]`),
			want: []want{{"/labels/0", "expected string, got boolean"}, {"/sectors", "expected array, got string"}},
		},
		{
			name: "not an object",
			doc:  `[1]`,
			want: []want{{"", "expected object, got array"}},
		},
	})
}

func TestEventMaxIndicators(t *testing.T) {
	ind := `{"type":"md5","value":"x"}`
	doc := ev(`"indicators":[` + strings.Repeat(ind+",", 100000) + ind + `]`)
	got := schemas.ValidateJSON(schemas.Event, []byte(doc))
	if len(got) != 1 || got[0].Field != "/indicators" || !strings.Contains(got[0].Message, "at most 100000 items") {
		t.Fatalf("got %v, want one maxItems error on /indicators", got)
	}
}

func TestConstituentSchema(t *testing.T) {
	key := strings.Repeat("aB3", 13) + "x"
	runCases(t, schemas.Constituent, []schemaCase{
		{name: "minimal", doc: `{"id":"a","name":"A"}`},
		{
			name: "full",
			doc: `{"id":"gemeente-utrecht","name":"Gemeente Utrecht","sectors":["government"],
				"assets":{"asns":[64500,4294967295],"prefixes":["192.0.2.0/24","2001:db8::/32"],"domains":["utrecht.example"]},
				"contacts":[{"email":"soc@utrecht.example","name":"SOC","red":true}],
				"webhooks":[{"url":"https://hooks.utrecht.example/schakel","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}],
				"misp_push":{"url":"https://misp.utrecht.example","key":"` + key + `"},
				"subscriptions":{"min_priority":"high","kinds":["advisory","notification"],"labels":["ransomware"]},
				"limits":{"webhook_per_minute":0,"email_per_hour":10,"misp_push_per_minute":60}}`,
		},
		{
			name: "missing id and name",
			doc:  `{}`,
			want: []want{{"/id", `missing property "id"`}, {"/name", `missing property "name"`}},
		},
		{
			name: "bad id",
			doc:  `{"id":"Acme Corp","name":"A"}`,
			want: []want{{"/id", "lower-case letters"}},
		},
		{
			name: "id too long",
			doc:  `{"id":"` + strings.Repeat("a", 64) + `","name":"A"}`,
			want: []want{{"/id", "1 to 63"}},
		},
		{
			name: "assets",
			doc:  `{"id":"a","name":"A","assets":{"asns":[0,"AS1"],"prefixes":[""],"domain":["a.example"]}}`,
			want: []want{{"/assets/asns/0", "must be at least 1"}, {"/assets/asns/1", "expected integer, got string"}, {"/assets/domain", `additional property "domain"`}, {"/assets/prefixes/0", "must not be empty"}},
		},
		{
			name: "contacts",
			doc:  `{"id":"a","name":"A","contacts":[{"name":"no mail"},{"email":"not-an-address","red":"yes"}]}`,
			want: []want{{"/contacts/0/email", `missing property "email"`}, {"/contacts/1/email", "must be an e-mail address"}, {"/contacts/1/red", "expected boolean"}},
		},
		{
			name: "webhooks",
			doc:  `{"id":"a","name":"A","webhooks":[{"url":"ftp://x.example/","secret":"hunter2"},{"url":"https://ok.example/"}]}`,
			want: []want{{"/webhooks/0/secret", "whsec_"}, {"/webhooks/0/url", "http or https URL"}, {"/webhooks/1/secret", `missing property "secret"`}},
		},
		{
			name: "misp push key",
			doc:  `{"id":"a","name":"A","misp_push":{"url":"https://m.example","key":"short"}}`,
			want: []want{{"/misp_push/key", "40 letters and digits"}},
		},
		{
			name: "subscriptions and limits",
			doc:  `{"id":"a","name":"A","subscriptions":{"min_priority":"urgent","kinds":["news"]},"limits":{"email_per_hour":-1,"sms_per_day":1}}`,
			want: []want{{"/limits/email_per_hour", "must be at least 0"}, {"/limits/sms_per_day", "additional property"}, {"/subscriptions/kinds/0", `"advisory", "intel"`}, {"/subscriptions/min_priority", `"critical", "high"`}},
		},
	})
}

func TestConfigSchema(t *testing.T) {
	runCases(t, schemas.Config, []schemaCase{
		{name: "empty object", doc: `{}`},
		{name: "x- anchors at top level", doc: `{"x-defaults":{"anything":1}}`},
		{
			name: "unknown keys everywhere",
			doc:  `{"listn":"x","redis":{"db":1},"channels":{"sms":{}},"sources":[{"name":"a","type":"api","secrt":"x"}]}`,
			want: []want{{"/channels/sms", "additional property"}, {"/listn", "additional property"}, {"/redis/db", "additional property"}, {"/sources/0/secrt", "additional property"}},
		},
		{
			name: "source basics",
			doc:  `{"sources":[{"type":"ftp"},{"name":"Bad Name","type":"api","default_tlp":"pink","format":"xml","interval":"5 minutes"}]}`,
			want: []want{
				{"/sources/0/name", `missing property "name"`},
				{"/sources/0/type", `"api", "webhook", "misp"`},
				{"/sources/1/default_tlp", "value must be one of"},
				{"/sources/1/format", `"canonical", "misp", "stix", "csaf"`},
				{"/sources/1/interval", "duration"},
				{"/sources/1/name", "lower-case"},
			},
		},
		{
			name: "type requirements",
			doc: `{"sources":[
				{"name":"hook","type":"webhook"},
				{"name":"pushin","type":"misp"},
				{"name":"poll","type":"misp","url":"https://misp.example"},
				{"name":"tx","type":"taxii"},
				{"name":"cs","type":"csaf"},
				{"name":"feed","type":"csv"},
				{"name":"mbox","type":"imap"},
				{"name":"smtp","type":"smtp"}]}`,
			want: []want{
				{"/sources/0", `missing property "secret" or "secret_file"`},
				{"/sources/2", `missing property "key" or "key_file"`},
				{"/sources/3/collection", `missing property "collection"`},
				{"/sources/3/url", `missing property "url"`},
				{"/sources/4/url", `missing property "url"`},
				{"/sources/5", `missing property "path" or "url"`},
				{"/sources/6/address", `missing property "address"`},
				{"/sources/6/username", `missing property "username"`},
				{"/sources/7/listen", `missing property "listen"`},
			},
		},
		{
			name: "type requirements met",
			doc: `{"sources":[
				{"name":"hook","type":"webhook","secret_file":"hook.secret"},
				{"name":"poll","type":"misp","url":"https://misp.example","key":"` + strings.Repeat("k", 40) + `"},
				{"name":"tx","type":"taxii","url":"https://taxii.example/api1/","collection":"c"},
				{"name":"feed","type":"csv","url":"https://feed.example/x.csv"},
				{"name":"mbox","type":"imap","address":"imap.example:993","username":"u"},
				{"name":"smtp","type":"smtp","listen":":2525","recipients":["in@x.example"]}]}`,
		},
		{
			name: "secret and its file both set",
			doc:  `{"sources":[{"name":"h","type":"webhook","secret":"s","secret_file":"f","password":"p","password_file":"q"}]}`,
			want: []want{{"/sources/0", `set only one of "password" and "password_file"`}, {"/sources/0", `set only one of "secret" and "secret_file"`}},
		},
		{
			name: "top level values",
			doc: `{"listen":"8080","public_url":"schakel.example.org","redis":{"url":"http://r","prefix":""},
				"admin":{"keys":["short"]},"tlp":{"default":"BLUE"},"limits":{"ingest_per_minute":-5},
				"http":{"body_limit":"10MiB","read_timeout":"30"},"shutdown_timeout":30,
				"channels":{"email":{"tls":"ssl","from":"warnings"},"webhook":{"max_attempts":0}},
				"mailing_lists":[{"address":"l@x.example","audience":"everyone"},{"audience":"public"}]}`,
			want: []want{
				{"/admin/keys/0", "40 letters and digits"},
				{"/channels/email/from", "e-mail address"},
				{"/channels/email/tls", `"none", "starttls", "tls"`},
				{"/channels/webhook/max_attempts", "must be at least 1"},
				{"/http/body_limit", "expected integer, got string"},
				{"/http/read_timeout", "duration"},
				{"/limits/ingest_per_minute", "must be at least 0"},
				{"/listen", "host:port"},
				{"/mailing_lists/0/audience", `"public", "community"`},
				{"/mailing_lists/1/address", `missing property "address"`},
				{"/public_url", "http or https URL"},
				{"/redis/prefix", "1 to 64"},
				{"/redis/url", "redis://"},
				{"/shutdown_timeout", "duration"},
				{"/tlp/default", "value must be one of"},
			},
		},
	})
}

// TestConfigSchemaArchitectureExample checks that the configuration of
// ARCHITECTURE §8, read as YAML, is valid.
func TestConfigSchemaArchitectureExample(t *testing.T) {
	data, err := os.ReadFile("testdata/config-architecture.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if errs := schemas.Validate(schemas.Config, doc); errs != nil {
		t.Fatalf("§8 example invalid:\n%s", dump(errs))
	}
	// And a typo in it is caught, so the check above can fail.
	var broken any
	if err := yaml.Unmarshal(bytes.Replace(data, []byte("audience: community"), []byte("audience: members"), 1), &broken); err != nil {
		t.Fatal(err)
	}
	if errs := schemas.Validate(schemas.Config, broken); len(errs) != 1 || errs[0].Field != "/mailing_lists/1/audience" {
		t.Fatalf("got %v, want one error on /mailing_lists/1/audience", errs)
	}
}

// TestGoTypesMatchSchemas guards against drift between the canonical Go
// types and the schemas: what Schakel itself emits must be accepted.
func TestGoTypesMatchSchemas(t *testing.T) {
	when := time.Date(2026, 11, 20, 9, 14, 33, 0, time.UTC)
	event := gateway.Event{
		ID: "8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11", Kind: gateway.KindNotification, Title: "t", Description: "d",
		TLP: gateway.TLPAmberStrict, Source: gateway.SourceRef{Name: "shadowserver", Org: "o", Format: "csv", Ref: "r"},
		Created: when, Modified: when, Priority: gateway.PriorityHigh,
		Assessment: &gateway.Assessment{Probability: "high", Impact: "low", Urgency: "normal"},
		Sectors:    []string{"health"}, Labels: []string{"x"},
		Addressees: []gateway.Addressee{{Constituent: "a"}, {Email: "a@b.example", Name: "A"}},
		Indicators: []gateway.Indicator{{Type: gateway.TypeIPv6, Value: "2001:db8::1", Detect: true, Port: 443, ASN: 64500,
			Observed: when, Comment: "c", Attributes: map[string]string{"k": "v"}}},
		Vulnerabilities: []gateway.Vulnerability{{CVE: "CVE-2026-1", CVSS: 9.8, Products: []string{"p"}}},
	}
	constituent := gateway.Constituent{
		ID: "a", Name: "A", Sectors: []string{"health"},
		Assets:        gateway.Assets{ASNs: []int64{64500}, Prefixes: []string{"192.0.2.0/24"}, Domains: []string{"a.example"}},
		Contacts:      []gateway.Contact{{Email: "soc@a.example", Name: "SOC", Red: true}},
		Webhooks:      []gateway.Webhook{{URL: "https://a.example/hook", Secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}},
		MISPPush:      &gateway.MISPPush{URL: "https://misp.a.example", Key: strings.Repeat("A1", 20)},
		Subscriptions: gateway.Subscriptions{MinPriority: gateway.PriorityLow, Kinds: []gateway.Kind{gateway.KindIntel}},
		Limits:        gateway.Limits{EmailPerHour: 5},
	}
	for _, tc := range []struct {
		name   schemas.Name
		v      any
		fields int // how many top-level members the JSON has, so that omitted fields fail the test
	}{
		{schemas.Event, event, 15},
		{schemas.Constituent, constituent, 9},
	} {
		data, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil || len(m) != tc.fields {
			t.Fatalf("%s: %d members (%v), want %d: %s", tc.name, len(m), err, tc.fields, data)
		}
		if errs := schemas.ValidateJSON(tc.name, data); errs != nil {
			t.Errorf("%s rejects what Go emits:\n%s%s", tc.name, dump(errs), data)
		}
	}
}

func TestValidateJSONSyntax(t *testing.T) {
	for _, tc := range []struct {
		doc, msg string
	}{
		{``, "byte offset 0: empty document"},
		{`{"kind":`, "byte offset 8: unexpected end of input"},
		{`{"kind" "x"}`, "byte offset 8"},
		{`{} {}`, "byte offset 3: unexpected data after the top-level value"},
		{"{}\n\tx", "byte offset 4"},
	} {
		got := schemas.ValidateJSON(schemas.Event, []byte(tc.doc))
		if len(got) != 1 || got[0].Field != "" || !strings.Contains(got[0].Message, tc.msg) {
			t.Errorf("ValidateJSON(%q) = %v, want one root error containing %q", tc.doc, got, tc.msg)
		}
	}
}

// TestValidateHostileValues feeds values that make the underlying validator
// panic or spin; each must come back as an error on its field.
func TestValidateHostileValues(t *testing.T) {
	obj := func(port any) map[string]any {
		return map[string]any{"kind": "intel", "title": "t", "source": map[string]any{"name": "s"},
			"indicators": []any{map[string]any{"type": "url", "value": "v", "port": port}}}
	}
	for _, tc := range []struct {
		name string
		v    any
		msg  string
	}{
		{"NaN", obj(math.NaN()), "finite"},
		{"Inf", obj(math.Inf(1)), "finite"},
		{"huge exponent", obj(json.Number("1e10000000")), "out of range"},
		{"malformed number", obj(json.Number("12abc")), "malformed"},
		{"long number", obj(json.Number(strings.Repeat("9", 100))), "out of range"},
		{"Go type", obj(struct{}{}), "unsupported value"},
		{"int16", obj(int16(3)), "unsupported value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schemas.Validate(schemas.Event, tc.v)
			if len(got) != 1 || got[0].Field != "/indicators/0/port" || !strings.Contains(got[0].Message, tc.msg) {
				t.Fatalf("got %v, want one error on /indicators/0/port containing %q", got, tc.msg)
			}
		})
	}
	// Go integers and floats are fine.
	if got := schemas.Validate(schemas.Event, obj(443)); got != nil {
		t.Fatalf("int port: %v", got)
	}
	if got := schemas.Validate(schemas.Event, obj(443.0)); got != nil {
		t.Fatalf("float port: %v", got)
	}
}

func TestPointersEscapedAndOrdered(t *testing.T) {
	var inds []string
	for i := range 12 {
		typ := "md5"
		if i == 2 || i == 10 {
			typ = "bogus"
		}
		inds = append(inds, `{"type":"`+typ+`","value":"x"}`)
	}
	doc := ev(`"a/b~c":1,"a b":2,"indicators":[` + strings.Join(inds, ",") + `]`)
	got := schemas.ValidateJSON(schemas.Event, []byte(doc))
	var ptrs []string
	for _, e := range got {
		ptrs = append(ptrs, e.Field)
	}
	want := []string{"/a b", "/a~1b~0c", "/indicators/2/type", "/indicators/10/type"}
	if !slices.Equal(ptrs, want) {
		t.Fatalf("pointers %q, want %q\n%s", ptrs, want, dump(got))
	}
	if got[1].Message != `additional property "a/b~c" is not allowed` {
		t.Errorf("message %q does not name the property", got[1].Message)
	}
}

// TestMessagesDoNotEchoValues: values may be secrets (a webhook secret, a
// key), so messages must describe the problem without repeating them.
func TestMessagesDoNotEchoValues(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	docs := map[schemas.Name]string{
		schemas.Constituent: `{"id":"a","name":"A","webhooks":[{"url":"` + secret + `","secret":"` + secret + `"}],"contacts":[{"email":"` + secret + `"}],"misp_push":{"url":"https://m.example","key":"` + secret + `"}}`,
		schemas.Config:      `{"sources":[{"name":"a","type":"misp","url":"https://x.example","key":"` + secret + `"}],"channels":{"email":{"password":7,"from":"` + secret + `"}},"redis":{"url":"` + secret + `"}}`,
		schemas.Event:       ev(`"created":"` + secret + `","tlp":"` + secret + `"`),
	}
	for name, doc := range docs {
		got := schemas.ValidateJSON(name, []byte(doc))
		if len(got) < 2 {
			t.Errorf("%s: expected several errors, got %v", name, got)
		}
		for _, e := range got {
			if strings.Contains(e.Message, secret) {
				t.Errorf("%s: message %q repeats the value", name, e.Message)
			}
		}
	}
}

func TestRawAndUnknownNames(t *testing.T) {
	for _, n := range schemas.Names {
		var doc map[string]any
		if err := json.Unmarshal(schemas.Raw(n), &doc); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || !strings.HasSuffix(doc["$id"].(string), string(n)) {
			t.Errorf("%s: $schema %v $id %v", n, doc["$schema"], doc["$id"])
		}
	}
	if schemas.Raw("stix.schema.json") != nil {
		t.Error("Raw of an unknown name is not nil")
	}
	if got := schemas.Validate("nope.json", map[string]any{}); len(got) != 1 || !strings.Contains(got[0].Message, "unknown schema") {
		t.Errorf("Validate unknown schema = %v", got)
	}
}

func TestErrorString(t *testing.T) {
	if got := (gateway.FieldError{Field: "/kind", Message: "m"}).Error(); got != "/kind: m" {
		t.Errorf("got %q", got)
	}
	if got := (gateway.FieldError{Message: "m"}).Error(); got != "m" {
		t.Errorf("got %q", got)
	}
}

func FuzzValidateJSON(f *testing.F) {
	arch, err := os.ReadFile("testdata/event-architecture.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(arch)
	f.Add([]byte(ev(`"tlp":"tlp:amber+strict","indicators":[{"type":"asn","value":"1","asn":1e3}]`)))
	f.Add([]byte(`{"id":"a","name":"A","webhooks":[{"url":"https://x","secret":"whsec_x"}]}`))
	f.Add([]byte(`{"sources":[{"name":"h","type":"webhook"}],"x-a":{}}`))
	f.Add([]byte(`{"a/b~c":[1e999999,-0.0e-7]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, n := range schemas.Names {
			errs := schemas.ValidateJSON(n, data)
			for i, e := range errs {
				if e.Field != "" && !strings.HasPrefix(e.Field, "/") {
					t.Fatalf("%s: bad pointer %q", n, e.Field)
				}
				if e.Message == "" {
					t.Fatalf("%s: empty message at %q", n, e.Field)
				}
				if i > 0 && schemas.ComparePointers(errs[i-1].Field, e.Field) > 0 {
					t.Fatalf("%s: errors not sorted: %q before %q", n, errs[i-1].Field, e.Field)
				}
			}
		}
	})
}

func BenchmarkValidateJSON(b *testing.B) {
	var inds []string
	for i := range 10 {
		inds = append(inds, fmt.Sprintf(`{"type":"ipv4","value":"192.0.2.%d","detect":true,"port":443,"asn":64500,"observed":"2026-11-20T08:00:00Z","attributes":{"tag":"exchange"}}`, i))
	}
	doc := []byte(ev(`"id":"8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a11","tlp":"AMBER","created":"2026-11-20T09:14:33Z","labels":["ransomware"],"indicators":[` + strings.Join(inds, ",") + `]`))
	if errs := schemas.ValidateJSON(schemas.Event, doc); errs != nil {
		b.Fatal(errs)
	}
	b.SetBytes(int64(len(doc)))
	start := time.Now()
	n := 0
	for b.Loop() {
		schemas.ValidateJSON(schemas.Event, doc)
		n++
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(n), "µs/event")
}
