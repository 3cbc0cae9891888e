package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// A group starts all its consumers and loops, runs every handler in the same
// middleware (a panic is recovered and the message redelivered), and stops
// everything together on cancel: Run returns nil and no handler runs after.
func TestGroup_RunsAndStopsTogether(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	g := bus.NewGroup(b, nil)
	got := make(chan string, 10)
	var panicked atomic.Bool
	g.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-a", Filters: []string{bus.SubjectEvt("a")}},
		func(_ context.Context, d *bus.Delivery) error {
			if !panicked.Swap(true) {
				panic("first delivery")
			}
			got <- "a:" + string(d.Data)
			return nil
		})
	g.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-b", Filters: []string{bus.SubjectEvt("b")}},
		func(_ context.Context, d *bus.Delivery) error {
			got <- "b:" + string(d.Data)
			return nil
		})
	var used atomic.Int32
	g.Use(func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, d *bus.Delivery) error {
			used.Add(1)
			return next(ctx, d)
		}
	})
	loopDone := make(chan struct{})
	g.Go(func(ctx context.Context) error {
		<-ctx.Done()
		close(loopDone)
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	for _, s := range []string{"a", "b"} {
		bustest.Eventually(t, 10*time.Second, func() error {
			_, err := b.Publish(t.Context(), bus.SubjectEvt(s), []byte("1"), bus.WithMsgID(s+"1"))
			return err
		})
	}
	want := map[string]bool{"a:1": true, "b:1": true}
	for len(want) > 0 {
		select {
		case s := <-got:
			delete(want, s)
		case <-time.After(15 * time.Second):
			t.Fatalf("not handled: %v", want)
		}
	}
	if !panicked.Load() || used.Load() < 3 {
		t.Fatalf("panicked %v, middleware ran %d times (want the panic redelivered through Use's middleware)", panicked.Load(), used.Load())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	<-loopDone
	// Stopped: what is published now stays for the next run.
	if _, err := b.Publish(t.Context(), bus.SubjectEvt("b"), []byte("2"), bus.WithMsgID("b2")); err != nil {
		t.Fatal(err)
	}
	g2 := bus.NewGroup(b, nil)
	g2.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-b", Filters: []string{bus.SubjectEvt("b")}},
		func(_ context.Context, d *bus.Delivery) error {
			got <- "b:" + string(d.Data)
			return nil
		})
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	go g2.Run(ctx2)
	select {
	case s := <-got:
		if s != "b:2" {
			t.Fatalf("after restart got %q", s)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("message published while stopped never handled")
	}
}

// A loop that fails stops the group: Run returns its error.
func TestGroup_LoopErrorStopsGroup(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	g := bus.NewGroup(b, nil)
	g.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-loop", Filters: []string{bus.SubjectEvt("x")}},
		func(context.Context, *bus.Delivery) error { return nil })
	boom := errors.New("boom")
	g.Go(func(context.Context) error { return boom })
	g.Go(func(ctx context.Context) error { <-ctx.Done(); return nil })
	errc := make(chan error, 1)
	go func() { errc <- g.Run(t.Context()) }()
	select {
	case err := <-errc:
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want boom", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after a loop failed")
	}
	if err := g.Run(t.Context()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// A consumer that cannot be created fails Run with its name, and the
// consumers created before it are stopped.
func TestGroup_StartFailure(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	g := bus.NewGroup(b, nil)
	var handled atomic.Int32
	g.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-ok", Filters: []string{bus.SubjectEvt("ok")}},
		func(context.Context, *bus.Delivery) error { handled.Add(1); return nil })
	g.Handle(bus.ConsumerSpec{Stream: "NO_SUCH_STREAM", Durable: "g-bad"}, func(context.Context, *bus.Delivery) error { return nil })
	err := g.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "g-bad") {
		t.Fatalf("Run = %v, want an error naming g-bad", err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectEvt("ok"), []byte("1"), bus.WithMsgID("ok1")); err != nil {
		t.Fatal(err)
	}
	// A consumer on the same durable sees the message: nobody else took it.
	ch := collect(t, b, bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-ok", Filters: []string{bus.SubjectEvt("ok")}})
	if got := receive(t, ch); got != "1" {
		t.Fatalf("got %q", got)
	}
	if handled.Load() != 0 {
		t.Fatal("the stopped consumer of a failed group still handled a message")
	}
}

// The consumers stop before the loops' context ends: a message published
// when a loop hears of the stop is handled by no one in this run (it waits
// for the next).
func TestGroup_ConsumersStopBeforeLoops(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	g := bus.NewGroup(b, nil)
	var late atomic.Int32
	g.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: "g-order", Filters: []string{bus.SubjectEvt("o")}},
		func(_ context.Context, d *bus.Delivery) error {
			if string(d.Data) == "late" {
				late.Add(1)
			}
			return nil
		})
	published := make(chan error, 1)
	running := make(chan struct{})
	g.Go(func(ctx context.Context) error {
		close(running) // loops start once every consumer is up
		<-ctx.Done()
		_, err := b.Publish(context.Background(), bus.SubjectEvt("o"), []byte("late"), bus.WithMsgID("late"))
		published <- err
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	// Wait for the loop, not for the consumer to exist on the server: a cancel
	// that races the consumer's creation makes Run return having started
	// nothing, and no loop would publish.
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the group's loop did not start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("a handler ran %d time(s) after the loops were told to stop", n)
	}
}
