package slack_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// event posts a signed Events API payload carrying ev with event id id and
// fails the test unless Slack gets a 200.
func (d *desk) event(id string, ev map[string]any, retry int) {
	d.t.Helper()
	if code, resp := d.postEvent(slackfake.EventPayload(id, ev), retry); code != http.StatusOK {
		d.t.Fatalf("event %s answered %d %s", id, code, resp)
	}
}

// TestDesk_EditAndDeleteOnTelegram: an agent edits, then deletes, a reply
// already sent to a Telegram customer. Each is published for the pipeline
// the way replies are (outbound from the agent, on the conversation's
// partition), with meta edit_of / delete_of naming the reply's envelope and
// reply_via the channel that carried it; the pipeline passes them to
// omni.out.telegram after the reply. Slack's retry of the edit is stored once;
// a change that is not an edit of the text (an unfurl) and one of a message
// the desk did not send are ignored.
func TestDesk_EditAndDeleteOnTelegram(t *testing.T) {
	slack.EditableChannel(t, "telegram") // as Telegram will declare it
	d := newDesk(t, nil)
	tg := core.Identity("telegram:4242")
	d.customer(tg, "Hi from Telegram", nil)
	d.posts(2)
	conv := d.conversationOf(tg)
	ch, ts := root(t, d.env.Store, conv)
	out := bus.SubjectOut("telegram")

	d.event("EvE1", slackfake.AgentReply(agentUser, ch, ts, "1700000200.000100", "Your order ships *Monday*"), 0)
	reply := d.waitStored(bus.StreamOut, out, 1)[0]

	// Slack adds a link preview: a change, not an edit.
	unfurl := slackfake.AgentEdit(agentUser, ch, ts, "1700000200.000100", "1700000200.000150", "Your order ships *Monday*", "Your order ships *Monday*")
	delete(unfurl["message"].(map[string]any), "edited")
	d.event("EvE2", unfurl, 0)
	// A note is not a reply: editing it changes nothing for the customer.
	d.event("EvE3", slackfake.AgentReply(agentUser, ch, ts, "1700000200.000160", "// ask billing"), 0)
	d.event("EvE4", slackfake.AgentEdit(agentUser, ch, ts, "1700000200.000160", "1700000200.000170", "// ask billing", "// ask billing first"), 0)

	edit := slackfake.AgentEdit(agentUser, ch, ts, "1700000200.000100", "1700000200.000200", "Your order ships *Monday*", "Your order ships *Tuesday*")
	d.event("EvE5", edit, 0)
	d.event("EvE5", edit, 1) // Slack's retry
	outs := d.waitStored(bus.StreamOut, out, 2)
	e := outs[1]
	if e.Meta["edit_of"] != reply.ID || e.Text != "Your order ships **Tuesday**" || e.Meta[event.MetaFormat] != event.FormatMarkdown || e.Meta[event.MetaReplyVia] != "telegram" {
		t.Errorf("edit sent as %q meta %v, want the new text in markdown with edit_of %s, reply_via telegram", e.Text, e.Meta, reply.ID)
	}
	if e.ID == reply.ID || e.To != tg || e.ConversationID != conv.ID || e.Meta[event.MetaAgentName] != "Alice Agent" {
		t.Errorf("edit %s to %s in %s meta %v", e.ID, e.To, e.ConversationID, e.Meta)
	}

	d.event("EvE6", slackfake.AgentDelete(agentUser, ch, ts, "1700000200.000100", "1700000200.000300", "Your order ships *Tuesday*"), 0)
	outs = d.waitStored(bus.StreamOut, out, 3)
	del := outs[2]
	if del.Meta["delete_of"] != reply.ID || del.Text != "" || del.Meta[event.MetaReplyVia] != "telegram" || del.To != tg {
		t.Errorf("deletion sent as %q meta %v to %s, want no text, delete_of %s", del.Text, del.Meta, del.To, reply.ID)
	}

	// What the desk published, on the conversation's partition: the reply,
	// the edit once, the deletion; nothing for the unfurl or the note.
	var published []string
	for _, m := range d.stored(bus.StreamIn, "omni.in.slack.") {
		published = append(published, fmt.Sprintf("%s edit_of=%s delete_of=%s", m.ID, m.Meta["edit_of"], m.Meta["delete_of"]))
		if m.From != "slack:"+agentUser || m.Direction != core.Outbound || m.ConversationID != conv.ID {
			t.Errorf("published %s from %s (%s) in %s", m.ID, m.From, m.Direction, m.ConversationID)
		}
	}
	want := []string{
		reply.ID + " edit_of= delete_of=",
		e.ID + " edit_of=" + reply.ID + " delete_of=",
		del.ID + " edit_of= delete_of=" + reply.ID,
	}
	if strings.Join(published, "\n") != strings.Join(want, "\n") {
		t.Errorf("published:\n%s\nwant:\n%s", strings.Join(published, "\n"), strings.Join(want, "\n"))
	}
	if n := len(d.stored(bus.StreamOut, out)); n != 3 {
		t.Errorf("%d messages to the customer, want the reply, the edit and the deletion", n)
	}
	// The edit's envelope leads back to the reply's message: a failure to
	// deliver it is noted there.
	d.deliver(e, "", event.DeliveryFailed, map[string]string{"error": "message to edit not found"}, e.SentAt)
	d.waitNote(ts, "An edit of this reply could not be delivered via Telegram: message to edit not found")
	if got := d.reactions("1700000200.000100"); len(got) != 0 {
		t.Errorf("reactions %v on the reply for its edit's failure, want none", got)
	}
}

// TestDesk_EditOnSMS: SMS cannot change or take back a message: an agent's
// edit and deletion of a reply are noted in the thread (once, however often
// Slack delivers them) and nothing more is sent to the customer. The channel
// is the one that carried the reply, as its delivery reports said.
func TestDesk_EditOnSMS(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi by SMS", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	reply := d.agentReply(ch, ts, "1700000300.000100", "See you at 5", 1)
	d.deliver(reply, "", event.DeliveryDelivered, nil, reply.SentAt)
	bustest.Eventually(t, wait, func() error {
		if got := d.reactions("1700000300.000100"); len(got) != 1 {
			return fmt.Errorf("reactions %v, want delivered", got)
		}
		return nil
	})

	edit := slackfake.AgentEdit(agentUser, ch, ts, "1700000300.000100", "1700000300.000200", "See you at 5", "See you at 6")
	d.event("EvS1", edit, 0)
	d.event("EvS1", edit, 1)
	d.waitNote(ts, "<@"+agentUser+"> edited a reply here, but SMS cannot change a message already sent")
	d.event("EvS2", slackfake.AgentDelete(agentUser, ch, ts, "1700000300.000100", "1700000300.000300", "See you at 6"), 0)
	d.waitNote(ts, "A reply was deleted here, but SMS cannot take back a message already sent")

	notes := 0
	for _, p := range inThread(d.fake.Calls("chat.postMessage"), ts) {
		if strings.Contains(p.Text, "cannot change a message") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d notes about the edit, want 1", notes)
	}
	if n := len(d.stored(bus.StreamIn, "omni.in.slack.")); n != 1 {
		t.Errorf("%d envelopes published, want the reply alone", n)
	}
	if n := len(d.stored(bus.StreamOut, bus.SubjectOut("sms"))); n != 1 {
		t.Errorf("%d messages to the customer, want the reply alone", n)
	}
}

// TestDesk_CustomerEditShownAsEdit: a Telegram customer edits a message (the
// channel publishes the new text with meta edit_of naming the original's
// provider id): the thread's message gets the new text, marked edited, and
// nothing new is posted. An edit of a message the desk never showed is posted,
// marked as an edit.
func TestDesk_CustomerEditShownAsEdit(t *testing.T) {
	d := newDesk(t, nil)
	tg := core.Identity("telegram:4242")
	orig := d.customer(tg, "My order 7780 is late", nil)
	posted := d.posts(2)[1]
	d.customer(tg, "My order 7781 is late", map[string]string{event.MetaEditOf: orig.External.Message, "edited": "true"})
	bustest.Eventually(t, wait, func() error {
		ups := d.updatesOf(posted.Channel, posted.TS)
		if len(ups) == 0 || !strings.Contains(ups[len(ups)-1].Text, "My order 7781 is late") || !strings.Contains(ups[len(ups)-1].Text, "(edited)") {
			return fmt.Errorf("updates of the customer's message: %+v", ups)
		}
		return nil
	})
	if n := len(d.fake.Calls("chat.postMessage")); n != 2 {
		t.Errorf("%d messages posted, want 2: the edit is not a new message", n)
	}

	d.customer(tg, "Also: gift wrap", map[string]string{event.MetaEditOf: "4242:999999", "edited": "true"})
	bustest.Eventually(t, wait, func() error {
		last := d.fake.Calls("chat.postMessage")
		if len(last) != 3 || !strings.Contains(last[2].Text, "(edited a message)") || !strings.Contains(last[2].Text, "gift wrap") {
			return fmt.Errorf("posts %d, last %+v", len(last), last[len(last)-1])
		}
		return nil
	})
}
