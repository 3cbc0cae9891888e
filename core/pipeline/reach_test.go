package pipeline_test

import (
	"testing"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
)

// unreachable is the contact.unreachable a channel publishes for id, carrying
// failed (a reply) when one failed for it.
func unreachable(id core.Identity, reason string, failed *core.Message) *core.Message {
	ev := core.NewMessage(core.KindEvent, core.Inbound, id.Channel())
	ev.Type, ev.From = event.ContactUnreachable, id
	ev.Meta = map[string]string{event.MetaReason: reason, event.MetaError: "provider says no"}
	if failed != nil {
		ev.ReplyTo, ev.Text = failed.ID, failed.Text
		ev.ConversationID, ev.ContactID = failed.ConversationID, failed.ContactID
		ev.Meta[event.MetaDesk] = "slack"
	}
	return ev
}

// TestPipeline_RepliesFindTheCustomer: a customer on WhatsApp and SMS (one
// phone number, one contact). WhatsApp's window closes: the channel says so,
// with the reply that failed, and the pipeline marks the identity, tells the
// desk and sends that reply by SMS (delivery.rerouted); the next agent reply
// goes by SMS at once. With SMS opted out too, a reply reaches no channel:
// the desk gets delivery.failed at once and nothing is sent. The customer's
// next WhatsApp message makes WhatsApp reachable again.
func TestPipeline_RepliesFindTheCustomer(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{ReplyFallback: []string{"whatsapp", "sms", "email"}})
	wa, sms := core.Identity("whatsapp:+15550001111"), core.Identity("sms:+15550001111")
	e.publishIn(customer(sms, "hi by text"))
	e.desk(1) // one contact: the second number's message finds the first's
	e.publishIn(customer(wa, "and on whatsapp"))
	conv := e.desk(2)[1].ConversationID

	first := reply(conv, "first answer")
	e.publishDesk(first)
	out := e.waitMessages(bus.StreamOut, bus.SubjectOut("whatsapp"), 1)[0]
	if out.To != wa {
		t.Fatalf("first reply to %s, want %s", out.To, wa)
	}

	// WhatsApp refuses it: the runtime tells the pipeline, with the reply.
	e.publishIn(unreachable(wa, event.ReasonOutsideWindow, out))
	rerouted := e.waitMessages(bus.StreamOut, bus.SubjectOut("sms"), 1)[0]
	if rerouted.ID != first.ID || rerouted.To != sms || rerouted.Text != first.Text || rerouted.Meta[event.MetaCarriedBy] != "sms" {
		t.Errorf("rerouted reply %+v, want %s's text to %s with carried_by sms", rerouted, first.ID, sms)
	}
	notes := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.DeliveryRerouted), 1)
	if n := notes[0]; n.ReplyTo != first.ID || n.ConversationID != conv || n.Meta[event.MetaUnreachable] != "whatsapp:+15550001111 (outside_window)" {
		t.Errorf("delivery.rerouted %+v", n)
	}
	if ev := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ContactUnreachable), 1)[0]; ev.From != wa || ev.ConversationID != conv || ev.Meta[event.MetaReason] != event.ReasonOutsideWindow {
		t.Errorf("contact.unreachable for the desk %+v", ev)
	}
	if u, ok := e.contactOf(wa).Unreachable[wa]; !ok || u.Reason != event.ReasonOutsideWindow || u.Detail != "provider says no" {
		t.Errorf("contact's unreachable %v", e.contactOf(wa).Unreachable)
	}

	second := reply(conv, "second answer")
	e.publishDesk(second)
	if got := e.waitMessages(bus.StreamOut, bus.SubjectOut("sms"), 2)[1]; got.ID != second.ID || got.To != sms {
		t.Errorf("second reply %+v, want it by SMS", got)
	}
	e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.DeliveryRerouted), 2)

	// SMS opted out too: nothing can reach them.
	e.publishIn(unreachable(sms, event.ReasonOptedOut, nil))
	e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ContactUnreachable), 2)
	third := reply(conv, "third answer")
	e.publishDesk(third)
	failed := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.DeliveryFailed), 1)[0]
	if failed.ReplyTo != third.ID || failed.Meta[event.MetaUnreachable] != "whatsapp:+15550001111 (outside_window), sms:+15550001111 (opted_out)" {
		t.Errorf("delivery.failed %+v", failed)
	}
	if n := len(e.messages(bus.StreamOut, bus.SubjectOut("sms"))) + len(e.messages(bus.StreamOut, bus.SubjectOut("whatsapp"))); n != 3 {
		t.Errorf("%d replies sent in all, want 3: the third reached no channel", n)
	}
	var inTranscript bool
	for _, m := range e.transcript(conv) {
		inTranscript = inTranscript || m.ID == third.ID
	}
	if !inTranscript {
		t.Error("the unsent reply is not in the transcript")
	}

	// The customer writes on WhatsApp: its window is open again.
	e.publishIn(customer(wa, "still there?"))
	back := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ContactReachable), 1)[0]
	if back.From != wa || back.ConversationID != conv {
		t.Errorf("contact.reachable %+v", back)
	}
	fourth := reply(conv, "fourth answer")
	e.publishDesk(fourth)
	if got := e.waitMessages(bus.StreamOut, bus.SubjectOut("whatsapp"), 2)[1]; got.ID != fourth.ID || got.To != wa {
		t.Errorf("fourth reply %+v, want it on WhatsApp", got)
	}

	// A channel that only knows which reply failed (a bounce returns its
	// headers): the pipeline takes the reply from the transcript. SMS is
	// reachable again (START).
	start := unreachable(sms, "", nil)
	start.Type = event.ContactReachable
	e.publishIn(start)
	e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ContactReachable), 2)
	bounced := unreachable(wa, event.ReasonBlocked, nil)
	bounced.ReplyTo, bounced.ConversationID = fourth.ID, conv
	e.publishIn(bounced)
	if got := e.waitMessages(bus.StreamOut, bus.SubjectOut("sms"), 3)[2]; got.ID != fourth.ID || got.Text != fourth.Text || got.To != sms {
		t.Errorf("fourth reply sent again %+v, want its text from the transcript, by SMS", got)
	}
	e.wantNoDeadLetters()
}
