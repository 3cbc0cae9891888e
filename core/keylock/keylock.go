// Package keylock serializes, within one process, work on the same key while
// work on different keys runs in parallel. Compare-and-set loops use it so
// goroutines of one replica do not make each other retry; other replicas are
// still handled by the compare-and-set itself.
package keylock

import "sync"

// Locks is a set of per-key mutexes, created on first use and dropped when no
// goroutine holds or waits for them. The zero value is ready to use; a Locks
// must not be copied after first use.
type Locks struct {
	mu sync.Mutex
	m  map[string]*entry
}

// entry is one key's mutex and how many goroutines hold or wait for it.
type entry struct {
	mu   sync.Mutex
	refs int
}

// Lock blocks until key is free, locks it and returns the function that
// unlocks it.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*entry{}
	}
	e := l.m[key]
	if e == nil {
		e = &entry{}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}

// Len is how many keys are locked or waited for, for tests.
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
