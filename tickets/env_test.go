package tickets_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/core/store/storetest"
	"github.com/omnigate/omnigate/tickets"
)

// backend opens stores on one backend (storetest.Backend).
type backend = storetest.Backend

func kvBackend() backend { return storetest.JetStreamBackend() }

func redisBackend(tb testing.TB) backend { return storetest.RedisBackend(tb, "tickets") }

// forEachBackend runs fn as subtests "kv" and "redis", in parallel.
func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	t.Run("kv", func(t *testing.T) {
		t.Parallel()
		fn(t, kvBackend())
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		fn(t, redisBackend(t))
	})
}

// openBus connects a bus to srv with short test backoffs.
func openBus(tb testing.TB, srv *bustest.Server) *bus.Bus {
	tb.Helper()
	b, err := bus.Open(context.Background(), bus.Options{
		URL: srv.URL(),
		Consumer: bus.ConsumerDefaults{
			Backoff: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond},
			AckWait: 5 * time.Second,
		},
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

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's bus, store and service.
type env struct {
	t     *testing.T
	srv   *bustest.Server
	bus   *bus.Bus
	st    *store.Store
	svc   *tickets.Service
	clock *clock
}

// newEnv starts a server, a bus, a store on be and a service with cfg
// (admin token "secret-token" unless set) on them. The service is not running:
// call run.
func newEnv(t *testing.T, be backend, cfg tickets.Config) *env {
	t.Helper()
	srv := bustest.RunServer(t)
	b := openBus(t, srv)
	e := &env{t: t, srv: srv, bus: b, st: be.Open(t, b), clock: newClock()}
	if cfg.AdminToken == "" {
		cfg.AdminToken = "secret-token"
	}
	e.svc = e.service(cfg, e.st)
	e.runPipeline()
	return e
}

// runPipeline runs the pipeline, which sends the service's notices to the
// customers, until the test ends.
func (e *env) runPipeline() {
	e.t.Helper()
	p, err := pipeline.New(pipeline.Config{}, pipeline.Deps{Bus: e.bus, Store: e.st, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// service builds another service (a replica) on st.
func (e *env) service(cfg tickets.Config, st *store.Store) *tickets.Service {
	e.t.Helper()
	svc, err := tickets.New(cfg, tickets.Deps{Bus: e.bus, Store: st, Desks: []string{"slack"}, Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("tickets.New: %v", err)
	}
	return svc
}

// run runs svc until the test ends and waits until it is ready.
func (e *env) run(svc *tickets.Service) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			e.t.Errorf("Run did not return after cancel")
		}
	})
	bustest.Eventually(e.t, 10*time.Second, func() error { return svc.Ready(ctx) })
}

// ctx is a context bounded by the test.
func (e *env) ctx() context.Context {
	c, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	e.t.Cleanup(cancel)
	return c
}

// customer creates a contact with identity id (e.g. "sms:+15551234567") and
// attributes, and an open conversation whose last channel is id's.
func (e *env) customer(id core.Identity, name string, attrs map[string]string) (*store.Contact, *store.Conversation) {
	e.t.Helper()
	ctx := e.ctx()
	c, _, err := e.st.ResolveContact(ctx, id, func(c *store.Contact) {
		c.Name, c.Attributes = name, attrs
		if id.Channel() == "email" {
			c.Email = id.Address()
		}
	})
	if err != nil {
		e.t.Fatalf("contact: %v", err)
	}
	conv, _, err := e.st.FindOrOpenConversation(ctx, c.ID, 0, e.clock.Now(), func(cv *store.Conversation) {
		cv.Channel, cv.LastChannel, cv.LastIdentity = id.Channel(), id.Channel(), id
	})
	if err != nil {
		e.t.Fatalf("conversation: %v", err)
	}
	return c, conv
}

// say appends a customer message to conversation conv's transcript, as the
// pipeline does.
func (e *env) say(conv *store.Conversation, from core.Identity, text, lang string) *core.Message {
	e.t.Helper()
	m := core.NewMessage(core.KindMessage, core.Inbound, from.Channel())
	m.From, m.ContactID, m.ConversationID, m.Text, m.Language = from, conv.ContactID, conv.ID, text, lang
	if _, err := e.bus.PublishMessage(e.ctx(), bus.SubjectConv(conv.ID), m, bus.WithMsgID("conv:"+m.ID)); err != nil {
		e.t.Fatalf("transcript: %v", err)
	}
	return m
}

// watch collects the envelopes published on subject (a NATS wildcard allowed).
type watch struct {
	mu   sync.Mutex
	msgs []*core.Message
	subj []string
}

func (e *env) watch(subject string) *watch {
	e.t.Helper()
	w := &watch{}
	sub, err := e.bus.Conn().Subscribe(subject, func(m *nats.Msg) {
		env, err := core.Decode(m.Data)
		if err != nil {
			return
		}
		w.mu.Lock()
		w.msgs = append(w.msgs, env)
		w.subj = append(w.subj, m.Subject)
		w.mu.Unlock()
	})
	if err != nil {
		e.t.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := e.bus.Conn().Flush(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

// all returns what was seen so far.
func (w *watch) all() []*core.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*core.Message(nil), w.msgs...)
}

// wait waits until a message satisfying match was seen and returns it.
func (w *watch) wait(t *testing.T, what string, match func(m *core.Message) bool) *core.Message {
	t.Helper()
	var found *core.Message
	bustest.Eventually(t, 10*time.Second, func() error {
		for _, m := range w.all() {
			if match(m) {
				found = m
				return nil
			}
		}
		return fmt.Errorf("no %s among %d messages: %s", what, len(w.all()), w.describe())
	})
	return found
}

func (w *watch) describe() string {
	var parts []string
	for _, m := range w.all() {
		parts = append(parts, fmt.Sprintf("%s/%s %q %v", m.Kind, m.Type, m.Text, m.Meta))
	}
	return strings.Join(parts, "; ")
}

// waitTicket waits until ticket n satisfies check.
func (e *env) waitTicket(svc *tickets.Service, n int64, check func(t *tickets.Ticket) error) *tickets.Ticket {
	e.t.Helper()
	var got *tickets.Ticket
	bustest.Eventually(e.t, 10*time.Second, func() error {
		t, err := svc.Get(e.ctx(), n)
		if err != nil {
			return err
		}
		got = t
		return check(t)
	})
	return got
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// dump renders v as JSON for failure messages.
func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func errStatus(t *tickets.Ticket) error { return fmt.Errorf("ticket #%d is %s", t.Number, t.Status) }

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func bustestEventually(t *testing.T, check func() error) {
	t.Helper()
	bustest.Eventually(t, 10*time.Second, check)
}

type storeConversation = store.Conversation
