package routing_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/routing"
	"github.com/omnigate/omnigate/routing/routingtest"
)

// env is one test's embedded JetStream, bus, store and fake clock; routers
// run on it with their real consumers.
type env struct {
	t     *testing.T
	ctx   context.Context
	srv   *bustest.Server
	bus   *bus.Bus
	st    *store.Store
	clock *routingtest.Clock
}

// envStart is a Monday 10:00 in Paris, in the past so that message times never
// precede the fake clock.
var envStart = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, srv: bustest.RunServer(t), clock: routingtest.NewClock(envStart)}
	e.open()
	return e
}

// open connects the bus and the store to the server.
func (e *env) open() {
	e.t.Helper()
	b, err := bus.Open(e.ctx, bus.Options{
		URL:      e.srv.URL(),
		Consumer: bus.ConsumerDefaults{Backoff: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond}, AckWait: 5 * time.Second},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.closeBus(b) })
	kv, err := store.NewJetStream(e.ctx, b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.bus, e.st = b, store.New(kv, store.Options{})
}

func (e *env) closeBus(b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.Close(ctx)
}

// restart stops the server and brings it back on the same store directory, as
// a crash of the whole deployment would, then reconnects.
func (e *env) restart() {
	e.t.Helper()
	e.closeBus(e.bus)
	e.srv.Restart(e.t)
	e.open()
}

func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// router starts a Router for cfg; the returned stop waits until Run returned.
func (e *env) router(cfg routing.Config, replica string) (*routing.Router, func()) {
	e.t.Helper()
	cfg.SetDefaults()
	r, err := routing.New(cfg, routing.Deps{
		Bus:       e.bus,
		Store:     e.st,
		Clock:     e.clock,
		Logger:    logger().With("replica", replica),
		ReplicaID: replica,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	// The consumers start at new messages: wait for them before publishing.
	bustest.Eventually(e.t, 10*time.Second, func() error {
		for stream, durable := range map[string]string{bus.StreamConv: routing.DurableTranscript, bus.StreamEvt: routing.DurableEvents} {
			if _, err := e.bus.JetStream().Consumer(e.ctx, stream, durable); err != nil {
				return err
			}
		}
		return nil
	})
	return r, stop
}

// conversation opens a conversation for identity in the store.
func (e *env) conversation(identity string) *store.Conversation {
	e.t.Helper()
	id := core.Identity(identity)
	c, _, err := e.st.ResolveContact(e.ctx, id, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	conv, _, err := e.st.FindOrOpenConversation(e.ctx, c.ID, time.Hour, e.clock.Now(), func(cv *store.Conversation) {
		cv.Channel, cv.LastChannel, cv.LastIdentity = id.Channel(), id.Channel(), id
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return conv
}

// say appends a customer message to the transcript, as the pipeline does.
func (e *env) say(conv *store.Conversation, text string) {
	e.t.Helper()
	m := core.NewMessage(core.KindMessage, core.Inbound, conv.LastIdentity.Channel())
	m.From, m.ContactID, m.ConversationID, m.Text = conv.LastIdentity, conv.ContactID, conv.ID, text
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectConv(conv.ID), m); err != nil {
		e.t.Fatal(err)
	}
}

// count is how many envelopes of type typ (or meta auto=typ) stream holds on
// filter.
func (e *env) count(stream, filter, typ string) int {
	e.t.Helper()
	return e.countFunc(stream, filter, func(m *core.Message) bool { return m.Type == typ || m.Meta[event.MetaAuto] == typ })
}

// countFunc is how many envelopes on filter in stream satisfy ok.
func (e *env) countFunc(stream, filter string, ok func(*core.Message) bool) int {
	e.t.Helper()
	s, err := e.bus.JetStream().Stream(e.ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := s.OrderedConsumer(e.ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	n, total := 0, int(info.NumPending)
	for read := 0; read < total; {
		batch, err := c.Fetch(total-read, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			m, err := core.Decode(msg.Data())
			if err != nil {
				e.t.Fatal(err)
			}
			if ok(m) {
				n++
			}
		}
		if got == 0 {
			e.t.Fatalf("read %d of %d on %s", read, total, filter)
		}
		read += got
	}
	return n
}

// pending waits until r lists n pending timers.
func (e *env) pending(r *routing.Router, n int) []routing.Timer {
	e.t.Helper()
	var ts []routing.Timer
	bustest.Eventually(e.t, 10*time.Second, func() error {
		var err error
		if ts, err = r.PendingTimers(e.ctx); err != nil {
			return err
		}
		if len(ts) != n {
			return fmt.Errorf("%d pending timers, want %d", len(ts), n)
		}
		return nil
	})
	return ts
}

// settle checks that count stays want as the clock moves on: what fires once
// must not fire again late.
func (e *env) settle(want int, count func() int, rs ...*routing.Router) {
	e.t.Helper()
	for range 5 {
		e.clock.Advance(time.Minute)
		e.caughtUp(rs...)
		if got := count(); got != want {
			e.t.Fatalf("count = %d, want it to stay %d", got, want)
		}
	}
}

// caughtUp waits until every router has fired what was due at the clock's
// time: what did not fire by then does not fire at that time.
func (e *env) caughtUp(rs ...*routing.Router) {
	e.t.Helper()
	now := e.clock.Now()
	bustest.Eventually(e.t, 10*time.Second, func() error {
		for i, r := range rs {
			if at := r.Metrics().TimersCheckedAt; at.Before(now) {
				return fmt.Errorf("router %d checked its timers up to %s, not yet %s", i, at, now)
			}
		}
		return nil
	})
}

// slaOnly is a queue with a 10m first-response target and nothing else.
func slaOnly() routing.Config {
	return routing.Config{Queues: map[string]routing.Queue{"support": {
		Channel: "C0SUPPORT",
		SLA:     routing.SLA{FirstResponse: 10 * time.Minute, Mention: "@leads"},
	}}}
}

func TestRouter_EndToEndWithPipeline(t *testing.T) {
	e := newEnv(t)
	p, err := pipeline.New(pipeline.Config{Desks: []string{"slack"}}, pipeline.Deps{Bus: e.bus, Store: e.st, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(e.ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- p.Run(pctx) }()
	t.Cleanup(func() { cancel(); <-pdone })

	cfg := routing.Config{
		DefaultQueue: "general",
		Queues: map[string]routing.Queue{
			"general": {Channel: "C0GENERAL", AckAfter: 2 * time.Minute, SLA: routing.SLA{FirstResponse: 30 * time.Minute}},
			"billing": {
				Channel:  "C0BILLING",
				Strategy: routing.StrategyLeastActive,
				Agents:   []string{"slack:UANN", "slack:UBOB"},
				AckAfter: 2 * time.Minute,
			},
		},
		Rules: []routing.Rule{{
			Name: "billing",
			When: routing.Match{Keywords: []string{"invoice", "发票"}},
			Then: routing.Action{Queue: "billing", Tags: []string{"billing"}, Ticket: true},
		}},
	}
	r, _ := e.router(cfg, "r1")

	in := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	in.From, in.Text, in.External.Message = "sms:+15557654321", "Hi, I did not get my invoice for March", "SM1"
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn("sms", string(in.From)), in); err != nil {
		t.Fatal(err)
	}
	var conv *store.Conversation
	bustest.Eventually(t, 10*time.Second, func() error {
		c, err := e.st.ContactByIdentity(e.ctx, in.From)
		if err != nil {
			return err
		}
		conv, err = e.st.OpenConversation(e.ctx, c.ID)
		if err != nil {
			return err
		}
		if conv.Queue != "billing" || conv.Assignee != "slack:UANN" || conv.Priority != routing.PriorityNormal {
			return fmt.Errorf("conversation queue %q assignee %q priority %q", conv.Queue, conv.Assignee, conv.Priority)
		}
		return nil
	})
	bustest.Eventually(t, 5*time.Second, func() error {
		routed := e.count(bus.StreamDesk, bus.SubjectDesk("slack"), event.ConversationRouted)
		assigned := e.count(bus.StreamEvt, bus.SubjectEvt(event.ConversationAssigned), event.ConversationAssigned)
		if routed != 1 || assigned != 1 {
			return fmt.Errorf("routed %d, assigned %d", routed, assigned)
		}
		// The billing rule asks the ticket system for a ticket, once.
		n := e.countFunc(bus.StreamEvt, bus.SubjectEvt(event.TicketCreate), func(m *core.Message) bool {
			return m.Type == event.TicketCreate && m.ConversationID == conv.ID && m.Meta["subject"] == in.Text
		})
		if n != 1 {
			return fmt.Errorf("%d ticket.create events for the conversation", n)
		}
		return nil
	})
	e.pending(r, 1) // the ack; billing has no SLA
	e.clock.Advance(2 * time.Minute)
	bustest.Eventually(t, 10*time.Second, func() error {
		if n := e.count(bus.StreamOut, bus.SubjectOut("sms"), routing.AutoAck); n != 1 {
			return fmt.Errorf("%d acks on omni.out.sms", n)
		}
		return nil
	})

	// The agent answers from the desk; the customer writes again: a new wait,
	// whose ack comes 2 minutes later.
	reply := core.NewMessage(core.KindMessage, core.Outbound, "slack")
	reply.From, reply.ConversationID, reply.Text = "slack:UANN", conv.ID, "Sending it now!"
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn("slack", conv.ID), reply); err != nil {
		t.Fatal(err)
	}
	// Pipeline partitions run in parallel: the reply must be in the transcript
	// before the customer's next message, as it would be in real life.
	bustest.Eventually(t, 10*time.Second, func() error {
		agentReplies := e.countFunc(bus.StreamConv, bus.SubjectConv(conv.ID), func(m *core.Message) bool {
			return m.Direction == core.Outbound && m.Meta[event.MetaAuto] == ""
		})
		if agentReplies != 1 {
			return fmt.Errorf("%d agent replies in the transcript", agentReplies)
		}
		return nil
	})
	in2 := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	in2.From, in2.Text, in2.External.Message = in.From, "Thanks, got it. One more thing", "SM2"
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn("sms", string(in.From)), in2); err != nil {
		t.Fatal(err)
	}
	e.pending(r, 1)
	e.clock.Advance(2 * time.Minute)
	bustest.Eventually(t, 10*time.Second, func() error {
		if n := e.count(bus.StreamOut, bus.SubjectOut("sms"), routing.AutoAck); n != 2 {
			return fmt.Errorf("%d acks on omni.out.sms, want 2", n)
		}
		return nil
	})
	if m := r.Metrics(); m.Routed != 1 || m.Assigned != 1 || m.Acks != 2 || m.TimersFired != 2 {
		t.Fatalf("metrics = %+v", m)
	}
}

// TestRouter_RestartFiresPendingTimerOnce arms an SLA timer, stops the router
// and restarts the NATS server (the store is JetStream KV on it), then checks
// that a new router fires the timer once.
func TestRouter_RestartFiresPendingTimerOnce(t *testing.T) {
	e := newEnv(t)
	r1, stop1 := e.router(slaOnly(), "before")
	conv := e.conversation("email:ann@example.com")
	e.say(conv, "Where is my order?")
	ts := e.pending(r1, 1)
	if ts[0].Kind != routing.TimerFirstResponse || !ts[0].Due.Equal(envStart.Add(10*time.Minute)) {
		t.Fatalf("pending = %+v", ts)
	}
	stop1()
	e.restart()

	r2, _ := e.router(slaOnly(), "after")
	e.pending(r2, 1)
	e.clock.Advance(9 * time.Minute)
	e.caughtUp(r2)
	breaches := func() int {
		return e.count(bus.StreamEvt, bus.SubjectEvt(event.SLABreached), event.SLABreached)
	}
	if n := breaches(); n != 0 {
		t.Fatalf("%d breaches before the target", n)
	}
	e.clock.Advance(time.Minute)
	bustest.Eventually(t, 10*time.Second, func() error {
		if n := breaches(); n != 1 {
			return fmt.Errorf("%d breaches", n)
		}
		return nil
	})
	e.settle(1, breaches, r2)
	e.pending(r2, 0)
	if m := r2.Metrics(); m.TimersFired != 1 || m.Breaches != 1 {
		t.Fatalf("metrics after restart = %+v", m)
	}
	if n := e.count(bus.StreamDesk, bus.SubjectDesk("slack"), event.SLABreached); n != 1 {
		t.Fatalf("%d desk breach events, want 1", n)
	}
}

// TestRouter_RestartTakesOverAbandonedClaim: a replica claimed a timer and
// died before firing it; after its claim runs out, another one fires it once.
func TestRouter_RestartTakesOverAbandonedClaim(t *testing.T) {
	e := newEnv(t)
	r1, stop1 := e.router(slaOnly(), "dead")
	conv := e.conversation("email:bob@example.com")
	e.say(conv, "Hello?")
	id := e.pending(r1, 1)[0].ID
	stop1()
	// What the dead replica's claim looks like: owner and a lease 2 minutes
	// after the due time.
	timers := e.st.Records("routing_timers")
	var rec map[string]any
	if _, err := timers.Update(e.ctx, id, &rec, 0, func(bool) error {
		rec["owner"] = "dead"
		rec["lease"] = envStart.Add(12 * time.Minute).Format(time.RFC3339)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.restart()
	r2, _ := e.router(slaOnly(), "alive")
	e.clock.Advance(11 * time.Minute) // due, but claimed
	e.caughtUp(r2)
	breaches := func() int {
		return e.count(bus.StreamEvt, bus.SubjectEvt(event.SLABreached), event.SLABreached)
	}
	if n := breaches(); n != 0 {
		t.Fatalf("%d breaches while another replica holds the claim", n)
	}
	e.clock.Advance(time.Minute + time.Second)
	bustest.Eventually(t, 10*time.Second, func() error {
		if n := breaches(); n != 1 {
			return fmt.Errorf("%d breaches", n)
		}
		return nil
	})
	e.settle(1, breaches, r2)
	if m := r2.Metrics(); m.TimersFired != 1 {
		t.Fatalf("metrics = %+v", m)
	}
}

// TestRouter_TwoReplicasFireOnce runs two routers on one bus and store: they
// share the transcript, and every timer fires once between them.
func TestRouter_TwoReplicasFireOnce(t *testing.T) {
	e := newEnv(t)
	cfg := slaOnly()
	q := cfg.Queues["support"]
	q.AckAfter = time.Minute
	cfg.Queues["support"] = q
	cfg.TimerScan = time.Second // both replicas index every timer quickly
	ra, _ := e.router(cfg, "a")
	rb, _ := e.router(cfg, "b")
	const n = 6
	for i := range n {
		e.say(e.conversation(fmt.Sprintf("sms:+1555000%04d", i)), "hello")
	}
	e.pending(ra, 2*n)
	// Let both scan, so both hold every timer in their index.
	e.clock.Advance(2 * time.Second)
	e.caughtUp(ra, rb)
	e.clock.Advance(15 * time.Minute)
	// No pipeline runs here: acks are counted on their way to it.
	acks := func() int { return e.count(bus.StreamIn, bus.RootIn+"."+event.ByRouting+".>", routing.AutoAck) }
	breaches := func() int {
		return e.count(bus.StreamEvt, bus.SubjectEvt(event.SLABreached), event.SLABreached)
	}
	bustest.Eventually(t, 15*time.Second, func() error {
		if a, b := acks(), breaches(); a != n || b != n {
			return fmt.Errorf("%d acks, %d breaches, want %d each", a, b, n)
		}
		return nil
	})
	e.settle(n, breaches, ra, rb)
	if a := acks(); a != n {
		t.Fatalf("%d acks, want %d", a, n)
	}
	ma, mb := ra.Metrics(), rb.Metrics()
	t.Logf("replica a fired %d timers, b fired %d", ma.TimersFired, mb.TimersFired)
	if fired := ma.TimersFired + mb.TimersFired; fired != 2*n {
		t.Fatalf("timers fired %d + %d = %d, want %d: each exactly once", ma.TimersFired, mb.TimersFired, fired, 2*n)
	}
	if sent := ma.Acks + mb.Acks + ma.Breaches + mb.Breaches; sent != 2*n {
		t.Fatalf("acks and breaches published %d times, want %d", sent, 2*n)
	}
}

// TestRouter_AgentEventsFromDesk: a desk's /omni away arrives as an event and
// routing stops assigning to that agent.
func TestRouter_AgentEventsFromDesk(t *testing.T) {
	e := newEnv(t)
	cfg := routing.Config{Queues: map[string]routing.Queue{"support": {
		Strategy: routing.StrategyRoundRobin, Agents: []string{"slack:UANN", "slack:UBOB"},
	}}}
	r, _ := e.router(cfg, "r")
	away := core.NewMessage(core.KindEvent, core.Inbound, "slack")
	away.Type, away.From = event.AgentAway, "slack:UANN"
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectEvt(event.AgentAway), away); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		as, err := r.Agents(e.ctx)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.ID == "slack:UANN" && a.Available {
				return errors.New("ann still available")
			}
		}
		return nil
	})
	for i := range 2 {
		conv := e.conversation(fmt.Sprintf("web:v%d", i))
		e.say(conv, "hi")
		bustest.Eventually(t, 10*time.Second, func() error {
			c, err := e.st.Conversation(e.ctx, conv.ID)
			if err != nil {
				return err
			}
			if c.Assignee != "slack:UBOB" {
				return fmt.Errorf("assignee %q, want bob while ann is away", c.Assignee)
			}
			return nil
		})
	}
}
