//go:build !unix

package bus

import (
	"fmt"
	"os"
)

// lockStore makes the store dir; elsewhere than on Unix its lock is nats-server's
// own (the store's files are held open).
func lockStore(dir string) (*storeLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bus: embedded store dir %s: %w", dir, err)
	}
	return &storeLock{}, nil
}

// storeLock is nothing to hold here.
type storeLock struct{}

func (*storeLock) announce(string) error { return nil }
func (*storeLock) release()              {}
