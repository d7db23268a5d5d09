package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

const (
	hookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// core is the gateway's HTTP API over a real pipeline (miniredis), without
// signed-webhook ingest: each test mounts that itself.
type core struct {
	api *httpapi.Server
	pl  *pipeline.Pipeline
	m   *metrics.Metrics
	r   *redistest.Redis
	log *slog.Logger
}

func newCore(t *testing.T) core {
	t.Helper()
	ctx := context.Background()
	r := redistest.New(t)
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	au := audit.New(r.Client, r.Prefix)
	ob := outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})
	pl := pipeline.New(st, ob, au, reg, pipeline.Config{DefaultTLP: gateway.TLPAmber}, m, log)
	api := httpapi.New(httpapi.Options{
		Redis: r.Client, Store: st, Audit: au, Outbox: ob, Pipeline: pl, Registry: reg, Metrics: m, Log: log,
		AdminKeys: []string{"AdminKey0123456789abcdefghijklmnopqrstuv"},
	})
	return core{api: api, pl: pl, m: m, r: r, log: log}
}

// ingestApp is the gateway's HTTP API over a real pipeline (miniredis) with
// signed-webhook ingest mounted the way cmd/schakel mounts it.
func ingestApp(t *testing.T) *httpapi.Server {
	t.Helper()
	core := newCore(t)
	api, pl, m := core.api, core.pl, core.m
	twoEvents := func(body []byte) ([]*gateway.Event, error) {
		switch string(body) {
		case `{"unreadable":true}`:
			return nil, errors.New("not a document")
		case `{"empty":true}`:
			return nil, &gateway.ValidationError{Fields: []gateway.FieldError{{Field: "/objects", Message: "no event"}}}
		}
		return []*gateway.Event{
			{ID: "11111111-0000-4000-8000-000000000001", Kind: gateway.KindIntel, Title: "one"},
			{ID: "11111111-0000-4000-8000-000000000002", Kind: gateway.KindIntel, Title: "two"},
		}, nil
	}
	in := webhook.NewIngest(webhook.IngestOptions{
		Ingest: pl, Metrics: m, BodyLimit: 1 << 20,
		Sources: []webhook.IngestSource{
			{Name: "hook", Secret: hookSecret, DefaultTLP: gateway.TLPGreen},
			{Name: "hook-misp", Secret: hookSecret, Format: "misp"},
			{Name: "hook-xml", Secret: hookSecret, Format: "xml"},
		},
		Parsers: map[string]webhook.Parser{"misp": twoEvents},
	})
	api.Mount(in.Mount)
	return api
}

func canonical(id string) string {
	return `{"id":"` + id + `","kind":"intel","title":"t","tlp":"GREEN","source":{"name":"hook"},` +
		`"created":"2026-11-20T09:00:00Z","modified":"2026-11-20T09:00:00Z"}`
}

func TestIngestSignedWebhook(t *testing.T) {
	api := ingestApp(t)
	const id = "22222222-0000-4000-8000-000000000001"
	cases := []struct {
		name, path, secret, ctype, body string
		wantStatus                      int
		wantBody                        string // substring of the response
	}{
		{"canonical", "/api/v1/ingest/hook", hookSecret, "application/json", canonical(id), 202, `"status":"accepted"`},
		{"same again is a duplicate", "/api/v1/ingest/hook", hookSecret, "application/json", canonical(id), 200, `"status":"duplicate"`},
		{"Schakel's own envelope", "/api/v1/ingest/hook", hookSecret, "", `{"type":"event.published","event":` +
			canonical("22222222-0000-4000-8000-000000000002") + `}`, 202, `"id":"22222222-0000-4000-8000-000000000002"`},
		{"path in other case", "/API/V1/Ingest/hook", hookSecret, "", canonical("22222222-0000-4000-8000-000000000003"), 202, `"status":"accepted"`},
		{"wrong secret", "/api/v1/ingest/hook", otherSecret, "", canonical(id), 401, `{"error":"webhook signature: webhook-signature: no matching v1 signature"}`},
		{"unknown source", "/api/v1/ingest/nope", hookSecret, "", canonical(id), 404, `{"error":"no webhook source named nope"}`},
		{"invalid event", "/api/v1/ingest/hook", hookSecret, "", `{"kind":"intel"}`, 400, `"error":"invalid input","details":[`},
		{"format without parser", "/api/v1/ingest/hook-xml", hookSecret, "", `{}`, 415, `{"error":"source format xml is not supported by this build"}`},
		{"parsed format", "/api/v1/ingest/hook-misp", hookSecret, "", `{}`, 202, `"events":[{"id":"11111111-0000-4000-8000-000000000001"`},
		{"parser cannot read", "/api/v1/ingest/hook-misp", hookSecret, "", `{"unreadable":true}`, 400, `{"error":"body: not a document"}`},
		{"parser names fields", "/api/v1/ingest/hook-misp", hookSecret, "", `{"empty":true}`, 400, `"details":[{"field":"/objects","message":"no event"}]`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			now := time.Now()
			msgID := "msg_" + strconv.Itoa(i)
			sig, err := webhook.Sign(c.secret, msgID, now, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(webhook.HeaderID, msgID)
			req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			req.Header.Set(webhook.HeaderSignature, sig)
			resp, err := api.App().Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.wantStatus || !strings.Contains(string(body), c.wantBody) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, body, c.wantStatus, c.wantBody)
			}
			if !json.Valid(body) {
				t.Fatalf("response is not JSON: %s", body)
			}
		})
	}
}

// Mounting ingest under /api/v1 must not open the admin API: every other
// path there still asks for an admin key.
func TestIngestLeavesAdminAPIGuarded(t *testing.T) {
	api := ingestApp(t)
	for _, target := range []string{
		"/api/v1/constituents/x/keys", "/api/v1/sources/hook/keys", "/api/v1/ingest/hook/keys", "/api/v1/ingest/", "/api/v1/unknown",
	} {
		resp, err := api.App().Test(httptest.NewRequest(http.MethodPost, target, strings.NewReader("{}")), -1)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a key: %d, want 401", target, resp.StatusCode)
		}
	}
	resp, err := api.App().Test(httptest.NewRequest(http.MethodGet, "/api/v1/ingest/hook", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/ingest/hook without a key: %d, want 401", resp.StatusCode)
	}
}
