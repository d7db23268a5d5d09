package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Constituent is an organisation the CSIRT serves
// (schemas/constituent.schema.json).
type Constituent struct {
	ID            string        `json:"id" yaml:"id"`
	Name          string        `json:"name" yaml:"name"`
	Sectors       []string      `json:"sectors,omitempty" yaml:"sectors,omitempty"`
	Assets        Assets        `json:"assets" yaml:"assets"`
	Contacts      []Contact     `json:"contacts,omitempty" yaml:"contacts,omitempty"`
	Webhooks      []Webhook     `json:"webhooks,omitempty" yaml:"webhooks,omitempty"`
	MISPPush      *MISPPush     `json:"misp_push,omitempty" yaml:"misp_push,omitempty"`
	Subscriptions Subscriptions `json:"subscriptions,omitzero" yaml:"subscriptions,omitempty"`
	Limits        Limits        `json:"limits,omitzero" yaml:"limits,omitempty"`
}

// Assets are what a constituent owns: indicators matching them make it the
// owner of an observation.
type Assets struct {
	ASNs     []int64  `json:"asns,omitempty" yaml:"asns,omitempty"`
	Prefixes []string `json:"prefixes,omitempty" yaml:"prefixes,omitempty"`
	Domains  []string `json:"domains,omitempty" yaml:"domains,omitempty"`
}

// Contact is a person or mailbox at a constituent. Red contacts may be named
// recipients of TLP:RED. PGPKey (an ASCII-armored OpenPGP public key) or
// SMIMECert (a PEM certificate) lets warnings to the contact go encrypted;
// channels.email.encrypt says for which TLPs they must.
type Contact struct {
	Email     string `json:"email" yaml:"email"`
	Name      string `json:"name,omitempty" yaml:"name,omitempty"`
	Red       bool   `json:"red,omitempty" yaml:"red,omitempty"`
	PGPKey    string `json:"pgp_key,omitempty" yaml:"pgp_key,omitempty"`
	SMIMECert string `json:"smime_cert,omitempty" yaml:"smime_cert,omitempty"`
}

// HasKey reports whether warnings to the contact can be encrypted.
func (c Contact) HasKey() bool { return c.PGPKey != "" || c.SMIMECert != "" }

// Webhook is a Standard Webhooks endpoint; Secret has the form whsec_<base64>.
type Webhook struct {
	URL    string `json:"url" yaml:"url"`
	Secret string `json:"secret" yaml:"secret"`
}

// Webhook secrets follow Standard Webhooks: "whsec_" and base64 of at
// least MinWebhookSecretBytes random bytes; shorter keys can be guessed
// offline from one signed delivery. GenerateSecret in place of a secret
// asks the admin API to create one, which it shows once.
const (
	WebhookSecretPrefix   = "whsec_"
	MinWebhookSecretBytes = 24
	GenerateSecret        = "generate"
)

// ErrWeakSecret is what CheckWebhookSecret returns for a secret that is not
// whsec_ and base64 of enough bytes.
var ErrWeakSecret = errors.New(`must be "whsec_" followed by base64 of at least 24 random bytes, or "generate" to have Schakel create one`)

// CheckWebhookSecret accepts a Standard Webhooks secret of at least
// MinWebhookSecretBytes bytes (padding may be left off, as some tools do).
func CheckWebhookSecret(s string) error {
	b64, ok := strings.CutPrefix(s, WebhookSecretPrefix)
	if !ok {
		return ErrWeakSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return ErrWeakSecret
		}
	}
	if len(key) < MinWebhookSecretBytes {
		return ErrWeakSecret
	}
	return nil
}

// NewWebhookSecret returns a fresh secret of 32 random bytes.
func NewWebhookSecret() (string, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("webhook secret: read random bytes: %w", err)
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// SecretProblems checks every webhook secret of c; GenerateSecret passes
// when generate is set (the admin API), and is refused otherwise (a file
// read at start-up has nobody to show a generated secret to).
func (c *Constituent) SecretProblems(generate bool) []FieldError {
	var out []FieldError
	for i, w := range c.Webhooks {
		field := "/webhooks/" + strconv.Itoa(i) + "/secret"
		switch {
		case w.Secret == GenerateSecret && generate:
		case w.Secret == GenerateSecret:
			out = append(out, FieldError{Field: field, Message: `"generate" works through the admin API (PUT /api/v1/constituents/{id} or schakel constituents import), which shows the new secret once`})
		default:
			if err := CheckWebhookSecret(w.Secret); err != nil {
				out = append(out, FieldError{Field: field, Message: err.Error()})
			}
		}
	}
	return out
}

// MISPPush is a constituent MISP instance Schakel pushes to.
type MISPPush struct {
	URL string `json:"url" yaml:"url"`
	Key string `json:"key" yaml:"key"`
}

// Subscriptions narrow what is pushed to a constituent; pull views ignore them.
type Subscriptions struct {
	MinPriority Priority `json:"min_priority,omitempty" yaml:"min_priority,omitempty"`
	Kinds       []Kind   `json:"kinds,omitempty" yaml:"kinds,omitempty"`
	Labels      []string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Limits are delivery rates per recipient and channel. The configuration's
// limits block sets the defaults; a constituent's own override them, where
// zero means the default.
type Limits struct {
	WebhookPerMinute  int `json:"webhook_per_minute,omitempty" yaml:"webhook_per_minute,omitempty"`
	EmailPerHour      int `json:"email_per_hour,omitempty" yaml:"email_per_hour,omitempty"`
	MISPPushPerMinute int `json:"misp_push_per_minute,omitempty" yaml:"misp_push_per_minute,omitempty"`
}
