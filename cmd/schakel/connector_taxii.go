package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schakel/schakel/connectors/taxii"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

// setupTAXII wires the TAXII 2.1 server (/taxii2/: collections public,
// community, constituent and the inbox) and a poller per source of type
// taxii. A taxii source authenticates with username and
// password (HTTP Basic) or, without them, with key as a bearer token.
func setupTAXII(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	// Any configured source's key may post to the inbox; its events are
	// ingested as that source, with its default TLP.
	sources := make(map[string]gateway.Source, len(cfg.Sources))
	for _, s := range cfg.Sources {
		sources[s.Name] = gateway.Source{Name: s.Name, DefaultTLP: s.DefaultTLP, Format: "stix", Own: s.Own}
	}
	srv := taxii.NewServer(taxii.Options{
		Views: g.Views, Events: g.Store, Ingest: g.Pipeline, Redis: g.rdb, Prefix: cfg.Redis.Prefix,
		Log: g.log, PublicURL: cfg.PublicURL, MaxContentLength: cfg.HTTP.BodyLimit, Sources: sources,
	})
	w.mounts = append(w.mounts, srv.MountFunc())

	// One page of an upstream collection can be large (1,000 objects).
	hc := g.Egress.Client(2 * time.Minute)
	for i, s := range cfg.Sources {
		if s.Type != "taxii" {
			continue
		}
		// Refuse a bad url or collection at start-up, not at the first poll.
		if _, err := taxii.NewClient(s.URL, s.Collection, s.Username, s.Password, hc, ""); err != nil {
			return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
		}
		p, err := taxii.NewPoller(taxii.PollerOptions{
			Source: gateway.Source{Name: s.Name, DefaultTLP: s.DefaultTLP, Format: "stix", Own: s.Own},
			URL:    s.URL, Collection: s.Collection, Username: s.Username, Password: s.Password, Token: s.Key,
			Interval: s.Interval.Duration, Ingest: g.Pipeline, Cursors: g.Store, HTTP: hc,
			UserAgent: "Schakel/" + version, Log: g.log,
		})
		if err != nil {
			return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
		}
		w.claim(s.Name)
		w.run("source "+s.Name, p)
	}
	return nil
}
