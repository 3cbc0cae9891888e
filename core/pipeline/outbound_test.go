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
		e := newEnv(t, be, pipeline.Config{Desks: []string{"slack", "helpdesk"}})
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
		ev := e.desk(4)[2]
		want := map[string]string{
			event.MetaContact:            c1,
			event.MetaMergedContact:      c2,
			event.MetaConversation:       x1,
			event.MetaClosedConversation: x2,
			event.MetaReason:             "agent",
		}
		if ev.Kind != core.KindEvent || ev.Type != event.ContactMerged || ev.ContactID != c1 || ev.ConversationID != x1 {
			t.Fatalf("desk event = %s %s contact %s conversation %s", ev.Kind, ev.Type, ev.ContactID, ev.ConversationID)
		}
		for k, v := range want {
			if ev.Meta[k] != v {
				t.Errorf("merge event meta %s = %q, want %q", k, ev.Meta[k], v)
			}
		}
		if hd := e.waitMessages(bus.StreamDesk, bus.SubjectDesk("helpdesk"), 4)[2]; hd.Type != event.ContactMerged {
			t.Errorf("second desk got %s, want the merge event", hd.Type)
		}
		e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ContactMerged), 1)
		// Then the answer to the command, to every desk.
		if ln := e.desk(4)[3]; ln.Type != event.ContactLinked || ln.Meta[event.MetaIdentity] != string(mail) || ln.ContactID != c1 || ln.ConversationID != x1 {
			t.Errorf("after the merge the desk got %s identity %q contact %s conversation %s, want contact.linked", ln.Type, ln.Meta[event.MetaIdentity], ln.ContactID, ln.ConversationID)
		}

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
		if m := e.desk(5)[4]; m.ConversationID != x1 || m.ContactID != c1 {
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
		if hd := e.waitMessages(bus.StreamDesk, bus.SubjectDesk("helpdesk"), 6)[5]; hd.Text != "answer in the old thread" || hd.Meta[event.MetaDesk] != "slack" {
			t.Errorf("helpdesk echo = %q from %q", hd.Text, hd.Meta[event.MetaDesk])
		}
		if got := len(e.messages(bus.StreamDesk, bus.SubjectDesk("slack"))); got != 5 {
			t.Errorf("slack desk holds %d envelopes, want 5", got)
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
	e := newEnv(t, kvBackend(), pipeline.Config{Channels: []string{"sms", "email", "telegram"}})
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
		{missing, "conversation not found"},
		{noConv, "no conversation id"},
		{badLink, `unknown channel "slack"`},
		{inbound, "desks send outbound replies and commands only"},
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
	// A recipient the author wrote is not trusted: the one reply sent is
	// the stranger's, and it went to the customer's own number, with none of
	// the desk's references.
	if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn("slack", conv), stranger); err != nil {
		t.Fatal(err)
	}
	var out []*core.Message
	bustest.Eventually(t, 10*time.Second, func() error {
		if out = e.messages(bus.StreamOut, bus.SubjectOut("sms")); len(out) != 1 {
			return fmt.Errorf("%d replies sent, want 1", len(out))
		}
		return nil
	})
	if out[0].ID != stranger.ID || out[0].To != "sms:+15550006666" || out[0].External != (core.External{}) {
		t.Errorf("reply %s went to %s with external %+v, want %s to sms:+15550006666 and no external ids", out[0].ID, out[0].To, out[0].External, stranger.ID)
	}
}

// TestPipeline_CloseReopenCommands: a desk closes and reopens a conversation
// by command; the pipeline executes them and answers with events, and refuses
// a reopen it cannot do with command.rejected to that desk.
func TestPipeline_CloseReopenCommands(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	const ann = core.Identity("web:v-ann")
	e.publishIn(customer(ann, "hi"))
	conv := e.desk(1)[0].ConversationID

	reopenOpen := deskEvent(event.ConversationReopen, conv)
	e.publishDesk(reopenOpen)
	rej := e.desk(2)[1]
	if rej.Type != event.CommandRejected || rej.ReplyTo != reopenOpen.ID || rej.Meta[event.MetaCommand] != event.ConversationReopen || !strings.Contains(rej.Meta[event.MetaReason], "open already") {
		t.Fatalf("reopen of an open conversation answered %s reply_to %s meta %v", rej.Type, rej.ReplyTo, rej.Meta)
	}

	cl := deskEvent(event.ConversationClose, conv)
	e.publishDesk(cl)
	closed := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationClosed), 1)[0]
	if closed.ConversationID != conv || closed.ReplyTo != cl.ID || closed.From != cl.From || closed.Meta[event.MetaDesk] != "slack" {
		t.Fatalf("closed event = %+v", closed)
	}
	if c, err := e.st.Conversation(e.ctx, conv); err != nil || c.State != store.StateClosed {
		t.Fatalf("after close: %+v %v", c, err)
	}

	re := deskEvent(event.ConversationReopen, conv)
	e.publishDesk(re)
	reopened := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationReopened), 1)[0]
	if reopened.ConversationID != conv || reopened.ReplyTo != re.ID {
		t.Fatalf("reopened event = %+v", reopened)
	}
	if c, err := e.st.Conversation(e.ctx, conv); err != nil || c.State != store.StateOpen || c.Opens != 2 {
		t.Fatalf("after reopen: %+v %v", c, err)
	}
	e.wantNoDeadLetters()
}

// TestPipeline_SourceReply: routing's and tickets' messages to the customer
// take the reply path: channel and recipient from the conversation, the
// transcript, and an echo to every desk.
func TestPipeline_SourceReply(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{Desks: []string{"slack", "helpdesk"}})
	const ann = core.Identity("telegram:4242")
	e.publishIn(customer(ann, "hi"))
	conv := e.desk(1)[0].ConversationID
	for i, src := range pipeline.Sources {
		m := core.NewMessage(core.KindMessage, core.Outbound, src)
		m.ConversationID, m.Text = conv, "automatic "+src
		m.Meta = map[string]string{event.MetaAuto: "ack"}
		e.publishDesk(m)
		out := e.waitMessages(bus.StreamOut, bus.SubjectOut("telegram"), i+1)[i]
		if out.ID != m.ID || out.To != ann || out.Meta[event.MetaDesk] != src || out.Meta[event.MetaAuto] != "ack" {
			t.Errorf("%s: out %s to %s desk %q auto %q", src, out.ID, out.To, out.Meta[event.MetaDesk], out.Meta[event.MetaAuto])
		}
		for _, desk := range []string{"slack", "helpdesk"} {
			if got := e.waitMessages(bus.StreamDesk, bus.SubjectDesk(desk), i+2)[i+1]; got.ID != m.ID {
				t.Errorf("%s: desk %s did not get the echo", src, desk)
			}
		}
	}
	if got := texts(e.transcript(conv)); !slices.Equal(got, []string{"hi", "automatic routing", "automatic tickets"}) {
		t.Errorf("transcript = %q", got)
	}
	// A source sends replies only.
	cmd := core.NewMessage(core.KindEvent, core.Inbound, event.ByRouting)
	cmd.Type, cmd.ConversationID = event.ConversationClose, conv
	e.publishDesk(cmd)
	bustest.Eventually(t, 10*time.Second, func() error {
		if len(e.deadLetters()) != 1 {
			return fmt.Errorf("%d dead letters, want the source's command", len(e.deadLetters()))
		}
		return nil
	})
}

// TestPipeline_CommandsDeliveredAgain: a command delivered again after its
// first delivery changed the store but could not answer (a failed publish, a
// dead replica) is answered as done, and never undoes what happened since: a
// reopen done already says reopened, a close of an opening the customer has
// reopened since closes nothing. Desks send the opening they saw (meta opens).
func TestPipeline_CommandsDeliveredAgain(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	const ann = core.Identity("web:v-ann")
	e.publishIn(customer(ann, "hi"))
	conv := e.desk(1)[0].ConversationID
	c, err := e.st.Conversation(e.ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CloseConversation(e.ctx, conv, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The reopen's first delivery reopened it in the store, then died.
	if _, _, err := e.st.FindOrOpenConversation(e.ctx, c.ContactID, time.Hour, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	re := deskEvent(event.ConversationReopen, conv, event.MetaOpens, "1")
	e.publishDesk(re)
	if ev := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationReopened), 1)[0]; ev.ReplyTo != re.ID {
		t.Fatalf("reopened event answers %s, want %s", ev.ReplyTo, re.ID)
	}

	// The close's first delivery closed opening 2, then died; the customer
	// wrote meanwhile and opened it a third time.
	if _, err := e.st.CloseConversation(e.ctx, conv, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.publishIn(customer(ann, "one more thing"))
	e.desk(2)
	cl := deskEvent(event.ConversationClose, conv, event.MetaOpens, "2")
	e.publishDesk(cl)
	rej := e.desk(3)[2]
	if rej.Type != event.CommandRejected || rej.ReplyTo != cl.ID || !strings.Contains(rej.Meta[event.MetaReason], "wrote again") {
		t.Fatalf("close of an opening that is over answered %s %q", rej.Type, rej.Meta[event.MetaReason])
	}
	if c, err := e.st.Conversation(e.ctx, conv); err != nil || c.State != store.StateOpen || c.Opens != 3 {
		t.Fatalf("after the late close: %+v %v", c, err)
	}
	e.wantNoDeadLetters()
}
