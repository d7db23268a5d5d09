package mail

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
	"github.com/schakel/schakel/gateway/store"
)

func TestNewPGPSigner(t *testing.T) {
	_, plain := mailtest.PGPKey(t, "")
	if _, err := NewPGPSigner(plain, nil); err != nil {
		t.Fatalf("unprotected key: %v", err)
	}
	_, locked := mailtest.PGPKey(t, "correct horse")
	for _, tc := range []struct {
		pass []byte
		want string
	}{
		{nil, "pgp_passphrase_file"},
		{[]byte("wrong"), "wrong passphrase"},
		{[]byte("correct horse"), ""},
	} {
		_, err := NewPGPSigner(locked, tc.pass)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("passphrase %q: %v, want %q", tc.pass, err, tc.want)
		}
	}
	if _, err := NewPGPSigner([]byte("not a key"), nil); err == nil {
		t.Error("garbage accepted as a key")
	}
}

// TestSinkSignsWithPGP: a warning sent through a real SMTP relay is
// PGP/MIME signed, and the signature verifies with the public key over
// exactly the first part, as a mail client checks it (RFC 3156).
func TestSinkSignsWithPGP(t *testing.T) {
	key, armored := mailtest.PGPKey(t, "s3cret")
	signer, err := NewPGPSigner(armored, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if len(signer.Fingerprint()) != 40 {
		t.Errorf("fingerprint %q", signer.Fingerprint())
	}
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	r := redistest.New(t)
	st := store.New(r.Client, r.Prefix)
	s := newTestSink(t, relay, SinkOptions{Versions: st, PublicURL: "https://schakel.test", Signer: signer})
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0a20", gateway.TLPAmber, "Gesigneerde waarschuwing")
	if _, err := st.PutEvent(context.Background(), ev, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(context.Background(), delivery(ev, "a", "soc@a.example"), nil, ev, ""); err != nil {
		t.Fatal(err)
	}
	msgs := relay.Wait(1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	signed, sig, err := mailtest.SignedParts(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(signed, "Content-Type: multipart/alternative;") || !strings.Contains(signed, "Gesigneerde waarschuwing") {
		t.Fatalf("signed part is not the warning:\n%s", signed)
	}
	ring := openpgp.EntityList{key}
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, strings.NewReader(signed), strings.NewReader(sig), nil); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	tampered := strings.Replace(signed, "Gesigneerde", "Vervalste", 1)
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, strings.NewReader(tampered), strings.NewReader(sig), nil); err == nil {
		t.Fatal("a changed warning still verifies")
	}
}
