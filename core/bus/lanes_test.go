package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// keyOf is an OrderKey for test messages "key/n".
func keyOf(d *bus.Delivery) string { k, _, _ := strings.Cut(string(d.Data), "/"); return k }

// record collects what a handler saw, per key, in the order it saw it.
type record struct {
	mu   sync.Mutex
	seen map[string][]int
	n    int
	done chan struct{}
	want int
}

func newRecord(want int) *record {
	return &record{seen: map[string][]int{}, done: make(chan struct{}), want: want}
}

func (r *record) add(data string) {
	k, v, _ := strings.Cut(data, "/")
	i, _ := strconv.Atoi(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[k] = append(r.seen[k], i)
	if r.n++; r.n == r.want {
		close(r.done)
	}
}

// check fails unless every key saw 0..per-1 exactly once, in order.
func (r *record) check(t *testing.T, keys, per int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range keys {
		got := r.seen["k"+strconv.Itoa(k)]
		if len(got) != per {
			t.Errorf("key k%d: handled %d messages, want %d (%v)", k, len(got), per, got)
			continue
		}
		for i, v := range got {
			if v != i {
				t.Errorf("key k%d: position %d holds %d: order lost (%v)", k, i, v, got)
				break
			}
		}
	}
}

func publishKeys(t *testing.T, b *bus.Bus, subject string, keys, per int) {
	t.Helper()
	for i := range per {
		for k := range keys {
			if _, err := b.Publish(t.Context(), subject, fmt.Appendf(nil, "k%d/%d", k, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Lanes: messages of one key are handled in order, one at a time, while keys
// run concurrently; a failing message is retried in place and holds back only
// its own key.
func TestConsumer_LanesKeepOrderPerKey(t *testing.T) {
	b := openExternal(t, bustest.RunServer(t))
	const keys, per = 8, 30
	rec := newRecord(keys * per)
	var mu sync.Mutex
	running := map[string]bool{}
	failed := map[string]bool{}
	var overlap, failures int
	slowKey := make(chan struct{})
	_, err := b.Consume(t.Context(), bus.ConsumerSpec{
		Stream: bus.StreamConv, Durable: "lanes", Concurrency: 4, MaxAckPending: 64, OrderKey: keyOf,
		Backoff: []time.Duration{20 * time.Millisecond}, MaxDeliver: 5,
	}, func(_ context.Context, d *bus.Delivery) error {
		k := keyOf(d)
		mu.Lock()
		if running[k] {
			overlap++
		}
		running[k] = true
		// Every fifth message of k0 fails once; k1's 10th blocks until the
		// others are done, which must not hold them back.
		fail := k == "k0" && strings.HasSuffix(string(d.Data), "5") && !failed[string(d.Data)]
		if fail {
			failed[string(d.Data)] = true
			failures++
		}
		mu.Unlock()
		if string(d.Data) == "k1/10" {
			<-slowKey
		}
		mu.Lock()
		running[k] = false
		mu.Unlock()
		if fail {
			return errors.New("transient")
		}
		rec.add(string(d.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	publishKeys(t, b, bus.SubjectConv("lanes"), keys, per)
	bustest.Eventually(t, 20*time.Second, func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for k := range keys {
			if k != 1 && len(rec.seen["k"+strconv.Itoa(k)]) != per {
				return fmt.Errorf("key k%d: %d of %d handled while k1 is held", k, len(rec.seen["k"+strconv.Itoa(k)]), per)
			}
		}
		return nil
	})
	close(slowKey)
	select {
	case <-rec.done:
	case <-time.After(20 * time.Second):
		t.Fatal("not all handled")
	}
	rec.check(t, keys, per)
	if overlap > 0 {
		t.Errorf("%d times a key's message started while another of the key ran", overlap)
	}
	if failures != 3 {
		t.Errorf("%d failures injected, want 3 (k0/5, k0/15, k0/25)", failures)
	}
}

// Exclusive lane consumers: two processes share a durable, only one takes its
// messages at a time, and when it stops the other takes over where it left
// off, with every key in order and nothing lost or handled twice.
func TestConsumer_ExclusiveHandsOverInOrder(t *testing.T) {
	srv := bustest.RunServer(t)
	a, b := openExternal(t, srv), openExternal(t, srv)
	const keys, per = 10, 40
	rec := newRecord(keys * per)
	var mu sync.Mutex
	by := map[string]int{}
	spec := bus.ConsumerSpec{Stream: bus.StreamConv, Durable: "excl", Concurrency: 4, MaxAckPending: 32,
		OrderKey: keyOf, Exclusive: true, AckWait: 2 * time.Second, AsyncAck: true}
	handler := func(name string) bus.Handler {
		return func(_ context.Context, d *bus.Delivery) error {
			time.Sleep(5 * time.Millisecond) // a stop finds work in flight
			mu.Lock()
			by[name]++
			mu.Unlock()
			rec.add(string(d.Data))
			return nil
		}
	}
	ca, err := a.Consume(t.Context(), spec, handler("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Consume(t.Context(), spec, handler("b")); err != nil {
		t.Fatal(err)
	}
	publishKeys(t, a, bus.SubjectConv("excl"), keys, per)
	bustest.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if by["a"]+by["b"] < keys*per/4 {
			return fmt.Errorf("%d handled", by["a"]+by["b"])
		}
		return nil
	})
	mu.Lock()
	aBefore, bBefore := by["a"], by["b"]
	mu.Unlock()
	if aBefore > 0 && bBefore > 0 {
		t.Errorf("before the stop both took messages (a %d, b %d): not exclusive", aBefore, bBefore)
	}
	owner := ca
	if bBefore > 0 {
		t.Skip("b was pinned first; the hand-over from a is what this test checks")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := time.Now()
	if err := owner.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatal("not all handled 30 s after the stop")
	}
	rec.check(t, keys, per)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("a handled %d, b %d; b finished %s after a stopped", by["a"], by["b"], time.Since(stopped).Round(time.Millisecond))
	if by["b"] == 0 {
		t.Error("b never took over")
	}
}
