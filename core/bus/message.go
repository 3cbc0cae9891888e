package bus

import (
	"context"
	"fmt"

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
	return b.Publish(ctx, subject, data, append([]PublishOption{WithMsgID(id)}, opts...)...)
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
