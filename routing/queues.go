package routing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/omnigate/omnigate/core/store"
)

// QueueStatus is one queue as it stands: what the integrator API
// (/api/v1/queues) and dashboards show.
type QueueStatus struct {
	Name    string
	Desk    string
	Default bool
	// Waiting counts the conversations waiting for an agent (the backlog).
	Waiting int
	// OldestWaitingSince is when the longest-waiting of them started; zero
	// when none waits.
	OldestWaitingSince time.Time
	// Agents are the queue's members; AgentsAvailable those not away.
	Agents, AgentsAvailable int
	// ExpectedWait is the wait routing tells customers now.
	ExpectedWait time.Duration
}

// Queues returns every configured queue's status, sorted by name, from the
// records routing keeps (backlogs, agents' availability, response times). It
// reads and writes nothing else; safe to call from any replica at any time.
func (r *Router) Queues(ctx context.Context) ([]QueueStatus, error) {
	agents, err := r.Agents(ctx)
	if err != nil {
		return nil, err
	}
	available := map[string]bool{}
	for _, a := range agents {
		available[a.ID] = a.Available
	}
	now := r.clock.Now()
	var out []QueueStatus
	for _, name := range slices.Sorted(maps.Keys(r.plan.queues)) {
		q := r.plan.queues[name]
		st := QueueStatus{Name: name, Desk: q.Desk, Default: name == r.plan.cfg.DefaultQueue, Agents: len(q.Agents), ExpectedWait: r.expectedWait(ctx, name, now)}
		for _, a := range q.Agents {
			if available[a] {
				st.AgentsAvailable++
			}
		}
		var b backlogRecord
		if _, err := r.queueRecs.Get(ctx, "backlog:"+name, &b); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("routing: backlog of %s: %w", name, err)
		}
		st.Waiting = len(b.Entries)
		for _, e := range b.Entries {
			if st.OldestWaitingSince.IsZero() || e.Since.Before(st.OldestWaitingSince) {
				st.OldestWaitingSince = e.Since
			}
		}
		out = append(out, st)
	}
	return out, nil
}
