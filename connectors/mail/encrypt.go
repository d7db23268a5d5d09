package mail

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/smallstep/pkcs7"

	"github.com/schakel/schakel/gateway"
)

// EncryptPolicy says which warnings go encrypted (channels.email.encrypt).
// Required: only encrypted; a recipient without a usable key gets a notice
// that a warning waits, without a word of it. Preferred: encrypted when the
// recipient has a key, in clear otherwise. Other TLPs go as they always did.
type EncryptPolicy struct {
	Required  []gateway.TLP
	Preferred []gateway.TLP
}

// Contacts finds the registered contact with an address. Named persons'
// deliveries carry no constituent, so their key is looked up here.
type Contacts interface {
	Contact(email string) (gateway.Contact, bool)
}

// protection is how one message leaves.
type protection int

const (
	protClear  protection = iota
	protPGP               // PGP/MIME, RFC 3156 multipart/encrypted
	protSMIME             // S/MIME enveloped-data, RFC 8551
	protNotice            // no key where one is required: a content-free notice
)

// recipientKey is a contact's usable key, at most one of the two.
type recipientKey struct {
	pgp  *openpgp.Entity
	cert *x509.Certificate
}

// protectionFor decides how a message under tlp goes to address to.
func (s *Sink) protectionFor(c *gateway.Constituent, to string, tlp gateway.TLP) (protection, recipientKey) {
	required := slices.Contains(s.encrypt.Required, tlp)
	if !required && !slices.Contains(s.encrypt.Preferred, tlp) {
		return protClear, recipientKey{}
	}
	ct, _ := s.contact(c, to)
	if k, ok := s.keys.pgp(ct.PGPKey, s.now()); ok {
		return protPGP, recipientKey{pgp: k}
	}
	if k, ok := s.keys.cert(ct.SMIMECert, s.now()); ok {
		return protSMIME, recipientKey{cert: k}
	}
	if required {
		return protNotice, recipientKey{}
	}
	return protClear, recipientKey{}
}

func (s *Sink) contact(c *gateway.Constituent, to string) (gateway.Contact, bool) {
	if c != nil {
		for _, ct := range c.Contacts {
			if strings.EqualFold(ct.Email, to) {
				return ct, true
			}
		}
		return gateway.Contact{}, false
	}
	if s.contacts != nil {
		return s.contacts.Contact(to)
	}
	return gateway.Contact{}, false
}

// keyCache keeps parsed recipient keys by the hash of their text, so a
// registry's keys are parsed once, not per message.
type keyCache struct {
	mu sync.Mutex
	m  map[string]any // sha256 hex → *openpgp.Entity, *x509.Certificate or error
}

const keyCacheMax = 10000

func (kc *keyCache) parsed(text string, parse func(string) (any, error)) (any, error) {
	sum := sha256.Sum256([]byte(text))
	h := hex.EncodeToString(sum[:])
	kc.mu.Lock()
	v, ok := kc.m[h]
	kc.mu.Unlock()
	if !ok {
		var err error
		if v, err = parse(text); err != nil {
			v = err
		}
		kc.mu.Lock()
		if kc.m == nil || len(kc.m) >= keyCacheMax {
			kc.m = map[string]any{}
		}
		kc.m[h] = v
		kc.mu.Unlock()
	}
	if err, isErr := v.(error); isErr {
		return nil, err
	}
	return v, nil
}

// pgp returns the contact's OpenPGP key when it can encrypt at now.
func (kc *keyCache) pgp(armored string, now time.Time) (*openpgp.Entity, bool) {
	if armored == "" {
		return nil, false
	}
	v, err := kc.parsed(armored, func(t string) (any, error) {
		ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(t))
		if err != nil || len(ring) == 0 {
			return nil, fmt.Errorf("read OpenPGP key: %w", err)
		}
		return ring[0], nil
	})
	if err != nil {
		return nil, false
	}
	e := v.(*openpgp.Entity)
	if _, ok := e.EncryptionKey(now); !ok {
		return nil, false // expired or revoked
	}
	return e, true
}

// cert returns the contact's S/MIME certificate when it is valid at now
// and has an RSA key (the enveloped-data key transport pkcs7 implements).
func (kc *keyCache) cert(p string, now time.Time) (*x509.Certificate, bool) {
	if p == "" {
		return nil, false
	}
	v, err := kc.parsed(p, func(t string) (any, error) {
		block, _ := pem.Decode([]byte(t))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, errors.New("not a PEM certificate")
		}
		return x509.ParseCertificate(block.Bytes)
	})
	if err != nil {
		return nil, false
	}
	c := v.(*x509.Certificate)
	if now.Before(c.NotBefore) || now.After(c.NotAfter) || c.PublicKeyAlgorithm != x509.RSA {
		return nil, false
	}
	return c, true
}

// smimeOnce sets pkcs7's package-wide content cipher, which its default
// (DES-CBC) makes unfit; nothing else in the binary uses pkcs7.
var smimeOnce sync.Once

// encryptMessage wraps a rendered message (mappings/mail: headers, a blank
// line, one MIME entity) into an encrypted one. The entity, with the real
// Subject as a protected header, is encrypted whole: a signed entity stays
// signed inside (sign, then encrypt). The outer Subject keeps only the
// "[URGENT] [TLP:X]" prefix, so no title words travel in clear.
func encryptMessage(msg []byte, p protection, k recipientKey, now time.Time) ([]byte, error) {
	head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		return nil, errors.New("encrypt: message has no body")
	}
	var outer, inner bytes.Buffer
	subject := ""
	for _, f := range headerFields(head) {
		name, value, _ := strings.Cut(f, ":")
		switch strings.ToLower(name) {
		case "content-type":
			// Protected headers (draft-ietf-lamps-header-protection, the
			// form mail clients show): the real subject lives inside.
			inner.WriteString(f + "; protected-headers=\"v1\"\r\n")
		case "content-transfer-encoding":
			inner.WriteString(f + "\r\n")
		case "subject":
			subject = strings.TrimSpace(value)
			inner.WriteString(f + "\r\n")
			outer.WriteString("Subject: " + subjectPrefix(subject) + "Encrypted warning\r\n")
		case "from", "to", "date", "message-id":
			inner.WriteString(f + "\r\n")
			outer.WriteString(f + "\r\n")
		default:
			outer.WriteString(f + "\r\n")
		}
	}
	if subject == "" {
		return nil, errors.New("encrypt: message has no Subject")
	}
	inner.WriteString("\r\n")
	inner.Write(body)

	sum := sha256.Sum256(msg)
	boundary := "=_schakel_encrypted_" + hex.EncodeToString(sum[:12])
	switch p {
	case protPGP:
		var arm bytes.Buffer
		aw, err := armor.Encode(&arm, "PGP MESSAGE", nil)
		if err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		pw, err := openpgp.Encrypt(aw, []*openpgp.Entity{k.pgp}, nil, &openpgp.FileHints{IsBinary: true},
			&packet.Config{Time: func() time.Time { return now }})
		if err != nil {
			return nil, fmt.Errorf("encrypt to OpenPGP key: %w", err)
		}
		if _, err := pw.Write(inner.Bytes()); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		if err := pw.Close(); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		if err := aw.Close(); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		outer.WriteString(`Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";` + "\r\n" + ` boundary="` + boundary + `"` + "\r\n\r\n")
		outer.WriteString("This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n")
		outer.WriteString("--" + boundary + "\r\n")
		outer.WriteString("Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n")
		outer.WriteString("--" + boundary + "\r\n")
		outer.WriteString("Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n")
		outer.WriteString("Content-Description: OpenPGP encrypted message\r\n")
		outer.WriteString("Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n")
		outer.WriteString(strings.ReplaceAll(strings.TrimRight(arm.String(), "\r\n"), "\n", "\r\n"))
		outer.WriteString("\r\n--" + boundary + "--\r\n")
	case protSMIME:
		smimeOnce.Do(func() { pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC })
		der, err := pkcs7.Encrypt(inner.Bytes(), []*x509.Certificate{k.cert})
		if err != nil {
			return nil, fmt.Errorf("encrypt to S/MIME certificate: %w", err)
		}
		outer.WriteString(`Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"` + "\r\n")
		outer.WriteString("Content-Transfer-Encoding: base64\r\n")
		outer.WriteString(`Content-Disposition: attachment; filename="smime.p7m"` + "\r\n\r\n")
		b64 := base64.StdEncoding.EncodeToString(der)
		for len(b64) > 76 {
			outer.WriteString(b64[:76] + "\r\n")
			b64 = b64[76:]
		}
		outer.WriteString(b64 + "\r\n")
	default:
		return nil, fmt.Errorf("encrypt: protection %d is not an encryption", p)
	}
	return outer.Bytes(), nil
}

// headerFields splits a header block into fields, folded lines joined back
// with their CRLF so each field is written out as it came.
func headerFields(head []byte) []string {
	var fields []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(fields) > 0 {
			fields[len(fields)-1] += "\r\n" + line
			continue
		}
		fields = append(fields, line)
	}
	return fields
}

var subjectPrefixRE = regexp.MustCompile(`^(\[URGENT\] )?\[TLP:[A-Z+]+\] `)

// subjectPrefix is the "[URGENT] [TLP:X] " part of a subject mappings/mail
// wrote, which is all an encrypted message shows outside.
func subjectPrefix(subject string) string {
	return subjectPrefixRE.FindString(subject)
}

// notice renders the message a recipient without a key gets where a key is
// required: it says a warning waits and how to get it, and holds nothing of
// the warning (no title, no content) beyond its TLP.
func (s *Sink) notice(d gateway.Delivery, to string, tlp gateway.TLP, critical bool) []byte {
	prefix := "[" + tlp.Label() + "] "
	if critical {
		prefix = "[URGENT] " + prefix
	}
	var b bytes.Buffer
	b.WriteString("From: " + s.from + "\r\n")
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Subject: " + prefix + "An encrypted warning is waiting for you\r\n")
	b.WriteString("Date: " + s.now().Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: <" + s.messageID(d.ID) + ">\r\n")
	b.WriteString("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	where := "your CSIRT (" + s.from + ")"
	if s.publicURL != "" {
		where += ", or open " + strings.TrimRight(s.publicURL, "/") + "/ and ask there"
	}
	text := tlp.Label() + "\r\n\r\n" +
		"An encrypted warning is waiting for you. Warnings labelled " + tlp.Label() + " are sent\r\n" +
		"only encrypted, and no OpenPGP key or S/MIME certificate is registered\r\n" +
		"for " + to + ", so this message holds none of its content.\r\n\r\n" +
		"To receive it, ask " + where + ",\r\n" +
		"quoting reference " + d.ID + ".\r\n\r\n" +
		"To receive such warnings directly, give your CSIRT an OpenPGP public key\r\n" +
		"or S/MIME certificate for this address.\r\n"
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(text))
	_ = qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}
