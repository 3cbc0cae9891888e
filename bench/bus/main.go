// Command bus measures omnigate's bus: messages per second published (each
// waiting for its JetStream ack) and consumed (each explicitly acked) through
// one durable consumer, with and without Nats-Msg-Id deduplication.
//
//	go run ./bench/bus -n 20000 -size 512 -publishers 8
//
// With no -nats URL it runs an embedded server in a temporary directory, as
// `omnigate serve` does with no config.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/core/bus"
)

func main() {
	n := flag.Int("n", 20000, "messages per run")
	size := flag.Int("size", 512, "message size in bytes")
	pubs := flag.Int("publishers", 8, "concurrent publishers")
	conc := flag.Int("concurrency", 8, "concurrent handlers in the consumer")
	url := flag.String("nats", "", "external NATS URL (default: embedded server)")
	flag.Parse()

	for _, dedup := range []bool{false, true} {
		pub, con, err := run(*url, *n, *size, *pubs, *conc, dedup)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("dedup=%-5v n=%d size=%dB publishers=%d: publish %8.0f msg/s   publish→consume %8.0f msg/s\n",
			dedup, *n, *size, *pubs, pub, con)
	}
}

func run(url string, n, size, pubs, conc int, dedup bool) (pubRate, e2eRate float64, err error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "omnigate-bench-bus")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	b, err := bus.Open(ctx, bus.Options{URL: url, Embedded: bus.EmbeddedOptions{StoreDir: dir}})
	if err != nil {
		return 0, 0, err
	}
	defer b.Close(ctx)
	payload := make([]byte, size)
	stream := fmt.Sprintf("bench%d", time.Now().UnixNano())

	var got atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	_, err = b.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamOut, Durable: stream, Filters: []string{bus.SubjectOut(stream)}, Concurrency: conc},
		func(context.Context, *bus.Delivery) error {
			if got.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	if err != nil {
		return 0, 0, err
	}
	var wg sync.WaitGroup
	var perr atomic.Value
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += pubs {
				var opts []bus.PublishOption
				if dedup {
					opts = append(opts, bus.WithMsgID(stream+":"+strconv.Itoa(i)))
				}
				if _, err := b.Publish(ctx, bus.SubjectOut(stream), payload, opts...); err != nil {
					perr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, ok := perr.Load().(error); ok {
		return 0, 0, e
	}
	pubRate = float64(n) / time.Since(start).Seconds()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, 0, fmt.Errorf("consumed %d of %d within 5 minutes", got.Load(), n)
	}
	return pubRate, float64(n) / time.Since(start).Seconds(), nil
}
