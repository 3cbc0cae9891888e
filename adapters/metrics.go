package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/telemetry"
)

// tracer starts the spans of sends to providers and posts to desks.
var tracer = telemetry.NewTracer("github.com/omnigate/omnigate/adapters")

// Failure reasons, the reason label of omnigate_adapter_send_failures_total.
const (
	failPermanent   = "permanent"    // Permanent: dead-lettered, never retried
	failRateLimited = "rate_limited" // RetryAfter: the provider asked to wait
	failUnavailable = "unavailable"  // the provider or a dependency is down
	failUnreachable = "unreachable"  // the recipient cannot be reached there
	failError       = "error"        // any other error: retried with backoff
)

// failReasons are every failure reason, so that each series exists from the
// start.
var failReasons = [...]string{failPermanent, failRateLimited, failUnavailable, failUnreachable, failError}

// runtimeMetrics are the runtime's metrics on one registry.
type runtimeMetrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
}

// newRuntimeMetrics registers the runtime's metrics on reg: the latency of
// Send by adapter and result, its failures by adapter and reason, and each
// adapter's readiness (from Ready, on scrape).
func newRuntimeMetrics(reg prometheus.Registerer, r *Runtime) (*runtimeMetrics, error) {
	m := &runtimeMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnigate_adapter_send_duration_seconds",
			Help:    "Time an adapter's Send took: a reply to the provider's API, or a post to an agent desk; by adapter and result (ok, error).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"adapter", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnigate_adapter_send_failures_total",
			Help: "Sends that failed, by adapter and reason: permanent (dead-lettered), rate_limited, unavailable, unreachable (the recipient, tried on another channel) or error (retried).",
		}, []string{"adapter", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.failures, &readyCollector{r: r}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("adapters: metrics: %w", err)
		}
	}
	return m, nil
}

// sendObservers are one adapter's resolved series, so that a send costs no
// label lookup.
type sendObservers struct {
	ok, failed prometheus.Observer
	failures   map[string]prometheus.Counter
	// span is the span name of a send: "provider send" or "desk post".
	span string
}

// observers resolves the series of adapter name of kind; nil metrics give
// observers that record nothing.
func (m *runtimeMetrics) observers(name string, kind Kind) *sendObservers {
	o := &sendObservers{span: "provider send"}
	if kind == Desk {
		o.span = "desk post"
	}
	if m == nil {
		return o
	}
	o.ok, o.failed = m.duration.WithLabelValues(name, "ok"), m.duration.WithLabelValues(name, "error")
	o.failures = make(map[string]prometheus.Counter, len(failReasons))
	for _, reason := range failReasons {
		o.failures[reason] = m.failures.WithLabelValues(name, reason)
	}
	return o
}

// send calls e's Send on m, timing it, counting a failure by its reason and,
// with tracing on, as a span of ctx's trace.
func (o *sendObservers) send(ctx context.Context, e *running, m *core.Message) (Receipt, error) {
	var span trace.Span
	if telemetry.Enabled() {
		ctx, span = tracer.Start(ctx, o.span, telemetry.KindClient, trace.WithAttributes(
			attribute.String("omnigate.adapter", e.a.Name()), attribute.String("omnigate.message.id", m.ID),
			attribute.String("omnigate.conversation.id", m.ConversationID)))
	}
	start := time.Now()
	rc, err := e.a.Send(ctx, m)
	if o.ok != nil {
		took := time.Since(start).Seconds()
		if err == nil {
			o.ok.Observe(took)
		} else {
			o.failed.Observe(took)
			o.failures[failReason(err)].Inc()
		}
	}
	if span != nil {
		telemetry.End(span, err)
	}
	return rc, err
}

// failReason is the reason label of a failed Send's err.
func failReason(err error) string {
	if _, ok := UnreachableReason(err); ok {
		return failUnreachable
	}
	switch {
	case bus.IsPermanent(err):
		return failPermanent
	case bus.IsUnavailable(err):
		return failUnavailable
	}
	if _, later := bus.RetryDelay(err); later {
		return failRateLimited
	}
	return failError
}

// readyTimeout bounds the readiness checks of one scrape.
const readyTimeout = 2 * time.Second

// descReady is omnigate_adapter_ready.
var descReady = prometheus.NewDesc("omnigate_adapter_ready",
	"1 when the adapter is ready (its Run is up and its provider reachable, as /healthz shows), else 0.", []string{"adapter", "kind"}, nil)

// readyCollector reports every adapter's readiness on scrape.
type readyCollector struct{ r *Runtime }

// Describe sends descReady.
func (c *readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descReady }

// Collect asks every adapter whether it is ready.
func (c *readyCollector) Collect(ch chan<- prometheus.Metric) {
	// Collect takes no context: the checks are bounded by readyTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, st := range c.r.Ready(ctx) {
		v := 1.0
		if st.Error != "" {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, v, st.Name, string(st.Kind))
	}
}
