package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
)

func TestTLSAndRetention(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    string // substring; "" = valid
		check      func(t *testing.T, c *Config)
	}{
		{"absent keeps forever and serves plain HTTP", "listen: 127.0.0.1:8080\n", "", func(t *testing.T, c *Config) {
			if c.TLS.CertFile != "" || c.Retention.Events.Duration != 0 || c.Retention.Audit.Duration != 0 {
				t.Errorf("defaults: %+v %+v", c.TLS, c.Retention)
			}
		}},
		{"tls paths resolve against the file's folder", "tls: {cert_file: s.crt, key_file: /abs/s.key, client_ca_file: ca.pem}\n", "", func(t *testing.T, c *Config) {
			if c.TLS.CertFile != filepath.Join("/etc/schakel", "s.crt") || c.TLS.KeyFile != "/abs/s.key" || c.TLS.ClientCAFile != filepath.Join("/etc/schakel", "ca.pem") {
				t.Errorf("tls: %+v", c.TLS)
			}
		}},
		{"retention periods", "retention: {events: 720h, audit: 2160h}\n", "", func(t *testing.T, c *Config) {
			if c.Retention.Events.Duration != 720*time.Hour || c.Retention.Audit.Duration != 2160*time.Hour {
				t.Errorf("retention: %+v", c.Retention)
			}
		}},
		{"failed-auth limit", "limits: {auth_failures_per_minute: 5}\n", "", func(t *testing.T, c *Config) {
			if c.Limits.AuthFailuresPerMinute != 5 {
				t.Errorf("auth_failures_per_minute = %d", c.Limits.AuthFailuresPerMinute)
			}
		}},
		{"channel limits parse into gateway.Limits", "limits: {webhook_per_minute: 7, email_per_hour: 8, misp_push_per_minute: 9, ingest_per_minute: 10}\n", "", func(t *testing.T, c *Config) {
			if want := (gateway.Limits{WebhookPerMinute: 7, EmailPerHour: 8, MISPPushPerMinute: 9}); c.Limits.Limits != want || c.Limits.IngestPerMinute != 10 {
				t.Errorf("limits: %+v", c.Limits)
			}
		}},
		{"unknown limit", "limits: {sms_per_minute: 1}\n", "limits.sms_per_minute", nil},
		{"cert without key", "tls: {cert_file: s.crt}\n", "tls.key_file", nil},
		{"unknown tls field", "tls: {cert_file: a, key_file: b, ca: c}\n", "tls.ca", nil},
		{"bad retention duration", "retention: {events: soon}\n", "retention.events", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "/etc/schakel")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
