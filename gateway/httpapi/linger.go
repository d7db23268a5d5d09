package httpapi

import (
	"io"
	"net"
	"sync"
	"time"
)

// Bounds on the lingering close: how much of a client's unread request the
// server reads and drops, and for how long, before it closes.
const (
	lingerBytes = 1 << 20
	lingerTime  = time.Second
)

// lingerListener makes every connection's Close a lingering close. When the
// server closes with part of a request unread (a body over the limit that
// fasthttp refused from its Content-Length), closing at once makes the
// kernel answer the client's next segment with a reset, which can destroy
// the 413 before the client reads it. So Close first half-closes (the
// client sees the response end), then reads and discards what the client
// is still sending, up to lingerBytes or lingerTime, and only then closes.
type lingerListener struct {
	net.Listener
	wait time.Duration // lingerTime; longer in a test on a loaded machine
}

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c, wait: l.wait}, nil
}

type lingerConn struct {
	net.Conn
	wait time.Duration
	once sync.Once
}

// Close returns at once; the drain runs in its own goroutine, so a slow
// client holds no server worker.
func (c *lingerConn) Close() error {
	c.once.Do(func() { go linger(c.Conn, c.wait) })
	return nil
}

func linger(c net.Conn, wait time.Duration) {
	defer c.Close()
	// *net.TCPConn and *tls.Conn can half-close; anything else just closes.
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		return
	}
	if c.SetReadDeadline(time.Now().Add(wait)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, c, lingerBytes)
}
