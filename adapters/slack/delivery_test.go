package slack_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// agentReply has the agent write text as message msgTS in the thread
// channel/threadTS, through the signed Events API, and returns the reply as
// the pipeline sent it to the customer's channel (the n-th on omni.out.sms).
func (d *desk) agentReply(channel, threadTS, msgTS, text string, n int) *core.Message {
	d.t.Helper()
	body := slackfake.EventPayload("Ev"+strings.ReplaceAll(msgTS, ".", ""), slackfake.AgentReply(agentUser, channel, threadTS, msgTS, text))
	if code, resp := d.postEvent(body, 0); code != http.StatusOK {
		d.t.Fatalf("event answered %d %s", code, resp)
	}
	return d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), n)[n-1]
}

// deliver publishes what a customer channel reports on reply: event typ on
// channel (the reply's when ""), with meta and the provider's time at.
func (d *desk) deliver(reply *core.Message, channel, typ string, meta map[string]string, at time.Time) {
	d.t.Helper()
	ev := adapters.DeliveryEvent(reply, typ)
	if channel != "" {
		ev.Channel = channel
	}
	ev.Meta, ev.SentAt = meta, at
	if _, err := d.env.Bus.PublishMessage(d.t.Context(), bus.SubjectEvt(typ), ev); err != nil {
		d.t.Fatal(err)
	}
}

// reactions returns the emoji the fake Slack has on the message at ts, in
// the order they were added.
func (d *desk) reactions(ts string) []string {
	var out []string
	for _, c := range d.fake.Calls("reactions.add") {
		if c.TS == ts {
			out = append(out, c.Name)
		}
	}
	return out
}

// replyRecord is the desk's record of an agent's reply, as stored.
type replyRecord struct {
	Channel  string `json:"channel"`
	TS       string `json:"ts"`
	Via      string `json:"via"`
	Delivery map[string]struct {
		State string    `json:"state"`
		At    time.Time `json:"at"`
	} `json:"delivery"`
}

func (d *desk) replyRecord(id string) replyRecord {
	d.t.Helper()
	var r replyRecord
	if _, err := d.env.Store.Records("slack_messages").Get(d.t.Context(), "env:"+id, &r); err != nil {
		d.t.Fatal(err)
	}
	return r
}

// TestDesk_DeliveryStatesMoveForward publishes the delivery reports of three
// replies out of order and duplicated, as providers send them: what the
// thread shows and the store keeps only moves forward (queued < sent <
// delivered < read; failed is final), per customer channel, and a stale or
// repeated report does not even call Slack.
func TestDesk_DeliveryStatesMoveForward(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hello", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	first := d.agentReply(ch, ts, "1700000100.000100", "First reply", 1)
	second := d.agentReply(ch, ts, "1700000100.000200", "Second reply", 2)
	third := d.agentReply(ch, ts, "1700000100.000300", "Third reply", 3)
	doneAt := time.Date(2026, 1, 5, 10, 30, 0, 0, time.UTC)

	// first: delivered, a late sent, a repeated delivered, a queued, read.
	d.deliver(first, "", event.DeliveryDelivered, map[string]string{"status": "delivered"}, doneAt)
	d.deliver(first, "", event.DeliverySent, map[string]string{"status": "sent"}, time.Time{})
	d.deliver(first, "", event.DeliveryDelivered, map[string]string{"status": "delivered"}, doneAt)
	d.deliver(first, "", event.DeliverySent, map[string]string{"status": "queued"}, time.Time{})
	d.deliver(first, "", event.DeliveryRead, map[string]string{"status": "read"}, time.Time{})
	d.deliver(first, "", event.DeliveryDelivered, nil, time.Time{})
	// second: sent, failed twice (Twilio's failed and undelivered), then a
	// late delivered and read.
	d.deliver(second, "", event.DeliverySent, nil, time.Time{})
	d.deliver(second, "", event.DeliveryFailed, map[string]string{"error": "twilio: undelivered, error 30003"}, time.Time{})
	d.deliver(second, "", event.DeliveryFailed, map[string]string{"error": "twilio: failed, error 30003"}, time.Time{})
	d.deliver(second, "", event.DeliveryDelivered, nil, time.Time{})
	d.deliver(second, "", event.DeliveryRead, nil, time.Time{})
	// third: failed on whatsapp, then carried by sms (delivery.rerouted), a
	// late whatsapp sent, and sms's reports.
	d.deliver(third, "whatsapp", event.DeliveryFailed, map[string]string{"error": "outside the window", "reason": event.ReasonOutsideWindow}, time.Time{})
	d.deliver(third, "sms", event.DeliverySent, nil, time.Time{})
	d.deliver(third, "whatsapp", event.DeliverySent, nil, time.Time{})
	d.deliver(third, "sms", event.DeliveryDelivered, nil, doneAt)
	// The desk handles its events one at a time, in order: once the read
	// receipt of this last one shows, every report above was handled.
	last := d.agentReply(ch, ts, "1700000100.000400", "Last reply", 4)
	d.deliver(last, "", event.DeliveryRead, nil, time.Time{})
	bustest.Eventually(t, wait, func() error {
		if got := d.reactions("1700000100.000400"); len(got) != 1 {
			return fmt.Errorf("reactions on the last reply %v, want eyes", got)
		}
		return nil
	})

	for _, tt := range []struct {
		ts   string
		want []string
	}{
		{"1700000100.000100", []string{"white_check_mark", "eyes"}},
		{"1700000100.000200", []string{"outbox_tray", "x"}},
		{"1700000100.000300", []string{"x", "outbox_tray", "white_check_mark"}},
	} {
		if got := d.reactions(tt.ts); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("reactions on %s: %v, want %v", tt.ts, got, tt.want)
		}
	}
	// A report behind the state shown, or of it again, costs no call.
	if n := d.fake.Requests("reactions.add"); n != 8 {
		t.Errorf("%d reactions.add requests, want the 8 reactions shown", n)
	}
	notes := 0
	for _, p := range inThread(d.fake.Calls("chat.postMessage"), ts) {
		if strings.Contains(p.Text, "could not be delivered") {
			notes++
		}
	}
	if notes != 2 {
		t.Errorf("%d failure notes, want 2: one for the second reply, one for the third on WhatsApp", notes)
	}

	r := d.replyRecord(first.ID)
	if st := r.Delivery["sms"]; st.State != "read" || r.Via != "sms" {
		t.Errorf("first reply stored as %+v via %q, want read via sms", r.Delivery, r.Via)
	}
	if r := d.replyRecord(second.ID); r.Delivery["sms"].State != "failed" {
		t.Errorf("second reply stored as %+v, want failed", r.Delivery)
	}
	r = d.replyRecord(third.ID)
	if r.Delivery["whatsapp"].State != "failed" || r.Delivery["sms"].State != "delivered" || !r.Delivery["sms"].At.Equal(doneAt) || r.Via != "sms" {
		t.Errorf("third reply stored as %+v via %q, want whatsapp failed, sms delivered at %v, via sms", r.Delivery, r.Via, doneAt)
	}
}
