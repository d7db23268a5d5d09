package config_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

var mispKey = strings.Repeat("Ab1", 13) + "Z"

func TestParseConstituentsForms(t *testing.T) {
	want := []gateway.Constituent{
		{ID: "org-a", Name: "A", Assets: gateway.Assets{ASNs: []int64{64500}, Prefixes: []string{"192.0.2.0/24", "2001:db8::/32", "192.0.2.7"}}},
		{ID: "org-b", Name: "B", Webhooks: []gateway.Webhook{{URL: "https://b.example/hook", Secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}},
			MISPPush: &gateway.MISPPush{URL: "https://misp.b.example", Key: mispKey}},
	}
	list := `
- id: org-a
  name: A
  assets: {asns: [64500], prefixes: [192.0.2.0/24, "2001:db8::/32", 192.0.2.7]}
- id: org-b
  name: B
  webhooks: [{url: "https://b.example/hook", secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]
  misp_push: {url: "https://misp.b.example", key: ` + mispKey + `}
`
	mapping := "constituents:\n" + strings.ReplaceAll(list, "\n", "\n  ")
	jsonForm := `[{"id":"org-a","name":"A","assets":{"asns":[64500],"prefixes":["192.0.2.0/24","2001:db8::/32","192.0.2.7"]}},
	  {"id":"org-b","name":"B","webhooks":[{"url":"https://b.example/hook","secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}],
	   "misp_push":{"url":"https://misp.b.example","key":"` + mispKey + `"}}]`
	for name, doc := range map[string]string{"list": list, "mapping": mapping, "json": jsonForm, "json object": `{"constituents":` + jsonForm + `}`} {
		got, err := config.ParseConstituents([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestParseConstituentsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{
			name: "field errors name index, id and line",
			doc: `- id: org-a
  name: A
  contacts:
    - {email: soc@a.example}
    - {email: not-an-address, red: yes}
- id: Org B
  name: B
- name: no id
  assets: {prefixes: [192.0.2.0/33, 10.0.0.0/8]}
`,
			want: []string{
				`constituents[0].contacts[1].email (line 5, id "org-a"): must be an e-mail address`,
				`constituents[0].contacts[1].red (line 5, id "org-a"): expected boolean, got string`,
				`constituents[1].id (line 6, id "Org B"): must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`,
				`constituents[2].id (line 8): missing property "id"`,
			},
		},
		{
			name: "bad prefix",
			doc:  "- {id: a, name: A, assets: {prefixes: [192.0.2.0/24, 192.0.2.0/33]}}\n",
			want: []string{`constituents[0].assets.prefixes[1] (line 1, id "a"): "192.0.2.0/33" is not an IP prefix (192.0.2.0/24, 2001:db8::/32) or address`},
		},
		{
			name: "duplicate id",
			doc:  "constituents:\n  - {id: a, name: A}\n  - {id: a, name: A again}\n",
			want: []string{`constituents[1].id (line 3, id "a"): id is already used by constituents[0]`},
		},
		{
			name: "secrets are not echoed",
			doc:  "- {id: a, name: A, webhooks: [{url: 'https://a.example', secret: hunter2}], misp_push: {url: 'https://m.example', key: hunter3}}\n",
			want: []string{
				`constituents[0].misp_push.key (line 1, id "a"): must be 40 letters and digits (a MISP auth key)`,
				`constituents[0].webhooks[0].secret (line 1, id "a"): must be a Standard Webhooks secret: "whsec_" followed by base64 of at least 24 random bytes, or "generate" to have Schakel create one`,
			},
		},
		{
			name: "unknown top-level key",
			doc:  "constituents: []\norganisations: []\n",
			want: []string{`organisations (line 2): unexpected key; a constituents file is a list, or a mapping with the one key "constituents"`},
		},
		{
			name: "not a list",
			doc:  "id: a\n",
			want: []string{`id (line 1): unexpected key; a constituents file is a list, or a mapping with the one key "constituents"`},
		},
		{
			name: "scalar",
			doc:  "just text\n",
			want: []string{`line 1: expected a list of constituents`},
		},
		{
			name: "JSON syntax",
			doc:  `[{"id": "a", "name": "A"},, ]`,
			want: []string{`line 1: invalid YAML: did not find expected node content`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.ParseConstituents([]byte(tc.doc))
			if got != nil {
				t.Errorf("returned constituents along with errors: %v", got)
			}
			if p := problems(err); !slices.Equal(p, tc.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(p, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestParseConstituentsCSV(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		want      []gateway.Constituent
	}{
		{
			name: "all columns, multi-valued cells",
			csv: "id,name,sectors,asns,prefixes,domains,contacts,webhook_url,webhook_secret,misp_url,misp_key\n" +
				`org-a,Org A,"health energy",AS64500;64501,"192.0.2.0/24; 2001:db8::/32",a.example b.example,` +
				`"Jan de Vries <jan@a.example>!red; soc@a.example ""Team, Ops"" <ops@a.example>  cert@a.example!RED",` +
				"https://a.example/hook,whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,https://misp.a.example," + mispKey + "\n",
			want: []gateway.Constituent{{
				ID: "org-a", Name: "Org A", Sectors: []string{"health", "energy"},
				Assets: gateway.Assets{ASNs: []int64{64500, 64501}, Prefixes: []string{"192.0.2.0/24", "2001:db8::/32"}, Domains: []string{"a.example", "b.example"}},
				Contacts: []gateway.Contact{
					{Email: "jan@a.example", Name: "Jan de Vries", Red: true},
					{Email: "soc@a.example"},
					{Email: "ops@a.example", Name: "Team, Ops"},
					{Email: "cert@a.example", Red: true},
				},
				Webhooks: []gateway.Webhook{{URL: "https://a.example/hook", Secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}},
				MISPPush: &gateway.MISPPush{URL: "https://misp.a.example", Key: mispKey},
			}},
		},
		{
			name: "columns in any order, optional ones absent, blank and comment lines",
			csv:  "\ufeffname , ID\n# a comment\nOrg B,org-b\n\n,\nOrg C,org-c\n",
			want: []gateway.Constituent{{ID: "org-b", Name: "Org B"}, {ID: "org-c", Name: "Org C"}},
		},
		{
			name: "semicolon-delimited, as Dutch spreadsheets write it",
			csv:  "id;name;prefixes;contacts\norg-d;Org D;192.0.2.0/25 192.0.2.128/25;Piet <piet@d.example> !red\n",
			want: []gateway.Constituent{{ID: "org-d", Name: "Org D", Assets: gateway.Assets{Prefixes: []string{"192.0.2.0/25", "192.0.2.128/25"}},
				Contacts: []gateway.Contact{{Email: "piet@d.example", Name: "Piet", Red: true}}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.ParseConstituentsCSV(strings.NewReader(tc.csv))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConstituentsCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		want      []string
	}{
		{
			name: "cell errors name line and column",
			csv: "id,name,asns,contacts,webhook_url,webhook_secret\n" +
				"org-a,Org A,AS64500,jan@a.example,,\n" +
				"org-b,Org B,ASX,Jan,,\n" +
				"org-c,Org C,0,not-an-address@,https://c.example/hook,\n" +
				"Org D,,,,ftp://d.example,whsec_x\n",
			want: []string{
				`asns (line 3, column 13, id "org-b"): "ASX" is not an AS number`,
				`contacts (line 3, column 17, id "org-b"): contact "Jan" has no e-mail address; write "Name <email>" or "email"`,
				`asns[0] (line 4, column 13, id "org-c"): must be at least 1`,
				`contacts[0].email (line 4, column 15, id "org-c"): must be an e-mail address`,
				`webhook_secret (line 4, column 54, id "org-c"): missing property "secret"`,
				`id (line 5, column 1, id "Org D"): must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`,
				`name (line 5, column 7, id "Org D"): missing property "name"`,
				`webhook_secret (line 5, column 26, id "Org D"): must be a Standard Webhooks secret: "whsec_" followed by base64 of at least 24 random bytes, or "generate" to have Schakel create one`,
				`webhook_url (line 5, column 10, id "Org D"): must be an http or https URL`,
			},
		},
		{
			name: "duplicate id",
			csv:  "id,name\na,A\nb,B\na,A again\n",
			want: []string{`id (line 4, column 1, id "a"): id is already used on line 2`},
		},
		{
			name: "header problems",
			csv:  "id,nam,id\n",
			want: []string{
				`nam (line 1, column 4): unknown column; expected id, name, sectors, asns, prefixes, domains, contacts, webhook_url, webhook_secret, misp_url, misp_key`,
				`id (line 1, column 8): column appears twice`,
				`line 1: header has no "name" column`,
			},
		},
		{
			name: "wrong field count, then a broken quote",
			csv:  "id,name\na,A,extra\nb,\"B\n",
			want: []string{`line 2, column 1: invalid CSV: wrong number of fields`, `line 3, column 6: invalid CSV: extraneous or missing " in quoted-field`},
		},
		{
			name: "empty",
			csv:  "",
			want: []string{`empty CSV: expected a header row naming the columns (id,name,…)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.ParseConstituentsCSV(strings.NewReader(tc.csv))
			if got != nil {
				t.Errorf("returned constituents along with errors: %v", got)
			}
			if p := problems(err); !slices.Equal(p, tc.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(p, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestWebhookSecretStrength(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, n)) }
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"32 bytes", "whsec_" + b64(32), true},
		{"24 bytes", "whsec_" + b64(24), true},
		{"32 bytes unpadded", "whsec_" + strings.TrimRight(b64(32), "="), true},
		{"generate", "generate", true},
		{"23 bytes", "whsec_" + b64(23), false},
		{"1 byte", "whsec_YQ==", false},
		{"long but not base64", "whsec_" + strings.Repeat("A", 33), false},
		{"no prefix", b64(32), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf("- {id: a, name: A, webhooks: [{url: 'https://a.example/h', secret: 'whsec_%s'}, {url: 'https://a.example/h2', secret: '%s'}]}\n", b64(32), tc.secret)
			_, err := config.ParseConstituents([]byte(doc))
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "webhooks[1].secret") || strings.Contains(err.Error(), "webhooks[0]")):
				t.Errorf("error %v, want one naming webhooks[1].secret", err)
			case !tc.ok && strings.Contains(err.Error(), strings.TrimPrefix(tc.secret, "whsec_")):
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
	// Only the admin API can generate: a file stored directly refuses it.
	cs, err := config.ParseConstituents([]byte("- {id: a, name: A, webhooks: [{url: 'https://a.example/h', secret: generate}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := config.RefuseGenerate(cs); err == nil || !strings.Contains(err.Error(), "/webhooks/0/secret") {
		t.Errorf("RefuseGenerate = %v, want an error naming /webhooks/0/secret", err)
	}
}
