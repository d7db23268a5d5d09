package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/schakel/schakel/gateway/config"
)

// checkErr asserts what every failure must look like: one or more
// *config.Error with a message.
func checkErr(t *testing.T, err error) {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *config.Error
		if !errors.As(e, &ce) || ce.Message == "" {
			t.Fatalf("error %T %q is not a *config.Error with a message", e, e)
		}
	}
}

func addFiles(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

func FuzzParse(f *testing.F) {
	addFiles(f, "testdata/*.yaml", "../../examples/schakel.yaml", "../../schemas/testdata/config-architecture.yaml")
	f.Add([]byte("x-a: &a {interval: 5m}\nsources: [{<<: *a, name: c, type: csaf, url: 'https://c.example'}]\n"))
	f.Add([]byte("listen: [::1]:8080\nredis: {url: 'redis://:p@h:6379/0'}\nhttp: {body_limit: 1e3}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "testdata")
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			checkErr(t, err)
			return
		}
		if cfg.Listen == "" || cfg.Redis.Prefix == "" || !cfg.TLP.Default.Valid() || cfg.HTTP.BodyLimit <= 0 {
			t.Fatalf("defaults missing: %+v", cfg)
		}
		for _, s := range cfg.Sources {
			if !s.DefaultTLP.Valid() {
				t.Fatalf("source %q default_tlp %q", s.Name, s.DefaultTLP)
			}
		}
		_ = cfg.String()
	})
}

func FuzzParseConstituents(f *testing.F) {
	addFiles(f, "../../examples/constituents.yaml")
	f.Add([]byte(`[{"id":"a","name":"A","assets":{"asns":[1],"prefixes":["::/0"]}}]`))
	f.Add([]byte("constituents:\n  - {id: a, name: A, contacts: [{email: a@b.example, red: true}]}\n  - {id: a, name: B}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := config.ParseConstituents(data)
		if err != nil {
			checkErr(t, err)
			return
		}
		seen := map[string]bool{}
		for _, c := range cs {
			if c.ID == "" || c.Name == "" || seen[c.ID] {
				t.Fatalf("bad or repeated constituent %+v", c)
			}
			seen[c.ID] = true
		}
	})
}

func FuzzParseConstituentsCSV(f *testing.F) {
	addFiles(f, "../../examples/constituents.csv")
	f.Add([]byte("id;name;contacts\na;A;Jan <j@a.example>!red x@y.example\n"))
	f.Add([]byte("\ufeffid,name,asns\n\"a\",\"A\",\"AS1 AS2\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := config.ParseConstituentsCSV(bytes.NewReader(data))
		if err != nil {
			checkErr(t, err)
			return
		}
		for _, c := range cs {
			if c.ID == "" || c.Name == "" {
				t.Fatalf("constituent without id or name: %+v", c)
			}
		}
	})
}
