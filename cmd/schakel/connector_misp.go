package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/schakel/schakel/connectors/misp"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/httpapi"
)

// mispChannel adds the misp_push channel.
func mispChannel(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	ua := "Schakel/" + version + " (MISP-compatible)"
	// A MISP takes its time to save 10,000 attributes; keep outbox.reclaim_idle
	// above this so another replica does not take the push over meanwhile.
	sink, err := misp.NewSink(misp.SinkOptions{Org: mispOrg(cfg), UserAgent: ua, HTTP: g.Egress.Client(time.Minute), Log: g.log})
	if err != nil {
		return fmt.Errorf("misp: %w", err)
	}
	w.sinks[gateway.ChannelMISPPush] = sink
	return nil
}

// setupMISP wires the MISP server API and feed and the upstream MISP
// pollers (sources of type misp with a url). Every type: misp source is
// claimed: with a url it is polled; without, its keys may only push in.
func setupMISP(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	org := mispOrg(cfg)
	ua := "Schakel/" + version + " (MISP-compatible)"
	var sources []misp.Source
	for i, s := range cfg.Sources {
		if s.Type != "misp" {
			continue
		}
		w.claim(s.Name)
		sources = append(sources, misp.Source{Name: s.Name, DefaultTLP: s.DefaultTLP, Own: s.Own})
		if s.URL == "" {
			continue
		}
		// Large upstream events take a while to serve; a pull is not urgent.
		client, err := misp.NewClient(s.URL, s.Key, misp.ClientOptions{UserAgent: ua, HTTP: g.Egress.Client(5 * time.Minute)})
		if err != nil {
			return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
		}
		p, err := misp.NewPoller(misp.PollerOptions{
			Source: s.Name, DefaultTLP: s.DefaultTLP, Own: s.Own, Client: client, Interval: s.Interval.Duration,
			Tags: s.Tags, Cursors: g.Store, Ingest: g.Pipeline, Redis: g.rdb, Prefix: cfg.Redis.Prefix, Log: g.log,
		})
		if err != nil {
			return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
		}
		w.run("source "+s.Name, p)
	}

	srv, err := misp.NewServer(misp.Options{
		Views: g.Views, Store: g.Store, Ingest: g.Pipeline, Redis: g.rdb, Prefix: cfg.Redis.Prefix,
		Org: org, Sources: sources, BodyLimit: 8 * cfg.HTTP.BodyLimit, Log: g.log,
		Constituent: func(id string) (*gateway.Constituent, bool) { return g.Registry.Current().Get(id) },
	})
	if err != nil {
		return fmt.Errorf("misp: %w", err)
	}
	w.mounts = append(w.mounts, func(app *fiber.App, auth *httpapi.Auth) { srv.Mount(app, auth) })
	return nil
}

// mispOrg is Schakel's MISP identity: misp.org_name / org_uuid, else the
// public_url's host and a UUIDv5 of public_url.
func mispOrg(cfg *config.Config) misp.Org {
	org := misp.Org{Name: cfg.MISP.OrgName, UUID: strings.ToLower(cfg.MISP.OrgUUID)}
	base := cfg.PublicURL
	if base == "" {
		base = "schakel"
	}
	if org.Name == "" {
		org.Name = "Schakel"
		if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
			org.Name = u.Hostname()
		}
	}
	if org.UUID == "" {
		org.UUID = uuid.NewSHA1(uuid.NameSpaceURL, []byte(base)).String()
	}
	return org
}
