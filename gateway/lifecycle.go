package gateway

import "context"

// Runner is a part that works in the background: a poller, a mailbox
// reader, an SMTP listener. Run works until ctx ends and then returns nil;
// an error means the part stopped on its own and does no more work. Parts
// that hold resources (listeners, connection pools) also implement
// io.Closer: Close releases them whether or not Run ever ran, and may be
// called more than once. Every source and channel shares this lifecycle,
// so the binary starts and stops them all the same way.
type Runner interface {
	Run(ctx context.Context) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context) error

// Run calls f.
func (f RunFunc) Run(ctx context.Context) error { return f(ctx) }
