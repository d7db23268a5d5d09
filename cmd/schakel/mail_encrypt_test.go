package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/connectors/mail/mailtest"
	"github.com/schakel/schakel/gateway/redistest"
)

// TestAcceptanceMailEncryption runs the gateway with the default
// channels.email.encrypt (RED and AMBER+STRICT required, AMBER preferred)
// and a contact whose pgp_key is set in the constituents file: TLP:RED and
// AMBER+STRICT never reach the relay readable, the keyed contact decrypts
// the full warning, keyless ones get a notice, AMBER goes encrypted where it
// can and in clear where it cannot.
func TestAcceptanceMailEncryption(t *testing.T) {
	key, armored := mailtest.RecipientKey(t, "ciso@a.example", 0)
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(armored), "\n", "\n        ")
	constituents := fmt.Sprintf(`
- id: a
  name: Constituent A
  sectors: [energy]
  assets: {prefixes: ["192.0.2.0/24"]}
  contacts:
    - {email: soc@a.example, name: SOC A}
    - {email: dpo@a.example, name: DPO A, red: true}
    - email: ciso@a.example
      name: CISO A
      red: true
      pgp_key: |
%s
`, indented)
	r := redistest.New(t)
	relay := mailtest.NewRelay(t, mailtest.RelayOptions{})
	path := writeMailConfig(t, t.TempDir(), r, mailConf{relay: relay, constituents: constituents})
	h, _ := startMailGateway(t, path)
	const (
		amber  = "e1c00000-0000-4000-8000-000000000001"
		red    = "e1c00000-0000-4000-8000-000000000002"
		strict = "e1c00000-0000-4000-8000-000000000003"
	)
	h.ingest(event(amber, "advisory", "AMBER", map[string]any{"sectors": []string{"energy"}}), 202)
	h.ingest(event(red, "incident", "RED", map[string]any{"addressees": []any{
		map[string]any{"email": "ciso@a.example"}, map[string]any{"email": "dpo@a.example"}}}), 202)
	h.ingest(event(strict, "intel", "AMBER+STRICT", map[string]any{"addressees": []any{map[string]any{"constituent": "a"}}}), 202)

	// amber: 3 contacts; red: 2 named persons; strict: 3 contacts.
	relay.Wait(8, 20*time.Second)
	relay.Settle(300*time.Millisecond, 10*time.Second)

	type seen struct{ to, subject, kind string }
	var got []seen
	for _, m := range relay.Messages() {
		raw := string(m.Data)
		kind := "clear"
		switch {
		case strings.Contains(m.Header().Get("Content-Type"), "multipart/encrypted"):
			kind = "pgp"
		case strings.Contains(m.Subject(), "An encrypted warning is waiting"):
			kind = "notice"
		}
		for _, id := range []string{red, strict} {
			if strings.Contains(raw, id) {
				t.Errorf("%s to %v: event %s readable on the wire (%s)", m.Subject(), m.To, id, kind)
			}
		}
		if kind == "pgp" {
			inner, err := mailtest.DecryptPGP(m.Data, key)
			if err != nil {
				t.Fatalf("%s to %v: %v", m.Subject(), m.To, err)
			}
			if !strings.Contains(inner, "Subject: [TLP:") || !strings.Contains(inner, "test e1c00000") {
				t.Errorf("decrypted message to %v lacks its subject or title", m.To)
			}
		}
		got = append(got, seen{strings.Join(m.To, ","), m.Subject(), kind})
	}
	want := map[string]string{ // to + TLP label → kind
		"soc@a.example [TLP:AMBER]":         "clear",
		"dpo@a.example [TLP:AMBER]":         "clear",
		"ciso@a.example [TLP:AMBER]":        "pgp",
		"dpo@a.example [TLP:RED]":           "notice",
		"ciso@a.example [TLP:RED]":          "pgp",
		"soc@a.example [TLP:AMBER+STRICT]":  "notice",
		"dpo@a.example [TLP:AMBER+STRICT]":  "notice",
		"ciso@a.example [TLP:AMBER+STRICT]": "pgp",
	}
	if len(got) != len(want) {
		t.Errorf("%d messages, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		label := g.subject[:strings.Index(g.subject, "]")+1]
		if k, ok := want[g.to+" "+label]; !ok || k != g.kind {
			t.Errorf("%s %q went %s, want %q", g.to, g.subject, g.kind, k)
		}
	}
}
