package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
)

// Consumer redelivery settings of an Env's bus: quick enough for tests, with the
// bus's handler timeout, which a fake provider never reaches.
var consumerDefaults = bus.ConsumerDefaults{
	MaxDeliver: 3,
	Backoff:    []time.Duration{20 * time.Millisecond},
	AckWait:    10 * time.Second,
}

// Env is the world of one test: a real JetStream server (bustest.RunServer),
// a bus with omnigate's streams on it, a store on its JetStream KV, and an
// HTTP server whose mux holds the adapter's routes. Everything is torn down
// when the test ends. The kit builds one per check; an adapter's own tests may
// use NewEnv too.
type Env struct {
	// Name is the adapter's name.
	Name string
	// Bus is connected to the test's own JetStream server.
	Bus *bus.Bus
	// Store is on the server's JetStream KV.
	Store *store.Store
	// Mux is what Server serves; Deps.Routes mounts on it.
	Mux *http.ServeMux
	// Server serves Mux; Deps.PublicURL is its URL, so a fake provider can
	// call the adapter's webhooks over the network.
	Server *httptest.Server
	// Deps is what the adapter's factory receives.
	Deps adapters.Deps
	// Logger writes to the test's log (shown for failed tests and with -v).
	Logger *slog.Logger

	timeout time.Duration
}

// NewEnv starts a JetStream server and returns an Env for the adapter called name.
func NewEnv(t *testing.T, name string) *Env {
	t.Helper()
	srv := bustest.RunServer(t)
	log := testLogger(t)
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Options{URL: srv.URL(), Consumer: consumerDefaults, Logger: log, Name: "adaptertest"})
	if err != nil {
		t.Fatalf("adaptertest: open bus: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(cctx); err != nil {
			t.Errorf("adaptertest: close bus: %v", err)
		}
	})
	kv, err := store.NewJetStream(ctx, b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatalf("adaptertest: store: %v", err)
	}
	st := store.New(kv, store.Options{})
	t.Cleanup(func() { _ = st.Close() })

	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	alog := log.With("adapter", name)
	return &Env{
		Name:   name,
		Bus:    b,
		Store:  st,
		Mux:    mux,
		Server: hs,
		Logger: log,
		Deps: adapters.Deps{
			Publisher: adapters.NewPublisher(b, name),
			Routes:    adapters.NewRoutes(mux, name),
			Logger:    alog,
			Store:     st,
			PublicURL: hs.URL,
		},
		timeout: 10 * time.Second,
	}
}

// Serve serves req on the adapter's routes in this process, as the HTTP server
// would, and returns the response. req may be a server request
// (httptest.NewRequest) or a client one; its path must be under
// /channels/<Name>/.
func (e *Env) Serve(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	prefix := "/channels/" + e.Name + "/"
	if !strings.HasPrefix(req.URL.Path, prefix) {
		t.Fatalf("adaptertest: webhook request to %s, want a path under %s (Deps.Routes mounts there)", req.URL.Path, prefix)
	}
	rec := httptest.NewRecorder()
	e.Mux.ServeHTTP(rec, req.WithContext(t.Context()))
	return rec.Result()
}

// Start runs a in an adapters.Runtime, as omnigate serve does: its Run,
// supervised, and the durable consumer that calls Send for each message on
// omni.out.<Name>. It stops when the test ends.
func (e *Env) Start(t *testing.T, a adapters.Adapter) *adapters.Runtime {
	t.Helper()
	rt, err := adapters.NewRuntime(adapters.RuntimeConfig{}, adapters.RuntimeDeps{Bus: e.Bus, Store: e.Store, Logger: e.Logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Add(a, adapters.Channel); err != nil {
		t.Fatalf("adaptertest: runtime: %v", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("adaptertest: runtime: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("adaptertest: runtime still running 10s after its context was cancelled: the adapter's Run ignores ctx")
		}
	})
	// The runtime supervises Run only once its send consumer is in place: wait
	// for that, so what the test publishes next is consumed, and a quick test
	// does not stop the runtime halfway through its start.
	bustest.Eventually(t, e.timeout, func() error {
		for _, s := range rt.Ready(ctx) {
			if s.Name == a.Name() && s.Error == notStarted {
				return fmt.Errorf("runtime has not started %s", s.Name)
			}
		}
		return nil
	})
	return rt
}

// notStarted is what Runtime.Ready says of an adapter whose Run was not called yet.
const notStarted = "not started"

// sendDurable is the name of the Runtime's send consumer of adapter name.
func sendDurable(name string) string { return "send-" + name }

// Stored is one message as a stream keeps it.
type Stored struct {
	// Seq is its sequence in the stream.
	Seq uint64
	// Subject it was published to.
	Subject string
	// MsgID is its Nats-Msg-Id header, the deduplication id.
	MsgID string
	// Header holds all its headers.
	Header map[string][]string
	// Data is its body.
	Data []byte
	// Message is Data decoded, or nil when it is no valid envelope (Err says why).
	Message *core.Message
	Err     error
}

// Stored returns every message of stream, oldest first.
func (e *Env) Stored(t *testing.T, stream string) []Stored {
	t.Helper()
	ctx := t.Context()
	st, err := e.Bus.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("adaptertest: stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("adaptertest: stream %s: %v", stream, err)
	}
	var out []Stored
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("adaptertest: stream %s: get %d: %v", stream, seq, err)
		}
		s := Stored{Seq: seq, Subject: raw.Subject, MsgID: raw.Header.Get(bus.HeaderMsgID), Header: raw.Header, Data: raw.Data}
		s.Message, s.Err = core.Decode(raw.Data)
		out = append(out, s)
	}
	return out
}

// Count returns how many messages stream holds.
func (e *Env) Count(t *testing.T, stream string) uint64 {
	t.Helper()
	st, err := e.Bus.JetStream().Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("adaptertest: stream %s: %v", stream, err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatalf("adaptertest: stream %s: %v", stream, err)
	}
	return info.State.Msgs
}

// Events returns the events of type typ (e.g. adapters.EventDeliverySent) on
// omni.evt.<typ> that answer envelope replyTo; all of them when replyTo is "".
func (e *Env) Events(t *testing.T, typ, replyTo string) []*core.Message {
	t.Helper()
	var out []*core.Message
	for _, s := range e.Stored(t, bus.StreamEvt) {
		if s.Subject != bus.SubjectEvt(typ) || s.Message == nil {
			continue
		}
		if replyTo == "" || s.Message.ReplyTo == replyTo {
			out = append(out, s.Message)
		}
	}
	return out
}

// PublishOutbound publishes m on omni.out.<Name> as core's pipeline does and
// returns its stream sequence. The deduplication id is m.ID unless msgID is
// set: publishing the same envelope again with another msgID is how a test
// makes the Runtime see it a second time, as after a lost ack.
func (e *Env) PublishOutbound(t *testing.T, m *core.Message, msgID string) uint64 {
	t.Helper()
	if msgID == "" {
		msgID = m.ID
	}
	ack, err := e.Bus.PublishMessage(t.Context(), bus.SubjectOut(e.Name), m, bus.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("adaptertest: publish outbound: %v", err)
	}
	if ack.Duplicate {
		t.Fatalf("adaptertest: publish outbound: stored as a duplicate of %s", msgID)
	}
	return ack.Sequence
}

// WaitSent waits until the Runtime's send consumer has acknowledged every
// message of omni.out.<Name> up to stream sequence seq.
func (e *Env) WaitSent(t *testing.T, seq uint64) {
	t.Helper()
	bustest.Eventually(t, e.timeout, func() error {
		c, err := e.Bus.JetStream().Consumer(t.Context(), bus.StreamOut, sendDurable(e.Name))
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq || info.NumAckPending > 0 {
			return fmt.Errorf("send consumer acknowledged up to %d with %d pending, want up to %d",
				info.AckFloor.Stream, info.NumAckPending, seq)
		}
		return nil
	})
}

// testLogger returns a logger that writes to t's output until the test's
// cleanups are done; later lines (from goroutines still winding down) are
// dropped instead of panicking the test binary.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	// Registered first, so it runs last, after the bus and runtime are stopped.
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
