package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/core/store"
)

// Timer kinds.
const (
	TimerAck           = "ack"            // acknowledge a waiting customer
	TimerFirstResponse = "first_response" // first-response SLA
	TimerNextResponse  = "next_response"  // next-response SLA
)

// Timer is a pending timer, as PendingTimers lists it.
type Timer struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	Conversation string    `json:"conversation"`
	Due          time.Time `json:"due"`
	// Owner is the replica firing it now, "" when none is.
	Owner string `json:"owner,omitempty"`
}

// timerRecord is a timer in the "routing_timers" records. The record exists
// from arming until it fired or was cancelled.
type timerRecord struct {
	Kind         string    `json:"kind"`
	Conversation string    `json:"conversation"`
	Opens        int       `json:"opens,omitempty"`
	Epoch        uint64    `json:"epoch,omitempty"`
	Due          time.Time `json:"due"`
	// Owner and Lease are set by the replica that claimed the timer: nobody else
	// fires it before Lease.
	Owner    string    `json:"owner,omitempty"`
	Lease    time.Time `json:"lease,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
}

// scheduler fires durable timers exactly once across replicas.
//
// Timers are records in the store, so they survive restarts and every replica
// sees them. Each replica keeps an index of the timers it knows (those it
// armed, and all of them after each scan of the bucket, every scanEvery) and
// sleeps until the earliest is due. To fire one it claims it with a
// compare-and-set on the record (Owner, Lease); the replica whose write wins
// fires, the others leave it. After fire returns nil the record is deleted; on
// an error the claim is extended by a backoff and the timer tried again, up to
// maxTimerAttempts. A replica that dies mid-fire leaves a claim that expires
// after lease, when another one takes it over: fire must therefore be
// idempotent (the router's are: they check and set flags in the conversation's
// routing state with compare-and-set, and publish with deduplication ids).
type scheduler struct {
	recs      *store.Records
	clock     Clock
	owner     string
	log       *slog.Logger
	scanEvery time.Duration
	lease     time.Duration
	timeout   time.Duration
	fire      func(ctx context.Context, id string, rec timerRecord) error

	mu    sync.Mutex
	index map[string]time.Time // timer id -> when to look at it next
	wake  chan struct{}

	fired atomic.Int64
	// checked is the clock time (Unix nanoseconds) before which the last
	// pass found nothing more to do: it fired what was due and sleeps until
	// then.
	checked atomic.Int64
}

// maxTimerAttempts bounds how often a failing timer is tried.
const maxTimerAttempts = 10

func newScheduler(recs *store.Records, clock Clock, owner string, log *slog.Logger, scanEvery time.Duration, fire func(context.Context, string, timerRecord) error) *scheduler {
	return &scheduler{
		recs: recs, clock: clock, owner: owner, log: log, scanEvery: scanEvery,
		lease: 2 * time.Minute, timeout: 30 * time.Second, fire: fire,
		index: map[string]time.Time{}, wake: make(chan struct{}, 1),
	}
}

// arm creates timer id, or moves its due time; a timer that is being fired
// keeps its claim unless its due time changes.
func (s *scheduler) arm(ctx context.Context, id string, t timerRecord) error {
	var rec timerRecord
	_, err := s.recs.Update(ctx, id, &rec, 0, func(exists bool) error {
		if exists && rec.Due.Equal(t.Due) && rec.Kind == t.Kind {
			return store.ErrSkip
		}
		rec = timerRecord{Kind: t.Kind, Conversation: t.Conversation, Opens: t.Opens, Epoch: t.Epoch, Due: t.Due.UTC()}
		return nil
	})
	if err != nil {
		return fmt.Errorf("arm timer %s: %w", id, err)
	}
	s.note(id, t.Due)
	return nil
}

// cancel deletes timer id; cancelling a timer that is gone is not an error.
func (s *scheduler) cancel(ctx context.Context, id string) error {
	if err := s.recs.Delete(ctx, id, 0); err != nil {
		return fmt.Errorf("cancel timer %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.index, id)
	s.mu.Unlock()
	return nil
}

// note puts id in the index at due and wakes the loop.
func (s *scheduler) note(id string, due time.Time) {
	s.mu.Lock()
	s.index[id] = due
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run scans, then fires timers as they come due until ctx is done.
func (s *scheduler) run(ctx context.Context) error {
	var nextScan time.Time
	for ctx.Err() == nil {
		now := s.clock.Now()
		if !now.Before(nextScan) {
			if err := s.scan(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("timer scan failed, retrying", "err", err)
			}
			nextScan = now.Add(s.scanEvery)
		}
		for _, id := range s.due(now) {
			if ctx.Err() != nil {
				return nil
			}
			s.try(ctx, id, now)
		}
		wait := nextScan.Sub(now)
		if next, ok := s.next(); ok && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
		if wait <= 0 {
			continue
		}
		// Until then nothing this replica knows is due, and the next scan
		// is not either.
		s.checked.Store(now.Add(wait).UnixNano())
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-until(s.clock, now.Add(wait)):
		}
	}
	return nil
}

// scan adds every timer in the store to the index.
func (s *scheduler) scan(ctx context.Context) error {
	keys, err := s.recs.Keys(ctx, "")
	if err != nil {
		return err
	}
	for _, id := range keys {
		s.mu.Lock()
		_, known := s.index[id]
		s.mu.Unlock()
		if known {
			continue
		}
		var rec timerRecord
		if _, err := s.recs.Get(ctx, id, &rec); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		at := rec.Due
		if rec.Owner != "" && rec.Lease.After(at) {
			at = rec.Lease
		}
		s.mu.Lock()
		if _, known := s.index[id]; !known {
			s.index[id] = at
		}
		s.mu.Unlock()
	}
	return nil
}

// due lists the indexed timers due at now, earliest first.
func (s *scheduler) due(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, at := range s.index {
		if !at.After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return s.index[a].Compare(s.index[b]) })
	return ids
}

// next is the earliest indexed time.
func (s *scheduler) next() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var min time.Time
	for _, at := range s.index {
		if min.IsZero() || at.Before(min) {
			min = at
		}
	}
	return min, !min.IsZero()
}

// try claims timer id and fires it when it is due and nobody holds it.
func (s *scheduler) try(ctx context.Context, id string, now time.Time) {
	var rec timerRecord
	claimed := false
	rev, err := s.recs.Update(ctx, id, &rec, 0, func(exists bool) error {
		claimed = false
		switch {
		case !exists:
			return store.ErrSkip
		case rec.Due.After(now):
			return store.ErrSkip
		case rec.Owner != "" && rec.Owner != s.owner && rec.Lease.After(now):
			return store.ErrSkip
		}
		rec.Owner, rec.Lease = s.owner, now.Add(s.lease)
		rec.Attempts++
		claimed = true
		return nil
	})
	if err != nil {
		s.log.Warn("timer claim failed", "timer", id, "err", err)
		s.note(id, now.Add(5*time.Second))
		return
	}
	if !claimed {
		s.mu.Lock()
		switch {
		case rev == 0:
			delete(s.index, id) // gone: fired elsewhere or cancelled
		case rec.Due.After(now):
			s.index[id] = rec.Due
		default:
			s.index[id] = rec.Lease // someone else holds it: look again when the claim ends
		}
		s.mu.Unlock()
		return
	}
	fctx, cancel := context.WithTimeout(ctx, s.timeout)
	ferr := s.fire(fctx, id, rec)
	cancel()
	if ferr == nil {
		s.fired.Add(1)
		if err := s.recs.Delete(ctx, id, rev); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("timer fired but not deleted; it will fire again and find nothing to do", "timer", id, "err", err)
		}
		s.mu.Lock()
		if at, ok := s.index[id]; ok && !at.After(now) {
			delete(s.index, id)
		}
		s.mu.Unlock()
		return
	}
	if ctx.Err() != nil {
		return // stopping: the claim expires and another replica takes over
	}
	if rec.Attempts >= maxTimerAttempts {
		s.log.Error("timer failed too often, dropped", "timer", id, "kind", rec.Kind, "conversation", rec.Conversation, "attempts", rec.Attempts, "err", ferr)
		_ = s.recs.Delete(ctx, id, rev)
		s.mu.Lock()
		delete(s.index, id)
		s.mu.Unlock()
		return
	}
	retry := now.Add(min(time.Duration(rec.Attempts)*5*time.Second, time.Minute))
	s.log.Warn("timer failed, will retry", "timer", id, "kind", rec.Kind, "conversation", rec.Conversation, "attempt", rec.Attempts, "err", ferr)
	// Shorten the claim to the retry time, so any replica may retry.
	var again timerRecord
	_, _ = s.recs.Update(ctx, id, &again, 0, func(exists bool) error {
		if !exists || again.Owner != s.owner {
			return store.ErrSkip
		}
		again.Lease = retry
		return nil
	})
	s.note(id, retry)
}

// pending lists the timers in the store.
func (s *scheduler) pending(ctx context.Context) ([]Timer, error) {
	keys, err := s.recs.Keys(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []Timer{}
	for _, id := range keys {
		var rec timerRecord
		if _, err := s.recs.Get(ctx, id, &rec); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		owner := rec.Owner
		if !rec.Lease.After(s.clock.Now()) {
			owner = ""
		}
		out = append(out, Timer{ID: id, Kind: rec.Kind, Conversation: rec.Conversation, Due: rec.Due, Owner: owner})
	}
	slices.SortFunc(out, func(a, b Timer) int { return a.Due.Compare(b.Due) })
	return out, nil
}
