package adapters

import (
	"context"
	"sync"
)

// ReadyState is why an adapter is not ready, for adapters to embed: Run sets
// it as the provider's connection comes and goes, and its Ready method makes
// the adapter a Readier whose answer /readyz shows. The zero value is ready;
// safe for concurrent use.
type ReadyState struct {
	mu  sync.Mutex
	err error
}

// SetReady records why the adapter is not ready; nil means it is.
func (s *ReadyState) SetReady(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Ready returns what SetReady recorded last.
func (s *ReadyState) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

var _ Readier = (*ReadyState)(nil)
