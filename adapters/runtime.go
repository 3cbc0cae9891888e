package adapters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// sentTTL is the default RuntimeConfig.SentTTL.
const sentTTL = 7 * 24 * time.Hour

// afterSendTimeout bounds what the runtime does after a Send returned.
const afterSendTimeout = 5 * time.Second

// Concurrent is an optional interface: an adapter whose provider keeps order
// per recipient itself, or that does not care, may ask for more than one Send
// at a time. Without it, Send calls of one adapter are sequential, which keeps
// an agent's replies in the order they were written.
type Concurrent interface {
	Concurrency() int
}

// Reconciler is an optional interface of channel adapters whose provider can
// be asked whether it already took a message. Before each Send the runtime
// records that it is about to send; when it finds that record on a later
// attempt (the process died mid-send, the provider's answer was lost or came
// too late), the earlier attempt may have reached the customer, and the
// runtime asks Sent before sending again. Without a Reconciler it sends
// again, and says so.
type Reconciler interface {
	// Sent looks for m among what the provider took since since (the first
	// attempt began; allow for clock skew). It returns the receipt and true
	// when found, false when the provider has no such message, and an error
	// when it could not tell (retried like Send's).
	Sent(ctx context.Context, m *core.Message, since time.Time) (Receipt, bool, error)
}

// sendIntent is what the runtime records before a Send: when the first
// attempt began.
type sendIntent struct {
	At time.Time `json:"at"`
}

// EventHandler is an optional interface, for desks above all: an adapter that
// wants to hear of lifecycle events (a reply an agent wrote was delivered or
// failed, a conversation closed) lists their types, and the runtime calls
// HandleEvent for every event of those types published on omni.evt.<type>.
//
// The runtime calls EventTypes once, before Run. The events come from one
// durable consumer, "events-<name>" on stream OMNI_EVT, shared by the
// replicas (each event goes to one of them); it starts with the events
// published after it was first created. HandleEvent may be called while Run
// and Send are running, one event at a time. Its error decides what happens
// as Send's does: nil acknowledges, Permanent dead-letters at once (stage
// "events-<name>"), RetryAfter and any other error redeliver with backoff
// until the last attempt, which dead-letters.
type EventHandler interface {
	// EventTypes are the event types to receive, e.g. "delivery.delivered";
	// each dot-separated part letters, digits, '_' or '-'.
	EventTypes() []string
	// HandleEvent handles one event.
	HandleEvent(ctx context.Context, m *core.Message) error
}

// Runtime runs adapters: each one's Run, restarted with backoff when it fails,
// and a durable consumer that calls Send for each message on its subject, with
// retries, dead letters, idempotency and delivery events; for an EventHandler
// also a consumer of the events it asks for.
type Runtime struct {
	bus   *bus.Bus
	store *store.Store
	log   *slog.Logger
	cfg   RuntimeConfig
	// metrics are nil without RuntimeDeps.Metrics.
	metrics *runtimeMetrics

	mu      sync.Mutex
	entries map[string]*running
}

// RuntimeConfig tunes a Runtime. The zero value is usable.
type RuntimeConfig struct {
	// SentTTL is how long a sent message is remembered, so that a redelivery
	// does not send it again; far longer than any redelivery takes. Default 7
	// days.
	SentTTL time.Duration
}

// RuntimeDeps are what a Runtime runs on.
type RuntimeDeps struct {
	// Bus and Store are required; the store remembers what was sent.
	Bus   *bus.Bus
	Store *store.Store
	// Logger receives the runtime's logs. Default: discard.
	Logger *slog.Logger
	// Metrics, when set, gets the runtime's metrics: send latency and
	// failures by adapter, and every adapter's readiness.
	Metrics prometheus.Registerer
}

type running struct {
	a    Adapter
	kind Kind
	// format is how the channel shows text (its registered Info); replies
	// are rendered in it before Send.
	format Format

	mu  sync.Mutex
	err error // why it is not ready; nil once Run is up
	// broken is a fault of the adapter no restart fixes (an invalid event
	// type): /readyz shows it even while Run is up.
	broken error
}

func (e *running) setErr(err error) {
	e.mu.Lock()
	e.err = err
	e.mu.Unlock()
}

// NewRuntime returns a Runtime for cfg on deps; Add the adapters, then Run.
func NewRuntime(cfg RuntimeConfig, deps RuntimeDeps) (*Runtime, error) {
	if deps.Bus == nil || deps.Store == nil {
		return nil, errors.New("adapters: runtime: deps: Bus and Store are required")
	}
	if cfg.SentTTL <= 0 {
		cfg.SentTTL = sentTTL
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{bus: deps.Bus, store: deps.Store, log: log, cfg: cfg, entries: map[string]*running{}}
	if deps.Metrics != nil {
		m, err := newRuntimeMetrics(deps.Metrics, r)
		if err != nil {
			return nil, err
		}
		r.metrics = m
	}
	return r, nil
}

// Add registers a built adapter to be run by Run. Call it before Run.
func (r *Runtime) Add(a Adapter, kind Kind) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.entries[a.Name()]; dup {
		return fmt.Errorf("adapters: %q added twice", a.Name())
	}
	format := FormatPlain
	if info, ok := Lookup(a.Name()); ok {
		format = info.Format
	}
	r.entries[a.Name()] = &running{a: a, kind: kind, format: format, err: errors.New("not started")}
	return nil
}

// Run starts every adapter's consumers and Run, and blocks until ctx is done:
// then it stops the consumers (in-flight sends finish within the bus's ack
// wait), waits for every adapter's Run to return and closes the adapters. It
// returns an error, having started nothing, when a consumer cannot be
// created.
func (r *Runtime) Run(ctx context.Context) error {
	r.mu.Lock()
	entries := make([]*running, 0, len(r.entries))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	r.mu.Unlock()

	g := bus.NewGroup(r.bus, r.log)
	for _, e := range entries {
		r.consume(g, e)
		r.consumeEvents(g, e)
		g.Go(func(ctx context.Context) error {
			r.supervise(ctx, e)
			return nil
		})
	}
	err := g.Run(ctx)
	for _, e := range entries {
		if c, ok := e.a.(Closer); ok {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := c.Close(cctx); err != nil {
				r.log.Warn("adapter close", "adapter", e.a.Name(), "err", err)
			}
			cancel()
		}
	}
	if err != nil {
		return fmt.Errorf("adapters: %w", err)
	}
	return nil
}

// supervise runs e's Run until ctx is done, restarting it with backoff.
func (r *Runtime) supervise(ctx context.Context, e *running) {
	log := r.log.With("adapter", e.a.Name())
	delay := time.Second
	for {
		e.setErr(nil)
		start := time.Now()
		err := runSafely(ctx, e.a)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("Run returned before shutdown")
		}
		e.setErr(err)
		if time.Since(start) > time.Minute {
			delay = time.Second
		}
		log.Error("adapter failed, restarting", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Minute)
	}
}

func runSafely(ctx context.Context, a Adapter) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return a.Run(ctx)
}

// consume adds the consumer that calls e's Send for each message on its
// subject.
func (r *Runtime) consume(g *bus.Group, e *running) {
	name := e.a.Name()
	spec := bus.ConsumerSpec{
		Stream:  bus.StreamOut,
		Durable: "send-" + name,
		Filters: []string{bus.SubjectOut(name)},
	}
	if e.kind == Desk {
		spec.Stream, spec.Durable, spec.Filters = bus.StreamDesk, "desk-"+name, []string{bus.SubjectDesk(name)}
	}
	if c, ok := e.a.(Concurrent); ok {
		spec.Concurrency = c.Concurrency()
	}
	g.Handle(spec, r.sendHandler(e, r.bus.Options().Consumer.MaxDeliver, r.log.With("adapter", name)))
}

// consumeEvents adds the event consumer of e when it is an EventHandler. An
// adapter that asks for an event type no subject can carry has a bug: its
// events are not consumed and /readyz says so, the others run on.
func (r *Runtime) consumeEvents(g *bus.Group, e *running) {
	eh, ok := e.a.(EventHandler)
	if !ok {
		return
	}
	name := e.a.Name()
	var filters []string
	for _, typ := range eh.EventTypes() {
		if !validEventType(typ) {
			err := fmt.Errorf("event type %q is not a valid event type", typ)
			r.log.Error("adapter events not consumed", "adapter", name, "err", err)
			e.mu.Lock()
			e.broken = err
			e.mu.Unlock()
			return
		}
		if f := bus.SubjectEvt(typ); !slices.Contains(filters, f) {
			filters = append(filters, f)
		}
	}
	if len(filters) == 0 {
		return
	}
	g.Handle(bus.ConsumerSpec{
		Stream:     bus.StreamEvt,
		Durable:    "events-" + name,
		Filters:    filters,
		DeliverNew: true,
	}, func(ctx context.Context, d *bus.Delivery) error {
		m, err := d.Message()
		if err != nil {
			return err
		}
		if err := eh.HandleEvent(ctx, m); err != nil {
			return fmt.Errorf("event %s %s: %w", m.Type, m.ID, err)
		}
		return nil
	})
}

// validEventType reports whether typ can be the type part of omni.evt.<type>.
func validEventType(typ string) bool {
	if typ == "" {
		return false
	}
	for part := range strings.SplitSeq(typ, ".") {
		if !bus.ValidToken(part) {
			return false
		}
	}
	return true
}

// sendHandler delivers one outbound message through e's Send, at most once per
// envelope id: a message already marked sent is acknowledged without sending.
func (r *Runtime) sendHandler(e *running, maxDeliver int, log *slog.Logger) bus.Handler {
	sent := r.store.Records("sent_" + e.a.Name())
	intents := r.store.Records("sending_" + e.a.Name())
	obs := r.metrics.observers(e.a.Name(), e.kind)
	return func(ctx context.Context, d *bus.Delivery) error {
		m, err := d.Message()
		if err != nil {
			return err
		}
		var prev Receipt
		if _, err := sent.Get(ctx, m.ID, &prev); err == nil {
			log.Debug("already sent, skipping redelivery", "msg_id", m.ID)
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("check sent %s: %w", m.ID, err)
		}
		// The reply as the pipeline wrote it, before rendering for this channel:
		// what another channel gets if this one cannot reach the customer.
		written := *m
		written.Meta = maps.Clone(m.Meta) // Render drops the format it rendered
		if e.kind == Channel {
			Render(m, e.format)
			if rc, found, err := r.reconcile(ctx, e, intents, m, d.NumDelivered > 1, log); err != nil {
				return fmt.Errorf("send %s: %w", m.ID, err)
			} else if found {
				r.recordSent(ctx, e, sent, m, rc, log)
				return nil
			}
		}
		rc, err := obs.send(ctx, e, m)
		// Send may have used up ctx (the per-attempt timeout): recording the
		// send and the delivery event must happen all the same.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterSendTimeout)
		defer cancel()
		if reason, ok := UnreachableReason(err); ok && e.kind == Channel {
			return r.unreachable(ctx, &written, reason, err, log)
		}
		if err != nil {
			if e.kind == Channel && !bus.RetriedInPlace(err) && (bus.IsPermanent(err) || d.NumDelivered >= uint64(maxDeliver)) {
				r.deliveryEvent(ctx, m, event.DeliveryFailed, Receipt{}, err, "")
			}
			return fmt.Errorf("send %s: %w", m.ID, err)
		}
		r.recordSent(ctx, e, sent, m, rc, log)
		log.Debug("sent", "msg_id", m.ID, "conversation", m.ConversationID, "provider_id", rc.ProviderID)
		return nil
	}
}

// reconcile records, for a Reconciler, the intent to send m before its first
// attempt. On a later attempt, which finds the intent, it asks the Reconciler
// whether the provider took m already, and returns its receipt and true if
// so. An adapter that cannot be asked costs no store operation here.
func (r *Runtime) reconcile(ctx context.Context, e *running, intents *store.Records, m *core.Message, redelivered bool, log *slog.Logger) (Receipt, bool, error) {
	rec, ok := e.a.(Reconciler)
	if !ok {
		// Nothing to ask, so no intent to record: a redelivery may follow a
		// crash mid-send, and that is news.
		if redelivered {
			log.Warn("an earlier attempt may have reached the customer and the provider cannot be asked: sending again", "msg_id", m.ID)
		}
		return Receipt{}, false, nil
	}
	in := sendIntent{At: time.Now().UTC()}
	if _, err := intents.Create(ctx, m.ID, in, r.cfg.SentTTL); err == nil {
		return Receipt{}, false, nil // the first attempt
	} else if !errors.Is(err, store.ErrExists) {
		return Receipt{}, false, fmt.Errorf("record the intent to send: %w", err)
	}
	if _, err := intents.Get(ctx, m.ID, &in); err != nil {
		return Receipt{}, false, fmt.Errorf("read the intent to send: %w", err)
	}
	rc, found, err := rec.Sent(ctx, m, in.At)
	switch {
	case bus.IsPermanent(err):
		// The provider will not answer this question: better twice than never.
		log.Warn("the provider cannot say whether an earlier attempt reached the customer: sending again", "msg_id", m.ID, "err", err)
		return Receipt{}, false, nil
	case err != nil:
		return Receipt{}, false, fmt.Errorf("ask the provider whether an earlier attempt was taken: %w", err)
	}
	if found {
		log.Info("an earlier attempt reached the provider: not sent again", "msg_id", m.ID, "provider_id", rc.ProviderID)
	}
	return rc, found, nil
}

// unreachable handles a reply whose channel says the recipient cannot be
// reached there: the pipeline learns it (contact.unreachable, with the reply,
// in order with the customer's messages) and sends the reply on the next
// reachable channel; the desk gets delivery.failed with the reason. Nothing
// is dead-lettered.
func (r *Runtime) unreachable(ctx context.Context, m *core.Message, reason string, cause error, log *slog.Logger) error {
	ev := rerouteEvent(m, reason, cause)
	if _, err := r.bus.PublishMessage(ctx, bus.SubjectIn(m.Channel, string(m.To)), ev); err != nil {
		return fmt.Errorf("send %s: tell the pipeline the recipient is unreachable: %w", m.ID, err)
	}
	r.deliveryEvent(ctx, m, event.DeliveryFailed, Receipt{}, cause, reason)
	log.Info("recipient unreachable on this channel; the pipeline tries another", "msg_id", m.ID, "conversation", m.ConversationID, "reason", reason)
	return nil
}

// recordSent remembers that m was sent, so that a redelivery does not send it
// again, and tells the desk.
func (r *Runtime) recordSent(ctx context.Context, e *running, sent *store.Records, m *core.Message, rc Receipt, log *slog.Logger) {
	if rc.At.IsZero() {
		rc.At = time.Now().UTC()
	}
	if rc.Status == "" {
		rc.Status = "sent"
	}
	if _, err := sent.Create(ctx, m.ID, rc, r.cfg.SentTTL); err != nil && !errors.Is(err, store.ErrExists) {
		// Sent but not remembered: a redelivery could send it again. Say so.
		log.Warn("sent, but could not record it; a redelivery may send it twice", "msg_id", m.ID, "err", err)
	}
	if e.kind == Channel {
		r.deliveryEvent(ctx, m, event.DeliverySent, rc, nil, "")
	}
}

// deliveryEvent tells the desk what happened to m. A lost event is logged, not
// retried: the send itself must not be repeated for it.
func (r *Runtime) deliveryEvent(ctx context.Context, m *core.Message, typ string, rc Receipt, cause error, reason string) {
	ev := DeliveryEvent(m, typ)
	ev.External.Message = rc.ProviderID
	if cause != nil {
		ev.Meta = map[string]string{event.MetaError: core.Truncate(cause.Error(), 1024)}
		if reason != "" {
			ev.Meta[event.MetaReason] = reason
		}
	}
	if _, err := r.bus.PublishMessage(ctx, bus.SubjectEvt(typ), ev, bus.WithMsgID("evt:"+typ+":"+m.ID)); err != nil {
		r.log.Warn("delivery event not published", "type", typ, "msg_id", m.ID, "err", err)
	}
}

// DeliveryEvent returns an event of type typ (EventDelivery*) about outbound
// message m: its conversation, contact, recipient and ReplyTo = m.ID.
func DeliveryEvent(m *core.Message, typ string) *core.Message {
	ev := core.NewMessage(core.KindEvent, core.Outbound, m.Channel)
	ev.Type = typ
	ev.To = m.To
	ev.ContactID = m.ContactID
	ev.ConversationID = m.ConversationID
	ev.ReplyTo = m.ID
	return ev
}

// Status is the readiness of one adapter.
type Status struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Error is why it is not ready, or "".
	Error string `json:"error,omitempty"`
}

// Ready reports every adapter's readiness: its Run must be up and, when it
// implements Readier, its provider reachable.
func (r *Runtime) Ready(ctx context.Context) []Status {
	r.mu.Lock()
	entries := make([]*running, 0, len(r.entries))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(entries))
	for _, e := range entries {
		st := Status{Name: e.a.Name(), Kind: e.kind}
		e.mu.Lock()
		err := e.err
		if err == nil {
			err = e.broken
		}
		e.mu.Unlock()
		if err == nil {
			if rd, ok := e.a.(Readier); ok {
				err = rd.Ready(ctx)
			}
		}
		if err != nil {
			st.Error = err.Error()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
