package pipeline_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/pipeline"
)

// sender returns the identity of test sender i, spread over four channels.
func sender(i int) core.Identity {
	switch i % 4 {
	case 0:
		return core.Identity(fmt.Sprintf("sms:+1555%07d", i))
	case 1:
		return core.Identity(fmt.Sprintf("email:user%d@example.com", i))
	case 2:
		return core.Identity(fmt.Sprintf("web:visitor-%d", i))
	}
	return core.Identity("telegram:" + strconv.Itoa(i))
}

// publishAsync publishes count messages round robin over senders senders,
// without waiting for each ack; one connection keeps each sender's order. The
// text of a sender's i-th message is i.
func publishAsync(tb testing.TB, js jetstream.JetStream, senders, count int) {
	tb.Helper()
	for k := range count {
		m := customer(sender(k%senders), strconv.Itoa(k/senders))
		data, err := m.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		msg := nats.NewMsg(bus.SubjectIn(m.Channel, string(m.From)))
		msg.Data = data
		msg.Header.Set(bus.HeaderMsgID, m.ID)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			tb.Fatalf("publish: %v", err)
		}
		if js.PublishAsyncPending() >= 1000 {
			waitAcks(tb, js)
		}
	}
	waitAcks(tb, js)
}

// waitAcks waits until every asynchronous publish on js is acknowledged.
func waitAcks(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("publishes not acknowledged within a minute")
	}
}

// waitDesk waits until omni.desk.slack holds n messages. It fails when the count
// stops growing for stall, not after a fixed time: a loaded machine is slow, a
// stuck pipeline makes no progress at all.
func waitDesk(ctx context.Context, tb testing.TB, js jetstream.JetStream, n uint64, stall time.Duration) {
	tb.Helper()
	st, err := js.Stream(ctx, bus.StreamDesk)
	if err != nil {
		tb.Fatal(err)
	}
	var last uint64
	progressed := time.Now()
	for {
		info, err := st.Info(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		switch got := info.State.Msgs; {
		case got >= n:
			return
		case got > last:
			last, progressed = got, time.Now()
		case time.Since(progressed) > stall:
			tb.Fatalf("desk holds %d messages, want %d, and got none for %s", got, n, stall)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPipeline_Replicas: two pipelines on one bus share 10,000 messages of 500
// senders; every conversation's transcript holds its messages once each, in the
// order they were published, and the store holds one contact and one open
// conversation per sender.
func TestPipeline_Replicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		t.Parallel() // each backend keeps about one core busy; two cores run both
		senders, perSender := 500, 20
		if testing.Short() {
			senders, perSender = 100, 10
		}
		srv := bustest.RunServer(t)
		b1, b2 := openBus(t, srv), openBus(t, srv)
		e := &env{t: t, ctx: testCtx(t), srv: srv, bus: b1, st: be.Open(t, b1), js: b1.JetStream()}
		e.run(b1, e.st, pipeline.Config{})
		e.run(b2, be.Open(t, b2), pipeline.Config{})

		start := time.Now()
		pub, err := jetstream.New(srv.Connect(t))
		if err != nil {
			t.Fatal(err)
		}
		publishAsync(t, pub, senders, senders*perSender)
		waitDesk(e.ctx, t, e.js, uint64(senders*perSender), time.Minute)
		t.Logf("%d messages through two pipelines in %s", senders*perSender, time.Since(start).Round(time.Millisecond))

		verifyStart := time.Now()
		var (
			mu            sync.Mutex
			conversations = map[string]int{}
			wg            sync.WaitGroup
			next          atomic.Int64
		)
		for range 8 {
			wg.Go(func() {
				for s := int(next.Add(1) - 1); s < senders && !t.Failed(); s = int(next.Add(1) - 1) {
					conv, err := checkSender(e, s, perSender)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					conversations[conv]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(conversations) != senders && !t.Failed() {
			t.Errorf("%d senders in %d conversations", senders, len(conversations))
		}
		ctx := e.ctx
		for bucket, want := range map[string]int{"contacts": senders, "open": senders, "conversations": senders} {
			keys, err := e.st.KV().Keys(ctx, bucket, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != want {
				t.Errorf("store bucket %s holds %d keys, want %d", bucket, len(keys), want)
			}
		}
		e.wantNoDeadLetters()
		t.Logf("verified in %s", time.Since(verifyStart).Round(time.Millisecond))
	})
}

// checkSender checks that sender s has a contact, an open conversation, and the
// transcript of its perSender messages in order, and returns the conversation.
func checkSender(e *env, s, perSender int) (string, error) {
	ctx := e.ctx
	c, err := e.st.ContactByIdentity(ctx, sender(s))
	if err != nil {
		return "", fmt.Errorf("sender %d: %w", s, err)
	}
	conv, err := e.st.OpenConversation(ctx, c.ID)
	if err != nil {
		return "", fmt.Errorf("sender %d: %w", s, err)
	}
	tr, _, err := pipeline.Transcript(ctx, e.js, conv.ID, 0, pipeline.MaxTranscriptLimit)
	if err != nil {
		return "", fmt.Errorf("sender %d: %w", s, err)
	}
	if len(tr) != perSender {
		return "", fmt.Errorf("sender %d: transcript holds %d entries, want %d", s, len(tr), perSender)
	}
	for i, te := range tr {
		m := te.Message
		if te.Err != nil || m.Text != strconv.Itoa(i) || m.From != sender(s) || m.ContactID != c.ID {
			texts := []string{}
			for _, x := range tr {
				texts = append(texts, x.Message.Text)
			}
			return "", fmt.Errorf("sender %d: entry %d is %+v, want %q from %s of %s (transcript %v)", s, i, te, strconv.Itoa(i), sender(s), c.ID, texts)
		}
	}
	return conv.ID, nil
}

// TestPipeline_Restart: a pipeline stopped mid-stream and another started in its
// place put every message through once, in order.
func TestPipeline_Restart(t *testing.T) {
	const senders, perSender = 20, 20
	srv := bustest.RunServer(t)
	b := openBus(t, srv)
	e := &env{t: t, ctx: testCtx(t), srv: srv, bus: b, st: kvBackend().Open(t, b), js: b.JetStream()}

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	p, err := pipeline.New(pipeline.Config{PhoneChannels: phoneChannels}, pipeline.Deps{Bus: b, Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- p.Run(ctx) }()
	pub, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	publishAsync(t, pub, senders, senders*perSender)
	waitDesk(e.ctx, t, e.js, senders*perSender/4, time.Minute)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first pipeline: %v", err)
	}

	e.run(b, e.st, pipeline.Config{})
	waitDesk(e.ctx, t, e.js, senders*perSender, time.Minute)
	for s := range senders {
		if _, err := checkSender(e, s, perSender); err != nil {
			t.Error(err)
		}
	}
	if n := len(e.messages(bus.StreamDesk, bus.SubjectDesk("slack"))); n != senders*perSender {
		t.Errorf("desk holds %d messages, want %d", n, senders*perSender)
	}
	e.wantNoDeadLetters()
}

// TestPipeline_ReplicaKilled: of two pipelines sharing the partitions, one loses
// its connection mid-stream without stopping (as a killed process does); its
// partitions move to the other, which puts every message through once, in order.
func TestPipeline_ReplicaKilled(t *testing.T) {
	const senders, perSender = 40, 50
	srv := bustest.RunServer(t)
	victim, survivor := openBus(t, srv), openBus(t, srv)
	e := &env{t: t, ctx: testCtx(t), srv: srv, bus: survivor, st: kvBackend().Open(t, survivor), js: survivor.JetStream()}
	vp, err := pipeline.New(pipeline.Config{PhoneChannels: phoneChannels}, pipeline.Deps{Bus: victim, Store: kvBackend().Open(t, victim)})
	if err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithCancel(e.ctx)
	vdone := make(chan error, 1)
	go func() { vdone <- vp.Run(vctx) }() // it dies: its error is no news
	t.Cleanup(func() { vcancel(); <-vdone })
	e.run(survivor, e.st, pipeline.Config{})

	pub, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	publishAsync(t, pub, senders, senders*perSender)
	waitDesk(e.ctx, t, e.js, senders*perSender/4, time.Minute)
	victim.JetStream().Conn().Close()
	killed := time.Now()
	waitDesk(e.ctx, t, e.js, senders*perSender, time.Minute)
	t.Logf("all %d messages at the desk %s after the kill", senders*perSender, time.Since(killed).Round(time.Millisecond))
	for s := range senders {
		if _, err := checkSender(e, s, perSender); err != nil {
			t.Error(err)
		}
	}
	if n := len(e.messages(bus.StreamDesk, bus.SubjectDesk("slack"))); n != senders*perSender {
		t.Errorf("desk holds %d messages, want %d", n, senders*perSender)
	}
	e.wantNoDeadLetters()
}
