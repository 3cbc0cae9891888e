package routing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// availabilityEvery is how often each replica computes every queue's
// availability; a record is written only when it changed or is getting old.
const availabilityEvery = 5 * time.Second

// availabilityRefresh is the age at which an unchanged record is written
// again, well within event.AvailabilityTTL.
const availabilityRefresh = event.AvailabilityTTL / 4

// availabilityLoop keeps the records of event.AvailabilityRecords up to date
// until ctx is done: what chat channels tell visitors about who can answer.
func (r *Router) availabilityLoop(ctx context.Context) error {
	for {
		r.PublishAvailability(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.After(availabilityEvery):
		}
	}
}

// PublishAvailability computes every queue's availability now and writes the
// records of event.AvailabilityRecords that changed or are getting old; a
// change is also published as event.QueueAvailability. Run calls it every
// few seconds; errors are logged (the records expire if they keep failing,
// which readers take as "nobody available").
func (r *Router) PublishAvailability(ctx context.Context) {
	now := r.clock.Now()
	recs := r.st.Records(event.AvailabilityRecords)
	for _, name := range slices.Sorted(maps.Keys(r.plan.queues)) {
		a, err := r.Availability(ctx, name)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("queue availability not computed", "queue", name, "err", err)
			}
			continue
		}
		keys := []string{event.AvailabilityKey(name)}
		if name == r.plan.cfg.DefaultQueue {
			keys = append(keys, event.AvailabilityDefault)
		}
		for i, key := range keys {
			changed, err := putAvailability(ctx, recs, key, a, now)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("queue availability not stored", "queue", name, "err", err)
				}
				break
			}
			if changed && i == 0 {
				r.announceAvailability(ctx, a)
			}
		}
	}
}

// putAvailability writes a under key unless the record says the same and is
// recent; it reports whether what it says changed. Replicas computing the
// same state write it once between them, by compare-and-set.
func putAvailability(ctx context.Context, recs *store.Records, key string, a event.Availability, now time.Time) (bool, error) {
	var cur event.Availability
	changed := false
	_, err := recs.Update(ctx, key, &cur, event.AvailabilityTTL, func(exists bool) error {
		changed = !exists || !cur.Same(a)
		if !changed && now.Sub(cur.At) < availabilityRefresh {
			return store.ErrSkip
		}
		cur = a
		return nil
	})
	return changed, err
}

// Availability is queue's availability now: how many of its agents are
// available with room, whether it is within business hours, and the wait a
// customer writing now can expect.
func (r *Router) Availability(ctx context.Context, queue string) (event.Availability, error) {
	q := r.plan.queues[queue]
	if q == nil {
		return event.Availability{}, errors.New("routing: availability: no queue " + strconv.Quote(queue))
	}
	now := r.clock.Now()
	a := event.Availability{Queue: q.name, Agents: len(q.Agents), Open: q.open(now), At: now.UTC()}
	for _, agent := range q.Agents {
		ok, err := r.eligible(ctx, agent)
		if err != nil {
			return event.Availability{}, err
		}
		if ok {
			a.Available++
		}
	}
	if !a.Open {
		if next, ok := q.hours.NextOpen(now); ok {
			a.NextOpen = next.UTC()
		}
	}
	a.ExpectedWait = r.expectedWait(ctx, q.name, now)
	return a, nil
}

// announceAvailability publishes a change of a queue's availability on
// omni.evt.queue.availability, for desks and dashboards.
func (r *Router) announceAvailability(ctx context.Context, a event.Availability) {
	ev := core.NewMessage(core.KindEvent, core.Inbound, event.ByRouting)
	// Replicas that saw the same change at the same moment publish it once.
	ev.ID = detID(fmt.Sprintf("availability:%s:%s:%d/%d:%t:%s", a.Queue, a.At.Format(time.RFC3339Nano), a.Available, a.Agents, a.Open, a.ExpectedWait), a.At)
	ev.Type = event.QueueAvailability
	ev.ReceivedAt = a.At
	ev.Meta = map[string]string{
		event.MetaQueue:           a.Queue,
		event.MetaAgents:          strconv.Itoa(a.Agents),
		event.MetaAgentsAvailable: strconv.Itoa(a.Available),
		event.MetaOpen:            strconv.FormatBool(a.Open),
		event.MetaExpectedWait:    strconv.Itoa(int(a.ExpectedWait.Seconds())),
		event.MetaBy:              event.ByRouting,
	}
	if !a.NextOpen.IsZero() {
		ev.Meta[event.MetaNextOpen] = a.NextOpen.Format(time.RFC3339)
	}
	if _, err := r.bus.PublishMessage(ctx, bus.SubjectEvt(event.QueueAvailability), ev); err != nil && ctx.Err() == nil {
		r.log.Warn("queue availability not announced", "queue", a.Queue, "err", err)
	}
}
