package pipeline_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

// TestPipeline_AgentLinkMerge: an agent links two contacts that both have open
// conversations: one contact remains, the desk is told, and the merged
// conversation's thread continues in the survivor's.
func TestPipeline_AgentLinkMerge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, pipeline.Options{Desks: []string{"slack", "helpdesk"}})
		const phone, mail = core.Identity("sms:+15550005555"), core.Identity("email:dan@example.com")
		e.publishIn(customer(phone, "sms question"))
		e.desk(1)
		e.publishIn(customer(mail, "email question"))
		desk := e.desk(2)
		c1, x1 := desk[0].ContactID, desk[0].ConversationID
		c2, x2 := desk[1].ContactID, desk[1].ConversationID
		if c1 == c2 || x1 == x2 {
			t.Fatal("two strangers share a contact or conversation")
		}

		e.publishDesk(deskEvent(event.ContactLink, x1, event.MetaIdentity, string(mail)))
		ev := e.desk(3)[2]
		want := map[string]string{event.MetaContact: c1, event.MetaMergedContact: c2, event.MetaConversation: x1, event.MetaClosedConversation: x2, event.MetaReason: "agent"}
		if ev.Kind != core.KindEvent || ev.Type != event.ContactMerged || ev.ContactID != c1 || ev.ConversationID != x1 {
			t.Fatalf("desk event = %s %s contact %s conversation %s", ev.Kind, ev.Type, ev.ContactID, ev.ConversationID)
		}
		for k, v := range want {
			if ev.Meta[k] != v {
				t.Errorf("merge event meta %s = %q, want %q", k, ev.Meta[k], v)
			}
		}
		if hd := e.waitMessages(bus.StreamDesk, bus.SubjectDesk("helpdesk"), 3)[2]; hd.Type != event.ContactMerged {
			t.Errorf("second desk got %s, want the merge event", hd.Type)
		}
		e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ContactMerged), 1)

		if e.contactOf(mail).ID != c1 || e.contactOf(phone).ID != c1 {
			t.Fatal("identities not on one contact after the link")
		}
		if open := e.openOf(c1); open.ID != x1 {
			t.Fatalf("open conversation %s, want %s", open.ID, x1)
		}
		if old, err := e.st.Conversation(e.ctx, x2); err != nil || old.State != store.StateClosed || old.MergedInto != x1 {
			t.Fatalf("merged conversation = %+v, %v", old, err)
		}

		// Dan writes by email again: the survivor's conversation.
		e.publishIn(customer(mail, "any news?"))
		if m := e.desk(4)[3]; m.ConversationID != x1 || m.ContactID != c1 {
			t.Fatalf("message after merge in %s of %s", m.ConversationID, m.ContactID)
		}
		// An agent answers in the merged conversation's old thread: it goes to the
		// survivor's conversation, by email (used last).
		e.publishDesk(reply(x2, "answer in the old thread"))
		out := e.waitMessages(bus.StreamOut, bus.SubjectOut("email"), 1)[0]
		if out.ConversationID != x1 || out.To != mail {
			t.Errorf("reply in old thread: conversation %s to %s, want %s to %s", out.ConversationID, out.To, x1, mail)
		}
		// The other desk sees the reply; the desk it came from does not get it back.
		if hd := e.waitMessages(bus.StreamDesk, bus.SubjectDesk("helpdesk"), 5)[4]; hd.Text != "answer in the old thread" || hd.Meta[event.MetaDesk] != "slack" {
			t.Errorf("helpdesk echo = %q from %q", hd.Text, hd.Meta[event.MetaDesk])
		}
		if got := len(e.messages(bus.StreamDesk, bus.SubjectDesk("slack"))); got != 4 {
			t.Errorf("slack desk holds %d envelopes, want 4", got)
		}
		if got := texts(e.transcript(x1)); !slices.Equal(got, []string{"sms question", "any news?", "answer in the old thread"}) {
			t.Errorf("transcript = %q", got)
		}
		e.wantNoDeadLetters()
	})
}

// TestPipeline_ReplyErrors: replies that cannot be routed are dead-lettered with
// the reason.
func TestPipeline_ReplyErrors(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Options{Channels: []string{"sms", "email", "telegram"}})
	e.publishIn(customer("sms:+15550006666", "hello"))
	conv := e.desk(1)[0].ConversationID

	noTelegram := reply(conv, "via telegram", event.MetaReplyVia, "telegram")
	unknownVia := reply(conv, "via pigeon", event.MetaReplyVia, "pigeon")
	stranger := reply(conv, "to someone else")
	stranger.To = "sms:+15559999999"
	missing := reply(core.NewID(), "to nowhere")
	noConv := reply("", "")
	noConv.To = "sms:+15550006666"
	badLink := deskEvent(event.ContactLink, conv, event.MetaIdentity, "slack:U123")
	inbound := reply(conv, "an inbound message from a desk")
	inbound.Direction = core.Inbound
	cases := []struct {
		m      *core.Message
		reason string
	}{
		{noTelegram, "has no telegram identity"},
		{unknownVia, `unknown channel "pigeon"`},
		{stranger, "recipient is not an identity of contact"},
		{missing, "conversation not found"},
		{noConv, "no conversation id"},
		{badLink, `unknown channel "slack"`},
		{inbound, "desks send outbound replies and events only"},
	}
	for _, c := range cases {
		key := c.m.ConversationID
		if key == "" {
			key = "none"
		}
		if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn("slack", key), c.m); err != nil {
			t.Fatal(err)
		}
	}
	var dls []bus.DeadLetter
	bustest.Eventually(t, 10*time.Second, func() error {
		if dls = e.deadLetters(); len(dls) < len(cases) {
			return fmt.Errorf("%d dead letters, want %d", len(dls), len(cases))
		}
		return nil
	})
	for _, c := range cases {
		found := false
		for _, dl := range dls {
			if m, err := core.Decode(dl.Data); err == nil && m.ID == c.m.ID {
				found = true
				if !strings.Contains(dl.Error, c.reason) {
					t.Errorf("%q: reason %q, want %q", c.m.Text, dl.Error, c.reason)
				}
			}
		}
		if !found {
			t.Errorf("%q not dead-lettered", c.m.Text)
		}
	}
	if n := len(e.messages(bus.StreamOut, bus.SubjectOut("sms"))); n != 0 {
		t.Errorf("%d replies sent, want none", n)
	}
}
