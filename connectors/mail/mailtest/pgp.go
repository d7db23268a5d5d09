package mailtest

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"strings"
	"testing"

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
