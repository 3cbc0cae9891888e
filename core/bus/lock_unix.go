//go:build unix

package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStore takes the exclusive lock of an embedded server's store dir: two
// servers on one store corrupt it, and a tool started beside a running serve
// would publish into a server nobody consumes from. The lock goes with the
// process (and with release).
//
// The lock file holds the server's client URL once it listens, so that tools
// find it (RunningURL).
func lockStore(dir string) (l *storeLock, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bus: embedded store dir %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, storeLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrStoreInUse, dir)
		}
		return nil, fmt.Errorf("bus: embedded store lock: %w", err)
	}
	return &storeLock{f: f}, nil
}

// storeLock is a held store dir lock.
type storeLock struct{ f *os.File }

// announce writes the server's client URL into the lock file.
func (l *storeLock) announce(url string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(url+"\n"), 0)
	return err
}

// release lets the store dir go.
func (l *storeLock) release() {
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
