package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operations, the operation label of the store's metrics.
var operations = [...]string{"get", "create", "update", "delete", "keys"}

const (
	opGet = iota
	opCreate
	opUpdate
	opDelete
	opKeys
)

// Instrument returns kv measured on reg: the latency of every backend
// operation (omnigate_store_operation_duration_seconds{operation,backend})
// and the operations that failed for another reason than the answer itself
// (not found, exists, conflict): omnigate_store_operation_errors_total. It
// sits below the Store's read cache, so what is measured is the backend; a
// Watcher stays a Watcher. backend names the backend ("kv", "redis"). The
// cost per operation is two clock reads and one histogram observation, with
// no allocation. Instrumenting two KVs on one registry shares the metrics.
func Instrument(kv KV, backend string, reg prometheus.Registerer) (KV, error) {
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "omnigate_store_operation_duration_seconds",
		Help:    "Latency of state store operations on the backend (below the read cache), by operation and backend.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	}, []string{"operation", "backend"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "omnigate_store_operation_errors_total",
		Help: "State store operations that failed (backend unavailable, timed out, invalid request), by operation and backend; not found, exists and conflict are answers, not errors.",
	}, []string{"operation", "backend"})
	if err := register(reg, &dur); err != nil {
		return nil, err
	}
	if err := register(reg, &errs); err != nil {
		return nil, err
	}
	m := &measured{KV: kv}
	for i, op := range operations {
		m.dur[i] = dur.WithLabelValues(op, backend)
		m.errs[i] = errs.WithLabelValues(op, backend)
		m.errs[i].Add(0)
	}
	if w, ok := kv.(Watcher); ok {
		return &measuredWatcher{measured: m, w: w}, nil
	}
	return m, nil
}

// register registers *c on reg, or points *c at the same collector already
// registered there.
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("store: metrics: %w", err)
	}
	return nil
}

// measured is a KV whose operations are measured.
type measured struct {
	KV
	dur  [len(operations)]prometheus.Observer
	errs [len(operations)]prometheus.Counter
}

// done records one operation op that began at start and returned err.
func (m *measured) done(op int, start time.Time, err error) {
	m.dur[op].Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrExists) && !errors.Is(err, ErrConflict) {
		m.errs[op].Inc()
	}
}

// Get implements KV.
func (m *measured) Get(ctx context.Context, bucket, key string) (Entry, error) {
	start := time.Now()
	e, err := m.KV.Get(ctx, bucket, key)
	m.done(opGet, start, err)
	return e, err
}

// Create implements KV.
func (m *measured) Create(ctx context.Context, bucket, key string, value []byte, ttl time.Duration) (uint64, error) {
	start := time.Now()
	rev, err := m.KV.Create(ctx, bucket, key, value, ttl)
	m.done(opCreate, start, err)
	return rev, err
}

// Update implements KV.
func (m *measured) Update(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	start := time.Now()
	rev, err := m.KV.Update(ctx, bucket, key, value, rev, ttl)
	m.done(opUpdate, start, err)
	return rev, err
}

// Delete implements KV.
func (m *measured) Delete(ctx context.Context, bucket, key string, rev uint64) error {
	start := time.Now()
	err := m.KV.Delete(ctx, bucket, key, rev)
	m.done(opDelete, start, err)
	return err
}

// Keys implements KV.
func (m *measured) Keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	start := time.Now()
	keys, err := m.KV.Keys(ctx, bucket, prefix)
	m.done(opKeys, start, err)
	return keys, err
}

// measuredWatcher is a measured KV that is also a Watcher; watches are
// long-lived and not measured.
type measuredWatcher struct {
	*measured
	w Watcher
}

// Watch implements Watcher.
func (m *measuredWatcher) Watch(ctx context.Context, bucket string, changed func(key string, rev uint64), lost func()) error {
	return m.w.Watch(ctx, bucket, changed, lost)
}

var (
	_ KV      = (*measured)(nil)
	_ Watcher = (*measuredWatcher)(nil)
)
