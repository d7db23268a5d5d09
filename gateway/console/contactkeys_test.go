package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/schakel/schakel/gateway"
)

func testCert(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func testPGPKey(t *testing.T, lifetime time.Duration) string {
	t.Helper()
	e, err := openpgp.NewEntity("Contact", "", "c@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: uint32(lifetime / time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, _ := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

// The overview lists contact keys that expire within 30 days (and those
// that have), soonest first; the constituents page lists red contacts that
// have no key.
func TestConsoleShowsContactKeyProblems(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	now := time.Now()
	if err := f.st.PutConstituents(ctx, []gateway.Constituent{{ID: "initech", Name: "Initech", Contacts: []gateway.Contact{
		{Email: "nokey-red@initech.example", Name: "Red Without", Red: true},
		{Email: "nokey@initech.example", Name: "Plain Without"},
		{Email: "keyed-red@initech.example", Red: true, PGPKey: testPGPKey(t, 0)},
		{Email: "soon@initech.example", PGPKey: testPGPKey(t, 10*24*time.Hour)},
		{Email: "expired@initech.example", SMIMECert: testCert(t, "Expired", now.Add(-24*time.Hour))},
		{Email: "later@initech.example", SMIMECert: testCert(t, "Later", now.Add(60*24*time.Hour))},
		{Email: "cert-soon@initech.example", SMIMECert: testCert(t, "Cert Soon", now.Add(20*24*time.Hour))},
	}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.login(adminKey)

	ov := f.get("/console/")
	if ov.status != http.StatusOK {
		t.Fatalf("overview: %d", ov.status)
	}
	table := section(t, ov.body, `id="expiring-keys"`)
	order := regexp.MustCompile(`<td>([a-z-]+@initech\.example)</td>`).FindAllStringSubmatch(table, -1)
	var got []string
	for _, m := range order {
		got = append(got, m[1])
	}
	if want := "expired@initech.example soon@initech.example cert-soon@initech.example"; strings.Join(got, " ") != want {
		t.Errorf("expiring keys %q, want %q (soonest first, none beyond 30 days)", got, want)
	}
	if !strings.Contains(table, "<strong>expired</strong>") || !strings.Contains(table, "pgp_key <code>") || !strings.Contains(table, "CN=Cert Soon") {
		t.Errorf("expiring keys table lacks the expired mark, key kind or id:\n%s", table)
	}

	cs := f.get("/console/constituents")
	red := section(t, cs.body, `id="red-without-key"`)
	if !strings.Contains(red, "nokey-red@initech.example") || strings.Contains(red, "nokey@initech.example") || strings.Contains(red, "keyed-red@") {
		t.Errorf("red contacts without a key:\n%s", red)
	}
}

// section returns the table that opens with marker.
func section(t *testing.T, body, marker string) string {
	t.Helper()
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("page has no %s", marker)
	}
	j := strings.Index(body[i:], "</table>")
	if j < 0 {
		t.Fatalf("%s: table not closed", marker)
	}
	return body[i : i+j]
}
