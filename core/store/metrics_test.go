package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/core/store/storetest"
)

// TestInstrument_Conformance runs the KV suite through Instrument: measuring
// changes no answer, and a Watcher stays one.
func TestInstrument_Conformance(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	reg := prometheus.NewPedanticRegistry()
	storetest.RunKV(t, func(t *testing.T) store.KV {
		kv, err := store.Instrument(newKV(t), "kv", reg)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := kv.(store.Watcher); !ok {
			t.Fatal("an instrumented JetStream KV is no longer a Watcher")
		}
		return kv
	})
}

// TestInstrument_Metrics counts what a few operations on a real JetStream KV
// leave in the registry.
func TestInstrument_Metrics(t *testing.T) {
	newKV, _, _ := jetStreamKVs(t)
	reg := prometheus.NewPedanticRegistry()
	kv, err := store.Instrument(newKV(t), "kv", reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rev, err := kv.Create(ctx, "contacts", "a", []byte("1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "contacts", "a", []byte("1"), 0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := kv.Update(ctx, "contacts", "a", []byte("2"), rev, 0); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := kv.Get(ctx, "contacts", "a"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Get(ctx, "contacts", ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("get of an empty key: %v", err)
	}
	if err := kv.Delete(ctx, "contacts", "a", 0); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "omnigate_store_operation_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var op, backend string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "operation":
					op = l.GetValue()
				case "backend":
					backend = l.GetValue()
				}
			}
			if backend != "kv" {
				t.Errorf("backend label %q", backend)
			}
			counts[op] = m.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{"create": 2, "update": 1, "get": 4, "delete": 1}
	for op, n := range want {
		if counts[op] != n {
			t.Errorf("%s observed %d times, want %d (all: %v)", op, counts[op], n, counts)
		}
	}
	// The invalid key is an error; the second create's ErrExists is an answer.
	wantErrs := `
# HELP omnigate_store_operation_errors_total State store operations that failed (backend unavailable, timed out, invalid request), by operation and backend; not found, exists and conflict are answers, not errors.
# TYPE omnigate_store_operation_errors_total counter
omnigate_store_operation_errors_total{backend="kv",operation="create"} 0
omnigate_store_operation_errors_total{backend="kv",operation="delete"} 0
omnigate_store_operation_errors_total{backend="kv",operation="get"} 1
omnigate_store_operation_errors_total{backend="kv",operation="keys"} 0
omnigate_store_operation_errors_total{backend="kv",operation="update"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantErrs), "omnigate_store_operation_errors_total"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// A second KV on the same registry shares the metrics.
	if _, err := store.Instrument(newKV(t), "kv", reg); err != nil {
		t.Fatalf("second Instrument on one registry: %v", err)
	}
}

// nopKV answers every operation at once, to measure the instrument alone.
type nopKV struct{ store.KV }

func (nopKV) Get(context.Context, string, string) (store.Entry, error) { return store.Entry{}, nil }

// TestInstrument_NoAllocation: the hot path pays no allocation for metrics.
func TestInstrument_NoAllocation(t *testing.T) {
	kv, err := store.Instrument(nopKV{}, "kv", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _ = kv.Get(ctx, "contacts", "a") }); n != 0 {
		t.Errorf("%v allocations per measured Get, want 0", n)
	}
}

// BenchmarkStore_InstrumentedGet is the instrument's cost per operation.
func BenchmarkStore_InstrumentedGet(b *testing.B) {
	for _, tc := range []struct {
		name string
		kv   func() store.KV
	}{
		{"bare", func() store.KV { return nopKV{} }},
		{"instrumented", func() store.KV {
			kv, _ := store.Instrument(nopKV{}, "kv", prometheus.NewRegistry())
			return kv
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			kv, ctx := tc.kv(), context.Background()
			for b.Loop() {
				_, _ = kv.Get(ctx, "contacts", "a")
			}
		})
	}
}
