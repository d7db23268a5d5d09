package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/config"
)

// liveGateway is a gateway running in-process from a configuration file on
// a loopback listener, which a test can stop and start again on the same
// Redis. It stops when the test ends.
type liveGateway struct {
	t    testing.TB
	path string
	base string // http://127.0.0.1:port of the current run
	g    *Gateway
	stop func()
}

func runLive(t testing.TB, path string) *liveGateway {
	t.Helper()
	g := &liveGateway{t: t, path: path}
	g.start()
	t.Cleanup(func() { g.stop() })
	return g
}

func (g *liveGateway) start() {
	g.t.Helper()
	cfg, err := config.Load(g.path)
	if err != nil {
		g.t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := start(ctx, cfg, log)
	if err != nil {
		cancel()
		g.t.Fatalf("start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		g.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = gw.Serve(ctx, ln, 5*time.Second); close(done) }()
	g.base, g.g = "http://"+ln.Addr().String(), gw
	var once sync.Once
	g.stop = func() { once.Do(func() { cancel(); <-done }) }
}

func (g *liveGateway) restart() {
	g.t.Helper()
	g.stop()
	g.start()
}
