package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Run modes of rtAdapter.
const (
	runOK     = "ok"     // wait for ctx
	runError  = "error"  // return errBoom at once
	runPanic  = "panic"  // panic at once
	runReturn = "return" // return nil at once, before shutdown
)

// rtAdapter is an adapter whose Run, Ready and Send the test steers.
type rtAdapter struct {
	name string

	mu       sync.Mutex
	runMode  string
	runs     int
	readyErr error
	// send answers the n-th call of Send (1-based); nil sends successfully.
	send   func(ctx context.Context, n int, m *core.Message) (adapters.Receipt, error)
	calls  []time.Time
	sent   []string // envelope ids Send accepted
	closed bool
}

func newRTAdapter(name string) *rtAdapter { return &rtAdapter{name: name, runMode: runOK} }

func (a *rtAdapter) Name() string { return a.name }

func (a *rtAdapter) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runs++
	mode := a.runMode
	a.mu.Unlock()
	switch mode {
	case runError:
		return errBoom
	case runPanic:
		panic("kaboom")
	case runReturn:
		return nil
	}
	<-ctx.Done()
	return nil
}

func (a *rtAdapter) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	a.mu.Lock()
	a.calls = append(a.calls, time.Now())
	n, send := len(a.calls), a.send
	a.mu.Unlock()
	rc := adapters.Receipt{ProviderID: "p-" + m.ID}
	var err error
	if send != nil {
		rc, err = send(ctx, n, m)
	}
	if err == nil {
		a.mu.Lock()
		a.sent = append(a.sent, m.ID)
		a.mu.Unlock()
	}
	return rc, err
}

func (a *rtAdapter) Ready(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readyErr
}

func (a *rtAdapter) Close(context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	return nil
}

func (a *rtAdapter) set(f func(a *rtAdapter)) {
	a.mu.Lock()
	f(a)
	a.mu.Unlock()
}

func (a *rtAdapter) counts() (runs, calls, sent int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs, len(a.calls), len(a.sent)
}

// startRuntime runs a (of kind) in a Runtime on env until the test ends, and
// returns the Runtime and a function that stops it and waits for Run.
func startRuntime(t *testing.T, env *adaptertest.Env, a adapters.Adapter, kind adapters.Kind) (*adapters.Runtime, func() error) {
	t.Helper()
	return startMeasured(t, env, a, kind, nil)
}

// startMeasured is startRuntime with the Runtime's metrics on reg (none when nil).
func startMeasured(t *testing.T, env *adaptertest.Env, a adapters.Adapter, kind adapters.Kind, reg prometheus.Registerer) (*adapters.Runtime, func() error) {
	t.Helper()
	rt, err := adapters.NewRuntime(adapters.RuntimeConfig{}, adapters.RuntimeDeps{Bus: env.Bus, Store: env.Store, Logger: env.Logger, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Add(a, kind); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(10 * time.Second):
				stopErr = errors.New("runtime did not stop within 10s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return rt, stop
}

// status returns the Ready status of adapter name.
func status(t *testing.T, rt *adapters.Runtime, name string) adapters.Status {
	t.Helper()
	for _, s := range rt.Ready(t.Context()) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Ready lists no %s", name)
	return adapters.Status{}
}

func reply(to string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Outbound, "rt")
	m.To = core.Identity(to)
	m.Text = "hello"
	m.ConversationID = "conv1"
	return m
}

func TestRuntime_RestartsFailingRun(t *testing.T) {
	tests := []struct{ mode, want string }{
		{runError, "boom"},
		{runPanic, "panic: kaboom"},
		{runReturn, "Run returned before shutdown"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			env := adaptertest.NewEnv(t, "rt")
			a := newRTAdapter("rt")
			a.set(func(a *rtAdapter) { a.runMode = tt.mode })
			rt, _ := startRuntime(t, env, a, adapters.Channel)

			bustest.Eventually(t, 5*time.Second, func() error {
				if s := status(t, rt, "rt"); !strings.Contains(s.Error, tt.want) {
					return fmt.Errorf("Ready says %q, want %q", s.Error, tt.want)
				}
				return nil
			})
			// The failure is the adapter's only: it still sends.
			m := reply("rt:1")
			env.WaitSent(t, env.PublishOutbound(t, m, ""))
			if _, _, sent := a.counts(); sent != 1 {
				t.Errorf("a failing Run stopped Send: %d sent, want 1", sent)
			}

			a.set(func(a *rtAdapter) { a.runMode = runOK })
			bustest.Eventually(t, 5*time.Second, func() error {
				if s := status(t, rt, "rt"); s.Error != "" {
					return fmt.Errorf("Ready says %q after the adapter recovered", s.Error)
				}
				return nil
			})
			if runs, _, _ := a.counts(); runs < 2 {
				t.Errorf("Run called %d times, want it restarted", runs)
			}
		})
	}
}

func TestRuntime_Ready(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	rt, err := adapters.NewRuntime(adapters.RuntimeConfig{}, adapters.RuntimeDeps{Bus: env.Bus, Store: env.Store, Logger: env.Logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Add(a, adapters.Channel); err != nil {
		t.Fatal(err)
	}
	if err := rt.Add(newRTAdapter("rt"), adapters.Channel); err == nil {
		t.Error("adding a second adapter named rt succeeded")
	}
	if s := status(t, rt, "rt"); s.Error != "not started" || s.Kind != adapters.Channel {
		t.Errorf("before Run: %+v, want not started", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	bustest.Eventually(t, 5*time.Second, func() error {
		if s := status(t, rt, "rt"); s.Error != "" {
			return fmt.Errorf("Ready says %q", s.Error)
		}
		return nil
	})
	// A Readier's answer shows, and goes away when the provider is back.
	a.set(func(a *rtAdapter) { a.readyErr = errors.New("token revoked") })
	if s := status(t, rt, "rt"); s.Error != "token revoked" {
		t.Errorf("Ready says %q, want the Readier's error", s.Error)
	}
	a.set(func(a *rtAdapter) { a.readyErr = nil })
	if s := status(t, rt, "rt"); s.Error != "" {
		t.Errorf("Ready says %q, want ready", s.Error)
	}
}

func TestRuntime_RunReturnsOnCancel(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	_, stop := startRuntime(t, env, a, adapters.Channel)
	bustest.Eventually(t, 5*time.Second, func() error {
		if runs, _, _ := a.counts(); runs == 0 {
			return errors.New("Run not called")
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		t.Error("Close not called after Run returned")
	}
}

func TestRuntime_IdempotentSend(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	startRuntime(t, env, a, adapters.Channel)

	m := reply("rt:42")
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	// The same envelope again, as after a lost ack.
	env.WaitSent(t, env.PublishOutbound(t, m, m.ID+"-again"))
	if _, calls, _ := a.counts(); calls != 1 {
		t.Errorf("Send called %d times for one envelope, want 1", calls)
	}
	var rc adapters.Receipt
	if _, err := env.Store.Records("sent_rt").Get(t.Context(), m.ID, &rc); err != nil {
		t.Fatalf("sent record: %v", err)
	}
	if rc.ProviderID != "p-"+m.ID || rc.Status != "sent" || rc.At.IsZero() {
		t.Errorf("sent record %+v, want the receipt with status and time filled", rc)
	}
	evs := env.Events(t, event.DeliverySent, m.ID)
	if len(evs) != 1 {
		t.Fatalf("%d %s events, want 1", len(evs), event.DeliverySent)
	}
	ev := evs[0]
	if ev.External.Message != "p-"+m.ID || ev.To != m.To || ev.ConversationID != "conv1" || ev.Channel != "rt" {
		t.Errorf("event %+v", ev)
	}
}

func TestRuntime_RetryThenSend(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	a.send = func(_ context.Context, n int, m *core.Message) (adapters.Receipt, error) {
		if n == 1 {
			return adapters.Receipt{}, errors.New("provider down")
		}
		return adapters.Receipt{ProviderID: "p1"}, nil
	}
	startRuntime(t, env, a, adapters.Channel)

	m := reply("rt:1")
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	if _, calls, sent := a.counts(); calls != 2 || sent != 1 {
		t.Errorf("Send called %d times, %d successfully; want 2 and 1", calls, sent)
	}
	if evs := env.Events(t, event.DeliveryFailed, m.ID); len(evs) != 0 {
		t.Errorf("%s event for a message that was sent on retry", event.DeliveryFailed)
	}
	if evs := env.Events(t, event.DeliverySent, m.ID); len(evs) != 1 {
		t.Errorf("%d %s events, want 1", len(evs), event.DeliverySent)
	}
}

func TestRuntime_RetryAfter(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	const delay = 300 * time.Millisecond
	a.send = func(_ context.Context, n int, _ *core.Message) (adapters.Receipt, error) {
		if n == 1 {
			return adapters.Receipt{}, adapters.RetryAfter(errors.New("429"), delay)
		}
		return adapters.Receipt{}, nil
	}
	startRuntime(t, env, a, adapters.Channel)

	env.WaitSent(t, env.PublishOutbound(t, reply("rt:1"), ""))
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) != 2 {
		t.Fatalf("Send called %d times, want 2", len(a.calls))
	}
	// The consumer's own backoff here is 20ms: the wait is the adapter's.
	if gap := a.calls[1].Sub(a.calls[0]); gap < delay-50*time.Millisecond {
		t.Errorf("retried after %s, want at least %s", gap, delay)
	}
}

func TestRuntime_PermanentDeadLetters(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	a.send = func(context.Context, int, *core.Message) (adapters.Receipt, error) {
		return adapters.Receipt{}, adapters.Permanent(errors.New("unknown recipient"))
	}
	startRuntime(t, env, a, adapters.Channel)

	m := reply("rt:nobody")
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	if _, calls, _ := a.counts(); calls != 1 {
		t.Errorf("Send called %d times, want 1: a Permanent error is not retried", calls)
	}
	checkFailed(t, env, m, 1, "unknown recipient")
}

func TestRuntime_LastDeliveryFails(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	a.send = func(context.Context, int, *core.Message) (adapters.Receipt, error) {
		return adapters.Receipt{}, errors.New("provider down")
	}
	startRuntime(t, env, a, adapters.Channel)

	m := reply("rt:1")
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	maxDeliver := env.Bus.Options().Consumer.MaxDeliver
	if _, calls, _ := a.counts(); calls != maxDeliver {
		t.Errorf("Send called %d times, want %d (MaxDeliver)", calls, maxDeliver)
	}
	checkFailed(t, env, m, maxDeliver, "provider down")
}

// checkFailed checks that m was dead-lettered after deliveries attempts and
// that one delivery.failed event says why.
func checkFailed(t *testing.T, env *adaptertest.Env, m *core.Message, deliveries int, reason string) {
	t.Helper()
	evs := env.Events(t, event.DeliveryFailed, m.ID)
	if len(evs) != 1 {
		t.Fatalf("%d %s events, want 1", len(evs), event.DeliveryFailed)
	}
	if !strings.Contains(evs[0].Meta["error"], reason) {
		t.Errorf("event meta error %q, want it to contain %q", evs[0].Meta["error"], reason)
	}
	var dls []bus.DeadLetter
	bustest.Eventually(t, 10*time.Second, func() error {
		var err error
		dls, err = env.Bus.DeadLetters(t.Context(), "send-rt", 0)
		if err == nil && len(dls) != 1 {
			err = fmt.Errorf("%d dead letters, want 1", len(dls))
		}
		return err
	})
	if dl := dls[0]; dl.Deliveries != deliveries || dl.Subject != bus.SubjectOut("rt") || !strings.Contains(dl.Error, reason) {
		t.Errorf("dead letter: %d deliveries, subject %s, error %q", dl.Deliveries, dl.Subject, dl.Error)
	}
	if evs := env.Events(t, event.DeliverySent, m.ID); len(evs) != 0 {
		t.Errorf("%s event for a message that failed", event.DeliverySent)
	}
	if _, err := env.Store.Records("sent_rt").Get(t.Context(), m.ID, new(adapters.Receipt)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sent record of a failed message: %v", err)
	}
}

// runSendRuntime runs a runtime with one channel adapter "rt" whose Send is
// send, on a bus with a short handler timeout and a single delivery allowed,
// and returns the bus once the send consumer exists.
func runSendRuntime(t *testing.T, send func(ctx context.Context, n int, m *core.Message) (adapters.Receipt, error)) *bus.Bus {
	t.Helper()
	srv := bustest.RunServer(t)
	b, err := bus.Open(t.Context(), bus.Options{URL: srv.URL(), Consumer: bus.ConsumerDefaults{
		MaxDeliver: 1, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 500 * time.Millisecond,
		HandlerTimeout: 200 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	kv, err := store.NewJetStream(t.Context(), b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(kv, store.Options{})
	a := newRTAdapter("rt")
	a.send = send
	rt, err := adapters.NewRuntime(adapters.RuntimeConfig{}, adapters.RuntimeDeps{Bus: b, Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Add(a, adapters.Channel); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	bustest.Eventually(t, 5*time.Second, func() error {
		_, err := b.JetStream().Consumer(t.Context(), bus.StreamOut, "send-rt")
		return err
	})
	return b
}

// lastEvent waits for an event of typ on the event stream.
func lastEvent(t *testing.T, b *bus.Bus, typ string) {
	t.Helper()
	bustest.Eventually(t, 5*time.Second, func() error {
		st, err := b.JetStream().Stream(t.Context(), bus.StreamEvt)
		if err != nil {
			return err
		}
		if _, err := st.GetLastMsgForSubject(t.Context(), bus.SubjectEvt(typ)); err != nil {
			return fmt.Errorf("no %s event: %w", typ, err)
		}
		return nil
	})
}

// A provider that does not answer is unavailable, not a reason to give up on
// the message: each attempt is cut at the handler's timeout and retried in
// place, beyond MaxDeliver, until the provider answers; then the message is
// sent and nothing is dead-lettered.
func TestRuntime_HangingProviderIsWaitedOut(t *testing.T) {
	var attempts atomic.Int32
	b := runSendRuntime(t, func(ctx context.Context, n int, m *core.Message) (adapters.Receipt, error) {
		attempts.Store(int32(n))
		if n <= 3 {
			<-ctx.Done() // the provider hangs
			return adapters.Receipt{}, ctx.Err()
		}
		return adapters.Receipt{ProviderID: "p-" + m.ID}, nil
	})
	m := reply("rt:1")
	if _, err := b.PublishMessage(t.Context(), bus.SubjectOut("rt"), m); err != nil {
		t.Fatal(err)
	}
	lastEvent(t, b, event.DeliverySent)
	if n := attempts.Load(); n != 4 {
		t.Errorf("send tried %d times, want 4 (3 timed out)", n)
	}
	if dls, err := b.DeadLetters(t.Context(), "send-rt", 0); err != nil || len(dls) != 0 {
		t.Errorf("dead letters: %d (%v), want none", len(dls), err)
	}
}

// A Send that fails for good after running into the handler's timeout still
// gets its delivery.failed event out: the event is not published on the
// expired context.
func TestRuntime_FailedEventAfterTimeout(t *testing.T) {
	b := runSendRuntime(t, func(ctx context.Context, _ int, _ *core.Message) (adapters.Receipt, error) {
		<-ctx.Done()
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("provider refused after %w", ctx.Err()))
	})
	m := reply("rt:1")
	if _, err := b.PublishMessage(t.Context(), bus.SubjectOut("rt"), m); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		dls, err := b.DeadLetters(t.Context(), "send-rt", 0)
		if err != nil || len(dls) == 0 {
			return fmt.Errorf("no dead letter yet (%v)", err)
		}
		return nil
	})
	lastEvent(t, b, event.DeliveryFailed)
}

func TestRuntime_Desk(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := newRTAdapter("rt")
	startRuntime(t, env, a, adapters.Desk)

	m := reply("rt:agent")
	ack, err := env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("rt"), m)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		c, err := env.Bus.JetStream().Consumer(t.Context(), bus.StreamDesk, "desk-rt")
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < ack.Sequence {
			return errors.New("not consumed yet")
		}
		return nil
	})
	if _, _, sent := a.counts(); sent != 1 {
		t.Errorf("desk adapter sent %d, want 1", sent)
	}
	if evs := env.Events(t, event.DeliverySent, ""); len(evs) != 0 {
		t.Errorf("%d delivery events for a desk, want none: desks are not customer channels", len(evs))
	}
}

// concAdapter asks for concurrent sends and records how many overlap.
type concAdapter struct {
	*rtAdapter
	mu       sync.Mutex
	inflight int
	peak     int
}

func (a *concAdapter) Concurrency() int { return 4 }

func TestRuntime_Concurrent(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := &concAdapter{rtAdapter: newRTAdapter("rt")}
	overlap := make(chan struct{})
	var once sync.Once
	a.send = func(ctx context.Context, _ int, _ *core.Message) (adapters.Receipt, error) {
		a.mu.Lock()
		a.inflight++
		if a.peak = max(a.peak, a.inflight); a.peak >= 2 {
			once.Do(func() { close(overlap) })
		}
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			a.inflight--
			a.mu.Unlock()
		}()
		// Hold the send until another one runs beside it.
		select {
		case <-overlap:
		case <-time.After(3 * time.Second):
		}
		return adapters.Receipt{}, nil
	}
	startRuntime(t, env, a, adapters.Channel)
	var last uint64
	for i := range 4 {
		last = env.PublishOutbound(t, reply(fmt.Sprintf("rt:%d", i)), "")
	}
	env.WaitSent(t, last)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.peak < 2 {
		t.Errorf("at most %d Send at a time, want up to Concurrency()", a.peak)
	}
}

// evtAdapter is an rtAdapter that also handles events; its first HandleEvent
// fails, to show the runtime redelivers.
type evtAdapter struct {
	*rtAdapter
	types []string

	emu  sync.Mutex
	seen []string // types of the events handled, in order, failures included
}

func (a *evtAdapter) EventTypes() []string { return a.types }

func (a *evtAdapter) HandleEvent(_ context.Context, m *core.Message) error {
	a.emu.Lock()
	defer a.emu.Unlock()
	a.seen = append(a.seen, m.Type+":"+m.ReplyTo)
	if len(a.seen) == 1 {
		return errBoom
	}
	return nil
}

func (a *evtAdapter) handled() []string {
	a.emu.Lock()
	defer a.emu.Unlock()
	return slices.Clone(a.seen)
}

func TestRuntime_EventHandler(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := &evtAdapter{rtAdapter: newRTAdapter("rt"), types: []string{event.DeliveryDelivered, "conversation.closed"}}
	rt, _ := startRuntime(t, env, a, adapters.Desk)
	bustest.Eventually(t, 5*time.Second, func() error {
		if s := status(t, rt, "rt"); s.Error != "" {
			return fmt.Errorf("not ready: %s", s.Error)
		}
		return nil
	})

	publish := func(typ, replyTo string) {
		t.Helper()
		ev := core.NewMessage(core.KindEvent, core.Outbound, "sms")
		ev.Type, ev.ReplyTo, ev.ConversationID = typ, replyTo, "conv1"
		if _, err := env.Bus.PublishMessage(t.Context(), bus.SubjectEvt(typ), ev); err != nil {
			t.Fatal(err)
		}
	}
	publish(event.DeliveryDelivered, "r1")
	publish(event.DeliverySent, "r2") // not asked for
	publish("conversation.closed", "r3")

	// The failed first attempt comes back after the backoff, so after r3.
	want := []string{"conversation.closed:r3", "delivery.delivered:r1", "delivery.delivered:r1"}
	bustest.Eventually(t, 5*time.Second, func() error {
		got := a.handled()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("handled %q, want %q (the failed first attempt redelivered)", got, want)
		}
		return nil
	})
}

func TestRuntime_EventHandlerBadType(t *testing.T) {
	env := adaptertest.NewEnv(t, "rt")
	a := &evtAdapter{rtAdapter: newRTAdapter("rt"), types: []string{"delivery.*"}}
	rt, _ := startRuntime(t, env, a, adapters.Desk)
	bustest.Eventually(t, 5*time.Second, func() error {
		if s := status(t, rt, "rt"); !strings.Contains(s.Error, `"delivery.*"`) {
			return fmt.Errorf("Ready says %q, want the bad event type", s.Error)
		}
		return nil
	})
	// The adapter's sends still run.
	m := reply("rt:1")
	if _, err := env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("rt"), m); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		if _, _, sent := a.counts(); sent != 1 {
			return errors.New("desk message not sent")
		}
		return nil
	})
}
