package tickets_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/tickets"
)

// deskTicketCreate publishes what the Slack desk publishes for Create ticket.
func (e *env) deskTicketCreate(convID, contactID string, meta map[string]string) *core.Message {
	e.t.Helper()
	m := core.NewMessage(core.KindEvent, core.Inbound, "slack")
	m.Type = event.TicketCreate
	m.From = "slack:U42"
	m.ConversationID, m.ContactID = convID, contactID
	m.Meta = map[string]string{"desk": "slack"}
	for k, v := range meta {
		m.Meta[k] = v
	}
	if _, err := e.bus.PublishMessage(e.ctx(), bus.SubjectEvt(m.Type), m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func isTemplate(key string) func(m *core.Message) bool {
	return func(m *core.Message) bool { return m.Meta[event.MetaTemplate] == key }
}

// TestService_DeskCreate: the desk's ticket.create makes a ticket from the
// conversation, the desk hears of it, the customer is told on their channel and
// the transcript records it; asking again gives the same ticket.
func TestService_DeskCreate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, tickets.Config{})
		contact, conv := e.customer("sms:+15551230002", "Bo", nil)
		e.run(e.svc)
		out, desk, transcript := e.watch("omni.out.>"), e.watch("omni.desk.slack"), e.watch("omni.conv."+conv.ID)
		e.say(conv, "sms:+15551230002", "Hello", "")
		e.say(conv, "sms:+15551230002", "My parcel never arrived\nOrder 7781", "en")

		e.deskTicketCreate(conv.ID, contact.ID, nil)
		tk := e.waitTicket(e.svc, 1, func(*tickets.Ticket) error { return nil })
		if tk.Subject != "My parcel never arrived" || !strings.Contains(tk.Description, "Customer (sms): Hello") ||
			tk.Requester.ContactID != contact.ID || tk.Language != "en" || tk.Events[0].Actor != "slack:U42" {
			t.Fatalf("ticket from the desk: %s", dump(tk))
		}

		d := desk.wait(t, "desk event", func(m *core.Message) bool { return m.Type == event.TicketUpdated })
		if d.ConversationID != conv.ID || d.Meta["ticket"] != "1" || d.Meta["status"] != "new" || d.Meta["action"] != "created" || d.Channel != "slack" {
			t.Fatalf("desk event %+v", d)
		}
		n := out.wait(t, "created notice", isTemplate("created"))
		if n.Channel != "sms" || n.To != "sms:+15551230002" || n.ConversationID != conv.ID || n.Meta["auto"] != "ticket" ||
			n.Direction != core.Outbound || !strings.Contains(n.Text, "ticket #1") {
			t.Fatalf("notification %+v", n)
		}
		transcript.wait(t, "notice in the transcript", func(m *core.Message) bool { return m.ID == n.ID })

		// Again, while the ticket is active: no second ticket, the desk is told.
		e.deskTicketCreate(conv.ID, contact.ID, map[string]string{"subject": "again"})
		desk.wait(t, "exists event", func(m *core.Message) bool { return m.Meta["action"] == tickets.ActionExists && m.Meta["ticket"] == "1" })
		if ts, _, err := e.svc.List(e.ctx(), tickets.Filter{}); err != nil || len(ts) != 1 {
			t.Fatalf("tickets = %d, %v; want 1", len(ts), err)
		}

		// Status changes reach the desk with the previous status.
		if _, err := e.svc.Update(e.ctx(), 1, tickets.Patch{Status: ptr(tickets.StatusPending), Actor: "slack:U42"}); err != nil {
			t.Fatal(err)
		}
		desk.wait(t, "pending", func(m *core.Message) bool {
			return m.Meta["status"] == "pending" && m.Meta["previous_status"] == "new" && strings.Contains(m.Text, "pending (was new)")
		})
		out.wait(t, "pending notice", isTemplate("pending"))
	})
}

// TestService_ReopenByReply: a customer's reply reopens a solved ticket and sets
// a pending one open; after the reopen window it does not.
func TestService_ReopenByReply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, tickets.Config{ReopenWindow: time.Hour})
		_, conv := e.customer("email:cy@example.com", "Cy", nil)
		e.run(e.svc)
		out := e.watch("omni.out.>")
		ctx := e.ctx()
		tk, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "Login fails", ConversationID: conv.ID, Silent: true})
		if err != nil {
			t.Fatal(err)
		}
		n := tk.Number
		if _, err := e.svc.Update(ctx, n, tickets.Patch{Status: ptr(tickets.StatusSolved), Actor: "slack:U1"}); err != nil {
			t.Fatal(err)
		}
		solved := out.wait(t, "solved notice", isTemplate("solved"))
		if solved.Channel != "email" || solved.To != "email:cy@example.com" {
			t.Fatalf("solved notice %+v", solved)
		}

		m := e.say(conv, "email:cy@example.com", "Still broken, sorry", "")
		tk = e.waitTicket(e.svc, n, func(t *tickets.Ticket) error {
			if t.Status != tickets.StatusOpen {
				return errStatus(t)
			}
			return nil
		})
		last := tk.Events[len(tk.Events)-1]
		if last.Action != tickets.ActionReopened || last.Actor != "email:cy@example.com" || last.Ref != m.ID || !tk.SolvedAt.IsZero() {
			t.Fatalf("reopen event %+v", last)
		}
		out.wait(t, "reopened notice", isTemplate("reopened"))

		// Pending -> open on a reply.
		if _, err := e.svc.Update(ctx, n, tickets.Patch{Status: ptr(tickets.StatusPending)}); err != nil {
			t.Fatal(err)
		}
		e.say(conv, "email:cy@example.com", "Here is the screenshot", "")
		e.waitTicket(e.svc, n, func(t *tickets.Ticket) error {
			if t.Status != tickets.StatusOpen {
				return errStatus(t)
			}
			return nil
		})

		// Solved longer ago than the window: a reply leaves it solved.
		if _, err := e.svc.Update(ctx, n, tickets.Patch{Status: ptr(tickets.StatusSolved)}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(2 * time.Hour)
		late := e.say(conv, "email:cy@example.com", "thanks!", "")
		// A later marker message proves the late one was handled before it.
		if _, err := e.svc.Create(ctx, tickets.CreateRequest{Subject: "other", ConversationID: conv.ID, Silent: true}); err != nil {
			t.Fatal(err)
		}
		e.say(conv, "email:cy@example.com", "marker", "")
		e.waitTicket(e.svc, n+1, func(t *tickets.Ticket) error {
			if t.Status != tickets.StatusNew {
				return errStatus(t)
			}
			return nil
		})
		got, _ := e.svc.Get(ctx, n)
		if got.Status != tickets.StatusSolved || slices.ContainsFunc(got.Events, func(ev tickets.Event) bool { return ev.Ref == late.ID }) {
			t.Fatalf("a reply after the reopen window changed the ticket: %s", dump(got.Events))
		}
	})
}

// TestService_ReplyInNewConversation: a reply that opened a new conversation
// finds the solved ticket through the contact, reopens it and links it.
func TestService_ReplyInNewConversation(t *testing.T) {
	e := newEnv(t, kvBackend(), tickets.Config{})
	contact, conv := e.customer("sms:+15551230003", "Di", nil)
	e.run(e.svc)
	ctx := e.ctx()
	tk, err := e.svc.Create(ctx, tickets.CreateRequest{ConversationID: conv.ID, Subject: "Broken", Status: tickets.StatusOpen})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Update(ctx, tk.Number, tickets.Patch{Status: ptr(tickets.StatusSolved)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CloseConversation(ctx, conv.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	next, _, err := e.st.FindOrOpenConversation(ctx, contact.ID, -1, e.clock.Now(), func(c *storeConversation) {
		c.LastChannel, c.LastIdentity = "sms", "sms:+15551230003"
	})
	if err != nil || next.ID == conv.ID {
		t.Fatalf("new conversation: %v, %v", next, err)
	}
	e.say(next, "sms:+15551230003", "It broke again", "")
	got := e.waitTicket(e.svc, tk.Number, func(t *tickets.Ticket) error {
		if t.Status != tickets.StatusOpen {
			return errStatus(t)
		}
		return nil
	})
	if !slices.Equal(got.Conversations, []string{conv.ID, next.ID}) {
		t.Fatalf("conversations = %v, want both", got.Conversations)
	}
	bustestEventually(t, func() error {
		ts, _, err := e.svc.List(ctx, tickets.Filter{Conversation: next.ID})
		if err != nil || len(ts) != 1 || ts[0].Number != tk.Number {
			return errf("new conversation's tickets = %d, %v", len(ts), err)
		}
		return nil
	})
}

// TestService_Survey: solving asks for a score in the customer's language; the
// next reply that is a score is recorded (and thanked for) instead of reopening.
func TestService_Survey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, tickets.Config{Survey: tickets.SurveyConfig{Enabled: true, Window: time.Hour}})
		_, zhConv := e.customer("sms:+8613800000001", "Li", map[string]string{"language": "zh-CN"})
		_, enConv := e.customer("sms:+15551230004", "Ed", nil)
		e.run(e.svc)
		out := e.watch("omni.out.>")
		ctx := e.ctx()
		zh, err := e.svc.Create(ctx, tickets.CreateRequest{ConversationID: zhConv.ID, Subject: "发票", Silent: true})
		if err != nil {
			t.Fatal(err)
		}
		en, err := e.svc.Create(ctx, tickets.CreateRequest{ConversationID: enConv.ID, Subject: "Invoice", Silent: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int64{zh.Number, en.Number} {
			if _, err := e.svc.Update(ctx, n, tickets.Patch{Status: ptr(tickets.StatusSolved)}); err != nil {
				t.Fatal(err)
			}
		}
		survey := out.wait(t, "chinese survey", func(m *core.Message) bool {
			return m.Meta["template"] == "survey" && m.To == "sms:+8613800000001"
		})
		if !strings.Contains(survey.Text, "满意") || survey.Language != "zh" {
			t.Fatalf("survey in chinese = %q (%s)", survey.Text, survey.Language)
		}
		// The solved notice goes first.
		all := out.all()
		iSolved := slices.IndexFunc(all, func(m *core.Message) bool {
			return m.Meta["template"] == "solved" && m.To == "sms:+8613800000001"
		})
		iSurvey := slices.IndexFunc(all, func(m *core.Message) bool { return m.ID == survey.ID })
		if iSolved < 0 || iSolved > iSurvey || !strings.Contains(all[iSolved].Text, "已解决") {
			t.Fatalf("solved notice %d, survey %d: %s", iSolved, iSurvey, out.describe())
		}
		out.wait(t, "english survey", func(m *core.Message) bool {
			return m.Meta["template"] == "survey" && m.To == "sms:+15551230004" && strings.Contains(m.Text, "from 1")
		})

		e.say(zhConv, "sms:+8613800000001", "满意！", "")
		e.say(enConv, "sms:+15551230004", " 5 ", "")
		for n, want := range map[int64]int{zh.Number: 4, en.Number: 5} {
			got := e.waitTicket(e.svc, n, func(t *tickets.Ticket) error {
				if t.Satisfaction == nil {
					return errf("no score yet")
				}
				return nil
			})
			if got.Satisfaction.Score != want || got.Status != tickets.StatusSolved {
				t.Fatalf("#%d: score %d, status %s; want %d and still solved", n, got.Satisfaction.Score, got.Status, want)
			}
		}
		thanks := out.wait(t, "thanks", func(m *core.Message) bool {
			return m.Meta["template"] == "survey_thanks" && m.To == "sms:+8613800000001"
		})
		if thanks.Text != "感谢您的反馈！" {
			t.Fatalf("thanks = %q", thanks.Text)
		}
		// After the score, a reply reopens as usual.
		e.say(enConv, "sms:+15551230004", "actually, one more thing", "")
		e.waitTicket(e.svc, en.Number, func(t *tickets.Ticket) error {
			if t.Status != tickets.StatusOpen {
				return errStatus(t)
			}
			return nil
		})
	})
}
