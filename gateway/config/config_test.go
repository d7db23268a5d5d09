package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

// problems splits the error Parse returns into its lines.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// clearEnv makes sure no SCHAKEL_* variable of the machine running the
// tests leaks in (empty variables are ignored by Parse).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SCHAKEL_") {
			t.Setenv(k, "")
		}
	}
}

// TestParseErrors: one file per mistake an operator makes; each error must
// name the YAML path and the line.
func TestParseErrors(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"bad-source-type.yaml", []string{
			`sources[1].type (line 6): value must be one of "api", "webhook", "misp", "taxii", "csaf", "csv", "imap", "smtp"`}},
		{"typo-key.yaml", []string{
			`tlp.defualt (line 3): additional property "defualt" is not allowed`}},
		{"webhook-without-secret.yaml", []string{
			`sources[0] (line 2): missing property "secret" or "secret_file" (a webhook source verifies signatures)`}},
		{"taxii-incomplete.yaml", []string{
			`sources[0].collection (line 2): missing property "collection"`,
			`sources[0].url (line 2): missing property "url"`}},
		{"duplicate-source.yaml", []string{
			`sources[2].name (line 4): source name "partner-api" is already used by sources[0] (line 2)`}},
		{"zero-interval.yaml", []string{
			`sources[0].interval (line 5): must be greater than zero`}},
		{"bad-port.yaml", []string{
			`listen (line 1): port "99999" must be a number from 0 to 65535`}},
		{"not-host-port.yaml", []string{
			`listen (line 1): must be host:port, such as "127.0.0.1:8080" or ":2525"`}},
		{"duplicate-key.yaml", []string{
			`line 3: key "listen" is repeated; first set on line 1`}},
		{"syntax.yaml", []string{
			`line 3: invalid YAML: did not find expected ',' or '}'`}},
		{"missing-secret-file.yaml", []string{
			`sources[0].secret_file (line 2): cannot read file: stat testdata/does-not-exist.secret: no such file or directory`}},
		{"bad-admin-keys.yaml", []string{
			`admin.keys_file (line 2): testdata/bad-admin.keys lines 3, 5: a key must be 40 letters and digits`}},
		{"bad-misp-key-file.yaml", []string{
			`sources[0].key_file (line 5): testdata/short.key does not hold a MISP key (40 letters and digits)`}},
		{"duplicate-mailing-list.yaml", []string{
			`mailing_lists[1].address (line 3): list "Members@lists.example" is already configured as mailing_lists[0] with audience "community"`}},
		{"egress.yaml", []string{
			`egress.allow[1] (line 3): "not-a-net" is neither an address nor a CIDR prefix`,
			`egress.deny[0] (line 4): "10.0.0.0/33" is not a CIDR prefix`,
			`sources[0].url (line 6): 169.254.169.254 is link-local (cloud metadata lives here): outbound connections there are blocked (list it under egress.allow to permit it)`,
			`sources[2].url (line 8): 127.0.0.1 is loopback: outbound connections there are blocked (list it under egress.allow to permit it)`}},
		{"not-a-mapping.yaml", []string{
			`(root) (line 1): expected object, got array`}},
		{"empty.yaml", []string{
			`document is empty`}},
		{"two-documents.yaml", []string{
			`line 2: more than one YAML document; put everything in one`}},
		{"bad-duration.yaml", []string{
			`channels.webhook.max_attempts (line 4): must be at least 1`,
			`channels.webhook.timeout (line 3): must be a duration such as "30s", "5m" or "1h30m"`,
			`shutdown_timeout (line 5): must be a duration such as "30s", "5m" or "1h30m"`}},
		{"duration-overflow.yaml", []string{
			`sources[0].interval (line 2): is out of range for a duration`}},
		{"merged-source-error.yaml", []string{
			`sources[0].interval (line 4): must be a duration such as "30s", "5m" or "1h30m"`}},
		{"many-errors.yaml", []string{
			`limits.webhook_per_minute (line 6): must be at least 0`,
			`mailing_lists[0].audience (line 13): value must be one of "public", "community"`,
			`publik_url (line 3): additional property "publik_url" is not allowed`,
			`sources[0].name (line 8): must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`sources[1].address (line 9): missing property "address"`,
			`sources[1].tls (line 11): value must be one of "none", "starttls", "tls"`,
			`sources[1].username (line 9): missing property "username"`,
			`tlp.default (line 4): value must be one of "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED" (any case, "TLP:" prefix allowed)`}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(data, "testdata")
			if err == nil || cfg != nil {
				t.Fatalf("Parse accepted %s", tc.file)
			}
			if got := problems(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("error is not a *config.Error: %T", err)
			}
		})
	}
}

func TestMissingFileUnwraps(t *testing.T) {
	clearEnv(t)
	data, _ := os.ReadFile("testdata/missing-secret-file.yaml")
	_, err := config.Parse(data, "testdata")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	clearEnv(t)
	cfg, err := config.Parse([]byte("sources:\n  - {name: partner-api, type: api}\n  - {name: feed, type: csv, path: feed, default_tlp: 'tlp:green'}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8080"},
		{"redis.url", cfg.Redis.URL, ""},
		{"redis.prefix", cfg.Redis.Prefix, "schakel"},
		{"tlp.default", cfg.TLP.Default, gateway.TLPAmber},
		{"limits.webhook_per_minute", cfg.Limits.WebhookPerMinute, 600},
		{"limits.email_per_hour", cfg.Limits.EmailPerHour, 30},
		{"limits.misp_push_per_minute", cfg.Limits.MISPPushPerMinute, 60},
		{"limits.ingest_per_minute", cfg.Limits.IngestPerMinute, 6000},
		{"http.body_limit", cfg.HTTP.BodyLimit, 10 << 20},
		{"channels.webhook.timeout", cfg.Channels.Webhook.Timeout.Duration, 10 * time.Second},
		{"channels.webhook.max_attempts", cfg.Channels.Webhook.MaxAttempts, 12},
		{"shutdown_timeout", cfg.ShutdownTimeout.Duration, 30 * time.Second},
		{"outbox.poll_interval", cfg.Outbox.PollInterval.Duration, time.Second},
		{"sources[0].default_tlp", cfg.Sources[0].DefaultTLP, gateway.TLPAmber},
		{"sources[1].default_tlp canonicalised", cfg.Sources[1].DefaultTLP, gateway.TLPGreen},
		{"sources[1].path kept as written", cfg.Sources[1].Path, "feed"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseOutboxPollInterval(t *testing.T) {
	clearEnv(t)
	cfg, err := config.Parse([]byte("outbox: {poll_interval: 50ms}\n"), "")
	if err != nil || cfg.Outbox.PollInterval.Duration != 50*time.Millisecond {
		t.Fatalf("outbox.poll_interval = %v, %v; want 50ms", cfg.Outbox.PollInterval, err)
	}
	if _, err := config.Parse([]byte("outbox: {poll_interval: soon}\n"), ""); err == nil || !strings.Contains(err.Error(), "outbox.poll_interval") {
		t.Errorf("a bad poll_interval: %v, want an error naming outbox.poll_interval", err)
	}
}

func TestParseTLPDefaultFlowsToSources(t *testing.T) {
	clearEnv(t)
	cfg, err := config.Parse([]byte("tlp: {default: white}\nsources: [{name: a, type: api}]\nhttp: {body_limit: 1048576.0}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLP.Default != gateway.TLPClear || cfg.Sources[0].DefaultTLP != gateway.TLPClear {
		t.Errorf("tlp.default %q, source default %q; want CLEAR for both", cfg.TLP.Default, cfg.Sources[0].DefaultTLP)
	}
	if cfg.HTTP.BodyLimit != 1<<20 {
		t.Errorf("body_limit %d from an integral float", cfg.HTTP.BodyLimit)
	}
}

func TestParseOwnSource(t *testing.T) {
	clearEnv(t)
	cfg, err := config.Parse([]byte("sources: [{name: analysts, type: api, own: true}, {name: partner, type: api}]\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Sources[0].Own || cfg.Sources[1].Own {
		t.Errorf("own: %v, %v; want true for analysts only", cfg.Sources[0].Own, cfg.Sources[1].Own)
	}
	if _, err := config.Parse([]byte("sources: [{name: a, type: api, own: yes please}]\n"), ""); err == nil || !strings.Contains(err.Error(), "own") {
		t.Errorf("a non-boolean own: %v, want an error naming own", err)
	}
}

// writeArchitectureConfig writes the ARCHITECTURE §8 example with its
// /etc/schakel secrets moved into dir, and those secret files.
func writeArchitectureConfig(t *testing.T, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../schemas/testdata/config-architecture.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"admin.keys":  "# admin\n" + strings.Repeat("a", 40) + "\n\n" + strings.Repeat("B", 40) + "  # second\n",
		"hook.secret": "whsec_aG9vaw==\n",
		"ncsc.key":    strings.Repeat("k", 40) + "\n",
		"taxii.pw":    "taxii-password\n",
		"imap.pw":     "imap-password\n",
		"smtp.pw":     "smtp-password\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return bytes.ReplaceAll(data, []byte("/etc/schakel/"), []byte(""))
}

func TestParseArchitectureExample(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cfg, err := config.Parse(writeArchitectureConfig(t, dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 9 || len(cfg.MailingLists) != 2 {
		t.Fatalf("%d sources, %d mailing lists", len(cfg.Sources), len(cfg.MailingLists))
	}
	byName := map[string]config.Source{}
	for _, s := range cfg.Sources {
		byName[s.Name] = s
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"admin keys", strings.Join(cfg.Admin.Keys, ","), strings.Repeat("a", 40) + "," + strings.Repeat("B", 40)},
		{"admin keys_file resolved", cfg.Admin.KeysFile, filepath.Join(dir, "admin.keys")},
		{"hook secret", byName["partner-hook"].Secret, "whsec_aG9vaw=="},
		{"hook secret_file kept", byName["partner-hook"].SecretFile, filepath.Join(dir, "hook.secret")},
		{"misp key", byName["ncsc-misp"].Key, strings.Repeat("k", 40)},
		{"misp interval", byName["ncsc-misp"].Interval.Duration, 5 * time.Minute},
		{"push-in misp has no url", byName["sector-misp"].URL, ""},
		{"taxii password", byName["ndn-taxii"].Password, "taxii-password"},
		{"taxii collection", byName["ndn-taxii"].Collection, "8f3c…"},
		{"csaf default tlp", byName["ncsc-csaf"].DefaultTLP, gateway.TLPClear},
		{"csaf interval", byName["ncsc-csaf"].Interval.Duration, 15 * time.Minute},
		{"csv profile", byName["shadowserver"].Profile, "shadowserver"},
		{"imap password", byName["advisories-mailbox"].Password, "imap-password"},
		{"imap tls", byName["advisories-mailbox"].TLS, "tls"},
		{"smtp recipients", strings.Join(byName["smtp-intake"].Recipients, ","), "intake@schakel.example"},
		{"smtp default tlp from global", byName["smtp-intake"].DefaultTLP, gateway.TLPAmber},
		{"email password", cfg.Channels.Email.Password, "smtp-password"},
		{"email from", cfg.Channels.Email.From, "warnings@schakel.example"},
		{"webhook attempts", cfg.Channels.Webhook.MaxAttempts, 12},
		{"public list", cfg.MailingLists[0], config.MailingList{Address: "public-warnings@lists.example", Audience: "public"}},
		{"constituents file resolved", cfg.ConstituentsFile, filepath.Join(dir, "constituents.yaml")},
		{"public url", cfg.PublicURL, "https://schakel.example.org"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	data := writeArchitectureConfig(t, dir)
	key := strings.Repeat("E", 40)
	t.Setenv("SCHAKEL_LISTEN", "0.0.0.0:9000")
	t.Setenv("SCHAKEL_PUBLIC_URL", "https://env.example")
	t.Setenv("SCHAKEL_REDIS_URL", "redis://:pw@redis.internal:6379/0")
	t.Setenv("SCHAKEL_REDIS_PREFIX", "envprefix")
	t.Setenv("SCHAKEL_TLP_DEFAULT", "TLP:GREEN")
	t.Setenv("SCHAKEL_ADMIN_KEYS", " "+key+" ,,"+strings.Repeat("F", 40))
	t.Setenv("SCHAKEL_SOURCE_PARTNER_HOOK_SECRET", "whsec_ZW52")
	t.Setenv("SCHAKEL_SOURCE_NCSC_MISP_KEY", strings.Repeat("m", 40))
	t.Setenv("SCHAKEL_SOURCE_NDN_TAXII_PASSWORD", "env-taxii")
	// The file the environment replaces need not exist.
	if err := os.Remove(filepath.Join(dir, "hook.secret")); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, dir)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]config.Source{}
	for _, s := range cfg.Sources {
		byName[s.Name] = s
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "0.0.0.0:9000"},
		{"public_url", cfg.PublicURL, "https://env.example"},
		{"redis url", cfg.Redis.URL, "redis://:pw@redis.internal:6379/0"},
		{"redis prefix", cfg.Redis.Prefix, "envprefix"},
		{"tlp default", cfg.TLP.Default, gateway.TLPGreen},
		{"unlabelled source follows the new default", byName["partner-hook"].DefaultTLP, gateway.TLPGreen},
		{"admin keys: env list then file", strings.Join(cfg.Admin.Keys, ","),
			strings.Join([]string{key, strings.Repeat("F", 40), strings.Repeat("a", 40), strings.Repeat("B", 40)}, ",")},
		{"hook secret", byName["partner-hook"].Secret, "whsec_ZW52"},
		{"hook secret_file dropped", byName["partner-hook"].SecretFile, ""},
		{"misp key", byName["ncsc-misp"].Key, strings.Repeat("m", 40)},
		{"taxii password", byName["ndn-taxii"].Password, "env-taxii"},
		{"imap password still from file", byName["advisories-mailbox"].Password, "imap-password"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEnvKeysFileOverride(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "other.keys")
	if err := os.WriteFile(keys, []byte(strings.Repeat("Z", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCHAKEL_ADMIN_KEYS_FILE", keys)
	cfg, err := config.Parse([]byte("admin: {keys_file: missing.keys}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Admin.Keys) != 1 || cfg.Admin.Keys[0] != strings.Repeat("Z", 40) || cfg.Admin.KeysFile != keys {
		t.Fatalf("admin = %+v", cfg.Admin)
	}
}

// TestEnvErrors: a bad value from the environment names the variable,
// since there is no line to point at.
func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		yaml string
		want []string
	}{
		{"listen", map[string]string{"SCHAKEL_LISTEN": "localhost"}, "listen: 127.0.0.1:8080\n",
			[]string{`listen (from SCHAKEL_LISTEN): must be host:port, such as "127.0.0.1:8080" or ":2525"`}},
		{"port", map[string]string{"SCHAKEL_LISTEN": "localhost:70000"}, "{}\n",
			[]string{`listen (from SCHAKEL_LISTEN): port "70000" must be a number from 0 to 65535`}},
		{"tlp", map[string]string{"SCHAKEL_TLP_DEFAULT": "purple"}, "{}\n",
			[]string{`tlp.default (from SCHAKEL_TLP_DEFAULT): value must be one of "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED" (any case, "TLP:" prefix allowed)`}},
		{"admin keys", map[string]string{"SCHAKEL_ADMIN_KEYS": strings.Repeat("a", 40) + ",short"}, "{}\n",
			[]string{`admin.keys[1] (from SCHAKEL_ADMIN_KEYS): must be 40 letters and digits`}},
		{"source key", map[string]string{"SCHAKEL_SOURCE_NCSC_MISP_KEY": "too-short"}, "sources: [{name: ncsc-misp, type: misp, url: 'https://m.example'}]\n",
			[]string{`sources[0].key (from SCHAKEL_SOURCE_NCSC_MISP_KEY): must be 40 letters and digits (a MISP auth key)`}},
		{"unknown source", map[string]string{"SCHAKEL_SOURCE_PARTNER_HOKE_SECRET": "whsec_eA=="}, "sources: [{name: partner-hook, type: webhook, secret: whsec_eA==}]\n",
			[]string{`from SCHAKEL_SOURCE_PARTNER_HOKE_SECRET: no source has this name; expected one of SCHAKEL_SOURCE_PARTNER_HOOK_*`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := config.Parse([]byte(tc.yaml), "")
			if got := problems(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestEnvSecretSatisfiesSchema(t *testing.T) {
	clearEnv(t)
	t.Setenv("SCHAKEL_SOURCE_PARTNER_HOOK_SECRET", "whsec_ZW52")
	cfg, err := config.Parse([]byte("sources: [{name: partner-hook, type: webhook}]\n"), "")
	if err != nil {
		t.Fatalf("a webhook secret from the environment is not accepted: %v", err)
	}
	if cfg.Sources[0].Secret != "whsec_ZW52" {
		t.Errorf("secret %q", cfg.Sources[0].Secret)
	}
}

func TestSourceEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"partner-hook": "SCHAKEL_SOURCE_PARTNER_HOOK",
		"ncsc.misp_2":  "SCHAKEL_SOURCE_NCSC_MISP_2",
	} {
		if got := config.SourceEnvName(in); got != want {
			t.Errorf("SourceEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecretsAreNeverShown: secrets must not appear in errors, String,
// GoString or structured logs.
func TestSecretsAreNeverShown(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	cfg, err := config.Parse(writeArchitectureConfig(t, dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Redis.URL = "redis://user:redis-password@r.example:6379/0"
	cfg.Sources[2].URL = "https://misp.example/?token=url-token"
	secrets := []string{
		strings.Repeat("a", 40), strings.Repeat("B", 40), "whsec_aG9vaw==", strings.Repeat("k", 40),
		"taxii-password", "imap-password", "smtp-password", "redis-password", "url-token",
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg, "source", cfg.Sources[1], "email", cfg.Channels.Email)
	for name, out := range map[string]string{
		"String":          cfg.String(),
		"%v":              fmt.Sprintf("%v", cfg),
		"%+v pointer":     fmt.Sprintf("%+v", cfg),
		"%#v":             fmt.Sprintf("%#v", *cfg),
		"source %v":       fmt.Sprintf("%v", cfg.Sources),
		"admin %v":        fmt.Sprintf("%v", cfg.Admin),
		"email %#v":       fmt.Sprintf("%#v", cfg.Channels.Email),
		"redis %v":        fmt.Sprintf("%v", cfg.Redis),
		"slog JSON":       logged.String(),
		"slog text group": slogText(cfg),
	} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows secret %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, config.Redacted) && !strings.Contains(out, "redacted") {
			t.Errorf("%s shows no redaction marker:\n%s", name, out)
		}
	}
	// What is not secret stays visible, so the output is useful.
	if !strings.Contains(logged.String(), `"ncsc-misp"`) || !strings.Contains(logged.String(), `"keys":2`) {
		t.Errorf("log lost the non-secret settings:\n%s", logged.String())
	}

	// Errors about secret values: schema and file problems.
	t.Setenv("SCHAKEL_SOURCE_NCSC_MISP_KEY", "not-the-key-but-a-secret")
	bad := []byte("sources:\n  - {name: ncsc-misp, type: misp, url: 'https://m.example'}\n" +
		"  - {name: h, type: webhook, secret: '', password: 7}\n" +
		"channels: {email: {password: 'mail-secret', password_file: x}}\n")
	_, err = config.Parse(bad, dir)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, s := range []string{"not-the-key-but-a-secret", "mail-secret"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q:\n%v", s, err)
		}
	}
}

func slogText(cfg *config.Config) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", *cfg)
	return b.String()
}

func TestDurationText(t *testing.T) {
	var d config.Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.Duration != 90*time.Minute {
		t.Fatalf("got %v, %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1h30m0s" {
		t.Errorf("MarshalText = %s", b)
	}
	var viaYAML struct {
		Interval config.Duration `yaml:"interval"`
	}
	if err := yaml.Unmarshal([]byte("interval: 90s\n"), &viaYAML); err != nil || viaYAML.Interval.Duration != 90*time.Second {
		t.Errorf("YAML: %v, %v", viaYAML.Interval, err)
	}
	for _, bad := range []string{"-5m", "5", "five minutes"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}

func TestYAMLFeatures(t *testing.T) {
	clearEnv(t)
	doc := `
x-poll: &poll {interval: 5m, default_tlp: GREEN}
sources:
  - <<: *poll
    name: ncsc-csaf
    type: csaf
    url: https://advisories.example/provider-metadata.json
  - <<: *poll
    name: other-csaf
    type: csaf
    url: https://other.example/provider-metadata.json
    interval: 1h   # explicit keys win over merged ones
mailing_lists:
  - address: "members@lists.example"
    audience: 'community'
`
	cfg, err := config.Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].Interval.Duration; got != 5*time.Minute {
		t.Errorf("merged interval %v", got)
	}
	if got := cfg.Sources[1].Interval.Duration; got != time.Hour {
		t.Errorf("explicit interval %v", got)
	}
	if cfg.Sources[0].DefaultTLP != gateway.TLPGreen {
		t.Errorf("merged default_tlp %q", cfg.Sources[0].DefaultTLP)
	}
}

func TestAliasBombRejected(t *testing.T) {
	clearEnv(t)
	var b strings.Builder
	b.WriteString("x-a: &a [x,x,x,x,x,x,x,x,x,x]\n")
	prev := "a"
	for i := range 8 {
		name := fmt.Sprintf("l%d", i)
		fmt.Fprintf(&b, "x-%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	start := time.Now()
	_, err := config.Parse([]byte(b.String()), "")
	if err == nil || !strings.Contains(err.Error(), "aliases expand to more than") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestLoad(t *testing.T) {
	clearEnv(t)
	if _, err := config.Load("testdata/does-not-exist.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
	_, err := config.Load("testdata/typo-key.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/typo-key.yaml") || !strings.Contains(err.Error(), "tlp.defualt (line 3)") {
		t.Errorf("Load error does not name the file and line: %v", err)
	}
}

func TestMetricsKeyFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	const key = "metrics-scrape-key-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "metrics.key"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("metrics: {key_file: metrics.key}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.Key != key || cfg.Metrics.KeyFile != filepath.Join(dir, "metrics.key") {
		t.Fatalf("metrics = %q from %q", cfg.Metrics.Key, cfg.Metrics.KeyFile)
	}
	for name, out := range map[string]string{"String": cfg.String(), "%#v": fmt.Sprintf("%#v", *cfg), "slog": slogText(cfg)} {
		if strings.Contains(out, key) {
			t.Errorf("%s shows the metrics key", name)
		}
	}
	if _, err := config.Parse([]byte("metrics: {key_file: missing.key}\n"), dir); err == nil || !strings.Contains(err.Error(), "metrics.key_file") {
		t.Errorf("missing key file: %v, want an error naming metrics.key_file", err)
	}
	if _, err := config.Parse([]byte("metrics: {key: inline}\n"), dir); err == nil {
		t.Error("metrics.key inline accepted; only key_file is a setting")
	}
}
