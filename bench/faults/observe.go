package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/bench/internal/harness"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/pipeline"
)

// Texts of the run's messages: a customer's n-th message of a phase, and the
// agent's r-th reply to that customer. The numbers let the observers tell
// every message apart and check its order.
const (
	customerText = "f%d s%d n%d"
	replyText    = "reply f%d s%d r%d"
)

func parseCustomer(text string) (key, bool) {
	var k key
	n, err := fmt.Sscanf(text, customerText, &k.phase, &k.sender, &k.n)
	return k, err == nil && n == 3 && !strings.HasPrefix(text, "reply")
}

func parseReply(text string) (key, bool) {
	var k key
	n, err := fmt.Sscanf(text, replyText, &k.phase, &k.sender, &k.n)
	return k, err == nil && n == 3
}

// smsChannel is the SMS adapter's name: its config section, its identities'
// channel and its subjects.
const smsChannel = "sms"

// sendStage is the dead-letter stage of the SMS adapter's sends (the adapter
// runtime's consumer "send-<adapter>").
const sendStage = "send-" + smsChannel

// tail reads a stream from its start with an ordered consumer, which survives
// reconnects and server restarts by recreating itself where it stopped, and
// hands every message to fn in stream order.
type tail struct {
	cc   jetstream.ConsumeContext
	seen atomic.Uint64 // messages handed to fn
	last atomic.Uint64 // stream sequence of the last one
}

func newTail(ctx context.Context, js jetstream.JetStream, stream string, fn func(jetstream.Msg, *jetstream.MsgMetadata)) (*tail, error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	t := &tail{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		t.seen.Add(1)
		t.last.Store(meta.Sequence.Stream)
		fn(m, meta)
	}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {
		// Reconnects and resets during faults: the ordered consumer recovers.
	}))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	t.cc = cc
	return t, nil
}

func (t *tail) stop() { t.cc.Stop() }

// watchDesk records every customer message the pipeline hands to the desks
// (stream OMNI_DESK), at the time the stream stored it, and each customer's
// conversation.
func watchDesk(ctx context.Context, js jetstream.JetStream, l *ledger) (*tail, error) {
	return newTail(ctx, js, bus.StreamDesk, func(msg jetstream.Msg, meta *jetstream.MsgMetadata) {
		m, err := core.Decode(msg.Data())
		if err != nil || m.Kind != core.KindMessage || m.Direction != core.Inbound {
			return
		}
		k, ok := parseCustomer(m.Text)
		if !ok {
			return
		}
		l.arrived(false, k, meta.Timestamp)
		if m.ConversationID != "" {
			l.conversation(k.sender, m.ConversationID)
		}
	})
}

// deadLetter is one message a stage gave up on.
type deadLetter struct {
	at           time.Time
	stage, error string
}

// dlqWatch records the dead letters of the run's messages and keeps every
// dead letter's stage and error for the report.
type dlqWatch struct {
	*tail
	mu  sync.Mutex
	all []deadLetter
}

func watchDLQ(ctx context.Context, js jetstream.JetStream, l *ledger) (*dlqWatch, error) {
	w := &dlqWatch{}
	t, err := newTail(ctx, js, bus.StreamDLQ, func(msg jetstream.Msg, meta *jetstream.MsgMetadata) {
		h := msg.Headers()
		dl := deadLetter{at: meta.Timestamp, stage: h.Get(bus.HeaderDLQStage), error: h.Get(bus.HeaderDLQError)}
		w.mu.Lock()
		w.all = append(w.all, dl)
		w.mu.Unlock()
		m, err := core.Decode(msg.Data())
		if err != nil {
			return
		}
		switch dl.stage {
		case pipeline.Stage:
			if k, ok := parseCustomer(m.Text); ok && m.Direction == core.Inbound {
				l.deadLettered(false, k, dl.stage)
			} else if k, ok := parseReply(m.Text); ok {
				l.deadLettered(true, k, dl.stage)
			}
		case sendStage:
			if k, ok := parseReply(m.Text); ok {
				l.deadLettered(true, k, dl.stage)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	w.tail = t
	return w, nil
}

// between returns the dead letters stored in [from, to).
func (w *dlqWatch) between(from, to time.Time) []deadLetter {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []deadLetter
	for _, d := range w.all {
		if !d.at.Before(from) && (to.IsZero() || d.at.Before(to)) {
			out = append(out, d)
		}
	}
	return out
}

// watchTwilio moves what the fake Twilio received into the ledger every
// 100 ms until ctx is done, and counts the other messages sent (routing's
// automatic answers, for example).
func watchTwilio(ctx context.Context, tw *harness.Twilio, l *ledger, other *atomic.Int64) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for _, m := range tw.Sent(true) {
			if k, ok := parseReply(m.Body); ok {
				l.arrived(true, k, m.At)
			} else {
				other.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
