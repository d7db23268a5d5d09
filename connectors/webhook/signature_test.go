package webhook_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
)

// The specification's own test vector, from
// github.com/standard-webhooks/standard-webhooks libraries/go/webhook_test.go
// (TestWebhookSign) at commit b2fa7b8719fb75d326b591077f5d1b385cfcdfae; the
// same values appear in its JavaScript, C# and Java test suites.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	tests := []struct {
		name, secret string
	}{
		{"whsec prefix", specSecret},
		{"raw base64 without prefix", strings.TrimPrefix(specSecret, webhook.SecretPrefix)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webhook.Sign(tt.secret, specMsgID, time.Unix(specTimestamp, 0), []byte(specBody))
			if err != nil {
				t.Fatal(err)
			}
			if got != specSignature {
				t.Errorf("Sign = %q, want %q", got, specSignature)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two secrets are equal: %q", a)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q: want whsec_ + base64 of 32 bytes (decode err %v, %d bytes)", a, err, len(key))
	}
	now := time.Now()
	h := signedHeader(t, a, "msg_1", now, []byte("{}"))
	if err := webhook.Verify(a, h.Get, []byte("{}"), now, 0); err != nil {
		t.Errorf("round trip with a new secret: %v", err)
	}
	if err := webhook.Verify(b, h.Get, []byte("{}"), now, 0); !errors.Is(err, webhook.ErrSignature) {
		t.Errorf("verify with another new secret: got %v, want ErrSignature", err)
	}
}

// signedHeader builds the headers a Standard Webhooks sender would send. The
// http.Header getter is case-insensitive, like the frameworks' getters.
func signedHeader(t *testing.T, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	sig, err := webhook.Sign(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(specTimestamp, 0)
	body := []byte(specBody)
	other, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	const junk = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

	tests := []struct {
		name      string
		secret    string
		edit      func(h http.Header)
		body      string
		now       time.Time
		tolerance time.Duration
		want      error  // nil = valid
		wantIn    string // substring of the message, naming the field
	}{
		{name: "spec vector is valid"},
		{name: "secret without prefix", secret: strings.TrimPrefix(specSecret, "whsec_")},
		{name: "missing webhook-id", edit: func(h http.Header) { h.Del("webhook-id") }, want: webhook.ErrMissingHeader, wantIn: "webhook-id"},
		{name: "missing webhook-timestamp", edit: func(h http.Header) { h.Del("webhook-timestamp") }, want: webhook.ErrMissingHeader, wantIn: "webhook-timestamp"},
		{name: "missing webhook-signature", edit: func(h http.Header) { h.Del("webhook-signature") }, want: webhook.ErrMissingHeader, wantIn: "webhook-signature"},
		{name: "tampered body", body: `{"test": 2432232315}`, want: webhook.ErrSignature, wantIn: "webhook-signature"},
		{name: "body with a trailing newline", body: specBody + "\n", want: webhook.ErrSignature},
		{name: "wrong secret", secret: other, want: webhook.ErrSignature},
		{name: "another message id", edit: func(h http.Header) { h.Set("webhook-id", "msg_other") }, want: webhook.ErrSignature},
		{name: "timestamp shifted within tolerance breaks the signature", edit: func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(specTimestamp+1)) }, want: webhook.ErrSignature},
		{name: "old timestamp", now: now.Add(5*time.Minute + time.Second), want: webhook.ErrTimestamp, wantIn: "webhook-timestamp"},
		{name: "future timestamp", now: now.Add(-5*time.Minute - time.Second), want: webhook.ErrTimestamp, wantIn: "webhook-timestamp"},
		{name: "exactly at the tolerance is accepted", now: now.Add(5 * time.Minute)},
		{name: "wider tolerance accepts an older message", now: now.Add(time.Hour), tolerance: 2 * time.Hour},
		{name: "unparsable timestamp", edit: func(h http.Header) { h.Set("webhook-timestamp", "hello") }, want: webhook.ErrTimestamp},
		{name: "timestamp in milliseconds", edit: func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(specTimestamp*1000)) }, want: webhook.ErrTimestamp},
		{name: "max int64 timestamp", edit: func(h http.Header) { h.Set("webhook-timestamp", "9223372036854775807") }, want: webhook.ErrTimestamp},
		{name: "min int64 timestamp", edit: func(h http.Header) { h.Set("webhook-timestamp", "-9223372036854775808") }, want: webhook.ErrTimestamp},
		{name: "several signatures, one valid", edit: func(h http.Header) {
			h.Set("webhook-signature", strings.Join([]string{junk, "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==", "v2," + specSignature[3:], specSignature, junk}, " "))
		}},
		{name: "several signatures, none valid", edit: func(h http.Header) { h.Set("webhook-signature", junk+" "+junk) }, want: webhook.ErrSignature},
		{name: "valid signature under another scheme id", edit: func(h http.Header) { h.Set("webhook-signature", "v2,"+specSignature[3:]) }, want: webhook.ErrSignature},
		{name: "partial signature", edit: func(h http.Header) { h.Set("webhook-signature", "v1,") }, want: webhook.ErrSignature},
		{name: "truncated signature", edit: func(h http.Header) { h.Set("webhook-signature", specSignature[:len(specSignature)-1]) }, want: webhook.ErrSignature},
		{name: "secret not base64", secret: "whsec_***", want: webhook.ErrSecret, wantIn: "secret"},
		{name: "empty secret", secret: "whsec_", want: webhook.ErrSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signedHeader(t, specSecret, specMsgID, time.Unix(specTimestamp, 0), body)
			if got := h.Get("webhook-signature"); got != specSignature {
				t.Fatalf("fixture signature %q, want the spec's %q", got, specSignature)
			}
			if tt.edit != nil {
				tt.edit(h)
			}
			secret := specSecret
			if tt.secret != "" {
				secret = tt.secret
			}
			b := body
			if tt.body != "" {
				b = []byte(tt.body)
			}
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			err := webhook.Verify(secret, h.Get, b, at, tt.tolerance)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not name %q", err, tt.wantIn)
			}
		})
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, secret, msgID string
	}{
		{"empty message id", specSecret, ""},
		{"dot in message id", specSecret, "msg.1"},
		{"newline in message id", specSecret, "msg\n1"},
		{"secret not base64", "whsec_!!", "msg_1"},
		{"empty secret", "", "msg_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := webhook.Sign(tt.secret, tt.msgID, time.Now(), []byte("{}"))
			if err == nil {
				t.Fatalf("Sign = %q, want an error", sig)
			}
		})
	}
}
