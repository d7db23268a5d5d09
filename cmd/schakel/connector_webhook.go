package main

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/mappings/csaf"
	"github.com/schakel/schakel/mappings/misp"
	"github.com/schakel/schakel/mappings/stix"
)

// webhookChannel adds the webhook channel (Standard Webhooks) to SOCs.
func webhookChannel(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	sender := webhook.NewSender(webhook.SenderOptions{Guard: g.Egress.Guard, Timeout: cfg.Channels.Webhook.Timeout.Duration, UserAgent: "Schakel/" + version})
	w.sinks[gateway.ChannelWebhook] = webhook.NewSink(sender)
	return nil
}

// setupWebhook adds signed-webhook ingest (POST /api/v1/ingest/{source}) for
// sources of type webhook, with the body formats such a source may declare
// besides canonical.
func setupWebhook(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	var sources []webhook.IngestSource
	for _, s := range cfg.Sources {
		if s.Type != "webhook" {
			continue
		}
		w.claim(s.Name)
		sources = append(sources, webhook.IngestSource{Name: s.Name, DefaultTLP: s.DefaultTLP, Own: s.Own, Format: s.Format, Secret: s.Secret})
	}
	parsers := map[string]webhook.Parser{
		"misp": parser(misp.Decode),
		"stix": parser(stix.Decode),
		"csaf": parser(csaf.Decode),
	}
	ingest := webhook.NewIngest(webhook.IngestOptions{
		Ingest: g.Pipeline, Sources: sources, Parsers: parsers, Metrics: g.Metrics, BodyLimit: cfg.HTTP.BodyLimit,
		Redis: g.rdb, Prefix: cfg.Redis.Prefix, Limiter: g.leasing, IngestPerMinute: cfg.Limits.IngestPerMinute, Log: g.log,
	})
	w.mounts = append(w.mounts, func(app *fiber.App, auth *httpapi.Auth) { ingest.Mount(app, auth) })
	return nil
}

// parser adapts a mapping's Decode to the webhook ingest: a body with
// problems in some parts is still ingested (the problems are logged by the
// pipeline's indicator checks); one that cannot be read at all is refused
// with the fields named.
func parser(decode func([]byte) ([]*gateway.Event, []gateway.FieldError, error)) webhook.Parser {
	return func(body []byte) ([]*gateway.Event, error) {
		evs, problems, err := decode(body)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			if len(problems) == 0 {
				problems = []gateway.FieldError{{Field: "", Message: "the body holds no event"}}
			}
			return nil, &gateway.ValidationError{Fields: problems}
		}
		return evs, nil
	}
}
