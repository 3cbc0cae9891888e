package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/omnigate/omnigate/adapters"
	_ "github.com/omnigate/omnigate/adapters/builtin" // every built-in adapter
	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/analytics"
	"github.com/omnigate/omnigate/api"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/lang"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/insight/corrections"
	"github.com/omnigate/omnigate/insight/models"
	"github.com/omnigate/omnigate/insight/suggest"
	"github.com/omnigate/omnigate/routing"
	"github.com/omnigate/omnigate/tickets"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	httpAddr := fs.String("http", "", "HTTP listen `ADDR` (overrides http.addr; default :8080)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	if *httpAddr != "" {
		cfg.HTTP.Addr = *httpAddr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(cfg.Log, stderr)
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http: listen %s: %w", cfg.HTTP.Addr, err)
	}
	return serve(ctx, cfg, cf.config, ln, log, stdout)
}

// gateway is one running omnigate: bus, store, adapters and the HTTP server.
type gateway struct {
	cfg      *config.Config
	log      *slog.Logger
	bus      *bus.Bus
	store    *store.Store
	runtime  *adapters.Runtime
	pipeline *pipeline.Pipeline
	tickets  *tickets.Service
	router   *routing.Router
	// suggester suggests replies; nil without insight.knowledge_base.
	suggester *suggest.Suggester
	// analytics is nil when analytics.enabled is false.
	analytics *analytics.Analytics
	api       *api.API
	models    *models.Set
	// corrections keeps agents' intent corrections (insight).
	corrections *corrections.Service
	mux         *http.ServeMux
	// metrics is the gateway's own registry, served on /metrics.
	metrics *prometheus.Registry
	// channels are the names of the configured adapters.
	channels map[string]bool
	// desks are the configured agent desks; the pipeline publishes to each.
	desks []string
	// phoneChannels are the channels whose addresses are phone numbers, as
	// the registered adapters say (adapters.Info.Address).
	phoneChannels []string
	// detect tells the language of customers' messages (language section).
	detect *lang.Detector
}

// serve runs omnigate on ln until ctx is done, then shuts down in order: HTTP
// (no new ingress), adapters, consumers (in-flight handlers finish), the NATS
// connection and the embedded server.
func serve(ctx context.Context, cfg *config.Config, file string, ln net.Listener, log *slog.Logger, stdout io.Writer) error {
	defer ln.Close()
	if path := os.Getenv("OMNIGATE_CPUPROFILE"); path != "" {
		// For performance work (bench/e2e): a CPU profile of the whole run.
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("OMNIGATE_CPUPROFILE: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("OMNIGATE_CPUPROFILE: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintln(stdout, startLine(cfg, file, ln))
	stopTracing, err := startTracing(ctx, cfg.Telemetry.Tracing, log.With("component", "telemetry"))
	if err != nil {
		return err
	}
	defer stopTracing()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := openBus(startCtx, cfg, log.With("component", "bus"), "omnigate")
	if err != nil {
		return err
	}
	defer closeBus(b, cfg.HTTP.ShutdownTimeout, log)
	reg := newRegistry(b)
	st, err := openStore(startCtx, cfg, b, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("store close", "err", err)
		}
	}()
	s := &gateway{cfg: cfg, log: log, bus: b, store: st, mux: http.NewServeMux(), metrics: reg}
	if err := s.build(startCtx, file); err != nil {
		return err
	}
	s.mux.Handle("GET /widget.js", web.WidgetHandler())
	if file == "" {
		demo := web.DemoHandler(web.DemoOptions{Warning: demoWarning(s.desks)})
		s.mux.Handle("GET /{$}", demo)
		s.mux.Handle("GET /demo.css", demo)
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{Registry: s.metrics}))
	hc, err := newHealth(s, s.metrics, log.With("component", "health"), healthInterval)
	if err != nil {
		return err
	}
	e, err := edge.New(edge.Config{
		BodyTimeout:       cfg.HTTP.BodyTimeout,
		MaxConnsPerClient: cfg.HTTP.MaxConnsPerClient,
		Channel:           s.channelOf,
	}, s.metrics, log.With("component", "http"))
	if err != nil {
		return err
	}
	defer e.Close()
	hs := &http.Server{
		Handler:           e.Handler(s.mux),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		// No ReadTimeout or WriteTimeout: they would cut the web chat's
		// WebSockets and event streams; the edge bounds request bodies instead.
	}

	where := "embedded NATS, store in " + cfg.NATS.Embedded.StoreDir
	if cfg.NATS.URL != "" {
		where = "NATS " + cfg.NATS.URL
	} else if u := b.ClientURL(); u != "" {
		where += ", NATS clients at " + u
	}
	fmt.Fprintf(stdout, "omnigate %s listening on http://%s (%s, %s store)\n", version, displayAddr(ln.Addr()), where, cfg.Store.Backend)
	log.Info("omnigate started", "http", ln.Addr().String(), "embedded_nats", b.Embedded(), "store", cfg.Store.Backend)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(e.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error { return s.runtime.Run(gctx) })
	g.Go(func() error { return s.pipeline.Run(gctx) })
	g.Go(func() error { return s.tickets.Run(gctx) })
	g.Go(func() error { return s.router.Run(gctx) })
	g.Go(func() error { return s.runInsight(gctx) })
	if s.analytics != nil {
		g.Go(func() error { return s.analytics.Run(gctx) })
	}
	g.Go(func() error { return s.models.Run(gctx) })
	g.Go(func() error { return s.corrections.Run(gctx) })
	g.Go(func() error { return hc.Run(gctx) })
	g.Go(func() error { s.detect.Preload(); return nil }) // a bounded load, off the start path
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	err = g.Wait()
	log.Info("stopped")
	return err
}

// build builds every component from the config: routing first, whose queues
// the desks show, then the adapters, tickets and the pipeline.
func (s *gateway) build(ctx context.Context, file string) error {
	rc, err := routingConfig(file, s.cfg)
	if err != nil {
		return err
	}
	if err := s.buildAPI(ctx); err != nil {
		return err
	}
	if err := s.buildAnalytics(file, rc); err != nil {
		return err
	}
	if s.detect, err = newDetector(s.cfg); err != nil {
		return err
	}
	s.runtime, err = adapters.NewRuntime(adapters.RuntimeConfig{}, adapters.RuntimeDeps{Bus: s.bus, Store: s.store, Logger: s.log.With("component", "adapters"), Metrics: s.metrics})
	if err != nil {
		return err
	}
	if err := s.buildAdapters(file, deskQueues(rc)); err != nil {
		return err
	}
	if err := errors.Join(s.buildTickets(file), s.buildRouter(rc), s.buildInsight(file)); err != nil {
		return err
	}
	s.warnDesks(rc)
	for _, info := range adapters.List() {
		if info.Address == adapters.AddressPhone {
			s.phoneChannels = append(s.phoneChannels, info.Name)
		}
	}
	s.pipeline, err = pipeline.New(pipeline.Config{
		Desks:         s.desks,
		ReopenWindow:  s.cfg.Conversation.ReopenWindow,
		ReplyFallback: s.cfg.Conversation.ReplyFallback,
		PhoneChannels: s.phoneChannels,
	}, pipeline.Deps{Bus: s.bus, Store: s.store, Logger: s.log.With("component", "pipeline"), Now: clockNow()})
	return err
}

// deskQueues are routing's queues as the desks see them.
func deskQueues(rc routing.Config) []adapters.Queue {
	out := make([]adapters.Queue, 0, len(rc.Queues))
	for _, name := range slices.Sorted(maps.Keys(rc.Queues)) {
		q := rc.Queues[name]
		out = append(out, adapters.Queue{Name: name, Desk: q.Desk, Channel: q.Channel, Default: name == rc.DefaultQueue})
	}
	return out
}

func closeBus(b *bus.Bus, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		log.Warn("bus close", "err", err)
	}
}

// buildAdapters builds every adapter configured under channels; desks get
// routing's queues.
func (s *gateway) buildAdapters(file string, queues []adapters.Queue) error {
	names := make([]string, 0, len(s.cfg.Channels)+1)
	for name := range s.cfg.Channels {
		names = append(names, name)
	}
	if _, ok := s.cfg.Channels["web"]; !ok && file == "" {
		// With no config, the web chat runs with its demo site.
		names = append(names, "web")
	}
	sort.Strings(names)
	s.channels = map[string]bool{}
	for _, name := range names {
		s.channels[name] = true
	}
	var errs []error
	for _, name := range names {
		node := s.cfg.Channels[name]
		info, ok := adapters.Lookup(name)
		if !ok {
			errs = append(errs, fmt.Errorf("channels.%s: %w (omnigate adapters lists them)", name, adapters.ErrUnknownAdapter))
			continue
		}
		deps := adapters.Deps{
			Publisher:     adapters.NewPublisher(s.bus, name).WithClock(clockNow()),
			Routes:        adapters.NewRoutes(s.mux, name),
			Logger:        s.log.With("adapter", name),
			Store:         s.store,
			PublicURL:     s.cfg.HTTP.PublicURL,
			Bus:           s.bus,
			Queues:        queues,
			TranscriptURL: s.api.TranscriptURL,
		}
		a, err := adapters.Build(name, file, &node, deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.runtime.Add(a, info.Kind); err != nil {
			errs = append(errs, err)
		}
		if info.Kind == adapters.Desk {
			s.desks = append(s.desks, name)
		}
	}
	return errors.Join(errs...)
}

// buildTickets builds the ticket service from the tickets section and mounts
// its admin API and inbound tracker hooks under /api/.
func (s *gateway) buildTickets(file string) error {
	tcfg, err := ticketsConfig(file, s.cfg)
	if err != nil {
		return err
	}
	tcfg.AdminToken = cmp.Or(tcfg.AdminToken, s.cfg.HTTP.AdminToken) // docs/api.md
	s.tickets, err = tickets.New(tcfg, tickets.Deps{Bus: s.bus, Store: s.store, Desks: s.desks, Logger: s.log.With("component", "tickets"), Now: clockNow(), Detector: s.detect})
	if err != nil {
		return err
	}
	s.mux.Handle("/api/", s.tickets.Handler())
	return nil
}

// buildRouter builds routing (rules, queues, assignment, SLA timers) from the
// routing section.
func (s *gateway) buildRouter(rc routing.Config) error {
	var err error
	s.models = loadModels(rc.Models, s.log.With("component", "models"))
	if s.corrections, err = corrections.New(corrections.Deps{Bus: s.bus, Store: s.store, Logger: s.log.With("component", "corrections")}); err != nil {
		return err
	}
	s.router, err = routing.New(rc, withModels(s.models, rc, routing.Deps{Bus: s.bus, Store: s.store, Logger: s.log.With("component", "routing"), Clock: testClock, Detector: s.detect}))
	return err
}

// routingConfig decodes the routing section with its env overrides.
func routingConfig(file string, cfg *config.Config) (routing.Config, error) {
	var rc routing.Config
	err := config.DecodeSection(file, &cfg.Routing, config.EnvName("routing"), &rc)
	return rc, err
}

// ticketsConfig decodes the tickets section with its env overrides.
func ticketsConfig(file string, cfg *config.Config) (tickets.Config, error) {
	var tcfg tickets.Config
	err := config.DecodeSection(file, &cfg.Tickets, config.EnvName("tickets"), &tcfg)
	return tcfg, err
}

// healthInterval is how often the health checks run for their gauge and log.
const healthInterval = 15 * time.Second

// newRegistry is the gateway's metrics registry, with the Go runtime's and
// the process's metrics, how b's consumers ride out outages, and their lag,
// redeliveries and dead letters.
func newRegistry(b *bus.Bus) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "omnigate_bus_waiting_deliveries",
			Help: "Messages whose handler waits for an unavailable store, NATS or provider, retried in place (each holds back the messages behind it).",
		}, func() float64 { return float64(b.OutageStats().Waiting) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "omnigate_bus_unavailable_retries_total",
			Help: "Handler attempts that failed because a store, NATS or a provider was unavailable, and were retried in place.",
		}, func() float64 { return float64(b.OutageStats().Retries) }))
	if err := b.RegisterMetrics(reg, bus.MetricsOptions{}); err != nil {
		panic(err) // a new registry holds nothing they could clash with
	}
	return reg
}

// channelOf is the channel label of a request the edge refuses itself: the
// adapter under /channels/<name>/, "api" under /api/v1/, "tickets" under
// the rest of /api/, else "other", so
// that a made-up path cannot add label values.
func (s *gateway) channelOf(r *http.Request) string {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/channels/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		if s.channels[name] {
			return name
		}
	} else if strings.HasPrefix(p, "/api/v1/") {
		return "api"
	} else if strings.HasPrefix(p, "/api/") {
		return "tickets"
	}
	return "other"
}

// displayAddr turns a wildcard listen address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
