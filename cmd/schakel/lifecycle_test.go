package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway/config"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestStartFailureReleasesEverything: when the last connector wired fails,
// start returns its error and releases what the earlier steps provisioned:
// no goroutine keeps running, the SMTP intake's port is free again and the
// embedded Redis is closed. Close of a started gateway releases the same.
func TestStartFailureReleasesEverything(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name    string
		sources func(intake string) string
		want    string // "": start succeeds, then Close
	}{
		{"a started gateway, closed", func(intake string) string {
			return fmt.Sprintf(`
  - {name: smtp-intake, type: smtp, listen: %q, recipients: [intake@schakel.example]}
  - {name: scans, type: csv, path: scans, interval: 10ms}`, intake)
		}, ""},
		{"a bad csv profile after an SMTP intake", func(intake string) string {
			return fmt.Sprintf(`
  - {name: smtp-intake, type: smtp, listen: %q, recipients: [intake@schakel.example]}
  - {name: scans, type: csv, path: scans, profile: no-such-profile}`, intake)
		}, `sources[1] (scans): profile: "no-such-profile"`},
		{"a second SMTP intake on a taken port", func(intake string) string {
			return fmt.Sprintf(`
  - {name: smtp-intake, type: smtp, listen: %q, recipients: [intake@schakel.example]}
  - {name: smtp-late, type: smtp, listen: %q, recipients: [late@schakel.example]}`, intake, taken.Addr().String())
		}, "sources[1] (smtp-late): listen " + taken.Addr().String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "scans"), 0o700); err != nil {
				t.Fatal(err)
			}
			intake := freeAddr(t)
			path := writeFile(t, dir, "schakel.yaml", `
listen: 127.0.0.1:0
sources:`+tc.sources(intake)+`
channels:
  email: {relay: 127.0.0.1:25, tls: none, from: warnings@schakel.example}
`)
			cfg, err := config.Load(filepath.Clean(path))
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			before := runtime.NumGoroutine()

			g, err := start(context.Background(), cfg, log)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("start: %v", err)
			case tc.want == "":
				time.Sleep(100 * time.Millisecond) // the sources poll meanwhile
				g.Close()
			case err == nil:
				g.Close()
				t.Fatal("start succeeded")
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("start: %v, want an error containing %q", err, tc.want)
			}

			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines after the failed start, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			}
			ln, err := net.Listen("tcp", intake)
			if err != nil {
				t.Fatalf("the SMTP intake's port is still taken: %v", err)
			}
			ln.Close()
			redisAddr := embeddedAddr(t, logs.Bytes())
			if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err == nil {
				c.Close()
				t.Fatalf("the embedded Redis at %s still accepts connections", redisAddr)
			}
		})
	}
}

// embeddedAddr finds the embedded Redis's address in start's JSON log.
func embeddedAddr(t *testing.T, logs []byte) string {
	t.Helper()
	for line := range bytes.Lines(logs) {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) == nil && strings.Contains(rec.Msg, "embedded in-memory Redis") && rec.Addr != "" {
			return rec.Addr
		}
	}
	t.Fatalf("no embedded Redis address in the log:\n%s", logs)
	return ""
}
