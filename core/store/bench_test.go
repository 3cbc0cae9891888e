package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
)

// benchBackends runs fn once per backend, as sub-benchmarks "jetstream" and
// "redis" (skipped without OMNIGATE_TEST_REDIS_URL). newKV returns a fresh,
// isolated KV.
func benchBackends(b *testing.B, fn func(b *testing.B, newKV func(b *testing.B) store.KV)) {
	b.Run("jetstream", func(b *testing.B) {
		newKV, _, _ := jetStreamKVs(b)
		fn(b, func(b *testing.B) store.KV { return newKV(b) })
	})
	b.Run("redis", func(b *testing.B) {
		redisURL(b)
		fn(b, func(b *testing.B) store.KV { kv, _ := newRedisKV(b); return kv })
	})
}

// BenchmarkStore_ResolveContact measures finding the contact of a known identity
// (the path of every inbound message) and creating the contact of a new one.
func BenchmarkStore_ResolveContact(b *testing.B) {
	benchBackends(b, func(b *testing.B, newKV func(b *testing.B) store.KV) {
		b.Run("existing", func(b *testing.B) {
			ctx := b.Context()
			s := store.New(newKV(b), store.Options{})
			const known = 1000
			for i := range known {
				if _, _, err := s.ResolveContact(ctx, benchIdentity(i), nil); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				if _, created, err := s.ResolveContact(ctx, benchIdentity(i%known), nil); err != nil || created {
					b.Fatalf("resolve: created %v, %v", created, err)
				}
			}
		})
		b.Run("new", func(b *testing.B) {
			ctx := b.Context()
			s := store.New(newKV(b), store.Options{})
			for i := 0; b.Loop(); i++ {
				if _, created, err := s.ResolveContact(ctx, benchIdentity(i), nil); err != nil || !created {
					b.Fatalf("resolve: created %v, %v", created, err)
				}
			}
		})
		b.Run("new-parallel", func(b *testing.B) {
			ctx := b.Context()
			s := store.New(newKV(b), store.Options{})
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := s.ResolveContact(ctx, benchIdentity(int(n.Add(1))), nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	})
}

// BenchmarkStore_UpdateConversation measures the compare-and-set update the
// pipeline makes on every message: alone, on many conversations at once, and with
// every goroutine on the same conversation.
func BenchmarkStore_UpdateConversation(b *testing.B) {
	touch := func(now time.Time) func(c *store.Conversation) error {
		return func(c *store.Conversation) error {
			c.LastMessageAt, c.LastChannel, c.LastIdentity = now, "sms", "sms:+15550000000"
			return nil
		}
	}
	open := func(b *testing.B, s *store.Store, i int) string {
		ct, _, err := s.ResolveContact(b.Context(), benchIdentity(i), nil)
		if err != nil {
			b.Fatal(err)
		}
		conv, _, err := s.FindOrOpenConversation(b.Context(), ct.ID, time.Hour, time.Now(), nil)
		if err != nil {
			b.Fatal(err)
		}
		return conv.ID
	}
	benchBackends(b, func(b *testing.B, newKV func(b *testing.B) store.KV) {
		b.Run("sequential", func(b *testing.B) {
			s := store.New(newKV(b), store.Options{})
			id := open(b, s, 0)
			for b.Loop() {
				if _, err := s.UpdateConversation(b.Context(), id, touch(time.Now())); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			s := store.New(newKV(b), store.Options{})
			var ids []string
			for i := range 64 {
				ids = append(ids, open(b, s, i))
			}
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := ids[int(n.Add(1))%len(ids)]
				for pb.Next() {
					if _, err := s.UpdateConversation(b.Context(), id, touch(time.Now())); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("contended-2-replicas", func(b *testing.B) {
			kv := newKV(b)
			rs := []*store.Store{store.New(kv, store.Options{}), store.New(kv, store.Options{})}
			id := open(b, rs[0], 0)
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				s := rs[int(n.Add(1))%len(rs)]
				for pb.Next() {
					if _, err := s.UpdateConversation(b.Context(), id, touch(time.Now())); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	})
}

// benchContacts is how many contacts BenchmarkStore_100kContacts stores;
// OMNIGATE_BENCH_CONTACTS overrides it for a quicker look.
func benchContacts() int {
	if n, err := strconv.Atoi(os.Getenv("OMNIGATE_BENCH_CONTACTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// population is what BenchmarkStore_100kContacts measured for one backend.
type population struct {
	contacts int
	elapsed  time.Duration
	metrics  map[string]float64
}

// populations keeps each backend's measurement: the testing package calls a
// benchmark function again for every b.N it tries (and -benchtime=Nx runs it twice),
// but the population is fixed, so it is built once per process.
var populations sync.Map

// BenchmarkStore_100kContacts stores 100,000 contacts, each with an identity and an
// open conversation, the way first messages create them (ResolveContact then
// FindOrOpenConversation, 64 at a time), and reports what the backend holds:
// bytes per contact and MB in total. It ignores b.N.
func BenchmarkStore_100kContacts(b *testing.B) {
	b.Run("jetstream", func(b *testing.B) {
		report(b, "jetstream", func() population {
			srv := bustest.RunServer(b)
			js, err := jetstream.New(srv.Connect(b))
			if err != nil {
				b.Fatal(err)
			}
			kv, err := store.NewJetStream(b.Context(), js, store.JetStreamOptions{})
			if err != nil {
				b.Fatal(err)
			}
			p := populate(b, store.New(kv, store.Options{}))
			var bytes uint64
			for _, name := range []string{"contacts", "identities", "conversations", "open"} {
				st, err := js.Stream(b.Context(), "KV_omni_"+name)
				if err != nil {
					b.Fatal(err)
				}
				bytes += st.CachedInfo().State.Bytes
			}
			p.metrics["stream-B/contact"] = float64(bytes) / float64(p.contacts)
			p.metrics["stream-MB"] = float64(bytes) / 1e6
			return p
		})
	})
	b.Run("redis", func(b *testing.B) {
		u := redisURL(b)
		report(b, "redis", func() population {
			c := redisClient(b, u)
			before := usedMemory(b, c)
			kv, prefix := newRedisKV(b)
			p := populate(b, store.New(kv, store.Options{}))
			delta := usedMemory(b, c) - before
			p.metrics["used_memory-B/contact"] = float64(delta) / float64(p.contacts)
			p.metrics["used_memory-MB"] = float64(delta) / 1e6
			// MEMORY USAGE of a sample of each bucket's keys, times the key count.
			var sampled float64
			for _, bucket := range []string{"contacts", "identities", "conversations", "open"} {
				keys, err := kv.Keys(b.Context(), bucket, "")
				if err != nil {
					b.Fatal(err)
				}
				var sum, n int64
				for i := 0; i < len(keys); i += max(1, len(keys)/500) {
					sum += c.MemoryUsage(b.Context(), prefix+bucket+":"+keys[i], 0).Val()
					n++
				}
				if n > 0 {
					sampled += float64(sum) / float64(n) * float64(len(keys))
				}
			}
			p.metrics["sampled-B/contact"] = sampled / float64(p.contacts)
			return p
		})
	})
}

// report builds the population once and reports it on every call.
func report(b *testing.B, name string, build func() population) {
	v, ok := populations.Load(name)
	if !ok {
		v = build()
		populations.Store(name, v)
	}
	p := v.(population)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(p.elapsed.Nanoseconds())/float64(p.contacts), "ns/contact")
	b.ReportMetric(float64(p.contacts), "contacts")
	for unit, m := range p.metrics {
		b.ReportMetric(m, unit)
	}
}

// populate stores benchContacts contacts with an open conversation each.
func populate(b *testing.B, s *store.Store) population {
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	total := benchContacts()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				id := benchIdentity(i)
				ct, _, err := s.ResolveContact(ctx, id, func(c *store.Contact) { c.Name = "Customer " + strconv.Itoa(i) })
				if err == nil {
					_, _, err = s.FindOrOpenConversation(ctx, ct.ID, 24*time.Hour, time.Now(), func(c *store.Conversation) {
						c.Channel, c.LastChannel, c.LastIdentity, c.Queue = id.Channel(), id.Channel(), id, "support"
					})
				}
				if err != nil {
					b.Error(err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return population{contacts: total, elapsed: time.Since(start), metrics: map[string]float64{}}
}

// usedMemory reads used_memory from INFO memory.
func usedMemory(b *testing.B, c *redis.Client) int64 {
	info, err := c.Info(b.Context(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// benchIdentity is the i-th customer's phone number.
func benchIdentity(i int) core.Identity {
	return core.Identity(fmt.Sprintf("sms:+1555%07d", i))
}
