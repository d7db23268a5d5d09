// Package registry keeps the constituent registry in memory: an immutable
// snapshot with its asset matcher, swapped atomically when the registry in
// Redis changes, so routing never waits for a rebuild.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schakel/schakel/gateway"
	"github.com/schakel/schakel/gateway/assets"
)

// Snapshot is one consistent view of the registry. Never modify it.
type Snapshot struct {
	Version      int64
	Constituents []gateway.Constituent
	byID         map[string]int
	matcher      *assets.Matcher
}

// Get returns the constituent with id.
func (s *Snapshot) Get(id string) (*gateway.Constituent, bool) {
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return &s.Constituents[i], true
}

// Owners implements policy.Owners with the snapshot's matcher.
func (s *Snapshot) Owners(ind *gateway.Indicator) []string {
	if s.matcher == nil {
		return nil
	}
	return s.matcher.Owners(ind)
}

// Matcher returns the asset matcher (never nil after Build).
func (s *Snapshot) Matcher() *assets.Matcher { return s.matcher }

// Build makes a snapshot. Bad assets are logged by the caller from the
// returned error; the snapshot indexes everything else.
func Build(version int64, cs []gateway.Constituent) (*Snapshot, error) {
	m, err := assets.Build(cs)
	s := &Snapshot{Version: version, Constituents: cs, byID: make(map[string]int, len(cs)), matcher: m}
	for i := range cs {
		s.byID[cs[i].ID] = i
	}
	return s, err
}

// Source is where the registry lives.
type Source interface {
	Constituents(ctx context.Context) ([]gateway.Constituent, error)
	RegistryVersion(ctx context.Context) (int64, error)
}

// Registry holds the current snapshot.
type Registry struct {
	src  Source
	log  *slog.Logger
	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex // serialises rebuilds
	subs []func(*Snapshot)
}

// New loads the registry once.
func New(ctx context.Context, src Source, log *slog.Logger) (*Registry, error) {
	r := &Registry{src: src, log: log}
	r.cur.Store(&Snapshot{Version: -1, byID: map[string]int{}})
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Current returns the snapshot in force.
func (r *Registry) Current() *Snapshot { return r.cur.Load() }

// OnChange registers f to be called with every new snapshot.
func (r *Registry) OnChange(f func(*Snapshot)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs = append(r.subs, f)
}

// Refresh rebuilds the snapshot when the registry version moved.
func (r *Registry) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := r.src.RegistryVersion(ctx)
	if err != nil {
		return fmt.Errorf("registry version: %w", err)
	}
	if v == r.cur.Load().Version {
		return nil
	}
	cs, err := r.src.Constituents(ctx)
	if err != nil {
		return fmt.Errorf("load constituents: %w", err)
	}
	start := time.Now()
	s, err := Build(v, cs)
	if err != nil {
		r.log.WarnContext(ctx, "some constituent assets were not indexed", "error", err)
	}
	r.cur.Store(s)
	st := s.matcher.Stats()
	r.log.InfoContext(ctx, "registry loaded", "version", v, "constituents", st.Constituents,
		"prefixes", st.Prefixes, "asns", st.ASNs, "domains", st.Domains, "build_ms", time.Since(start).Milliseconds())
	for _, f := range r.subs {
		f(s)
	}
	return nil
}

// Watch refreshes every interval until ctx is done, so every replica picks
// up registry changes made through any other.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "registry refresh failed", "error", err)
			}
		}
	}
}
