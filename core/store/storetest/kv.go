package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
)

// ttlWait is how long TTL tests wait for an expiry: JetStream counts TTLs in whole
// seconds and expires on a timer.
const ttlWait = 15 * time.Second

// RunKV tests the KV primitive alone.
func RunKV(t *testing.T, newKV func(t *testing.T) store.KV) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		_, err := kv.Get(c, "b", "k")
		want(t, err, store.ErrNotFound, "get missing")
		rev, err := kv.Create(c, "b", "k", []byte("v1"), 0)
		must(t, err, "create")
		if rev == 0 {
			t.Fatal("create returned revision 0")
		}
		e, err := kv.Get(c, "b", "k")
		must(t, err, "get")
		if e.Key != "k" || string(e.Value) != "v1" || e.Revision != rev {
			t.Fatalf("get = %+v, want k=v1 at %d", e, rev)
		}
		_, err = kv.Create(c, "b", "k", []byte("v2"), 0)
		want(t, err, store.ErrExists, "create existing")
		_, err = kv.Get(c, "other", "k")
		want(t, err, store.ErrNotFound, "same key in another bucket")
		empty, err := kv.Create(c, "b", "empty", nil, 0)
		must(t, err, "create empty value")
		if e, err := kv.Get(c, "b", "empty"); err != nil || len(e.Value) != 0 || e.Revision != empty {
			t.Fatalf("get empty value = %+v, %v", e, err)
		}
		bin := []byte{0, 1, 2, 0xff, '\n'}
		_, err = kv.Create(c, "b", "bin", bin, 0)
		must(t, err, "create binary value")
		if e, err := kv.Get(c, "b", "bin"); err != nil || !bytes.Equal(e.Value, bin) {
			t.Fatalf("get binary value = %q, %v", e.Value, err)
		}
		must(t, kv.Ping(c), "ping")
	})

	t.Run("UpdateCompareAndSet", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		_, err := kv.Update(c, "b", "k", []byte("x"), 1, 0)
		want(t, err, store.ErrConflict, "update missing key")
		r1, err := kv.Create(c, "b", "k", []byte("v1"), 0)
		must(t, err, "create")
		r2, err := kv.Update(c, "b", "k", []byte("v2"), r1, 0)
		must(t, err, "update")
		if r2 <= r1 {
			t.Fatalf("revision went from %d to %d", r1, r2)
		}
		_, err = kv.Update(c, "b", "k", []byte("stale"), r1, 0)
		want(t, err, store.ErrConflict, "update with stale revision")
		_, err = kv.Update(c, "b", "k", []byte("zero"), 0, 0)
		want(t, err, store.ErrConflict, "update with revision 0")
		e, err := kv.Get(c, "b", "k")
		must(t, err, "get")
		if string(e.Value) != "v2" || e.Revision != r2 {
			t.Fatalf("get = %q at %d, want v2 at %d", e.Value, e.Revision, r2)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		want(t, kv.Delete(c, "b", "missing", 0), nil, "unconditional delete of a missing key")
		r1, err := kv.Create(c, "b", "k", []byte("v1"), 0)
		must(t, err, "create")
		want(t, kv.Delete(c, "b", "k", r1+1000), store.ErrConflict, "delete with wrong revision")
		want(t, kv.Delete(c, "b", "k", r1), nil, "delete with revision")
		_, err = kv.Get(c, "b", "k")
		want(t, err, store.ErrNotFound, "get deleted")
		want(t, kv.Delete(c, "b", "k", r1), store.ErrConflict, "delete again with old revision")
		_, err = kv.Update(c, "b", "k", []byte("x"), r1, 0)
		want(t, err, store.ErrConflict, "update deleted key")
		r2, err := kv.Create(c, "b", "k", []byte("v2"), 0)
		must(t, err, "create after delete")
		if r2 <= r1 {
			t.Fatalf("re-created key got revision %d, not above %d: a stale compare-and-set could succeed", r2, r1)
		}
		_, err = kv.Update(c, "b", "k", []byte("stale"), r1, 0)
		want(t, err, store.ErrConflict, "update with the revision of the deleted incarnation")
		want(t, kv.Delete(c, "b", "k", 0), nil, "unconditional delete")
		if keys, err := kv.Keys(c, "b", ""); err != nil || len(keys) != 0 {
			t.Fatalf("keys after delete = %q, %v", keys, err)
		}
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, errs := 0, []error{}
		for i := range 20 {
			wg.Go(func() {
				_, err := kv.Create(c, "b", "k", fmt.Appendf(nil, "%d", i), 0)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if !errors.Is(err, store.ErrExists) {
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || len(errs) > 0 {
			t.Fatalf("%d creates won, errors %v; want exactly one win", wins, errs)
		}
	})

	t.Run("ConcurrentUpdate", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		r0, err := kv.Create(c, "b", "k", []byte("0"), 0)
		must(t, err, "create")
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 20 {
			wg.Go(func() {
				if _, err := kv.Update(c, "b", "k", fmt.Appendf(nil, "%d", i), r0, 0); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, store.ErrConflict) {
					t.Errorf("update: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d updates from the same revision won, want 1", wins)
		}
	})

	t.Run("TTLExpires", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		_, err := kv.Create(c, "b", "short", []byte("v"), time.Second)
		must(t, err, "create with ttl")
		if _, err := kv.Get(c, "b", "short"); err != nil {
			t.Fatalf("get right after create: %v", err)
		}
		bustest.Eventually(t, ttlWait, func() error {
			if _, err := kv.Get(c, "b", "short"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("still there (err %v)", err)
			}
			return nil
		})
		if keys, err := kv.Keys(c, "b", ""); err != nil || len(keys) != 0 {
			t.Fatalf("keys after expiry = %q, %v", keys, err)
		}
		// An expired key is absent: it can be created again, with no TTL this time.
		_, err = kv.Create(c, "b", "short", []byte("again"), 0)
		must(t, err, "create after expiry")
	})

	t.Run("TTLSetByUpdate", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		r, err := kv.Create(c, "b", "k", []byte("v1"), 0)
		must(t, err, "create")
		_, err = kv.Update(c, "b", "k", []byte("v2"), r, time.Second)
		must(t, err, "update with ttl")
		bustest.Eventually(t, ttlWait, func() error {
			if _, err := kv.Get(c, "b", "k"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("still there (err %v)", err)
			}
			return nil
		})
	})

	t.Run("TTLRemovedByUpdate", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		r, err := kv.Create(c, "b", "kept", []byte("v1"), time.Second)
		must(t, err, "create kept with ttl")
		_, err = kv.Update(c, "b", "kept", []byte("v2"), r, 0)
		must(t, err, "update without ttl")
		// A witness written after kept, with the same TTL: once it has expired,
		// kept's original TTL has passed too.
		_, err = kv.Create(c, "b", "witness", []byte("w"), time.Second)
		must(t, err, "create witness")
		bustest.Eventually(t, ttlWait, func() error {
			if _, err := kv.Get(c, "b", "witness"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("witness still there (err %v)", err)
			}
			return nil
		})
		e, err := kv.Get(c, "b", "kept")
		must(t, err, "get kept after its first ttl")
		if string(e.Value) != "v2" {
			t.Fatalf("kept = %q, want v2", e.Value)
		}
	})

	t.Run("KeysOddCharacters", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		keys := []string{
			"01HZX5V6Q9J3K4M5N6P7Q8R9ST", "plain_key-1", "sms:+15551234567",
			"email:ann@example.com", "email:bob+tag@example.org", "a.b", ".", "..",
			"a..b", "trailing.", "with space", "tab\there", "slash/and\\back",
			"=looks-encoded", "=", "glob*?[x]^", "unicodé ✓", "percent%20",
			"colon:", ":", "web:v_01H?x=1&y=2",
		}
		for i, k := range keys {
			_, err := kv.Create(c, "b", k, []byte(k), 0)
			must(t, err, "create key %d", i)
		}
		for i, k := range keys {
			e, err := kv.Get(c, "b", k)
			must(t, err, "get key %d", i)
			if e.Key != k || string(e.Value) != k {
				t.Fatalf("key %d: got %q=%q", i, e.Key, e.Value)
			}
		}
		got, err := kv.Keys(c, "b", "")
		must(t, err, "keys")
		sorted := slices.Sorted(slices.Values(keys))
		if !slices.Equal(got, sorted) {
			t.Fatalf("keys =\n%q\nwant\n%q", got, sorted)
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"email:", []string{"email:ann@example.com", "email:bob+tag@example.org"}},
			{"glob*", []string{"glob*?[x]^"}},
			{"*", nil},
			{"?", nil},
			{"[", nil},
			{"a.", []string{"a..b", "a.b"}},
			{"slash/and\\", []string{"slash/and\\back"}},
			{"=", []string{"=", "=looks-encoded"}},
			{"nothing", nil},
		} {
			got, err := kv.Keys(c, "b", tc.prefix)
			must(t, err, "keys %q", tc.prefix)
			if len(got) != len(tc.want) || len(got) > 0 && !slices.Equal(got, tc.want) {
				t.Errorf("keys with prefix %q = %q, want %q", tc.prefix, got, tc.want)
			}
		}
		if got, err := kv.Keys(c, "empty", ""); err != nil || len(got) != 0 {
			t.Fatalf("keys of an unused bucket = %q, %v", got, err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		kv, c := newKV(t), ctx(t)
		for _, b := range []string{"", "a.b", "a:b", "a b", "a*", string(make([]byte, 65))} {
			_, err := kv.Create(c, b, "k", nil, 0)
			want(t, err, store.ErrInvalid, fmt.Sprintf("create in bucket %q", b))
			_, err = kv.Get(c, b, "k")
			want(t, err, store.ErrInvalid, fmt.Sprintf("get from bucket %q", b))
			_, err = kv.Keys(c, b, "")
			want(t, err, store.ErrInvalid, fmt.Sprintf("keys of bucket %q", b))
		}
		_, err := kv.Create(c, "b", "", nil, 0)
		want(t, err, store.ErrInvalid, "empty key")
		_, err = kv.Create(c, "b", string(make([]byte, store.MaxKeyBytes+1)), nil, 0)
		want(t, err, store.ErrInvalid, "long key")
		long := string(bytes.Repeat([]byte("é"), store.MaxKeyBytes/2))
		_, err = kv.Create(c, "b", long, []byte("v"), 0)
		must(t, err, "key of MaxKeyBytes")
		if got, err := kv.Keys(c, "b", ""); err != nil || !slices.Equal(got, []string{long}) {
			t.Fatalf("keys = %d keys, %v; want the long one", len(got), err)
		}
	})
}
