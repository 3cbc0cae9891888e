package routing

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/core/store"
)

// waitStats are a queue's recent response times, in the records
// "routing_stats" under the queue's name: a rolling window every replica
// shares.
type waitStats struct {
	Samples []waitSample `json:"samples,omitempty"`
}

type waitSample struct {
	ID   string        `json:"id"`
	At   time.Time     `json:"at"`
	Wait time.Duration `json:"wait"`
}

// minSamples is how many response times the expected wait needs; with fewer,
// the queue's default_wait is told.
const minSamples = 3

// addSample records a response time once (by its id), keeping the newest
// WaitSamples within WaitWindow.
func (r *Router) addSample(ctx context.Context, e effect) error {
	var ws waitStats
	cutoff := e.At.Add(-r.plan.cfg.WaitWindow)
	_, err := r.stats.Update(ctx, e.Queue, &ws, 0, func(bool) error {
		if slices.ContainsFunc(ws.Samples, func(s waitSample) bool { return s.ID == e.ID }) {
			return store.ErrSkip
		}
		ws.Samples = append(ws.Samples, waitSample{ID: e.ID, At: e.At, Wait: e.Wait})
		slices.SortFunc(ws.Samples, func(a, b waitSample) int { return a.At.Compare(b.At) })
		ws.Samples = slices.DeleteFunc(ws.Samples, func(s waitSample) bool { return s.At.Before(cutoff) })
		if n := len(ws.Samples) - r.plan.cfg.WaitSamples; n > 0 {
			ws.Samples = ws.Samples[n:]
		}
		return nil
	})
	return err
}

// expectedWait is the median of the queue's recent response times at now, or
// its default_wait when there are too few.
func (r *Router) expectedWait(ctx context.Context, queue string, now time.Time) time.Duration {
	q := r.plan.queue(queue)
	var ws waitStats
	if _, err := r.stats.Get(ctx, q.name, &ws); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			r.log.Warn("response times not read, telling the default wait", "queue", q.name, "err", err)
		}
		return q.DefaultWait
	}
	return medianWait(ws.Samples, now.Add(-r.plan.cfg.WaitWindow), q.DefaultWait)
}

// medianWait is the median wait of the samples at or after since, or def when
// there are fewer than minSamples.
func medianWait(samples []waitSample, since time.Time, def time.Duration) time.Duration {
	var ws []time.Duration
	for _, s := range samples {
		if !s.At.Before(since) {
			ws = append(ws, s.Wait)
		}
	}
	if len(ws) < minSamples {
		return def
	}
	slices.Sort(ws)
	if n := len(ws); n%2 == 0 {
		return (ws[n/2-1] + ws[n/2]) / 2
	}
	return ws[len(ws)/2]
}

// Metrics counts what a Router did since it started, in this process.
type Metrics struct {
	// Routed, Assigned, AutoReplies, Acks, OutOfHours and Breaches count
	// routed events, assignments, rule auto-replies, acknowledgements,
	// out-of-hours replies and SLA breaches published (not deduplicated).
	Routed, Assigned, AutoReplies, Acks, OutOfHours, Breaches int64
	// TimersFired counts timers this replica claimed and fired.
	TimersFired int64
	// TimersCheckedAt is the router's time up to which this replica has
	// nothing more to fire: it fired every timer it knows that was due, and
	// none it knows (nor its next scan of the store) is due before it. A
	// timer due before it that did not fire here fired elsewhere.
	TimersCheckedAt time.Time
}

type metrics struct {
	routed, assigned, autoReplies, acks, ooh, breaches atomic.Int64
}

func (m *metrics) count(kind string) {
	switch kind {
	case kindRouted:
		m.routed.Add(1)
	case kindAssigned:
		m.assigned.Add(1)
	case kindAutoReply:
		m.autoReplies.Add(1)
	case kindAck:
		m.acks.Add(1)
	case kindOOH:
		m.ooh.Add(1)
	case kindBreach:
		m.breaches.Add(1)
	}
}
