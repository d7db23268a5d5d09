package main

import (
	"context"

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

// setupWebhook adds the body formats a signed webhook source may declare
// besides canonical. Signed webhook ingest (POST /api/v1/ingest/{source})
// is part of the core API.
func setupWebhook(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	w.parsers["misp"] = parser(misp.Decode)
	w.parsers["stix"] = parser(stix.Decode)
	w.parsers["csaf"] = parser(csaf.Decode)
	return nil
}

// parser adapts a mapping's Decode to the webhook ingest: a body with
// problems in some parts is still ingested (the problems are logged by the
// pipeline's indicator checks); one that cannot be read at all is refused
// with the fields named.
func parser(decode func([]byte) ([]*gateway.Event, []gateway.FieldError, error)) httpapi.Parser {
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
