package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/webhook"
)

// FuzzVerify feeds arbitrary secrets, headers, bodies and clocks to Verify.
// It must never panic, fail only with its four sentinel errors, and accept
// only when a v1 entry really is the signature of what it was given.
func FuzzVerify(f *testing.F) {
	f.Add(specSecret, specMsgID, "1614265330", specSignature, []byte(specBody), int64(1614265330), int64(300))
	f.Add(specSecret, specMsgID, "1614265330", "v1a,x v2,y "+specSignature, []byte(specBody), int64(1614265330), int64(0))
	f.Add("whsec_", "", "", "", []byte(nil), int64(0), int64(0))
	f.Add("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a.b", "-9223372036854775808", "v1,", []byte("{}"), int64(-1), int64(-1))
	f.Add("whsec_not base64!", "msg", "9223372036854775807", "v1,,,, v1", []byte{0xff, 0x00}, int64(9223372036854775807), int64(9223372036854775807))
	f.Fuzz(func(t *testing.T, secret, id, ts, sigs string, body []byte, nowUnix, tolSeconds int64) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sigs)
		tol := time.Duration(tolSeconds)
		if tolSeconds > 0 && tolSeconds < 1<<32 {
			tol *= time.Second
		}
		err := webhook.Verify(secret, h.Get, body, time.Unix(nowUnix, 0), tol)
		if err != nil {
			for _, want := range []error{webhook.ErrMissingHeader, webhook.ErrTimestamp, webhook.ErrSignature, webhook.ErrSecret} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Verify returned an unclassified error: %v", err)
		}
		if _, perr := strconv.ParseInt(ts, 10, 64); perr != nil {
			t.Fatalf("accepted unparsable timestamp %q", ts)
		}
		// An independent oracle: the HMAC computed here from the spec's
		// definition must be one of the entries.
		enc := strings.TrimPrefix(secret, "whsec_")
		key, kerr := base64.StdEncoding.DecodeString(enc)
		if kerr != nil {
			key, kerr = base64.RawStdEncoding.DecodeString(enc)
		}
		if kerr != nil || len(key) == 0 {
			t.Fatalf("accepted with an unusable secret %q", secret)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !slices.Contains(strings.Fields(sigs), want) {
			t.Fatalf("accepted without the signature %q in %q", want, sigs)
		}
	})
}
