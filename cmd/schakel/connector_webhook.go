package main

import (
	"context"

	"github.com/schakel/schakel/connectors/webhook"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

// setupWebhook adds the webhook channel (Standard Webhooks) to SOCs.
// Signed webhook ingest (POST /api/v1/ingest/{source}) is part of the core API.
func setupWebhook(_ context.Context, _ *Gateway, cfg *config.Config, w *wiring) error {
	sender := webhook.NewSender(webhook.SenderOptions{Timeout: cfg.Channels.Webhook.Timeout.Duration, UserAgent: "Schakel/" + version})
	w.sinks[gateway.ChannelWebhook] = webhook.NewSink(sender)
	return nil
}
