package slack_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// TestDesk_Actions clicks the card's buttons: Claim, Transfer (to a queue with
// its own channel: the thread moves), Close (through the pipeline), Reopen and
// Create ticket each change the conversation and the card.
func TestDesk_Actions(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, conv)
	clickOK := func(payload []byte) {
		t.Helper()
		if code, body := d.postClick(payload); code != http.StatusOK {
			t.Fatalf("click answered %d %s", code, body)
		}
	}

	// Claim.
	clickOK(click(agentUser, ch, ts, "omni_claim", conv.ID))
	if got := d.conversation(conv.ID).Assignee; got != "slack:"+agentUser {
		t.Fatalf("assignee %q after Claim, want slack:%s", got, agentUser)
	}
	d.waitCard(ch, ts, "<@"+agentUser+">")
	evs := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.ConversationAssigned), 1)
	if e := evs[0]; e.ConversationID != conv.ID || e.Meta["assignee"] != "slack:"+agentUser || e.From != "slack:"+agentUser {
		t.Errorf("assigned event %+v", e)
	}
	d.waitNote(ts, "claimed this conversation")

	// Transfer to billing, which has its own channel: a new thread there.
	clickOK(click(agentUser, ch, ts, "omni_transfer", "billing"))
	if got := d.conversation(conv.ID).Queue; got != "billing" {
		t.Fatalf("queue %q after Transfer, want billing", got)
	}
	var newTS string
	bustest.Eventually(t, wait, func() error {
		c := d.conversation(conv.ID)
		nch, nts, _ := strings.Cut(c.Desk[slack.Name], ":")
		if nch != chBilling {
			return fmt.Errorf("thread in %s, want %s", nch, chBilling)
		}
		newTS = nts
		return nil
	})
	d.waitCard(ch, ts, "Moved to queue", "billing")
	d.waitNote(ts, "transferred this conversation from queue *default* to *billing*")
	d.waitNote(newTS, "transferred this conversation here")
	for _, p := range d.fake.Calls("chat.postMessage") {
		if p.TS == newTS && (p.Channel != chBilling || !strings.Contains(p.Blocks, "billing") || !strings.Contains(p.Blocks, "omni_claim")) {
			t.Errorf("new card in %s: %s", p.Channel, p.Blocks)
		}
	}
	// The customer's next message lands in the new thread; a reply in the
	// old one still reaches the customer.
	d.customer(ann, "Still waiting", nil)
	d.waitNote(newTS, "Still waiting")
	d.postEvent(eventPayload("EvOld1", agentReply(agentUser, ch, ts, "1700000001.000100", "From the old thread")), 0)
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)
	if outs[0].Text != "From the old thread" {
		t.Errorf("reply in the old thread sent as %q", outs[0].Text)
	}

	// Close goes through the pipeline; the card follows its event.
	clickOK(click(agent2User, chBilling, newTS, "omni_close", conv.ID))
	closes := d.waitStored(bus.StreamIn, "omni.in.slack.", 2)
	if c := closes[len(closes)-1]; c.Type != event.ConversationClose || c.ConversationID != conv.ID {
		t.Errorf("desk event %s for %s, want %s", c.Type, c.ConversationID, event.ConversationClose)
	}
	bustest.Eventually(t, wait, func() error {
		if s := d.conversation(conv.ID).State; s != store.StateClosed {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	d.waitCard(chBilling, newTS, "Closed", "omni_reopen")
	d.waitNote(newTS, "<@"+agent2User+"> closed this conversation")

	// Reopen.
	clickOK(click(agentUser, chBilling, newTS, "omni_reopen", conv.ID))
	if s := d.conversation(conv.ID).State; s != store.StateOpen {
		t.Fatalf("state %s after Reopen, want open", s)
	}
	d.waitCard(chBilling, newTS, "Open", "omni_close")
	d.waitNote(newTS, "reopened this conversation")

	// Create ticket.
	clickOK(click(agentUser, chBilling, newTS, "omni_ticket", conv.ID))
	tix := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.TicketCreate), 1)
	if tk := tix[0]; tk.ConversationID != conv.ID || tk.ContactID != conv.ContactID || tk.From != "slack:"+agentUser {
		t.Errorf("ticket.create %+v", tk)
	}
	// The ticket system answers; the card shows the ticket.
	if _, err := d.env.Store.UpdateConversation(t.Context(), conv.ID, func(c *store.Conversation) error {
		c.Tickets = append(c.Tickets, "T-42")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	created := tix[0].Clone()
	created.ID, created.Type = newID(), event.TicketCreated
	created.Meta = map[string]string{"ticket": "T-42", "ticket_url": "https://tracker.example.com/t/T-42"}
	created.External.Message = ""
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectEvt(event.TicketCreated), created); err != nil {
		t.Fatal(err)
	}
	d.waitCard(chBilling, newTS, "https://tracker.example.com/t/T-42|T-42")
	d.waitNote(newTS, "A ticket was created")

	// Every later change of the ticket reaches the desk: the card shows the
	// ticket's status and the thread says what changed.
	updated := tix[0].Clone()
	updated.ID, updated.Type, updated.Channel = newID(), event.TicketUpdated, "slack"
	updated.External.Message = ""
	updated.Text = "status changed from open to solved"
	updated.Meta = map[string]string{"ticket": "T-42", "status": "solved"}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("slack"), updated); err != nil {
		t.Fatal(err)
	}
	d.waitCard(chBilling, newTS, "T-42", "(solved)")
	d.waitNote(newTS, "status changed from open to solved")

	// Routing's desk events are shown in the thread.
	for typ, meta := range map[string]map[string]string{event.ConversationRouted: {"queue": "billing", "priority": "high", "rule": "invoices"}, event.SLABreached: {"sla": "first_response", "waited": "31m", "mention": "<!subteam^S0LEADS01>"}} {
		ev := tix[0].Clone()
		ev.ID, ev.Type, ev.Channel, ev.External.Message, ev.Meta = newID(), typ, "slack", "", meta
		if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("slack"), ev); err != nil {
			t.Fatal(err)
		}
	}
	d.waitNote(newTS, "Routed to *billing*, priority high (rule invoices)")
	d.waitNote(newTS, "SLA breached: first_response, the customer has waited 31m <!subteam^S0LEADS01>")
}

// TestDesk_ClickUnknownCard ignores a click on a message that is no card.
func TestDesk_ClickUnknownCard(t *testing.T) {
	d := newDesk(t, nil)
	if code, _ := d.postClick(click(agentUser, chSupport, "1.000001", "omni_claim", "01ARZ3NDEKTSV4RRFFQ69G5FAV")); code != http.StatusOK {
		t.Fatalf("answered %d", code)
	}
	if n := len(d.stored(bus.StreamEvt, "")); n != 0 {
		t.Errorf("%d events published for an unknown card", n)
	}
}

// waitNote waits until a message containing text is posted in thread ts.
func (d *desk) waitNote(ts, text string) {
	d.t.Helper()
	bustest.Eventually(d.t, wait, func() error {
		for _, p := range inThread(d.fake.Calls("chat.postMessage"), ts) {
			if strings.Contains(p.Text, text) {
				return nil
			}
		}
		return errors.New("no message in thread " + ts + " with " + text)
	})
}

// TestDesk_EventsFromElsewhere shows what other components did: routing's
// assignment and transfer (the thread moves to the queue's channel), and a
// channel's contact.blocked.
func TestDesk_EventsFromElsewhere(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, conv)
	publish := func(typ string, edit func(*core.Message)) {
		t.Helper()
		ev := core.NewMessage(core.KindEvent, core.Inbound, "routing")
		ev.Type, ev.ConversationID, ev.ContactID = typ, conv.ID, conv.ContactID
		edit(ev)
		if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectEvt(typ), ev); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := d.env.Store.UpdateConversation(t.Context(), conv.ID, func(c *store.Conversation) error {
		c.Assignee = "slack:" + agent2User
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	publish(event.ConversationAssigned, func(ev *core.Message) { ev.Meta = map[string]string{"assignee": "slack:" + agent2User} })
	d.waitCard(ch, ts, "<@"+agent2User+">")
	d.waitNote(ts, "Assigned to <@"+agent2User+">")

	if _, err := d.env.Store.UpdateConversation(t.Context(), conv.ID, func(c *store.Conversation) error {
		c.Queue = "billing"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	publish(event.ConversationTransfer, func(ev *core.Message) { ev.Meta = map[string]string{"queue": "billing"} })
	bustest.Eventually(t, wait, func() error {
		if c := d.conversation(conv.ID); !strings.HasPrefix(c.Desk[slack.Name], chBilling+":") {
			return fmt.Errorf("thread %s, want in %s", c.Desk[slack.Name], chBilling)
		}
		return nil
	})
	d.waitNote(ts, "Routing transferred this conversation")
	_, newTS := root(t, d.conversation(conv.ID))

	publish(event.ContactBlocked, func(ev *core.Message) { ev.Channel, ev.To = "telegram", "telegram:42" })
	d.waitNote(newTS, "The customer blocked us on Telegram")
}

// TestDesk_RoutedMovesThread: the first thread opened in the default channel
// before routing decided; routing's conversation.routed to a queue with its
// own channel moves the thread there.
func TestDesk_RoutedMovesThread(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi, about my invoice", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	_, ts := root(t, conv)
	if _, err := d.env.Store.UpdateConversation(t.Context(), conv.ID, func(c *store.Conversation) error {
		c.Queue = "billing"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ev := core.NewMessage(core.KindEvent, core.Inbound, "slack")
	ev.Type, ev.ConversationID, ev.ContactID = event.ConversationRouted, conv.ID, conv.ContactID
	ev.Meta = map[string]string{"queue": "billing", "priority": "normal", "rule": "billing", "by": "routing"}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("slack"), ev); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, wait, func() error {
		nch, _, _ := strings.Cut(d.conversation(conv.ID).Desk[slack.Name], ":")
		if nch != chBilling {
			return fmt.Errorf("thread in %s, want %s", nch, chBilling)
		}
		return nil
	})
	d.waitNote(ts, "Routing transferred this conversation from queue *default* to *billing*")
}
