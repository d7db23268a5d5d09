package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
	"github.com/schakel/schakel/gateway/store"
)

// adminClient talks to a running gateway's admin API, so the CLI works the
// same against the embedded default and a production Redis.
type adminClient struct {
	base string
	key  string
	http *http.Client
}

// adminFlags adds --config, --url and --key to fs and resolves them: explicit
// flags win; otherwise the configuration's listen address and first admin key.
func adminFlags(fs *flag.FlagSet) func() (*adminClient, error) {
	path := fs.String("config", "", "configuration file (for listen address and admin key)")
	base := fs.String("url", "", "gateway base URL, e.g. http://127.0.0.1:8080")
	key := fs.String("key", os.Getenv("SCHAKEL_ADMIN_KEY"), "admin key (default $SCHAKEL_ADMIN_KEY or the config's first admin key)")
	return func() (*adminClient, error) {
		c := &adminClient{base: *base, key: *key, http: &http.Client{Timeout: 60 * time.Second}}
		if *path != "" {
			cfg, err := config.Load(*path)
			if err != nil {
				return nil, err
			}
			if c.base == "" {
				c.base = "http://" + cfg.Listen
			}
			if c.key == "" && len(cfg.Admin.Keys) > 0 {
				c.key = cfg.Admin.Keys[0]
			}
		}
		if c.base == "" {
			return nil, usageError{"give --url or --config"}
		}
		if c.key == "" {
			return nil, usageError{"give --key, $SCHAKEL_ADMIN_KEY or a --config with admin keys"}
		}
		c.base = strings.TrimRight(c.base, "/")
		return c, nil
	}
}

func (c *adminClient) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("is the gateway running at %s? %w", c.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func cmdKeys(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError{"keys: expected 'keys create'"}
	}
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	role := fs.String("role", "", "admin, source or constituent")
	name := fs.String("name", "", "source name or constituent id")
	client := adminFlags(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch *role {
	case "admin":
		// Admin keys live in admin.keys_file, not in Redis: print one to add.
		fmt.Fprintln(stdout, store.NewKey())
		return nil
	case "source", "constituent":
		if *name == "" {
			return usageError{"keys create: --name is required for role " + *role}
		}
		c, err := client()
		if err != nil {
			return err
		}
		path := "/api/v1/sources/" + url.PathEscape(*name) + "/keys"
		if *role == "constituent" {
			path = "/api/v1/constituents/" + url.PathEscape(*name) + "/keys"
		}
		var out struct {
			Key string `json:"key"`
		}
		if err := c.do(ctx, http.MethodPost, path, nil, &out); err != nil {
			return err
		}
		fmt.Fprintln(stdout, out.Key)
		return nil
	}
	return usageError{"keys create: --role must be admin, source or constituent"}
}

func cmdConstituents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return usageError{"constituents: expected 'constituents import FILE'"}
	}
	fs := flag.NewFlagSet("constituents import", flag.ContinueOnError)
	client := adminFlags(fs)
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, reorder(args[1:])); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"constituents import: give exactly one FILE"}
	}
	file := fs.Arg(0)
	cs, err := readConstituents(file)
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	bar := newProgress(stderr, len(cs), *quiet)
	var generated []string
	for i, k := range cs {
		// The answer hides stored secrets; it shows a secret the gateway
		// generated for "secret: generate", this once.
		var put struct {
			Webhooks []struct {
				URL    string `json:"url"`
				Secret struct {
					Value string `json:"value"`
				} `json:"secret"`
			} `json:"webhooks"`
		}
		if err := c.do(ctx, http.MethodPut, "/api/v1/constituents/"+url.PathEscape(k.ID), k, &put); err != nil {
			bar.done()
			return fmt.Errorf("constituent %d (%s): %w", i, k.ID, err)
		}
		for _, w := range put.Webhooks {
			if w.Secret.Value != "" {
				generated = append(generated, fmt.Sprintf("%s %s %s", k.ID, w.URL, w.Secret.Value))
			}
		}
		bar.set(i + 1)
	}
	bar.done()
	fmt.Fprintf(stdout, "imported %d constituents from %s\n", len(cs), file)
	if len(generated) > 0 {
		fmt.Fprintln(stdout, "generated webhook secrets, shown only now (constituent, url, secret):")
		for _, g := range generated {
			fmt.Fprintln(stdout, g)
		}
	}
	return nil
}

func readConstituents(file string) ([]gateway.Constituent, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(file), ".csv") {
		return config.ParseConstituentsCSV(f)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return config.ParseConstituents(data)
}

// reorder moves flags before positional arguments so "import FILE --url X"
// works as well as "import --url X FILE".
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && a != "--quiet" && a != "-quiet" && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// progress is a plain text progress bar on stderr.
type progress struct {
	w     io.Writer
	total int
	off   bool
	last  int
}

func newProgress(w io.Writer, total int, off bool) *progress {
	return &progress{w: w, total: total, off: off || total == 0, last: -1}
}

func (p *progress) set(n int) {
	if p.off {
		return
	}
	pct := n * 100 / p.total
	if pct == p.last {
		return
	}
	p.last = pct
	const width = 30
	fill := pct * width / 100
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %d/%d", strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct, n, p.total)
}

func (p *progress) done() {
	if !p.off {
		fmt.Fprintln(p.w)
	}
}

func cmdExplain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	ev := fs.String("event", "", "event id")
	cons := fs.String("constituent", "", "constituent id")
	client := adminFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ev == "" || *cons == "" {
		return usageError{"explain: --event and --constituent are required"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	var out struct {
		Event       string `json:"event"`
		Constituent string `json:"constituent"`
		TLP         string `json:"tlp"`
		Concern     string `json:"concern"`
		Channels    []struct {
			Channel, Verdict, Rule, Handling string
		} `json:"channels"`
	}
	q := url.Values{"event": {*ev}, "constituent": {*cons}}
	if err := c.do(ctx, http.MethodGet, "/api/v1/explain?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "event %s, constituent %s: TLP:%s, concern %s\n", out.Event, out.Constituent, out.TLP, out.Concern)
	for _, ch := range out.Channels {
		fmt.Fprintf(stdout, "  %-15s %-8s %s\n", ch.Channel, ch.Verdict, ch.Rule)
	}
	return nil
}
