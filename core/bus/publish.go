package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
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

// PublishMsg stores m (subject, headers and data as given) and waits for the ack.
func (b *Bus) PublishMsg(ctx context.Context, m *nats.Msg) (Ack, error) {
	pa, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		return Ack{}, fmt.Errorf("bus: publish %s: %w", m.Subject, err)
	}
	return Ack{Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}, nil
}
