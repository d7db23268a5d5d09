package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/smallstep/pkcs7"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway"
)

// recipientSMIME is a contact's self-signed RSA certificate (PEM) and key.
func recipientSMIME(t *testing.T) (*x509.Certificate, *rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "SOC B"}, EmailAddresses: []string{"soc@b.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// defaultPolicy is channels.email.encrypt's default.
var defaultPolicy = EncryptPolicy{
	Required:  []gateway.TLP{gateway.TLPRed, gateway.TLPAmberStrict},
	Preferred: []gateway.TLP{gateway.TLPAmber},
}

func decryptPGP(t *testing.T, raw []byte, key *openpgp.Entity) string {
	t.Helper()
	inner, err := mailtest.DecryptPGP(raw, key)
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

func decryptSMIME(t *testing.T, raw []byte, cert *x509.Certificate, key *rsa.PrivateKey) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "application/pkcs7-mime" || params["smime-type"] != "enveloped-data" {
		t.Fatalf("Content-Type %q, want application/pkcs7-mime; smime-type=enveloped-data", m.Header.Get("Content-Type"))
	}
	b64, _ := io.ReadAll(m.Body)
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b64), "\r\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := p7.Decrypt(cert, key)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return string(inner)
}

// TestSinkEncrypts sends warnings through a real SMTP relay to contacts with
// and without keys under the default policy, and opens each message as the
// recipient would: encrypted ones decrypt to the full warning with its real
// subject; no message under a required TLP carries a word of the title
// anywhere a relay could read it.
func TestSinkEncrypts(t *testing.T) {
	pgpKey, pgpArmored := mailtest.RecipientKey(t, "soc@a.example", 0)
	cert, certKey, certPEM := recipientSMIME(t)
	_, expiredArmored := mailtest.RecipientKey(t, "soc@a.example", 24*time.Hour)
	c := &gateway.Constituent{ID: "a", Name: "A", Contacts: []gateway.Contact{
		{Email: "pgp@a.example", Red: true, PGPKey: pgpArmored},
		{Email: "smime@a.example", Red: true, SMIMECert: certPEM},
		{Email: "both@a.example", Red: true, PGPKey: pgpArmored, SMIMECert: certPEM},
		{Email: "nokey@a.example", Red: true},
		{Email: "expired@a.example", Red: true, PGPKey: expiredArmored},
	}}
	type want int
	const (
		clear want = iota
		pgp
		smime
		notice
	)
	cases := []struct {
		name string
		tlp  gateway.TLP
		to   string
		c    *gateway.Constituent // nil: a named person, found through Contacts
		now  time.Duration        // sink clock offset
		want want
	}{
		{"RED to a PGP key", gateway.TLPRed, "pgp@a.example", c, 0, pgp},
		{"RED to an S/MIME certificate", gateway.TLPRed, "smime@a.example", c, 0, smime},
		{"RED prefers PGP when both are given", gateway.TLPRed, "both@a.example", c, 0, pgp},
		{"RED without a key", gateway.TLPRed, "nokey@a.example", c, 0, notice},
		{"RED to an expired key", gateway.TLPRed, "expired@a.example", c, 48 * time.Hour, notice},
		{"RED to a named person with a key", gateway.TLPRed, "pgp@a.example", nil, 0, pgp},
		{"RED to a named person nobody registered", gateway.TLPRed, "stranger@x.example", nil, 0, notice},
		{"AMBER+STRICT without a key", gateway.TLPAmberStrict, "nokey@a.example", c, 0, notice},
		{"AMBER+STRICT to a PGP key", gateway.TLPAmberStrict, "pgp@a.example", c, 0, pgp},
		{"AMBER to a PGP key", gateway.TLPAmber, "pgp@a.example", c, 0, pgp},
		{"AMBER without a key goes as before", gateway.TLPAmber, "nokey@a.example", c, 0, clear},
		{"GREEN is never encrypted", gateway.TLPGreen, "pgp@a.example", c, 0, clear},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
			now := time.Now().Add(tc.now)
			s := newTestSink(t, relay, SinkOptions{Encrypt: defaultPolicy, Contacts: contactList(c.Contacts),
				PublicURL: "https://schakel.test", Now: func() time.Time { return now }})
			const title = "Ransomware bij Zorginstelling Noord"
			ev := testEvent(fmt.Sprintf("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0c%02d", i), tc.tlp, title)
			recipient := "a"
			if tc.c == nil {
				recipient = "person:" + tc.to
			}
			d := delivery(ev, recipient, tc.to)
			if err := s.Deliver(context.Background(), d, tc.c, ev, ""); err != nil {
				t.Fatal(err)
			}
			msgs := relay.Wait(1, 10*time.Second)
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			raw := msgs[0].Data
			inClear := strings.Contains(string(raw), "Ransomware") || strings.Contains(string(raw), "Zorginstelling") ||
				strings.Contains(string(raw), "192.0.2") || strings.Contains(string(raw), "CVE-2026")
			if tc.want != clear && inClear {
				t.Fatalf("title words or content readable in the %s message:\n%s", tc.tlp, raw)
			}
			subject := msgs[0].Subject()
			if !strings.HasPrefix(subject, "["+tc.tlp.Label()+"] ") {
				t.Errorf("subject %q lacks the TLP label", subject)
			}
			switch tc.want {
			case clear:
				if !inClear || subject != "["+tc.tlp.Label()+"] "+title {
					t.Errorf("want the warning in clear as before; subject %q", subject)
				}
			case pgp, smime:
				if subject != "["+tc.tlp.Label()+"] Encrypted warning" {
					t.Errorf("outer subject %q", subject)
				}
				var inner string
				if tc.want == pgp {
					inner = decryptPGP(t, raw, pgpKey)
				} else {
					inner = decryptSMIME(t, raw, cert, certKey)
				}
				im, err := mail.ReadMessage(strings.NewReader(inner))
				if err != nil {
					t.Fatalf("inner entity: %v", err)
				}
				if got, _ := new(mime.WordDecoder).DecodeHeader(im.Header.Get("Subject")); got != "["+tc.tlp.Label()+"] "+title {
					t.Errorf("protected subject %q", got)
				}
				if mt, p, _ := mime.ParseMediaType(im.Header.Get("Content-Type")); mt != "multipart/alternative" || p["protected-headers"] != "v1" {
					t.Errorf("inner Content-Type %q", im.Header.Get("Content-Type"))
				}
				if !strings.Contains(inner, "Ransomware") || !strings.Contains(inner, "192.0.2[.]10") {
					t.Errorf("decrypted warning lacks its content:\n%s", inner)
				}
			case notice:
				if subject != "["+tc.tlp.Label()+"] An encrypted warning is waiting for you" {
					t.Errorf("notice subject %q", subject)
				}
				text := msgs[0].Text("text/plain")
				for _, w := range []string{"encrypted warning is waiting", d.ID, "https://schakel.test/", testFrom, "OpenPGP public key"} {
					if !strings.Contains(text, w) {
						t.Errorf("notice lacks %q:\n%s", w, text)
					}
				}
			}
		})
	}
}

// contactList is Contacts over a fixed list.
type contactList []gateway.Contact

func (l contactList) Contact(email string) (gateway.Contact, bool) {
	for _, c := range l {
		if strings.EqualFold(c.Email, email) {
			return c, true
		}
	}
	return gateway.Contact{}, false
}

// With a signing key, the encrypted entity is the signed message: the
// recipient decrypts, then verifies the CSIRT's signature (sign, then
// encrypt; RFC 3156 section 6.1).
func TestSinkSignsThenEncrypts(t *testing.T) {
	signKey, signArmored := mailtest.PGPKey(t, "")
	signer, err := NewPGPSigner(signArmored, nil)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, armored := mailtest.RecipientKey(t, "soc@a.example", 0)
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	s := newTestSink(t, relay, SinkOptions{Encrypt: defaultPolicy, Signer: signer})
	c := &gateway.Constituent{ID: "a", Contacts: []gateway.Contact{{Email: "soc@a.example", Red: true, PGPKey: armored}}}
	ev := testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0d01", gateway.TLPRed, "Gesigneerd en versleuteld")
	if err := s.Deliver(context.Background(), delivery(ev, "a", "soc@a.example"), c, ev, ""); err != nil {
		t.Fatal(err)
	}
	msgs := relay.Wait(1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	inner := decryptPGP(t, msgs[0].Data, rcpt)
	signed, sig, err := mailtest.SignedParts([]byte(inner))
	if err != nil {
		t.Fatalf("decrypted entity is not PGP/MIME signed: %v", err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{signKey}, strings.NewReader(signed), strings.NewReader(sig), nil); err != nil {
		t.Fatalf("signature inside does not verify: %v", err)
	}
	if !strings.Contains(signed, "Gesigneerd en versleuteld") {
		t.Error("the signed part is not the warning")
	}
}

// A digest is protected as its strictest warning requires: with a RED
// warning among them and no key, the recipient gets the notice only.
func TestSinkDigestUnderRequiredTLPIsNotSentInClear(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	s := newTestSink(t, relay, SinkOptions{Encrypt: defaultPolicy})
	ctx := context.Background()
	evs := []*gateway.Event{
		testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0e01", gateway.TLPAmber, "Eerste waarschuwing"),
		testEvent("8d5c0b9e-2f0c-4f57-9d3e-2b6a3c1f0e02", gateway.TLPRed, "Tweede waarschuwing"),
	}
	ds := []gateway.Delivery{delivery(evs[0], "a", "soc@a.example"), delivery(evs[1], "a", "soc@a.example")}
	if err := s.sendDigest(ctx, ds[0], nil, "soc@a.example", []string{ds[0].ID, ds[1].ID}, evs, []string{"", ""}); err != nil {
		t.Fatal(err)
	}
	msgs := relay.Wait(1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if strings.Contains(string(msgs[0].Data), "waarschuwing") {
		t.Fatalf("digest content in clear:\n%s", msgs[0].Data)
	}
	if got := msgs[0].Subject(); got != "[TLP:RED] An encrypted warning is waiting for you" {
		t.Errorf("subject %q", got)
	}
}
