package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// replica is one process's Store on a shared backend, with a connection of
// its own.
type replica struct {
	st *store.Store
	// crash cuts the replica off from the backend, as kill -9 or a partition
	// would: nothing it sends arrives any more, so nothing is released.
	crash func()
}

// leaseBackends runs test once per backend and read-cache setting, in
// parallel; open returns a new replica on the subtest's backend.
func leaseBackends(t *testing.T, test func(t *testing.T, open func(t *testing.T) replica)) {
	srv := bustest.RunServer(t)
	var n atomic.Int64
	for _, cache := range []int{0, 1 << 20} {
		t.Run(fmt.Sprintf("kv/cache=%d", cache), func(t *testing.T) {
			t.Parallel()
			prefix := fmt.Sprintf("lease%d_", n.Add(1))
			test(t, func(t *testing.T) replica {
				nc := srv.Connect(t)
				js, err := jetstream.New(nc)
				if err != nil {
					t.Fatal(err)
				}
				kv, err := store.NewJetStream(t.Context(), js, store.JetStreamOptions{BucketPrefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				st := store.New(kv, store.Options{CacheBytes: cache})
				t.Cleanup(func() { _ = st.Close() })
				return replica{st: st, crash: nc.Close}
			})
		})
		t.Run(fmt.Sprintf("redis/cache=%d", cache), func(t *testing.T) {
			u := storetest.RedisURL(t, "lease")
			t.Parallel()
			prefix := "omnigate-test:lease:" + core.NewID() + ":"
			t.Cleanup(func() { storetest.DeleteRedisPrefix(t, u, prefix) })
			test(t, func(t *testing.T) replica {
				kv, err := store.NewRedis(t.Context(), store.RedisOptions{URL: u, Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				st := store.New(kv, store.Options{CacheBytes: cache})
				t.Cleanup(func() { _ = st.Close() })
				return replica{st: st, crash: func() { _ = st.Close() }}
			})
		})
	}
}

// acquire calls Acquire and fails the test on an error.
func acquire(t *testing.T, l *store.Lease) bool {
	t.Helper()
	ok, err := l.Acquire(t.Context())
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return ok
}

// holder returns who holds lease l, "" for nobody.
func holder(t *testing.T, l *store.Lease) string {
	t.Helper()
	owner, held, err := l.Holder(t.Context())
	if err != nil {
		t.Fatalf("holder: %v", err)
	}
	if !held {
		return ""
	}
	return owner
}

// TestLease_OneHolder: of two replicas, one holds the lease; a release lets
// the other take it at once; a Lease takes back its own hold but never
// another's, even one with the same owner.
func TestLease_OneHolder(t *testing.T) {
	leaseBackends(t, func(t *testing.T, open func(t *testing.T) replica) {
		a, b := open(t).st.Lease("poll", "a", 5*time.Second), open(t).st.Lease("poll", "b", 5*time.Second)
		if !acquire(t, a) {
			t.Fatal("a: not acquired on a free lease")
		}
		if acquire(t, b) {
			t.Fatal("b: acquired while a holds it")
		}
		if got := holder(t, b); got != "a" {
			t.Fatalf("holder %q, want a", got)
		}
		if !acquire(t, a) {
			t.Fatal("a: lost its own lease on Acquire")
		}
		if err := a.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := holder(t, a); got != "" {
			t.Fatalf("holder %q after release, want none", got)
		}
		if !acquire(t, b) {
			t.Fatal("b: not acquired after a released")
		}
		// Same owner, another Lease: a second process on the same host.
		if acquire(t, open(t).st.Lease("poll", "b", 5*time.Second)) {
			t.Fatal("another Lease with owner b took b's hold")
		}
		if err := a.Release(t.Context()); err != nil || holder(t, b) != "b" {
			t.Fatalf("a released b's lease: %v", err)
		}
	})
}

// TestLease_HoldRenews: Hold keeps the lease for longer than its ttl and
// releases it when fn returns, so the other replica takes it at once.
func TestLease_HoldRenews(t *testing.T) {
	leaseBackends(t, func(t *testing.T, open func(t *testing.T) replica) {
		const ttl = time.Second
		a, b := open(t).st.Lease("poll", "a", ttl), open(t).st.Lease("poll", "b", ttl)
		if !acquire(t, a) {
			t.Fatal("a: not acquired")
		}
		err := a.Hold(t.Context(), func(ctx context.Context) error {
			for end := time.Now().Add(3 * ttl); time.Now().Before(end); {
				if acquire(t, b) {
					return errors.New("b acquired while a holds the lease")
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("hold ended: %w", context.Cause(ctx))
				case <-time.After(100 * time.Millisecond):
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !acquire(t, b) {
			t.Fatal("b: not acquired at once after a's Hold returned")
		}
	})
}

// TestLease_HoldReleasesOnCancel: a cancelled Hold cancels fn, releases the
// lease and returns fn's error.
func TestLease_HoldReleasesOnCancel(t *testing.T) {
	leaseBackends(t, func(t *testing.T, open func(t *testing.T) replica) {
		a, b := open(t).st.Lease("poll", "a", 5*time.Second), open(t).st.Lease("poll", "b", 5*time.Second)
		if !acquire(t, a) {
			t.Fatal("a: not acquired")
		}
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{})
		go func() { <-started; cancel() }()
		err := a.Hold(ctx, func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		})
		if err != nil {
			t.Fatalf("Hold: %v, want nil", err)
		}
		if !acquire(t, b) {
			t.Fatal("b: not acquired at once after a's cancelled Hold")
		}
	})
}

// TestLease_TakeoverAfterCrash: a holder cut off from the backend stops (its
// fn's ctx is cancelled with ErrLeaseLost) before the lease expires, and the
// other replica takes the lease within about the ttl.
func TestLease_TakeoverAfterCrash(t *testing.T) {
	leaseBackends(t, func(t *testing.T, open func(t *testing.T) replica) {
		const ttl = 2 * time.Second
		ra := open(t)
		a, b := ra.st.Lease("poll", "a", ttl), open(t).st.Lease("poll", "b", ttl)
		if !acquire(t, a) {
			t.Fatal("a: not acquired")
		}
		var stopped atomic.Int64 // when a's fn saw its ctx end, Unix ns
		held := make(chan error, 1)
		go func() {
			held <- a.Hold(t.Context(), func(ctx context.Context) error {
				<-ctx.Done()
				stopped.Store(time.Now().UnixNano())
				if !errors.Is(context.Cause(ctx), store.ErrLeaseLost) {
					return fmt.Errorf("fn's ctx ended with %v, want ErrLeaseLost", context.Cause(ctx))
				}
				return nil
			})
		}()
		time.Sleep(ttl / 2) // a renewal or two later
		crashed := time.Now()
		ra.crash()
		for !acquire(t, b) {
			if time.Since(crashed) > ttl+2*time.Second {
				t.Fatalf("b: not acquired %s after a crashed, ttl %s", time.Since(crashed), ttl)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Now()
		t.Logf("takeover %s after the crash (ttl %s)", took.Sub(crashed).Round(10*time.Millisecond), ttl)
		if err := <-held; !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("a's Hold: %v, want ErrLeaseLost", err)
		}
		if s := stopped.Load(); s == 0 || s > took.UnixNano() {
			t.Fatal("a's fn was still running when b took the lease")
		}
		if got := holder(t, b); got != "b" {
			t.Fatalf("holder %q, want b", got)
		}
	})
}

// TestLease_LostWhenTaken: when the key is taken from under a holder, its next
// renewal notices: fn's ctx is cancelled within ttl/3, Hold returns
// ErrLeaseLost and the new holder keeps the lease.
func TestLease_LostWhenTaken(t *testing.T) {
	leaseBackends(t, func(t *testing.T, open func(t *testing.T) replica) {
		const ttl = 3 * time.Second
		rb := open(t)
		a, b := open(t).st.Lease("poll", "a", ttl), rb.st.Lease("poll", "b", ttl)
		if !acquire(t, a) {
			t.Fatal("a: not acquired")
		}
		var taken time.Time
		err := a.Hold(t.Context(), func(ctx context.Context) error {
			// An operator deletes the key; b takes the free lease.
			if err := rb.st.KV().Delete(ctx, "leases", "poll", 0); err != nil {
				return err
			}
			if !acquire(t, b) {
				return errors.New("b: not acquired after the delete")
			}
			taken = time.Now()
			select {
			case <-ctx.Done():
				if d := time.Since(taken); d > ttl/3+time.Second {
					return fmt.Errorf("fn's ctx cancelled %s after the lease was taken, want within ttl/3", d)
				}
				return nil
			case <-time.After(ttl):
				return errors.New("fn's ctx not cancelled after the lease was taken")
			}
		})
		if !errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Hold: %v, want ErrLeaseLost from a conflict", err)
		}
		if got := holder(t, b); got != "b" {
			t.Fatalf("holder %q, want b: a must not release what it lost", got)
		}
		if acquire(t, a) {
			t.Fatal("a: acquired while b holds the lease")
		}
	})
}

// TestLease_Invalid: a bad ttl or name fails every call with ErrInvalid, and
// Hold without Acquire fails with ErrLeaseLost without running fn.
func TestLease_Invalid(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	st := store.New(newKV(t), store.Options{})
	for _, l := range []*store.Lease{st.Lease("poll", "a", 0), st.Lease("", "a", time.Second)} {
		if _, err := l.Acquire(t.Context()); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Acquire: %v, want ErrInvalid", err)
		}
		if _, _, err := l.Holder(t.Context()); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Holder: %v, want ErrInvalid", err)
		}
	}
	ran := false
	err := st.Lease("poll", "a", time.Second).Hold(t.Context(), func(context.Context) error { ran = true; return nil })
	if !errors.Is(err, store.ErrLeaseLost) || ran {
		t.Fatalf("Hold without Acquire: %v (fn ran: %v), want ErrLeaseLost", err, ran)
	}
}

// faultyKV is a KV whose Updates can be made to fail: with lose armed, the
// next one is made but answered with an error, as when the connection breaks
// before the answer arrives; with stall set, every one hangs until its ctx is
// done, as behind a network partition.
type faultyKV struct {
	store.KV
	lose, stall atomic.Bool
}

func (k *faultyKV) Update(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	if k.stall.Load() {
		<-ctx.Done()
		return 0, fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
	}
	n, err := k.KV.Update(ctx, bucket, key, value, rev, ttl)
	if err == nil && k.lose.CompareAndSwap(true, false) {
		return 0, fmt.Errorf("%w: answer lost", store.ErrUnavailable)
	}
	return n, err
}

// TestLease_TakesBackItsOwnWrite: a renewal whose answer was lost ends the
// hold, but the same Lease's next Acquire recognizes its own write and takes
// the lease back at once instead of waiting for it to expire; another Lease
// with the same owner cannot.
func TestLease_TakesBackItsOwnWrite(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	kv := &faultyKV{KV: newKV(t)}
	st := store.New(kv, store.Options{})
	a := st.Lease("poll", "a", 5*time.Second)
	if !acquire(t, a) {
		t.Fatal("a: not acquired")
	}
	kv.lose.Store(true)
	if held, err := a.Acquire(t.Context()); held || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("renewal with a lost answer: held %v, %v", held, err)
	}
	if acquire(t, st.Lease("poll", "a", 5*time.Second)) {
		t.Fatal("another Lease with owner a took a's lease")
	}
	if !acquire(t, a) {
		t.Fatal("a: did not take back its own lease")
	}
	// And within Hold: the lost answer ends the hold; Acquire takes it back.
	kv.lose.Store(true)
	err := a.Hold(t.Context(), func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
	if !errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Hold: %v, want ErrLeaseLost from the lost answer", err)
	}
	if !acquire(t, a) || holder(t, a) != "a" {
		t.Fatal("a: did not take back its own lease after Hold")
	}
}

// TestLease_StalledRenewal: a holder whose renewal hangs (a partition: no
// error, no answer) gives up 2/3 of the ttl after its last renewal, so its fn
// has stopped well before the lease expires and another replica takes it.
func TestLease_StalledRenewal(t *testing.T) {
	const ttl = 3 * time.Second
	newKV, _, _ := jetStreamKVs(t)
	inner := newKV(t)
	kv := &faultyKV{KV: inner}
	a := store.New(kv, store.Options{}).Lease("poll", "a", ttl)
	b := store.New(inner, store.Options{}).Lease("poll", "b", ttl)
	if !acquire(t, a) {
		t.Fatal("a: not acquired")
	}
	kv.stall.Store(true)
	var stopped time.Time
	held := make(chan error, 1)
	go func() {
		held <- a.Hold(t.Context(), func(ctx context.Context) error {
			<-ctx.Done()
			stopped = time.Now()
			return nil
		})
	}()
	for !acquire(t, b) {
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Now()
	if err := <-held; !errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a's Hold: %v, want ErrLeaseLost from the renewal's deadline", err)
	}
	margin := took.Sub(stopped)
	t.Logf("a stopped %s before b took the lease (ttl %s)", margin.Round(10*time.Millisecond), ttl)
	if margin < ttl/3-200*time.Millisecond {
		t.Fatalf("a stopped only %s before b took the lease, want about ttl/3", margin)
	}
}
