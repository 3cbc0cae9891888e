package slack_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// TestCommands runs /omni: help, whois, reply-via (refused for a channel the
// customer has no identity on), link (through the pipeline), then reply-via
// email, after which a reply goes out by email as HTML; close by thread link.
func TestCommands(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	run := func(user, text string) string {
		t.Helper()
		code, say := d.command(user, ch, text)
		if code != http.StatusOK {
			t.Fatalf("/omni %s answered %d %s", text, code, say)
		}
		return say
	}

	if say := run(agentUser, "help"); !strings.Contains(say, "/omni close") || !strings.Contains(say, "`//`") {
		t.Errorf("help: %q", say)
	}
	if say := run(agentUser, "whois"); !strings.Contains(say, "Which conversation?") {
		t.Errorf("whois without a conversation: %q", say)
	}
	if say := run(agentUser, "whois "+conv.ID); !strings.Contains(say, "SMS: +15550001111") || !strings.Contains(say, "replies go via sms") {
		t.Errorf("whois: %q", say)
	}
	// Having worked on it, the agent may leave the conversation out.
	if say := run(agentUser, "reply-via email"); !strings.Contains(say, "no email identity") {
		t.Errorf("reply-via a channel without identity: %q", say)
	}
	if say := run(agentUser, "link not-an-identity"); !strings.Contains(say, "is not an identity") {
		t.Errorf("link garbage: %q", say)
	}
	if say := run(agentUser, "link email:ann@example.com"); !strings.Contains(say, "Linking") {
		t.Errorf("link: %q", say)
	}
	links := d.waitStored(bus.StreamIn, "omni.in.slack.", 1)
	if l := links[0]; l.Type != event.ContactLink || l.Meta[event.MetaIdentity] != "email:ann@example.com" || l.ConversationID != conv.ID {
		t.Errorf("link event %+v", l)
	}
	bustest.Eventually(t, wait, func() error {
		c, err := d.env.Store.ContactByIdentity(t.Context(), "email:ann@example.com")
		if err != nil {
			return err
		}
		if c.ID != conv.ContactID {
			return fmt.Errorf("linked to %s", c.ID)
		}
		return nil
	})
	if say := run(agentUser, "reply-via email"); !strings.Contains(say, "Replies go via Email") {
		t.Errorf("reply-via email: %q", say)
	}
	d.waitCard(ch, ts, "Replies via")
	d.postEvent(slackfake.EventPayload("EvC1", slackfake.AgentReply(agentUser, ch, ts, "1700000003.000100", "Your *invoice* is attached")), 0)
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("email"), 1)
	o := outs[0]
	if o.To != "email:ann@example.com" || o.Text != "Your **invoice** is attached" || o.Meta[event.MetaFormat] != event.FormatMarkdown || o.Meta[event.MetaReplyVia] != "email" {
		t.Errorf("email reply to %s text %q meta %v", o.To, o.Text, o.Meta)
	}
	// The email channel shows it as HTML beside the plain text.
	adapters.Render(o, adapters.FormatHTML)
	if o.HTML != "<p>Your <strong>invoice</strong> is attached</p>\n" || o.Text != "Your invoice is attached" {
		t.Errorf("email renders text %q html %q", o.Text, o.HTML)
	}
	if say := run(agentUser, "reply-via auto"); !strings.Contains(say, "last") {
		t.Errorf("reply-via auto: %q", say)
	}

	// Availability goes to routing as agent.away / agent.back events.
	if say := run(agentUser, "away"); !strings.Contains(say, "You are away") {
		t.Errorf("away: %q", say)
	}
	aways := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.AgentAway), 1)
	if a := aways[0]; a.Meta["agent"] != "slack:"+agentUser {
		t.Errorf("agent.away %+v", a)
	}
	if say := run(agentUser, "back"); !strings.Contains(say, "Welcome back") {
		t.Errorf("back: %q", say)
	}
	d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.AgentBack), 1)
	if say := run(agentUser, "frobnicate"); !strings.Contains(say, "/omni help") {
		t.Errorf("unknown command: %q", say)
	}
	// Another agent names the conversation by a link to its thread.
	if say := run(agent2User, "close <"+slackfake.Permalink(ch, ts)+">"); !strings.Contains(say, "Closing") {
		t.Errorf("close by link: %q", say)
	}
	d.waitCard(ch, ts, "Closed")
	d.waitNote(ts, "<@"+agent2User+"> closed this conversation")
}
