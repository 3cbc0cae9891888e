package slack_test

import (
	"errors"
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
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/routing"
)

// TestDesk_Actions clicks the card's buttons. Each publishes a command for
// the owner of what it changes: Claim and Transfer for routing (running
// here), Close and Reopen for the pipeline, Create ticket for the ticket
// service; the card and the thread follow the owners' answering events.
func TestDesk_Actions(t *testing.T) {
	d := newDesk(t, nil)
	d.runRouting()
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	clickOK := func(payload []byte) {
		t.Helper()
		if code, body := d.postClick(payload); code != http.StatusOK {
			t.Fatalf("click answered %d %s", code, body)
		}
	}
	waitConv := func(what string, ok func(c *store.Conversation) bool) {
		t.Helper()
		bustest.Eventually(t, wait, func() error {
			if c := d.conversation(conv.ID); !ok(c) {
				return fmt.Errorf("%s: conversation %+v", what, c)
			}
			return nil
		})
	}

	// Claim: a command for routing, which assigns and says so.
	clickOK(slackfake.Click(agentUser, ch, ts, "omni_claim", conv.ID))
	claims := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.ConversationClaim), 1)
	if c := claims[0]; c.ConversationID != conv.ID || c.Meta[event.MetaAssignee] != "slack:"+agentUser || c.From != "slack:"+agentUser {
		t.Errorf("claim command %+v", c)
	}
	waitConv("assignee after Claim", func(c *store.Conversation) bool { return c.Assignee == "slack:"+agentUser })
	evs := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.ConversationAssigned), 1)
	if e := evs[0]; e.ConversationID != conv.ID || e.Meta[event.MetaAssignee] != "slack:"+agentUser || e.Meta[event.MetaBy] != slack.Name {
		t.Errorf("assigned event %+v", e)
	}
	d.waitCard(ch, ts, "<@"+agentUser+">")
	d.waitNote(ts, "<@"+agentUser+"> claimed this conversation")

	// Transfer to billing, which has its own channel: routing moves it and
	// the thread follows there.
	clickOK(slackfake.Click(agentUser, ch, ts, "omni_transfer", "billing"))
	waitConv("queue after Transfer", func(c *store.Conversation) bool { return c.Queue == "billing" })
	var newTS string
	bustest.Eventually(t, wait, func() error {
		nch, nts, _ := thread(t, d.env.Store, conv.ID)
		if nch != chBilling {
			return fmt.Errorf("thread in %s, want %s", nch, chBilling)
		}
		newTS = nts
		return nil
	})
	d.waitCard(ch, ts, "Moved to queue", "billing")
	d.waitNote(ts, "<@"+agentUser+"> transferred this conversation from queue *default* to *billing*")
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
	d.postEvent(slackfake.EventPayload("EvOld1", slackfake.AgentReply(agentUser, ch, ts, "1700000001.000100", "From the old thread")), 0)
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)
	if outs[0].Text != "From the old thread" {
		t.Errorf("reply in the old thread sent as %q", outs[0].Text)
	}

	// Close goes through the pipeline; the card follows its event.
	clickOK(slackfake.Click(agent2User, chBilling, newTS, "omni_close", conv.ID))
	closes := d.waitStored(bus.StreamIn, "omni.in.slack.", 2)
	if c := closes[len(closes)-1]; c.Type != event.ConversationClose || c.ConversationID != conv.ID {
		t.Errorf("desk command %s for %s, want %s", c.Type, c.ConversationID, event.ConversationClose)
	}
	waitConv("closed", func(c *store.Conversation) bool { return c.State == store.StateClosed })
	d.waitCard(chBilling, newTS, "Closed", "omni_reopen")
	d.waitNote(newTS, "<@"+agent2User+"> closed this conversation")

	// Reopen, the same way.
	clickOK(slackfake.Click(agentUser, chBilling, newTS, "omni_reopen", conv.ID))
	waitConv("reopened", func(c *store.Conversation) bool { return c.State == store.StateOpen })
	d.waitCard(chBilling, newTS, "Open", "omni_close")
	d.waitNote(newTS, "<@"+agentUser+"> reopened this conversation")

	// Create ticket.
	clickOK(slackfake.Click(agentUser, chBilling, newTS, "omni_ticket", conv.ID))
	tix := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.TicketCreate), 1)
	if tk := tix[0]; tk.ConversationID != conv.ID || tk.ContactID != conv.ContactID || tk.From != "slack:"+agentUser {
		t.Errorf("ticket.create %+v", tk)
	}
	// The ticket system answers; the card shows the ticket.
	created := tix[0].Clone()
	created.ID, created.Type, created.Channel = newID(), event.TicketCreated, event.ByTickets
	created.Meta = map[string]string{
		event.MetaTicket:    "T-42",
		event.MetaTicketURL: "https://tracker.example.com/t/T-42",
		event.MetaStatus:    "new",
	}
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
	updated.Meta = map[string]string{event.MetaTicket: "T-42", event.MetaStatus: "solved"}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("slack"), updated); err != nil {
		t.Fatal(err)
	}
	d.waitCard(chBilling, newTS, "T-42", "(solved)")
	d.waitNote(newTS, "status changed from open to solved")

	// An SLA breach is shown in the thread, with the group's mention.
	ev := tix[0].Clone()
	ev.ID, ev.Type, ev.Channel, ev.External.Message = newID(), event.SLABreached, "slack", ""
	ev.Meta = map[string]string{event.MetaSLA: "first_response", event.MetaWaited: "31m", event.MetaMention: "<!subteam^S0LEADS01>"}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk("slack"), ev); err != nil {
		t.Fatal(err)
	}
	d.waitNote(newTS, "SLA breached: first_response, the customer has waited 31m <!subteam^S0LEADS01>")
}

// TestDesk_RejectedCommand: a command its owner cannot execute is explained
// in the thread: a transfer to a queue routing does not know.
func TestDesk_RejectedCommand(t *testing.T) {
	d := newDesk(t, nil)
	d.runRouting()
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	// A reopen of an open conversation is answered at once from the store.
	if code, _ := d.postClick(slackfake.Click(agentUser, ch, ts, "omni_reopen", conv.ID)); code != http.StatusOK {
		t.Fatalf("click answered %d", code)
	}
	bustest.Eventually(t, wait, func() error {
		for _, e := range d.fake.Calls("chat.postEphemeral") {
			if strings.Contains(e.Text, "open already") {
				return nil
			}
		}
		return errors.New("no ephemeral answer")
	})
	// What only the owner can tell comes back as command.rejected.
	cmd := core.NewMessage(core.KindEvent, core.Inbound, slack.Name)
	cmd.Type, cmd.ConversationID, cmd.From = event.ConversationTransfer, conv.ID, "slack:"+agentUser
	cmd.Meta = map[string]string{event.MetaQueue: "archive"}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectEvt(cmd.Type), cmd); err != nil {
		t.Fatal(err)
	}
	d.waitNote(ts, `Could not transfer this conversation for <@`+agentUser+`>: there is no queue "archive"`)
}

// TestDesk_ClickUnknownCard ignores a click on a message that is no card.
func TestDesk_ClickUnknownCard(t *testing.T) {
	d := newDesk(t, nil)
	if code, _ := d.postClick(slackfake.Click(agentUser, chSupport, "1.000001", "omni_claim", "01ARZ3NDEKTSV4RRFFQ69G5FAV")); code != http.StatusOK {
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
// assignment (by its strategy) and a routing that moves the conversation to
// a queue with its own channel (the thread follows), a channel's
// contact.unreachable and the pipeline's delivery.rerouted.
func TestDesk_EventsFromElsewhere(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	publish := func(subject, typ string, edit func(*core.Message)) {
		t.Helper()
		ev := core.NewMessage(core.KindEvent, core.Inbound, "slack")
		ev.Type, ev.ConversationID, ev.ContactID = typ, conv.ID, conv.ContactID
		edit(ev)
		if _, err := d.env.Bus.PublishMessage(t.Context(), subject, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Routing's own writes and announcements, as routing makes them.
	routingSets := func(edit func(r *store.Routing)) {
		t.Helper()
		if _, err := d.env.Store.SetRouting(t.Context(), conv.ID, func(_ store.Conversation, r *store.Routing) error { edit(r); return nil }); err != nil {
			t.Fatal(err)
		}
	}

	routingSets(func(r *store.Routing) { r.Assignee = "slack:" + agent2User })
	publish(bus.SubjectDesk("slack"), event.ConversationAssigned, func(ev *core.Message) {
		ev.Meta = map[string]string{event.MetaAssignee: "slack:" + agent2User, event.MetaBy: event.ByRouting}
	})
	d.waitCard(ch, ts, "<@"+agent2User+">")
	d.waitNote(ts, "Assigned to <@"+agent2User+">")

	routingSets(func(r *store.Routing) { r.Queue = "billing" })
	publish(bus.SubjectDesk("slack"), event.ConversationRouted, func(ev *core.Message) {
		ev.Meta = map[string]string{event.MetaQueue: "billing", event.MetaReason: event.ReasonEscalation}
	})
	bustest.Eventually(t, wait, func() error {
		if nch, _, _ := thread(t, d.env.Store, conv.ID); nch != chBilling {
			return fmt.Errorf("thread in %s, want in %s", nch, chBilling)
		}
		return nil
	})
	d.waitNote(ts, "Routing transferred this conversation")
	_, newTS := root(t, d.env.Store, d.conversation(conv.ID))

	publish(bus.SubjectEvt(event.ContactUnreachable), event.ContactUnreachable, func(ev *core.Message) {
		ev.Channel, ev.From = "telegram", "telegram:42"
		ev.Meta = map[string]string{event.MetaReason: event.ReasonBlocked}
	})
	d.waitNote(newTS, "The customer blocked us on Telegram")
	publish(bus.SubjectEvt(event.DeliveryRerouted), event.DeliveryRerouted, func(ev *core.Message) {
		ev.Channel = "sms"
		ev.Meta = map[string]string{event.MetaCarriedBy: "sms", event.MetaUnreachable: "telegram:42 (blocked)"}
	})
	d.waitNote(newTS, "Sent by SMS instead: the customer cannot be reached at telegram:42 (blocked)")
}

// TestDesk_RoutedMovesThread: the first thread opened in the default channel
// before routing decided; routing (running here) routes the conversation to
// billing, which has its own channel, and the thread moves there.
func TestDesk_RoutedMovesThread(t *testing.T) {
	d := newDesk(t, nil)
	cfg := routingConfig()
	cfg.Rules = []routing.Rule{{
		Name: "invoices",
		When: routing.Match{Keywords: []string{"invoice"}},
		Then: routing.Action{Queue: "billing"},
	}}
	d.runRoutingWith(cfg)
	d.customer(ann, "Hi, about my invoice", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	bustest.Eventually(t, wait, func() error {
		if nch, _, _ := thread(t, d.env.Store, conv.ID); nch != chBilling {
			return fmt.Errorf("thread in %s, want %s", nch, chBilling)
		}
		return nil
	})
	if q := d.conversation(conv.ID).Queue; q != "billing" {
		t.Fatalf("queue %q", q)
	}
	d.waitNote(d.fake.Calls("chat.postMessage")[0].TS, "Routing transferred this conversation from queue *default* to *billing*")
}
