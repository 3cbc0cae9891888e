package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// UserChannel is the channel part of verified account identities ("user:<id>").
// It is reserved: no message travels on it.
const UserChannel = "user"

// Stage names the pipeline's dead letters: omni.dlq.pipeline.
const Stage = "pipeline"

// Record buckets the pipeline keeps in the store (store.Records), prefixed so
// that no other component's records can collide with them.
const (
	recordsProcessed = "pipeline_processed"
	recordsThreads   = "pipeline_threads"
)

// processedTTL is how long the pipeline remembers that it handled an envelope id.
const processedTTL = 7 * 24 * time.Hour

// Config configures a Pipeline. The zero value is usable.
type Config struct {
	// Desks are the agent desks (adapter names): customer messages are published to
	// omni.desk.<desk> for each, and messages on a desk's channel are agents'
	// replies and commands. Default ["slack"].
	Desks []string
	// Channels are the known customer channels. Empty accepts any valid channel
	// name that is not a desk or a source; otherwise a message on another
	// channel is dead-lettered with "unknown channel".
	Channels []string
	// ReopenWindow is how long after it closed a conversation is reopened by a new
	// message instead of starting a new one. 0 means 24h; negative never reopens.
	ReopenWindow time.Duration
	// PhoneChannels are the channels whose addresses are E.164 phone numbers: the
	// same number on them is one contact. serve lists the adapters whose
	// adapters.Info says so (sms and whatsapp); empty turns phone linking off.
	PhoneChannels []string
	// ThreadTTL is how long a thread key is remembered after its last message.
	// Default 90 days.
	ThreadTTL time.Duration
	// ReplyFallback are the channels a reply tries, in order, when its channel
	// cannot reach the customer (store.Contact.Unreachable). Empty: the
	// contact's other identities, in the order they were added.
	ReplyFallback []string
}

// Deps are what a Pipeline runs on.
type Deps struct {
	// Bus and Store are required.
	Bus   *bus.Bus
	Store *store.Store
	// Logger receives the pipeline's logs; message text is never logged.
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock for conversation times. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if len(c.Desks) == 0 {
		c.Desks = []string{"slack"}
	}
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 24 * time.Hour
	}
	if c.ThreadTTL <= 0 {
		c.ThreadTTL = 90 * 24 * time.Hour
	}
}

func (c *Config) validate() error {
	var errs []error
	for _, d := range c.Desks {
		if !core.ValidChannel(d) || d == UserChannel || slices.Contains(Sources, d) {
			errs = append(errs, fmt.Errorf("desks: %q is not a usable channel name", d))
		}
		if slices.Contains(c.Channels, d) {
			errs = append(errs, fmt.Errorf("desks: %q is also a customer channel", d))
		}
	}
	for _, ch := range c.Channels {
		if !core.ValidChannel(ch) || ch == UserChannel || slices.Contains(Sources, ch) {
			errs = append(errs, fmt.Errorf("channels: %q is not a usable channel name", ch))
		}
	}
	for _, ch := range c.PhoneChannels {
		if !core.ValidChannel(ch) || ch == UserChannel {
			errs = append(errs, fmt.Errorf("phone_channels: %q is not a usable channel name", ch))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pipeline: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// Sources are the components besides desks whose outbound messages to
// customers take the pipeline's reply path: they publish them on
// omni.in.<source>.<partition of the conversation>. Their names are reserved:
// no desk or customer channel may have one.
var Sources = []string{event.ByRouting, event.ByTickets}

// Pipeline runs session continuity on the bus: see the package documentation.
// Any number of Pipelines, in one process or many, may run on the same bus and
// store; they share the work.
type Pipeline struct {
	bus       *bus.Bus
	st        *store.Store
	cfg       Config
	log       *slog.Logger
	clock     func() time.Time
	processed *store.Records
	threads   *store.Records
}

// New returns a Pipeline for cfg on deps; Run starts it. It does no I/O, and
// returns an error when cfg is invalid or a dependency is missing.
func New(cfg Config, deps Deps) (*Pipeline, error) {
	cfg.Desks, cfg.Channels = slices.Clone(cfg.Desks), slices.Clone(cfg.Channels)
	cfg.PhoneChannels = slices.Clone(cfg.PhoneChannels)
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Bus == nil || deps.Store == nil {
		return nil, errors.New("pipeline: deps: Bus and Store are required")
	}
	log := cmp.Or(deps.Logger, slog.New(slog.DiscardHandler))
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return &Pipeline{
		bus:       deps.Bus,
		st:        deps.Store,
		cfg:       cfg,
		log:       log,
		clock:     now,
		processed: deps.Store.Records(recordsProcessed),
		threads:   deps.Store.Records(recordsThreads),
	}, nil
}

// partitionConcurrency and partitionInFlight bound one partition's work in a
// process. They are 1, one message at a time per partition, as before lanes:
// with lanes (bus ConsumerSpec.OrderKey, several senders at once) the
// replicas test still saw a sender's messages swapped under -race on a loaded
// 2-core machine (issue 14), so lanes stay off here until that is understood.
// The partition's ack wait is the bus's.
const (
	partitionConcurrency = 1
	partitionInFlight    = 1
)

// Run starts the inbound consumers, one per partition, and handles messages
// until ctx is done, then stops them, letting in-flight handlers finish
// (bounded by the bus's ack wait), and returns nil. It returns an error, having
// started nothing, when a consumer cannot be created. Call it once.
func (p *Pipeline) Run(ctx context.Context) error {
	g := bus.NewGroup(p.bus, p.log)
	for part := range bus.Partitions {
		g.Handle(bus.ConsumerSpec{
			Stream:        bus.StreamIn,
			Durable:       "pipeline-" + strconv.Itoa(part),
			Filters:       bus.InPartitionFilters(part),
			Stage:         Stage,
			Concurrency:   partitionConcurrency,
			MaxAckPending: partitionInFlight,
			OrderKey:      bus.OrderKey,
			Exclusive:     true,
			AsyncAck:      true,
		}, p.handle)
	}
	p.log.Info("pipeline running", "partitions", bus.Partitions, "desks", p.cfg.Desks)
	if err := g.Run(ctx); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	p.log.Info("pipeline stopped")
	return nil
}

// Errors behind dead letters; their text is the reason in the DLQ.
var (
	errNoSender        = errors.New("no sender identity")
	errUnknownChannel  = errors.New("unknown channel")
	errNoConversation  = errors.New("conversation not found")
	errUnknownDeskKind = errors.New("desks send outbound replies and commands only")
)

// handle is the consumers' handler: one envelope from omni.in.
func (p *Pipeline) handle(ctx context.Context, d *bus.Delivery) error {
	m, err := decode(d)
	if err != nil {
		return err
	}
	// Publishes carry deduplication ids and the store writes are idempotent, so
	// a first delivery needs no processed record: only a redelivery, which may
	// follow a delivery that did everything but its ack, checks and keeps one.
	redelivered := d.NumDelivered > 1
	switch {
	case p.isDesk(m.Channel), slices.Contains(Sources, m.Channel):
		err = p.handleDesk(ctx, m, redelivered)
	case m.Channel == UserChannel:
		err = bus.Permanent(fmt.Errorf("%w %q: reserved for verified account identities", errUnknownChannel, m.Channel))
	case len(p.cfg.Channels) > 0 && !slices.Contains(p.cfg.Channels, m.Channel):
		err = bus.Permanent(fmt.Errorf("%w %q", errUnknownChannel, m.Channel))
	case reachEvent(m):
		err = p.reachability(ctx, m, redelivered)
	default:
		err = p.inbound(ctx, m, redelivered)
	}
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", m.Kind, m.ID, m.Channel, err)
	}
	return nil
}

// decode reads the delivery's envelope; a missing sender gets its own reason.
func decode(d *bus.Delivery) (*core.Message, error) {
	m, err := d.Message()
	if err == nil {
		return m, nil
	}
	if ve, ok := errors.AsType[*core.ValidationError](err); ok {
		for _, fe := range ve.Errors {
			if fe.Field == "from" && strings.HasPrefix(fe.Problem, "required") {
				return nil, bus.Permanent(fmt.Errorf("%w: %w", errNoSender, err))
			}
		}
	}
	return nil, err
}

func (p *Pipeline) isDesk(channel string) bool { return slices.Contains(p.cfg.Desks, channel) }

func (p *Pipeline) isPhone(channel string) bool {
	return slices.Contains(p.cfg.PhoneChannels, channel)
}

// customerChannel reports whether a reply can be sent on channel.
func (p *Pipeline) customerChannel(channel string) bool {
	switch {
	case !core.ValidChannel(channel), channel == UserChannel, p.isDesk(channel), slices.Contains(Sources, channel):
		return false
	case len(p.cfg.Channels) > 0:
		return slices.Contains(p.cfg.Channels, channel)
	}
	return true
}

func (p *Pipeline) now() time.Time { return p.clock().UTC() }

// processedRecord is what the pipeline remembers of a redelivered envelope it
// handled, in the "pipeline_processed" records under the envelope id.
type processedRecord struct {
	// Conversation the envelope was put in.
	Conversation string `json:"conversation,omitempty"`
	// Done is true once everything was published.
	Done bool `json:"done,omitempty"`
}

// progress is an envelope's processed record as read at the start.
type progress struct {
	id string
	// kept is true on a redelivery: the record is read and written.
	kept   bool
	rec    processedRecord
	exists bool
}

// progress reads the processed record of envelope id on a redelivery; a first
// delivery has none.
func (p *Pipeline) progress(ctx context.Context, id string, redelivered bool) (*progress, error) {
	pr := &progress{id: id, kept: redelivered}
	if !redelivered {
		return pr, nil
	}
	_, err := p.processed.Get(ctx, id, &pr.rec)
	switch {
	case err == nil:
		pr.exists = true
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("check processed: %w", err)
	}
	if pr.rec.Done {
		p.log.Debug("already processed", "msg_id", id)
	}
	return pr, nil
}

// markDone records that pr's redelivered envelope was handled, so a further
// redelivery is skipped.
func (p *Pipeline) markDone(ctx context.Context, pr *progress, conversation string) error {
	if !pr.kept {
		return nil
	}
	if !pr.exists {
		_, err := p.processed.Create(ctx, pr.id, processedRecord{Conversation: conversation, Done: true}, processedTTL)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("mark processed: %w", err)
		}
	}
	var rec processedRecord
	if _, err := p.processed.Update(ctx, pr.id, &rec, processedTTL, func(bool) error {
		if rec.Done {
			return store.ErrSkip
		}
		rec.Done = true
		if conversation != "" {
			rec.Conversation = conversation
		}
		return nil
	}); err != nil {
		return fmt.Errorf("mark processed: %w", err)
	}
	return nil
}

// appendTranscript appends m to its conversation's transcript.
func (p *Pipeline) appendTranscript(ctx context.Context, m *core.Message) error {
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectConv(m.ConversationID), m, bus.WithMsgID("conv:"+m.ID)); err != nil {
		return fmt.Errorf("append to transcript: %w", err)
	}
	return nil
}

// toDesks publishes m to every desk but skip, with extra meta on each copy.
func (p *Pipeline) toDesks(ctx context.Context, m *core.Message, skip string, meta map[string]string) error {
	var pubs []func() error
	for _, desk := range p.cfg.Desks {
		if desk == skip {
			continue
		}
		c := m
		if len(meta) > 0 {
			c = m.Clone()
			if c.Meta == nil {
				c.Meta = make(map[string]string, len(meta))
			}
			maps.Copy(c.Meta, meta)
		}
		pubs = append(pubs, func() error {
			if _, err := p.bus.PublishMessage(ctx, bus.SubjectDesk(desk), c, bus.WithMsgID("desk:"+desk+":"+m.ID)); err != nil {
				return fmt.Errorf("publish to desk %s: %w", desk, err)
			}
			return nil
		})
	}
	return concurrently(pubs...)
}

// concurrently runs fns at once and returns their errors joined. The publishes of
// one message are independent, and each waits for its ack: in parallel they cost
// one round trip instead of one each.
func concurrently(fns ...func() error) error {
	switch len(fns) {
	case 0:
		return nil
	case 1:
		return fns[0]()
	}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns[1:] {
		wg.Go(func() { errs[i+1] = fn() })
	}
	errs[0] = fns[0]()
	wg.Wait()
	return errors.Join(errs...)
}

// publishErr turns an encoding problem of an envelope the pipeline built from its
// input into a dead letter; anything else (the bus) is retried.
func publishErr(err error) error {
	if errors.Is(err, core.ErrInvalid) || errors.Is(err, core.ErrTooLarge) {
		return bus.Permanent(err)
	}
	return err
}
