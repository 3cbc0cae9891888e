package routing

import (
	"context"
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
	"github.com/omnigate/omnigate/core/store"
)

// fakeClock is routingtest.Clock, which this package cannot import in its own
// tests.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	}
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
		} else {
			w.ch <- c.now
		}
	}
	c.waiters = kept
}

// harness runs one Router's handlers by hand on a real embedded JetStream and
// store: deterministic, no consumers.
type harness struct {
	t     *testing.T
	ctx   context.Context
	bus   *bus.Bus
	st    *store.Store
	r     *Router
	clock *fakeClock
	seq   uint64
}

// start is a Monday 10:00 in Paris (09:00 UTC), in the past so that envelope
// times never precede the fake clock.
var start = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	srv := bustest.RunServer(t)
	b, err := bus.Open(context.Background(), bus.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	kv, err := store.NewJetStream(context.Background(), b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(kv, store.Options{})
	clock := &fakeClock{now: start}
	cfg.SetDefaults()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := New(cfg, Deps{Bus: b, Store: st, Clock: clock, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &harness{t: t, ctx: ctx, bus: b, st: st, r: r, clock: clock}
}

// customer opens a conversation for identity; seed may set contact fields.
func (h *harness) customer(identity string, seed func(c *store.Contact)) *store.Conversation {
	h.t.Helper()
	id := core.Identity(identity)
	c, _, err := h.st.ResolveContact(h.ctx, id, seed)
	if err != nil {
		h.t.Fatal(err)
	}
	conv, _, err := h.st.FindOrOpenConversation(h.ctx, c.ID, 24*time.Hour, h.clock.Now(), func(cv *store.Conversation) {
		cv.Channel, cv.LastChannel, cv.LastIdentity = id.Channel(), id.Channel(), id
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return conv
}

// deliver hands m to the transcript handler as the next stream entry.
func (h *harness) deliver(m *core.Message) {
	h.t.Helper()
	data, err := m.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	h.seq++
	d := &bus.Delivery{
		Subject:      bus.SubjectConv(m.ConversationID),
		Data:         data,
		StreamSeq:    h.seq,
		NumDelivered: 1,
		Published:    h.clock.Now(),
	}
	if err := h.r.handleTranscript(h.ctx, d); err != nil {
		h.t.Fatalf("handle %s: %v", m.Direction, err)
	}
}

func (h *harness) inbound(conv *store.Conversation, text string) {
	h.t.Helper()
	m := core.NewMessage(core.KindMessage, core.Inbound, conv.LastIdentity.Channel())
	m.From, m.ContactID, m.ConversationID, m.Text = conv.LastIdentity, conv.ContactID, conv.ID, text
	m.ReceivedAt = h.clock.Now()
	h.deliver(m)
}

func (h *harness) reply(conv *store.Conversation, agent, text string) {
	h.t.Helper()
	m := core.NewMessage(core.KindMessage, core.Outbound, conv.LastIdentity.Channel())
	m.From, m.To, m.ContactID, m.ConversationID, m.Text = core.Identity(agent), conv.LastIdentity, conv.ContactID, conv.ID, text
	m.Meta = map[string]string{"desk": "slack"}
	m.ReceivedAt = h.clock.Now()
	h.deliver(m)
}

// event hands an event to the event handler.
func (h *harness) event(typ string, conv string, meta map[string]string) {
	h.t.Helper()
	m := core.NewMessage(core.KindEvent, core.Inbound, "slack")
	m.Type, m.ConversationID, m.Meta = typ, conv, meta
	m.ReceivedAt = h.clock.Now()
	data, err := m.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.r.handleEvent(h.ctx, &bus.Delivery{
		Subject:      bus.SubjectEvt(typ),
		Data:         data,
		NumDelivered: 1,
		Published:    h.clock.Now(),
	}); err != nil {
		h.t.Fatalf("handle %s: %v", typ, err)
	}
}

// advance moves the clock and fires what came due, as the scheduler loop does.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	now := h.clock.Now()
	for _, id := range h.r.sched.due(now) {
		h.r.sched.try(h.ctx, id, now)
	}
}

func (h *harness) conv(id string) *store.Conversation {
	h.t.Helper()
	c, err := h.st.Conversation(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) state(id string) convState {
	h.t.Helper()
	s, ok, err := h.r.state(h.ctx, id)
	if err != nil || !ok {
		h.t.Fatalf("state of %s: %v (exists %v)", id, err, ok)
	}
	return s
}

// published returns the envelopes stored on subjects matching filter.
func (h *harness) published(stream, filter string) []*core.Message {
	h.t.Helper()
	return streamMessages(h.t, h.ctx, h.bus.JetStream(), stream, filter)
}

// streamMessages reads every message on filter in stream.
func streamMessages(t testing.TB, ctx context.Context, js jetstream.JetStream, stream, filter string) []*core.Message {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.NumPending)
	var out []*core.Message
	for len(out) < n {
		batch, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for msg := range batch.Messages() {
			m, err := core.Decode(msg.Data())
			if err != nil {
				t.Fatalf("decode %s: %v", msg.Subject(), err)
			}
			out = append(out, m)
			got++
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages on %s", len(out), n, filter)
		}
	}
	return out
}

// ofType keeps the messages of type typ (events) or with meta auto=typ.
func ofType(ms []*core.Message, typ string) []*core.Message {
	var out []*core.Message
	for _, m := range ms {
		if m.Type == typ || m.Meta[event.MetaAuto] == typ {
			out = append(out, m)
		}
	}
	return out
}
