package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// fast makes redelivery quick enough for tests.
var fast = bus.ConsumerDefaults{MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: 5 * time.Second}

func openExternal(t *testing.T, s *bustest.Server) *bus.Bus {
	t.Helper()
	b, err := bus.Open(t.Context(), bus.Options{URL: s.URL(), Consumer: fast})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func openEmbedded(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(t.Context(), bus.Options{Embedded: bus.EmbeddedOptions{StoreDir: dir}, Consumer: fast})
	if err != nil {
		t.Fatalf("open embedded: %v", err)
	}
	return b
}

// collect consumes spec into a channel of data strings.
func collect(t *testing.T, b *bus.Bus, spec bus.ConsumerSpec) <-chan string {
	t.Helper()
	ch := make(chan string, 100)
	_, err := b.Consume(t.Context(), spec, func(_ context.Context, d *bus.Delivery) error {
		ch <- string(d.Data)
		return nil
	})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	return ch
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
		return ""
	}
}

func TestBus_PublishConsumeEveryStream(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	cases := []struct{ stream, subject string }{
		{bus.StreamIn, bus.SubjectIn("sms", "sms:+15551234567")},
		{bus.StreamConv, bus.SubjectConv("01JCONV")},
		{bus.StreamDesk, bus.SubjectDesk("slack")},
		{bus.StreamOut, bus.SubjectOut("telegram")},
		{bus.StreamEvt, bus.SubjectEvt("delivery.failed")},
		{bus.StreamDLQ, bus.SubjectDLQ("pipeline")},
	}
	for _, c := range cases {
		t.Run(c.stream, func(t *testing.T) {
			ch := collect(t, b, bus.ConsumerSpec{Stream: c.stream, Durable: "t-" + c.stream})
			ack, err := b.Publish(t.Context(), c.subject, []byte("hello "+c.subject))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Stream != c.stream || ack.Duplicate {
				t.Fatalf("ack = %+v, want stream %s, not duplicate", ack, c.stream)
			}
			if got := receive(t, ch); got != "hello "+c.subject {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestBus_DuplicateMsgIDStoredOnce(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	subj := bus.SubjectIn("sms", "sms:+1555")
	id := bus.MsgID("sms", "SM123")
	first, err := b.Publish(t.Context(), subj, []byte("one"), bus.WithMsgID(id))
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Publish(t.Context(), subj, []byte("one again"), bus.WithMsgID(id))
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("first %+v, second %+v: want the second to be a duplicate of the first", first, second)
	}
	info, err := b.JetStream().Stream(t.Context(), bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestBus_FailingConsumerDeadLettersThenReplay(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	var attempts atomic.Int32
	var healed atomic.Bool
	done := make(chan string, 1)
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "sender", Stage: "send-sms"},
		func(_ context.Context, d *bus.Delivery) error {
			if !healed.Load() {
				attempts.Add(1)
				return errors.New("provider said 500")
			}
			done <- string(d.Data)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectOut("sms"), []byte("reply"), bus.WithMsgID("out-1"), bus.WithHeader("X-Trace", "abc")); err != nil {
		t.Fatal(err)
	}
	var dls []bus.DeadLetter
	bustest.Eventually(t, 10*time.Second, func() error {
		var err error
		dls, err = b.DeadLetters(t.Context(), "send-sms", 0)
		if err != nil {
			return err
		}
		if len(dls) != 1 {
			return fmt.Errorf("%d dead letters", len(dls))
		}
		return nil
	})
	dl := dls[0]
	if got := attempts.Load(); got != 3 {
		t.Errorf("handler tried %d times, want MaxDeliver 3", got)
	}
	if dl.Error != "provider said 500" || dl.Deliveries != 3 || dl.Subject != bus.SubjectOut("sms") || string(dl.Data) != "reply" {
		t.Errorf("dead letter = %+v", dl)
	}
	if dl.Header.Get("X-Trace") != "abc" || dl.Header.Get(bus.HeaderDLQMsgID) != "out-1" {
		t.Errorf("dead letter lost headers: %v", dl.Header)
	}

	healed.Store(true)
	if _, err := b.Replay(t.Context(), dl.Sequence, bus.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got != "reply" {
			t.Fatalf("replayed %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replayed message not consumed")
	}
	left, err := b.DeadLetters(t.Context(), "", 0)
	if err != nil || len(left) != 0 {
		t.Fatalf("after replay: %d dead letters, err %v", len(left), err)
	}
}

func TestBus_PermanentErrorDeadLettersAtOnce(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	var attempts atomic.Int32
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamIn, Durable: "pipeline"},
		func(context.Context, *bus.Delivery) error {
			attempts.Add(1)
			return bus.Permanent(errors.New("no sender identity"))
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectIn("web", "web:v1"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		dls, err := b.DeadLetters(t.Context(), "pipeline", 0)
		if err != nil || len(dls) != 1 {
			return fmt.Errorf("%d dead letters, %v", len(dls), err)
		}
		if dls[0].Error != "no sender identity" || dls[0].Deliveries != 1 {
			return fmt.Errorf("dead letter %+v", dls[0])
		}
		return nil
	})
	if n := attempts.Load(); n != 1 {
		t.Fatalf("permanent error tried %d times", n)
	}
}

func TestBus_RetryAfterRedelivers(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	var attempts atomic.Int32
	got := make(chan time.Duration, 1)
	var first time.Time
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "tg"},
		func(context.Context, *bus.Delivery) error {
			if attempts.Add(1) == 1 {
				first = time.Now()
				return bus.RetryAfter(errors.New("429"), 300*time.Millisecond)
			}
			got <- time.Since(first)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectOut("telegram"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		// Redelivery honours the delay asked for (a lower bound, not a timing assertion).
		if d < 300*time.Millisecond {
			t.Fatalf("redelivered after %s, before the 300ms asked for", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not redelivered")
	}
}

func TestBus_UnackedMessageSurvivesEmbeddedRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	b := openEmbedded(t, dir)
	spec := bus.ConsumerSpec{Stream: bus.StreamIn, Durable: "pipeline"}
	// A consumer takes the message but the process "dies" before acking it.
	started := make(chan struct{})
	release := make(chan struct{})
	_, err := b.Consume(t.Context(), spec, func(ctx context.Context, d *bus.Delivery) error {
		close(started)
		<-release
		return errors.New("stopped mid-handler")
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectIn("sms", "sms:+1"), []byte("keep me")); err != nil {
		t.Fatal(err)
	}
	<-started
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b2 := openEmbedded(t, dir)
	defer b2.Close(context.Background())
	ch := collect(t, b2, spec)
	if got := receive(t, ch); got != "keep me" {
		t.Fatalf("after restart got %q", got)
	}
}

func TestBus_ExternalServerRestartKeepsMessages(t *testing.T) {
	s := bustest.RunServer(t)
	b := openExternal(t, s)
	for i := range 5 {
		if _, err := b.Publish(t.Context(), bus.SubjectOut("sms"), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Restart(t)
	ch := collect(t, b, bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "after-restart"})
	for i := range 5 {
		if got := receive(t, ch); got != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, got)
		}
	}
}

// Slow handlers keep their messages, and so do the messages fetched behind
// them that wait for a handler slot: with an ack wait of 200 ms and handlers
// of 400 ms, two at a time, none of eight messages is delivered twice.
func TestBus_SlowHandlerKeepsItsMessage(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	var mu sync.Mutex
	attempts := map[string]int{}
	done := make(chan struct{})
	const n = 8
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "slow", AckWait: 200 * time.Millisecond, MaxDeliver: 2, Concurrency: 2},
		func(ctx context.Context, d *bus.Delivery) error {
			time.Sleep(400 * time.Millisecond) // two ack waits: kept alive meanwhile
			mu.Lock()
			defer mu.Unlock()
			if attempts[string(d.Data)]++; len(attempts) == n {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := b.Publish(t.Context(), bus.SubjectOut("email"), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	time.Sleep(500 * time.Millisecond) // a redelivery would come now
	mu.Lock()
	defer mu.Unlock()
	for m, k := range attempts {
		if k != 1 {
			t.Errorf("message %s handled %d times, want 1: the server redelivered a message still held", m, k)
		}
	}
}

func TestBus_NeverAnsweredIsDeadLettered(t *testing.T) {
	srv := bustest.RunServer(t)
	b := openExternal(t, srv)
	spec := bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "lost", AckWait: 200 * time.Millisecond, MaxDeliver: 2}
	c, err := b.Consume(t.Context(), spec, func(context.Context, *bus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectOut("email"), []byte("stuck")); err != nil {
		t.Fatal(err)
	}
	// Two processes take the message and die before answering it.
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := js.Consumer(t.Context(), bus.StreamOut, "lost")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		bustest.Eventually(t, 5*time.Second, func() error {
			batch, err := raw.Fetch(1, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return err
			}
			for range batch.Messages() {
				return nil
			}
			return fmt.Errorf("delivery %d not taken yet", i+1)
		})
	}
	var handled atomic.Int32
	if _, err := b.Consume(t.Context(), spec, func(context.Context, *bus.Delivery) error { handled.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() error {
		dls, err := b.DeadLetters(t.Context(), "lost", 0)
		if err != nil || len(dls) != 1 {
			return fmt.Errorf("%d dead letters, %v", len(dls), err)
		}
		if !strings.Contains(dls[0].Error, "not acknowledged after 2 deliveries") {
			return fmt.Errorf("dead letter reason %q", dls[0].Error)
		}
		return nil
	})
	if n := handled.Load(); n != 0 {
		t.Fatalf("handler ran %d times on a message delivered more often than MaxDeliver", n)
	}
}

func TestBus_OrderWithinConsumer(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	const n = 200
	var mu sync.Mutex
	var got []int
	done := make(chan struct{})
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamConv, Durable: "ordered"},
		func(_ context.Context, d *bus.Delivery) error {
			i, _ := strconv.Atoi(string(d.Data))
			mu.Lock()
			got = append(got, i)
			if len(got) == n {
				close(done)
			}
			mu.Unlock()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := b.Publish(t.Context(), bus.SubjectConv("c1"), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not all consumed")
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("position %d holds %d: order lost", i, v)
		}
	}
}

func TestBus_CloseWaitsForInFlightHandler(t *testing.T) {
	s := bustest.RunServer(t)
	b, err := bus.Open(t.Context(), bus.Options{URL: s.URL(), Consumer: fast})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var finished atomic.Bool
	_, err = b.Consume(t.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "slow"},
		func(context.Context, *bus.Delivery) error {
			close(started)
			time.Sleep(200 * time.Millisecond)
			finished.Store(true)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(t.Context(), bus.SubjectOut("sms"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the in-flight handler finished")
	}
	if err := b.Ready(ctx); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Ready after Close = %v, want ErrClosed", err)
	}
}

func TestBus_BadOptions(t *testing.T) {
	_, err := bus.Open(t.Context(), bus.Options{Streams: bus.StreamOptions{Replicas: 3}, Embedded: bus.EmbeddedOptions{StoreDir: t.TempDir()}})
	if err == nil {
		t.Fatal("3 replicas on the embedded server accepted")
	}
}

func BenchmarkBus_PublishConsume(b *testing.B) {
	for _, dedup := range []bool{false, true} {
		b.Run("dedup="+strconv.FormatBool(dedup), func(b *testing.B) {
			s := bustest.RunServer(b)
			bb, err := bus.Open(b.Context(), bus.Options{URL: s.URL()})
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close(context.Background())
			var got atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			_, err = bb.Consume(b.Context(), bus.ConsumerSpec{Stream: bus.StreamOut, Durable: "bench", Concurrency: 8},
				func(context.Context, *bus.Delivery) error {
					if got.Add(1) == n {
						close(done)
					}
					return nil
				})
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 512)
			b.ResetTimer()
			var i atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var opts []bus.PublishOption
					if dedup {
						opts = append(opts, bus.WithMsgID("bench:"+strconv.FormatInt(i.Add(1), 10)))
					}
					if _, err := bb.Publish(context.Background(), bus.SubjectOut("sms"), payload, opts...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestBus_EmbeddedStoreLocked: a second embedded server on a store dir in use
// is refused with ErrStoreInUse, and allowed once the first closed.
func TestBus_EmbeddedStoreLocked(t *testing.T) {
	dir := t.TempDir()
	first := openEmbedded(t, dir)
	_, err := bus.Open(t.Context(), bus.Options{Embedded: bus.EmbeddedOptions{StoreDir: dir}, Consumer: fast})
	if !errors.Is(err, bus.ErrStoreInUse) {
		t.Fatalf("second Open on the store dir = %v, want ErrStoreInUse", err)
	}
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	again := openEmbedded(t, dir)
	if err := again.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Debian's nats-server (2.9, which CI also runs on 127.0.0.1:4222) lacks
// per-message TTLs: Open refuses it in one line naming both versions.
func TestBus_RefusesTooOldServer(t *testing.T) {
	url := os.Getenv("OMNIGATE_TEST_OLD_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		t.Skipf("no NATS at %s to try: %v", url, err)
	}
	version := nc.ConnectedServerVersion()
	nc.Close()
	if !strings.HasPrefix(version, "2.9.") && !strings.HasPrefix(version, "2.10.") {
		t.Skipf("the NATS at %s is %s, not an old one", url, version)
	}
	_, err = bus.Open(t.Context(), bus.Options{URL: url})
	if err == nil || !strings.Contains(err.Error(), version) || !strings.Contains(err.Error(), bus.MinServerVersion) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open on nats-server %s: %v, want one line naming %s and %s", version, err, version, bus.MinServerVersion)
	}
	t.Log(err)
}
