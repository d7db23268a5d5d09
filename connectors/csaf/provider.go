package csaf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/schakel/schakel/gateway"
)

// WellKnownPath is where CSAF §7.1.1 puts a provider's metadata.
const WellKnownPath = "/.well-known/csaf/provider-metadata.json"

// MetadataURL turns the configured url into the provider-metadata.json URL:
// a bare origin ("https://advisories.ncsc.nl") gets the well-known path; any
// other URL is used as it is.
func MetadataURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("url: scheme %q: want https (or http for an internal mirror)", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url: %q has no host", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = WellKnownPath
	}
	return u, nil
}

// providerMetadata is the part of provider-metadata.json (CSAF §7.1.7) the
// downloader needs.
type providerMetadata struct {
	CanonicalURL  string         `json:"canonical_url"`
	Distributions []distribution `json:"distributions"`
	PublicKeys    []publicKey    `json:"public_openpgp_keys"`
	Publisher     struct {
		Name string `json:"name"`
	} `json:"publisher"`
	Role string `json:"role"`
}

type distribution struct {
	DirectoryURL string `json:"directory_url"`
	ROLIE        *struct {
		Feeds []struct {
			TLPLabel string `json:"tlp_label"`
			URL      string `json:"url"`
		} `json:"feeds"`
	} `json:"rolie"`
}

type publicKey struct {
	Fingerprint string `json:"fingerprint"`
	URL         string `json:"url"`
}

// parseMetadata decodes provider-metadata.json and checks what the
// downloader relies on, naming each bad field by its JSON pointer.
func parseMetadata(data []byte) (*providerMetadata, error) {
	var pm providerMetadata
	if err := strictJSON(data); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &pm); err != nil {
		return nil, fmt.Errorf("provider metadata: %w", err)
	}
	var v gateway.ValidationError
	if len(pm.Distributions) == 0 {
		v.Add("/distributions", "lists no distribution (no directory_url or ROLIE feed)")
	}
	for i, d := range pm.Distributions {
		if d.DirectoryURL == "" && (d.ROLIE == nil || len(d.ROLIE.Feeds) == 0) {
			v.Add(fmt.Sprintf("/distributions/%d", i), "has neither directory_url nor rolie.feeds")
		}
		if d.ROLIE != nil {
			for j, f := range d.ROLIE.Feeds {
				if f.URL == "" {
					v.Add(fmt.Sprintf("/distributions/%d/rolie/feeds/%d/url", i, j), "is required")
				}
			}
		}
	}
	for i, k := range pm.PublicKeys {
		if k.URL == "" {
			v.Add(fmt.Sprintf("/public_openpgp_keys/%d/url", i), "is required")
		}
		if _, err := parseFingerprint(k.Fingerprint); err != nil {
			v.Add(fmt.Sprintf("/public_openpgp_keys/%d/fingerprint", i), err.Error())
		}
	}
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("provider metadata: %w", err)
	}
	return &pm, nil
}

// parseFingerprint accepts a hex fingerprint with optional spaces (the way
// gpg prints it) and returns the bytes.
func parseFingerprint(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if h == "" {
		return nil, errors.New("is required (the key cannot be checked without it)")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 20 {
		return nil, fmt.Errorf("%q is not a hex OpenPGP fingerprint", s)
	}
	return b, nil
}

// keyFromArmor reads an armored public key and returns the entity whose
// primary key has the fingerprint the provider metadata names; any other
// key in the file is ignored.
func keyFromArmor(data []byte, fingerprint string) (*openpgp.Entity, error) {
	want, err := parseFingerprint(fingerprint)
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP key: %w", err)
	}
	var got []string
	for _, e := range ring {
		if e.PrimaryKey == nil {
			continue
		}
		if bytes.Equal(e.PrimaryKey.Fingerprint, want) {
			return e, nil
		}
		got = append(got, strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)))
	}
	return nil, fmt.Errorf("fingerprint: the key file holds %s, not %s", strings.Join(got, ", "), strings.ToUpper(hex.EncodeToString(want)))
}
