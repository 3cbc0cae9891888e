package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus/bustest"
)

// A delivery lost on its way (a pull cut off, a reconnect) comes back only
// after the ack wait; an Exclusive lane consumer sees the consumer sequence
// jump and holds later messages back until it is redelivered, so its key keeps
// its order.
func TestConsumer_LostDeliveryKeepsOrder(t *testing.T) {
	srv := bustest.RunServer(t)
	b, err := Open(t.Context(), Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	const keys, per = 4, 10
	var mu sync.Mutex
	seen := map[string][]int{}
	done := make(chan struct{})
	total := 0
	keyOf := func(d *Delivery) string { k, _, _ := strings.Cut(string(d.Data), "/"); return k }
	c, err := b.Consume(t.Context(), ConsumerSpec{Stream: StreamConv, Durable: "gap", Concurrency: 4, MaxAckPending: 64,
		OrderKey: keyOf, Exclusive: true, AckWait: time.Second, AsyncAck: true},
		func(_ context.Context, d *Delivery) error {
			k, v, _ := strings.Cut(string(d.Data), "/")
			i, _ := strconv.Atoi(v)
			mu.Lock()
			seen[k] = append(seen[k], i)
			if total++; total == keys*per {
				close(done)
			}
			mu.Unlock()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var dropped sync.Once
	lost := false
	c.drop = func(d *Delivery) bool {
		if string(d.Data) == "k1/3" && d.NumDelivered == 1 {
			dropped.Do(func() { lost = true })
			return true
		}
		return false
	}
	for i := range per {
		for k := range keys {
			if _, err := b.Publish(t.Context(), SubjectConv("gap"), fmt.Appendf(nil, "k%d/%d", k, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not all handled")
	}
	mu.Lock()
	defer mu.Unlock()
	if !lost {
		t.Fatal("the test never lost k1/3")
	}
	for k := range keys {
		got := seen["k"+strconv.Itoa(k)]
		for i, v := range got {
			if v != i {
				t.Errorf("key k%d: %v: order lost", k, got)
				break
			}
		}
	}
}
