package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook/webhooktest"
	"github.com/schakel/schakel/gateway/redistest"
)

// A webhook source declared with format: misp takes a MISP event as its
// body: it is mapped, stored and routed like any other (here TLP:WHITE →
// CLEAR, so both constituents receive it).
func TestSignedWebhookMISPFormat(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	dir := t.TempDir()
	a, b := webhooktest.New(t, ""), webhooktest.New(t, "")
	path := harnessConfig(t, dir, r.URL, r.Prefix, "127.0.0.1:0", a, b, harnessOpts{})
	data, _ := os.ReadFile(path)
	data = bytes.Replace(data, []byte("format: canonical"), []byte("format: misp"), 1)
	_ = os.WriteFile(path, data, 0o600)
	h := startFromConfig(t, path)
	body, err := os.ReadFile(filepath.Join("testdata", "webhook", "misp-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.base+"/api/v1/ingest/partner-hook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	signWebhook(t, req, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_misp", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := a.WaitFor(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := a.Received()[0].Event
	if got.ID != "57c4445b-c548-4654-af0b-4be3950d210f" || got.TLP != "CLEAR" || got.Source.Format != "misp" || len(got.Indicators) == 0 {
		t.Fatalf("delivered event: id %s tlp %s format %s indicators %d", got.ID, got.TLP, got.Source.Format, len(got.Indicators))
	}
}
