package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/redistest"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func newLog(t *testing.T) *Log {
	t.Helper()
	r := redistest.New(t)
	return New(r.Client, r.Prefix)
}

func TestForEventOldestFirst(t *testing.T) {
	l := newLog(t)
	recs := []Record{
		{Time: t0, Action: ActionEventAccepted, EventID: "e1", Version: "v1", TLP: gateway.TLPAmber},
		{Time: t0.Add(time.Second), Action: ActionDeliveryAttempt, EventID: "e1", Version: "v1", Recipient: "utrecht",
			Channel: gateway.ChannelWebhook, Rule: "sector", Attempt: 1},
		{Time: t0.Add(2 * time.Second), Action: ActionKeyCreated, Actor: "admin:0123456789ab", Details: map[string]string{"hash": "abcdef012345"}},
		{Time: t0.Add(3 * time.Second), Action: ActionEventAccepted, EventID: "e2", Version: "v1"},
	}
	if err := l.Append(t.Context(), recs[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), recs[2:]...); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), Record{Time: t0.Add(4 * time.Second), Action: ActionDeliveryDelivered, EventID: "e1",
		Recipient: "utrecht", Channel: gateway.ChannelWebhook, Outcome: "200"}); err != nil {
		t.Fatal(err)
	}
	got, err := l.ForEvent(t.Context(), "e1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if actions := actionsOf(got); !slices.Equal(actions, []string{"event.accepted", "delivery.attempt", "delivery.delivered"}) {
		t.Fatalf("e1 trail %v", actions)
	}
	if got[1].Recipient != "utrecht" || got[1].Channel != gateway.ChannelWebhook || got[1].Rule != "sector" ||
		got[1].Attempt != 1 || got[1].Actor != ActorSystem || !got[1].Time.Equal(t0.Add(time.Second)) {
		t.Errorf("attempt record read back as %+v", got[1])
	}
	if got, _ := l.ForEvent(t.Context(), "e1", 2); len(got) != 2 || got[1].Action != ActionDeliveryAttempt {
		t.Errorf("ForEvent limit 2: %v", actionsOf(got))
	}
	if got, _ := l.ForEvent(t.Context(), "e9", 0); len(got) != 0 {
		t.Errorf("unknown event has %d records", len(got))
	}
}

func TestRecentPaging(t *testing.T) {
	l := newLog(t)
	var want []string
	for i := range 10 {
		if err := l.Append(t.Context(), Record{Action: ActionEventAccepted, EventID: fmt.Sprintf("e%d", i)}); err != nil {
			t.Fatal(err)
		}
		want = append([]string{fmt.Sprintf("e%d", i)}, want...)
	}
	var got []string
	before := ""
	for page := 0; ; page++ {
		recs, next, err := l.Recent(t.Context(), 3, before)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 3 {
			t.Fatalf("page of %d records, limit 3", len(recs))
		}
		for _, r := range recs {
			got = append(got, r.EventID)
		}
		if next == "" {
			break
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
		// New records go to the top, never into later pages.
		if err := l.Append(t.Context(), Record{Action: ActionEventAccepted, EventID: fmt.Sprintf("late%d", page)}); err != nil {
			t.Fatal(err)
		}
		before = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
	recs, _, err := l.Recent(t.Context(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 13 || recs[0].EventID != "late2" {
		t.Errorf("first page after more appends: %d records, newest %q", len(recs), recs[0].EventID)
	}
}

func TestAppendDefaultsAndValidation(t *testing.T) {
	l := newLog(t)
	l.now = func() time.Time { return t0 }
	if err := l.Append(t.Context(), Record{Action: ActionDeliveryRetry}); err != nil {
		t.Fatal(err)
	}
	recs, _, _ := l.Recent(t.Context(), 1, "")
	if len(recs) != 1 || !recs[0].Time.Equal(t0) || recs[0].Actor != ActorSystem {
		t.Errorf("defaults: %+v", recs)
	}
	err := l.Append(t.Context(), Record{Action: ActionDeliveryDead}, Record{EventID: "e"})
	var v *gateway.ValidationError
	if !errors.As(err, &v) || v.Fields[0].Field != "/1/action" {
		t.Errorf("record without action: %v", err)
	}
	if recs, _, _ := l.Recent(t.Context(), 10, ""); len(recs) != 1 {
		t.Errorf("a rejected batch wrote %d records", len(recs)-1)
	}
	for _, c := range []string{"x", "1-", "-1", "1-2-3", "a-b"} {
		if _, _, err := l.Recent(t.Context(), 10, c); !errors.As(err, &v) || v.Fields[0].Field != "before" {
			t.Errorf("Recent(before %q) = %v, want a ValidationError naming before", c, err)
		}
	}
}

func TestAuditNeverKeepsSecrets(t *testing.T) {
	l := newLog(t)
	key := "Zk3Qp9LmXv2Rt8Wy4Bn6Cd1Fg7Hj5Ks0Ae2Ui9Ox" // the shape of an issued API key
	sha1 := "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	rec := Record{
		Action: ActionKeyCreated, Actor: "admin:0123456789ab", EventID: "e1",
		Error: "401 from https://misp.example/events/index with key " + key + " (Authorization)",
		Details: map[string]string{
			"hash":           "0123456789ab",
			"secret":         "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"misp_key":       "anything",
			"Password":       "hunter2",
			"note":           "webhook whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw failed; key=" + key + ".",
			"indicator_sha1": sha1,
		},
	}
	if err := l.Append(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	got, err := l.ForEvent(t.Context(), "e1", 1)
	if err != nil {
		t.Fatal(err)
	}
	r := got[0]
	stored := r.Error + fmt.Sprint(r.Details)
	for _, secret := range []string{key, "whsec_", "hunter2", "anything"} {
		if strings.Contains(stored, secret) {
			t.Errorf("audit kept %q: %s", secret, stored)
		}
	}
	if r.Details["hash"] != "0123456789ab" || r.Details["indicator_sha1"] != sha1 {
		t.Errorf("harmless details changed: %v", r.Details)
	}
	if want := "401 from https://misp.example/events/index with key [redacted] (Authorization)"; r.Error != want {
		t.Errorf("error %q, want %q", r.Error, want)
	}
	if want := "webhook [redacted] failed; key=[redacted]."; r.Details["note"] != want {
		t.Errorf("note %q, want %q", r.Details["note"], want)
	}
	if rec.Details["secret"] == redacted {
		t.Error("Append changed the caller's map")
	}
}

func FuzzScrub(f *testing.F) {
	f.Add("plain text")
	f.Add("key Zk3Qp9LmXv2Rt8Wy4Bn6Cd1Fg7Hj5Ks0Ae2Ui9Ox here")
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("da39a3ee5e6b4b0d3255bfef95601890afd80709")
	f.Add("whsec_whsec_")
	f.Fuzz(func(t *testing.T, s string) {
		out := scrub(s)
		if strings.Contains(out, "whsec_") {
			t.Fatalf("scrub(%q) = %q keeps a webhook secret", s, out)
		}
		for _, w := range strings.FieldsFunc(out, func(r rune) bool { return r > 127 || !isAlnum(byte(r)) }) {
			if looksLikeKey(w) {
				t.Fatalf("scrub(%q) = %q keeps key-shaped %q", s, out, w)
			}
		}
		if again := scrub(out); again != out {
			t.Fatalf("scrub is not idempotent: %q → %q → %q", s, out, again)
		}
	})
}

func actionsOf(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Action)
	}
	return out
}
