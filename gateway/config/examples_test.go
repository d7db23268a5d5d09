package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

// TestExamplesLoad: everything under examples/ that `make run` uses must
// load, and the CSV form must describe the same constituents as the YAML.
func TestExamplesLoad(t *testing.T) {
	clearEnv(t)
	cfg, err := config.Load("../../examples/schakel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Redis.URL != "" {
		t.Errorf("listen %q, redis url %q; want 127.0.0.1:8080 and embedded", cfg.Listen, cfg.Redis.URL)
	}
	if len(cfg.Admin.Keys) != 1 || len(cfg.Admin.Keys[0]) != 40 {
		t.Errorf("want one 40-character admin key from examples/admin.keys, got %d keys", len(cfg.Admin.Keys))
	}
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name+"/"+s.Type)
	}
	if got := strings.Join(names, ","); got != "partner-api/api,partner-hook/webhook" {
		t.Errorf("sources %s", got)
	}
	if hook := cfg.Sources[1]; !strings.HasPrefix(hook.Secret, "whsec_") || filepath.Base(hook.SecretFile) != "hook.secret" {
		t.Errorf("partner-hook secret not read from examples/hook.secret (file %q)", hook.SecretFile)
	}
	if filepath.Clean(cfg.ConstituentsFile) != filepath.Join("..", "..", "examples", "constituents.yaml") {
		t.Errorf("constituents_file %q", cfg.ConstituentsFile)
	}

	data, err := os.ReadFile(cfg.ConstituentsFile)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := config.ParseConstituents(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromYAML) != 2 {
		t.Fatalf("%d constituents in the YAML example", len(fromYAML))
	}
	a, b := fromYAML[0], fromYAML[1]
	if a.Assets.Prefixes[0] != "192.0.2.0/24" || a.Assets.Domains[0] != "a.example" ||
		b.Assets.Prefixes[0] != "198.51.100.0/24" || b.Sectors[0] != "health" || len(a.Contacts) == 0 || len(b.Contacts) == 0 {
		t.Errorf("example constituents differ from ARCHITECTURE's A and B: %+v", fromYAML)
	}

	f, err := os.Open("../../examples/constituents.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromCSV, err := config.ParseConstituentsCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	// The CSV form has no subscriptions or limits; everything else matches.
	strip := func(cs []gateway.Constituent) []gateway.Constituent {
		out := make([]gateway.Constituent, len(cs))
		for i, c := range cs {
			c.Subscriptions, c.Limits = gateway.Subscriptions{}, gateway.Limits{}
			out[i] = c
		}
		return out
	}
	if !reflect.DeepEqual(strip(fromYAML), strip(fromCSV)) {
		t.Errorf("CSV example differs from YAML example:\n yaml %+v\n csv  %+v", strip(fromYAML), strip(fromCSV))
	}
}
