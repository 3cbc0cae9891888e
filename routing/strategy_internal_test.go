package routing

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

const (
	agentA = "slack:UAAA"
	agentB = "slack:UBBB"
	agentC = "slack:UCCC"
)

// teamConfig is one queue "support" of agents A, B and C with strategy.
func teamConfig(strategy string, capacity int) Config {
	return Config{
		Queues: map[string]Queue{"support": {Channel: "C0SUPPORT", Strategy: strategy, Agents: []string{agentA, agentB, agentC}}},
		Agents: []Agent{
			{ID: agentA, Name: "Ann", Skills: []string{"zh"}, Capacity: capacity},
			{ID: agentB, Name: "Bob", Skills: []string{"billing"}, Capacity: capacity},
			{ID: agentC, Name: "Chen", Skills: []string{"billing", "zh"}, Capacity: capacity},
		},
		Rules: []Rule{
			{Name: "billing-zh", When: Match{Keywords: []string{"发票"}}, Then: Action{Skills: []string{"billing", "zh"}}},
			{Name: "billing", When: Match{Keywords: []string{"invoice", "billing"}}, Then: Action{Skills: []string{"billing"}}},
			{Name: "chinese", When: Match{Languages: []string{"zh"}}, Then: Action{Skills: []string{"zh"}}},
		},
	}
}

// assignees opens one conversation per text and returns who got each.
func (h *harness) assignees(texts ...string) ([]string, []*store.Conversation) {
	h.t.Helper()
	var out []string
	var convs []*store.Conversation
	for i, text := range texts {
		c := h.customer(fmt.Sprintf("sms:+1555000%04d", int(h.seq)+i), nil)
		h.inbound(c, text)
		c = h.conv(c.ID)
		out = append(out, c.Assignee)
		convs = append(convs, c)
	}
	return out, convs
}

func (h *harness) close(c *store.Conversation) {
	h.t.Helper()
	if _, err := h.st.CloseConversation(h.ctx, c.ID, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
	h.event(event.ConversationClosed, c.ID, nil)
}

func TestStrategy_RoundRobin(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyRoundRobin, 5))
	got, _ := h.assignees("a", "b", "c", "d", "e", "f")
	want := []string{agentA, agentB, agentC, agentA, agentB, agentC}
	if !slices.Equal(got, want) {
		t.Fatalf("assignees = %v, want %v", got, want)
	}
	events := ofType(h.published(bus.StreamEvt, bus.SubjectEvt(event.ConversationAssigned)), event.ConversationAssigned)
	if len(events) != 6 {
		t.Fatalf("%d assigned events, want 6", len(events))
	}
	if m := events[0].Meta; m[event.MetaAssignee] != agentA || m[event.MetaStrategy] != StrategyRoundRobin || m[event.MetaQueue] != "support" || m[event.MetaBy] != event.ByRouting {
		t.Fatalf("assigned event meta = %v", m)
	}
	desk := ofType(h.published(bus.StreamDesk, bus.SubjectDesk("slack")), event.ConversationAssigned)
	if len(desk) != 6 || desk[0].Meta[event.MetaDeskChannel] != "C0SUPPORT" {
		t.Fatalf("desk assigned events = %d, first meta %v", len(desk), desk[0].Meta)
	}
}

func TestStrategy_RoundRobinSkipsAwayAndFull(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyRoundRobin, 1))
	if err := h.r.SetAvailability(h.ctx, agentB, false); err != nil {
		t.Fatal(err)
	}
	got, convs := h.assignees("a", "b", "c")
	if want := []string{agentA, agentC, ""}; !slices.Equal(got, want) {
		t.Fatalf("assignees = %v, want %v (B away, capacity 1)", got, want)
	}
	if s := h.state(convs[2].ID); !s.Backlogged {
		t.Fatal("third conversation not in the backlog")
	}
	// B comes back: the waiting conversation is B's.
	if err := h.r.SetAvailability(h.ctx, agentB, true); err != nil {
		t.Fatal(err)
	}
	if c := h.conv(convs[2].ID); c.Assignee != agentB {
		t.Fatalf("after B is back, assignee = %q, want B", c.Assignee)
	}
	evts := h.published(bus.StreamEvt, bus.RootEvt+".agent.>")
	if len(ofType(evts, event.AgentAway)) != 1 || len(ofType(evts, event.AgentBack)) != 1 {
		t.Fatalf("agent events = %d", len(evts))
	}
}

func TestStrategy_LeastActive(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyLeastActive, 1))
	got, convs := h.assignees("a", "b", "c", "d")
	if want := []string{agentA, agentB, agentC, ""}; !slices.Equal(got, want) {
		t.Fatalf("assignees = %v, want %v", got, want)
	}
	// Closing B's conversation frees B's slot for the one waiting.
	h.close(convs[1])
	if c := h.conv(convs[3].ID); c.Assignee != agentB {
		t.Fatalf("after B's conversation closed, waiting one went to %q, want B", c.Assignee)
	}
	st, err := h.r.Agents(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st {
		if len(a.Active) != 1 {
			t.Errorf("agent %s has %v, want one conversation each", a.ID, a.Active)
		}
	}
}

func TestStrategy_LeastActivePrefersFewest(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyLeastActive, 5))
	h.assignees("a", "b", "c") // one each
	// A and C take on more by claiming from the desk.
	for _, agent := range []string{agentA, agentA, agentC} {
		c := h.customer(fmt.Sprintf("email:claim%d@example.com", h.seq), nil)
		h.event(event.ConversationClaim, c.ID, map[string]string{event.MetaAssignee: agent})
		h.inbound(c, "hello")
	}
	got, _ := h.assignees("next")
	if got[0] != agentB {
		t.Fatalf("least active = %q, want B (A has 3, C 2, B 1)", got[0])
	}
}

func TestStrategy_Sticky(t *testing.T) {
	h := newHarness(t, teamConfig(StrategySticky, 5))
	c1 := h.customer("email:ann@example.com", nil)
	h.event(event.ConversationClaim, c1.ID, map[string]string{event.MetaAssignee: agentC})
	h.inbound(c1, "hello")
	if got := h.conv(c1.ID).Assignee; got != agentC {
		t.Fatalf("claimed conversation assignee = %q, want C", got)
	}
	h.close(c1)
	// A new conversation of the same customer goes back to C.
	c2, opened, err := h.st.FindOrOpenConversation(h.ctx, c1.ContactID, -1, h.clock.Now(), func(c *store.Conversation) {
		c.Channel, c.LastChannel, c.LastIdentity = "email", "email", c1.LastIdentity
	})
	if err != nil || !opened || c2.ID == c1.ID {
		t.Fatalf("new conversation: %v %v %v", c2, opened, err)
	}
	h.inbound(c2, "me again")
	if got := h.conv(c2.ID).Assignee; got != agentC {
		t.Fatalf("sticky assignee = %q, want C", got)
	}
	// When C is away, the fallback (least_active) decides.
	h.close(c2)
	if err := h.r.SetAvailability(h.ctx, agentC, false); err != nil {
		t.Fatal(err)
	}
	c3, _, err := h.st.FindOrOpenConversation(h.ctx, c1.ContactID, -1, h.clock.Now(), func(c *store.Conversation) {
		c.Channel, c.LastChannel, c.LastIdentity = "email", "email", c1.LastIdentity
	})
	if err != nil {
		t.Fatal(err)
	}
	h.inbound(c3, "third time")
	if got := h.conv(c3.ID).Assignee; got != agentA {
		t.Fatalf("fallback assignee = %q, want A", got)
	}
}

func TestStrategy_Skills(t *testing.T) {
	h := newHarness(t, teamConfig(StrategySkills, 5))
	tests := []struct {
		text, want string
	}{
		{"Where is my invoice?", agentB},     // billing: B and C, B listed first
		{"Another billing question", agentC}, // billing: C now least active
		{"我的发票在哪里", agentC},                  // billing + zh: only C
		{"你好，请问几点开门", agentA},                // zh: A has fewest
		{"What are your hours?", agentA},     // no skills needed: least active of all (A 1, B 1, C 2; A listed first)
	}
	for _, tt := range tests {
		got, _ := h.assignees(tt.text)
		if got[0] != tt.want {
			t.Errorf("%q went to %q, want %q", tt.text, got[0], tt.want)
		}
	}
}

func TestStrategy_SkillsNobodyFallsBackToManual(t *testing.T) {
	cfg := teamConfig(StrategySkills, 5)
	cfg.Rules = []Rule{{When: Match{Keywords: []string{"legal"}}, Then: Action{Skills: []string{"law"}}}}
	h := newHarness(t, cfg)
	got, convs := h.assignees("legal question")
	if got[0] != "" {
		t.Fatalf("assigned to %q, want nobody: no agent has the skill", got[0])
	}
	if s := h.state(convs[0].ID); s.Backlogged || !slices.Equal(s.Skills, []string{"law"}) {
		t.Fatalf("state backlogged=%v skills=%v", s.Backlogged, s.Skills)
	}
}

func TestStrategy_ManualClaim(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyManual, 5))
	got, convs := h.assignees("hello")
	if got[0] != "" {
		t.Fatalf("manual queue assigned %q", got[0])
	}
	h.event(event.ConversationClaim, convs[0].ID, map[string]string{event.MetaAssignee: agentB})
	if c := h.conv(convs[0].ID); c.Assignee != agentB || c.Queue != "support" {
		t.Fatalf("after claim: assignee %q queue %q", c.Assignee, c.Queue)
	}
	// A transfer to another agent moves the slot.
	h.event(event.ConversationClaim, convs[0].ID, map[string]string{event.MetaAssignee: agentA})
	st, _ := h.r.Agents(h.ctx)
	for _, a := range st {
		want := 0
		if a.ID == agentA {
			want = 1
		}
		if len(a.Active) != want {
			t.Errorf("%s active %v, want %d", a.ID, a.Active, want)
		}
	}
}

// Claims and transfers are commands: routing executes them and answers with
// conversation.assigned (by the desk) and conversation.routed (reason
// transfer), or with command.rejected on the desk that sent one it cannot do.
func TestCommands_ClaimTransferReject(t *testing.T) {
	h := newHarness(t, teamConfig(StrategyManual, 5))
	_, convs := h.assignees("hello")
	c := convs[0]
	h.event(event.ConversationClaim, c.ID, map[string]string{event.MetaAssignee: agentB})
	assigned := ofType(h.published(bus.StreamDesk, bus.SubjectDesk("slack")), event.ConversationAssigned)
	if len(assigned) != 1 || assigned[0].Meta[event.MetaAssignee] != agentB || assigned[0].Meta[event.MetaBy] != "slack" {
		t.Fatalf("assigned events = %v", assigned)
	}
	if ev := ofType(h.published(bus.StreamEvt, bus.SubjectEvt(event.ConversationAssigned)), event.ConversationAssigned); len(ev) != 1 {
		t.Fatalf("%d conversation.assigned on omni.evt, want 1", len(ev))
	}
	h.event(event.ConversationTransfer, c.ID, map[string]string{event.MetaQueue: "nowhere"})
	rej := ofType(h.published(bus.StreamDesk, bus.SubjectDesk("slack")), event.CommandRejected)
	if len(rej) != 1 || rej[0].Meta[event.MetaCommand] != event.ConversationTransfer || !strings.Contains(rej[0].Meta[event.MetaReason], `no queue "nowhere"`) {
		t.Fatalf("rejections = %v", rej)
	}
	if got := h.conv(c.ID).Queue; got != "support" {
		t.Fatalf("queue after a rejected transfer = %q", got)
	}
}
