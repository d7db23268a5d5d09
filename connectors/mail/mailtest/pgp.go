package mailtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// PGPKey returns a fresh signing key and its armored secret key, protected
// with passphrase unless it is empty.
func PGPKey(t testing.TB, passphrase string) (*openpgp.Entity, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("CSIRT Test", "", "warnings@schakel.example", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if passphrase != "" {
		if err := e.EncryptPrivateKeys([]byte(passphrase), nil); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, b.Bytes()
}

// SignedParts splits a PGP/MIME message (RFC 3156) the way a mail client
// checks it: the first part's exact bytes and the armored signature.
func SignedParts(msg []byte) (signed, signature string, err error) {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return "", "", err
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/signed" || params["protocol"] != "application/pgp-signature" || params["micalg"] != "pgp-sha256" {
		return "", "", errors.New("Content-Type is not multipart/signed with protocol application/pgp-signature and micalg pgp-sha256: " + m.Header.Get("Content-Type"))
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(m.Body); err != nil {
		return "", "", err
	}
	raw, delim := body.String(), "--"+params["boundary"]
	first := strings.Index(raw, delim+"\r\n")
	second := strings.Index(raw, "\r\n"+delim+"\r\n")
	end := strings.Index(raw, "\r\n"+delim+"--")
	if first < 0 || second < first || end < second {
		return "", "", errors.New("the body is not two parts")
	}
	sigPart := raw[second+len(delim)+4 : end]
	i := strings.Index(sigPart, "\r\n\r\n")
	if i < 0 {
		return "", "", errors.New("the signature part has no body")
	}
	return raw[first+len(delim)+2 : second], sigPart[i+4:], nil
}

// RecipientKey returns a recipient's fresh OpenPGP key (with its secret
// part, to decrypt) and its armored public key, as a constituent contact's
// pgp_key holds it; lifetime > 0 makes the key expire after it.
func RecipientKey(t testing.TB, email string, lifetime time.Duration) (*openpgp.Entity, string) {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: uint32(lifetime / time.Second)}
	e, err := openpgp.NewEntity("Recipient", "", email, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, b.String()
}

// DecryptPGP opens a PGP/MIME encrypted message (RFC 3156: multipart/encrypted,
// a version part and an armored OpenPGP message) with key, as a mail client
// does, and returns the inner MIME entity.
func DecryptPGP(msg []byte, key *openpgp.Entity) (string, error) {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return "", err
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		return "", errors.New("Content-Type is not multipart/encrypted with protocol application/pgp-encrypted: " + m.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return "", err
	}
	if !bytes.Contains(body, []byte("Content-Type: application/pgp-encrypted\r\n")) || !bytes.Contains(body, []byte("Version: 1\r\n")) {
		return "", errors.New("the first part is not the application/pgp-encrypted version identification")
	}
	const end = "-----END PGP MESSAGE-----"
	i, j := bytes.Index(body, []byte("-----BEGIN PGP MESSAGE-----")), bytes.Index(body, []byte(end))
	if i < 0 || j < i {
		return "", errors.New("no armored OpenPGP message in the second part")
	}
	blk, err := armor.Decode(bytes.NewReader(body[i : j+len(end)]))
	if err != nil {
		return "", err
	}
	md, err := openpgp.ReadMessage(blk.Body, openpgp.EntityList{key}, nil, nil)
	if err != nil {
		return "", fmt.Errorf("decrypt: %w", err)
	}
	inner, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		return "", fmt.Errorf("decrypt: %w", err)
	}
	return string(inner), nil
}
