package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// redisURL returns the test Redis or skips the test.
func redisURL(tb testing.TB) string { return storetest.RedisURL(tb, "Redis store") }

// newRedisKV returns a Redis KV with a prefix of its own, whose keys are deleted
// when the test ends.
func newRedisKV(tb testing.TB) (*store.Redis, string) {
	tb.Helper()
	u := redisURL(tb)
	prefix := "omnigate-test:" + core.NewID() + ":"
	kv, err := store.NewRedis(context.Background(), store.RedisOptions{URL: u, Prefix: prefix})
	if err != nil {
		tb.Fatalf("new redis: %v", err)
	}
	tb.Cleanup(func() {
		_ = kv.Close()
		storetest.DeleteRedisPrefix(tb, u, prefix)
	})
	return kv, prefix
}

// redisClient returns a plain client on the test Redis, closed when the test ends.
func redisClient(tb testing.TB, u string) *redis.Client {
	tb.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("redis url: %v", err)
	}
	c := redis.NewClient(o)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedis_Conformance(t *testing.T) {
	redisURL(t)
	storetest.Run(t, func(t *testing.T) store.KV {
		kv, _ := newRedisKV(t)
		return kv
	})
}

func TestRedis_ConformanceCached(t *testing.T) {
	redisURL(t)
	storetest.RunStoreWith(t, func(t *testing.T) store.KV {
		kv, _ := newRedisKV(t)
		return kv
	}, store.Options{CacheBytes: 1 << 20})
}

func TestRedis_CacheSeesOtherReplicasWrites(t *testing.T) {
	kv, _ := newRedisKV(t)
	cacheSeesOtherReplicasWrites(t, kv)
}

func TestRedis_Layout(t *testing.T) {
	ctx := t.Context()
	kv, prefix := newRedisKV(t)
	c := redisClient(t, redisURL(t))
	rev, err := kv.Create(ctx, "identities", "email:ann@example.com", []byte("01H"), 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	key := prefix + "identities:email:ann@example.com"
	h, err := c.HGetAll(ctx, key).Result()
	if err != nil || h["v"] != "01H" || h["r"] == "" {
		t.Fatalf("hash %s = %v, %v", key, h, err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= time.Second || ttl > 1500*time.Millisecond {
		t.Fatalf("pttl = %s, want 1.5s", ttl)
	}
	if _, err := kv.Update(ctx, "identities", "email:ann@example.com", []byte("01J"), rev, 0); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl != -1 {
		t.Fatalf("pttl after an update without ttl = %s, want none", ttl)
	}
	// Revisions follow the server clock in microseconds.
	if now := uint64(time.Now().UnixMicro()); rev > now+uint64(time.Hour.Microseconds()) || rev < now-uint64(time.Hour.Microseconds()) {
		t.Fatalf("revision %d is not near the clock %d", rev, now)
	}
}

func TestRedis_KeysIgnoresOtherPrefixes(t *testing.T) {
	ctx := t.Context()
	kv, prefix := newRedisKV(t)
	c := redisClient(t, redisURL(t))
	// A key that a glob-unescaped prefix pattern would match.
	other := strings.TrimSuffix(prefix, ":") + "X:b:k"
	if err := c.HSet(ctx, other, "v", "x", "r", "1").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Del(context.Background(), other) })
	if _, err := kv.Create(ctx, "b", "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx, "b", "")
	if err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("keys = %q, %v", keys, err)
	}
}

func TestNewRedis_Unreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis://127.0.0.1:1/0"}); err == nil {
		t.Fatal("NewRedis on a closed port succeeded")
	}
	if _, err := store.NewRedis(ctx, store.RedisOptions{URL: "http://nope"}); err == nil {
		t.Fatal("NewRedis with a bad URL succeeded")
	}
}
