// Package config reads Schakel's YAML configuration (schemas/config.schema.json)
// and constituents files. Every problem is reported at once, each naming the
// YAML path and line (or the environment variable) it comes from, and no
// secret ever appears in an error or in log output.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/egress"
	"github.com/schakel/schakel/schemas"
)

// Defaults applied by Parse to settings that are absent (or zero).
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultRedisPrefix       = "schakel"
	DefaultTLP               = gateway.TLPAmber
	DefaultWebhookPerMinute  = 600
	DefaultEmailPerHour      = 30
	DefaultMISPPushPerMinute = 60
	DefaultIngestPerMinute   = 6000
	DefaultBodyLimit         = 10 << 20
	DefaultWebhookTimeout    = 10 * time.Second
	DefaultMaxAttempts       = 12
	DefaultShutdownTimeout   = 30 * time.Second
)

// Config is the gateway configuration (ARCHITECTURE §8). After Parse every
// default is filled in, every *_file secret has been read into its sibling
// field and relative file paths are resolved against the file's folder.
type Config struct {
	Listen           string        `json:"listen" yaml:"listen"`
	PublicURL        string        `json:"public_url" yaml:"public_url"`
	MISP             MISP          `json:"misp" yaml:"misp"`
	Redis            Redis         `json:"redis" yaml:"redis"`
	Admin            Admin         `json:"admin" yaml:"admin"`
	TLP              TLPConfig     `json:"tlp" yaml:"tlp"`
	Limits           Limits        `json:"limits" yaml:"limits"`
	HTTP             HTTP          `json:"http" yaml:"http"`
	Sources          []Source      `json:"sources" yaml:"sources"`
	Channels         Channels      `json:"channels" yaml:"channels"`
	Outbox           Outbox        `json:"outbox" yaml:"outbox"`
	MailingLists     []MailingList `json:"mailing_lists" yaml:"mailing_lists"`
	ConstituentsFile string        `json:"constituents_file" yaml:"constituents_file"`
	ShutdownTimeout  Duration      `json:"shutdown_timeout" yaml:"shutdown_timeout"`
	TLS              TLS           `json:"tls" yaml:"tls"`
	Retention        Retention     `json:"retention" yaml:"retention"`
	Egress           Egress        `json:"egress" yaml:"egress"`
	Metrics          Metrics       `json:"metrics" yaml:"metrics"`
}

// Metrics protects GET /metrics: with KeyFile set, a scraper must send
// "Authorization: Bearer <key>" with the key read from it into Key.
type Metrics struct {
	KeyFile string `json:"key_file" yaml:"key_file"`
	Key     string `json:"-" yaml:"-"`
}

// Egress narrows or widens where Schakel may connect out to (package
// gateway/egress): loopback, link-local and similar addresses are blocked
// unless listed in Allow; Deny blocks further prefixes (say, 10.0.0.0/8).
type Egress struct {
	Allow      []string `json:"allow" yaml:"allow"`
	Deny       []string `json:"deny" yaml:"deny"`
	RequireTLS bool     `json:"require_tls" yaml:"require_tls"`
}

// Policy builds the egress policy; the entries were checked by Parse.
func (e Egress) Policy() *egress.Policy {
	p, err := egress.New(e.Allow, e.Deny, egress.RequireTLS(e.RequireTLS))
	if err != nil {
		return egress.Default() // unreachable after Parse; the built-in blocks still hold
	}
	return p
}

// TLS makes the listener serve HTTPS. With ClientCAFile set, every client
// must present a certificate signed by that CA.
type TLS struct {
	CertFile     string `json:"cert_file" yaml:"cert_file"`
	KeyFile      string `json:"key_file" yaml:"key_file"`
	ClientCAFile string `json:"client_ca_file" yaml:"client_ca_file"`
}

// Retention is how long events and audit records are kept; zero keeps
// them forever.
type Retention struct {
	Events Duration `json:"events" yaml:"events"`
	Audit  Duration `json:"audit" yaml:"audit"`
}

// MISP is Schakel's identity towards MISP (the Orgc of what it serves and
// pushes); empty fields take defaults derived from PublicURL.
type MISP struct {
	OrgName string `json:"org_name" yaml:"org_name"`
	OrgUUID string `json:"org_uuid" yaml:"org_uuid"`
}

// Redis says where state lives; an empty URL means the embedded server.
type Redis struct {
	URL    string `json:"url" yaml:"url"`
	Prefix string `json:"prefix" yaml:"prefix"`
}

// Admin holds the admin API keys: Keys has the inline ones, those from
// SCHAKEL_ADMIN_KEYS and those read from KeysFile, without duplicates.
type Admin struct {
	KeysFile string   `json:"keys_file" yaml:"keys_file"`
	Keys     []string `json:"keys" yaml:"keys"`
}

// TLPConfig holds the label given to unlabelled input.
type TLPConfig struct {
	Default gateway.TLP `json:"default" yaml:"default"`
}

// Limits are the per-recipient channel defaults (gateway.Limits, which a
// constituent's own limits override) and the limits on requests:
// IngestPerMinute applies per API key.
type Limits struct {
	gateway.Limits `yaml:",inline"`

	IngestPerMinute int `json:"ingest_per_minute" yaml:"ingest_per_minute"`

	// AuthFailuresPerMinute is how many wrong keys one client IP may send a
	// minute; 0 means the built-in 20.
	AuthFailuresPerMinute int `json:"auth_failures_per_minute" yaml:"auth_failures_per_minute"`
}

// HTTP tunes the HTTP server; BodyLimit is in bytes.
type HTTP struct {
	BodyLimit   int      `json:"body_limit" yaml:"body_limit"`
	ReadTimeout Duration `json:"read_timeout" yaml:"read_timeout"`
}

// Source is one upstream. Which fields matter depends on Type; the schema
// enforces the required ones. A zero Interval means the connector's default.
type Source struct {
	Name         string      `json:"name" yaml:"name"`
	Type         string      `json:"type" yaml:"type"`
	DefaultTLP   gateway.TLP `json:"default_tlp" yaml:"default_tlp"`
	Format       string      `json:"format" yaml:"format"`
	Secret       string      `json:"secret" yaml:"secret"`
	SecretFile   string      `json:"secret_file" yaml:"secret_file"`
	URL          string      `json:"url" yaml:"url"`
	Key          string      `json:"key" yaml:"key"`
	KeyFile      string      `json:"key_file" yaml:"key_file"`
	Interval     Duration    `json:"interval" yaml:"interval"`
	Collection   string      `json:"collection" yaml:"collection"`
	Username     string      `json:"username" yaml:"username"`
	Password     string      `json:"password" yaml:"password"`
	PasswordFile string      `json:"password_file" yaml:"password_file"`
	Path         string      `json:"path" yaml:"path"`
	Profile      string      `json:"profile" yaml:"profile"`
	Address      string      `json:"address" yaml:"address"`
	TLS          string      `json:"tls" yaml:"tls"`
	Mailbox      string      `json:"mailbox" yaml:"mailbox"`
	Listen       string      `json:"listen" yaml:"listen"`
	Recipients   []string    `json:"recipients" yaml:"recipients"`
	Tags         []string    `json:"tags" yaml:"tags"`

	// Columns maps canonical CSV fields (ip, port, asn, timestamp, hostname,
	// tag, severity, report_type) to a feed's headers; "a|b" lists
	// alternatives. With profile shadowserver it overrides single columns.
	Columns map[string]string `json:"columns" yaml:"columns"`

	// Own marks a source the relay's own analysts author: its AMBER+STRICT
	// events go to addressed and owning constituents; from any other
	// source the relay is the recipient organisation and holds them.
	Own bool `json:"own" yaml:"own"`
}

// Channels configures the outbound channels.
type Channels struct {
	Email   EmailChannel   `json:"email" yaml:"email"`
	Webhook WebhookChannel `json:"webhook" yaml:"webhook"`
}

// EmailChannel is the SMTP relay warnings are sent through.
type EmailChannel struct {
	Relay        string `json:"relay" yaml:"relay"`
	TLS          string `json:"tls" yaml:"tls"`
	Username     string `json:"username" yaml:"username"`
	Password     string `json:"password" yaml:"password"`
	PasswordFile string `json:"password_file" yaml:"password_file"`
	From         string `json:"from" yaml:"from"`
	// PGPKeyFile holds an armored OpenPGP secret key: every warning is then
	// PGP/MIME signed. PGPPassphraseFile unlocks it when it is protected.
	PGPKeyFile        string `json:"pgp_key_file" yaml:"pgp_key_file"`
	PGPPassphraseFile string `json:"pgp_passphrase_file" yaml:"pgp_passphrase_file"`
	PGPKey            string `json:"-" yaml:"-"` // read from PGPKeyFile
	PGPPassphrase     string `json:"-" yaml:"-"` // read from PGPPassphraseFile
	// Encrypt says which warnings go encrypted to contacts with a pgp_key
	// or smime_cert.
	Encrypt EmailEncrypt `json:"encrypt" yaml:"encrypt"`
}

// EmailEncrypt lists TLPs by how warnings under them are protected.
// RequiredFor: only encrypted; a contact without a key gets a notice that
// a warning waits, without its content. PreferredFor: encrypted when the
// contact has a key, else as before. A TLP in neither list goes as before.
// An absent list takes its default (DefaultEncryptRequired,
// DefaultEncryptPreferred); an empty list ([]) means none.
type EmailEncrypt struct {
	RequiredFor  []gateway.TLP `json:"required_for" yaml:"required_for"`
	PreferredFor []gateway.TLP `json:"preferred_for" yaml:"preferred_for"`
}

var (
	// DefaultEncryptRequired: RED and AMBER+STRICT never go out in clear.
	DefaultEncryptRequired = []gateway.TLP{gateway.TLPRed, gateway.TLPAmberStrict}
	// DefaultEncryptPreferred: AMBER is encrypted when a key is known.
	DefaultEncryptPreferred = []gateway.TLP{gateway.TLPAmber}
)

// WebhookChannel tunes webhook delivery.
type WebhookChannel struct {
	Timeout     Duration `json:"timeout" yaml:"timeout"`
	MaxAttempts int      `json:"max_attempts" yaml:"max_attempts"`
}

// Outbox tunes the delivery queue.
type Outbox struct {
	// ReclaimIdle is how long a delivery may sit with a consumer that
	// stopped answering before another replica takes it over; keep it above
	// the slowest channel's timeout.
	ReclaimIdle Duration `json:"reclaim_idle" yaml:"reclaim_idle"`
	BaseBackoff Duration `json:"base_backoff" yaml:"base_backoff"`
	MaxBackoff  Duration `json:"max_backoff" yaml:"max_backoff"`
	Workers     int      `json:"workers" yaml:"workers"` // concurrent deliveries per channel and replica
	// PollInterval is how long one read of the queue waits for new
	// deliveries; it bounds how late a due retry starts and how long a
	// stopping replica waits for its readers.
	PollInterval Duration `json:"poll_interval" yaml:"poll_interval"`
}

// MailingList is a list address and who may read it: "public" or "community".
type MailingList struct {
	Address  string `json:"address" yaml:"address"`
	Audience string `json:"audience" yaml:"audience"`
}

// Duration is a time.Duration written as "5m", "30s" or "1h30m".
type Duration struct{ time.Duration }

// MarshalText writes the duration as Go formats it ("5m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// UnmarshalText reads a non-negative Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q: must not be negative", b)
	}
	d.Duration = v
	return nil
}

// Load reads the file at path and parses it; relative paths inside it are
// taken relative to the file's folder.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// Parse validates a YAML configuration against schemas.Config, decodes it,
// fills in defaults, reads the *_file secrets (relative paths relative to
// dir), applies SCHAKEL_* environment overrides and checks what the schema
// cannot. It reports every problem found, joined with errors.Join; each is
// an *Error naming the YAML path and line.
//
// Environment variables (an empty one is ignored) override the file:
// SCHAKEL_LISTEN, SCHAKEL_PUBLIC_URL, SCHAKEL_REDIS_URL,
// SCHAKEL_REDIS_PREFIX, SCHAKEL_TLP_DEFAULT, SCHAKEL_ADMIN_KEYS_FILE,
// SCHAKEL_ADMIN_KEYS (comma-separated) and, per source,
// SCHAKEL_SOURCE_<NAME>_SECRET, _KEY and _PASSWORD (NAME upper-cased, "-"
// and "." as "_"); a source secret from the environment replaces the
// matching *_file setting, which is then not read. Overrides are applied
// before validation, so their values are checked like the file's.
func Parse(data []byte, dir string) (*Config, error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	doc, errs, fatal := toValue(root)
	if fatal {
		return nil, errors.Join(errs...)
	}
	p := &parser{root: root, doc: doc, origin: map[string]string{}, failed: map[string]bool{}, errs: errs}
	p.applyEnv(os.LookupEnv, os.Environ())
	for _, e := range schemas.Validate(schemas.Config, p.doc) {
		p.fail(e.Field, nil, "%s", e.Message)
	}
	p.checkDurations()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	cfg, err := p.decode()
	if err != nil {
		return nil, err
	}
	applyDefaults(cfg)
	p.resolveFiles(cfg, dir)
	p.check(cfg)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

// parser carries one Parse call: the YAML tree for line numbers, the
// decoded document, where overridden values came from, and the problems.
type parser struct {
	root   *yaml.Node
	doc    any
	origin map[string]string // JSON pointer → environment variable
	failed map[string]bool   // pointers already reported
	errs   []error
}

// fail records a problem at a JSON pointer of the document.
func (p *parser) fail(ptr string, err error, format string, args ...any) {
	p.failed[ptr] = true
	e := &Error{Path: displayPath(p.doc, ptr, ""), Message: fmt.Sprintf(format, args...), Err: err}
	if e.Path == "" {
		e.Path = "(root)"
	}
	if env := p.envFor(ptr); env != "" {
		e.Env = env
	} else {
		e.Line = locate(p.root, ptr)
	}
	p.errs = append(p.errs, e)
}

// envFor returns the environment variable that supplied ptr or a parent.
func (p *parser) envFor(ptr string) string {
	for {
		if env, ok := p.origin[ptr]; ok {
			return env
		}
		i := strings.LastIndexByte(ptr, '/')
		if i < 0 {
			return ""
		}
		ptr = ptr[:i]
	}
}

// decode turns the validated document into a Config. Top-level x- keys
// (YAML anchors) are dropped first.
func (p *parser) decode() (*Config, error) {
	m, _ := p.doc.(map[string]any)
	clean := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "x-") {
			clean[k] = v
		}
	}
	data, err := json.Marshal(clean)
	if err != nil {
		return nil, &Error{Path: "(root)", Message: "cannot encode configuration: " + err.Error(), Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		// The schema admits only what decodes; this is a bug, not bad input.
		return nil, &Error{Path: "(root)", Message: "cannot decode configuration: " + err.Error(), Err: err}
	}
	return &cfg, nil
}

// checkDurations parses every duration, which the schema checks only by
// shape, so an overflow is reported at its field.
func (p *parser) checkDurations() {
	for _, ptr := range p.durationPointers() {
		s, ok := schemas.Lookup(p.doc, ptr).(string)
		if !ok || p.failed[ptr] {
			continue
		}
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			p.fail(ptr, err, "is out of range for a duration")
		}
	}
}

func (p *parser) durationPointers() []string {
	ptrs := []string{"/http/read_timeout", "/channels/webhook/timeout", "/shutdown_timeout"}
	m, _ := p.doc.(map[string]any)
	srcs, _ := m["sources"].([]any)
	for i := range srcs {
		ptrs = append(ptrs, fmt.Sprintf("/sources/%d/interval", i))
	}
	return ptrs
}

func applyDefaults(c *Config) {
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.Redis.Prefix, DefaultRedisPrefix)
	setDefault(&c.TLP.Default, DefaultTLP)
	setDefault(&c.Limits.WebhookPerMinute, DefaultWebhookPerMinute)
	setDefault(&c.Limits.EmailPerHour, DefaultEmailPerHour)
	setDefault(&c.Limits.MISPPushPerMinute, DefaultMISPPushPerMinute)
	setDefault(&c.Limits.IngestPerMinute, DefaultIngestPerMinute)
	setDefault(&c.HTTP.BodyLimit, DefaultBodyLimit)
	setDefault(&c.Channels.Webhook.Timeout.Duration, DefaultWebhookTimeout)
	setDefault(&c.Channels.Webhook.MaxAttempts, DefaultMaxAttempts)
	setDefault(&c.Outbox.ReclaimIdle.Duration, 30*time.Second)
	setDefault(&c.Outbox.BaseBackoff.Duration, time.Second)
	setDefault(&c.Outbox.MaxBackoff.Duration, time.Hour)
	setDefault(&c.Outbox.Workers, 64)
	setDefault(&c.Outbox.PollInterval.Duration, time.Second)
	setDefault(&c.ShutdownTimeout.Duration, DefaultShutdownTimeout)
	enc := &c.Channels.Email.Encrypt
	if enc.RequiredFor == nil {
		enc.RequiredFor = slices.Clone(DefaultEncryptRequired)
	}
	if enc.PreferredFor == nil {
		enc.PreferredFor = slices.Clone(DefaultEncryptPreferred)
	}
	for _, l := range []*[]gateway.TLP{&enc.RequiredFor, &enc.PreferredFor} {
		for i, t := range *l {
			if ct, _, err := gateway.ParseTLP(string(t)); err == nil {
				(*l)[i] = ct
			}
		}
	}
	// Labels were validated by the schema; ParseTLP only canonicalises them.
	if t, _, err := gateway.ParseTLP(string(c.TLP.Default)); err == nil {
		c.TLP.Default = t
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if t, _, err := gateway.ParseTLP(string(s.DefaultTLP)); err == nil {
			s.DefaultTLP = t
		}
		setDefault(&s.DefaultTLP, c.TLP.Default)
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
