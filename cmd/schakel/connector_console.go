package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/console"
	"github.com/schakel/schakel/gateway/httpapi"
)

// setupConsole mounts the operator console at /console/.
func setupConsole(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	var sources []console.Source
	for _, s := range cfg.Sources {
		sources = append(sources, console.Source{Name: s.Name, Type: s.Type})
	}
	c, err := console.New(console.Options{Sources: sources,
		Redis: g.rdb, Prefix: cfg.Redis.Prefix, Store: g.Store, Audit: g.Audit, Outbox: g.Outbox,
		Releaser: g.Pipeline, Push: g.Pipeline.Push(), Destinations: g.Egress, Registry: g.Registry, Limiter: g.Limiter, AdminKeys: cfg.Admin.Keys,
		Secure: strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://"), Log: g.log.With("component", "console"),
	})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	w.mounts = append(w.mounts, func(app *fiber.App, _ *httpapi.Auth) { c.Mount(app) })
	return nil
}
