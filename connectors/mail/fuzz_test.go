package mail

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadReply feeds arbitrary relay output to the reply reader: it must
// return an error or a well-formed reply, never panic or grow without bound.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n",
		"250-relay.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 AUTH PLAIN LOGIN\r\n",
		"550 5.1.1 <x@y> no such user\r\n",
		"451-4.7.1 greylisted\r\n451 4.7.1 try again\r\n",
		"354\n",
		"250-a\r\n251 b\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readReply(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if r.code < 200 || r.code > 599 || len(r.lines) == 0 || len(r.lines) > maxReplyLines {
			t.Fatalf("accepted a malformed reply: %+v", r)
		}
		for _, l := range r.lines {
			if len(l) > maxReplyLine || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("reply line out of bounds: %q", l)
			}
		}
		e := r.err("DATA")
		if e.Code != r.code || strings.ContainsAny(e.Error(), "\r\n") {
			t.Fatalf("reply error %q", e.Error())
		}
		_ = parseEHLO(r)
	})
}
