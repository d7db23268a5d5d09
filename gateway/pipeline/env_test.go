package pipeline_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/store"
)

// testWebhookSecret is a valid Standard Webhooks secret (≥ 24 bytes).
const testWebhookSecret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"

// pipelineEnv is a pipeline over a real (or in-process) Redis with cs
// registered, push channels ch, and an outbox that records what it gets.
type pipelineEnv struct {
	p   *pipeline.Pipeline
	st  *store.Store
	ob  *recordingOutbox
	reg *registry.Registry
}

func newPipelineEnv(t *testing.T, cs []gateway.Constituent, ch ...gateway.Channel) pipelineEnv {
	t.Helper()
	r := redistest.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := store.New(r.Client, r.Prefix)
	if err := st.PutConstituents(ctx, cs); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	push := map[gateway.Channel]bool{}
	for _, c := range ch {
		push[c] = true
	}
	ob := &recordingOutbox{Outbox: outbox.New(r.Client, r.Prefix, outbox.Options{Logger: log})}
	p := pipeline.New(st, ob, audit.New(r.Client, r.Prefix), reg, pipeline.Config{Push: push}, metrics.New(prometheus.NewRegistry()), log)
	return pipelineEnv{p: p, st: st, ob: ob, reg: reg}
}
