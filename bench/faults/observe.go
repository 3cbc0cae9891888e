package main

import (
	"context"
	"errors"
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

// tail reads a stream from its first message to its last, again and again
// every 200 ms, and hands every message to fn once, in stream order. It reads
// by sequence number (a direct get of each message), so it keeps no consumer
// state on the servers that a fault could lose: after an error it tries the
// same message again on the next round.
type tail struct {
	stream string
	js     jetstream.JetStream
	fn     func(*jetstream.RawStreamMsg)
	next   atomic.Uint64 // the sequence to read next
	stopFn context.CancelFunc
	done   chan struct{}
}

func newTail(ctx context.Context, js jetstream.JetStream, stream string, fn func(*jetstream.RawStreamMsg)) *tail {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &tail{stream: stream, js: js, fn: fn, stopFn: cancel, done: make(chan struct{})}
	t.next.Store(1)
	go func() {
		defer close(t.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			_ = t.round(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

// round reads every message stored after the last one read.
func (t *tail) round(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := t.js.Stream(rctx, t.stream)
	if err != nil {
		return err
	}
	last := s.CachedInfo().State.LastSeq
	for seq := t.next.Load(); seq <= last; seq++ {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := s.GetMsg(gctx, seq)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound): // deleted: nothing to read
		case err != nil:
			return err
		default:
			t.fn(m)
		}
		t.next.Store(seq + 1)
	}
	return nil
}

// read is the sequence of the last message read.
func (t *tail) read() uint64 { return t.next.Load() - 1 }

func (t *tail) stop() {
	t.stopFn()
	<-t.done
}

// watchDesk records every customer message the pipeline hands to the desks
// (stream OMNI_DESK), at the time the stream stored it, and each customer's
// conversation.
func watchDesk(ctx context.Context, js jetstream.JetStream, l *ledger) *tail {
	return newTail(ctx, js, bus.StreamDesk, func(msg *jetstream.RawStreamMsg) {
		m, err := core.Decode(msg.Data)
		if err != nil || m.Kind != core.KindMessage || m.Direction != core.Inbound {
			return
		}
		k, ok := parseCustomer(m.Text)
		if !ok {
			return
		}
		l.arrived(false, k, msg.Time)
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

func watchDLQ(ctx context.Context, js jetstream.JetStream, l *ledger) *dlqWatch {
	w := &dlqWatch{}
	w.tail = newTail(ctx, js, bus.StreamDLQ, func(msg *jetstream.RawStreamMsg) {
		h := msg.Header
		dl := deadLetter{at: msg.Time, stage: h.Get(bus.HeaderDLQStage), error: h.Get(bus.HeaderDLQError)}
		w.mu.Lock()
		w.all = append(w.all, dl)
		w.mu.Unlock()
		m, err := core.Decode(msg.Data)
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
	return w
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
