package sms_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// statusForm is the form of Twilio's status callback.
func statusForm(channel, msgSID, status string) url.Values {
	return url.Values{
		"AccountSid":    {twiliotest.AccountSID},
		"ApiVersion":    {"2010-04-01"},
		"MessageSid":    {msgSID},
		"SmsSid":        {msgSID},
		"MessageStatus": {status},
		"SmsStatus":     {status},
		"From":          {address(channel, twiliotest.From)},
		"To":            {address(channel, customer)},
	}
}

func TestStatus_Events(t *testing.T) {
	tests := []struct {
		status, typ string
	}{
		{"queued", event.DeliverySent},
		{"sent", event.DeliverySent},
		{"delivered", event.DeliveryDelivered},
		{"read", event.DeliveryRead},
		{"undelivered", event.DeliveryFailed},
		{"failed", event.DeliveryFailed},
	}
	env, _, _ := setup(t, "whatsapp")
	for i, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			msgSID := sid("SM", i+1)
			form := statusForm("whatsapp", msgSID, tt.status)
			if tt.typ == event.DeliveryFailed {
				form.Set("ErrorCode", "30003")
			}
			// Twilio retries a callback it got no answer to: published once.
			for range 2 {
				if code, body := post(t, env, "status", form); code != http.StatusOK {
					t.Fatalf("answered %d %q, want 200", code, body)
				}
			}
			evs := events(t, env, tt.typ, msgSID)
			if len(evs) != 1 {
				t.Fatalf("%d %s events for %s, want 1", len(evs), tt.typ, msgSID)
			}
			ev := evs[0]
			if ev.Kind != core.KindEvent || ev.Direction != core.Outbound || ev.Channel != "whatsapp" {
				t.Errorf("event kind %q direction %q channel %q", ev.Kind, ev.Direction, ev.Channel)
			}
			if want := msgSID + ":" + tt.status; ev.External.Message != want {
				t.Errorf("External.Message %q, want %q", ev.External.Message, want)
			}
			if ev.To != "whatsapp:"+customer || ev.Meta["status"] != tt.status {
				t.Errorf("To %q meta %v", ev.To, ev.Meta)
			}
			if tt.typ == event.DeliveryFailed {
				if ev.Meta["error_code"] != "30003" || ev.Meta["error_message"] == "" || ev.Meta["error"] == "" {
					t.Errorf("failure meta %v, want error_code, error_message and error", ev.Meta)
				}
			}
		})
	}
	t.Run("ignored statuses", func(t *testing.T) {
		before := env.Count(t, bus.StreamEvt)
		for _, s := range []string{"received", "receiving", "partially_delivered", "some_new_status"} {
			if code, _ := post(t, env, "status", statusForm("whatsapp", sid("SM", 90), s)); code != http.StatusOK {
				t.Errorf("%s: answered %d, want 200", s, code)
			}
		}
		if after := env.Count(t, bus.StreamEvt); after != before {
			t.Errorf("%d events published for statuses without an event", after-before)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for name, f := range map[string]url.Values{
			"no status":        statusForm("whatsapp", sid("SM", 91), ""),
			"no sid":           statusForm("whatsapp", "", "sent"),
			"status with junk": statusForm("whatsapp", sid("SM", 91), "sent<script>"),
			"bad error code":   with(statusForm("whatsapp", sid("SM", 91), "failed"), "ErrorCode", "x"),
		} {
			if code, _ := post(t, env, "status", f); code != http.StatusBadRequest {
				t.Errorf("%s: answered %d, want 400", name, code)
			}
		}
	})
}

// TestStatus_RoundTrip: a reply sent through the runtime asks Twilio for
// callbacks at /channels/sms/status; Twilio's callbacks become events that
// name the reply, its conversation and contact.
func TestStatus_RoundTrip(t *testing.T) {
	env, a, fake := setup(t, "sms")
	env.Start(t, a)
	m := reply(env, customer, "your order shipped")
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	accepted := fake.Sent()
	if len(accepted) != 1 {
		t.Fatalf("%d messages accepted, want 1", len(accepted))
	}
	if want := env.Deps.PublicURL + "/channels/sms/status"; accepted[0].StatusCallback != want {
		t.Errorf("StatusCallback %q, want %q", accepted[0].StatusCallback, want)
	}
	sent := env.Events(t, event.DeliverySent, m.ID)
	if len(sent) != 1 || sent[0].External.Message == "" {
		t.Fatalf("delivery.sent events %v, want one with the SID", sent)
	}
	msgSID := sent[0].External.Message

	if code := fake.StatusCallback(t, msgSID, "delivered", nil); code != http.StatusOK {
		t.Fatalf("callback answered %d", code)
	}
	var ev *core.Message
	bustest.Eventually(t, 5*time.Second, func() error {
		evs := env.Events(t, event.DeliveryDelivered, m.ID)
		if len(evs) == 0 {
			return errors.New("no delivery.delivered event naming the reply")
		}
		ev = evs[0]
		return nil
	})
	if ev.ConversationID != m.ConversationID || ev.ContactID != m.ContactID || ev.To != m.To {
		t.Errorf("event conversation %q contact %q to %q, want %q %q %q", ev.ConversationID, ev.ContactID, ev.To, m.ConversationID, m.ContactID, m.To)
	}

	code := fake.StatusCallback(t, msgSID, "undelivered", url.Values{"ErrorCode": {"30006"}})
	if code != http.StatusOK {
		t.Fatalf("callback answered %d", code)
	}
	failed := env.Events(t, event.DeliveryFailed, m.ID)
	if len(failed) != 1 {
		t.Fatalf("%d delivery.failed events, want 1", len(failed))
	}
	if f := failed[0]; f.Meta["error_code"] != "30006" || f.Meta["error_message"] == "" {
		t.Errorf("failure meta %v", f.Meta)
	}
}

// TestStatus_NoCallbackWhenOff: with status_callback false, no StatusCallback
// is asked for (a Messaging Service's own callback URL applies).
func TestStatus_NoCallbackWhenOff(t *testing.T) {
	env, a, fake := setup(t, "sms", "status_callback: false")
	if _, err := a.Send(ctx(t), reply(env, customer, "hi")); err != nil {
		t.Fatal(err)
	}
	if cb := fake.Sent()[0].StatusCallback; cb != "" {
		t.Errorf("StatusCallback %q, want none", cb)
	}
}

// TestStatus_Unsubscribed: a callback failing with 21610 records the
// opt-out and says, once however often Twilio retries it, that the customer
// cannot be reached here.
func TestStatus_Unsubscribed(t *testing.T) {
	env, a, _ := setup(t, "sms")
	form := statusForm("sms", sid("SM", 1), "failed")
	form.Set("ErrorCode", "21610")
	for range 2 {
		if code, _ := post(t, env, "status", form); code != http.StatusOK {
			t.Fatalf("answered %d", code)
		}
	}
	if _, err := a.Send(ctx(t), reply(env, customer, "x")); !errors.Is(err, sms.ErrOptedOut) {
		t.Errorf("Send after 21610: %v, want ErrOptedOut", err)
	}
	evs := inboundEvents(t, env, event.ContactUnreachable)
	if len(evs) != 1 || evs[0].From != core.Identity("sms:"+customer) || evs[0].Meta[event.MetaReason] != event.ReasonOptedOut || !strings.Contains(evs[0].Meta[event.MetaError], "21610") {
		t.Errorf("contact.unreachable events %v, want one from sms:%s, reason opted_out", evs, customer)
	}
	if failed := events(t, env, event.DeliveryFailed, sid("SM", 1)); len(failed) != 1 {
		t.Errorf("%d delivery.failed events, want 1", len(failed))
	}
}

// TestStatus_ProviderTime: the carrier's RawDlrDoneDate (YYMMDDhhmm, UTC)
// is the event's provider time (SentAt); an unreadable one is dropped, not the
// status.
func TestStatus_ProviderTime(t *testing.T) {
	env, _, _ := setup(t, "sms")
	tests := []struct {
		status, done string
		want         time.Time
	}{
		{"delivered", "2601051030", time.Date(2026, 1, 5, 10, 30, 0, 0, time.UTC)},
		{"undelivered", "2512312359", time.Date(2025, 12, 31, 23, 59, 0, 0, time.UTC)},
		{"delivered", "26010510", time.Time{}},   // too short
		{"delivered", "2613051030", time.Time{}}, // month 13
		{"sent", "", time.Time{}},
	}
	for i, tt := range tests {
		msgSID := sid("SM", 200+i)
		form := statusForm("sms", msgSID, tt.status)
		if tt.done != "" {
			form.Set("RawDlrDoneDate", tt.done)
		}
		if tt.status == "undelivered" {
			form.Set("ErrorCode", "30003")
		}
		if code, body := post(t, env, "status", form); code != http.StatusOK {
			t.Fatalf("%s %q: answered %d %s", tt.status, tt.done, code, body)
		}
		typ := map[string]string{"delivered": event.DeliveryDelivered, "undelivered": event.DeliveryFailed, "sent": event.DeliverySent}[tt.status]
		evs := events(t, env, typ, msgSID)
		if len(evs) != 1 {
			t.Fatalf("%s %q: %d events, want 1", tt.status, tt.done, len(evs))
		}
		if !evs[0].SentAt.Equal(tt.want) {
			t.Errorf("%s %q: SentAt %v, want %v", tt.status, tt.done, evs[0].SentAt, tt.want)
		}
	}
}

// TestStatus_WhatsAppRead: a reply sent on whatsapp and read by the
// customer: Twilio's callbacks with MessageStatus delivered, then read,
// become delivery.delivered and delivery.read naming the reply.
func TestStatus_WhatsAppRead(t *testing.T) {
	env, a, fake := setup(t, "whatsapp")
	env.Start(t, a)
	postNetwork(t, env, "webhook", inboundForm("whatsapp", sid("SM", 1), customer, "hi"))
	m := reply(env, customer, "seen?")
	m.Channel, m.To = "whatsapp", "whatsapp:"+customer
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	msgSID := fake.Sent()[0].SID
	for _, status := range []string{"sent", "delivered", "read"} {
		if code := fake.StatusCallback(t, msgSID, status, url.Values{"ChannelPrefix": {"whatsapp"}}); code != http.StatusOK {
			t.Fatalf("%s callback answered %d", status, code)
		}
	}
	bustest.Eventually(t, 5*time.Second, func() error {
		evs := env.Events(t, event.DeliveryRead, m.ID)
		if len(evs) != 1 {
			return fmt.Errorf("%d delivery.read events naming the reply, want 1", len(evs))
		}
		if ev := evs[0]; ev.Channel != "whatsapp" || ev.To != m.To || ev.ConversationID != m.ConversationID || ev.Meta["status"] != "read" {
			return fmt.Errorf("delivery.read %+v", ev)
		}
		return nil
	})
	if n := len(env.Events(t, event.DeliveryDelivered, m.ID)); n != 1 {
		t.Errorf("%d delivery.delivered events, want 1", n)
	}
}

// events returns the events of type typ about provider message msgSID.
func events(t *testing.T, env *adaptertest.Env, typ, msgSID string) []*core.Message {
	t.Helper()
	var out []*core.Message
	for _, ev := range env.Events(t, typ, "") {
		if ev.Meta["message_sid"] == msgSID {
			out = append(out, ev)
		}
	}
	return out
}

func with(v url.Values, k, val string) url.Values {
	v.Set(k, val)
	return v
}
