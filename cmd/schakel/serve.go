package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/audit"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/dispatch"
	"github.com/schakel/schakel/gateway/egress"
	"github.com/schakel/schakel/gateway/httpapi"
	"github.com/schakel/schakel/gateway/limit"
	"github.com/schakel/schakel/gateway/metrics"
	"github.com/schakel/schakel/gateway/outbox"
	"github.com/schakel/schakel/gateway/pipeline"
	"github.com/schakel/schakel/gateway/redisconn"
	"github.com/schakel/schakel/gateway/registry"
	"github.com/schakel/schakel/gateway/retention"
	"github.com/schakel/schakel/gateway/store"
	"github.com/schakel/schakel/gateway/views"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "schakel.yaml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := listen(cfg)
	if err != nil {
		g.Close()
		return err
	}
	log.Info("schakel serving", "listen", ln.Addr().String(), "version", version, "embedded_redis", g.embedded != nil, "tls", cfg.TLS.CertFile != "")
	return g.Serve(ctx, ln, cfg.ShutdownTimeout.Duration)
}

// Gateway is one running gateway process: every part wired together.
type Gateway struct {
	log      *slog.Logger
	rdb      redis.UniversalClient
	embedded *miniredis.Miniredis
	Store    *store.Store
	Audit    *audit.Log
	Outbox   *outbox.Outbox
	Pipeline *pipeline.Pipeline
	Registry *registry.Registry
	Views    *views.Views
	HTTP     *httpapi.Server
	Metrics  *metrics.Metrics
	Limiter  *limit.Limiter
	// leasing is the ingest limiter the HTTP API applies per key; webhook
	// ingest applies it per source.
	leasing *limit.Leasing
	// Egress judges every outbound connection (sources, webhooks, pushes).
	Egress *egress.Policy

	workers sync.WaitGroup
	// cleanup releases what start provisioned (Redis, listeners, relay
	// sessions, the background work), last first.
	cleanup cleanup
}

// redisPoolSize covers the HTTP handlers and the delivery workers that each
// hold a connection for a round trip; go-redis's default (10 per CPU) makes
// them queue for connections on small machines.
const redisPoolSize = 256

// start wires a gateway and starts its background workers (not the listener).
// When any step fails, what the earlier steps provisioned is released.
func start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Gateway, err error) {
	g := &Gateway{log: log}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	pol := cfg.Egress.Policy()
	g.Egress = pol
	url := cfg.Redis.URL
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		g.embedded = m
		g.cleanup.push("embedded redis", func() error { m.Close(); return nil })
		log.Warn("redis.url is empty: using an embedded in-memory Redis; state is NOT durable and is lost on exit", "addr", m.Addr())
		url = "redis://" + m.Addr()
	}
	rdb, err := redisconn.Open(ctx, url, redisPoolSize)
	if err != nil {
		return nil, err
	}
	g.rdb = rdb
	g.cleanup.push("redis", rdb.Close)
	prefix := cfg.Redis.Prefix
	g.Store = store.New(g.rdb, prefix)
	g.Audit = audit.New(g.rdb, prefix)
	if cfg.ConstituentsFile != "" {
		data, err := os.ReadFile(cfg.ConstituentsFile)
		if err != nil {
			return nil, fmt.Errorf("constituents_file: %w", err)
		}
		cs, err := config.ParseConstituents(data)
		if err == nil {
			err = config.RefuseGenerate(cs)
		}
		if err != nil {
			return nil, fmt.Errorf("constituents_file %s: %w", cfg.ConstituentsFile, err)
		}
		if err := checkDestinations(pol, cs); err != nil {
			return nil, fmt.Errorf("constituents_file %s: %w", cfg.ConstituentsFile, err)
		}
		if err := g.Store.PutConstituents(ctx, cs); err != nil {
			return nil, fmt.Errorf("load constituents: %w", err)
		}
		log.Info("constituents loaded from file", "file", cfg.ConstituentsFile, "count", len(cs))
	}
	reg, err := registry.New(ctx, g.Store, log)
	if err != nil {
		return nil, err
	}
	g.Registry = reg

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(promReg)
	limiter := limit.New(g.rdb, prefix)
	leasing := limit.NewLeasing(limiter)

	lists := map[string]gateway.Channel{}
	var mls []pipeline.MailingList
	for _, l := range cfg.MailingLists {
		ch := gateway.ChannelCommunityList
		if l.Audience == "public" {
			ch = gateway.ChannelPublic
		}
		lists[l.Address] = ch
		mls = append(mls, pipeline.MailingList{Address: l.Address, Audience: ch})
	}
	disp := dispatch.New(dispatch.Options{
		Redis: g.rdb, Events: g.Store, States: g.Store, Audit: g.Audit, Reg: reg, Limiter: leasing,
		Limits: cfg.Limits.Limits,
		Lists:  lists, Metrics: m, Log: log,
	})
	g.Outbox = outbox.New(g.rdb, prefix, outbox.Options{
		MaxAttempts: cfg.Channels.Webhook.MaxAttempts, Logger: log, OnOutcome: disp.OnOutcome,
		ReclaimIdle: cfg.Outbox.ReclaimIdle.Duration, BaseBackoff: cfg.Outbox.BaseBackoff.Duration,
		MaxBackoff: cfg.Outbox.MaxBackoff.Duration, Block: cfg.Outbox.PollInterval.Duration,
	})
	g.Views = views.New(g.rdb, prefix, g.Store, reg)
	g.Metrics, g.Limiter, g.leasing = m, limiter, leasing

	// Connectors declare their channels first: routing creates deliveries
	// only for channels with a sink. Their sources, routes and runners then
	// get the pipeline built from those.
	w := &wiring{sinks: map[gateway.Channel]dispatch.Sink{}, cleanup: &g.cleanup}
	for _, c := range connectors {
		if c.channels != nil {
			if err := c.channels(ctx, g, cfg, w); err != nil {
				return nil, err
			}
		}
	}
	push := map[gateway.Channel]bool{}
	for ch := range w.sinks {
		push[ch] = true
	}
	g.Pipeline = pipeline.New(g.Store, g.Outbox, g.Audit, reg, pipeline.Config{DefaultTLP: cfg.TLP.Default, Push: push, MailingLists: mls, Routed: disp.Prime, Views: g.Views}, m, log)
	for _, c := range connectors {
		if c.sources != nil {
			if err := c.sources(ctx, g, cfg, w); err != nil {
				return nil, err
			}
		}
	}
	if err := w.unclaimed(cfg); err != nil {
		return nil, err
	}

	var sources []httpapi.SourceConfig
	for _, s := range cfg.Sources {
		sources = append(sources, httpapi.SourceConfig{Name: s.Name, Type: s.Type, DefaultTLP: s.DefaultTLP, Own: s.Own, Format: s.Format})
	}
	g.HTTP = httpapi.New(httpapi.Options{
		Redis: g.rdb, Store: g.Store, Audit: g.Audit, Outbox: g.Outbox, Pipeline: g.Pipeline, Registry: reg,
		Limiter: leasing, Metrics: m, Gatherer: promReg, Log: log, AdminKeys: cfg.Admin.Keys, Sources: sources,
		Destinations: pol, IngestPerMinute: cfg.Limits.IngestPerMinute, AuthFailuresPerMinute: cfg.Limits.AuthFailuresPerMinute, MetricsKey: cfg.Metrics.Key, BodyLimit: cfg.HTTP.BodyLimit, ReadTimeout: cfg.HTTP.ReadTimeout.Duration,
	})
	for _, mount := range w.mounts {
		g.HTTP.Mount(mount)
	}

	// Background work runs until Close, not until the caller's ctx, so a
	// signal first stops the listener and then lets deliveries finish.
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g.cleanup.push("background work", func() error {
		stop()
		g.workers.Wait()
		return nil
	})
	for ch, sink := range w.sinks {
		h := disp.Handler(ch, sink)
		g.spawn(func() {
			if err := g.Outbox.Run(wctx, ch, cfg.Outbox.Workers, h); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("delivery consumer stopped", "channel", ch, "error", err)
			}
		})
	}
	for _, r := range w.runners {
		g.spawn(func() {
			if err := r.Run(wctx); err != nil {
				log.Error("stopped", "part", r.name, "error", err)
			}
		})
	}
	g.spawn(func() { disp.Run(wctx) })
	g.spawn(func() { g.reindexLoop(wctx) })
	g.spawn(func() { reg.Watch(wctx, 2*time.Second) })
	g.spawn(func() { g.recoverLoop(wctx) })
	g.spawn(func() { g.queueDepthLoop(wctx, m) })
	if sw := newSweeper(g, cfg, prefix); sw.Enabled() {
		g.spawn(func() { sw.Run(wctx, sweepInterval(cfg.Retention)) })
	}
	return g, nil
}

func (g *Gateway) spawn(f func()) {
	g.workers.Add(1)
	go func() {
		defer g.workers.Done()
		f()
	}()
}

// recoverLoop re-routes versions stored but not routed (a crash between the
// two steps), at start-up and then every 30 s.
func (g *Gateway) recoverLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if n, err := g.Pipeline.Recover(ctx, 10*time.Second); err != nil && ctx.Err() == nil {
			g.log.Warn("recovering unrouted events failed", "error", err)
		} else if n > 0 {
			g.log.Info("re-routed events left unrouted by an earlier crash", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reindexLoop rebuilds the pull-view index after registry changes (and once
// at start-up), so views are complete again and reads take the fast path.
func (g *Gateway) reindexLoop(ctx context.Context) {
	changed := make(chan struct{}, 1)
	g.Registry.OnChange(func(*registry.Snapshot) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	changed <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		// Let a burst of registry edits (an import) settle first.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		start := time.Now()
		n, err := g.Views.Reindex(ctx, g.Store)
		if err != nil && ctx.Err() == nil {
			g.log.Warn("view reindex failed; views re-check every entry until it succeeds", "error", err)
			continue
		}
		if n > 0 {
			g.log.Info("view index rebuilt", "events", n, "took_ms", time.Since(start).Milliseconds())
		}
	}
}

func (g *Gateway) queueDepthLoop(ctx context.Context, m *metrics.Metrics) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ch := range []gateway.Channel{gateway.ChannelWebhook, gateway.ChannelEmail, gateway.ChannelMISPPush} {
			st, err := g.Outbox.Stats(ctx, ch)
			if err != nil {
				continue
			}
			m.QueueDepth.WithLabelValues(string(ch), "pending").Set(float64(st.Pending))
			m.QueueDepth.WithLabelValues(string(ch), "delayed").Set(float64(st.Delayed))
			m.QueueDepth.WithLabelValues(string(ch), "dead").Set(float64(st.Dead))
		}
	}
}

// Serve runs the HTTP listener until ctx is done, then shuts down gracefully:
// stop accepting, finish in-flight requests, let in-flight deliveries finish
// (unfinished ones stay pending in Redis for reclaim), close Redis.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- g.HTTP.Serve(ln) }()
	select {
	case err := <-errc:
		g.Close()
		return err
	case <-ctx.Done():
	}
	g.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := g.HTTP.Shutdown(sctx); err != nil {
		g.log.Warn("http shutdown", "error", err)
	}
	g.Close()
	return nil
}

// Close stops the background work, then releases what start provisioned
// (listeners, relay sessions, Redis), last first. It may be called again.
func (g *Gateway) Close() {
	g.cleanup.run(g.log)
}

func cmdCheckConfig(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", "schakel.yaml", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if cfg.ConstituentsFile != "" {
		data, err := os.ReadFile(cfg.ConstituentsFile)
		if err != nil {
			return fmt.Errorf("constituents_file: %w", err)
		}
		cs, err := config.ParseConstituents(data)
		if err == nil {
			err = config.RefuseGenerate(cs)
		}
		if err == nil {
			err = checkDestinations(cfg.Egress.Policy(), cs)
		}
		if err != nil {
			return fmt.Errorf("constituents_file %s: %w", cfg.ConstituentsFile, err)
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d mailing lists)\n", *path, len(cfg.Sources), len(cfg.MailingLists))
	return nil
}

// listen opens the listener of cfg.Listen, serving TLS when tls.cert_file is
// set and requiring verified client certificates when tls.client_ca_file is.
func listen(cfg *config.Config) (net.Listener, error) {
	var tc *tls.Config
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLS.ClientCAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.client_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls.client_ca_file %s: no PEM certificate in it", cfg.TLS.ClientCAFile)
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

func newSweeper(g *Gateway, cfg *config.Config, prefix string) *retention.Sweeper {
	return retention.New(retention.Options{Redis: g.rdb, Prefix: prefix, Events: g.Store,
		EventsAfter: cfg.Retention.Events.Duration, AuditAfter: cfg.Retention.Audit.Duration, Log: g.log})
}

// sweepInterval sweeps ten times per shortest retention period, at least
// every hour and at most every second.
func sweepInterval(r config.Retention) time.Duration {
	d := time.Hour
	for _, p := range []time.Duration{r.Events.Duration, r.Audit.Duration} {
		if p > 0 {
			d = min(d, p/10)
		}
	}
	return max(d, time.Second)
}

// checkDestinations refuses constituents whose webhook or misp_push URL the
// egress policy blocks, naming each as constituents[i] (id).
func checkDestinations(pol *egress.Policy, cs []gateway.Constituent) error {
	var errs []error
	for i := range cs {
		for _, fe := range pol.CheckConstituent(&cs[i]) {
			errs = append(errs, fmt.Errorf("constituents[%d] (%s) %s: %s", i, cs[i].ID, fe.Field, fe.Message))
		}
	}
	return errors.Join(errs...)
}
