package keylock_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/omnigate/omnigate/core/keylock"
)

func TestLocks_SerializesOneKeyOnly(t *testing.T) {
	var l keylock.Locks
	var inA, maxA atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "a"
			if i%2 == 1 {
				key = "b"
			}
			defer l.Lock(key)()
			if key == "a" {
				n := inA.Add(1)
				for {
					m := maxA.Load()
					if n <= m || maxA.CompareAndSwap(m, n) {
						break
					}
				}
				inA.Add(-1)
			}
		}()
	}
	wg.Wait()
	if m := maxA.Load(); m != 1 {
		t.Fatalf("%d goroutines held key a at once", m)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d keys left after every unlock", n)
	}
}

func TestLocks_DifferentKeysDoNotBlock(t *testing.T) {
	var l keylock.Locks
	unlockA := l.Lock("a")
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Lock("b")()
	}()
	<-done // would deadlock if b waited for a
	unlockA()
}
