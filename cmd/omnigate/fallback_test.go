package main

import (
	"testing"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
)

// TestReplyFallback: a customer writes by SMS and on WhatsApp from one number
// (one contact, one thread). WhatsApp's 24-hour window has closed by the time
// the agent answers (Twilio refuses free-form messages with 63016, and no
// template is configured): the reply reaches the customer by SMS instead,
// rendered for SMS, and the thread says so.
func TestReplyFallback(t *testing.T) {
	g := startLoop(t, "http", []string{"sms", "whatsapp"}, "conversation:\n  reply_fallback: [whatsapp, sms]\n")
	byText, onWhatsApp := g.customer(t, "sms"), g.customer(t, "whatsapp")
	byText.write(t, "Where is my order 7781?")
	root := g.waitRoot(t, slackfake.ChannelSupport)
	g.waitInThread(t, root.TS, "Where is my order 7781?")
	onWhatsApp.write(t, "Writing here too")
	g.waitInThread(t, root.TS, "Writing here too")

	closed := twiliotest.OutsideWindow()
	closed.To = "whatsapp:+14155550100"
	g.twilio.Fail(closed)
	g.agentSays(t, root.Channel, root.TS, agentText)

	if got := byText.waitReply(t); got != plainReply {
		t.Errorf("the customer received by SMS %q, want %q", got, plainReply)
	}
	if got := onWhatsApp.received(); len(got) != 0 {
		t.Errorf("WhatsApp delivered %q although its window is closed", got)
	}
	g.waitInThread(t, root.TS, "Sent by SMS instead")
	g.waitInThread(t, root.TS, "window is closed")
}
