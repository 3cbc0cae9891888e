package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnigate/omnigate/core/telemetry"
)

// PublishOption sets an optional part of a published message.
type PublishOption func(*nats.Msg)

// WithMsgID sets the Nats-Msg-Id deduplication header: JetStream stores a
// message with an id it has seen within the duplicate window only once.
func WithMsgID(id string) PublishOption {
	return func(m *nats.Msg) {
		if id != "" {
			m.Header.Set(HeaderMsgID, id)
		}
	}
}

// WithHeader sets one header on the published message.
func WithHeader(key, value string) PublishOption {
	return func(m *nats.Msg) { m.Header.Set(key, value) }
}

// Ack is JetStream's acknowledgement of a publish.
type Ack struct {
	// Stream that stored the message.
	Stream string
	// Sequence of the message in the stream.
	Sequence uint64
	// Duplicate is true when the Nats-Msg-Id was seen before: the message was
	// not stored again and Sequence is the first copy's.
	Duplicate bool
}

// Publish stores data on subject and returns once JetStream has acknowledged it,
// so a caller that answers a provider's webhook after Publish never loses a
// message it acknowledged.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte, opts ...PublishOption) (Ack, error) {
	m := nats.NewMsg(subject)
	m.Data = data
	for _, o := range opts {
		o(m)
	}
	return b.PublishMsg(ctx, m)
}

// Bounds of one publish: how long one request waits for its ack (an ack lost
// with a NATS node that died costs this, not the caller's whole deadline), and
// how long PublishMsg keeps trying while the stream has no leader (a node of
// the cluster died and the others elect a new one, which takes seconds).
const (
	requestTimeout  = 2 * time.Second
	publishPatience = 10 * time.Second
)

// PublishMsg stores m (subject, headers and data as given) and waits for the
// ack. While the stream does not answer (no leader yet, the answer lost) it
// tries again, for up to 10 s within ctx: always when no server took the
// request, and after a timeout only when m has a deduplication id, so that
// a copy the server did store is not stored twice. With tracing on, the
// publish is a span and m's headers carry its trace context (traceparent).
func (b *Bus) PublishMsg(ctx context.Context, m *nats.Msg) (_ Ack, err error) {
	if telemetry.Enabled() {
		var span trace.Span
		ctx, span = startPublish(ctx, m)
		defer func() { telemetry.End(span, err) }()
	}
	giveUp := time.Now().Add(publishPatience)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, requestTimeout)
		pa, err := b.js.PublishMsg(actx, m)
		cancel()
		if err == nil {
			return Ack{Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
		}
		notTaken := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
		again := notTaken || (m.Header.Get(HeaderMsgID) != "" && IsUnavailable(err))
		pause := min(50*time.Millisecond<<min(attempt-1, 5), time.Second)
		if !again || ctx.Err() != nil || time.Now().Add(pause).After(giveUp) {
			return Ack{}, fmt.Errorf("bus: publish %s: %w", m.Subject, err)
		}
		select {
		case <-ctx.Done():
			return Ack{}, fmt.Errorf("bus: publish %s: %w (%w)", m.Subject, ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}
