package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxSecretFile bounds what is read from a *_file: secrets are short, and a
// wrong path pointing at a large file should fail fast.
const maxSecretFile = 1 << 20

// resolveFiles makes relative paths relative to dir and reads every *_file
// secret into its sibling field. Errors name the setting and the file,
// never the content.
func (p *parser) resolveFiles(c *Config, dir string) {
	abs := func(path string) string {
		if path == "" || filepath.IsAbs(path) || dir == "" {
			return path
		}
		return filepath.Join(dir, path)
	}
	c.ConstituentsFile = abs(c.ConstituentsFile)
	c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile = abs(c.TLS.CertFile), abs(c.TLS.KeyFile), abs(c.TLS.ClientCAFile)
	for i := range c.Sources {
		// A drop folder is a path like any other in this file.
		c.Sources[i].Path = abs(c.Sources[i].Path)
	}

	if c.Admin.KeysFile != "" {
		c.Admin.KeysFile = abs(c.Admin.KeysFile)
		keys, err := readKeysFile(c.Admin.KeysFile)
		if err != nil {
			p.fail("/admin/keys_file", err, "%s", err.Error())
		}
		c.Admin.Keys = append(c.Admin.Keys, keys...)
	}
	c.Admin.Keys = dedupe(c.Admin.Keys)

	read := func(ptr string, path *string, into *string) {
		if *path == "" {
			return
		}
		*path = abs(*path)
		v, err := readSecretFile(*path)
		if err != nil {
			p.fail(ptr, err, "%s", err.Error())
			return
		}
		*into = v
	}
	read("/metrics/key_file", &c.Metrics.KeyFile, &c.Metrics.Key)
	read("/channels/email/password_file", &c.Channels.Email.PasswordFile, &c.Channels.Email.Password)
	read("/channels/email/pgp_key_file", &c.Channels.Email.PGPKeyFile, &c.Channels.Email.PGPKey)
	read("/channels/email/pgp_passphrase_file", &c.Channels.Email.PGPPassphraseFile, &c.Channels.Email.PGPPassphrase)
	for i := range c.Sources {
		s := &c.Sources[i]
		base := fmt.Sprintf("/sources/%d/", i)
		read(base+"secret_file", &s.SecretFile, &s.Secret)
		read(base+"password_file", &s.PasswordFile, &s.Password)
		if s.KeyFile != "" {
			read(base+"key_file", &s.KeyFile, &s.Key)
			if s.Key != "" && !isAPIKey(s.Key) {
				p.fail(base+"key_file", nil, "%s does not hold a MISP key (40 letters and digits)", s.KeyFile)
			}
		}
	}
}

func readSecretFile(path string) (string, error) {
	data, err := readLimited(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

func readLimited(path string) ([]byte, error) {
	// Stat first: opening a FIFO or a device such as /dev/stdin would block
	// or never end.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxSecretFile+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if buf.Len() > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; is it the right file?", path, maxSecretFile)
	}
	return buf.Bytes(), nil
}

// readKeysFile reads one 40-character key per line; blank lines and
// everything after a "#" are ignored.
func readKeysFile(path string) ([]string, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !isAPIKey(line) {
			bad = append(bad, fmt.Sprint(n))
			continue
		}
		keys = append(keys, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	switch len(bad) {
	case 0:
		return keys, nil
	case 1:
		return nil, fmt.Errorf("%s line %s: a key must be 40 letters and digits", path, bad[0])
	}
	return nil, fmt.Errorf("%s lines %s: a key must be 40 letters and digits", path, strings.Join(bad, ", "))
}

func isAPIKey(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
