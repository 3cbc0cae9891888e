package adapters

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/store"
)

// Deps is what an adapter's factory receives besides its config. Factories
// keep what they need and do no I/O; I/O starts in Run.
type Deps struct {
	// Publisher stores what the adapter receives on the bus.
	Publisher *Publisher
	// Routes mounts HTTP handlers under /channels/<name>/.
	Routes *Routes
	// Logger is pre-scoped with adapter=<name>.
	Logger *slog.Logger
	// Store holds the adapter's state in its own namespace (Records), e.g. an
	// IMAP adapter's last UID; nil in tests that need none.
	Store *store.Store
	// PublicURL is the externally reachable base URL of omnigate (http.public_url),
	// for webhook URLs registered with providers and signature checks.
	PublicURL string
	// Bus is the process's bus, for the few adapters that hold live client
	// connections and must reach the connections other replicas hold (the web
	// chat passes frames over core NATS); nil in tests and processes that need
	// none. Adapters still never consume omni.out themselves: the runtime calls
	// Send.
	Bus *bus.Bus
	// Queues are routing's queues, for desks: where each one's conversations
	// are shown and what an agent can transfer to. serve fills it from the
	// routing section, which is the one place a queue is configured.
	Queues []Queue
	// TranscriptURL returns a signed, expiring link to a conversation's
	// transcript page, for desks to show; nil, or "", when serve cannot make
	// one (no http.public_url).
	TranscriptURL func(conversation string) string
}

// Queue is one of routing's queues as a desk sees it.
type Queue struct {
	// Name is the queue's name, the value of meta "queue".
	Name string
	// Desk is the desk adapter the queue's conversations are shown on.
	Desk string
	// Channel is where on that desk, e.g. a Slack channel id; empty is the
	// desk's default.
	Channel string
	// Default is set on the queue conversations go to when no rule says
	// otherwise.
	Default bool
}

// Publisher publishes what an adapter receives. Its methods return after
// JetStream acknowledged the message, so a webhook that answers 2xx after them
// never loses what it acknowledged.
type Publisher struct {
	bus     *bus.Bus
	channel string
	now     func() time.Time
	clocked bool // now replaces every ReceivedAt (WithClock)
}

// NewPublisher returns a Publisher for channel on b.
func NewPublisher(b *bus.Bus, channel string) *Publisher {
	return &Publisher{bus: b, channel: channel, now: time.Now}
}

// WithClock makes p stamp ReceivedAt from now instead of the wall clock (for
// tests that replay a day on a fake clock), also over the time core.NewMessage
// gave the envelope; nil keeps the wall clock.
func (p *Publisher) WithClock(now func() time.Time) *Publisher {
	if now != nil {
		p.now, p.clocked = now, true
	}
	return p
}

// Inbound publishes a message a customer (or, for a desk, an agent) sent, on
// omni.in.<channel>.<partition>. It fills V, ID, Kind, Direction (inbound),
// Channel and ReceivedAt when empty, and validates: an invalid message is not
// published and the error wraps core.ErrInvalid (answer the provider 400). A
// provider retry of a message with the same External.Message is stored once;
// Inbound then reports duplicate true.
func (p *Publisher) Inbound(ctx context.Context, m *core.Message) (duplicate bool, err error) {
	p.fill(m, core.KindMessage, core.Inbound)
	if err := m.Validate(); err != nil {
		return false, fmt.Errorf("%s: inbound: %w", p.channel, err)
	}
	ack, err := p.bus.PublishMessage(ctx, bus.SubjectIn(m.Channel, string(m.From)), m)
	if err != nil {
		return false, fmt.Errorf("%s: inbound: %w", p.channel, err)
	}
	return ack.Duplicate, nil
}

// Desk publishes what an agent desk produces for the pipeline, on
// omni.in.<channel>.<partition of key>: an agent's reply (Kind message,
// Direction outbound, ConversationID set) or a desk event (Kind event with a
// Type such as "conversation.close"). Pass the conversation id as key, so that
// one conversation's replies and events keep their order whoever wrote them.
// It fills V, ID, Kind (message), Direction (outbound for a message, inbound
// for an event), Channel and ReceivedAt when empty, and validates as Inbound
// does. A provider retry with the same External.Message is stored once; Desk
// then reports duplicate true.
func (p *Publisher) Desk(ctx context.Context, m *core.Message, key string) (duplicate bool, err error) {
	dir := core.Outbound
	if m.Kind == core.KindEvent {
		dir = core.Inbound
	}
	p.fill(m, core.KindMessage, dir)
	if key == "" {
		return false, fmt.Errorf("%s: desk: no partition key", p.channel)
	}
	if err := m.Validate(); err != nil {
		return false, fmt.Errorf("%s: desk: %w", p.channel, err)
	}
	ack, err := p.bus.PublishMessage(ctx, bus.SubjectIn(m.Channel, key), m)
	if err != nil {
		return false, fmt.Errorf("%s: desk: %w", p.channel, err)
	}
	return ack.Duplicate, nil
}

// Event publishes an event (Kind event, Type set, e.g. EventDeliveryDelivered)
// on omni.evt.<type>. External.Message, when set, deduplicates provider retries
// of the same status callback: set it to "<provider id>:<status>".
func (p *Publisher) Event(ctx context.Context, m *core.Message) error {
	p.fill(m, core.KindEvent, m.Direction)
	if m.Direction == "" {
		m.Direction = core.Inbound
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: event: %w", p.channel, err)
	}
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectEvt(m.Type), m); err != nil {
		return fmt.Errorf("%s: event: %w", p.channel, err)
	}
	return nil
}

func (p *Publisher) fill(m *core.Message, kind core.Kind, dir core.Direction) {
	if m.V == 0 {
		m.V = core.EnvelopeVersion
	}
	if m.ID == "" {
		m.ID = core.NewID()
	}
	if m.Kind == "" {
		m.Kind = kind
	}
	if m.Direction == "" {
		m.Direction = dir
	}
	if m.Channel == "" {
		m.Channel = p.channel
	}
	if m.ReceivedAt.IsZero() || p.clocked {
		m.ReceivedAt = p.now().UTC()
	}
}

// Routes mounts an adapter's HTTP handlers under /channels/<name>/ on the
// server's mux.
type Routes struct {
	mux    *http.ServeMux
	prefix string
}

// NewRoutes scopes mux to /channels/<name>.
func NewRoutes(mux *http.ServeMux, name string) *Routes {
	return &Routes{mux: mux, prefix: "/channels/" + name}
}

// Handle registers h for pattern, which is an http.ServeMux pattern relative to
// the adapter's prefix: "POST /webhook" serves POST /channels/<name>/webhook.
func (r *Routes) Handle(pattern string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	full := r.prefix + path
	if method != "" {
		full = method + " " + full
	}
	r.mux.Handle(full, h)
}

// HandleFunc is Handle for a function.
func (r *Routes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(h))
}

// URL is the absolute URL of path under the adapter's prefix, using base (the
// public URL), e.g. for registering a webhook with a provider.
func (r *Routes) URL(base, path string) string {
	return strings.TrimRight(base, "/") + r.prefix + "/" + strings.TrimLeft(path, "/")
}
