package edge

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/telemetry"
)

// tracer starts the spans of webhooks and API requests.
var tracer = telemetry.NewTracer("github.com/omnigate/omnigate/core/edge")

// newDuration is omnigate_http_request_duration_seconds.
func newDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "omnigate_http_request_duration_seconds",
		Help: "Time to answer an HTTP request (a provider's webhook, a web chat or API call), by channel and status class (2xx, 4xx, 5xx); WebSocket and event-stream connections are not counted.",
		// A webhook answers after the JetStream ack: milliseconds, seconds
		// while a stream elects a leader.
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"channel", "status_class"})
}

// longLived reports whether r opens a connection that lives as long as a
// visitor's page (a WebSocket upgrade, an event stream): timing it says
// nothing about how fast omnigate answers.
func longLived(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// observe serves r with h, timing it in omnigate_http_request_duration_seconds
// and, when tracing is on and r is for a channel, in a server span that
// continues a trace context the caller sent (traceparent).
func (e *Edge) observe(h http.Handler, w http.ResponseWriter, r *http.Request) {
	channel := e.channel(r)
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	var span trace.Span
	if telemetry.Enabled() && channel != "other" {
		ctx := telemetry.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = tracer.Start(ctx, "webhook "+channel, telemetry.KindServer,
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		r = r.WithContext(ctx)
	}
	defer func() {
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		e.duration.WithLabelValues(channel, statusClass(code)).Observe(time.Since(start).Seconds())
		if span != nil {
			span.SetAttributes(semconv.HTTPResponseStatusCode(code))
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
			span.End()
		}
	}()
	e.serve(h, sw, r)
}

// statusClass is the status class label of code: "2xx", "4xx", ...
func statusClass(code int) string {
	switch code / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	default:
		return "5xx"
	}
}

// statusWriter remembers the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection's deadlines and flushing.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records code and passes it on.
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records the implicit 200 of a first Write and passes b on.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer when it can.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
