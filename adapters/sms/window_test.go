package sms_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

var templateSID = "HX" + strings.Repeat("b", 32)

// withTemplate is the config of a whatsapp template carrying the reply.
var withTemplate = []string{
	"template:",
	"  content_sid: " + templateSID,
	"  variables:",
	`    "1": "{{text}}"`,
	`    "2": "Acme support"`,
}

// clock is a settable clock for the 24-hour window.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestWindow_FreeFormWithin24h: within 24 hours of the customer's last
// message a reply goes as it is; after that, as the approved template with the
// reply in its variables; a new customer message opens the window again.
func TestWindow_FreeFormWithin24h(t *testing.T) {
	env, a, fake := setup(t, "whatsapp", withTemplate...)
	c := &clock{t: time.Now()}
	sms.SetClock(a, c.now)

	send := func(text string) {
		t.Helper()
		m := reply(env, customer, text)
		if _, err := a.Send(ctx(t), m); err != nil {
			t.Fatalf("Send %q: %v", text, err)
		}
	}
	last := func() (body, contentSID string, vars map[string]string) {
		t.Helper()
		sent := fake.Sent()
		got := sent[len(sent)-1].Form
		if got.Get("To") != "whatsapp:"+customer || got.Get("From") != "whatsapp:"+twiliotest.WhatsAppFrom {
			t.Errorf("To %q From %q, want whatsapp: addresses", got.Get("To"), got.Get("From"))
		}
		if v := got.Get("ContentVariables"); v != "" {
			if err := json.Unmarshal([]byte(v), &vars); err != nil {
				t.Fatalf("ContentVariables %q: %v", v, err)
			}
		}
		return got.Get("Body"), got.Get("ContentSid"), vars
	}

	send("first reply, nobody wrote")
	if body, sid, vars := last(); sid != templateSID || body != "" || vars["1"] != "first reply, nobody wrote" || vars["2"] != "Acme support" {
		t.Errorf("outside the window: body %q content %q vars %v, want the template with the reply", body, sid, vars)
	}

	if code, _ := post(t, env, "webhook", inboundForm("whatsapp", sid("SM", 1), customer, "hi")); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	c.add(23 * time.Hour)
	send("within the window")
	if body, sid, _ := last(); body != "within the window" || sid != "" {
		t.Errorf("within the window: body %q content %q, want free form", body, sid)
	}

	c.add(2 * time.Hour)
	send("a day later")
	if body, sid, vars := last(); sid != templateSID || body != "" || vars["1"] != "a day later" {
		t.Errorf("25h later: body %q content %q, want the template", body, sid)
	}

	post(t, env, "webhook", inboundForm("whatsapp", sid("SM", 2), customer, "still there?"))
	send("open again")
	if body, _, _ := last(); body != "open again" {
		t.Errorf("after a new message: body %q, want free form", body)
	}
}

// TestWindow_NoTemplate: outside the window without a template the reply
// fails Unreachable (outside_window) with a reason the agent understands,
// through the runtime too, and never reaches Twilio; the runtime hands it
// back to the pipeline for another channel instead of dead-lettering it.
func TestWindow_NoTemplate(t *testing.T) {
	env, a, fake := setup(t, "whatsapp")
	_, err := a.Send(ctx(t), reply(env, customer, "hello?"))
	if !bus.IsPermanent(err) || !errors.Is(err, sms.ErrOutsideWindow) {
		t.Fatalf("Send: %v, want Permanent ErrOutsideWindow", err)
	}
	if reason, ok := adapters.UnreachableReason(err); !ok || reason != event.ReasonOutsideWindow {
		t.Errorf("unreachable reason %q (%v), want outside_window", reason, ok)
	}
	if !strings.Contains(err.Error(), "24-hour") || !strings.Contains(err.Error(), "template") {
		t.Errorf("error %q should name the 24-hour window and the template", err)
	}

	env.Start(t, a)
	m := reply(env, customer, "via runtime")
	env.PublishOutbound(t, m, "")
	bustest.Eventually(t, 10*time.Second, func() error {
		evs := env.Events(t, event.DeliveryFailed, m.ID)
		if len(evs) == 0 || !strings.Contains(evs[0].Meta["error"], "24-hour") || evs[0].Meta[event.MetaReason] != event.ReasonOutsideWindow {
			return errors.New("no delivery.failed event naming the window")
		}
		return nil
	})
	evs := inboundEvents(t, env, event.ContactUnreachable)
	if len(evs) != 1 || evs[0].ReplyTo != m.ID || evs[0].Text != m.Text || evs[0].Meta[event.MetaReason] != event.ReasonOutsideWindow {
		t.Errorf("contact.unreachable events %v, want one carrying the reply, reason outside_window", evs)
	}
	if dls, err := env.Bus.DeadLetters(ctx(t), "", 0); err != nil || len(dls) != 0 {
		t.Errorf("dead letters %+v (%v), want none", dls, err)
	}
	if n := len(fake.Attempts()); n != 0 {
		t.Errorf("%d requests reached Twilio, want 0", n)
	}
}

// TestWindow_TwilioSaysClosed: when WhatsApp refuses a free-form message
// (63016) although the record said the window was open, the template goes
// instead.
func TestWindow_TwilioSaysClosed(t *testing.T) {
	env, a, fake := setup(t, "whatsapp", withTemplate...)
	post(t, env, "webhook", inboundForm("whatsapp", sid("SM", 1), customer, "hi"))
	closed := twiliotest.OutsideWindow()
	closed.Times = 1
	fake.Fail(closed)
	if _, err := a.Send(ctx(t), reply(env, customer, "late reply")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	att := fake.Attempts()
	if len(att) != 2 || att[0].Get("Body") != "late reply" || att[1].Get("ContentSid") != templateSID {
		t.Errorf("attempts %v, want free form then the template", att)
	}
}

// TestWindow_TwilioSaysClosedNoTemplate: WhatsApp refuses the free-form
// reply (63016) although the record said the window was open, and there is no
// template: Unreachable, outside_window.
func TestWindow_TwilioSaysClosedNoTemplate(t *testing.T) {
	env, a, fake := setup(t, "whatsapp")
	post(t, env, "webhook", inboundForm("whatsapp", sid("SM", 1), customer, "hi"))
	fake.Fail(twiliotest.OutsideWindow())
	_, err := a.Send(ctx(t), reply(env, customer, "late reply"))
	if reason, ok := adapters.UnreachableReason(err); !errors.Is(err, sms.ErrOutsideWindow) || reason != event.ReasonOutsideWindow {
		t.Errorf("Send: %v (reason %q, %v), want ErrOutsideWindow, outside_window", err, reason, ok)
	}
}
