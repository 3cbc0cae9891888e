package adaptertest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// incoming is the customer message numbered n.
func incoming(n int) Incoming {
	return Incoming{N: n, Text: fmt.Sprintf("adaptertest: customer message %d", n)}
}

// deliver makes the provider deliver in. A webhook must answer 2xx, and by
// then JetStream must hold at least stored messages on OMNI_IN: a webhook
// acknowledges only what is durable.
func (k *kit) deliver(t *testing.T, env *Env, fx *Fixture, in Incoming, stored uint64) {
	t.Helper()
	req := fx.Inbound(t, in)
	if req == nil {
		return // a polling adapter's Run fetches it
	}
	resp := env.Serve(t, req)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("webhook delivering message %d answered %d %s, want 2xx", in.N, resp.StatusCode, body(resp))
	}
	if n := env.Count(t, bus.StreamIn); n < stored {
		t.Fatalf("webhook answered %d with %d message(s) on %s, want %d: answer 2xx only after Publisher.Inbound returned (the JetStream ack)",
			resp.StatusCode, n, bus.StreamIn, stored)
	}
}

// waitInbound waits until OMNI_IN holds n messages and returns them.
func (k *kit) waitInbound(t *testing.T, env *Env, n int) []Stored {
	t.Helper()
	bustest.Eventually(t, k.h.Timeout, func() error {
		if got := env.Count(t, bus.StreamIn); got < uint64(n) {
			return fmt.Errorf("%d message(s) on %s, want %d", got, bus.StreamIn, n)
		}
		return nil
	})
	return env.Stored(t, bus.StreamIn)
}

// checkInbound checks that s is the normalized envelope of in.
func (k *kit) checkInbound(t *testing.T, s Stored, in Incoming, since time.Time) {
	t.Helper()
	name := k.h.Name
	if s.Err != nil {
		t.Fatalf("message %d: stored envelope does not decode: %v", in.N, s.Err)
	}
	m := s.Message
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if m.V != core.EnvelopeVersion {
		bad("v = %d, want %d", m.V, core.EnvelopeVersion)
	}
	if !core.ValidID(m.ID) {
		bad("id %q is not a ULID", m.ID)
	}
	if m.Kind != core.KindMessage {
		bad("kind = %q, want %q", m.Kind, core.KindMessage)
	}
	if m.Direction != core.Inbound {
		bad("direction = %q, want %q", m.Direction, core.Inbound)
	}
	if m.Channel != name {
		bad("channel = %q, want %q (Name())", m.Channel, name)
	}
	if _, err := core.ParseIdentity(string(m.From)); err != nil {
		bad("from: %v", err)
	} else if m.From.Channel() != name {
		bad("from = %q: want an identity of channel %q, like %s:<address>", m.From, name, name)
	}
	if m.ReceivedAt.IsZero() {
		bad("received_at is not set")
	} else if m.ReceivedAt.Before(since.Add(-time.Minute)) || m.ReceivedAt.After(time.Now().Add(time.Minute)) {
		bad("received_at = %s, want the time it was received (about %s)", m.ReceivedAt, since.UTC())
	}
	if m.External.Message == "" {
		bad("external.message is empty: set the provider's message id, which deduplicates provider retries")
	}
	if !strings.Contains(m.Text, in.Text) {
		bad("text = %q, want it to contain %q", m.Text, in.Text)
	}
	if m.From != "" && core.ValidChannel(m.Channel) {
		if want := bus.SubjectIn(m.Channel, string(m.From)); s.Subject != want {
			bad("published on %s, want %s (omni.in.<channel>.<partition of the sender>)", s.Subject, want)
		}
	}
	if m.External.Message != "" {
		if want := bus.MsgID(name, m.External.Message); s.MsgID != want {
			bad("Nats-Msg-Id = %q, want %q", s.MsgID, want)
		}
	}
	if len(problems) > 0 {
		t.Errorf("message %d is not normalized:\n\t%s", in.N, strings.Join(problems, "\n\t"))
	}
}

// inboundNormalized: one customer message becomes one envelope with every
// required field, on omni.in.<channel>.<partition>.
func (k *kit) inboundNormalized(t *testing.T) {
	skipIf(t, k.h.Skip.Inbound, "Inbound")
	env, fx := k.fixture(t)
	requireHooks(t, "Inbound", hook{"Inbound", fx.Inbound == nil})
	env.Start(t, fx.Adapter)

	since := time.Now()
	in := incoming(1)
	k.deliver(t, env, fx, in, 1)
	got := k.waitInbound(t, env, 1)
	if len(got) != 1 {
		t.Fatalf("%d messages on %s after one delivery, want 1", len(got), bus.StreamIn)
	}
	k.checkInbound(t, got[0], in, since)
}

// inboundReplay: the same provider message delivered twice is stored once;
// a different one is stored too.
func (k *kit) inboundReplay(t *testing.T) {
	skipIf(t, k.h.Skip.Inbound, "Inbound")
	env, fx := k.fixture(t)
	requireHooks(t, "Inbound", hook{"Inbound", fx.Inbound == nil})
	env.Start(t, fx.Adapter)

	first, second := incoming(1), incoming(2)
	k.deliver(t, env, fx, first, 1)
	k.waitInbound(t, env, 1)
	k.deliver(t, env, fx, first, 1) // the provider's retry: must be answered 2xx too
	k.deliver(t, env, fx, second, 2)
	got := k.waitInbound(t, env, 2)
	if len(got) != 2 {
		t.Fatalf("%d messages on %s after delivering message 1 twice and message 2 once, want 2: "+
			"set External.Message to the provider's message id (Publisher.Inbound deduplicates on it)", len(got), bus.StreamIn)
	}
	for i, in := range []Incoming{first, second} {
		if got[i].Message == nil || !strings.Contains(got[i].Message.Text, in.Text) {
			t.Errorf("message %d on %s is not customer message %d", i+1, bus.StreamIn, in.N)
		}
	}
	if got[0].MsgID == got[1].MsgID {
		t.Errorf("two different provider messages share Nats-Msg-Id %q: the second would be dropped as a duplicate", got[0].MsgID)
	}
}

// inboundForged: a request with a bad signature is refused with 401 or 403 and
// nothing is published.
func (k *kit) inboundForged(t *testing.T) {
	skipIf(t, k.h.Skip.Forged, "Forged")
	env, fx := k.fixture(t)
	requireHooks(t, "Forged", hook{"Forged", fx.Forged == nil})
	env.Start(t, fx.Adapter)
	k.rejected(t, env, fx, fx.Forged(t), "forged", http.StatusUnauthorized, http.StatusForbidden)
}

// inboundMalformed: a body the provider would never send is refused with 400
// and nothing is published.
func (k *kit) inboundMalformed(t *testing.T) {
	skipIf(t, k.h.Skip.Malformed, "Malformed")
	env, fx := k.fixture(t)
	requireHooks(t, "Malformed", hook{"Malformed", fx.Malformed == nil})
	env.Start(t, fx.Adapter)
	k.rejected(t, env, fx, fx.Malformed(t), "malformed", http.StatusBadRequest)
}

// rejected serves req, expects one of the codes, and checks that nothing was
// published: not before the answer, and not after it either, which a valid
// delivery that follows (when the harness can make one) proves.
func (k *kit) rejected(t *testing.T, env *Env, fx *Fixture, req *http.Request, what string, codes ...int) {
	t.Helper()
	if req == nil {
		t.Fatalf("adaptertest: Fixture.%s returned no request", strings.ToUpper(what[:1])+what[1:])
	}
	resp := env.Serve(t, req)
	ok := false
	for _, c := range codes {
		ok = ok || resp.StatusCode == c
	}
	if !ok {
		t.Errorf("%s webhook answered %d %s, want %v", what, resp.StatusCode, body(resp), codes)
	}
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Fatalf("%s webhook published %d message(s) on %s, want none", what, n, bus.StreamIn)
	}
	if k.h.Skip.Inbound || fx.Inbound == nil {
		return
	}
	in := incoming(1)
	k.deliver(t, env, fx, in, 1)
	got := k.waitInbound(t, env, 1)
	if len(got) != 1 || got[0].Message == nil || !strings.Contains(got[0].Message.Text, in.Text) {
		t.Errorf("%d message(s) on %s after a %s webhook and one valid delivery, want only the valid one", len(got), bus.StreamIn, what)
	}
}

// body returns the start of resp's body, for failure messages.
func body(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_ = resp.Body.Close()
	if len(b) == 0 {
		return ""
	}
	return fmt.Sprintf("(%q)", strings.TrimSpace(string(b)))
}
