package schemas

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

func decode(t testing.TB, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFastPathCompiles: every schema gets a fast path; a keyword it does
// not model makes compilation fail here rather than silently slow.
func TestFastPathCompiles(t *testing.T) {
	st := state()
	for _, n := range Names {
		if err := st.fastErr[n]; err != nil || st.fast[n] == nil {
			t.Errorf("%s: no fast path: %v", n, err)
		}
	}
}

// TestFastPathAgrees runs documents through both validators. The fast
// path must accept ordinary valid documents (or it saves nothing) and must
// never call valid what the full validator rejects, nor the reverse.
func TestFastPathAgrees(t *testing.T) {
	arch, err := os.ReadFile("testdata/event-architecture.json")
	if err != nil {
		t.Fatal(err)
	}
	st := state()
	for _, tc := range []struct {
		name Name
		doc  string
		want verdict
	}{
		{Event, string(arch), valid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"tlp":"tlp:amber+strict","x-a":1}`, valid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"indicators":[{"type":"url","value":"v","port":443.0}]}`, unsure},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"vulnerabilities":[{"cve":"c","cvss":10.0000000000000001}]}`, unsure},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"vulnerabilities":[{"cve":"c","cvss":10.000000000001}]}`, invalid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"tlpp":"x"}`, invalid},
		{Event, `{"kind":"intel","title":"","source":{"name":"s"}}`, invalid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"id":"indicator--8d5c0b9e"}`, valid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"id":"a b"}`, invalid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s","ref":"` + strings.Repeat("r", 257) + `"}}`, invalid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"labels":["` + strings.Repeat("l", 129) + `"]}`, invalid},
		{Event, `{"kind":"intel","title":"t","source":{"name":"s"},"created":"yesterday"}`, invalid},
		{Constituent, `{"id":"a","name":"A","assets":{"asns":[4294967295]},"contacts":[{"email":"a@b.example","red":true}],"webhooks":[{"url":"https://h.example/x","secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}`, valid},
		{Constituent, `{"id":"a","name":"A","assets":{"asns":[4294967296]}}`, invalid},
		{Config, `{"sources":[{"name":"h","type":"webhook","secret_file":"f"},{"name":"m","type":"misp"}],"x-a":{}}`, valid},
		{Config, `{"sources":[{"name":"h","type":"webhook"}]}`, invalid},
		{Config, `{"sources":[{"name":"h","type":"webhook","secret":"s","secret_file":"f"}]}`, invalid},
	} {
		v := decode(t, []byte(tc.doc))
		got := st.fast[tc.name](v)
		full := st.schemas[tc.name].Validate(v) == nil
		if got != tc.want {
			t.Errorf("%s %s: fast path says %d, want %d", tc.name, tc.doc, got, tc.want)
		}
		if (got == valid && !full) || (got == invalid && full) {
			t.Errorf("%s %s: fast path %d disagrees with full validator (valid=%v)", tc.name, tc.doc, got, full)
		}
	}
}

// FuzzFastPath holds the fast path to the full validator's verdict.
func FuzzFastPath(f *testing.F) {
	arch, err := os.ReadFile("testdata/event-architecture.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(arch)
	f.Add([]byte(`{"id":"a","name":"A","assets":{"asns":[1e0,2.5]},"limits":{"email_per_hour":0}}`))
	f.Add([]byte(`{"sources":[{"name":"m","type":"misp","url":"https://m.example","key_file":"k"}],"tlp":{"default":"amber strict"}}`))
	st := state()
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil || len(checkValues(v, "", nil)) > 0 {
			return
		}
		for _, n := range Names {
			got := st.fast[n](v)
			full := st.schemas[n].Validate(v) == nil
			if (got == valid && !full) || (got == invalid && full) {
				t.Fatalf("%s: fast path %d, full validator valid=%v for %s", n, got, full, data)
			}
		}
	})
}

// TestFastPathMutations compares both validators on many random variations
// of valid documents, which reach far more schema branches than random
// bytes do.
func TestFastPathMutations(t *testing.T) {
	arch, err := os.ReadFile("testdata/event-architecture.json")
	if err != nil {
		t.Fatal(err)
	}
	bases := map[Name][]byte{
		Event:       arch,
		Constituent: []byte(`{"id":"org-a","name":"A","sectors":["x"],"assets":{"asns":[64500],"prefixes":["192.0.2.0/24"],"domains":["a.example"]},"contacts":[{"email":"a@a.example","name":"n","red":true}],"webhooks":[{"url":"https://a.example/h","secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}],"misp_push":{"url":"https://m.example","key":"` + key40 + `"},"subscriptions":{"min_priority":"high","kinds":["intel"],"labels":["l"]},"limits":{"webhook_per_minute":1,"email_per_hour":2,"misp_push_per_minute":3}}`),
		Config:      []byte(`{"listen":"127.0.0.1:8080","public_url":"https://s.example","redis":{"url":"","prefix":"p"},"admin":{"keys_file":"k","keys":["` + key40 + `"]},"tlp":{"default":"AMBER"},"limits":{"ingest_per_minute":5},"http":{"body_limit":100,"read_timeout":"5s"},"sources":[{"name":"h","type":"webhook","secret_file":"f"},{"name":"m","type":"misp","url":"https://m.example","key":"` + key40 + `","interval":"5m"},{"name":"t","type":"taxii","url":"https://t.example","collection":"c","password_file":"p"},{"name":"c","type":"csv","path":"/x"},{"name":"i","type":"imap","address":"i.example:993","username":"u","tls":"tls"},{"name":"s","type":"smtp","listen":":25","recipients":["a@b.example"]}],"channels":{"email":{"relay":"r.example:25","from":"f@s.example","password":"x"},"webhook":{"timeout":"1s","max_attempts":3}},"mailing_lists":[{"address":"l@s.example","audience":"public"}],"constituents_file":"c.yaml","shutdown_timeout":"1m"}`),
	}
	st := state()
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[verdict]int{}
	for n, base := range bases {
		for i := range 2000 {
			v := decode(t, base)
			for range 1 + rng.IntN(3) {
				v = mutate(rng, v, 0)
			}
			got := st.fast[n](v)
			counts[got]++
			full := st.schemas[n].Validate(v) == nil
			if (got == valid && !full) || (got == invalid && full) {
				doc, _ := json.Marshal(v)
				t.Fatalf("%s mutation %d: fast path %d, full validator valid=%v for %s", n, i, got, full, doc)
			}
		}
	}
	t.Logf("verdicts: valid %d, invalid %d, unsure %d", counts[valid], counts[invalid], counts[unsure])
	if counts[valid] == 0 || counts[invalid] == 0 {
		t.Errorf("mutations did not exercise both outcomes: %v", counts)
	}
}

var key40 = "abcdefghijABCDEFGHIJ0123456789abcdefghij"

var samples = []any{
	nil, true, false, "", "x", "AMBER", "tlp:red", "Amber Strict", "purple", "2026-11-20T09:14:33Z", "2026-11-20",
	"https://a.example/x", "ftp://a.example", "a@b.example", "not-mail", "whsec_YQ==", "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "whsec_", key40, key40[:39],
	"127.0.0.1:80", "localhost", "5m", "0s", "5 min", "webhook", "misp", "taxii", "csaf", "csv", "imap", "smtp", "api",
	"ipv4", "ip", "high", "urgent", "public", "community", "none", "tls", "org-a", "Org A", "x-y",
	json.Number("0"), json.Number("-1"), json.Number("1"), json.Number("1.5"), json.Number("10"), json.Number("10.5"),
	json.Number("65535"), json.Number("65536"), json.Number("1e2"), json.Number("4294967295"), json.Number("4294967296"),
	json.Number("1.0"), json.Number("-0"), json.Number("1000000001"), json.Number("1073741825"),
	map[string]any{}, []any{}, []any{"x"}, map[string]any{"name": "n"},
}

var memberNames = []string{
	"id", "kind", "title", "tlp", "tlpp", "source", "name", "type", "value", "port", "asn", "created", "x-note",
	"secret", "secret_file", "key", "key_file", "password", "password_file", "url", "collection", "path",
	"address", "username", "listen", "interval", "email", "red", "cvss", "cve", "audience", "default", "keys",
}

// mutate changes one random spot of v and returns the result.
func mutate(rng *rand.Rand, v any, depth int) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) > 0 && depth < 6 && rng.IntN(3) > 0 {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			k := keys[rng.IntN(len(keys))]
			switch rng.IntN(4) {
			case 0:
				delete(x, k)
			case 1:
				x[k] = sample(rng)
			default:
				x[k] = mutate(rng, x[k], depth+1)
			}
			return x
		}
		x[memberNames[rng.IntN(len(memberNames))]] = sample(rng)
		return x
	case []any:
		if len(x) > 0 && rng.IntN(3) > 0 {
			i := rng.IntN(len(x))
			if rng.IntN(2) == 0 {
				x[i] = mutate(rng, x[i], depth+1)
			} else {
				x[i] = sample(rng)
			}
			return x
		}
		return append(x, sample(rng))
	}
	return sample(rng)
}

// sample returns a random value, copying maps and slices so mutations never
// reach the shared pool.
func sample(rng *rand.Rand) any {
	switch x := samples[rng.IntN(len(samples))].(type) {
	case map[string]any:
		out := map[string]any{}
		for k, v := range x {
			out[k] = v
		}
		return out
	case []any:
		return slices.Clone(x)
	default:
		return x
	}
}
