package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// jetStreamKVs starts an embedded server and returns a constructor of KVs on it,
// each with its own bucket prefix.
func jetStreamKVs(tb testing.TB) (func(tb testing.TB) *store.JetStreamKV, *bustest.Server, jetstream.JetStream) {
	srv := bustest.RunServer(tb)
	js, err := jetstream.New(srv.Connect(tb))
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	var n atomic.Int64
	return func(tb testing.TB) *store.JetStreamKV {
		kv, err := store.NewJetStream(context.Background(), js, store.JetStreamOptions{BucketPrefix: fmt.Sprintf("t%d_", n.Add(1))})
		if err != nil {
			tb.Fatalf("new jetstream kv: %v", err)
		}
		tb.Cleanup(func() { _ = kv.Close() })
		return kv
	}, srv, js
}

func TestJetStreamKV_Conformance(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	storetest.Run(t, func(t *testing.T) store.KV { return newKV(t) })
}

func TestJetStreamKV_KeyEncoding(t *testing.T) {
	ctx := t.Context()
	_, _, js := jetStreamKVs(t)
	kv, err := store.NewJetStream(ctx, js, store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"01HZX5V6Q9J3K4M5N6P7Q8R9ST", "plain_key-1", "sms:+15551234567", "a.b"} {
		if _, err := kv.Create(ctx, "contacts", k, []byte("v"), 0); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	// The default prefix names the JetStream bucket; plain keys are stored as they
	// are, others as "=" + base64url.
	raw, err := js.KeyValue(ctx, "omni_contacts")
	if err != nil {
		t.Fatalf("bucket omni_contacts: %v", err)
	}
	l, err := raw.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range l.Keys() {
		got = append(got, k)
	}
	slices.Sort(got)
	enc := func(s string) string { return "=" + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	want := []string{"01HZX5V6Q9J3K4M5N6P7Q8R9ST", enc("a.b"), enc("sms:+15551234567"), "plain_key-1"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("raw keys = %q, want %q", got, want)
	}
	e, err := raw.Get(ctx, enc("sms:+15551234567"))
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("raw get = %v, %v", e, err)
	}
}

func TestJetStreamKV_BucketConfig(t *testing.T) {
	ctx := t.Context()
	_, _, js := jetStreamKVs(t)
	kv, err := store.NewJetStream(ctx, js, store.JetStreamOptions{BucketPrefix: "cfg_"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "records", "k", []byte("v"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_cfg_records")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxMsgsPerSubject != 1 || cfg.Storage != jetstream.FileStorage || !cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL <= 0 || cfg.Replicas != 1 {
		t.Fatalf("stream config = %+v", cfg)
	}
	// 1.5s is rounded up to whole seconds, the server's resolution.
	m, err := st.GetLastMsgForSubject(ctx, "$KV.cfg_records.k")
	if err != nil {
		t.Fatal(err)
	}
	if ttl := m.Header.Get(jetstream.MsgTTLHeader); ttl != "2" {
		t.Fatalf("Nats-TTL = %q, want 2", ttl)
	}
}

// TestJetStreamKV_SurvivesRestart checks that what the store acknowledged, TTLs
// included, is still there after the server restarts on the same directory.
func TestJetStreamKV_SurvivesRestart(t *testing.T) {
	ctx := t.Context()
	newKV, srv, _ := jetStreamKVs(t)
	kv := newKV(t)
	rev, err := kv.Create(ctx, "contacts", "email:ann@example.com", []byte("v1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "contacts", "short", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	bustest.Eventually(t, 10*time.Second, func() error {
		e, err := kv.Get(ctx, "contacts", "email:ann@example.com")
		if err != nil {
			return err
		}
		if e.Revision != rev || string(e.Value) != "v1" {
			return fmt.Errorf("after restart got %q at %d", e.Value, e.Revision)
		}
		return nil
	})
	if _, err := kv.Update(ctx, "contacts", "email:ann@example.com", []byte("v2"), rev, 0); err != nil {
		t.Fatalf("update after restart: %v", err)
	}
	bustest.Eventually(t, 15*time.Second, func() error {
		if _, err := kv.Get(ctx, "contacts", "short"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("ttl key still there after restart (err %v)", err)
		}
		return nil
	})
}

func TestNewJetStream_InvalidPrefix(t *testing.T) {
	_, _, js := jetStreamKVs(t)
	_, err := store.NewJetStream(t.Context(), js, store.JetStreamOptions{BucketPrefix: "bad.prefix"})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestJetStreamKV_ConformanceCached(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	storetest.RunStoreWith(t, func(t *testing.T) store.KV { return newKV(t) }, store.Options{CacheBytes: 1 << 20})
}

// Two replicas with read caches on one JetStream KV: reads are answered from
// memory, and each replica sees the other's writes (a new identity included,
// which the other had cached as absent) once the watch reports them.
func TestStoreCache_SeesOtherReplicasWrites(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	cacheSeesOtherReplicasWrites(t, newKV(t))
}

func cacheSeesOtherReplicasWrites(t *testing.T, kv store.KV) {
	a := store.New(kv, store.Options{CacheBytes: 1 << 20})
	b := store.New(kv, store.Options{CacheBytes: 1 << 20})
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	ctx := t.Context()
	id := core.Identity("sms:+15550001111")

	if _, err := a.ContactByIdentity(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("identity before anyone wrote it: %v", err)
	}
	ct := &store.Contact{Name: "Ann", Identities: []core.Identity{id}}
	if err := b.CreateContact(ctx, ct); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		got, err := a.ContactByIdentity(ctx, id)
		if err != nil {
			return err
		}
		if got.ID != ct.ID {
			return fmt.Errorf("contact %s, want %s", got.ID, ct.ID)
		}
		return nil
	})

	conv, _, err := a.FindOrOpenConversation(ctx, ct.ID, time.Hour, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := a.CacheStats().Hits
	for range 10 {
		if _, err := a.Conversation(ctx, conv.ID); err != nil {
			t.Fatal(err)
		}
	}
	if hits := a.CacheStats().Hits - before; hits < 10 {
		t.Fatalf("10 reads of an unchanged conversation: %d cache hits, want 10", hits)
	}

	if _, err := b.UpdateConversation(ctx, conv.ID, func(c *store.Conversation) error {
		c.LastChannel = "email"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A compare-and-set on a's possibly stale copy never loses b's write.
	got, err := a.UpdateConversation(ctx, conv.ID, func(c *store.Conversation) error {
		c.LastIdentity = "email:ann@example.com"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.LastChannel != "email" || got.LastIdentity != "email:ann@example.com" {
		t.Fatalf("after both writes: last channel %q identity %q, want both kept", got.LastChannel, got.LastIdentity)
	}
	closed, err := b.CloseConversation(ctx, conv.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		c, err := a.Conversation(ctx, conv.ID)
		if err != nil {
			return err
		}
		if c.State != store.StateClosed || c.Revision != closed.Revision {
			return fmt.Errorf("a sees %s at revision %d, b closed it at %d", c.State, c.Revision, closed.Revision)
		}
		return nil
	})
	if _, err := a.OpenConversation(ctx, ct.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open conversation after b closed it: %v", err)
	}
}
