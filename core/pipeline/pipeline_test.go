package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// backend opens stores on one backend (storetest.Backend).
type backend = storetest.Backend

func kvBackend() backend { return storetest.JetStreamBackend() }

func redisBackend(tb testing.TB) backend { return storetest.RedisBackend(tb, "pipeline") }

// forEachBackend runs fn as subtests "kv" and "redis".
func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	t.Run("kv", func(t *testing.T) { fn(t, kvBackend()) })
	t.Run("redis", func(t *testing.T) { fn(t, redisBackend(t)) })
}

// openBus connects a bus to srv with short test backoffs.
func openBus(tb testing.TB, srv *bustest.Server) *bus.Bus {
	tb.Helper()
	b, err := bus.Open(context.Background(), bus.Options{
		URL:      srv.URL(),
		Consumer: bus.ConsumerDefaults{Backoff: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond}},
	})
	if err != nil {
		tb.Fatalf("bus: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's server, bus, store and running pipeline.
type env struct {
	t   testing.TB
	ctx context.Context // ends with the test
	srv *bustest.Server
	bus *bus.Bus
	st  *store.Store
	js  jetstream.JetStream
}

// newEnv starts a server, a bus, a store on be and one pipeline with opts.
func newEnv(tb testing.TB, be backend, cfg pipeline.Config, clock ...func() time.Time) *env {
	tb.Helper()
	srv := bustest.RunServer(tb)
	b := openBus(tb, srv)
	e := &env{t: tb, ctx: testCtx(tb), srv: srv, bus: b, st: be.Open(tb, b), js: b.JetStream()}
	e.run(b, e.st, cfg, clock...)
	return e
}

// phoneChannels are the channels serve gives the pipeline: the registered
// adapters whose addresses are phone numbers.
var phoneChannels = []string{"sms", "whatsapp"}

// run starts a pipeline on b and st until the test ends.
func (e *env) run(b *bus.Bus, st *store.Store, cfg pipeline.Config, clock ...func() time.Time) {
	e.t.Helper()
	if cfg.PhoneChannels == nil {
		cfg.PhoneChannels = phoneChannels // as serve configures it
	}
	deps := pipeline.Deps{Bus: b, Store: st}
	if len(clock) > 0 {
		deps.Now = clock[0]
	}
	p, err := pipeline.New(cfg, deps)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("pipeline run: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("pipeline run did not return after cancel")
		}
	})
}

// testCtx returns a context that ends with the test, bounded so that a hung
// server fails the test instead of the whole run. Call it once per test.
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// customer returns an inbound message from from on its channel.
func customer(from core.Identity, text string, meta ...string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Inbound, from.Channel())
	m.From, m.Text = from, text
	for i := 0; i+1 < len(meta); i += 2 {
		if m.Meta == nil {
			m.Meta = map[string]string{}
		}
		m.Meta[meta[i]] = meta[i+1]
	}
	return m
}

// publishIn publishes m as its adapter would: on omni.in.<channel>.<partition of From>.
func (e *env) publishIn(m *core.Message) {
	e.t.Helper()
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn(m.Channel, string(m.From)), m); err != nil {
		e.t.Fatalf("publish inbound: %v", err)
	}
}

// publishDesk publishes m from a desk, partitioned by its conversation.
func (e *env) publishDesk(m *core.Message) {
	e.t.Helper()
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn(m.Channel, m.ConversationID), m); err != nil {
		e.t.Fatalf("publish desk: %v", err)
	}
}

// reply returns an agent's reply from desk slack in conversation.
func reply(conversation, text string, meta ...string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Outbound, "slack")
	m.From, m.ConversationID, m.Text = "slack:U0AGENT", conversation, text
	for i := 0; i+1 < len(meta); i += 2 {
		if m.Meta == nil {
			m.Meta = map[string]string{}
		}
		m.Meta[meta[i]] = meta[i+1]
	}
	return m
}

// deskEvent returns an event of type typ from desk slack about conversation.
func deskEvent(typ, conversation string, meta ...string) *core.Message {
	m := reply(conversation, "", meta...)
	m.Kind, m.Type, m.Direction = core.KindEvent, typ, core.Inbound
	return m
}

// messages returns the envelopes on subject in stream, oldest first.
func (e *env) messages(stream, subject string) []*core.Message {
	e.t.Helper()
	ctx := e.ctx
	st, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatalf("stream %s: %v", stream, err)
	}
	var out []*core.Message
	for seq := uint64(1); ; seq++ {
		raw, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			e.t.Fatalf("get %s after %d: %v", subject, seq, err)
		}
		m, err := core.Decode(raw.Data)
		if err != nil {
			e.t.Fatalf("decode %s seq %d: %v", subject, raw.Sequence, err)
		}
		out = append(out, m)
		seq = raw.Sequence
	}
}

// waitMessages waits until subject in stream holds n envelopes and returns them.
func (e *env) waitMessages(stream, subject string, n int) []*core.Message {
	e.t.Helper()
	var got []*core.Message
	bustest.Eventually(e.t, 30*time.Second, func() error {
		if got = e.messages(stream, subject); len(got) < n {
			return fmt.Errorf("%s holds %d envelopes, want %d (dead letters: %s)", subject, len(got), n, e.deadLetterSummary())
		}
		return nil
	})
	if len(got) != n {
		e.t.Fatalf("%s holds %d envelopes, want exactly %d", subject, len(got), n)
	}
	return got
}

// desk waits for n envelopes on omni.desk.slack.
func (e *env) desk(n int) []*core.Message {
	e.t.Helper()
	return e.waitMessages(bus.StreamDesk, bus.SubjectDesk("slack"), n)
}

// deadLetters returns the pipeline's dead letters.
func (e *env) deadLetters() []bus.DeadLetter {
	e.t.Helper()
	dls, err := e.bus.DeadLetters(e.ctx, pipeline.Stage, 0)
	if err != nil {
		e.t.Fatalf("dead letters: %v", err)
	}
	return dls
}

func (e *env) deadLetterSummary() string {
	var s []string
	for _, dl := range e.deadLetters() {
		s = append(s, dl.Subject+": "+dl.Error)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// transcript reads a whole transcript.
func (e *env) transcript(conversation string) []*core.Message {
	e.t.Helper()
	var out []*core.Message
	var after uint64
	for {
		page, next, err := pipeline.Transcript(e.ctx, e.js, conversation, after, pipeline.MaxTranscriptLimit)
		if err != nil {
			e.t.Fatalf("transcript %s: %v", conversation, err)
		}
		if len(page) == 0 {
			return out
		}
		for _, te := range page {
			if te.Err != nil {
				e.t.Fatalf("transcript %s seq %d: %v", conversation, te.Seq, te.Err)
			}
			out = append(out, te.Message)
		}
		after = next
	}
}

// contactOf returns the contact holding id.
func (e *env) contactOf(id core.Identity) *store.Contact {
	e.t.Helper()
	c, err := e.st.ContactByIdentity(e.ctx, id)
	if err != nil {
		e.t.Fatalf("contact of %s: %v", id, err)
	}
	return c
}

// openOf returns the open conversation of contact.
func (e *env) openOf(contact string) *store.Conversation {
	e.t.Helper()
	c, err := e.st.OpenConversation(e.ctx, contact)
	if err != nil {
		e.t.Fatalf("open conversation of %s: %v", contact, err)
	}
	return c
}

// texts returns the texts of ms.
func texts(ms []*core.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// publishRaw publishes data on subject as it is, with deduplication id id.
func (e *env) publishRaw(subject string, data []byte, id string) {
	e.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(bus.HeaderMsgID, id)
	if _, err := e.bus.PublishMsg(e.ctx, m); err != nil {
		e.t.Fatalf("publish raw on %s: %v", subject, err)
	}
}

// wantNoDeadLetters fails the test if the pipeline dead-lettered anything.
func (e *env) wantNoDeadLetters() {
	e.t.Helper()
	if dls := e.deadLetters(); len(dls) > 0 {
		e.t.Fatalf("unexpected dead letters: %s", e.deadLetterSummary())
	}
}

func TestConfig_Invalid(t *testing.T) {
	srv := bustest.RunServer(t)
	b := openBus(t, srv)
	st := kvBackend().Open(t, b)
	for _, cfg := range []pipeline.Config{
		{Desks: []string{"Slack"}},
		{Desks: []string{"slack"}, Channels: []string{"slack", "sms"}},
		{Channels: []string{"user"}},
		{Channels: []string{"routing"}},
		{Desks: []string{"tickets"}},
		{PhoneChannels: []string{"sms", "bad channel"}},
	} {
		_, err := pipeline.New(cfg, pipeline.Deps{Bus: b, Store: st})
		if err == nil || !strings.Contains(err.Error(), "invalid config") {
			t.Errorf("New with %+v = %v, want invalid config", cfg, err)
		}
	}
}

func TestRun_ReturnsOnCancel(t *testing.T) {
	srv := bustest.RunServer(t)
	b := openBus(t, srv)
	p, err := pipeline.New(pipeline.Config{}, pipeline.Deps{Bus: b, Store: kvBackend().Open(t, b)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The consumers exist once Run started them.
	bustest.Eventually(t, 10*time.Second, func() error {
		st, err := b.JetStream().Stream(t.Context(), bus.StreamIn)
		if err != nil {
			return err
		}
		names := st.ConsumerNames(t.Context())
		var n int
		for name := range names.Name() {
			if strings.HasPrefix(name, "pipeline-") {
				n++
			}
		}
		if n != bus.Partitions {
			return fmt.Errorf("%d pipeline consumers, want %d", n, bus.Partitions)
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// sorted returns s sorted, for order-independent comparisons.
func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
