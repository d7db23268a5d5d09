package mail

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/schakel/schakel/gateway"
	mailmap "github.com/schakel/schakel/mappings/mail"
)

// recorder stands in for the pipeline: it keeps what it is given, answers
// duplicate for an id it saw before, rejects events without a title like the
// real normaliser, and can be told to fail for now.
type recorder struct {
	mu     sync.Mutex
	events []*gateway.Event
	seen   map[string]bool
	fail   int // fail this many calls with a temporary error
	calls  int
}

func (r *recorder) Ingest(_ context.Context, src gateway.Source, ev *gateway.Event) (gateway.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail > 0 {
		r.fail--
		return gateway.Result{}, errors.New("store event: connection refused")
	}
	if ev.Title == "" {
		return gateway.Result{}, &gateway.ValidationError{Fields: []gateway.FieldError{{Field: "/title", Message: "is required"}}}
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	ev.Source.Name = src.Name
	key := ev.Title + "\x00" + ev.Source.Ref
	if r.seen[key] {
		return gateway.Result{ID: key, Status: gateway.StatusDuplicate}, nil
	}
	r.seen[key] = true
	r.events = append(r.events, ev)
	return gateway.Result{ID: key, Status: gateway.StatusAccepted}, nil
}

func (r *recorder) titles() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Title)
	}
	return out
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeMail(data []byte) ([]*gateway.Event, []gateway.FieldError, error) {
	return mailmap.DecodeMessage(data, mailmap.Options{})
}

func TestIntakeTake(t *testing.T) {
	cases := []struct {
		name        string
		raw         []byte
		fail        int
		wantErr     bool
		wantRefused bool
		wantIDs     int
	}{
		{"advisory", fixture(t, "sector-warning-amber.eml"), 0, false, false, 1},
		{"garbage", []byte("\x00\x01 not mail at all"), 0, false, true, 0},
		{"store down", fixture(t, "sector-warning-amber.eml"), 1, true, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{fail: tc.fail}
			in := &intake{src: gateway.Source{Name: "box"}, ingest: rec, decode: decodeMail, log: discardLog()}
			out, err := in.take(context.Background(), tc.raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if (out.refused != "") != tc.wantRefused {
				t.Errorf("refused = %q, want refused %v", out.refused, tc.wantRefused)
			}
			if len(out.ids) != tc.wantIDs {
				t.Errorf("%d events taken, want %d", len(out.ids), tc.wantIDs)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	cases := []struct{ in, got, want string }{
		{"folds white space, cuts on a rune", oneLine("a\r\nb\tc  dééé", 9), "a b c dé…"},
		{"short stays", oneLine("kort", 9), "kort"},
		{"reply text is ASCII on one line", replyText("naïve\r\nreason"), "na ve reason"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.in, tc.got, tc.want)
		}
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
