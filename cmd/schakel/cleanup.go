package main

import (
	"log/slog"
	"sync"
)

// cleanup releases what start provisioned, last first: at once when a
// later step of the start-up fails, else at Close. Every part that holds a
// resource pushes its closer as soon as it holds it, so no error path has
// to know what came before it.
type cleanup struct {
	mu    sync.Mutex
	steps []cleanupStep
}

type cleanupStep struct {
	name  string
	close func() error
}

func (c *cleanup) push(name string, close func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, cleanupStep{name, close})
}

// run closes everything pushed, last first, once; failures are logged and
// do not stop the rest.
func (c *cleanup) run(log *slog.Logger) {
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].close(); err != nil {
			log.Warn("closing failed", "part", steps[i].name, "error", err)
		}
	}
}
