package config

import (
	"fmt"
	"log/slog"
	"net/url"
)

// Redacted stands in for a secret in printed and logged configuration.
const Redacted = "[redacted]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// redactURL hides the password in a URL's user info (redis://:pw@host)
// and any query, where some clients put tokens.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return Redacted // unparsable: it might be anything
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	return u.String()
}

// Redacted returns a copy whose secrets (keys, passwords, webhook secrets,
// Redis credentials) are replaced by Redacted; paths to secret files stay.
func (c Config) Redacted() Config {
	c.Redis = c.Redis.Redacted()
	c.Admin = c.Admin.Redacted()
	c.Channels.Email = c.Channels.Email.Redacted()
	c.Metrics.Key = redact(c.Metrics.Key)
	srcs := make([]Source, len(c.Sources))
	for i, s := range c.Sources {
		srcs[i] = s.Redacted()
	}
	if c.Sources != nil {
		c.Sources = srcs
	}
	return c
}

// These types keep the fields but drop the methods, so that printing them
// does not recurse into String.
type (
	plainConfig Config
	plainSource Source
	plainEmail  EmailChannel
	plainAdmin  Admin
	plainRedis  Redis
)

// String formats c with its secrets redacted.
func (c Config) String() string { return fmt.Sprintf("%+v", plainConfig(c.Redacted())) }

// GoString formats c for %#v with its secrets redacted.
func (c Config) GoString() string { return fmt.Sprintf("%#v", plainConfig(c.Redacted())) }

// LogValue logs the configuration without secrets.
func (c Config) LogValue() slog.Value {
	srcs := make([]slog.Attr, len(c.Sources))
	for i, s := range c.Sources {
		srcs[i] = slog.Any(s.Name, s)
	}
	lists := make([]slog.Attr, len(c.MailingLists))
	for i, l := range c.MailingLists {
		lists[i] = slog.String(l.Address, l.Audience)
	}
	return slog.GroupValue(
		slog.String("listen", c.Listen),
		slog.String("public_url", c.PublicURL),
		slog.Any("redis", c.Redis),
		slog.Any("admin", c.Admin),
		slog.String("tlp_default", string(c.TLP.Default)),
		slog.Group("limits",
			slog.Int("webhook_per_minute", c.Limits.WebhookPerMinute),
			slog.Int("email_per_hour", c.Limits.EmailPerHour),
			slog.Int("misp_push_per_minute", c.Limits.MISPPushPerMinute),
			slog.Int("ingest_per_minute", c.Limits.IngestPerMinute)),
		slog.Group("http",
			slog.Int("body_limit", c.HTTP.BodyLimit),
			slog.Duration("read_timeout", c.HTTP.ReadTimeout.Duration)),
		slog.Attr{Key: "sources", Value: slog.GroupValue(srcs...)},
		slog.Group("channels",
			slog.Any("email", c.Channels.Email),
			slog.Group("webhook",
				slog.Duration("timeout", c.Channels.Webhook.Timeout.Duration),
				slog.Int("max_attempts", c.Channels.Webhook.MaxAttempts))),
		slog.Attr{Key: "mailing_lists", Value: slog.GroupValue(lists...)},
		slog.String("constituents_file", c.ConstituentsFile),
		slog.Group("metrics", slog.String("key_file", c.Metrics.KeyFile)),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout.Duration),
	)
}

// Redacted returns a copy without secrets.
func (s Source) Redacted() Source {
	s.Secret = redact(s.Secret)
	s.Key = redact(s.Key)
	s.Password = redact(s.Password)
	s.URL = redactURL(s.URL)
	return s
}

// String formats s with its secrets redacted.
func (s Source) String() string { return fmt.Sprintf("%+v", plainSource(s.Redacted())) }

// GoString formats s for %#v with its secrets redacted.
func (s Source) GoString() string { return fmt.Sprintf("%#v", plainSource(s.Redacted())) }

// LogValue logs the source's settings that are set, without secrets.
func (s Source) LogValue() slog.Value {
	r := s.Redacted()
	var attrs []slog.Attr
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("type", r.Type)
	add("default_tlp", string(r.DefaultTLP))
	if r.Own {
		attrs = append(attrs, slog.Bool("own", true))
	}
	add("format", r.Format)
	add("url", r.URL)
	add("secret", r.Secret)
	add("secret_file", r.SecretFile)
	add("key", r.Key)
	add("key_file", r.KeyFile)
	if r.Interval.Duration > 0 {
		attrs = append(attrs, slog.Duration("interval", r.Interval.Duration))
	}
	add("collection", r.Collection)
	add("username", r.Username)
	add("password", r.Password)
	add("password_file", r.PasswordFile)
	add("path", r.Path)
	add("profile", r.Profile)
	add("address", r.Address)
	add("tls", r.TLS)
	add("mailbox", r.Mailbox)
	add("listen", r.Listen)
	if len(r.Recipients) > 0 {
		attrs = append(attrs, slog.Any("recipients", r.Recipients))
	}
	if len(r.Tags) > 0 {
		attrs = append(attrs, slog.Any("tags", r.Tags))
	}
	return slog.GroupValue(attrs...)
}

// Redacted returns a copy without the password.
func (e EmailChannel) Redacted() EmailChannel {
	e.Password = redact(e.Password)
	e.PGPKey = redact(e.PGPKey)
	e.PGPPassphrase = redact(e.PGPPassphrase)
	return e
}

// String formats e with its secrets redacted.
func (e EmailChannel) String() string { return fmt.Sprintf("%+v", plainEmail(e.Redacted())) }

// GoString formats e for %#v with its secrets redacted.
func (e EmailChannel) GoString() string { return fmt.Sprintf("%#v", plainEmail(e.Redacted())) }

// LogValue logs the relay settings without the password.
func (e EmailChannel) LogValue() slog.Value {
	r := e.Redacted()
	return slog.GroupValue(
		slog.String("relay", r.Relay), slog.String("tls", r.TLS), slog.String("username", r.Username),
		slog.String("password", r.Password), slog.String("password_file", r.PasswordFile), slog.String("from", r.From),
		slog.String("pgp_key_file", r.PGPKeyFile))
}

// Redacted returns a copy whose keys are replaced by Redacted.
func (a Admin) Redacted() Admin {
	if a.Keys != nil {
		keys := make([]string, len(a.Keys))
		for i := range keys {
			keys[i] = Redacted
		}
		a.Keys = keys
	}
	return a
}

// String formats a with its secrets redacted.
func (a Admin) String() string { return fmt.Sprintf("%+v", plainAdmin(a.Redacted())) }

// GoString formats a for %#v with its secrets redacted.
func (a Admin) GoString() string { return fmt.Sprintf("%#v", plainAdmin(a.Redacted())) }

// LogValue logs how many admin keys there are, not the keys.
func (a Admin) LogValue() slog.Value {
	return slog.GroupValue(slog.String("keys_file", a.KeysFile), slog.Int("keys", len(a.Keys)))
}

// Redacted returns a copy without credentials in the URL.
func (r Redis) Redacted() Redis {
	r.URL = redactURL(r.URL)
	return r
}

// String formats r with its secrets redacted.
func (r Redis) String() string { return fmt.Sprintf("%+v", plainRedis(r.Redacted())) }

// GoString formats r for %#v with its secrets redacted.
func (r Redis) GoString() string { return fmt.Sprintf("%#v", plainRedis(r.Redacted())) }

// LogValue logs the Redis settings without credentials.
func (r Redis) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", redactURL(r.URL)), slog.String("prefix", r.Prefix), slog.Bool("embedded", r.URL == ""))
}
