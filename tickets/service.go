package tickets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/lang"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/tickets/webhook"
	"github.com/omnigate/omnigate/tickets/zendesk"
)

// Deps is what the service runs on besides its config.
type Deps struct {
	// Bus carries the events; required.
	Bus *bus.Bus
	// Store keeps tickets, counters and indexes; required.
	Store *store.Store
	// Desks are the agent desks (adapter names) that get a "ticket.updated"
	// event on omni.desk.<desk> for every change. Default ["slack"].
	Desks []string
	// Logger is pre-scoped (component=tickets); default: discard.
	Logger *slog.Logger
	// HTTPClient makes the bridges' calls; default: one per bridge with its
	// configured timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Detector tells the language of a customer's message when its channel
	// did not, for notifications; default lang.Default().
	Detector LanguageDetector
}

// Service is the ticket system: the lifecycle in the store, creation from the
// desk's "ticket.create", bridges to trackers, customer notifications, reopening
// by reply, the survey and the admin API. Any number of Services, in one process
// or many, may run on the same bus and store: they share the work, and ticket
// numbers stay unique. All methods are safe for concurrent use.
type Service struct {
	cfg   Config
	bus   *bus.Bus
	st    *store.Store
	repo  *repo
	desks []string
	log   *slog.Logger
	now   func() time.Time
	lang  LanguageDetector

	webhookOut *webhook.Client
	zendesk    *zendesk.Client

	mu      sync.Mutex
	bridges []Bridge
	running bool
	ready   bool
}

// New returns a Service built from cfg (defaults are applied and it is validated
// again) and deps. It builds the configured bridges and does no I/O: Run starts
// the work.
func New(cfg Config, deps Deps) (*Service, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tickets: config: %w", err)
	}
	switch {
	case deps.Bus == nil:
		return nil, errors.New("tickets: deps: no bus")
	case deps.Store == nil:
		return nil, errors.New("tickets: deps: no store")
	}
	desks := slices.Clone(deps.Desks)
	if len(desks) == 0 {
		desks = []string{"slack"}
	}
	for _, d := range desks {
		if !core.ValidChannel(d) {
			return nil, fmt.Errorf("tickets: deps: desk %q is not a channel name", d)
		}
	}
	s := &Service{
		cfg:   cfg,
		bus:   deps.Bus,
		st:    deps.Store,
		repo:  newRepo(deps.Store),
		desks: desks,
		log:   deps.Logger,
		now:   deps.Now,
		lang:  deps.Detector,
	}
	if s.lang == nil {
		s.lang = lang.Default()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Webhook.Outbound() {
		s.webhookOut = webhook.NewClient(cfg.Webhook, deps.HTTPClient)
		s.bridges = append(s.bridges, &webhookBridge{s: s, c: s.webhookOut})
	}
	if cfg.Zendesk.Enabled() {
		s.zendesk = zendesk.NewClient(cfg.Zendesk, deps.HTTPClient)
		s.bridges = append(s.bridges, &zendeskBridge{s: s, c: s.zendesk, cfg: cfg.Zendesk})
	}
	return s, nil
}

// AddBridge adds a bridge to another tracker; call it before Run. Its name must
// be unique and a subject token (letters, digits, '_', '-').
func (s *Service) AddBridge(b Bridge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("tickets: add bridge: already running")
	}
	name := b.Name()
	if !bus.ValidToken(name) {
		return fmt.Errorf("tickets: add bridge: name %q is not letters, digits, '_' or '-'", name)
	}
	for _, o := range s.bridges {
		if o.Name() == name {
			return fmt.Errorf("tickets: add bridge: %q added twice", name)
		}
	}
	s.bridges = append(s.bridges, b)
	return nil
}

// Bridges returns the names of the bridges, in the order they were added.
func (s *Service) Bridges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, len(s.bridges))
	for i, b := range s.bridges {
		names[i] = b.Name()
	}
	return names
}

// Durable consumer names; replicas share them. Their dead letters go to
// omni.dlq.<name> (omni.dlq.tickets-<bridge> for a bridge).
const (
	consumerCreate  = "tickets-create"
	consumerDesk    = "tickets-desk"
	consumerNotify  = "tickets-notify"
	consumerReplies = "tickets-replies"
	consumerBridge  = "tickets-bridge-"
)

// Run starts the consumers and the outbox sweep, and works until ctx is done;
// then it stops them, letting in-flight handlers finish (bounded by the bus's
// ack wait), and returns nil. It returns an error, having started nothing, when a
// consumer cannot be created. Call it once.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("tickets: run: already running")
	}
	s.running = true
	bridges := slices.Clone(s.bridges)
	s.mu.Unlock()

	g := bus.NewGroup(s.bus, s.log)
	// A handler's attempt is bounded by the config (the consumer keeps its
	// message alive meanwhile).
	g.Use(bus.Timeout(s.cfg.Timeouts.Handler))
	ticketEvents := []string{bus.SubjectEvt(event.TicketCreated), bus.SubjectEvt(event.TicketUpdated), bus.SubjectEvt(event.TicketCommented)}
	g.Handle(bus.ConsumerSpec{
		Stream:     bus.StreamEvt,
		Durable:    consumerCreate,
		Filters:    []string{bus.SubjectEvt(event.TicketCreate)},
		DeliverNew: true,
	}, s.handleCreate)
	g.Handle(bus.ConsumerSpec{Stream: bus.StreamEvt, Durable: consumerDesk, Filters: ticketEvents, DeliverNew: true}, s.handleDesk)
	g.Handle(bus.ConsumerSpec{
		Stream:     bus.StreamEvt,
		Durable:    consumerNotify,
		Filters:    ticketEvents[:2],
		DeliverNew: true,
	}, s.handleNotify)
	g.Handle(bus.ConsumerSpec{
		Stream:     bus.StreamConv,
		Durable:    consumerReplies,
		Filters:    []string{bus.RootConv + ".>"},
		DeliverNew: true,
	}, s.handleTranscript)
	for _, b := range bridges {
		g.Handle(bus.ConsumerSpec{
			Stream: bus.StreamEvt, Durable: consumerBridge + b.Name(), Stage: "tickets-" + b.Name(),
			Filters: ticketEvents, DeliverNew: true,
			MaxDeliver: s.cfg.Bridge.MaxDeliver, Backoff: s.cfg.Bridge.Backoff,
		}, s.bridgeHandler(b))
	}
	// The sweep starts once every consumer is up, and says so.
	g.Go(func(ctx context.Context) error {
		s.setReady(true)
		defer s.setReady(false)
		s.log.Info("tickets running", "bridges", s.Bridges(), "desks", s.desks)
		t := time.NewTicker(s.cfg.Timeouts.Sweep)
		defer t.Stop()
		for {
			s.sweep(ctx)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	if err := g.Run(ctx); err != nil {
		return fmt.Errorf("tickets: %w", err)
	}
	return nil
}

func (s *Service) setReady(ready bool) {
	s.mu.Lock()
	s.ready = ready
	s.mu.Unlock()
}

// Ready reports whether Run has its consumers in place and the store answers,
// for /readyz.
func (s *Service) Ready(ctx context.Context) error {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready {
		return errors.New("tickets: not running")
	}
	return s.st.Ping(ctx)
}

// mutation changes a ticket: it returns the events to log (Seq and, when zero,
// At are filled in), or none when nothing changed.
type mutation func(t *Ticket, now time.Time) ([]Event, error)

// mutate applies fn to ticket n with compare-and-set and then publishes what
// changed. An outbox marker is stored first and removed once the events are on
// the bus, so a crash in between leaves the sweep (of any replica) to publish
// them. A publish failure after the change was stored is logged, not returned:
// the change stands, and the sweep publishes it.
func (s *Service) mutate(ctx context.Context, n int64, fn mutation) (*Ticket, []Event, error) {
	now := s.now().UTC()
	mark, err := s.repo.mark(ctx, n, now)
	if err != nil {
		return nil, nil, err
	}
	var recorded []Event
	var fnErr error
	t, err := s.repo.update(ctx, n, func(t *Ticket) error {
		recorded, fnErr = recorded[:0], nil
		evs, err := fn(t, now)
		if err != nil {
			fnErr = err
			return err
		}
		if len(evs) == 0 {
			return store.ErrSkip
		}
		t.UpdatedAt = now
		for _, ev := range evs {
			if ev.At.IsZero() {
				ev.At = now
			}
			ev = t.record(ev)
			if c, ok := ev.Change("status"); ok && c.To == string(StatusSolved) && t.Survey != nil && t.Survey.Seq == 0 {
				t.Survey.Seq = ev.Seq
			}
			recorded = append(recorded, ev)
		}
		return nil
	})
	if err != nil || len(recorded) == 0 {
		if uerr := s.repo.unmark(ctx, mark); uerr != nil {
			s.log.Warn("outbox marker not removed; the sweep will", "ticket", n, "err", uerr)
		}
		if fnErr != nil {
			return nil, nil, fnErr
		}
		if err != nil {
			return nil, nil, err
		}
		return t, nil, nil
	}
	s.finish(ctx, t, recorded, mark)
	return t, recorded, nil
}

// finish runs what follows a stored change: indexes, then the bus events, then
// the marker's removal. What fails is left to the sweep.
func (s *Service) finish(ctx context.Context, t *Ticket, evs []Event, mark string) {
	if err := s.afterChange(ctx, t, evs); err != nil {
		s.log.Warn("ticket changed, publishing left to the sweep", "ticket", t.Number, "err", err)
		return
	}
	if err := s.repo.unmark(ctx, mark); err != nil {
		s.log.Warn("outbox marker not removed; the sweep will", "ticket", t.Number, "err", err)
	}
}

// afterChange updates the indexes the events call for and publishes them.
func (s *Service) afterChange(ctx context.Context, t *Ticket, evs []Event) error {
	relink := false
	for _, ev := range evs {
		switch ev.Action {
		case ActionCreated, ActionLinked:
			relink = true
		case ActionExternal:
			for _, c := range ev.Changes {
				if bridge, ok := strings.CutPrefix(c.Field, "external."); ok && bridge != "" && c.To != "" {
					var n int64
					if _, err := s.repo.links.Update(ctx, extKey(bridge, c.To), &n, 0, func(bool) error {
						n = t.Number
						return nil
					}); err != nil {
						return err
					}
				}
			}
		}
		if c, ok := ev.Change("status"); ok && (c.To == string(StatusClosed) || c.From == string(StatusClosed)) {
			relink = true
		}
	}
	if relink {
		if err := s.ensureLinks(ctx, t); err != nil {
			return err
		}
	}
	for _, ev := range evs {
		if ev.Quiet {
			continue
		}
		if err := s.publishEvent(ctx, t, ev); err != nil {
			return err
		}
	}
	return nil
}

// ensureLinks makes the indexes of conversations and contacts agree with t.
func (s *Service) ensureLinks(ctx context.Context, t *Ticket) error {
	for _, conv := range t.Conversations {
		if err := s.repo.link(ctx, convKey(conv), t.Number); err != nil {
			return err
		}
	}
	if id := t.Requester.ContactID; id != "" {
		var err error
		if t.Status == StatusClosed {
			err = s.repo.unlink(ctx, contactKey(id), t.Number)
		} else {
			err = s.repo.link(ctx, contactKey(id), t.Number)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sweep publishes the changes of outbox markers older than the sweep interval:
// changes whose replica crashed (or lost the bus) between storing and
// publishing. Replicas may sweep the same marker at once: publishes carry
// deduplication ids, and every consumer tolerates a repeat.
func (s *Service) sweep(ctx context.Context) {
	ms, err := s.repo.markers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("outbox sweep", "err", err)
		}
		return
	}
	cutoff := s.now().Add(-s.cfg.Timeouts.Sweep)
	for key, m := range ms {
		if m.Since.After(cutoff) {
			continue
		}
		t, err := s.repo.get(ctx, m.Ticket)
		if errors.Is(err, ErrNotFound) {
			_ = s.repo.unmark(ctx, key)
			continue
		}
		if err != nil {
			s.log.Warn("outbox sweep", "ticket", m.Ticket, "err", err)
			continue
		}
		var evs []Event
		for _, ev := range t.Events {
			if !ev.At.Before(m.Since) {
				evs = append(evs, ev)
			}
		}
		if err := s.ensureLinks(ctx, t); err != nil {
			s.log.Warn("outbox sweep", "ticket", t.Number, "err", err)
			continue
		}
		if err := s.afterChange(ctx, t, evs); err != nil {
			s.log.Warn("outbox sweep", "ticket", t.Number, "err", err)
			continue
		}
		if err := s.repo.unmark(ctx, key); err != nil {
			s.log.Warn("outbox sweep", "ticket", t.Number, "err", err)
			continue
		}
		s.log.Info("published a change a replica left unpublished", "ticket", t.Number, "events", len(evs))
	}
}
