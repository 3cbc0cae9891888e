package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The health endpoints (docs/operations.md has their contracts):
//
//   - GET /readyz: can this replica take traffic? 200 when the bus takes
//     publishes, which is all ingress needs (a webhook is answered once
//     JetStream holds it), else 503. A store, tracker or provider that is down
//     does not pull every replica out of the load balancer at once.
//   - GET /healthz: is the process alive, and what is degraded? Always 200
//     while it serves HTTP, with every check: status "ok", or "degraded" and
//     the errors.

// checkTimeout bounds one check, so /healthz answers within it even when a
// dependency hangs.
const checkTimeout = 2 * time.Second

// check is the outcome of one health check.
type check struct {
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
}

// readyz answers /readyz from the bus check alone.
func (s *gateway) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	c := newCheck("bus", s.bus.Ready(ctx))
	code := http.StatusOK
	if c.Error != "" {
		code = http.StatusServiceUnavailable
	}
	writeHealth(w, code, map[string]any{"ready": c.Error == "", "checks": []check{c}})
}

// healthz answers /healthz with every check, 200 whatever they say.
func (s *gateway) healthz(w http.ResponseWriter, r *http.Request) {
	checks := s.checks(r.Context())
	status := "ok"
	for _, c := range checks {
		if c.Error != "" {
			status = "degraded"
		}
	}
	writeHealth(w, http.StatusOK, map[string]any{"status": status, "checks": checks})
}

func writeHealth(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// checks runs every check at once, each within checkTimeout: the bus, the
// store, tickets, and each adapter (named "adapter <name>"), in that order.
func (s *gateway) checks(ctx context.Context) []check {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	var (
		wg               sync.WaitGroup
		bus, st, tickets error
	)
	wg.Go(func() { bus = s.bus.Ready(ctx) })
	wg.Go(func() { st = s.store.Ping(ctx) })
	wg.Go(func() { tickets = s.tickets.Ready(ctx) })
	adapters := s.runtime.Ready(ctx)
	wg.Wait()
	out := []check{newCheck("bus", bus), newCheck("store", st), newCheck("tickets", tickets)}
	for _, a := range adapters {
		out = append(out, check{Name: "adapter " + a.Name, Error: a.Error})
	}
	return out
}

func newCheck(name string, err error) check {
	c := check{Name: name}
	if err != nil {
		c.Error = err.Error()
	}
	return c
}

// health runs the checks every interval until ctx is done: their outcome is
// the gauge omnigate_health_check_up{check}, and each change is logged (Warn
// when a check fails, Info when it passes again), so a degraded dependency
// shows in metrics and logs whether or not anyone asks /healthz.
type health struct {
	g        *gateway
	log      *slog.Logger
	up       *prometheus.GaugeVec
	interval time.Duration
	last     map[string]string // check name -> its last error ("" passed)
}

func newHealth(g *gateway, reg prometheus.Registerer, log *slog.Logger, interval time.Duration) (*health, error) {
	h := &health{g: g, log: log, interval: interval, last: map[string]string{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "omnigate_health_check_up",
			Help: "1 when the health check (bus, store, tickets, adapter <name>) passed when last run, 0 when it failed; /healthz has the error.",
		}, []string{"check"})}
	if err := reg.Register(h.up); err != nil {
		return nil, err
	}
	return h, nil
}

// Run checks every interval until ctx is done; it returns nil. The first
// check waits an interval, so that adapters still starting are not reported.
func (h *health) Run(ctx context.Context) error {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		h.once(ctx)
	}
}

// once runs the checks, sets the gauges and logs what changed.
func (h *health) once(ctx context.Context) {
	for _, c := range h.g.checks(ctx) {
		if ctx.Err() != nil {
			return // shutting down: what failed now says nothing
		}
		v := 1.0
		if c.Error != "" {
			v = 0
		}
		h.up.WithLabelValues(c.Name).Set(v)
		prev, seen := h.last[c.Name]
		h.last[c.Name] = c.Error
		switch {
		case c.Error != "" && (!seen || prev == ""):
			h.log.Warn("health check failing; this replica still takes traffic while the bus is up", "check", c.Name, "err", errors.New(c.Error))
		case c.Error == "" && seen && prev != "":
			h.log.Info("health check passing again", "check", c.Name)
		}
	}
}
