package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/schakel/schakel/gateway"
)

// ContactKey describes a contact's encryption key, for validation and for
// the console's list of keys about to expire.
type ContactKey struct {
	Field string // "pgp_key" or "smime_cert"
	// ID names the key: the OpenPGP fingerprint or the certificate's
	// subject and serial number.
	ID string
	// Expires is when the key stops being usable; zero for never.
	Expires time.Time
}

// ContactKeys parses ct's pgp_key and smime_cert. The error names the field;
// a key that has expired is returned, not refused: a gateway must start
// with it, and the console shows it.
func ContactKeys(ct gateway.Contact) ([]ContactKey, error) {
	var out []ContactKey
	var errs []error
	for _, f := range contactKeyFields(ct) {
		k, err := f.parse(f.value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			continue
		}
		out = append(out, k)
	}
	return out, errors.Join(errs...)
}

type contactKeyField struct {
	name, value string
	parse       func(string) (ContactKey, error)
}

// contactKeyFields lists the key fields ct sets.
func contactKeyFields(ct gateway.Contact) []contactKeyField {
	var fs []contactKeyField
	if ct.PGPKey != "" {
		fs = append(fs, contactKeyField{"pgp_key", ct.PGPKey, pgpKeyInfo})
	}
	if ct.SMIMECert != "" {
		fs = append(fs, contactKeyField{"smime_cert", ct.SMIMECert, smimeCertInfo})
	}
	return fs
}

func pgpKeyInfo(armored string) (ContactKey, error) {
	ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil {
		return ContactKey{}, fmt.Errorf("not an ASCII-armored OpenPGP public key: %w", err)
	}
	if len(ring) != 1 {
		return ContactKey{}, fmt.Errorf("holds %d keys; give exactly one", len(ring))
	}
	e := ring[0]
	k := ContactKey{Field: "pgp_key", ID: strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))}
	sig, _ := e.PrimarySelfSignature()
	if sig == nil {
		return ContactKey{}, errors.New("the key has no valid self-signature")
	}
	k.Expires = lifetimeEnd(e.PrimaryKey.CreationTime, sig.KeyLifetimeSecs)
	// Judge the encryption subkey at its own creation, so an expired key is
	// still recognised as one that could encrypt.
	at := e.PrimaryKey.CreationTime.Add(time.Second)
	for _, sk := range e.Subkeys {
		if sk.Sig != nil && sk.Sig.FlagsValid && sk.Sig.FlagEncryptCommunications && sk.PublicKey.PubKeyAlgo.CanEncrypt() &&
			sk.PublicKey.CreationTime.After(at) {
			at = sk.PublicKey.CreationTime.Add(time.Second)
		}
	}
	enc, ok := e.EncryptionKey(at)
	if !ok {
		return ContactKey{}, errors.New("the key has no encryption (sub)key")
	}
	if end := lifetimeEnd(enc.PublicKey.CreationTime, enc.SelfSignature.KeyLifetimeSecs); !end.IsZero() && (k.Expires.IsZero() || end.Before(k.Expires)) {
		k.Expires = end
	}
	return k, nil
}

func lifetimeEnd(created time.Time, secs *uint32) time.Time {
	if secs == nil || *secs == 0 {
		return time.Time{}
	}
	return created.Add(time.Duration(*secs) * time.Second)
}

func smimeCertInfo(p string) (ContactKey, error) {
	block, rest := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return ContactKey{}, errors.New("not a PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return ContactKey{}, errors.New("give the recipient's certificate only, no chain or key")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ContactKey{}, fmt.Errorf("not an X.509 certificate: %w", err)
	}
	if cert.PublicKeyAlgorithm != x509.RSA {
		// Enveloped-data key transport, as sent, needs an RSA key.
		return ContactKey{}, fmt.Errorf("the certificate's key is %s; S/MIME encryption needs an RSA key", cert.PublicKeyAlgorithm)
	}
	return ContactKey{Field: "smime_cert", ID: fmt.Sprintf("%s (serial %s)", cert.Subject, cert.SerialNumber), Expires: cert.NotAfter}, nil
}
