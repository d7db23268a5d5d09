package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestOversizedBodyAnswered413 is a client that sends its whole body
// without waiting for "Expect: 100-continue": it must read the 413, not a
// connection reset caused by the body the server left unread.
func TestOversizedBodyAnswered413(t *testing.T) {
	const limit = 64 << 10
	s := New(Options{BodyLimit: limit, Log: slog.New(slog.DiscardHandler)})
	// The client below is slow on purpose (16 KiB socket buffers); under a
	// loaded test run it may need more than the production second.
	s.linger = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Small socket buffers, so the kernel cannot absorb a body the server
	// leaves unread, as it can on loopback with its large default buffers.
	go func() { _ = s.Serve(smallBuffers{ln}) }()
	t.Cleanup(func() { _ = s.App().Shutdown() })

	for _, size := range []int{limit + 1, 4 * limit, 900 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			req := fmt.Appendf(nil, "POST /api/v1/events HTTP/1.1\r\nHost: schakel\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
			req = append(req, bytes.Repeat([]byte(" "), size)...)
			if _, err := conn.Write(req); err != nil {
				t.Fatalf("writing the body: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			defer resp.Body.Close()
			var body ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("response body: %v", err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || body.Error != "request body is larger than 65536 bytes" {
				t.Errorf("got %d %q, want 413 naming the limit", resp.StatusCode, body.Error)
			}
		})
	}
}

type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}
	return c, err
}
