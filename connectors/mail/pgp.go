package mail

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// PGPSigner signs outgoing warnings with one OpenPGP key (PGP/MIME,
// RFC 3156), so recipients can check a warning really comes from the CSIRT
// before acting on it.
type PGPSigner struct {
	key *openpgp.Entity
	cfg *packet.Config
}

// NewPGPSigner reads an ASCII-armored secret key (the first key in the
// file that can sign), decrypting it with passphrase when it is protected.
func NewPGPSigner(armored, passphrase []byte) (*PGPSigner, error) {
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP key: %w", err)
	}
	for _, e := range ring {
		if e.PrivateKey == nil {
			continue
		}
		if err := unlock(e, passphrase); err != nil {
			return nil, err
		}
		// micalg=pgp-sha256 in the message header must match the hash.
		return &PGPSigner{key: e, cfg: &packet.Config{DefaultHash: crypto.SHA256}}, nil
	}
	return nil, errors.New("read OpenPGP key: the file holds no secret key")
}

func unlock(e *openpgp.Entity, passphrase []byte) error {
	keys := []*packet.PrivateKey{e.PrivateKey}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil {
			keys = append(keys, s.PrivateKey)
		}
	}
	for _, k := range keys {
		if !k.Encrypted {
			continue
		}
		if len(passphrase) == 0 {
			return errors.New("OpenPGP key is protected: set channels.email.pgp_passphrase_file")
		}
		if err := k.Decrypt(passphrase); err != nil {
			return fmt.Errorf("OpenPGP key: wrong passphrase: %w", err)
		}
	}
	return nil
}

// Fingerprint is the signing key's fingerprint, in upper-case hex, for the
// log and for recipients to pin.
func (s *PGPSigner) Fingerprint() string {
	return strings.ToUpper(fmt.Sprintf("%x", s.key.PrimaryKey.Fingerprint))
}

// Sign returns an armored detached signature over entity.
func (s *PGPSigner) Sign(entity []byte) (string, error) {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, s.key, bytes.NewReader(entity), s.cfg); err != nil {
		return "", err
	}
	return b.String(), nil
}
