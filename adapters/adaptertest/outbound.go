package adaptertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// concurrentSends is how many Send calls Outbound/Concurrent makes at once.
const concurrentSends = 20

// outboundHooks are the hooks every outbound check needs.
func outboundHooks(fx *Fixture) []hook {
	return []hook{{"Outbound", fx.Outbound == nil}, {"Sent", fx.Sent == nil}}
}

// reply returns a fresh outbound message from the harness's template, with a
// new ID and a text unique to it.
func (k *kit) reply(t *testing.T, fx *Fixture, label string) *core.Message {
	t.Helper()
	tpl := fx.Outbound(t)
	if tpl == nil {
		t.Fatal("adaptertest: Fixture.Outbound returned nil")
	}
	m := tpl.Clone()
	m.V = core.EnvelopeVersion
	m.ID = core.NewID()
	m.Text = fmt.Sprintf("adaptertest: %s %s", label, m.ID)
	if m.Kind == "" {
		m.Kind = core.KindMessage
	}
	if m.Direction == "" {
		m.Direction = core.Outbound
	}
	if m.Channel == "" {
		m.Channel = k.h.Name
	}
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = time.Now().UTC()
	}
	if m.Direction != core.Outbound || m.Channel != k.h.Name {
		t.Fatalf("adaptertest: Fixture.Outbound returned a %s message on channel %q, want outbound on %q", m.Direction, m.Channel, k.h.Name)
	}
	if m.To != "" && m.To.Channel() != k.h.Name {
		t.Fatalf("adaptertest: Fixture.Outbound returned To %q, want an identity of channel %q", m.To, k.h.Name)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("adaptertest: Fixture.Outbound returned an invalid message: %v", err)
	}
	return m
}

// sentCount returns how many of the provider's sent texts contain text.
func sentCount(t *testing.T, fx *Fixture, text string) int {
	t.Helper()
	n := 0
	for _, s := range fx.Sent(t) {
		if strings.Contains(s, text) {
			n++
		}
	}
	return n
}

// outboundRoundTrip: a reply published on omni.out.<channel> reaches the
// provider once, a delivery.sent event follows, and the same envelope seen
// again (a redelivery after a lost ack) is not sent again.
func (k *kit) outboundRoundTrip(t *testing.T) {
	skipIf(t, k.h.Skip.Outbound, "Outbound")
	env, fx := k.fixture(t)
	requireHooks(t, "Outbound", outboundHooks(fx)...)
	env.Start(t, fx.Adapter)

	m := k.reply(t, fx, "reply")
	env.PublishOutbound(t, m, "")
	// The event follows Send's return: by then the provider has it.
	var ev *core.Message
	bustest.Eventually(t, k.h.Timeout, func() error {
		evs := env.Events(t, event.DeliverySent, m.ID)
		if len(evs) == 0 {
			return fmt.Errorf("no %s event on %s with reply_to %s (the provider received the reply %d times)", event.DeliverySent, bus.SubjectEvt(event.DeliverySent), m.ID, sentCount(t, fx, m.Text))
		}
		ev = evs[0]
		return nil
	})
	if n := sentCount(t, fx, m.Text); n != 1 {
		t.Fatalf("the provider received the reply %d times, want 1 (sent: %q)", n, fx.Sent(t))
	}
	if ev.Kind != core.KindEvent || ev.Channel != k.h.Name || ev.To != m.To {
		t.Errorf("delivery event: kind %q channel %q to %q, want event, %q, %q", ev.Kind, ev.Channel, ev.To, k.h.Name, m.To)
	}

	// The same envelope again, under another deduplication id, as JetStream
	// redelivers a reply whose ack was lost.
	seq := env.PublishOutbound(t, m, m.ID+":redelivered")
	env.WaitSent(t, seq)
	if n := sentCount(t, fx, m.Text); n != 1 {
		t.Errorf("the provider received the reply %d times after a redelivery, want 1", n)
	}
	if evs := env.Events(t, event.DeliverySent, m.ID); len(evs) != 1 {
		t.Errorf("%d %s events for one reply, want 1", len(evs), event.DeliverySent)
	}
	if dl, err := env.Bus.DeadLetters(t.Context(), "", 0); err != nil {
		t.Fatalf("dead letters: %v", err)
	} else if len(dl) > 0 {
		t.Errorf("%d dead letter(s) after a successful send, first: %s", len(dl), dl[0].Error)
	}
}

// outboundRateLimited: the provider's throttling becomes an error carrying a
// retry delay (adapters.RetryAfter), so the runtime redelivers later.
func (k *kit) outboundRateLimited(t *testing.T) {
	skipIf(t, k.h.Skip.Outbound, "Outbound")
	skipIf(t, k.h.Skip.RateLimited, "RateLimited")
	env, fx := k.fixture(t)
	requireHooks(t, "Outbound", outboundHooks(fx)...)
	requireHooks(t, "RateLimited", hook{"RateLimited", fx.RateLimited == nil})
	env.Start(t, fx.Adapter)

	fx.RateLimited(t)
	m := k.reply(t, fx, "throttled")
	_, err := fx.Adapter.Send(t.Context(), m)
	switch delay, ok := bus.RetryDelay(err); {
	case err == nil:
		t.Fatal("Send to a throttling provider returned no error")
	case !ok:
		t.Errorf("Send to a throttling provider: %v; want an error wrapped with adapters.RetryAfter", err)
	case delay <= 0:
		t.Errorf("Send to a throttling provider asked to retry after %s; want a positive delay (the provider's Retry-After, or a default)", delay)
	}
	if bus.IsPermanent(err) {
		t.Errorf("Send to a throttling provider: %v is Permanent; throttling passes", err)
	}
	if n := sentCount(t, fx, m.Text); n != 0 {
		t.Errorf("a throttling provider reports the message as sent %d times", n)
	}
}

// outboundBadRecipient: an invalid recipient is a Permanent error; through the
// runtime it becomes a delivery.failed event and a dead letter at the first
// attempt.
func (k *kit) outboundBadRecipient(t *testing.T) {
	skipIf(t, k.h.Skip.Outbound, "Outbound")
	skipIf(t, k.h.Skip.BadRecipient, "BadRecipient")
	env, fx := k.fixture(t)
	requireHooks(t, "Outbound", outboundHooks(fx)...)
	requireHooks(t, "BadRecipient", hook{"BadRecipient", fx.BadRecipient == nil})
	env.Start(t, fx.Adapter)

	fx.BadRecipient(t)
	direct := k.reply(t, fx, "bad recipient")
	_, err := fx.Adapter.Send(t.Context(), direct)
	if err == nil {
		t.Fatal("Send to an invalid recipient returned no error")
	} else if !bus.IsPermanent(err) {
		t.Errorf("Send to an invalid recipient: %v; want an error wrapped with adapters.Permanent", err)
	}
	reason, unreachable := adapters.UnreachableReason(err)

	m := k.reply(t, fx, "bad recipient via runtime")
	env.PublishOutbound(t, m, "")
	if unreachable {
		// The recipient cannot be reached on this channel: the reply goes
		// back to the pipeline, for another channel, instead of the DLQ.
		k.wantUnreachable(t, env, fx, m, reason)
		return
	}
	var ev *core.Message
	bustest.Eventually(t, k.h.Timeout, func() error {
		evs := env.Events(t, event.DeliveryFailed, m.ID)
		if len(evs) == 0 {
			return fmt.Errorf("no %s event with reply_to %s", event.DeliveryFailed, m.ID)
		}
		ev = evs[0]
		return nil
	})
	if ev.Meta[event.MetaError] == "" {
		t.Errorf("%s event has no meta error", event.DeliveryFailed)
	}
	var dl bus.DeadLetter
	bustest.Eventually(t, k.h.Timeout, func() error {
		dls, err := env.Bus.DeadLetters(t.Context(), sendDurable(k.h.Name), 0)
		if err != nil {
			return err
		}
		if len(dls) == 0 {
			return fmt.Errorf("no dead letter of stage %s", sendDurable(k.h.Name))
		}
		dl = dls[0]
		return nil
	})
	if dl.Subject != bus.SubjectOut(k.h.Name) {
		t.Errorf("dead letter of subject %s, want %s", dl.Subject, bus.SubjectOut(k.h.Name))
	}
	if got, err := core.Decode(dl.Data); err != nil || got.ID != m.ID {
		t.Errorf("dead letter is not the reply %s (decode: %v)", m.ID, err)
	}
	if dl.Deliveries != 1 {
		t.Errorf("dead-lettered after %d deliveries, want 1: a Permanent error is not retried", dl.Deliveries)
	}
	if n := sentCount(t, fx, "bad recipient"); n != 0 {
		t.Errorf("the provider reports %d message(s) to an invalid recipient as sent", n)
	}
	if evs := env.Events(t, event.DeliverySent, m.ID); len(evs) != 0 {
		t.Errorf("%s event for a reply that failed", event.DeliverySent)
	}
}

// wantUnreachable checks what the runtime does with reply m, whose Send
// failed with adapters.Unreachable for reason: delivery.failed with the reason,
// contact.unreachable carrying the reply on the channel's inbound subject,
// no dead letter, nothing sent.
func (k *kit) wantUnreachable(t *testing.T, env *Env, fx *Fixture, m *core.Message, reason string) {
	t.Helper()
	bustest.Eventually(t, k.h.Timeout, func() error {
		evs := env.Events(t, event.DeliveryFailed, m.ID)
		if len(evs) == 0 {
			return fmt.Errorf("no %s event with reply_to %s", event.DeliveryFailed, m.ID)
		}
		if evs[0].Meta[event.MetaReason] != reason || evs[0].Meta[event.MetaError] == "" {
			return fmt.Errorf("%s meta %v, want reason %q and an error", event.DeliveryFailed, evs[0].Meta, reason)
		}
		return nil
	})
	bustest.Eventually(t, k.h.Timeout, func() error {
		for _, s := range env.Stored(t, bus.StreamIn) {
			if u := s.Message; u != nil && u.Type == event.ContactUnreachable && u.ReplyTo == m.ID {
				if u.Text != m.Text || u.From != m.To || u.Meta[event.MetaReason] != reason {
					return fmt.Errorf("%s %+v: want the reply's text, from %s, reason %q", event.ContactUnreachable, u, m.To, reason)
				}
				return nil
			}
		}
		return fmt.Errorf("no %s carrying reply %s on %s", event.ContactUnreachable, m.ID, bus.StreamIn)
	})
	if dls, err := env.Bus.DeadLetters(t.Context(), sendDurable(k.h.Name), 0); err != nil || len(dls) != 0 {
		t.Errorf("%d dead letters (%v): an unreachable recipient is the pipeline's to route around", len(dls), err)
	}
	if n := sentCount(t, fx, "bad recipient"); n != 0 {
		t.Errorf("the provider reports %d message(s) to an unreachable recipient as sent", n)
	}
}

// outboundConcurrent: Send called from many goroutines at once delivers each
// message once; run with -race, it also proves Send free of data races.
func (k *kit) outboundConcurrent(t *testing.T) {
	skipIf(t, k.h.Skip.Outbound, "Outbound")
	env, fx := k.fixture(t)
	requireHooks(t, "Outbound", outboundHooks(fx)...)
	env.Start(t, fx.Adapter)

	msgs := make([]*core.Message, concurrentSends)
	for i := range msgs {
		msgs[i] = k.reply(t, fx, fmt.Sprintf("concurrent %d", i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), k.h.Timeout)
	defer cancel()
	receipts := make([]adapters.Receipt, len(msgs))
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() { receipts[i], errs[i] = fx.Adapter.Send(ctx, m) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Send %d: %v", i, err)
			continue
		}
		if st := receipts[i].Status; st != "" && !slices.Contains([]string{"sent", "queued", "delivered"}, st) {
			t.Errorf("concurrent Send %d: receipt status %q, want sent, queued or delivered", i, st)
		}
	}
	for i, m := range msgs {
		if n := sentCount(t, fx, m.Text); n != 1 {
			t.Errorf("message %d of %d concurrent sends reached the provider %d times, want 1", i, len(msgs), n)
		}
	}
}
