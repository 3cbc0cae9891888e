package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/omnigate/omnigate/core"
)

// PublishMessage validates and encodes m and publishes it on subject, waiting
// for the ack. Its deduplication id is "<channel>:<provider id>" when the
// provider gave one (so provider retries are stored once), else the envelope id;
// a WithMsgID option overrides both.
func (b *Bus) PublishMessage(ctx context.Context, subject string, m *core.Message, opts ...PublishOption) (Ack, error) {
	data, err := m.Encode()
	if err != nil {
		return Ack{}, fmt.Errorf("bus: publish %s: %w", subject, err)
	}
	id := m.ID
	if m.External.Message != "" {
		id = MsgID(m.Channel, m.External.Message)
	}
	return b.Publish(ctx, subject, data, append([]PublishOption{WithMsgID(id), WithHeader(HeaderOrderKey, OrderKeyOf(m))}, opts...)...)
}

// OrderKeyOf is what must keep m in order with other messages: its sender for
// a customer's message, else its conversation (an agent's reply and the
// commands about it), else its sender.
func OrderKeyOf(m *core.Message) string {
	if (m.Direction == core.Inbound && m.Kind == core.KindMessage) || m.ConversationID == "" {
		return string(m.From)
	}
	return "conv:" + m.ConversationID
}

// OrderKey is a ConsumerSpec.OrderKey for envelopes: the HeaderOrderKey that
// PublishMessage set, or OrderKeyOf the decoded envelope for messages
// published without it. An undecodable envelope gets its own key.
func OrderKey(d *Delivery) string {
	if k := d.Header.Get(HeaderOrderKey); k != "" {
		return k
	}
	m, err := core.Decode(d.Data)
	if err != nil {
		return "seq:" + strconv.FormatUint(d.StreamSeq, 10)
	}
	return OrderKeyOf(m)
}

// Message decodes the delivery's envelope. A malformed envelope never gets
// better, so the error is Permanent: returned from a handler, it goes straight to
// the dead-letter queue with the reason.
func (d *Delivery) Message() (*core.Message, error) {
	m, err := core.Decode(d.Data)
	if err != nil {
		return nil, Permanent(fmt.Errorf("decode envelope on %s: %w", d.Subject, err))
	}
	return m, nil
}
