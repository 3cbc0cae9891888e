package edge_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/core/edge"
)

// records is a slog handler that keeps what is logged.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }

func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// lines returns the records logged with msg.
func (h *records) lines(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

// attr returns the value of attribute key of r.
func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// fixture is an Edge in front of a test server.
type fixture struct {
	edge *edge.Edge
	reg  *prometheus.Registry
	logs *records
	log  *slog.Logger
	srv  *httptest.Server
}

// newFixture serves h behind an Edge with cfg.
func newFixture(t *testing.T, cfg edge.Config, h http.Handler) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &records{}}
	f.log = slog.New(f.logs)
	var err error
	if f.edge, err = edge.New(cfg, f.reg, f.log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.edge.Close)
	f.srv = httptest.NewUnstartedServer(f.edge.Handler(h))
	f.srv.Listener = f.edge.Listener(f.srv.Listener)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// rejected reads omnigate_http_rejected_requests_total{channel,reason}.
func (f *fixture) rejected(channel string, reason edge.Reason) float64 {
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "omnigate_http_rejected_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == channel && labels["reason"] == string(reason) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// eventually polls fn every 10 ms until it returns nil, failing the test
// with its last error after d.
func eventually(t *testing.T, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
