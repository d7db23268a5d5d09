package csaf

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Reasons a listed advisory is rejected; they label
// schakel_rejected_total{source,reason} and the audit records.
const (
	ReasonProvider  = "provider"  // provider-metadata.json unreadable or invalid
	ReasonKey       = "key"       // an OpenPGP key could not be loaded or has the wrong fingerprint
	ReasonListing   = "listing"   // a ROLIE feed or changes.csv unreadable, or a bad line in it
	ReasonFetch     = "fetch"     // the advisory or a sidecar could not be downloaded (retried next poll)
	ReasonInsecure  = "insecure"  // a plain http:// link from an https:// provider
	ReasonFilename  = "filename"  // the file name does not conform, or does not match the tracking id
	ReasonJSON      = "json"      // not UTF-8 or not strict JSON
	ReasonHash      = "hash"      // SHA-256/512 sidecar missing or different
	ReasonSignature = "signature" // OpenPGP signature missing or not made by a provider key
	ReasonSchema    = "schema"    // CSAF 2.0 schema violations
	ReasonInvalid   = "invalid"   // the gateway refused the mapped event
)

// fileNameRE is CSAF §5.1's file name: the lower-cased tracking id with
// characters outside [+\-a-z0-9] as "_", and ".json".
var fileNameRE = regexp.MustCompile(`^[+\-a-z0-9]+(_[+\-a-z0-9]+)*\.json$`)

// strictJSON accepts exactly one JSON value in valid UTF-8 and no
// duplicate object keys, the ambiguity two parsers could read differently.
func strictJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkValue(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: data after the top-level value")
	}
	return nil
}

// maxDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxDepth = 256

func checkValue(dec *json.Decoder, ptr string) error {
	return checkValueDepth(dec, ptr, 0)
}

func checkValueDepth(dec *json.Decoder, ptr string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("invalid JSON: %s: nested deeper than %d levels", orRoot(ptr), maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("invalid JSON: %w", err)
			}
			k, _ := kt.(string)
			if seen[k] {
				return fmt.Errorf("invalid JSON: %s: duplicate key %q", orRoot(ptr), k)
			}
			seen[k] = true
			if err := checkValueDepth(dec, ptr+"/"+escapePointer(k), depth+1); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := checkValueDepth(dec, fmt.Sprintf("%s/%d", ptr, i), depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

func orRoot(ptr string) string {
	if ptr == "" {
		return "(root)"
	}
	return ptr
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// hashAlgo names the digest a sidecar holds by its URL or, failing that,
// by its length.
func hashAlgo(sidecarURL string, digest []byte) string {
	switch {
	case strings.HasSuffix(strings.ToLower(sidecarURL), ".sha512"):
		return "sha512"
	case strings.HasSuffix(strings.ToLower(sidecarURL), ".sha256"):
		return "sha256"
	case len(digest) == sha512.Size:
		return "sha512"
	}
	return "sha256"
}

// checkHash compares data with a sidecar: the file starts with the hex
// digest (sha256sum/sha512sum output: "<hex>  <name>").
func checkHash(data, sidecar []byte, sidecarURL string) error {
	fields := strings.Fields(string(sidecar))
	if len(fields) == 0 {
		return fmt.Errorf("%s: empty hash file", sidecarURL)
	}
	want, err := hex.DecodeString(fields[0])
	if err != nil {
		return fmt.Errorf("%s: %q is not a hex digest", sidecarURL, truncate(fields[0], 20))
	}
	var got []byte
	switch algo := hashAlgo(sidecarURL, want); algo {
	case "sha512":
		s := sha512.Sum512(data)
		got = s[:]
	default:
		s := sha256.Sum256(data)
		got = s[:]
	}
	if len(want) != len(got) {
		return fmt.Errorf("%s: digest has %d bytes, want %d", sidecarURL, len(want), len(got))
	}
	if subtle.ConstantTimeCompare(want, got) != 1 {
		return fmt.Errorf("%s: digest %s… does not match the advisory (%s…)", sidecarURL, hex.EncodeToString(want)[:16], hex.EncodeToString(got)[:16])
	}
	return nil
}

// checkSignature verifies an armored detached signature over data with the
// provider's keys and returns the signer's fingerprint.
func checkSignature(data, sig []byte, keys openpgp.EntityList, now time.Time) (string, error) {
	if len(keys) == 0 {
		return "", errors.New("the provider has no usable OpenPGP key to check the signature with")
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	signer, err := openpgp.CheckArmoredDetachedSignature(keys, bytes.NewReader(data), bytes.NewReader(sig), cfg)
	if err != nil {
		return "", fmt.Errorf("signature does not verify: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(signer.PrimaryKey.Fingerprint)), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
