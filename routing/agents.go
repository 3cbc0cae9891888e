package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// agentRecord is an agent's availability and load, in the records
// "routing_agents" under the agent's identity, so every replica agrees on
// them. An agent without a record is available with no conversations.
type agentRecord struct {
	Away bool `json:"away,omitempty"`
	// Since is when availability last changed; older away/back events are
	// ignored.
	Since time.Time `json:"since,omitzero"`
	// Active are the open conversations assigned to the agent.
	Active       []string  `json:"active,omitempty"`
	LastAssigned time.Time `json:"last_assigned,omitzero"`
}

// AgentStatus is an agent's availability and load, as Agents lists them.
type AgentStatus struct {
	ID        string   `json:"id"`
	Name      string   `json:"name,omitempty"`
	Available bool     `json:"available"`
	Active    []string `json:"active,omitempty"`
	Capacity  int      `json:"capacity"`
	Queues    []string `json:"queues,omitempty"`
}

// contactRecord remembers a contact's last agent, in "routing_contacts", for
// the sticky strategy after the previous conversation expired.
type contactRecord struct {
	Agent string    `json:"agent"`
	At    time.Time `json:"at"`
}

// contactTTL is how long a contact's last agent is remembered.
const contactTTL = 180 * 24 * time.Hour

// SetAvailability marks agent (a desk identity such as slack:U0123ABCD) away
// or back, for every replica, and publishes omni.evt.agent.away or
// omni.evt.agent.back so desks can show it. An agent who is away gets no new
// conversations; coming back hands them the queues' waiting conversations.
// Conversations already assigned stay with the agent either way.
func (r *Router) SetAvailability(ctx context.Context, agent string, available bool) error {
	id, err := core.ParseIdentity(agent)
	if err != nil {
		return fmt.Errorf("routing: set availability: %w", err)
	}
	now := r.clock.Now()
	if _, err := r.applyAvailability(ctx, string(id), available, now); err != nil {
		return err
	}
	typ := event.AgentAway
	if available {
		typ = event.AgentBack
	}
	ev := core.NewMessage(core.KindEvent, core.Inbound, id.Channel())
	ev.ID = detID("agent:"+agent+":"+now.UTC().Format(time.RFC3339Nano)+":"+typ, now)
	ev.Type = typ
	ev.From = id
	ev.ReceivedAt = now.UTC()
	ev.Meta = map[string]string{event.MetaAgent: agent, event.MetaBy: event.ByRouting}
	if _, err := r.bus.PublishMessage(ctx, bus.SubjectEvt(typ), ev); err != nil {
		return fmt.Errorf("routing: set availability: %w", err)
	}
	if available {
		r.drainQueues(ctx, r.plan.queuesOf(agent)...)
	}
	return nil
}

// applyAvailability records agent's availability as of at, unless a later
// change is recorded; it reports whether it changed anything.
func (r *Router) applyAvailability(ctx context.Context, agent string, available bool, at time.Time) (bool, error) {
	var rec agentRecord
	changed := false
	_, err := r.agents.Update(ctx, agent, &rec, 0, func(bool) error {
		changed = false
		if at.Before(rec.Since) || rec.Away == !available {
			return store.ErrSkip
		}
		rec.Away, rec.Since, changed = !available, at.UTC(), true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("routing: availability of %s: %w", agent, err)
	}
	if changed {
		r.log.Info("agent availability", "agent", agent, "available", available)
	}
	return changed, nil
}

// Agents lists the configured agents and queue members with their state.
func (r *Router) Agents(ctx context.Context) ([]AgentStatus, error) {
	ids := map[string]bool{}
	for id := range r.plan.agents {
		ids[id] = true
	}
	for _, q := range r.plan.queues {
		for _, a := range q.Agents {
			ids[a] = true
		}
	}
	var out []AgentStatus
	for _, id := range sortedKeys(ids) {
		rec, err := r.agentRecord(ctx, id)
		if err != nil {
			return nil, err
		}
		a := r.plan.agent(id)
		out = append(out, AgentStatus{
			ID:        id,
			Name:      a.Name,
			Available: !rec.Away,
			Active:    rec.Active,
			Capacity:  a.Capacity,
			Queues:    r.plan.queuesOf(id),
		})
	}
	return out, nil
}

func (r *Router) agentRecord(ctx context.Context, agent string) (agentRecord, error) {
	var rec agentRecord
	if _, err := r.agents.Get(ctx, agent, &rec); err != nil && !errors.Is(err, store.ErrNotFound) {
		return rec, fmt.Errorf("routing: agent %s: %w", agent, err)
	}
	return rec, nil
}

// reserve takes a capacity slot of agent for conv. Unless force is set, an
// agent who is away or full is refused (ok false). A full agent's list is
// first cleaned of conversations that closed or went to someone else.
func (r *Router) reserve(ctx context.Context, agent, conv string, force bool) (bool, error) {
	capacity := r.plan.agent(agent).Capacity
	for attempt := 0; attempt < 2; attempt++ {
		var rec agentRecord
		ok, full := false, false
		_, err := r.agents.Update(ctx, agent, &rec, 0, func(bool) error {
			ok, full = false, false
			switch {
			case slices.Contains(rec.Active, conv):
				ok = true
				return store.ErrSkip
			case !force && rec.Away:
				return store.ErrSkip
			case !force && len(rec.Active) >= capacity:
				full = true
				return store.ErrSkip
			}
			rec.Active = append(rec.Active, conv)
			rec.LastAssigned = r.clock.Now().UTC()
			ok = true
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("reserve %s: %w", agent, err)
		}
		if ok || !full || attempt > 0 {
			return ok, nil
		}
		if pruned, err := r.prune(ctx, agent, rec.Active); err != nil || !pruned {
			return false, err
		}
	}
	return false, nil
}

// prune drops from agent's list the conversations that are closed, gone, or
// assigned to someone else; it reports whether it dropped any.
func (r *Router) prune(ctx context.Context, agent string, active []string) (bool, error) {
	var stale []string
	for _, id := range active {
		c, err := r.st.Conversation(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			stale = append(stale, id)
		case err != nil:
			return false, err
		case c.State != store.StateOpen || (c.Assignee != "" && c.Assignee != agent):
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return false, nil
	}
	var rec agentRecord
	_, err := r.agents.Update(ctx, agent, &rec, 0, func(bool) error {
		rec.Active = slices.DeleteFunc(rec.Active, func(id string) bool { return slices.Contains(stale, id) })
		return nil
	})
	return err == nil, err
}

// release gives back agent's slot of conv.
func (r *Router) release(ctx context.Context, agent, conv string) error {
	if agent == "" {
		return nil
	}
	var rec agentRecord
	_, err := r.agents.Update(ctx, agent, &rec, 0, func(exists bool) error {
		if !exists || !slices.Contains(rec.Active, conv) {
			return store.ErrSkip
		}
		rec.Active = slices.DeleteFunc(rec.Active, func(id string) bool { return id == conv })
		return nil
	})
	if err != nil {
		return fmt.Errorf("release %s: %w", agent, err)
	}
	return nil
}

// candidates lists, best first, the agents strategy would assign conv to in
// q, and the strategy that chose them (a fallback's, when it came to that).
// Everyone listed was available with room when read; reserve decides.
func (r *Router) candidates(ctx context.Context, conv *store.Conversation, s *convState, q *queuePlan, strategy string) ([]string, string, error) {
	switch strategy {
	case StrategyManual:
		return nil, StrategyManual, nil
	case StrategyRoundRobin:
		c, err := r.roundRobin(ctx, q)
		return c, strategy, err
	case StrategyLeastActive:
		c, err := r.leastActive(ctx, q.Agents)
		return c, strategy, err
	case StrategySticky:
		prev, err := r.previousAgent(ctx, conv, s)
		if err != nil {
			return nil, "", err
		}
		if prev != "" && (q.member(prev) || r.plan.agents[prev].ID != "") {
			ok, err := r.eligible(ctx, prev)
			if err != nil {
				return nil, "", err
			}
			if ok {
				return []string{prev}, strategy, nil
			}
		}
		return r.candidates(ctx, conv, s, q, q.Fallback)
	case StrategySkills:
		var skilled []string
		for _, a := range q.Agents {
			have := r.plan.agent(a).Skills
			if !slices.ContainsFunc(s.Skills, func(need string) bool { return !slices.Contains(have, need) }) {
				skilled = append(skilled, a)
			}
		}
		c, err := r.leastActive(ctx, skilled)
		if err != nil || len(c) > 0 {
			return c, strategy, err
		}
		if len(skilled) > 0 {
			return nil, strategy, nil // the skilled agents are busy: wait for them
		}
		return r.candidates(ctx, conv, s, q, q.Fallback)
	}
	return nil, "", fmt.Errorf("unknown strategy %q", strategy)
}

// eligible reports whether agent is available with room.
func (r *Router) eligible(ctx context.Context, agent string) (bool, error) {
	rec, err := r.agentRecord(ctx, agent)
	if err != nil {
		return false, err
	}
	return !rec.Away && len(rec.Active) < r.plan.agent(agent).Capacity, nil
}

// leastActive orders the available agents with room by open conversations,
// then by who was assigned longest ago, then as listed.
func (r *Router) leastActive(ctx context.Context, agents []string) ([]string, error) {
	type cand struct {
		id     string
		active int
		last   time.Time
		order  int
	}
	var cs []cand
	for i, a := range agents {
		rec, err := r.agentRecord(ctx, a)
		if err != nil {
			return nil, err
		}
		if rec.Away || len(rec.Active) >= r.plan.agent(a).Capacity {
			continue
		}
		cs = append(cs, cand{a, len(rec.Active), rec.LastAssigned, i})
	}
	slices.SortFunc(cs, func(x, y cand) int {
		switch {
		case x.active != y.active:
			return x.active - y.active
		case !x.last.Equal(y.last):
			return x.last.Compare(y.last)
		}
		return x.order - y.order
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.id
	}
	return out, nil
}

// rrCursor is a queue's round-robin position, in "routing_queues" under
// "rr:<queue>".
type rrCursor struct {
	Next int `json:"next"`
}

// roundRobin orders the queue's available agents with room starting after the
// last one picked; the shared cursor advances on every call.
func (r *Router) roundRobin(ctx context.Context, q *queuePlan) ([]string, error) {
	n := len(q.Agents)
	if n == 0 {
		return nil, nil
	}
	var cur rrCursor
	start := 0
	_, err := r.queueRecs.Update(ctx, "rr:"+q.name, &cur, 0, func(bool) error {
		start = cur.Next % n
		cur.Next = (start + 1) % n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("round robin %s: %w", q.name, err)
	}
	var out []string
	for i := range n {
		a := q.Agents[(start+i)%n]
		ok, err := r.eligible(ctx, a)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// previousAgent is the agent who last had the customer: this conversation's
// (when reopened), the one routing remembers for the contact, or the previous
// conversation's assignee.
func (r *Router) previousAgent(ctx context.Context, conv *store.Conversation, s *convState) (string, error) {
	if s.Assignee != "" {
		return s.Assignee, nil
	}
	var cr contactRecord
	if _, err := r.contacts.Get(ctx, conv.ContactID, &cr); err == nil && cr.Agent != "" {
		return cr.Agent, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if conv.Previous != "" {
		prev, err := r.st.Conversation(ctx, conv.Previous)
		if err == nil {
			return prev.Assignee, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return "", nil
}

// backlogRecord lists a queue's conversations waiting for an agent, in
// "routing_queues" under "backlog:<queue>".
type backlogRecord struct {
	Entries []backlogEntry `json:"entries,omitempty"`
}

type backlogEntry struct {
	Conversation string    `json:"conversation"`
	Rank         int       `json:"rank"` // priority rank, higher first
	Since        time.Time `json:"since"`
}

// maxBacklog bounds one queue's backlog record.
const maxBacklog = 2000

func (r *Router) backlogAdd(ctx context.Context, queue, conv string, rank int, since time.Time) error {
	var b backlogRecord
	_, err := r.queueRecs.Update(ctx, "backlog:"+queue, &b, 0, func(bool) error {
		if slices.ContainsFunc(b.Entries, func(e backlogEntry) bool { return e.Conversation == conv }) {
			return store.ErrSkip
		}
		if len(b.Entries) >= maxBacklog {
			return fmt.Errorf("backlog of %s is full (%d)", queue, maxBacklog)
		}
		b.Entries = append(b.Entries, backlogEntry{Conversation: conv, Rank: rank, Since: since.UTC()})
		return nil
	})
	return err
}

func (r *Router) backlogRemove(ctx context.Context, queue string, convs ...string) error {
	var b backlogRecord
	_, err := r.queueRecs.Update(ctx, "backlog:"+queue, &b, 0, func(exists bool) error {
		n := len(b.Entries)
		b.Entries = slices.DeleteFunc(b.Entries, func(e backlogEntry) bool { return slices.Contains(convs, e.Conversation) })
		if !exists || len(b.Entries) == n {
			return store.ErrSkip
		}
		return nil
	})
	return err
}

// drainQueues offers each queue's waiting conversations to its agents,
// highest priority and longest waiting first, until nobody has room.
func (r *Router) drainQueues(ctx context.Context, queues ...string) {
	for _, name := range queues {
		q := r.plan.queues[name]
		if q == nil || q.Strategy == StrategyManual {
			continue
		}
		if err := r.drain(ctx, q); err != nil && ctx.Err() == nil {
			r.log.Warn("backlog not drained", "queue", name, "err", err)
		}
	}
}

func (r *Router) drain(ctx context.Context, q *queuePlan) error {
	var b backlogRecord
	if _, err := r.queueRecs.Get(ctx, "backlog:"+q.name, &b); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	slices.SortFunc(b.Entries, func(x, y backlogEntry) int {
		if x.Rank != y.Rank {
			return y.Rank - x.Rank
		}
		return x.Since.Compare(y.Since)
	})
	var gone []string
	defer func() {
		if len(gone) > 0 {
			if err := r.backlogRemove(ctx, q.name, gone...); err != nil {
				r.log.Warn("backlog not cleaned", "queue", q.name, "err", err)
			}
		}
	}()
	for _, e := range b.Entries {
		s, err := r.process(ctx, e.Conversation, nil)
		if err != nil {
			return err
		}
		if s == nil || s.Closed || s.Assignee != "" || s.Queue != q.name || !s.Backlogged {
			gone = append(gone, e.Conversation)
			continue
		}
		// Still waiting. Others behind it may need other skills, unless nobody
		// in the queue has room at all.
		free := false
		for _, a := range q.Agents {
			ok, err := r.eligible(ctx, a)
			if err != nil {
				return err
			}
			free = free || ok
		}
		if !free {
			return nil
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
