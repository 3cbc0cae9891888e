package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// marked is how a package that does not import bus marks its errors.
type marked struct{}

func (marked) Error() string     { return "backend down" }
func (marked) Unavailable() bool { return true }

func TestIsUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("bad payload"), false},
		{"marked", bus.Unavailable(errors.New("twilio answered 503")), true},
		{"method", fmt.Errorf("get contact: %w", marked{}), true},
		{"connection refused", fmt.Errorf("store: %w", refused), true},
		{"errno", syscall.ECONNRESET, true},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), true},
		{"nats timeout", fmt.Errorf("publish: %w", nats.ErrTimeout), true},
		{"no responders", nats.ErrNoResponders, true},
		{"canceled", context.Canceled, false},
		{"permanent wins", bus.Permanent(bus.Unavailable(errors.New("x"))), false},
		{"permanent around network", bus.Permanent(refused), false},
	} {
		if got := bus.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// An outage far longer than the retry schedule dead-letters nothing: the head
// message waits, retried in place, the later ones wait behind it, and all are
// handled in order once the dependency is back.
func TestBus_UnavailableDependencyIsWaitedOut(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var got []string
	attempts := map[string]int{}
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "outage", MaxDeliver: 2, AckWait: 300 * time.Millisecond,
		Backoff: []time.Duration{10 * time.Millisecond}, Exclusive: true},
		func(ctx context.Context, d *bus.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[string(d.Data)]++
			if down.Load() {
				return fmt.Errorf("store: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
			}
			got = append(got, string(d.Data))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := b.Publish(t.Context(), bus.SubjectOut("sms"), []byte{'a' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Long enough for many retries and several ack waits.
	bustest.Eventually(t, 10*time.Second, func() error {
		if st := b.OutageStats(); st.Waiting != 1 || st.Retries < 5 {
			return fmt.Errorf("outage stats %+v", st)
		}
		return nil
	})
	time.Sleep(time.Second)
	down.Store(false)
	bustest.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 5 {
			return fmt.Errorf("handled %v", got)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[a b c d e]" {
		t.Fatalf("handled %v, want a..e in order", got)
	}
	if attempts["a"] < 5 || attempts["b"] != 1 {
		t.Fatalf("attempts %v: want many of a, one of each later message", attempts)
	}
	if dls, err := b.DeadLetters(t.Context(), "outage", 0); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %d (%v), want none", len(dls), err)
	}
	if st := b.OutageStats(); st.Waiting != 0 || !st.Since.IsZero() {
		t.Fatalf("outage stats after recovery %+v", st)
	}
}

// A replica that stops while its message waits for a dependency hands it
// over at once, not after the ack wait.
func TestBus_StopDuringOutageHandsOver(t *testing.T) {
	srv := bustest.RunServer(t)
	a, b := openExternal(t, srv), openExternal(t, srv)
	spec := bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "handover", AckWait: time.Minute, Exclusive: true}
	waiting := make(chan struct{}, 1)
	ca, err := a.Consume(t.Context(), spec, func(context.Context, *bus.Delivery) error {
		select {
		case waiting <- struct{}{}:
		default:
		}
		return bus.Unavailable(errors.New("provider answered 503"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(t.Context(), bus.SubjectOut("sms"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-waiting
	got := make(chan *bus.Delivery, 1)
	if _, err := b.Consume(t.Context(), spec, func(_ context.Context, d *bus.Delivery) error { got <- d; return nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := ca.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		t.Logf("handed over %s after the stop, delivery %d", time.Since(start).Round(time.Millisecond), d.NumDelivered)
	case <-time.After(30 * time.Second):
		t.Fatal("not handed over within 30 s (the ack wait is a minute)")
	}
}

// Replay keeps a sender's order: a dead letter whose sender has later
// messages that were handled is refused (ErrWouldReorder) unless the caller
// allows it; later messages that are dead letters too do not count.
func TestBus_ReplayRefusesToReorder(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	bad := map[string]bool{"ann-1": true, "bob-1": true, "bob-2": true}
	handled := make(chan string, 10)
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "replay-order", Stage: "send-sms"},
		func(_ context.Context, d *bus.Delivery) error {
			if bad[string(d.Data)] {
				return bus.Permanent(errors.New("refused"))
			}
			handled <- string(d.Data)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ key, text string }{{"sms:ann", "ann-1"}, {"sms:ann", "ann-2"}, {"sms:bob", "bob-1"}, {"sms:bob", "bob-2"}} {
		if _, err := b.Publish(t.Context(), bus.SubjectOut("sms"), []byte(m.text), bus.WithHeader(bus.HeaderOrderKey, m.key)); err != nil {
			t.Fatal(err)
		}
	}
	var dls []bus.DeadLetter
	bustest.Eventually(t, 10*time.Second, func() error {
		dls, err = b.DeadLetters(t.Context(), "send-sms", 0)
		if err != nil || len(dls) != 3 {
			return fmt.Errorf("%d dead letters (%v)", len(dls), err)
		}
		return nil
	})
	seq := map[string]uint64{}
	for _, d := range dls {
		seq[string(d.Data)] = d.Sequence
	}
	clear(bad)
	_, err = b.Replay(t.Context(), seq["ann-1"], bus.ReplayOptions{})
	if !errors.Is(err, bus.ErrWouldReorder) || !strings.Contains(err.Error(), "1 later message(s) of sms:ann") {
		t.Fatalf("replay of ann-1 after ann-2 was handled: %v, want ErrWouldReorder naming one later message", err)
	}
	// bob-2 is a dead letter too: bob-1 goes first, then bob-2.
	for _, text := range []string{"bob-1", "bob-2"} {
		if _, err := b.Replay(t.Context(), seq[text], bus.ReplayOptions{}); err != nil {
			t.Fatalf("replay %s: %v", text, err)
		}
	}
	if _, err := b.Replay(t.Context(), seq["ann-1"], bus.ReplayOptions{AllowReorder: true}); err != nil {
		t.Fatalf("replay ann-1 allowing reorder: %v", err)
	}
	var got []string
	for len(got) < 4 {
		select {
		case m := <-handled:
			got = append(got, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %v", got)
		}
	}
	if fmt.Sprint(got) != "[ann-2 bob-1 bob-2 ann-1]" {
		t.Fatalf("handled %v, want [ann-2 bob-1 bob-2 ann-1]", got)
	}
}
