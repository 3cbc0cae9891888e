// Package edge is what every HTTP request to omnigate meets before, and
// while, a handler serves it: a deadline for the whole request body, a cap on
// the connections one client address may hold open, whole-body reads with a
// size limit that answer 413, and a count of refused requests (forged
// signatures, bodies too large or too slow) that logs at most one line per
// interval however many there are.
//
// serve builds one Edge, wraps its listener with Listener and its handler
// with Handler. Handlers in adapters and tickets reach the Edge through the
// request (Reject, ReadBody), so a flood of forged webhooks costs a counter
// increment each, not a log line each; outside an Edge (unit tests of one
// adapter) Reject logs every call.
package edge

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config sets the Edge's limits; serve fills it from the http section.
type Config struct {
	// BodyTimeout bounds the time from the end of a request's headers to the
	// end of its body; 0 leaves bodies without a deadline. Requests without a
	// body (WebSocket upgrades, Server-Sent Events) get none, so long-lived
	// connections are not cut.
	BodyTimeout time.Duration
	// MaxConnsPerClient caps the connections one client address holds open at
	// once; 0 or less is no cap.
	MaxConnsPerClient int
	// LogInterval is the least time between two log lines about refused
	// requests of one channel and reason; default one minute.
	LogInterval time.Duration
	// Channel names the channel a request is for, for the channel label of
	// the metrics of what the Edge itself refuses (a body too slow). It must
	// return one of a small fixed set of names; nil labels everything "http".
	Channel func(*http.Request) string
}

// Edge is one server's HTTP edge: its limits, its counters and the
// throttle of its log lines. Safe for concurrent use.
type Edge struct {
	cfg      Config
	log      *slog.Logger
	rejected *prometheus.CounterVec
	refused  prometheus.Counter
	duration *prometheus.HistogramVec
	throttle *throttle
}

// New returns an Edge with cfg whose counters are registered on reg
// (omnigate_http_rejected_requests_total{channel,reason},
// omnigate_http_refused_connections_total and the latency histogram
// omnigate_http_request_duration_seconds{channel,status_class}) and which logs what it refuses
// itself on log. Call Close when the server has stopped.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Edge, error) {
	e := &Edge{
		cfg: cfg,
		log: log,
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnigate_http_rejected_requests_total",
			Help: "HTTP requests refused at the edge: a missing or wrong signature or token, another account's request, a body too large or too slow.",
		}, []string{"channel", "reason"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnigate_http_refused_connections_total",
			Help: "Connections closed at once because their client address already held http.max_conns_per_client open.",
		}),
		duration: newDuration(),
		throttle: newThrottle(cmp.Or(cfg.LogInterval, time.Minute)),
	}
	for _, c := range []prometheus.Collector{e.rejected, e.refused, e.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Close writes the log lines still held back and stops their timers.
func (e *Edge) Close() { e.throttle.close() }

// ctxKey is the request context key of the Edge that serves a request.
type ctxKey struct{}

// from returns the Edge serving r, or nil.
func from(r *http.Request) *Edge {
	e, _ := r.Context().Value(ctxKey{}).(*Edge)
	return e
}

// Handler returns h behind the edge: the request carries the Edge (for
// Reject) and, when it has a body, a read deadline of Config.BodyTimeout
// for all of it. The deadline is lifted when the body has been read to its
// end, so a handler may take longer than it to answer. Every request but a
// long-lived one (WebSocket, event stream) is timed by channel and status
// class and, with tracing on, is a span.
func (e *Edge) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, e))
		if longLived(r) {
			e.serve(h, w, r)
			return
		}
		e.observe(h, w, r)
	})
}

// serve serves r with h, with the body deadline of Config.BodyTimeout.
func (e *Edge) serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	if e.cfg.BodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		rc := http.NewResponseController(w)
		// ErrNotSupported leaves the body without a deadline, as before.
		if rc.SetReadDeadline(time.Now().Add(e.cfg.BodyTimeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, w: w, r: r, e: e}
		}
	}
	h.ServeHTTP(w, r)
}

// channel is the channel label of r.
func (e *Edge) channel(r *http.Request) string {
	if e.cfg.Channel == nil {
		return "http"
	}
	return e.cfg.Channel(r)
}
