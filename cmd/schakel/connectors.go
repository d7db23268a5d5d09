package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/dispatch"
	"github.com/schakel/schakel/gateway/httpapi"
)

// wiring collects what the connectors add to the core. Connectors register
// by explicit calls from this file (no init side effects): each setup
// function reads its part of the configuration and fills in the wiring.
type wiring struct {
	// sinks are push channels; routing creates deliveries only for these.
	sinks map[gateway.Channel]dispatch.Sink
	// mounts add HTTP routes (pull views, push-in endpoints) to the one app.
	mounts []func(app *fiber.App, auth *httpapi.Auth)
	// runners work until shutdown, started once everything is wired
	// (pollers, mailbox readers, SMTP listeners).
	runners []namedRunner
	// claimed names the configured sources a connector took charge of;
	// a source nobody claims is a configuration error, never ignored.
	claimed map[string]bool
	// cleanup releases what the connectors provisioned, last first.
	cleanup *cleanup
}

type namedRunner struct {
	name string
	gateway.Runner
}

// run adds a part to start once everything is wired. A part that holds
// resources (io.Closer) is closed at shutdown, or at once when a later step
// of the start-up fails.
func (w *wiring) run(name string, r gateway.Runner) {
	w.runners = append(w.runners, namedRunner{name, r})
	if c, ok := r.(io.Closer); ok {
		w.cleanup.push(name, c.Close)
	}
}

// claim records that a connector runs source name.
func (w *wiring) claim(name string) {
	if w.claimed == nil {
		w.claimed = map[string]bool{}
	}
	w.claimed[name] = true
}

// unclaimed returns an error naming the first configured source that no
// connector runs.
func (w *wiring) unclaimed(cfg *config.Config) error {
	for i, s := range cfg.Sources {
		if s.Type == "api" || w.claimed[s.Name] {
			continue // api sources are served by the core API
		}
		return fmt.Errorf("sources[%d] (%s): type %s is not supported by this build yet", i, s.Name, s.Type)
	}
	return nil
}

// setupFunc wires one phase of one connector.
type setupFunc func(ctx context.Context, g *Gateway, cfg *config.Config, w *wiring) error

// connector is wired in two phases. channels adds its push channels
// (sinks): the pipeline is built from them, since routing creates
// deliveries only for channels that have a sink. sources then adds its
// sources, routes and runners, which are handed g.Pipeline, set by then.
type connector struct {
	channels setupFunc // nil: no push channel
	sources  setupFunc // nil: no source, route or runner
}

// connectors lists every connector in the binary, in wiring order.
var connectors = []connector{
	{channels: webhookChannel, sources: setupWebhook},
	{channels: mispChannel, sources: setupMISP},
	{sources: setupTAXII},
	{channels: emailChannel, sources: setupMail},
	{sources: setupFeeds},
	{sources: setupConsole},
}
