package sms_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// TestOptOut_Keywords: each opt-out keyword, however written, is published
// with meta opt_out and blocks sends to that number with a Permanent error
// naming the opt-out; START re-subscribes.
func TestOptOut_Keywords(t *testing.T) {
	words := []string{"STOP", "stop", " Stop. ", "STOPALL", "stop all", "UNSUBSCRIBE", "Cancel", "END", "quit!", "OPTOUT", "opt-out", "REVOKE"}
	env, a, fake := setup(t, "sms")
	for i, w := range words {
		t.Run(w, func(t *testing.T) {
			number := fmt.Sprintf("+1415555%04d", i)
			code, body := post(t, env, "webhook", inboundForm("sms", sid("SM", i+1), number, w))
			if code != http.StatusOK || !strings.Contains(body, "<Response/>") {
				t.Fatalf("answered %d %q, want 200 with empty TwiML", code, body)
			}
			msgs := inbound(t, env)
			m := msgs[len(msgs)-1]
			if m.Text != w || m.Meta["opt_out"] != "true" {
				t.Errorf("published text %q meta %v, want the keyword with opt_out=true", m.Text, m.Meta)
			}
			// After the keyword, in order: the customer cannot be reached here.
			all := stored(t, env)
			ev := all[len(all)-1]
			if ev.Type != event.ContactUnreachable || ev.From != m.From || ev.Meta[event.MetaReason] != event.ReasonOptedOut || all[len(all)-2].ID != m.ID {
				t.Errorf("after the keyword: %s from %s meta %v, want contact.unreachable from %s, reason opted_out", ev.Type, ev.From, ev.Meta, m.From)
			}
			_, err := a.Send(ctx(t), reply(env, number, "are you still there?"))
			if !bus.IsPermanent(err) || !errors.Is(err, sms.ErrOptedOut) {
				t.Fatalf("Send to an opted-out number: %v, want Permanent ErrOptedOut", err)
			}
			if reason, ok := adapters.UnreachableReason(err); !ok || reason != event.ReasonOptedOut {
				t.Errorf("Send error %v: unreachable reason %q (%v), want opted_out", err, reason, ok)
			}
			if !strings.Contains(err.Error(), "opted out") {
				t.Errorf("error %q does not name the opt-out", err)
			}
		})
	}
	if n := len(fake.Attempts()); n != 0 {
		t.Errorf("%d sends reached Twilio, want 0", n)
	}

	t.Run("START opts back in", func(t *testing.T) {
		number := "+14155550000" // opted out by STOP above
		code, _ := post(t, env, "webhook", inboundForm("sms", sid("SM", 100), number, "Start"))
		if code != http.StatusOK {
			t.Fatalf("answered %d", code)
		}
		msgs := inbound(t, env)
		if m := msgs[len(msgs)-1]; m.Meta["opt_in"] != "true" {
			t.Errorf("meta %v, want opt_in=true", m.Meta)
		}
		evs := inboundEvents(t, env, event.ContactReachable)
		if len(evs) != 1 || evs[0].From != core.Identity("sms:"+number) || evs[0].Meta[event.MetaReason] != "opted_in" {
			t.Errorf("contact.reachable events %v, want one from sms:%s, reason opted_in", evs, number)
		}
		if _, err := a.Send(ctx(t), reply(env, number, "welcome back")); err != nil {
			t.Fatalf("Send after START: %v", err)
		}
	})
	t.Run("Twilio retries the STOP: published once", func(t *testing.T) {
		before := len(inboundEvents(t, env, event.ContactUnreachable))
		for range 2 {
			if code, _ := post(t, env, "webhook", inboundForm("sms", sid("SM", 1), "+14155550000", "STOP")); code != http.StatusOK {
				t.Fatalf("answered %d", code)
			}
		}
		if n := len(inboundEvents(t, env, event.ContactUnreachable)) - before; n != 0 {
			t.Errorf("%d more contact.unreachable for a retried STOP, want 0", n)
		}
	})
	t.Run("YES without an opt-out is an answer", func(t *testing.T) {
		post(t, env, "webhook", inboundForm("sms", sid("SM", 101), otherCustomer, "yes"))
		msgs := inbound(t, env)
		if m := msgs[len(msgs)-1]; m.Meta["opt_in"] != "" || m.Meta["opt_out"] != "" {
			t.Errorf("meta %v, want no opt_in for a plain yes", m.Meta)
		}
		if all := stored(t, env); all[len(all)-1].Kind != core.KindMessage {
			t.Errorf("a plain yes was followed by %s, want nothing", all[len(all)-1].Type)
		}
	})
	t.Run("a sentence with stop is a message", func(t *testing.T) {
		post(t, env, "webhook", inboundForm("sms", sid("SM", 102), otherCustomer, "please stop the delivery"))
		msgs := inbound(t, env)
		if m := msgs[len(msgs)-1]; m.Meta["opt_out"] != "" {
			t.Errorf("meta %v, want no opt_out", m.Meta)
		}
		if _, err := a.Send(ctx(t), reply(env, otherCustomer, "ok")); err != nil {
			t.Errorf("Send: %v", err)
		}
	})
}

// TestOptOut_AdvancedOptOut: Twilio's Advanced Opt-Out tells the keyword
// type, also for custom keywords.
func TestOptOut_AdvancedOptOut(t *testing.T) {
	env, a, _ := setup(t, "sms")
	form := inboundForm("sms", sid("SM", 1), customer, "ARRET")
	form.Set("OptOutType", "STOP")
	if code, _ := post(t, env, "webhook", form); code != http.StatusOK {
		t.Fatalf("answered %d", code)
	}
	if m := inbound(t, env)[0]; m.Meta["opt_out"] != "true" || m.Meta["opt_out_type"] != "STOP" {
		t.Errorf("meta %v", m.Meta)
	}
	if _, err := a.Send(ctx(t), reply(env, customer, "x")); !errors.Is(err, sms.ErrOptedOut) {
		t.Errorf("Send: %v, want ErrOptedOut", err)
	}
}

// TestOptOut_PerChannel: STOP by SMS does not stop WhatsApp messages to the
// same phone.
func TestOptOut_PerChannel(t *testing.T) {
	env, smsA, fake := setup(t, "sms")
	wa := adapters.Deps{
		Publisher: adapters.NewPublisher(env.Bus, "whatsapp"),
		Logger:    env.Logger,
		Store:     env.Store,
		PublicURL: env.Deps.PublicURL,
	}
	waA := build(t, "whatsapp", configYAML("whatsapp", fake, "template:", "  content_sid: HX"+strings.Repeat("a", 32)), wa)

	post(t, env, "webhook", inboundForm("sms", sid("SM", 1), customer, "STOP"))
	if _, err := smsA.Send(ctx(t), reply(env, customer, "x")); !errors.Is(err, sms.ErrOptedOut) {
		t.Fatalf("sms Send: %v, want ErrOptedOut", err)
	}
	m := reply(env, customer, "x")
	m.Channel, m.To = "whatsapp", "whatsapp:"+customer
	if _, err := waA.Send(ctx(t), m); err != nil {
		t.Errorf("whatsapp Send to a number that stopped SMS: %v", err)
	}
}

// TestOptOut_Help: HELP is published with meta help; with help_reply set, the
// TwiML answers it.
func TestOptOut_Help(t *testing.T) {
	env, _, _ := setup(t, "sms", `help_reply: "Acme support <help@acme.example>. Reply STOP to opt out."`)
	code, body := post(t, env, "webhook", inboundForm("sms", sid("SM", 1), customer, "help"))
	if code != http.StatusOK {
		t.Fatalf("answered %d", code)
	}
	if want := "<Response><Message>Acme support &lt;help@acme.example&gt;. Reply STOP to opt out.</Message></Response>"; !strings.Contains(body, want) {
		t.Errorf("answer %q, want %q", body, want)
	}
	if m := inbound(t, env)[0]; m.Meta["help"] != "true" {
		t.Errorf("meta %v, want help=true", m.Meta)
	}
	code, body = post(t, env, "webhook", inboundForm("sms", sid("SM", 2), customer, "thanks"))
	if code != http.StatusOK || strings.Contains(body, "<Message>") {
		t.Errorf("answer to a plain message %d %q, want empty TwiML", code, body)
	}
}

// TestOptOut_Runtime: a reply to an opted-out number, through the runtime,
// never reaches Twilio and is not dead-lettered: the runtime tells the
// pipeline the customer cannot be reached here (contact.unreachable with the
// reply, reason opted_out, for another channel to carry it) and the desk
// (delivery.failed naming the opt-out).
func TestOptOut_Runtime(t *testing.T) {
	env, a, fake := setup(t, "sms")
	env.Start(t, a)
	post(t, env, "webhook", inboundForm("sms", sid("SM", 1), customer, "STOP"))
	m := reply(env, customer, "we miss you")
	env.PublishOutbound(t, m, "")
	bustest.Eventually(t, 10*time.Second, func() error {
		evs := env.Events(t, event.DeliveryFailed, m.ID)
		if len(evs) == 0 {
			return errors.New("no delivery.failed event")
		}
		if !strings.Contains(evs[0].Meta["error"], "opted out") || evs[0].Meta[event.MetaReason] != event.ReasonOptedOut {
			return fmt.Errorf("event meta %v does not name the opt-out", evs[0].Meta)
		}
		return nil
	})
	var reroute *core.Message
	for _, ev := range inboundEvents(t, env, event.ContactUnreachable) {
		if ev.ReplyTo == m.ID {
			reroute = ev
		}
	}
	if reroute == nil || reroute.Text != m.Text || reroute.From != m.To || reroute.Meta[event.MetaReason] != event.ReasonOptedOut {
		t.Fatalf("contact.unreachable for the reply: %+v, want one carrying it, reason opted_out", reroute)
	}
	if dls, err := env.Bus.DeadLetters(ctx(t), "", 0); err != nil || len(dls) != 0 {
		t.Errorf("dead letters %+v (%v), want none", dls, err)
	}
	if n := len(fake.Attempts()); n != 0 {
		t.Errorf("%d sends reached Twilio, want 0", n)
	}
}
