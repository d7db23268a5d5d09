package mail

import (
	"context"
	"errors"
	"sync"
	"time"
)

// pool keeps a few authenticated connections to the relay, so consecutive
// deliveries skip the TCP, TLS and AUTH round trips, and bounds how many
// connections the sink opens however many deliveries run at once.
type pool struct {
	relay   Relay
	slots   chan struct{}
	maxSent int           // messages per connection before a fresh one
	maxIdle time.Duration // an idle connection older than this is checked with NOOP first

	mu     sync.Mutex
	idle   []*client
	closed bool
}

func newPool(r Relay, size, maxSent int, maxIdle time.Duration) *pool {
	return &pool{relay: r, slots: make(chan struct{}, size), maxSent: maxSent, maxIdle: maxIdle}
}

// send delivers one message over a pooled connection. A reused connection
// that turns out to be dead before the message was handed over is replaced
// once at once (relays drop idle sessions); after that, errors go to the
// caller.
func (p *pool) send(ctx context.Context, from, to string, msg []byte) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()

	c := p.get(ctx)
	reused := c != nil
	if c == nil {
		var err error
		if c, err = dial(ctx, p.relay); err != nil {
			return &connectError{err}
		}
	}
	err := c.send(ctx, from, to, msg)
	var se *stageError
	if err != nil && reused && errors.As(err, &se) && !se.bodySent && connectionLost(se.err) && ctx.Err() == nil {
		c.broken = true
		p.put(c)
		if c, err = dial(ctx, p.relay); err != nil {
			return &connectError{err}
		}
		err = c.send(ctx, from, to, msg)
	}
	p.put(c)
	return err
}

// connectError is a failure to reach or log in to the relay. It says nothing
// about the message, so it is retried whatever reply code caused it.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// connectionLost: not a reply to our command but a dead session (I/O error,
// or 421 "closing transmission channel").
func connectionLost(err error) bool {
	var re *ReplyError
	if errors.As(err, &re) {
		return re.Code == 421
	}
	return true
}

// get returns an idle connection, most recently used first; nil when none.
func (p *pool) get(ctx context.Context) *client {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if time.Since(c.idle) < p.maxIdle {
			return c
		}
		if err := c.noop(ctx); err == nil {
			return c
		}
		c.broken = true
		c.quit()
	}
}

// put returns c to the pool, or closes it when it is spent or broken.
func (p *pool) put(c *client) {
	p.mu.Lock()
	if c.broken || p.closed || c.sent >= p.maxSent || len(p.idle) >= cap(p.slots) {
		p.mu.Unlock()
		c.quit()
		return
	}
	c.idle = time.Now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// close ends every idle session; connections in use close when returned.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.quit()
	}
}
