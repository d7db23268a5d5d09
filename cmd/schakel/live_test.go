package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
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

// aloneEnv names the test a child process of alone runs.
const aloneEnv = "SCHAKEL_TEST_ALONE"

// alone lets a test whose bounds are process-wide (goroutine count, heap)
// run beside the parallel tests: it runs the calling test by itself in a
// child process of this test binary, reports how that went and returns
// false; in the child it returns true and the test goes on there.
func alone(t *testing.T) bool {
	t.Helper()
	if os.Getenv(aloneEnv) == t.Name() {
		return true
	}
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.CommandContext(t.Context(), self, args...)
	cmd.Env = append(os.Environ(), aloneEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || testing.Verbose() {
		t.Logf("%s in its own process:\n%s", t.Name(), out)
	}
	if err != nil {
		t.Fatalf("%s in its own process: %v", t.Name(), err)
	}
	return false
}
