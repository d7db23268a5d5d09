package main

import (
	"context"

	"github.com/schakel/schakel/gateway/config"
)

// setupMail wires IMAP and SMTP intake and the e-mail channel (issue 5).
// Not built yet: the wiring point is here so the connector lands in its own file.
func setupMail(_ context.Context, _ *Gateway, _ *config.Config, _ *wiring) error { return nil }
