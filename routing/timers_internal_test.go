package routing

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

// slaConfig has a queue "support" (Paris office hours, ack after 2m, SLA 10m
// first and 20m next response in wall time, 2m first response when urgent,
// breaches mention @leads and overflow to "overflow") and a "senior" queue for
// escalations.
func slaConfig() Config {
	wall := false
	return Config{
		DefaultQueue: "support",
		Queues: map[string]Queue{
			"support": {
				Channel: "C0SUPPORT", Hours: "paris", AckAfter: 2 * time.Minute, DefaultWait: 15 * time.Minute,
				AckQuickReplies: []string{"Track my order", "Talk to a person"},
				SLA: SLA{
					FirstResponse: 10 * time.Minute, NextResponse: 20 * time.Minute,
					Priorities: map[string]SLATargets{PriorityUrgent: {FirstResponse: 2 * time.Minute}},
					Mention:    "@leads", Overflow: "overflow", BusinessTime: &wall,
				},
			},
			"overflow": {Channel: "C0OVERFLOW"},
			"senior":   {Channel: "C0SENIOR"},
		},
		Hours:      map[string]Hours{"paris": {TimeZone: "Europe/Paris", Weekdays: "09:00-18:00", Holidays: []string{"2025-05-01"}}},
		Escalation: Escalation{Queue: "senior"},
	}
}

// outbound is what routing sent to customers of channel: messages on the
// pipeline's reply path (omni.in.routing.>), which picks the channel and the
// recipient (TestRouter_EndToEndWithPipeline shows the customer gets them).
func (h *harness) outbound(channel string) []*core.Message {
	h.t.Helper()
	var out []*core.Message
	for _, m := range h.published(bus.StreamIn, bus.RootIn+"."+event.ByRouting+".>") {
		if c, err := h.st.Conversation(h.ctx, m.ConversationID); err == nil && c.LastChannel == channel {
			out = append(out, m)
		}
	}
	return out
}

func (h *harness) breaches() []*core.Message {
	h.t.Helper()
	return ofType(h.published(bus.StreamEvt, bus.SubjectEvt(event.SLABreached)), event.SLABreached)
}

func (h *harness) pending() []Timer {
	h.t.Helper()
	ts, err := h.r.PendingTimers(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return ts
}

func TestTimers_AckOnceWhenNobodyAnswers(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("sms:+15550001111", nil)
	h.inbound(c, "Hello, is my order shipped?")
	if ts := h.pending(); len(ts) != 2 {
		t.Fatalf("pending timers = %+v, want ack and first response", ts)
	}
	h.advance(time.Minute)
	if n := len(h.outbound("sms")); n != 0 {
		t.Fatalf("%d replies after 1m, want none before ack_after", n)
	}
	h.advance(time.Minute)
	acks := ofType(h.outbound("sms"), AutoAck)
	if len(acks) != 1 {
		t.Fatalf("%d acks after 2m, want 1", len(acks))
	}
	a := acks[0]
	if a.Channel != event.ByRouting || a.ConversationID != c.ID || a.ContactID != c.ContactID || a.Direction != core.Outbound || a.Kind != core.KindMessage {
		t.Fatalf("ack envelope = %s %s on %s conv %s contact %s", a.Kind, a.Direction, a.Channel, a.ConversationID, a.ContactID)
	}
	// No history yet: default_wait 15m, 2m already waited -> about 15 minutes (rounded up to 5).
	if !strings.Contains(a.Text, "about 15 minutes") {
		t.Fatalf("ack text = %q, want the expected wait", a.Text)
	}
	if !slices.Equal(a.QuickReplies, []string{"Track my order", "Talk to a person"}) {
		t.Errorf("ack offers %q, want the queue's ack_quick_replies", a.QuickReplies)
	}
	// More messages and time in the same wait: no second ack.
	h.inbound(c, "Hello?")
	h.advance(5 * time.Minute)
	if n := len(ofType(h.outbound("sms"), AutoAck)); n != 1 {
		t.Fatalf("%d acks, want 1 per wait", n)
	}
	// The ack is routing's own: it does not count as an answer.
	h.deliver(a)
	if s := h.state(c.ID); !s.waiting() || s.Responded {
		t.Fatalf("after its own ack, waiting=%v responded=%v", s.waiting(), s.Responded)
	}
}

func TestTimers_ReplyCancelsAck(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("sms:+15550001112", nil)
	h.inbound(c, "Hi")
	h.advance(time.Minute)
	h.reply(c, agentA, "Hello! Looking now.")
	if ts := h.pending(); len(ts) != 0 {
		t.Fatalf("pending timers after the reply = %+v, want none", ts)
	}
	h.advance(time.Hour)
	if n := len(h.outbound("sms")); n != 0 {
		t.Fatalf("%d auto-replies, want none: an agent answered", n)
	}
	if n := len(h.breaches()); n != 0 {
		t.Fatalf("%d breaches, want none", n)
	}
}

func TestTimers_ExpectedWaitFromRecentResponses(t *testing.T) {
	h := newHarness(t, slaConfig())
	for i, wait := range []time.Duration{3 * time.Minute, 8 * time.Minute, 9 * time.Minute} {
		c := h.customer("web:v"+itoa(i), nil)
		h.inbound(c, "question")
		h.clock.Advance(wait)
		h.reply(c, agentA, "answer")
	}
	c := h.customer("web:waiting", nil)
	h.inbound(c, "question")
	h.advance(2 * time.Minute)
	acks := ofType(h.outbound("web"), AutoAck)
	if len(acks) != 1 {
		t.Fatalf("%d acks, want 1", len(acks))
	}
	// Median 8m, 2m waited: about 6 minutes.
	if !strings.Contains(acks[0].Text, "about 6 minutes") {
		t.Fatalf("ack text = %q, want about 6 minutes", acks[0].Text)
	}
}

func TestTimers_FirstResponseBreachEscalatesOnce(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("email:ann@example.com", nil)
	h.inbound(c, "Could you check my order status?")
	h.advance(9 * time.Minute)
	if n := len(h.breaches()); n != 0 {
		t.Fatalf("%d breaches at 9m, want none", n)
	}
	h.advance(time.Minute)
	bs := h.breaches()
	if len(bs) != 1 {
		t.Fatalf("%d breaches at 10m, want 1", len(bs))
	}
	if m := bs[0].Meta; m[event.MetaSLA] != TimerFirstResponse || m[event.MetaMention] != "@leads" || m[event.MetaOverflow] != "overflow" || m[event.MetaQueue] != "support" || m[event.MetaTarget] != "10m0s" {
		t.Fatalf("breach meta = %v", m)
	}
	desk := h.published(bus.StreamDesk, bus.SubjectDesk("slack"))
	if d := ofType(desk, event.SLABreached); len(d) != 1 || d[0].Meta[event.MetaMention] != "@leads" || d[0].Meta[event.MetaDeskChannel] != "C0SUPPORT" {
		t.Fatalf("desk breach events = %v", d)
	}
	routed := ofType(desk, event.ConversationRouted)
	if last := routed[len(routed)-1]; last.Meta[event.MetaQueue] != "overflow" || last.Meta[event.MetaReason] != event.ReasonSLABreach || last.Meta[event.MetaPreviousQueue] != "support" {
		t.Fatalf("last routed event meta = %v", last.Meta)
	}
	if got := h.conv(c.ID).Queue; got != "overflow" {
		t.Fatalf("queue after breach = %q, want overflow", got)
	}
	h.advance(time.Hour)
	if n := len(h.breaches()); n != 1 {
		t.Fatalf("%d breaches after an hour, want still 1", n)
	}
	if m := h.r.Metrics(); m.Breaches != 1 || m.TimersFired < 2 {
		t.Fatalf("metrics = %+v", m)
	}
}

func TestTimers_ReplyStopsFirstAndArmsNextResponse(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("telegram:42", nil)
	h.inbound(c, "hi")
	h.advance(5 * time.Minute)
	h.reply(c, agentB, "hi, how can I help?")
	h.advance(30 * time.Minute)
	if n := len(h.breaches()); n != 0 {
		t.Fatalf("%d breaches, want none: answered in 5m", n)
	}
	// Nothing runs until the customer writes again.
	if ts := h.pending(); len(ts) != 0 {
		t.Fatalf("pending = %+v, want none while nobody waits", ts)
	}
	h.inbound(c, "my parcel number is 123")
	ts := h.pending()
	if len(ts) != 2 || ts[0].Kind != TimerAck || ts[1].Kind != TimerNextResponse {
		t.Fatalf("pending = %+v, want ack and next response", ts)
	}
	h.advance(20 * time.Minute)
	bs := h.breaches()
	if len(bs) != 1 || bs[0].Meta[event.MetaSLA] != TimerNextResponse {
		t.Fatalf("breaches = %v, want one next_response", bs)
	}
}

func TestTimers_UrgentPriorityShortensTarget(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("sms:+15550001113", nil)
	h.inbound(c, "This is unacceptable, I want to cancel my account immediately!!!")
	s := h.state(c.ID)
	if s.Priority != PriorityUrgent || s.Queue != "senior" {
		t.Fatalf("priority %s queue %s, want urgent in senior", s.Priority, s.Queue)
	}
	// senior has no SLA; the escalation moved it there before any timer.
	if ts := h.pending(); len(ts) != 0 {
		t.Fatalf("pending = %+v", ts)
	}

	// In support, an urgent conversation gets the 2m target.
	cfg := slaConfig()
	cfg.Escalation.Queue = ""
	h2 := newHarness(t, cfg)
	c2 := h2.customer("sms:+15550001114", nil)
	h2.inbound(c2, "hello")
	h2.inbound(c2, "HELLO?? This is urgent, our site is down!!!")
	if s := h2.state(c2.ID); s.Priority != PriorityUrgent {
		t.Fatalf("priority = %s, want urgent", s.Priority)
	}
	h2.advance(2 * time.Minute)
	if bs := h2.breaches(); len(bs) != 1 || bs[0].Meta[event.MetaPriority] != PriorityUrgent {
		t.Fatalf("breaches = %v, want one at the urgent target", bs)
	}
	var reasons []string
	for _, m := range ofType(h2.published(bus.StreamDesk, bus.SubjectDesk("slack")), event.ConversationRouted) {
		reasons = append(reasons, m.Meta[event.MetaReason]+"/"+m.Meta[event.MetaPriority]+"/"+m.Meta[event.MetaQueue])
	}
	if want := "rules/normal/support escalation/urgent/support sla_breach/urgent/overflow"; strings.Join(reasons, " ") != want {
		t.Fatalf("routed events = %v, want %s", reasons, want)
	}
}

func TestTimers_OutOfHoursReplyOncePerClosedPeriod(t *testing.T) {
	h := newHarness(t, slaConfig())
	// Saturday 8 March 2025, 15:00 in Paris.
	h.clock.Advance(time.Date(2025, 3, 8, 14, 0, 0, 0, time.UTC).Sub(h.clock.Now()))
	c := h.customer("whatsapp:+8613800001234", nil)
	h.inbound(c, "你好，我的订单什么时候发货？")
	replies := h.outbound("whatsapp")
	if len(replies) != 1 || replies[0].Meta[event.MetaAuto] != AutoOutOfHours {
		t.Fatalf("replies = %v, want one out-of-hours reply", replies)
	}
	if r := replies[0]; r.Language != "zh" || !strings.Contains(r.Text, "3月10日（星期一）09:00") {
		t.Fatalf("out-of-hours reply = %s %q, want Chinese with Monday 09:00", r.Language, r.Text)
	}
	h.advance(time.Hour)
	h.inbound(c, "还在吗？")
	if n := len(h.outbound("whatsapp")); n != 1 {
		t.Fatalf("%d replies, want one per closed period, and no ack", n)
	}
}

func TestTimers_BusinessTimeSLA(t *testing.T) {
	cfg := slaConfig()
	q := cfg.Queues["support"]
	q.SLA.BusinessTime = nil // default: business time, since the queue has hours
	q.AckAfter = 0
	cfg.Queues["support"] = q
	h := newHarness(t, cfg)
	// Friday 7 March 2025, 17:55 Paris: 5 minutes left today.
	h.clock.Advance(time.Date(2025, 3, 7, 16, 55, 0, 0, time.UTC).Sub(h.clock.Now()))
	c := h.customer("email:bob@example.com", nil)
	h.inbound(c, "Quick question about my invoice")
	ts := h.pending()
	want := time.Date(2025, 3, 10, 8, 5, 0, 0, time.UTC) // Monday 09:05 Paris
	if len(ts) != 1 || !ts[0].Due.Equal(want) {
		t.Fatalf("pending = %+v, want first response due %s", ts, want)
	}
	h.advance(time.Date(2025, 3, 10, 8, 4, 0, 0, time.UTC).Sub(h.clock.Now()))
	if n := len(h.breaches()); n != 0 {
		t.Fatalf("breach before Monday 09:05")
	}
	h.advance(time.Minute)
	if n := len(h.breaches()); n != 1 {
		t.Fatalf("%d breaches on Monday 09:05, want 1", n)
	}
}

func TestTimers_ClosedConversationCancelsTimers(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("sms:+15550001115", nil)
	h.inbound(c, "hello")
	if len(h.pending()) == 0 {
		t.Fatal("no timers armed")
	}
	if _, err := h.st.CloseConversation(h.ctx, c.ID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.event("conversation.closed", c.ID, nil)
	if ts := h.pending(); len(ts) != 0 {
		t.Fatalf("pending after close = %+v", ts)
	}
	h.advance(time.Hour)
	if len(h.outbound("sms")) != 0 || len(h.breaches()) != 0 {
		t.Fatal("a closed conversation got an auto-reply or a breach")
	}
}

func TestTimers_StaleTimerDoesNothing(t *testing.T) {
	h := newHarness(t, slaConfig())
	c := h.customer("sms:+15550001116", nil)
	h.inbound(c, "hello")
	// The reply is recorded but the timers are left armed, as after a crash
	// between the two: firing must check the state and do nothing.
	if _, err := h.r.update(h.ctx, h.conv(c.ID), func(s *convState) error {
		s.observeOutbound(h.seq+1, h.clock.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Hour)
	if len(h.outbound("sms")) != 0 || len(h.breaches()) != 0 {
		t.Fatal("a stale timer sent an ack or a breach")
	}
	if ts := h.pending(); len(ts) != 0 {
		t.Fatalf("pending = %+v, want the stale timers gone", ts)
	}
}
