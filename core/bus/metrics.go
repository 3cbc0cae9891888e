package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bus's counters, counted from Open on and registered by
// RegisterMetrics.
type metrics struct {
	// redeliveries counts deliveries the server made again (NumDelivered > 1),
	// per durable consumer.
	redeliveries *prometheus.CounterVec
	// scrapeErrors counts failed reads of consumer or stream state.
	scrapeErrors prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnigate_bus_redeliveries_total",
			Help: "Messages JetStream delivered again to this process's consumer (an earlier delivery failed, timed out or was never answered).",
		}, []string{"consumer"}),
		scrapeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnigate_bus_metrics_errors_total",
			Help: "Scrapes whose consumer or dead-letter figures could not be read from JetStream (the figures of the last good read are served).",
		}),
	}
}

// MetricsOptions tune RegisterMetrics. The zero value is usable.
type MetricsOptions struct {
	// Cache is how long the figures read from JetStream (consumer lag,
	// dead-letter depth) serve later scrapes before they are read again, so
	// that several scrapers cost one read; default 5 s.
	Cache time.Duration
}

// Metric descriptions of what RegisterMetrics reads from JetStream.
var (
	descPending = prometheus.NewDesc("omnigate_bus_consumer_pending",
		"Messages of the consumer's subjects not yet delivered to it: its lag.", []string{"stream", "consumer"}, nil)
	descAckPending = prometheus.NewDesc("omnigate_bus_consumer_ack_pending",
		"Messages delivered to the consumer and not yet acknowledged (being handled, or waiting in a lane).", []string{"stream", "consumer"}, nil)
	descRedelivered = prometheus.NewDesc("omnigate_bus_consumer_redelivered",
		"Messages delivered to the consumer more than once and not yet acknowledged.", []string{"stream", "consumer"}, nil)
	descDLQ = prometheus.NewDesc("omnigate_bus_dlq_messages",
		"Dead letters kept on omni.dlq.<stage>, per stage ('omnigate dlq list' shows them, 'omnigate dlq replay' sends them back).", []string{"stage"}, nil)
)

// RegisterMetrics registers the bus's metrics on reg: per durable consumer
// this process runs, its lag (omnigate_bus_consumer_pending), what it holds
// (omnigate_bus_consumer_ack_pending, omnigate_bus_consumer_redelivered) and
// the redeliveries it got (omnigate_bus_redeliveries_total); per stage, the
// dead letters kept (omnigate_bus_dlq_messages, 0 for a stage with none).
// The JetStream figures are read on scrape, a few requests per stream, and
// reused for opts.Cache. Labels are stream, consumer and stage names, which
// code fixes: bounded.
func (b *Bus) RegisterMetrics(reg prometheus.Registerer, opts MetricsOptions) error {
	col := &collector{b: b, cache: cmp.Or(opts.Cache, 5*time.Second)}
	for _, c := range []prometheus.Collector{b.metrics.redeliveries, b.metrics.scrapeErrors, col} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("bus: metrics: %w", err)
		}
	}
	return nil
}

// collector reads consumer and dead-letter figures from JetStream on scrape.
type collector struct {
	b     *Bus
	cache time.Duration

	mu   sync.Mutex // guards what follows; held while reading
	at   time.Time
	last []prometheus.Metric
}

// Describe sends the descriptions of what Collect reads from JetStream.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descAckPending, descRedelivered, descDLQ} {
		ch <- d
	}
}

// scrapeTimeout bounds one read of the JetStream figures.
const scrapeTimeout = 3 * time.Second

// Collect sends the JetStream figures, read again when older than the cache.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.at) >= c.cache {
		// Collect takes no context: the read is bounded by scrapeTimeout.
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		ms, err := c.read(ctx)
		cancel()
		if err != nil {
			c.b.metrics.scrapeErrors.Inc()
			c.b.log.Debug("bus metrics: read consumer and stream state", "err", err)
		}
		if err == nil || c.last == nil {
			c.last, c.at = ms, time.Now()
		}
	}
	for _, m := range c.last {
		ch <- m
	}
}

// read reads the figures of this process's consumers and of the DLQ stream.
func (c *collector) read(ctx context.Context) ([]prometheus.Metric, error) {
	b := c.b
	b.mu.Lock()
	durables := map[string][]string{} // stream -> durables
	stages := map[string]bool{}
	for cons := range b.consumers {
		durables[cons.spec.Stream] = append(durables[cons.spec.Stream], cons.spec.Durable)
		stages[cons.spec.Stage] = true
	}
	b.mu.Unlock()
	var out []prometheus.Metric
	var errs []error
	for _, stream := range slices.Sorted(maps.Keys(durables)) {
		ours := durables[stream]
		st, err := b.js.Stream(ctx, stream)
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", stream, err))
			continue
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			if !slices.Contains(ours, ci.Name) {
				continue // another process's or an ephemeral consumer
			}
			out = append(out,
				prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(ci.NumPending), stream, ci.Name),
				prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, float64(ci.NumAckPending), stream, ci.Name),
				prometheus.MustNewConstMetric(descRedelivered, prometheus.GaugeValue, float64(ci.NumRedelivered), stream, ci.Name))
		}
		if err := l.Err(); err != nil {
			errs = append(errs, fmt.Errorf("consumers of %s: %w", stream, err))
		}
	}
	depth, err := b.dlqDepth(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for stage := range stages {
		if _, ok := depth[stage]; !ok {
			depth[stage] = 0
		}
	}
	for _, stage := range slices.Sorted(maps.Keys(depth)) {
		out = append(out, prometheus.MustNewConstMetric(descDLQ, prometheus.GaugeValue, float64(depth[stage]), stage))
	}
	return out, errors.Join(errs...)
}

// dlqDepth counts the dead letters per stage: the DLQ stream's message
// count per subject omni.dlq.<stage>.
func (b *Bus) dlqDepth(ctx context.Context) (map[string]uint64, error) {
	depth := map[string]uint64{}
	st, err := b.js.Stream(ctx, StreamDLQ)
	if err != nil {
		return depth, fmt.Errorf("stream %s: %w", StreamDLQ, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(RootDLQ+".>"))
	if err != nil {
		return depth, fmt.Errorf("stream %s info: %w", StreamDLQ, err)
	}
	for subj, n := range info.State.Subjects {
		if stage, ok := strings.CutPrefix(subj, RootDLQ+"."); ok && ValidToken(stage) {
			depth[stage] += n
		}
	}
	return depth, nil
}
