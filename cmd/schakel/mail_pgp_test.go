package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway/redistest"
)

// TestAcceptanceMailSignedWithPGP: with channels.email.pgp_key_file (a
// passphrase-protected key), the warning a mailing list receives is
// PGP/MIME signed and verifies with the CSIRT's public key.
func TestAcceptanceMailSignedWithPGP(t *testing.T) {
	t.Parallel()
	key, armored := mailtest.PGPKey(t, "s3cret")
	r := redistest.New(t)
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	dir := t.TempDir()
	path := writeMailConfig(t, dir, r, mailConf{relay: relay, lists: true, constituents: twoConstituents})
	writeFile(t, dir, "csirt.asc", string(armored))
	writeFile(t, dir, "csirt.pass", "s3cret\n")
	cfg := readFile(t, path)
	if !strings.Contains(cfg, "from: warnings@schakel.example}") {
		t.Fatal("mail configuration changed shape")
	}
	writeFile(t, dir, filepath.Base(path), strings.Replace(cfg, "from: warnings@schakel.example}",
		"from: warnings@schakel.example, pgp_key_file: csirt.asc, pgp_passphrase_file: csirt.pass}", 1))
	h, _ := startMailGateway(t, path)

	h.ingest(event("c1ea0000-0000-4000-8000-0000000000a1", "advisory", "CLEAR", nil), 202)
	relay.Wait(1, 20*time.Second)
	var msg []byte
	eventually(t, "the public list's warning", 10*time.Second, func() bool {
		for _, m := range relay.Messages() {
			if len(m.To) == 1 && m.To[0] == "public-warnings@lists.example" {
				msg = m.Data
				return true
			}
		}
		return false
	})
	signed, sig, err := mailtest.SignedParts(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(openpgp.EntityList{key}, strings.NewReader(signed), strings.NewReader(sig), nil); err != nil {
		t.Fatalf("signature does not verify with the CSIRT's key: %v", err)
	}
}
