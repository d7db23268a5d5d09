package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

const testAdminKey = "ApiTestAdminKey0123456789abcdefghijklmno"

// api is a Server over a real (in-process) Redis with the core parts the
// gateway wires, driven through app.Test.
type api struct {
	t         *testing.T
	s         *Server
	st        *store.Store
	sourceKey string
	reg       *prometheus.Registry
}

func newAPI(t *testing.T, edit func(*Options)) *api {
	t.Helper()
	r := redistest.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	au := audit.New(r.Client, r.Prefix)
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	promReg := prometheus.NewRegistry()
	m := metrics.New(promReg)
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{MaxAttempts: 2, Logger: log})
	pl := pipeline.New(st, ob, au, reg, pipeline.Config{}, m, log)
	o := Options{Redis: r.Client, Store: st, Audit: au, Outbox: ob, Pipeline: pl, Registry: reg,
		Limiter: limit.New(r.Client, r.Prefix), Metrics: m, Gatherer: promReg, Log: log,
		AdminKeys: []string{testAdminKey}, Sources: []SourceConfig{{Name: "partner", Type: "api"}}}
	if edit != nil {
		edit(&o)
	}
	key, err := st.CreateKey(ctx, store.Scope{Role: store.RoleSource, Name: "partner"})
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, s: New(o), st: st, sourceKey: key, reg: promReg}
}

type apiResponse struct {
	status int
	body   string
	err    ErrorBody
}

func (a *api) do(method, path, key, body string) apiResponse {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := a.s.App().Test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := apiResponse{status: resp.StatusCode, body: string(data)}
	_ = json.NewDecoder(bytes.NewReader(data)).Decode(&out.err)
	return out
}

func TestListLimitIsChecked(t *testing.T) {
	a := newAPI(t, nil)
	for _, path := range []string{"/api/v1/events", "/api/v1/dead-letters"} {
		for _, v := range []string{"abc", "-1", "0", "1001", "99999999999999999999", "1.5"} {
			r := a.do("GET", path+"?limit="+v, testAdminKey, "")
			if r.status != http.StatusBadRequest || len(r.err.Details) != 1 || r.err.Details[0].Field != "limit" {
				t.Errorf("%s?limit=%s: %d %s, want 400 naming limit", path, v, r.status, r.body)
			}
		}
		for _, v := range []string{"", "?limit=1", "?limit=1000"} {
			if r := a.do("GET", path+v, testAdminKey, ""); r.status != http.StatusOK {
				t.Errorf("%s%s: %d %s, want 200", path, v, r.status, r.body)
			}
		}
	}
}

func TestDecodeErrorsNameNoGoTypes(t *testing.T) {
	a := newAPI(t, nil)
	tests := []struct {
		name, method, path, key, body string
		field                         string
	}{
		{"constituent not an object", "PUT", "/api/v1/constituents/acme", testAdminKey, `["acme"]`, ""},
		{"release recipients not a list", "POST", "/api/v1/held/x/release", testAdminKey, `{"recipients":"all"}`, "/recipients"},
		{"release recipient email not a string", "POST", "/api/v1/held/x/release", testAdminKey, `{"recipients":[{"email":5}]}`, "/recipients/email"},
		{"event with a leap second", "POST", "/api/v1/events", "", `{"kind":"intel","title":"t","source":{"name":"partner"},"created":"2026-12-31T23:59:60Z"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = a.sourceKey
			}
			r := a.do(tt.method, tt.path, key, tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			for _, bad := range []string{"Go ", "gateway.", "json:", "interface", "[]", "parsing time"} {
				if strings.Contains(r.body, bad) {
					t.Errorf("error names %q: %s", bad, r.body)
				}
			}
			if len(r.err.Details) != 1 || r.err.Details[0].Field != tt.field || r.err.Details[0].Message == "" {
				t.Errorf("details = %+v, want one naming %q", r.err.Details, tt.field)
			}
		})
	}
}

func TestPlainError(t *testing.T) {
	var v struct {
		Event struct {
			TLP gateway.TLP `json:"tlp"`
		} `json:"Event"`
	}
	err := json.Unmarshal([]byte(`{"Event":{"tlp":3}}`), &v)
	if got, want := PlainError(err), "/Event/tlp: expected a string, got number"; got != want {
		t.Errorf("PlainError = %q, want %q", got, want)
	}
}

func TestMetricsKey(t *testing.T) {
	const key = "metrics-scrape-key-0123456789"
	open := newAPI(t, nil)
	if r := open.do("GET", "/metrics", "", ""); r.status != http.StatusOK {
		t.Errorf("without metrics.key_file: %d, want 200", r.status)
	}
	a := newAPI(t, func(o *Options) { o.MetricsKey = key })
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", 401},
		{"wrong key", "Bearer wrong", 401},
		{"prefix of the key", "Bearer " + key[:10], 401},
		{"key without scheme", key, 401},
		{"basic", "Basic " + key, 401},
		{"admin key", "Bearer " + testAdminKey, 401},
		{"bearer", "Bearer " + key, 200},
		{"bearer lower-case", "bearer " + key, 200},
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := a.s.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 200 && !strings.Contains(string(body), "schakel_") {
			t.Errorf("%s: no metrics in the answer", tc.name)
		}
		if tc.want == 401 && (strings.Contains(string(body), "schakel_") || resp.Header.Get("WWW-Authenticate") == "") {
			t.Errorf("%s: 401 without a challenge, or with metrics", tc.name)
		}
	}
}

// TestMetricLabelsNameNoConstituent: a constituent key over the ingest
// limit (the TAXII inbox and MISP push-in apply it before the role check)
// is counted without its constituent id as a label.
func TestMetricLabelsNameNoConstituent(t *testing.T) {
	a := newAPI(t, func(o *Options) { o.IngestPerMinute = 1 })
	if _, err := a.st.PutConstituent(context.Background(), gateway.Constituent{ID: "gemeente-utrecht", Name: "Gemeente Utrecht"}); err != nil {
		t.Fatal(err)
	}
	key, err := a.st.CreateKey(context.Background(), store.Scope{Role: store.RoleConstituent, Name: "gemeente-utrecht"})
	if err != nil {
		t.Fatal(err)
	}
	a.s.Mount(func(app *fiber.App, auth *Auth) {
		app.Post("/inbox", auth.Require(nil, store.RoleSource, store.RoleConstituent), auth.IngestLimit(),
			func(c *fiber.Ctx) error { return c.SendStatus(http.StatusAccepted) })
	})
	statuses := []int{a.do("POST", "/inbox", key, "{}").status, a.do("POST", "/inbox", key, "{}").status}
	if statuses[1] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v, want the second over the limit", statuses)
	}
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "gemeente-utrecht") {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
				if mf.GetName() == "schakel_rejected_total" && l.GetValue() == "limit" {
					counted = true
				}
			}
		}
	}
	if !counted {
		t.Error("the refusal was not counted")
	}
}

func TestConstituentSecretsNeverEchoed(t *testing.T) {
	a := newAPI(t, nil)
	const mispKey = "MispPushKey0123456789abcdefghijklmnopqrs"
	const given = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	fingerprint := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:4])
	}

	// Weak secrets are refused, naming the webhook.
	for _, weak := range []string{"whsec_YQ==", "whsec_" + strings.Repeat("A", 33), "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23))} {
		r := a.do("PUT", "/api/v1/constituents/acme", testAdminKey,
			`{"name":"Acme","webhooks":[{"url":"https://acme.example/a","secret":"`+given+`"},{"url":"https://acme.example/b","secret":"`+weak+`"}]}`)
		if r.status != http.StatusBadRequest || len(r.err.Details) != 1 || r.err.Details[0].Field != "/webhooks/1/secret" {
			t.Errorf("secret %q: %d %s, want 400 naming /webhooks/1/secret", weak, r.status, r.body)
		}
	}

	// "generate" makes one; the PUT answer shows it, and only it.
	r := a.do("PUT", "/api/v1/constituents/acme", testAdminKey,
		`{"name":"Acme","webhooks":[{"url":"https://acme.example/a","secret":"`+given+`"},{"url":"https://acme.example/b","secret":"generate"}],"misp_push":{"url":"https://misp.acme.example","key":"`+mispKey+`"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	var put constituentView
	if err := json.Unmarshal([]byte(r.body), &put); err != nil {
		t.Fatal(err)
	}
	made := put.Webhooks[1].Secret.Value
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(made, "whsec_"))
	if !strings.HasPrefix(made, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("generated secret %q: %d bytes (%v), want whsec_ and 32 bytes", made, len(key), err)
	}
	if strings.Contains(r.body, given) || strings.Contains(r.body, mispKey) || put.Webhooks[0].Secret.Value != "" {
		t.Errorf("PUT answer echoes a secret that was sent: %s", r.body)
	}
	stored, err := a.st.Constituent(context.Background(), "acme")
	if err != nil || stored.Webhooks[0].Secret != given || stored.Webhooks[1].Secret != made || stored.MISPPush.Key != mispKey {
		t.Fatalf("stored %+v (%v), want the secrets kept", stored, err)
	}

	// GET shows whether a secret is set and its fingerprint, never the value.
	for _, path := range []string{"/api/v1/constituents/acme", "/api/v1/constituents"} {
		r := a.do("GET", path, testAdminKey, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, r.status)
		}
		for _, secret := range []string{given, made, mispKey, strings.TrimPrefix(made, "whsec_")} {
			if strings.Contains(r.body, secret) {
				t.Errorf("GET %s echoes a secret: %s", path, r.body)
			}
		}
		for _, want := range []string{
			`"secret":{"set":true,"fingerprint":"` + fingerprint(given) + `"}`,
			`"secret":{"set":true,"fingerprint":"` + fingerprint(made) + `"}`,
			`"key":{"set":true,"fingerprint":"` + fingerprint(mispKey) + `"}`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("GET %s lacks %s: %s", path, want, r.body)
			}
		}
	}
}

// A body declared as something other than JSON is refused with 415 and
// nothing is stored: the refusal used to be written and then overwritten by
// the handler carrying on.
func TestNonJSONContentTypeRefused(t *testing.T) {
	a := newAPI(t, nil)
	body := `{"kind":"advisory","title":"x","source":{"name":"partner"}}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "not a media type"} {
		req := httptest.NewRequest("POST", "/api/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+a.sourceKey)
		resp, err := a.s.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb ErrorBody
		_ = json.Unmarshal(data, &eb)
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(eb.Error, "Content-Type") {
			t.Errorf("Content-Type %q: %d %s, want 415 naming Content-Type", ct, resp.StatusCode, data)
		}
	}
	if r := a.do("GET", "/api/v1/events", testAdminKey, ""); strings.Contains(r.body, `"title":"x"`) {
		t.Errorf("a refused body was stored: %s", r.body)
	}
}
