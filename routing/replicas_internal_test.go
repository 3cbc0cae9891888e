package routing

import (
	"testing"

	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// A replica that read the conversation before another handled a claim, and
// changes the priority (as an escalation would) after that one finished, keeps
// the claim: its view is of the conversation as it is, not as it read it.
func TestReplicas_StaleCopyKeepsClaim(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyManual, 5))
	_, convs := h.assignees("hello")
	c := convs[0]
	r2, err := New(teamConfig(StrategyManual, 5).withDefaults(), Deps{Bus: h.bus, Store: h.st, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	stale := h.conv(c.ID) // replica 2's Conversation read in process
	h.event(event.ConversationClaim, c.ID, map[string]string{event.MetaAssignee: agentB})
	s, err := r2.update(h.ctx, stale, func(s *convState) error {
		s.Priority = "urgent"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.reconcile(h.ctx, stale, &s); err != nil {
		t.Fatal(err)
	}
	got := h.conv(c.ID)
	st, _ := h.r.Agents(h.ctx)
	t.Logf("conv assignee=%q priority=%q rev=%d; agents=%+v", got.Assignee, got.Priority, got.RoutingRev, st)
	if got.Assignee != agentB {
		t.Errorf("claim by B undone: assignee %q", got.Assignee)
	}
}

// A replica that only reconciles (a drain, a message that changes nothing of
// routing) with a copy read before a claim leaves the claimed agent's slot
// where the conversation's assignee is.
func TestReplicas_StaleCopyKeepsClaimedSlot(t *testing.T) {
	cfg := teamConfig(StrategyRoundRobin, 5)
	h := newHarness(t, cfg)
	_, convs := h.assignees("hello")
	c := convs[0]
	r2, err := New(teamConfig(StrategyRoundRobin, 5).withDefaults(), Deps{Bus: h.bus, Store: h.st, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	stale := h.conv(c.ID)
	h.event(event.ConversationClaim, c.ID, map[string]string{event.MetaAssignee: agentC})
	s, err := r2.update(h.ctx, stale, func(s *convState) error { return store.ErrSkip })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("r2 view: assignee %q reserved %q pending %v", s.Assignee, s.Reserved, s.Pending)
	if err := r2.reconcile(h.ctx, stale, &s); err != nil {
		t.Fatal(err)
	}
	got := h.conv(c.ID)
	st, _ := h.r.Agents(h.ctx)
	for _, a := range st {
		t.Logf("agent %s active %v", a.ID, a.Active)
	}
	rs := h.state(c.ID)
	t.Logf("conv assignee=%q rev=%d; state reserved=%q", got.Assignee, got.RoutingRev, rs.Reserved)
	if rs.Reserved != got.Assignee {
		t.Errorf("slot held by %q, conversation assigned to %q", rs.Reserved, got.Assignee)
	}
}

func (c Config) withDefaults() Config { c.SetDefaults(); return c }
