package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnigate/omnigate/core"
)

// ErrLeaseLost is returned by Hold, wrapped with the cause, when the lease
// was lost while fn ran (a renewal failed, or found the key gone or written
// by someone else) or was not held when Hold was called.
var ErrLeaseLost = errors.New("store: lease lost")

// bucketLeases holds every lease, one key per lease name. It is apart from
// the records buckets ("rec_..."), so no component's records can touch a lease.
const bucketLeases = "leases"

// releaseTimeout bounds the delete that releases a lease after its holder's
// ctx is done.
const releaseTimeout = 5 * time.Second

// Lease is a named claim with an expiry that at most one holder has at a time,
// across every replica on the same backend: for work that must run in one
// place only, such as the one getUpdates caller Telegram allows per bot.
//
// It is one KV key: Acquire creates it with the lease's ttl, Hold renews it
// every ttl/3 with a compare-and-set on the revision of its last write, and
// Release (or the end of Hold) deletes it with that revision, so the next
// replica can take it at once. A holder that dies stops renewing; the key
// expires ttl after its last renewal and the next Acquire elsewhere succeeds.
//
// A holder counts its hold from the moment it sent the write that succeeded:
// the backend, which starts counting on receipt and rounds a TTL up (JetStream
// to whole seconds), cannot expire the key earlier. Hold gives a renewal until
// 2/3 of the ttl after the last successful write, and ends the hold (cancels
// fn's ctx) the moment a renewal fails for any reason, so a holder cut off
// from the backend stops at least ttl/3 before anyone else can acquire: fn's
// work must end within that. Clocks are not compared across machines, only
// the rate of the holder's clock and the backend's.
//
// Leases are read from the backend, never from the Store's read cache: they
// are decided on, and a cached read could be stale.
//
// A Lease is meant for one holder goroutine: Acquire, Hold and Release must not
// run concurrently with each other; Holder may be called from anywhere.
type Lease struct {
	kv    KV
	name  string
	owner string
	token string // this Lease's own mark in the value: owners may repeat
	ttl   time.Duration

	mu    sync.Mutex // guards rev and until
	rev   uint64     // revision of this Lease's last successful write; 0 when not held
	until time.Time  // the hold is sure until then (monotonic clock)
}

// leaseValue is what a lease key holds.
type leaseValue struct {
	// Owner is the holder's name, for people and logs.
	Owner string `json:"owner"`
	// Token tells the holding Lease apart from any other with the same owner.
	Token string `json:"token"`
}

// Lease returns the lease called name (a non-empty key of at most MaxKeyBytes;
// other names fail every call with ErrInvalid) for owner, which names this
// holder in Holder's answer and in the stored value: a host name and process
// id, say. Two Leases never take each other's hold, even with the same owner.
// ttl is how long the lease outlives its holder's last renewal; it must be
// positive (else every call fails with ErrInvalid), and JetStream rounds it up
// to whole seconds. Lease does no I/O.
func (s *Store) Lease(name, owner string, ttl time.Duration) *Lease {
	kv := s.kv
	if c, ok := kv.(*cachingKV); ok {
		kv = c.KV // leases are decided on: read them fresh
	}
	return &Lease{kv: kv, name: name, owner: owner, token: core.NewID(), ttl: ttl}
}

// Acquire takes the lease if nobody holds it and reports whether this Lease
// holds it now. It also takes back a lease whose key still carries this
// Lease's own last write, as after a renewal whose answer was lost. Holding
// the lease already, it renews it. false with a nil error means someone else
// holds it: try again later (the lease is free at the latest ttl after its
// holder's last renewal).
func (l *Lease) Acquire(ctx context.Context) (bool, error) {
	if err := l.check(); err != nil {
		return false, l.errorf("acquire", err)
	}
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev != 0 {
		err := l.renew(ctx)
		if err != nil {
			l.held(0, time.Time{})
		}
		if errors.Is(err, ErrConflict) {
			return false, nil
		}
		return err == nil, err
	}
	value, err := json.Marshal(leaseValue{Owner: l.owner, Token: l.token})
	if err != nil {
		return false, l.errorf("acquire", err)
	}
	// Two rounds: a key found held in the first may expire or be released
	// before the read that looks at it.
	for range 2 {
		start := time.Now()
		rev, err := l.kv.Create(ctx, bucketLeases, l.name, value, l.ttl)
		if err == nil {
			l.held(rev, start)
			return true, nil
		}
		if !errors.Is(err, ErrExists) {
			return false, l.errorf("acquire", err)
		}
		e, err := l.kv.Get(ctx, bucketLeases, l.name)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return false, l.errorf("acquire", err)
		}
		var v leaseValue
		if json.Unmarshal(e.Value, &v) != nil || v.Token != l.token {
			return false, nil
		}
		start = time.Now()
		rev, err = l.kv.Update(ctx, bucketLeases, l.name, value, e.Revision, l.ttl)
		switch {
		case err == nil:
			l.held(rev, start)
			return true, nil
		case errors.Is(err, ErrConflict):
			continue
		default:
			return false, l.errorf("acquire", err)
		}
	}
	return false, nil
}

// Hold runs fn while this Lease holds the lease, which Acquire must have
// taken. It renews the lease every ttl/3 until fn returns, then releases it.
// When a renewal fails or finds the lease taken, Hold cancels fn's ctx at
// once, waits for fn to return and returns an error matching ErrLeaseLost;
// the lease is not released then (it may not be ours). Otherwise, fn having
// returned or ctx being done, Hold releases the lease and returns fn's error,
// nil included (a release that fails only makes the next holder wait up to
// ttl, so it is not reported). fn must return soon after its ctx is done.
func (l *Lease) Hold(ctx context.Context, fn func(ctx context.Context) error) error {
	l.mu.Lock()
	rev, until := l.rev, l.until
	l.mu.Unlock()
	if rev == 0 {
		return l.errorf("hold", fmt.Errorf("%w: not acquired", ErrLeaseLost))
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- fn(fctx) }()

	renewal := time.NewTimer(time.Until(until.Add(-l.ttl * 2 / 3)))
	defer renewal.Stop()
	for {
		select {
		case err := <-done:
			_ = l.Release(context.WithoutCancel(ctx))
			return err
		case <-renewal.C:
		}
		if err := l.renew(ctx); err != nil {
			if ctx.Err() != nil { // stopping, not lost
				err := <-done
				_ = l.Release(ctx)
				return err
			}
			l.held(0, time.Time{})
			lost := l.errorf("hold", fmt.Errorf("%w: %w", ErrLeaseLost, err))
			cancel(lost)
			<-done
			return lost
		}
		l.mu.Lock()
		until = l.until
		l.mu.Unlock()
		renewal.Reset(time.Until(until.Add(-l.ttl * 2 / 3)))
	}
}

// renew extends the hold with a compare-and-set on the last write, giving up
// 2/3 of the ttl after that write. On a failure it leaves the revision alone:
// the caller decides whether the lease is lost or still to be released.
func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	rev, until := l.rev, l.until
	l.mu.Unlock()
	value, err := json.Marshal(leaseValue{Owner: l.owner, Token: l.token})
	if err != nil {
		return l.errorf("renew", err)
	}
	ctx, cancel := context.WithDeadline(ctx, until.Add(-l.ttl/3))
	defer cancel()
	start := time.Now()
	n, err := l.kv.Update(ctx, bucketLeases, l.name, value, rev, l.ttl)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			err = fmt.Errorf("%w: taken by another holder, or expired", err)
		}
		return l.errorf("renew", err)
	}
	l.held(n, start)
	return nil
}

// Release gives the lease up, so that the next Acquire anywhere succeeds at
// once. Releasing a lease this Lease does not hold, or no longer holds, does
// nothing. It runs even when ctx is done, bounded by a few seconds.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev == 0 {
		return nil
	}
	l.held(0, time.Time{})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := l.kv.Delete(ctx, bucketLeases, l.name, rev)
	if err != nil && !errors.Is(err, ErrConflict) {
		return l.errorf("release", err)
	}
	return nil
}

// Holder returns the owner of whoever holds the lease now, and false when
// nobody does.
func (l *Lease) Holder(ctx context.Context) (owner string, held bool, err error) {
	if err := l.check(); err != nil {
		return "", false, l.errorf("holder", err)
	}
	e, err := l.kv.Get(ctx, bucketLeases, l.name)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, l.errorf("holder", err)
	}
	var v leaseValue
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return "", false, l.errorf("holder", fmt.Errorf("decode: %w", err))
	}
	return v.Owner, true, nil
}

// held records the revision of a successful write sent at start; rev 0
// records that the lease is not held.
func (l *Lease) held(rev uint64, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rev = rev
	if rev == 0 {
		l.until = time.Time{}
		return
	}
	l.until = start.Add(l.ttl)
}

// check returns an error matching ErrInvalid when the lease cannot be used.
func (l *Lease) check() error {
	if l.ttl <= 0 {
		return fmt.Errorf("%w ttl %s: want > 0", ErrInvalid, l.ttl)
	}
	return checkKey(bucketLeases, l.name)
}

// errorf wraps err with the operation and the lease's name (names are chosen
// by components, never personal data).
func (l *Lease) errorf(op string, err error) error {
	return fmt.Errorf("store: lease %s: %s: %w", l.name, op, err)
}
