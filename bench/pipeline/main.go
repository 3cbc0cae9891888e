// Command pipeline measures omnigate's session-continuity pipeline in one process,
// the shape of "omnigate serve" with no config: an embedded NATS server with
// JetStream, and the JetStream KV store or Redis.
//
// It first gives -contacts contacts an open conversation each, through the store,
// and reports what that costs in memory; then it publishes -n customer messages
// from -senders of those contacts, as adapters do, and reports how many messages per
// second the pipeline puts through (resolve, link, conversation update, transcript
// and desk publishes).
//
//	go run ./bench/pipeline -n 20000 -store kv
//	go run ./bench/pipeline -n 20000 -store redis -redis redis://127.0.0.1:6379/0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

type config struct {
	n, contacts, senders, seeders, replicas int
	store, redisURL                         string
	keep                                    bool
	cpuprofile                              string
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 20000, "customer messages to put through the pipeline")
	flag.IntVar(&c.contacts, "contacts", 100000, "contacts with an open conversation to create first")
	flag.IntVar(&c.senders, "senders", 1000, "how many of those contacts write the messages")
	flag.IntVar(&c.seeders, "seeders", 64, "concurrent writers while creating contacts")
	flag.IntVar(&c.replicas, "replicas", 1, "pipelines sharing the work in this process")
	flag.StringVar(&c.store, "store", "kv", "store backend: kv (JetStream KV) or redis")
	flag.StringVar(&c.redisURL, "redis", envOr("OMNIGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL for -store redis")
	flag.BoolVar(&c.keep, "keep", false, "keep the Redis keys and the JetStream directory")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the pipeline run (server included) to `FILE`")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pipeline:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, c config, out io.Writer) error {
	if c.senders > c.contacts || c.senders < 1 || c.n < 1 || c.replicas < 1 {
		return errors.New("want 1 <= senders <= contacts, n >= 1 and replicas >= 1")
	}
	dir, err := os.MkdirTemp("", "omnigate-bench-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	b, err := bus.Open(ctx, bus.Options{Embedded: bus.EmbeddedOptions{StoreDir: dir}})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()

	st, footprint, cleanup, err := openStore(ctx, c, b)
	if err != nil {
		return err
	}
	defer cleanup()
	defer st.Close()

	fmt.Fprintf(out, "store %s, %d contacts, %d messages from %d senders, %d pipeline(s), GOMAXPROCS %d\n",
		c.store, c.contacts, c.n, c.senders, c.replicas, runtime.GOMAXPROCS(0))

	before, err := footprint(ctx)
	if err != nil {
		return err
	}
	heapBefore := heapInuse()
	start := time.Now()
	if err := seed(ctx, st, c.contacts, c.seeders); err != nil {
		return err
	}
	took := time.Since(start)
	after, err := footprint(ctx)
	if err != nil {
		return err
	}
	heapAfter := heapInuse()
	fmt.Fprintf(out, "seeded %d contacts with open conversations in %s (%.0f contacts/s)\n",
		c.contacts, took.Round(time.Millisecond), float64(c.contacts)/took.Seconds())
	fmt.Fprintf(out, "  store: %s (%.0f B/contact)\n", mib(after-before), float64(after-before)/float64(c.contacts))
	fmt.Fprintf(out, "  process: heap in use %s (+%s), RSS %s\n", mib(heapAfter), mib(heapAfter-heapBefore), mib(rss()))

	var ps []*pipeline.Pipeline
	for range c.replicas {
		p, err := pipeline.New(pipeline.Config{PhoneChannels: []string{"sms", "whatsapp"}}, pipeline.Deps{Bus: b, Store: st})
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			if err := p.Run(pctx); err != nil {
				fmt.Fprintln(os.Stderr, "pipeline:", err)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	if err := publish(ctx, b.JetStream(), c.n, c.senders); err != nil {
		return err
	}
	published := time.Since(start)
	if err := waitDesk(ctx, b.JetStream(), uint64(c.n)); err != nil {
		return err
	}
	took = time.Since(start)
	fmt.Fprintf(out, "pipeline: %d messages in %s: %.0f messages/s (publishing took %s)\n",
		c.n, took.Round(time.Millisecond), float64(c.n)/took.Seconds(), published.Round(time.Millisecond))
	fmt.Fprintf(out, "  process: heap in use %s, RSS %s\n", mib(heapInuse()), mib(rss()))
	dls, err := b.DeadLetters(ctx, pipeline.Stage, 0)
	if err != nil {
		return err
	}
	if len(dls) > 0 {
		return fmt.Errorf("%d messages dead-lettered, first: %s", len(dls), dls[0].Error)
	}
	return nil
}

// openStore returns the store, a function measuring its footprint in bytes and
// a cleanup.
func openStore(ctx context.Context, c config, b *bus.Bus) (*store.Store, func(context.Context) (int64, error), func(), error) {
	switch c.store {
	case "kv":
		kv, err := store.NewJetStream(ctx, b.JetStream(), store.JetStreamOptions{})
		if err != nil {
			return nil, nil, nil, err
		}
		footprint := func(ctx context.Context) (int64, error) { return kvBytes(ctx, b.JetStream()) }
		return store.New(kv, store.Options{CacheBytes: store.DefaultCacheBytes}), footprint, func() {}, nil
	case "redis":
		prefix := "omnigate-bench:" + core.NewID() + ":"
		kv, err := store.NewRedis(ctx, store.RedisOptions{URL: c.redisURL, Prefix: prefix})
		if err != nil {
			return nil, nil, nil, err
		}
		o, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, nil, nil, err
		}
		rc := redis.NewClient(o)
		footprint := func(ctx context.Context) (int64, error) { return usedMemory(ctx, rc) }
		cleanup := func() {
			if !c.keep {
				deletePrefix(context.WithoutCancel(ctx), rc, prefix)
			}
			_ = rc.Close()
		}
		return store.New(kv, store.Options{CacheBytes: store.DefaultCacheBytes}), footprint, cleanup, nil
	}
	return nil, nil, nil, fmt.Errorf("-store %q: want kv or redis", c.store)
}

// identity is the identity of contact i, spread over four channels.
func identity(i int) core.Identity {
	switch i % 4 {
	case 0:
		return core.Identity(fmt.Sprintf("sms:+1555%07d", i))
	case 1:
		return core.Identity(fmt.Sprintf("email:user%d@example.com", i))
	case 2:
		return core.Identity(fmt.Sprintf("web:visitor-%d", i))
	}
	return core.Identity("telegram:" + strconv.Itoa(i))
}

// seed gives contacts 0..n-1 an open conversation each, with workers writers.
func seed(ctx context.Context, st *store.Store, n, workers int) error {
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	now := time.Now()
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				id := identity(i)
				c, _, err := st.ResolveContact(ctx, id, nil)
				if err == nil {
					_, _, err = st.FindOrOpenConversation(ctx, c.ID, 24*time.Hour, now, func(conv *store.Conversation) {
						conv.Channel, conv.LastChannel, conv.LastIdentity, conv.LastMessageAt = id.Channel(), id.Channel(), id, now
					})
				}
				if err != nil {
					errs <- fmt.Errorf("seed contact %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// publish publishes n messages round robin over the first senders contacts, as
// adapters do, without waiting for each ack.
func publish(ctx context.Context, js jetstream.JetStream, n, senders int) error {
	for k := range n {
		from := identity(k % senders)
		m := core.NewMessage(core.KindMessage, core.Inbound, from.Channel())
		m.From, m.Text = from, "message "+strconv.Itoa(k/senders)
		data, err := m.Encode()
		if err != nil {
			return err
		}
		msg := nats.NewMsg(bus.SubjectIn(m.Channel, string(m.From)))
		msg.Data = data
		msg.Header.Set(bus.HeaderMsgID, m.ID)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if js.PublishAsyncPending() >= 1000 {
			if err := waitAcks(ctx, js); err != nil {
				return err
			}
		}
	}
	return waitAcks(ctx, js)
}

func waitAcks(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitDesk waits until the desk stream holds n messages.
func waitDesk(ctx context.Context, js jetstream.JetStream, n uint64) error {
	st, err := js.Stream(ctx, bus.StreamDesk)
	if err != nil {
		return err
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("desk holds %d of %d messages: %w", info.State.Msgs, n, ctx.Err())
		case <-t.C:
		}
	}
}

// kvBytes is the bytes of every JetStream KV bucket's stream.
func kvBytes(ctx context.Context, js jetstream.JetStream) (int64, error) {
	var total int64
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if !strings.HasPrefix(name, "KV_") {
			continue
		}
		st, err := js.Stream(ctx, name)
		if err != nil {
			return 0, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, err
		}
		total += int64(info.State.Bytes)
	}
	return total, names.Err()
}

// usedMemory reads used_memory from Redis INFO memory.
func usedMemory(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis info: no used_memory")
}

// deletePrefix removes the benchmark's Redis keys.
func deletePrefix(ctx context.Context, c *redis.Client, prefix string) {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}

func heapInuse() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// rss is the process's resident set size from /proc, 0 where there is none.
func rss() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
