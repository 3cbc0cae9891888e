package storetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/store"
)

// Backend opens stores on one backend for tests of the packages built on the
// store. Every store one Backend opens shares the same data, as replicas do,
// and is closed when its test ends.
type Backend struct {
	// Name is "kv" or "redis", for subtest names.
	Name string
	// Open returns a store: on b's JetStream (kv) or on the test Redis.
	Open func(tb testing.TB, b *bus.Bus) *store.Store
}

// JetStreamBackend stores in JetStream KV buckets on the test's server.
func JetStreamBackend() Backend {
	return Backend{Name: "kv", Open: func(tb testing.TB, b *bus.Bus) *store.Store {
		tb.Helper()
		kv, err := store.NewJetStream(context.Background(), b.JetStream(), store.JetStreamOptions{})
		if err != nil {
			tb.Fatalf("jetstream kv: %v", err)
		}
		return closing(tb, store.New(kv, store.Options{}))
	}}
}

// RedisBackend stores in the test Redis under a prefix of the test's own,
// deleted when the test ends, or skips the test when OMNIGATE_TEST_REDIS_URL
// is unset. what names the tests in the skip message.
func RedisBackend(tb testing.TB, what string) Backend {
	tb.Helper()
	u := RedisURL(tb, what)
	prefix := "omnigate-test:" + what + ":" + core.NewID() + ":"
	tb.Cleanup(func() { DeleteRedisPrefix(tb, u, prefix) })
	return Backend{Name: "redis", Open: func(tb testing.TB, _ *bus.Bus) *store.Store {
		tb.Helper()
		kv, err := store.NewRedis(context.Background(), store.RedisOptions{URL: u, Prefix: prefix})
		if err != nil {
			tb.Fatalf("redis: %v", err)
		}
		return closing(tb, store.New(kv, store.Options{}))
	}}
}

func closing(tb testing.TB, st *store.Store) *store.Store {
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// RedisURL returns the test Redis from OMNIGATE_TEST_REDIS_URL, or skips the
// test with a message that says how to run what.
func RedisURL(tb testing.TB, what string) string {
	tb.Helper()
	u := os.Getenv("OMNIGATE_TEST_REDIS_URL")
	if u == "" {
		tb.Skip("set OMNIGATE_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the " + what + " tests on Redis")
	}
	return u
}

// DeleteRedisPrefix removes every key under prefix (which has no glob
// characters) from the Redis at u.
func DeleteRedisPrefix(tb testing.TB, u, prefix string) {
	o, err := redis.ParseURL(u)
	if err != nil {
		tb.Errorf("redis url: %v", err)
		return
	}
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				tb.Errorf("cleanup %s: %v", prefix, err)
			}
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		tb.Errorf("cleanup %s: %v", prefix, err)
	}
}
