package mail

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

func startIntake(t *testing.T, rec *recorder, maxSize int64) string {
	t.Helper()
	in, err := NewSMTPIntake(SMTPIntakeOptions{Name: "smtp-intake", Recipients: []string{"intake@schakel.example"},
		MaxSize: maxSize, Pipeline: rec, Decode: decodeMail})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := in.Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ln.Addr().String()
}

// sendPlain sends one message with the go-smtp client, as an MTA would.
func sendPlain(t *testing.T, addr, to string, msg []byte) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.SendMail("cert@sector.example", []string{to}, bytes.NewReader(msg))
}

func TestSMTPIntakeReplies(t *testing.T) {
	big := append(fixture(t, "sector-warning-amber.eml"), bytes.Repeat([]byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"), 200)...)
	cases := []struct {
		name     string
		to       string
		msg      []byte
		fail     int
		wantCode int // 0: accepted
		wantIn   []string
	}{
		{"advisory for the intake address", "intake@schakel.example", fixture(t, "sector-warning-amber.eml"), 0, 0,
			[]string{"Actieve misbruik Example VPN - indicatoren (ZC-2026-117)"}},
		{"recipient case does not matter", "Intake@Schakel.Example", advisory(1), 0, 0, []string{"Waarschuwing 1"}},
		{"unknown recipient", "postmaster@schakel.example", advisory(2), 0, 550, nil},
		{"garbage", "intake@schakel.example", []byte("\x00\x01\x02"), 0, 554, nil},
		{"store down", "intake@schakel.example", advisory(3), 1, 451, nil},
		{"too large", "intake@schakel.example", big, 0, 552, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{fail: tc.fail}
			addr := startIntake(t, rec, 4096)
			err := sendPlain(t, addr, tc.to, tc.msg)
			code := 0
			if err != nil {
				var se *smtp.SMTPError
				if !errors.As(err, &se) {
					t.Fatalf("send: %v", err)
				}
				code = se.Code
			}
			if code != tc.wantCode {
				t.Fatalf("reply %d (%v), want %d", code, err, tc.wantCode)
			}
			// 250 came only after the pipeline had the event: no waiting here.
			if got := rec.titles(); strings.Join(got, "|") != strings.Join(tc.wantIn, "|") {
				t.Errorf("pipeline has %q, want %q", got, tc.wantIn)
			}
		})
	}
}

func TestSMTPIntakeTellsWhyItRefuses(t *testing.T) {
	addr := startIntake(t, &recorder{}, 0)
	err := sendPlain(t, addr, "intake@schakel.example", []byte("From: a@b.example\r\nSubject: \r\n\r\n"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || !strings.Contains(se.Message, "no subject, no text") {
		t.Errorf("err = %v, want 554 saying what is wrong with the message", err)
	}
}

func TestNewSMTPIntakeChecksConfig(t *testing.T) {
	cases := []struct {
		name  string
		rcpts []string
		want  string
	}{
		{"no recipients", nil, "recipients"},
		{"bad recipient", []string{"intake@schakel.example", "not an address"}, "recipients[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSMTPIntake(SMTPIntakeOptions{Name: "smtp-intake", Recipients: tc.rcpts, Pipeline: &recorder{}, Decode: decodeMail})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "smtp-intake") {
				t.Errorf("err = %v, want one naming the source and %s", err, tc.want)
			}
		})
	}
}

// TestSMTPIntakeLifecycle: Listen binds at once (a taken port is an error
// then, not in the background), Run serves on that listener, and Close
// releases the port whether or not Run ran.
func TestSMTPIntakeLifecycle(t *testing.T) {
	newIntake := func(listen string) *SMTPIntake {
		in, err := NewSMTPIntake(SMTPIntakeOptions{Name: "smtp-intake", Listen: listen, Recipients: []string{"intake@schakel.example"},
			Pipeline: &recorder{}, Decode: decodeMail})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a := newIntake("127.0.0.1:0")
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := a.ln.Addr().String()
	if err := newIntake(addr).Listen(); err == nil || !strings.Contains(err.Error(), "listen "+addr) {
		t.Fatalf("Listen on a taken port = %v, want an error naming the address", err)
	}
	if err := a.Close(); err != nil { // never ran
		t.Fatal(err)
	}
	b := newIntake(addr)
	if err := b.Listen(); err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if err := sendPlain(t, addr, "intake@schakel.example", advisory(1)); err != nil {
		t.Fatalf("send to the running intake: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Close = %v, want nil", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the intake still accepts connections after Close")
	}
}
