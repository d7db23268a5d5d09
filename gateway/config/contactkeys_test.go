package config_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/config"
)

func armoredPublicKey(t *testing.T, lifetime time.Duration) (string, string) {
	t.Helper()
	e, err := openpgp.NewEntity("SOC", "", "soc@a.example", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: uint32(lifetime / time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, _ := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String(), strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))
}

func pemCert(t *testing.T, notAfter time.Time) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "SOC B"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func ecCert(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ")
}

func TestContactKeys(t *testing.T) {
	armored, fpr := armoredPublicKey(t, 10*24*time.Hour)
	notAfter := time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)
	keys, err := config.ContactKeys(gateway.Contact{Email: "soc@a.example", PGPKey: armored, SMIMECert: pemCert(t, notAfter)})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Field != "pgp_key" || keys[0].ID != fpr || keys[1].Field != "smime_cert" {
		t.Fatalf("keys %+v", keys)
	}
	if d := time.Until(keys[0].Expires); d < 9*24*time.Hour || d > 10*24*time.Hour {
		t.Errorf("pgp key expires in %s, want about 10 days", d)
	}
	if !keys[1].Expires.Equal(notAfter) || !strings.Contains(keys[1].ID, "SOC B") {
		t.Errorf("certificate %+v, want NotAfter %s", keys[1], notAfter)
	}
	never, _ := armoredPublicKey(t, 0)
	if keys, err := config.ContactKeys(gateway.Contact{PGPKey: never}); err != nil || !keys[0].Expires.IsZero() {
		t.Errorf("key without expiry: %+v, %v", keys, err)
	}
}

func TestParseConstituentsContactKeys(t *testing.T) {
	armored, _ := armoredPublicKey(t, 0)
	good := fmt.Sprintf("- id: a\n  name: A\n  contacts:\n  - email: soc@a.example\n    pgp_key: |\n%s\n    smime_cert: |\n%s\n", indent(armored), indent(pemCert(t, time.Now().Add(time.Hour))))
	cs, err := config.ParseConstituents([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if ct := cs[0].Contacts[0]; !strings.Contains(ct.PGPKey, "BEGIN PGP PUBLIC KEY BLOCK") || !strings.Contains(ct.SMIMECert, "BEGIN CERTIFICATE") {
		t.Errorf("contact %+v", ct)
	}
	broken := strings.Replace(armored, "\n\n", "\n\nAAAA", 1) // corrupt the packets
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not armored", "- {id: a, name: A, contacts: [{email: soc@a.example, pgp_key: 'my key'}]}\n",
			`constituents[0].contacts[0].pgp_key (line 1, id "a"): must be an ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)`},
		{"not a certificate", "- {id: a, name: A, contacts: [{email: soc@a.example, smime_cert: 'cert'}]}\n",
			`constituents[0].contacts[0].smime_cert (line 1, id "a"): must be a PEM certificate (-----BEGIN CERTIFICATE-----)`},
		{"corrupt key", fmt.Sprintf("- id: a\n  name: A\n  contacts:\n  - email: soc@a.example\n    pgp_key: |\n%s\n", indent(broken)),
			`constituents[0].contacts[0].pgp_key (line 5, id "a"): not an ASCII-armored OpenPGP public key`},
		{"EC certificate", fmt.Sprintf("- id: a\n  name: A\n  contacts:\n  - email: soc@a.example\n    smime_cert: |\n%s\n", indent(ecCert(t))),
			`constituents[0].contacts[0].smime_cert (line 5, id "a"): the certificate's key is ECDSA; S/MIME encryption needs an RSA key`},
		{"corrupt certificate", "- {id: a, name: A, contacts: [{email: soc@a.example, smime_cert: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}]}\n",
			`constituents[0].contacts[0].smime_cert (line 1, id "a"): not an X.509 certificate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.ParseConstituents([]byte(tc.doc))
			p := problems(err)
			if len(p) != 1 || !strings.HasPrefix(p[0], tc.want) {
				t.Errorf("errors %q, want one starting %q", p, tc.want)
			}
		})
	}
}

func TestParseEmailEncrypt(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		name, yaml          string
		required, preferred []gateway.TLP
		err                 string
	}{
		{"defaults", "{relay: 'smtp.example:587', from: w@x.example}",
			[]gateway.TLP{gateway.TLPRed, gateway.TLPAmberStrict}, []gateway.TLP{gateway.TLPAmber}, ""},
		{"set and canonicalised", "{relay: 'smtp.example:587', from: w@x.example, encrypt: {required_for: [red, 'amber+strict', AMBER], preferred_for: [GREEN]}}",
			[]gateway.TLP{gateway.TLPRed, gateway.TLPAmberStrict, gateway.TLPAmber}, []gateway.TLP{gateway.TLPGreen}, ""},
		{"empty lists mean none", "{relay: 'smtp.example:587', from: w@x.example, encrypt: {required_for: [], preferred_for: []}}",
			[]gateway.TLP{}, []gateway.TLP{}, ""},
		{"a TLP in both lists", "{relay: 'smtp.example:587', from: w@x.example, encrypt: {required_for: [RED], preferred_for: [RED]}}",
			nil, nil, "channels.email.encrypt.preferred_for[0] (line 2): TLP:RED is also in required_for"},
		{"unknown TLP", "{relay: 'smtp.example:587', from: w@x.example, encrypt: {required_for: [PURPLE]}}",
			nil, nil, "channels.email.encrypt.required_for[0] (line 2): value must be one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("channels:\n  email: "+tc.yaml+"\n"), "")
			if tc.err != "" {
				if p := problems(err); len(p) != 1 || !strings.HasPrefix(p[0], tc.err) {
					t.Errorf("errors %q, want one starting %q", p, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			enc := cfg.Channels.Email.Encrypt
			if !slices.Equal(enc.RequiredFor, tc.required) || !slices.Equal(enc.PreferredFor, tc.preferred) {
				t.Errorf("encrypt %+v, want required %v preferred %v", enc, tc.required, tc.preferred)
			}
		})
	}
}
