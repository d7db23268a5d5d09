package main

import (
	"context"
	"fmt"

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
	// workers run until shutdown, started once everything is wired
	// (pollers, mailbox readers, SMTP listeners). g.Pipeline is set by then.
	workers []func(ctx context.Context)
	// claimed names the configured sources a connector took charge of;
	// a source nobody claims is a configuration error, never ignored.
	claimed map[string]bool
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

// setupFunc wires one connector.
type setupFunc func(ctx context.Context, g *Gateway, cfg *config.Config, w *wiring) error

// connectors lists every connector in the binary, in wiring order.
var connectors = []setupFunc{
	setupWebhook,
	setupMISP,
	setupTAXII,
	setupMail,
	setupFeeds,
	setupConsole,
}
