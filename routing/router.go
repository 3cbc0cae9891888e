package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/keylock"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/store"
)

// Deps are what a Router runs on besides its Config.
type Deps struct {
	// Bus and Store are required.
	Bus   *bus.Bus
	Store *store.Store
	// Logger receives the router's logs; message text is never logged above
	// debug. Default: discard.
	Logger *slog.Logger
	// Clock is the router's time. Default: the wall clock.
	Clock Clock
	// Classifier scores customer messages for escalation. Default: the HTTP
	// hook of escalation.classifier when its url is set (falling back to the
	// built-in scorer), else the built-in Scorer.
	Classifier Classifier
	// Intent tells the intent of each opening's first message, for rules
	// and the desk. Default: none (rules with intent never match).
	Intent IntentModel
	// Detector guesses a message's language when its channel did not say.
	// Default: DefaultDetector().
	Detector LanguageDetector
	// ReplicaID names this replica in timer claims. Default: a fresh id.
	ReplicaID string
}

// Durable consumer names and the stage of routing's dead letters.
const (
	// DurableTranscript consumes the transcripts (stream OMNI_CONV).
	DurableTranscript = "routing"
	// DurableEvents consumes agent and conversation events (stream OMNI_EVT).
	DurableEvents = "routing-events"
	// Stage names routing's dead letters: omni.dlq.routing.
	Stage = "routing"
)

// Record buckets routing keeps in the store.
const (
	recordsConv     = "routing_conv"
	recordsTimers   = "routing_timers"
	recordsAgents   = "routing_agents"
	recordsStats    = "routing_stats"
	recordsQueues   = "routing_queues"
	recordsContacts = "routing_contacts"
)

// Router routes conversations: see the package documentation. Any number of
// Routers, in one process or many, may run on the same bus and store; they
// share the work, and each timer fires once.
type Router struct {
	bus      *bus.Bus
	st       *store.Store
	plan     *plan
	log      *slog.Logger
	clock    Clock
	classify Classifier
	intent   IntentModel
	detect   LanguageDetector

	states, agents, stats, queueRecs, contacts *store.Records

	sched   *scheduler
	locks   keylock.Locks // one conversation's handling at a time in this process
	metrics metrics
}

// New returns a Router for cfg, which must have been through SetDefaults
// (config.DecodeSection does that) and is validated here: the error is
// config.Errors with paths below routing. New does no I/O; Run starts the
// router.
func New(cfg Config, deps Deps) (*Router, error) {
	var p config.Problems
	pl := compile(&cfg, &p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if deps.Bus == nil || deps.Store == nil {
		return nil, errors.New("routing: deps: Bus and Store are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = systemClock{}
	}
	if deps.Detector == nil {
		deps.Detector = DefaultDetector()
	}
	if deps.ReplicaID == "" {
		deps.ReplicaID = core.NewID()
	}
	if deps.Classifier == nil {
		deps.Classifier = defaultScorer
		if c := cfg.Escalation.Classifier; c.URL != "" {
			deps.Classifier = &HTTPClassifier{URL: c.URL, Token: c.Token.Value(), Timeout: c.Timeout, Logger: deps.Logger}
		}
	}
	st := deps.Store
	r := &Router{
		bus: deps.Bus, st: st, plan: pl, log: deps.Logger, clock: deps.Clock,
		classify: deps.Classifier, intent: deps.Intent, detect: deps.Detector,
		states:    st.Records(recordsConv),
		agents:    st.Records(recordsAgents),
		stats:     st.Records(recordsStats),
		queueRecs: st.Records(recordsQueues),
		contacts:  st.Records(recordsContacts),
	}
	r.sched = newScheduler(st.Records(recordsTimers), deps.Clock, deps.ReplicaID, deps.Logger.With("part", "timers"), cfg.TimerScan, r.fire)
	return r, nil
}

// Run consumes the transcripts, the commands routing executes and the events
// it follows, fires timers and drains backlogs until ctx is done; then it
// stops its consumers, letting in-flight handlers finish (bounded by the bus's
// ack wait), and returns nil. It returns an error, having started nothing,
// when a consumer cannot be created. Call it once.
func (r *Router) Run(ctx context.Context) error {
	g := bus.NewGroup(r.bus, r.log)
	g.Handle(bus.ConsumerSpec{
		Stream:      bus.StreamConv,
		Durable:     DurableTranscript,
		Filters:     []string{bus.RootConv + ".>"},
		Stage:       Stage,
		Concurrency: r.plan.cfg.Workers,
		// A new deployment starts at new messages, not at 90 days of history.
		DeliverNew: true,
	}, r.handleTranscript)
	g.Handle(bus.ConsumerSpec{
		Stream:  bus.StreamEvt,
		Durable: DurableEvents,
		Filters: []string{
			bus.SubjectEvt(event.AgentAway), bus.SubjectEvt(event.AgentBack),
			bus.SubjectEvt(event.ConversationClosed), bus.SubjectEvt(event.ConversationClaim),
			bus.SubjectEvt(event.ConversationTransfer),
		},
		Stage:      Stage,
		DeliverNew: true,
	}, r.handleEvent)
	g.Go(r.sched.run)
	g.Go(r.drainLoop)
	g.Go(r.availabilityLoop)
	r.log.Info("routing running", "queues", len(r.plan.queues), "rules", len(r.plan.rules), "workers", r.plan.cfg.Workers)
	if err := g.Run(ctx); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	r.log.Info("routing stopped")
	return nil
}

// drainLoop drains every backlog once per timer scan, so a conversation is
// assigned even when the event that freed an agent was missed.
func (r *Router) drainLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.After(r.plan.cfg.TimerScan):
		}
		r.drainQueues(ctx, slices.Sorted(func(yield func(string) bool) {
			for name := range r.plan.queues {
				if !yield(name) {
					return
				}
			}
		})...)
	}
}

// Metrics returns what this Router did since it was built.
func (r *Router) Metrics() Metrics {
	m := &r.metrics
	return Metrics{
		Routed: m.routed.Load(), Assigned: m.assigned.Load(), AutoReplies: m.autoReplies.Load(),
		Acks: m.acks.Load(), OutOfHours: m.ooh.Load(), Breaches: m.breaches.Load(),
		TimersFired: r.sched.fired.Load(), TimersCheckedAt: time.Unix(0, r.sched.checked.Load()),
	}
}

// PendingTimers lists the timers not fired yet, soonest first.
func (r *Router) PendingTimers(ctx context.Context) ([]Timer, error) {
	ts, err := r.sched.pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("routing: pending timers: %w", err)
	}
	return ts, nil
}

// handleTranscript handles one transcript entry: a customer message or an
// agent reply. Auto-replies (meta auto) are routing's own and skipped.
func (r *Router) handleTranscript(ctx context.Context, d *bus.Delivery) error {
	ctx, span := tracer.Start(ctx, "routing decide")
	defer span.End()
	m, err := d.Message()
	if err != nil {
		return err
	}
	if m.Kind != core.KindMessage || m.ConversationID == "" || m.Meta[event.MetaAuto] != "" {
		return nil
	}
	at := m.ReceivedAt
	if at.IsZero() {
		at = d.Published
	}
	if now := r.clock.Now(); at.IsZero() || at.After(now) {
		at = now
	}
	seq := d.StreamSeq
	if m.Direction == core.Outbound {
		_, err = r.process(ctx, m.ConversationID, func(conv *store.Conversation, s *convState) error {
			if conv.State != store.StateOpen || !s.opening(conv, seq) {
				return store.ErrSkip
			}
			waited := s.observeOutbound(seq, at)
			if waited > 0 && s.Routed {
				s.addEffects(effect{ID: "sample:" + conv.ID + ":" + utoa(seq), Kind: kindSample, Queue: s.Queue, Wait: waited, At: at})
			}
			return nil
		})
		return err
	}
	f, err := r.facts(ctx, m)
	if err != nil {
		return err
	}
	_, err = r.process(ctx, m.ConversationID, func(conv *store.Conversation, s *convState) error {
		if conv.State != store.StateOpen || !s.opening(conv, seq) {
			return store.ErrSkip
		}
		f.Returning = conv.Previous != "" || conv.Opens > 1
		f.ConversationTags = conv.Tags
		return r.inbound(conv, s, f, seq, at)
	})
	if err != nil {
		return fmt.Errorf("message %s: %w", m.ID, err)
	}
	return nil
}

// facts gathers what the rules look at for a customer message.
func (r *Router) facts(ctx context.Context, m *core.Message) (facts, error) {
	f := facts{Message: m, Now: r.clock.Now(), Language: m.Language}
	if f.Language == "" {
		f.Language = r.detect.Detect(m.Text)
	}
	if m.ContactID != "" {
		c, err := r.st.Contact(ctx, m.ContactID)
		switch {
		case err == nil:
			f.Contact = c
		case !errors.Is(err, store.ErrNotFound):
			return f, fmt.Errorf("load contact: %w", err)
		}
	}
	if m.Text != "" {
		c, err := r.classify.Classify(ctx, m.Text, f.Language)
		if err != nil {
			r.log.Warn("classifier failed, using the built-in scorer", "msg_id", m.ID, "err", err)
			c = defaultScorer.Score(m.Text, f.Language)
		}
		f.Score = c
	}
	if r.intent != nil && m.Text != "" {
		f.Intent, f.IntentConfidence = r.intent.Intent(m.Text, f.Language)
	}
	return f, nil
}

// inbound applies a customer message to s: routing on the opening's first
// message, escalation on any, waiting, and the out-of-hours reply.
func (r *Router) inbound(conv *store.Conversation, s *convState, f facts, seq uint64, at time.Time) error {
	pl := r.plan
	now := f.Now
	s.observeInbound(seq, at)
	if f.Score.Score > s.Score {
		s.Score, s.Labels = f.Score.Score, f.Score.Labels
	}
	if s.Language == "" {
		s.Language = f.Language
	}
	if !s.Routed {
		d, _ := pl.decide(f)
		prev := s.Queue
		s.Routed, s.Rules = true, d.Rules
		s.Intent, s.IntentConfidence = f.Intent, f.IntentConfidence
		if f.Intent != "" && f.Message != nil {
			s.intentText = core.Truncate(f.Message.Text, maxIntentText)
		}
		s.Queue, s.Priority, s.Tags, s.Skills, s.Escalated = d.Queue, d.Priority, d.Tags, d.Skills, d.Escalated
		if s.Assignee != "" && !pl.queue(s.Queue).member(s.Assignee) && pl.agents[s.Assignee].ID == "" {
			s.Assignee = "" // reopened into a queue the agent is not in
		}
		if err := r.routed(conv, s, event.ReasonRules, prev, "", now); err != nil {
			return err
		}
		if len(d.Tags) > 0 {
			// Tags are the conversation's, the pipeline's to write: ask it.
			es, err := pl.tagEffects(conv, d.Tags, "tag:"+conv.ID+":"+itoa(s.Opens), now)
			if err != nil {
				return err
			}
			s.addEffects(es...)
		}
		if d.AutoReply != "" && !s.AutoReplied {
			text, lang, err := pl.render(d.AutoReply, s.Language, r.replyData(conv, s, now, 0))
			if err != nil {
				return bus.Permanent(err)
			}
			es, err := pl.replyEffects(conv, s, d.AutoReply, kindAutoReply, "auto:"+conv.ID+":"+itoa(s.Opens), text, lang, now, nil)
			if err != nil {
				return err
			}
			s.addEffects(es...)
			s.AutoReplied = true
		}
		if d.Ticket {
			meta := map[string]string{
				event.MetaRule:     strings.Join(d.Rules, ","),
				event.MetaBy:       event.ByRouting,
				event.MetaPriority: s.Priority,
			}
			if f.Message != nil && f.Message.Text != "" {
				meta["subject"] = truncateSubject(f.Message.Text)
			}
			es, err := pl.eventEffects(conv, s.Queue, event.TicketCreate, kindTicket, "ticket:"+conv.ID+":"+itoa(s.Opens), meta, now, false, true)
			if err != nil {
				return err
			}
			s.addEffects(es...)
		}
	} else {
		d := Decision{Queue: s.Queue, Priority: s.Priority, Tags: s.Tags}
		if pl.escalate(&d, f.Score) {
			prev := s.Queue
			s.Priority, s.Tags, s.Escalated = d.Priority, d.Tags, true
			if d.Queue != s.Queue {
				s.Queue = d.Queue
				if s.Assignee != "" && !pl.queue(d.Queue).member(s.Assignee) {
					s.Assignee = ""
				}
			} else {
				prev = ""
			}
			if err := r.routed(conv, s, event.ReasonEscalation, prev, "", now); err != nil {
				return err
			}
		}
	}
	q := pl.queue(s.Queue)
	if q.hours != nil && !q.open(now) && *q.OutOfHoursReply && s.waiting() {
		next, ok := q.hours.NextOpen(now)
		if ok && s.OOHUntil != next.Unix() {
			data := r.replyData(conv, s, now, 0)
			data.NextOpen = humanTime(next, now, s.Language)
			text, lang, err := pl.render(q.OutOfHoursTemplate, s.Language, data)
			if err != nil {
				return bus.Permanent(err)
			}
			es, err := pl.replyEffects(conv, s, AutoOutOfHours, kindOOH, "ooh:"+conv.ID+":"+strconv.FormatInt(next.Unix(), 10), text, lang, now, nil)
			if err != nil {
				return err
			}
			s.addEffects(es...)
			s.OOHUntil = next.Unix()
		}
		if ok {
			s.OOHEpoch = s.WaitEpoch
		}
	}
	return nil
}

// routed records a routing change of s and the desk event saying so.
// agent, for a transfer, is the agent who asked for it.
func (r *Router) routed(conv *store.Conversation, s *convState, reason, previous, agent string, now time.Time) error {
	s.RouteRev++
	if previous == s.Queue {
		previous = ""
	}
	if previous != "" {
		// It waits in the new queue's backlog now; the old entry is dropped when
		// that backlog is drained.
		s.Backlogged = false
	}
	// The rules' routing carries the text its intent was told from, which the
	// desk sends back with an agent's correction of the intent.
	text := ""
	if reason == event.ReasonRules {
		text = s.intentText
	}
	es, err := r.plan.textEventEffects(conv, s.Queue, event.ConversationRouted, kindRouted,
		"routed:"+conv.ID+":"+itoa(s.Opens)+":"+itoa(s.RouteRev), text, routedMeta(s, reason, previous, agent), now, true, true)
	if err != nil {
		return err
	}
	s.addEffects(es...)
	return nil
}

// replyData fills what auto-reply templates see.
func (r *Router) replyData(conv *store.Conversation, s *convState, now time.Time, wait time.Duration) replyData {
	q := r.plan.queue(s.Queue)
	d := replyData{Queue: q.name, Channel: cmp.Or(conv.LastChannel, conv.Channel)}
	if wait > 0 {
		d.Wait = humanWait(wait, s.Language)
	}
	if q.hours != nil {
		if next, ok := q.hours.NextOpen(now); ok {
			d.NextOpen = humanTime(next, now, s.Language)
		}
	}
	return d
}

// process runs fn on the routing state of conversation id with
// compare-and-set, then brings everything else in line with the state:
// the conversation's queue, priority and assignee, the agent's slot, the
// backlog, the timers and the outbox. fn may return store.ErrSkip to change
// nothing; nil fn only reconciles. It returns the state afterwards, nil when
// the conversation does not exist. Calls for one conversation take turns in
// this process.
func (r *Router) process(ctx context.Context, id string, fn func(conv *store.Conversation, s *convState) error) (*convState, error) {
	if !bus.ValidToken(id) {
		return nil, bus.Permanent(fmt.Errorf("%q is not a conversation id", id))
	}
	defer r.locks.Lock(id)()
	conv, err := r.st.Conversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := r.update(ctx, conv, func(s *convState) error {
		if conv.State != store.StateOpen && !s.Closed {
			s.Closed = true
			return nil
		}
		if conv.State == store.StateOpen && s.Closed && conv.Opens > s.Opens {
			s.opening(conv, 0) // reopened: whatever comes now is of the new opening
		}
		if fn == nil {
			return store.ErrSkip
		}
		return fn(conv, s)
	})
	if err != nil {
		return nil, fmt.Errorf("routing state: %w", err)
	}
	if err := r.reconcile(ctx, conv, &s); err != nil {
		return &s, err
	}
	return &s, nil
}

// update changes the stored state of conv with fn and returns it. fn sees
// the conversation's queue, priority and assignee in s (as a pending change
// left them, else as conv has them); what it changes of them becomes the
// pending change, which applyPending writes to the conversation.
func (r *Router) update(ctx context.Context, conv *store.Conversation, fn func(s *convState) error) (convState, error) {
	var s convState
	_, err := r.states.Update(ctx, conv.ID, &s, stateTTL, func(bool) error {
		if s.Pending == nil && conv.RoutingRev < s.RoutingRev {
			// Another replica wrote a newer change to the conversation since
			// this copy was read: see that one, not ours.
			fresh, err := r.st.Conversation(ctx, conv.ID)
			if err != nil {
				return err
			}
			*conv = *fresh
		}
		s.view(conv)
		before := s.routing()
		if err := fn(&s); err != nil {
			return err
		}
		s.stage(before)
		return nil
	})
	return s, err
}

// state reads the stored state of conversation id, with its view of the
// conversation's routing; ok is false when either does not exist.
func (r *Router) state(ctx context.Context, id string) (s convState, ok bool, err error) {
	conv, err := r.st.Conversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if _, err := r.states.Get(ctx, id, &s); errors.Is(err, store.ErrNotFound) {
		return s, false, nil
	} else if err != nil {
		return s, false, err
	}
	s.view(conv)
	return s, true, nil
}

// reconcile makes the world agree with s; every step is safe to repeat.
func (r *Router) reconcile(ctx context.Context, conv *store.Conversation, s *convState) error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.Closed {
		keep(r.applyPending(ctx, conv, s)) // a change decided before the close
		keep(r.settleClosed(ctx, conv, s))
		keep(r.flush(ctx, conv, s))
		return errors.Join(errs...)
	}
	// The conversation shows the assignee before the agent's slot moves, so
	// that nobody prunes the new slot as another agent's.
	keep(r.applyPending(ctx, conv, s))
	if s.Routed {
		keep(r.settleAssignee(ctx, conv, s))
		q := r.plan.queue(s.Queue)
		if s.Assignee == "" && q.Strategy != StrategyManual {
			keep(r.assign(ctx, conv, s, q))
		}
	}
	keep(r.applyPending(ctx, conv, s))
	keep(r.settleTimers(ctx, conv, s))
	keep(r.flush(ctx, conv, s))
	return errors.Join(errs...)
}

// applyPending writes the pending change of queue, priority and assignee to
// the conversation, unless a newer one got there first, and forgets it.
func (r *Router) applyPending(ctx context.Context, conv *store.Conversation, s *convState) error {
	p := s.Pending
	if p == nil {
		return nil
	}
	c, err := r.st.SetRouting(ctx, conv.ID, func(c store.Conversation, rt *store.Routing) error {
		if c.RoutingRev >= p.Rev {
			return store.ErrSkip
		}
		*rt = *p
		return nil
	})
	if err != nil {
		return fmt.Errorf("update conversation: %w", err)
	}
	*conv = *c
	st, err := r.update(ctx, conv, func(st *convState) error {
		if st.Pending == nil || st.Pending.Rev != p.Rev {
			return store.ErrSkip // a newer change: the next reconcile writes it
		}
		st.Pending = nil
		return nil
	})
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// settleAssignee moves the capacity slot to the current assignee.
func (r *Router) settleAssignee(ctx context.Context, conv *store.Conversation, s *convState) error {
	if s.Reserved == s.Assignee {
		return nil
	}
	if s.Reserved != "" {
		if err := r.release(ctx, s.Reserved, conv.ID); err != nil {
			return err
		}
	}
	if s.Assignee != "" {
		if _, err := r.reserve(ctx, s.Assignee, conv.ID, true); err != nil {
			return err
		}
	}
	assignee := s.Assignee
	st, err := r.update(ctx, conv, func(st *convState) error {
		if st.Assignee != assignee {
			return store.ErrSkip // changed meanwhile: the next reconcile settles it
		}
		st.Reserved = st.Assignee
		return nil
	})
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// assign picks an agent of q for the conversation by the queue's strategy,
// takes the agent's slot, and records the assignment; with nobody available
// the conversation joins the queue's backlog.
func (r *Router) assign(ctx context.Context, conv *store.Conversation, s *convState, q *queuePlan) error {
	cands, strategy, err := r.candidates(ctx, conv, s, q, q.Strategy)
	if err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	now := r.clock.Now()
	for _, a := range cands {
		ok, err := r.reserve(ctx, a, conv.ID, false)
		if err != nil {
			return fmt.Errorf("assign: %w", err)
		}
		if !ok {
			continue
		}
		by := strategy
		wasBacklogged := s.Backlogged
		// The state decides: an agent who claimed it meanwhile keeps it.
		st, err := r.update(ctx, conv, func(st *convState) error {
			if st.Assignee != "" || st.Closed {
				return store.ErrSkip
			}
			st.Assignee, st.Reserved, st.Backlogged = a, a, false
			st.AssignRev++
			meta := map[string]string{event.MetaAssignee: a, event.MetaStrategy: by, event.MetaPriority: st.Priority}
			es, err := r.plan.eventEffects(conv, st.Queue, event.ConversationAssigned, kindAssigned,
				"assigned:"+conv.ID+":"+itoa(st.Opens)+":"+itoa(st.AssignRev), meta, now, true, true)
			if err != nil {
				return err
			}
			st.addEffects(es...)
			return nil
		})
		if err != nil {
			_ = r.release(ctx, a, conv.ID)
			return fmt.Errorf("assign: %w", err)
		}
		*s = st
		if s.Assignee != a {
			_ = r.release(ctx, a, conv.ID)
			return nil
		}
		r.log.Debug("assigned", "conversation", conv.ID, "queue", q.name, "agent", a, "strategy", by)
		var cr contactRecord
		if _, err := r.contacts.Update(ctx, conv.ContactID, &cr, contactTTL, func(bool) error {
			cr.Agent, cr.At = a, now.UTC()
			return nil
		}); err != nil {
			r.log.Warn("last agent of contact not recorded", "contact", conv.ContactID, "err", err)
		}
		if wasBacklogged {
			if err := r.backlogRemove(ctx, q.name, conv.ID); err != nil {
				r.log.Warn("backlog not cleaned", "queue", q.name, "err", err)
			}
		}
		return nil
	}
	if s.Backlogged || len(q.Agents) == 0 || strategy == StrategyManual {
		return nil // manual: agents claim it from the desk
	}
	if err := r.backlogAdd(ctx, q.name, conv.ID, priorityRank(s.Priority), cmp.Or(s.WaitSince, now)); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	st, err := r.update(ctx, conv, func(st *convState) error {
		if st.Backlogged {
			return store.ErrSkip
		}
		st.Backlogged = true
		return nil
	})
	if err != nil {
		return err
	}
	*s = st
	r.log.Debug("no agent available, waiting in backlog", "conversation", conv.ID, "queue", q.name)
	return nil
}

// settleTimers arms the timers s needs and cancels the others.
func (r *Router) settleTimers(ctx context.Context, conv *store.Conversation, s *convState) error {
	want := r.plan.desiredTimers(conv.ID, s)
	if sameTimers(s.Timers, want) {
		return nil
	}
	for id := range s.Timers {
		if _, ok := want[id]; !ok {
			if err := r.sched.cancel(ctx, id); err != nil {
				return err
			}
		}
	}
	for id, t := range want {
		if d, ok := s.Timers[id]; ok && d.Equal(t.Due) {
			continue
		}
		if err := r.sched.arm(ctx, id, t); err != nil {
			return err
		}
	}
	dues := timerDues(want)
	st, err := r.update(ctx, conv, func(st *convState) error {
		st.Timers = dues
		return nil
	})
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// settleClosed cancels the timers of a closed conversation, frees its agent's
// slot and takes it out of the backlog.
func (r *Router) settleClosed(ctx context.Context, conv *store.Conversation, s *convState) error {
	if len(s.Timers) == 0 && s.Reserved == "" && !s.Backlogged {
		return nil
	}
	for id := range s.Timers {
		if err := r.sched.cancel(ctx, id); err != nil {
			return err
		}
	}
	if err := r.release(ctx, s.Reserved, conv.ID); err != nil {
		return err
	}
	if s.Backlogged {
		if err := r.backlogRemove(ctx, r.plan.queue(s.Queue).name, conv.ID); err != nil {
			return err
		}
	}
	st, err := r.update(ctx, conv, func(st *convState) error {
		st.Timers, st.Reserved, st.Backlogged = nil, "", false
		return nil
	})
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// fire is the scheduler's callback: one timer came due.
func (r *Router) fire(ctx context.Context, id string, t timerRecord) error {
	now := r.clock.Now()
	var wait time.Duration
	if t.Kind == TimerAck {
		if s, ok, err := r.state(ctx, t.Conversation); err == nil && ok {
			wait = r.expectedWait(ctx, s.Queue, now)
		}
	}
	_, err := r.process(ctx, t.Conversation, func(conv *store.Conversation, s *convState) error {
		if conv.State != store.StateOpen || s.Opens != t.Opens || !s.waiting() {
			return store.ErrSkip
		}
		switch t.Kind {
		case TimerAck:
			return r.fireAck(conv, s, t, now, wait)
		case TimerFirstResponse, TimerNextResponse:
			return r.fireBreach(conv, s, t, now)
		}
		return store.ErrSkip
	})
	if err != nil {
		return fmt.Errorf("fire %s: %w", id, err)
	}
	return nil
}

// fireAck acknowledges a customer still waiting for an agent.
func (r *Router) fireAck(conv *store.Conversation, s *convState, t timerRecord, now time.Time, wait time.Duration) error {
	if s.WaitEpoch != t.Epoch || s.AckEpoch == t.Epoch || s.OOHEpoch == t.Epoch {
		return store.ErrSkip
	}
	s.AckEpoch = t.Epoch
	q := r.plan.queue(s.Queue)
	if !q.open(now) {
		return nil // closed: the out-of-hours reply speaks for the queue
	}
	remaining := max(wait-now.Sub(s.WaitSince), time.Minute)
	data := r.replyData(conv, s, now, remaining)
	text, lang, err := r.plan.render(q.AckTemplate, s.Language, data)
	if err != nil {
		return bus.Permanent(err)
	}
	// The wait announced goes with it, for the desks' {{queue.expected_wait}}.
	es, err := r.plan.replyEffects(conv, s, AutoAck, kindAck, "ack:"+conv.ID+":"+itoa(s.Opens)+":"+utoa(t.Epoch), text, lang, now,
		map[string]string{event.MetaExpectedWait: data.Wait}, q.AckQuickReplies...)
	if err != nil {
		return err
	}
	s.addEffects(es...)
	return nil
}

// fireBreach escalates a conversation whose response target passed.
func (r *Router) fireBreach(conv *store.Conversation, s *convState, t timerRecord, now time.Time) error {
	sla := TimerFirstResponse
	start := s.FirstWait
	switch {
	case t.Kind == TimerFirstResponse && !s.Responded && !s.FirstBreached:
		s.FirstBreached = true
	case t.Kind == TimerNextResponse && s.Responded && s.WaitEpoch == t.Epoch && s.NextBreached != t.Epoch:
		s.NextBreached = t.Epoch
		sla, start = TimerNextResponse, s.WaitSince
	default:
		return store.ErrSkip
	}
	q := r.plan.queue(s.Queue)
	target := q.targets(s.Priority).FirstResponse
	if sla == TimerNextResponse {
		target = q.targets(s.Priority).NextResponse
	}
	key := "sla:" + sla + ":" + conv.ID + ":" + itoa(s.Opens) + ":" + utoa(t.Epoch)
	meta := map[string]string{
		event.MetaSLA:      sla,
		event.MetaTarget:   target.String(),
		event.MetaWaited:   now.Sub(start).Round(time.Second).String(),
		event.MetaMention:  q.SLA.Mention,
		event.MetaOverflow: q.SLA.Overflow,
		event.MetaAssignee: s.Assignee,
		event.MetaPriority: s.Priority,
	}
	es, err := r.plan.eventEffects(conv, s.Queue, event.SLABreached, kindBreach, key, meta, now, true, true)
	if err != nil {
		return err
	}
	s.addEffects(es...)
	if o := q.SLA.Overflow; o != "" && o != s.Queue {
		prev := s.Queue
		s.Queue = o
		if s.Assignee != "" && !r.plan.queue(o).member(s.Assignee) {
			s.Assignee = ""
		}
		if err := r.routed(conv, s, event.ReasonSLABreach, prev, "", now); err != nil {
			return err
		}
	}
	r.log.Info("sla breached", "conversation", conv.ID, "sla", sla, "queue", q.name, "overflow", q.SLA.Overflow)
	return nil
}

// handleEvent handles agent availability and conversation events.
func (r *Router) handleEvent(ctx context.Context, d *bus.Delivery) error {
	m, err := d.Message()
	if err != nil {
		return err
	}
	at := m.ReceivedAt
	if at.IsZero() {
		at = d.Published
	}
	switch m.Type {
	case event.AgentAway, event.AgentBack:
		agent := cmp.Or(m.Meta[event.MetaAgent], string(m.From))
		if _, err := core.ParseIdentity(agent); err != nil {
			return bus.Permanent(fmt.Errorf("%s without an agent identity", m.Type))
		}
		back := m.Type == event.AgentBack
		changed, err := r.applyAvailability(ctx, agent, back, at)
		if err != nil {
			return err
		}
		if changed && back {
			r.drainQueues(ctx, r.plan.queuesOf(agent)...)
		}
		return nil
	case event.ConversationClosed:
		s, err := r.process(ctx, m.ConversationID, nil)
		if err != nil || s == nil {
			return err
		}
		// The agent's slot is free: someone waiting may have it.
		queues := []string{r.plan.queue(s.Queue).name}
		if s.Assignee != "" {
			queues = append(queues, r.plan.queuesOf(s.Assignee)...)
		}
		slices.Sort(queues)
		r.drainQueues(ctx, slices.Compact(queues)...)
		return nil
	case event.ConversationClaim:
		agent := cmp.Or(m.Meta[event.MetaAssignee], string(m.From))
		if _, err := core.ParseIdentity(agent); err != nil {
			return r.reject(ctx, m, "no agent to assign: "+err.Error())
		}
		closed := false
		_, err := r.process(ctx, m.ConversationID, func(conv *store.Conversation, s *convState) error {
			closed = conv.State != store.StateOpen
			if s.Assignee == agent || closed || !s.command(m.ID) {
				return store.ErrSkip
			}
			s.Assignee = agent
			s.AssignRev++
			// by names the desk the agent claimed it on.
			meta := map[string]string{event.MetaAssignee: agent, event.MetaPriority: s.Priority, event.MetaBy: m.Channel}
			es, err := r.plan.eventEffects(conv, s.Queue, event.ConversationAssigned, kindAssigned,
				"assigned:"+conv.ID+":"+itoa(s.Opens)+":"+itoa(s.AssignRev), meta, at, true, true)
			if err != nil {
				return err
			}
			s.addEffects(es...)
			return nil
		})
		if err == nil && closed {
			return r.reject(ctx, m, "the conversation is closed")
		}
		if err == nil && m.ContactID != "" {
			var cr contactRecord
			_, _ = r.contacts.Update(ctx, m.ContactID, &cr, contactTTL, func(bool) error {
				cr.Agent, cr.At = agent, at.UTC()
				return nil
			})
		}
		return err
	case event.ConversationTransfer:
		queue := m.Meta[event.MetaQueue]
		if _, ok := r.plan.queues[queue]; !ok {
			return r.reject(ctx, m, fmt.Sprintf("there is no queue %q", queue))
		}
		closed := false
		_, err := r.process(ctx, m.ConversationID, func(conv *store.Conversation, s *convState) error {
			closed = conv.State != store.StateOpen
			if s.Queue == queue || closed || !s.command(m.ID) {
				return store.ErrSkip
			}
			prev := s.Queue
			s.Queue, s.Routed = queue, true
			if s.Priority == "" {
				s.Priority = r.plan.cfg.DefaultPriority
			}
			if s.Assignee != "" && !r.plan.queue(queue).member(s.Assignee) {
				s.Assignee = ""
			}
			if s.Backlogged {
				s.Backlogged = false // re-queued below, in the new queue
			}
			return r.routed(conv, s, event.ReasonTransfer, prev, string(m.From), at)
		})
		if err == nil && closed {
			return r.reject(ctx, m, "the conversation is closed")
		}
		return err
	}
	return nil
}

// reject answers command m on the desk it came from with command.rejected.
func (r *Router) reject(ctx context.Context, m *core.Message, reason string) error {
	if !bus.ValidToken(m.Channel) {
		return bus.Permanent(fmt.Errorf("%s: %s", m.Type, reason))
	}
	ev := core.NewMessage(core.KindEvent, core.Inbound, m.Channel)
	ev.ID = detID("rejected:"+m.ID, r.clock.Now())
	ev.Type = event.CommandRejected
	ev.From, ev.ReplyTo = m.From, m.ID
	ev.ContactID, ev.ConversationID = m.ContactID, m.ConversationID
	ev.Meta = map[string]string{event.MetaCommand: m.Type, event.MetaReason: reason, event.MetaBy: event.ByRouting}
	if _, err := r.bus.PublishMessage(ctx, bus.SubjectDesk(m.Channel), ev, bus.WithMsgID("desk:"+m.Channel+":rejected:"+m.ID)); err != nil {
		return fmt.Errorf("%s: reject: %w", m.Type, err)
	}
	r.log.Debug("command rejected", "command", m.Type, "conversation", m.ConversationID, "reason", reason)
	return nil
}

// truncateSubject makes a ticket subject of a customer's first message: its
// first line, at most 120 characters.
func truncateSubject(text string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	if r := []rune(line); len(r) > 120 {
		line = string(r[:120]) + "…"
	}
	return line
}
