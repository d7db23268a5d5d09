package main

import (
	"context"

	"github.com/schakel/schakel/gateway/config"
)

// setupTAXII wires the TAXII 2.1 server and upstream TAXII polling (issue 4).
// Not built yet: the wiring point is here so the connector lands in its own file.
func setupTAXII(_ context.Context, _ *Gateway, _ *config.Config, _ *wiring) error { return nil }
