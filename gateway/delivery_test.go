package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// The ids below were computed outside Go (sha256 over the NUL-terminated
// fields, as delivery ids were made when recipients were plain strings);
// a change here strands in-flight deliveries and breaks receivers' dedupe.
func TestDeliveryIDStable(t *testing.T) {
	const ev, version = "ev1", "2026-01-01T00:00:00Z"
	tests := []struct {
		r      Recipient
		ch     Channel
		target string
		want   string
	}{
		{ConstituentRecipient("acme"), ChannelWebhook, "https://hook.acme.test/x", "dlv_2660f8543d1abc3ce5358f30129e7ab1"},
		{ListRecipient("public@lists.test"), ChannelEmail, "public@lists.test", "dlv_cf7c75c7a6151f1ad906a7bb0a7b7e66"},
		{PersonRecipient("ciso@a.example"), ChannelEmail, "ciso@a.example", "dlv_dd600e7a31a0f8a19249a0325f2937b0"},
	}
	for _, tt := range tests {
		t.Run(tt.r.String(), func(t *testing.T) {
			if got := DeliveryID(ev, version, tt.r, tt.ch, tt.target); got != tt.want {
				t.Fatalf("DeliveryID = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRecipientText(t *testing.T) {
	tests := []struct {
		text string
		want Recipient
	}{
		{"gemeente-utrecht", Recipient{RecipientConstituent, "gemeente-utrecht"}},
		{"list:members@lists.example", Recipient{RecipientList, "members@lists.example"}},
		{"person:ciso@a.example", Recipient{RecipientPerson, "ciso@a.example"}},
		{"authority:ncsc", Recipient{RecipientAuthority, "ncsc"}},
		{"upstream:nl-misp", Recipient{RecipientUpstream, "nl-misp"}},
		// Not a kind: read as it was stored, and it round-trips.
		{"other:x", Recipient{RecipientConstituent, "other:x"}},
		{"", Recipient{}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := ParseRecipient(tt.text)
			if got != tt.want {
				t.Fatalf("ParseRecipient(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
			if s := got.String(); s != tt.text {
				t.Fatalf("String() = %q, want %q", s, tt.text)
			}
		})
	}
}

// Deliveries stored before recipients were typed (in outbox streams, delivery
// states, dead letters) must read back as the typed form.
func TestDeliveryDecodesStoredForm(t *testing.T) {
	tests := []struct {
		name     string
		stored   string
		want     Recipient
		released bool
	}{
		{"constituent", `{"delivery_id":"dlv_1","event_id":"e","version":"v","recipient":"acme","channel":"webhook","target":"https://h.test/","tlp":"AMBER","rule":"TLP:AMBER to addressed, owner or sector (concern sector)","attempt":2}`,
			ConstituentRecipient("acme"), false},
		{"list", `{"delivery_id":"dlv_2","event_id":"e","version":"v","recipient":"list:members@lists.example","channel":"email","target":"members@lists.example","tlp":"GREEN","rule":"TLP:GREEN to community lists and unscoped feeds"}`,
			ListRecipient("members@lists.example"), false},
		{"released person", `{"delivery_id":"dlv_3","event_id":"e","version":"v","recipient":"person:ciso@a.example","channel":"email","target":"ciso@a.example","tlp":"RED","rule":"released by admin:alice"}`,
			PersonRecipient("ciso@a.example"), true},
		{"released constituent", `{"delivery_id":"dlv_4","event_id":"e","version":"v","recipient":"acme","channel":"misp_push","target":"https://misp.acme.test","tlp":"AMBER+STRICT","rule":"released by admin:bob"}`,
			ConstituentRecipient("acme"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Delivery
			if err := json.Unmarshal([]byte(tt.stored), &d); err != nil {
				t.Fatal(err)
			}
			if d.Recipient != tt.want || d.Released != tt.released {
				t.Fatalf("decoded recipient %+v released %v, want %+v released %v", d.Recipient, d.Released, tt.want, tt.released)
			}
			// Written again, it keeps every field it was stored with.
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var before, after map[string]any
			if err := json.Unmarshal([]byte(tt.stored), &before); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &after); err != nil {
				t.Fatal(err)
			}
			for k, v := range before {
				if after[k] != v {
					t.Errorf("field %s: %v after a round trip, stored %v", k, after[k], v)
				}
			}
			if _, ok := after["released"]; ok != tt.released {
				t.Errorf("released field present %v, want %v: %s", ok, tt.released, b)
			}
		})
	}
}

func TestReleasedRule(t *testing.T) {
	var d Delivery
	if err := json.Unmarshal([]byte(`{"delivery_id":"d","rule":"`+ReleasedRule("admin:carol")+`"}`), &d); err != nil {
		t.Fatal(err)
	}
	if !d.Released || !strings.HasSuffix(d.Rule, "admin:carol") {
		t.Fatalf("a delivery with ReleasedRule reads as %+v", d)
	}
}
