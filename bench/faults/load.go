package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/bench/internal/harness"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// generator offers the load: signed SMS webhooks from every customer, each
// customer's messages one after the other (the next only once the previous one
// was answered, so their order is defined), alternating between the replicas;
// and agent replies published the way a desk publishes them.
type generator struct {
	senders   int
	rate      float64 // webhooks a second, all customers together
	replyRate float64 // replies a second
	bases     []string
	client    *http.Client
	js        jetstream.JetStream
	ledger    *ledger

	mu       sync.Mutex
	failures map[int]map[string]int // per phase, failed attempts by cause
	window   map[int][2]time.Time   // per phase, the first and last failed attempt
}

// phone is customer s's number.
func phone(s int) string { return fmt.Sprintf("+1555%07d", s) }

// partitionOf is the inbound partition of customer s's messages.
func partitionOf(s int) int {
	return bus.PartitionOf(string(core.NewIdentity(smsChannel, phone(s))))
}

// run offers phase's load, with replies when replies is set, until stop is
// closed, then waits for the requests in flight. Each customer sends every senders/rate seconds, the customers spread
// evenly over that interval; a customer whose answer came late skips the
// slots it missed rather than bursting.
func (g *generator) run(ctx context.Context, phase int, stop <-chan struct{}, replies bool) {
	var wg sync.WaitGroup
	interval := time.Duration(float64(g.senders) / g.rate * float64(time.Second))
	start := time.Now()
	for s := range g.senders {
		wg.Go(func() {
			due := start.Add(interval * time.Duration(s) / time.Duration(g.senders))
			for n := 1; ; n++ {
				t := time.NewTimer(time.Until(due))
				select {
				case <-stop:
					t.Stop()
					return
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				g.send(ctx, key{phase, s, n})
				if due = due.Add(interval); due.Before(time.Now()) {
					due = time.Now()
				}
			}
		})
	}
	if replies && g.replyRate > 0 {
		wg.Go(func() { g.replies(ctx, phase, stop) })
	}
	wg.Wait()
}

// send offers one webhook: to one replica, and on a failure (no answer, or a
// non-2xx one) once more to the other, as a load balancer would. Only a 2xx
// answer accepts the message.
func (g *generator) send(ctx context.Context, k key) {
	wh := harness.SMSWebhook{
		SID:  harness.MessageSID(uint64(k.phase)<<48 | uint64(k.sender)<<24 | uint64(k.n)),
		From: phone(k.sender), Body: fmt.Sprintf(customerText, k.phase, k.sender, k.n),
	}
	at := time.Now()
	first := (k.sender + k.n) % len(g.bases)
	accepted := false
	for try := range len(g.bases) {
		code, err := wh.Post(ctx, g.client, g.bases[(first+try)%len(g.bases)])
		if ctx.Err() != nil {
			return
		}
		if err == nil && code/100 == 2 {
			accepted = true
			break
		}
		g.failed(k.phase, cause(code, err))
	}
	g.ledger.offered(false, k, at, accepted)
}

// cause names why an attempt failed, for the report.
func cause(code int, err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return fmt.Sprintf("HTTP %d", code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "no answer"
	}
}

func (g *generator) failed(phase int, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures == nil {
		g.failures = map[int]map[string]int{}
	}
	if g.failures[phase] == nil {
		g.failures[phase] = map[string]int{}
	}
	g.failures[phase][why]++
	if g.window == nil {
		g.window = map[int][2]time.Time{}
	}
	w, now := g.window[phase], time.Now()
	if w[0].IsZero() {
		w[0] = now
	}
	w[1] = now
	g.window[phase] = w
}

// failuresOf returns phase's failed attempts by cause, and when the first and
// the last of them failed.
func (g *generator) failuresOf(phase int) (map[string]int, [2]time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failures[phase], g.window[phase]
}

// replies publishes agent replies at replyRate until stop is closed, to the
// customers in turn (those whose conversation is known), one at a time: the
// next is published once the previous one's publish was acknowledged or
// failed, so the replies to one customer have a defined order. A reply is what
// the Slack desk publishes for an agent's message in a thread: an outbound
// message on the desk's channel with the conversation id, on
// omni.in.<desk>.<partition of the conversation>; the pipeline's reply path
// takes it to the SMS adapter, which sends it to the fake Twilio.
func (g *generator) replies(ctx context.Context, phase int, stop <-chan struct{}) {
	t := time.NewTicker(time.Duration(float64(time.Second) / g.replyRate))
	defer t.Stop()
	count := map[int]int{}
	next := 0
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, conv := -1, ""
		for range g.senders {
			c, ok := g.ledger.conversationOf(next % g.senders)
			next++
			if ok {
				s, conv = (next-1)%g.senders, c
				break
			}
		}
		if s < 0 {
			continue
		}
		count[s]++
		g.reply(ctx, key{phase, s, count[s]}, conv)
	}
}

func (g *generator) reply(ctx context.Context, k key, conv string) {
	m := core.NewMessage(core.KindMessage, core.Outbound, slack.Name)
	m.From = core.NewIdentity(slack.Name, "UFAULTS")
	m.ConversationID = conv
	m.Text = fmt.Sprintf(replyText, k.phase, k.sender, k.n)
	m.External = core.External{Message: fmt.Sprintf("faults-%d-%d-%d", k.phase, k.sender, k.n)}
	data, err := m.Encode()
	if err != nil {
		panic(fmt.Sprintf("faults: reply envelope: %v", err)) // built above: a bug here
	}
	msg := nats.NewMsg(bus.SubjectIn(slack.Name, conv))
	msg.Data = data
	msg.Header.Set(bus.HeaderMsgID, bus.MsgID(m.Channel, m.External.Message))
	msg.Header.Set(bus.HeaderOrderKey, bus.OrderKeyOf(m))
	at := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = g.js.PublishMsg(pctx, msg)
	cancel()
	if ctx.Err() != nil {
		return
	}
	g.ledger.offered(true, k, at, err == nil)
}
