package mail

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		code    int
		lines   int
		wantErr string
	}{
		{"single line", "250 2.0.0 OK\r\n", 250, 1, ""},
		{"code only", "354\r\n", 354, 1, ""},
		{"multi line", "250-relay.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 250, 3, ""},
		{"bare LF", "220 hi\n", 220, 1, ""},
		{"code changes within a reply", "250-a\r\n251 b\r\n", 0, 0, "code changed"},
		{"no code", "hello\r\n", 0, 0, "no status code"},
		{"signed code", "+25 x\r\n", 0, 0, "no status code"},
		{"code out of range", "999 x\r\n", 0, 0, "no status code"},
		{"bad separator", "250x\r\n", 0, 0, "bad separator"},
		{"too short", "25\r\n", 0, 0, "too short"},
		{"cut off", "250-a\r\n", 0, 0, "unexpected EOF"},
		{"endless line", "250 " + strings.Repeat("a", 5000) + "\r\n", 0, 0, "too long"},
		{"endless reply", strings.Repeat("250-a\r\n", 200), 0, 0, "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.code != tc.code || len(r.lines) != tc.lines {
				t.Errorf("code %d lines %d, want %d and %d", r.code, len(r.lines), tc.code, tc.lines)
			}
		})
	}
}

func TestReplyErrorSplitsEnhancedCode(t *testing.T) {
	cases := []struct {
		code     int
		text     string
		enhanced string
		message  string
		temp     bool
	}{
		{550, "5.1.1 no such user", "5.1.1", "no such user", false},
		{451, "4.7.1 greylisted, try later", "4.7.1", "greylisted, try later", true},
		{451, "5.7.1 class does not match the code", "", "5.7.1 class does not match the code", true},
		{554, "transaction failed", "", "transaction failed", false},
	}
	for _, tc := range cases {
		e := reply{code: tc.code, lines: []string{tc.text}}.err("RCPT TO")
		if e.Enhanced != tc.enhanced || e.Message != tc.message || e.Temporary() != tc.temp {
			t.Errorf("%d %q: got %q %q temporary=%v", tc.code, tc.text, e.Enhanced, e.Message, e.Temporary())
		}
	}
}

func TestParseEHLO(t *testing.T) {
	ext := parseEHLO(reply{code: 250, lines: []string{"relay.test greets you", "PIPELINING", "size 1024", "AUTH PLAIN LOGIN", "8BITMIME"}})
	for k, want := range map[string]string{"PIPELINING": "", "SIZE": "1024", "AUTH": "PLAIN LOGIN", "8BITMIME": ""} {
		if got, ok := ext[k]; !ok || got != want {
			t.Errorf("%s = %q (%v), want %q", k, got, ok, want)
		}
	}
	if _, ok := ext["RELAY.TEST"]; ok {
		t.Error("the greeting line was taken for an extension")
	}
}

func TestParseTLSMode(t *testing.T) {
	for in, want := range map[string]TLSMode{"": TLSStartTLS, "none": TLSNone, "STARTTLS": TLSStartTLS, " tls ": TLSImplicit} {
		got, err := ParseTLSMode(in, TLSStartTLS)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTLSMode("ssl", TLSNone); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("ssl: err = %v, want one naming tls", err)
	}
}
