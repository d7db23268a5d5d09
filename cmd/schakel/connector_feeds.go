package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schakel/schakel/connectors/csaf"
	"github.com/schakel/schakel/connectors/csv"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/policy"
)

// setupFeeds wires the CSAF provider sources and the CSV feed sources:
// each configured source is checked now, so a bad url, path or
// column map stops start-up, and polled by a worker once the gateway runs.
func setupFeeds(_ context.Context, g *Gateway, cfg *config.Config, w *wiring) error {
	for i, s := range cfg.Sources {
		switch s.Type {
		case "csaf":
			src, err := csaf.NewSource(csaf.Options{
				Name: s.Name, URL: s.URL, DefaultTLP: s.DefaultTLP, Own: s.Own, Interval: s.Interval.Duration,
				UserAgent: "Schakel/" + version, Log: g.log, Metrics: g.Metrics, Client: g.Egress.Client(60 * time.Second),
			}, g.Pipeline, g.Store, g.Audit)
			if err != nil {
				return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
			}
			w.run("source "+s.Name, src)
			w.claim(s.Name)
		case "csv":
			profile, err := csv.ProfileFor(s.Profile, s.Columns)
			if err != nil {
				return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
			}
			src, err := csv.NewSource(csv.Options{
				Name: s.Name, Path: s.Path, URL: s.URL, Profile: profile, DefaultTLP: s.DefaultTLP, Own: s.Own,
				Interval: s.Interval.Duration, UserAgent: "Schakel/" + version, Log: g.log, Metrics: g.Metrics,
				Client: g.Egress.Client(5 * time.Minute),
			}, g.Pipeline, g.Store, g.Audit, func() policy.Owners { return g.Registry.Current() })
			if err != nil {
				return fmt.Errorf("sources[%d] (%s): %w", i, s.Name, err)
			}
			w.run("source "+s.Name, src)
			w.claim(s.Name)
		}
	}
	return nil
}
