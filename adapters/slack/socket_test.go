package slack_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// TestSocketMode receives an agent's reply, a click and a command over Socket
// Mode: each is acknowledged after it was handled, the command with its
// answer; a redelivered event is processed once.
func TestSocketMode(t *testing.T) {
	d := newDesk(t, func(c *slack.Config) {
		c.Mode = slack.ModeSocket
		c.AppToken = testAppTok
		c.SigningSecret = ""
	})
	d.runRouting()
	bustest.Eventually(t, wait, func() error {
		if !d.fake.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
	// http mode's routes are not mounted.
	if code, _ := d.postEvent(slackfake.EventPayload("x", nil), 0); code != 404 && code != 405 {
		t.Errorf("events route answered %d in socket mode, want none", code)
	}
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)

	event := slackfake.EventPayload("EvS1", slackfake.AgentReply(agentUser, ch, ts, "1700000004.000100", "Over the socket"))
	d.fake.PushEvent(t, "env-1", event, 0)
	waitAck(t, d.fake, "env-1")
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)
	if outs[0].Text != "Over the socket" {
		t.Errorf("reply sent as %q", outs[0].Text)
	}
	// Slack sends it again (retry_attempt 1) under a new envelope.
	d.fake.PushEvent(t, "env-2", event, 1)
	waitAck(t, d.fake, "env-2")

	d.fake.PushInteraction(t, "env-3", slackfake.Click(agentUser, ch, ts, "omni_claim", conv.ID))
	waitAck(t, d.fake, "env-3")
	bustest.Eventually(t, wait, func() error {
		if a := d.conversation(conv.ID).Assignee; a != "slack:"+agentUser {
			return fmt.Errorf("assignee %q after a click over the socket", a)
		}
		return nil
	})
	d.waitCard(ch, ts, "<@"+agentUser+">")

	d.fake.PushCommand(t, "env-4", slackfake.Command(agentUser, ch, "whois "+conv.ID))
	payload := waitAck(t, d.fake, "env-4")
	if !strings.Contains(string(payload), "+15550001111") || !strings.Contains(string(payload), `"response_type":"ephemeral"`) {
		t.Errorf("command acknowledged with %s, want the whois answer", payload)
	}
	if n := len(d.stored(bus.StreamIn, "omni.in.slack.")); n != 1 {
		t.Errorf("%d replies published, want the redelivered event once", n)
	}
}

// TestSocketMode_Disconnect: Slack's disconnect messages through the fake
// Socket Mode. refresh_requested and warning get a new connection at once,
// which works (an event over it is handled and acknowledged) and the desk
// stays ready; link_disabled (Socket Mode turned off for the app) stops the
// adapter reconnecting and turns its readiness red with that reason.
func TestSocketMode_Disconnect(t *testing.T) {
	d := newDesk(t, func(c *slack.Config) {
		c.Mode = slack.ModeSocket
		c.AppToken = testAppTok
		c.SigningSecret = ""
	})
	connected := func(opens int) {
		t.Helper()
		bustest.Eventually(t, wait, func() error {
			if n := d.fake.Opens(); n != opens || !d.fake.Connected() {
				return fmt.Errorf("%d connections opened (connected %v), want %d", n, d.fake.Connected(), opens)
			}
			if err := d.a.Ready(t.Context()); err != nil {
				return err
			}
			return nil
		})
	}
	connected(1)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)

	for i, reason := range []string{slackfake.RefreshRequested, slackfake.Warning} {
		d.fake.Disconnect(t, reason)
		connected(i + 2)
		env := fmt.Sprintf("env-after-%s", reason)
		d.fake.PushEvent(t, env, slackfake.EventPayload("EvD"+strconv.Itoa(i), slackfake.AgentReply(agentUser, ch, ts, fmt.Sprintf("1700000009.00010%d", i), "after "+reason)), 0)
		waitAck(t, d.fake, env)
		d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), i+1)
	}

	d.fake.Disconnect(t, slackfake.LinkDisabled)
	bustest.Eventually(t, wait, func() error {
		err := d.a.Ready(t.Context())
		if !errors.Is(err, slack.ErrLinkDisabled) {
			return fmt.Errorf("ready: %v, want ErrLinkDisabled", err)
		}
		return nil
	})
	if err := d.a.Ready(t.Context()); !strings.Contains(err.Error(), "link_disabled") {
		t.Errorf("readiness %q does not name link_disabled", err)
	}
	if n, up := d.fake.Opens(), d.fake.Connected(); n != 3 || up {
		t.Errorf("after link_disabled: %d connections opened, connected %v; want no new one", n, up)
	}
}

func waitAck(t *testing.T, f *fakeSlack, id string) json.RawMessage {
	t.Helper()
	var payload json.RawMessage
	bustest.Eventually(t, wait, func() error {
		var ok bool
		if payload, ok = f.Ack(id); !ok {
			return fmt.Errorf("envelope %s not acknowledged", id)
		}
		return nil
	})
	return payload
}
