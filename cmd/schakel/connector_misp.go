package main

import (
	"context"

	"github.com/schakel/schakel/gateway/config"
)

// setupMISP wires the MISP server API, MISP feed, upstream MISP pull and the misp_push channel (issue 3).
// Not built yet: the wiring point is here so the connector lands in its own file.
func setupMISP(_ context.Context, _ *Gateway, _ *config.Config, _ *wiring) error { return nil }
