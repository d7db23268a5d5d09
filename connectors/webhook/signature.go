// Package webhook speaks Standard Webhooks (standardwebhooks.com) in both
// directions: it signs and POSTs deliveries to constituents, and receives
// signed requests from webhook sources (Ingest, POST /api/v1/ingest/{source}).
// Sign and Verify know no HTTP framework; Verify takes a header getter.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header names fixed by the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a symmetric Standard Webhooks secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far webhook-timestamp may lie from the receiver's
// clock before a request counts as a replay (the specification's 5 minutes).
const DefaultTolerance = 5 * time.Minute

// Verification errors. Verify wraps them with the header or field at fault;
// test with errors.Is.
var (
	ErrMissingHeader = errors.New("missing header")
	ErrTimestamp     = errors.New("timestamp outside tolerance or unparsable")
	ErrSignature     = errors.New("no matching v1 signature")
	ErrSecret        = errors.New("invalid secret")
)

// errMsgID rejects message ids Sign cannot use safely. A "." would make the
// signed string "id.timestamp.body" ambiguous, which the specification warns
// about.
var errMsgID = errors.New("msg_id: must be non-empty and contain no '.', CR or LF")

// NewSecret returns a fresh secret in the form constituents configure:
// "whsec_" followed by base64 of 32 random bytes.
func NewSecret() (string, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("secret: read random bytes: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// decodeSecret returns the HMAC key: the base64 part after "whsec_", or the
// whole string read as base64 when the prefix is absent.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(secret, SecretPrefix)
	if s == "" {
		return nil, fmt.Errorf("secret: empty: %w", ErrSecret)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some tools strip the padding; the key is the same.
		var rawErr error
		if key, rawErr = base64.RawStdEncoding.DecodeString(s); rawErr != nil {
			return nil, fmt.Errorf("secret: not base64: %w", ErrSecret)
		}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("secret: empty key: %w", ErrSecret)
	}
	return key, nil
}

// signer holds an HMAC keyed with one secret plus scratch space, so signing
// allocates nothing but the returned string.
type signer struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// maxCachedSecrets bounds the per-secret pools. Secrets come from the
// constituent registry, so the bound is only reached by a registry far larger
// than any CSIRT's; beyond it, signers are built per call.
const maxCachedSecrets = 10000

var (
	signerPools sync.Map // secret string -> *sync.Pool of *signer
	signerCount atomic.Int64
)

func acquire(secret string) (*signer, *sync.Pool, error) {
	if v, ok := signerPools.Load(secret); ok {
		p := v.(*sync.Pool)
		return p.Get().(*signer), p, nil
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return nil, nil, err
	}
	newSigner := func() any { return &signer{mac: hmac.New(sha256.New, key), buf: make([]byte, 0, 128)} }
	if signerCount.Load() >= maxCachedSecrets {
		return newSigner().(*signer), nil, nil
	}
	p := &sync.Pool{New: newSigner}
	if v, loaded := signerPools.LoadOrStore(secret, p); loaded {
		p = v.(*sync.Pool)
	} else {
		signerCount.Add(1)
	}
	return p.Get().(*signer), p, nil
}

func release(s *signer, p *sync.Pool) {
	if p == nil {
		return
	}
	s.mac.Reset()
	s.buf = s.buf[:0]
	p.Put(s)
}

// begin starts the signed content "id.timestamp." in s.buf; the caller
// appends the timestamp in header form, then calls finish.
func (s *signer) begin(msgID string) {
	s.buf = append(append(s.buf[:0], msgID...), '.')
}

// finish hashes s.buf + "." + body and returns "v1,<base64 HMAC>", held in
// s.buf until the signer is released.
func (s *signer) finish(body []byte) []byte {
	s.buf = append(s.buf, '.')
	s.mac.Write(s.buf)
	s.mac.Write(body)
	sum := s.mac.Sum(s.sum[:0])
	s.buf = append(s.buf[:0], "v1,"...)
	s.buf = base64.StdEncoding.AppendEncode(s.buf, sum)
	return s.buf
}

// Sign returns the webhook-signature value "v1,<base64>" for body sent with
// webhook-id msgID and webhook-timestamp ts (unix seconds).
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	s, p, err := acquireFor(secret, msgID)
	if err != nil {
		return "", err
	}
	s.begin(msgID)
	s.buf = strconv.AppendInt(s.buf, ts.Unix(), 10)
	sig := string(s.finish(body))
	release(s, p)
	return sig, nil
}

// signText signs with the timestamp already in header form, so Send formats
// it once for both the signature and the header.
func signText(secret, msgID, ts string, body []byte) (string, error) {
	s, p, err := acquireFor(secret, msgID)
	if err != nil {
		return "", err
	}
	s.begin(msgID)
	s.buf = append(s.buf, ts...)
	sig := string(s.finish(body))
	release(s, p)
	return sig, nil
}

// acquireFor checks msgID, which only signing needs, then acquires a signer.
func acquireFor(secret, msgID string) (*signer, *sync.Pool, error) {
	if msgID == "" || strings.ContainsAny(msgID, ".\r\n") {
		return nil, nil, errMsgID
	}
	return acquire(secret)
}

// Verify checks a received Standard Webhooks message: the three headers are
// present, webhook-timestamp lies within tolerance of now (either side;
// tolerance <= 0 means DefaultTolerance), and one v1 entry of
// webhook-signature matches, compared in constant time. get returns a header
// value by name; body must be the raw bytes received.
func Verify(secret string, get func(name string) string, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsText, sigs := get(HeaderID), get(HeaderTimestamp), get(HeaderSignature)
	for _, h := range [...]struct{ name, value string }{{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigs}} {
		if h.value == "" {
			return fmt.Errorf("%s: %w", h.name, ErrMissingHeader)
		}
	}
	s, p, err := acquire(secret)
	if err != nil {
		return err
	}
	defer release(s, p)

	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: not unix seconds: %w", HeaderTimestamp, ErrTimestamp)
	}
	// Compare in seconds: time.Unix overflows for absurd header values.
	nowSec, tolSec := now.Unix(), int64(tolerance/time.Second)
	if ts < nowSec-tolSec {
		return fmt.Errorf("%s: older than %s: %w", HeaderTimestamp, tolerance, ErrTimestamp)
	}
	if ts > nowSec+tolSec {
		return fmt.Errorf("%s: more than %s in the future: %w", HeaderTimestamp, tolerance, ErrTimestamp)
	}

	s.begin(id)
	s.buf = append(s.buf, tsText...)
	want := s.finish(body)
	for sig := range strings.FieldsSeq(sigs) {
		// Other schemes (v1a, later versions) are skipped, not failed:
		// senders may list several during a rotation.
		if !strings.HasPrefix(sig, "v1,") {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(sig), want) == 1 {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", HeaderSignature, ErrSignature)
}
