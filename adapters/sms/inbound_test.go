package sms_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

func TestWebhook_InboundSMS(t *testing.T) {
	env, _, _ := setup(t, "sms")
	form := inboundForm("sms", sid("MM", 1), "+1 (415) 555-0100", "photo of the broken part")
	form.Set("NumMedia", "2")
	form.Set("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages/"+sid("MM", 1)+"/Media/"+sid("ME", 1))
	form.Set("MediaContentType0", "image/jpeg")
	form.Set("MediaUrl1", "https://api.twilio.com/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages/"+sid("MM", 1)+"/Media/"+sid("ME", 2))
	form.Set("MediaContentType1", "video/mp4")

	code, body := post(t, env, "webhook", form)
	if code != http.StatusOK {
		t.Fatalf("webhook answered %d %q, want 200", code, body)
	}
	if !strings.Contains(body, "<Response/>") {
		t.Errorf("answer %q, want empty TwiML <Response/>", body)
	}
	msgs := inbound(t, env)
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "sms:+14155550100" {
		t.Errorf("From = %q, want sms:+14155550100 (E.164)", m.From)
	}
	if m.To != "sms:"+twiliotest.From {
		t.Errorf("To = %q, want sms:%s", m.To, twiliotest.From)
	}
	if m.External.Message != sid("MM", 1) || m.Text != "photo of the broken part" || m.Channel != "sms" {
		t.Errorf("external %q text %q channel %q", m.External.Message, m.Text, m.Channel)
	}
	if len(m.Attachments) != 2 {
		t.Fatalf("%d attachments, want 2", len(m.Attachments))
	}
	if a := m.Attachments[0]; a.URL != form.Get("MediaUrl0") || a.ContentType != "image/jpeg" || a.Name != sid("ME", 1) {
		t.Errorf("attachment 0 = %+v", a)
	}
	if a := m.Attachments[1]; a.URL != form.Get("MediaUrl1") || a.ContentType != "video/mp4" {
		t.Errorf("attachment 1 = %+v", a)
	}
	if m.Meta["from_country"] != "US" || m.Meta["num_segments"] != "1" {
		t.Errorf("meta = %v", m.Meta)
	}
}

func TestWebhook_InboundWhatsApp(t *testing.T) {
	env, _, _ := setup(t, "whatsapp")
	form := inboundForm("whatsapp", sid("SM", 1), customer, "")
	form.Set("NumMedia", "1")
	form.Set("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/"+twiliotest.AccountSID+"/Messages/"+sid("SM", 1)+"/Media/"+sid("ME", 1))
	form.Set("MediaContentType0", "audio/ogg")
	form.Set("Latitude", "52.52")
	form.Set("Longitude", "13.40")
	if code, body := post(t, env, "webhook", form); code != http.StatusOK {
		t.Fatalf("webhook answered %d %q", code, body)
	}
	m := inbound(t, env)[0]
	if m.From != "whatsapp:"+customer || m.To != "whatsapp:"+twiliotest.WhatsAppFrom {
		t.Errorf("From %q To %q, want whatsapp:<E.164>", m.From, m.To)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "audio/ogg" {
		t.Errorf("attachments = %+v", m.Attachments)
	}
	if m.Meta["profile_name"] != "Ann" || m.Meta["wa_id"] != "14155550100" || m.Meta["latitude"] != "52.52" {
		t.Errorf("meta = %v", m.Meta)
	}
}

// TestWebhook_SameNumberBothChannels: an SMS and a WhatsApp message from one
// phone carry identities with the same address, however the number is written,
// so core links them to one contact.
func TestWebhook_SameNumberBothChannels(t *testing.T) {
	env, _, fake := setup(t, "sms")
	wa := adapters.Deps{
		Publisher: adapters.NewPublisher(env.Bus, "whatsapp"),
		Routes:    adapters.NewRoutes(env.Mux, "whatsapp"),
		Logger:    env.Logger,
		Store:     env.Store,
		PublicURL: env.Deps.PublicURL,
	}
	build(t, "whatsapp", configYAML("whatsapp", fake), wa)
	waEnv := &adaptertest.Env{Name: "whatsapp", Mux: env.Mux, Deps: wa}

	if code, _ := post(t, env, "webhook", inboundForm("sms", sid("SM", 1), "+44 20 7946 0958", "by sms")); code != http.StatusOK {
		t.Fatalf("sms webhook answered %d", code)
	}
	if code, _ := post(t, waEnv, "webhook", inboundForm("whatsapp", sid("SM", 2), "+442079460958", "by whatsapp")); code != http.StatusOK {
		t.Fatalf("whatsapp webhook answered %d", code)
	}
	msgs := inbound(t, env)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	if msgs[0].From.Channel() != "sms" || msgs[1].From.Channel() != "whatsapp" {
		t.Errorf("channels %q, %q", msgs[0].From, msgs[1].From)
	}
	if a, b := msgs[0].From.Address(), msgs[1].From.Address(); a != b || a != "+442079460958" {
		t.Errorf("addresses %q and %q, want both +442079460958", a, b)
	}
}

// TestWebhook_ProviderRetry: Twilio retrying a message (same MessageSid) gets
// 200 each time, and the message is stored once.
func TestWebhook_ProviderRetry(t *testing.T) {
	env, _, _ := setup(t, "sms")
	form := inboundForm("sms", sid("SM", 7), customer, "retried")
	for i := range 3 {
		if code, _ := post(t, env, "webhook", form); code != http.StatusOK {
			t.Fatalf("delivery %d answered %d, want 200", i+1, code)
		}
	}
	stored := env.Stored(t, bus.StreamIn)
	if len(stored) != 1 {
		t.Fatalf("%d messages stored after 3 deliveries of one, want 1", len(stored))
	}
	if want := bus.MsgID("sms", sid("SM", 7)); stored[0].MsgID != want {
		t.Errorf("Nats-Msg-Id %q, want %q", stored[0].MsgID, want)
	}
}

func TestWebhook_Malformed(t *testing.T) {
	env, _, _ := setup(t, "sms")
	base := func() url.Values { return inboundForm("sms", sid("SM", 1), customer, "hi") }
	edit := func(f func(url.Values)) url.Values { v := base(); f(v); return v }
	tests := []struct {
		name string
		form url.Values
	}{
		{"no MessageSid", edit(func(v url.Values) { v.Del("MessageSid"); v.Del("SmsMessageSid"); v.Del("SmsSid") })},
		{"bad MessageSid", edit(func(v url.Values) { v.Set("MessageSid", "SM123") })},
		{"no From", edit(func(v url.Values) { v.Del("From") })},
		{"From not a number", edit(func(v url.Values) { v.Set("From", "hello") })},
		{"whatsapp From on sms", edit(func(v url.Values) { v.Set("From", "whatsapp:"+customer) })},
		{"NumMedia not a number", edit(func(v url.Values) { v.Set("NumMedia", "two") })},
		{"NumMedia too many", edit(func(v url.Values) { v.Set("NumMedia", "500") })},
		{"MediaUrl missing", edit(func(v url.Values) { v.Set("NumMedia", "1") })},
		{"MediaUrl relative", edit(func(v url.Values) { v.Set("NumMedia", "1"); v.Set("MediaUrl0", "/media/1") })},
		{"Body not utf-8", edit(func(v url.Values) { v.Set("Body", "\xff\xfe") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := post(t, env, "webhook", tt.form); code != http.StatusBadRequest {
				t.Errorf("answered %d %q, want 400", code, body)
			}
		})
	}
	t.Run("not a form", func(t *testing.T) {
		for _, c := range []struct{ ct, body string }{
			{"application/json", `{"MessageSid":"x"}`},
			{"application/x-www-form-urlencoded", "Body=%zz"},
			{"application/x-www-form-urlencoded", "From=%2B1&From=%2B2"},
		} {
			req := httptest.NewRequest(http.MethodPost, "/channels/sms/webhook", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.ct)
			req.Header.Set(sms.SignatureHeader, "x")
			if resp := env.Serve(t, req); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %q: answered %d, want 400", c.ct, c.body, resp.StatusCode)
			}
		}
	})
	t.Run("too large", func(t *testing.T) {
		// Signed or not, a body over 256 KiB is refused before its signature
		// is checked: 413.
		req := signedRequest(t, env.Deps.PublicURL, "sms", "webhook", edit(func(v url.Values) { v.Set("Body", strings.Repeat("x", 300<<10)) }))
		if resp := env.Serve(t, req); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("answered %d, want 413", resp.StatusCode)
		}
	})
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Errorf("%d messages published, want 0", n)
	}
}

// TestWebhook_AnswersAfterPublish: when JetStream cannot store the message,
// the webhook does not answer 2xx, so Twilio does not consider it delivered.
func TestWebhook_AnswersAfterPublish(t *testing.T) {
	env, _, _ := setup(t, "sms")
	if err := env.Bus.JetStream().DeleteStream(ctx(t), bus.StreamIn); err != nil {
		t.Fatal(err)
	}
	req := signedRequest(t, env.Deps.PublicURL, "sms", "webhook", inboundForm("sms", sid("SM", 1), customer, "lost?"))
	resp := env.Serve(t, req)
	if resp.StatusCode/100 == 2 {
		t.Fatalf("answered %d with nothing stored, want an error status", resp.StatusCode)
	}
}

// TestWebhook_IdentityValid: an envelope published by the webhook passes the
// envelope's own rules (from an sms identity of E.164).
func TestWebhook_IdentityValid(t *testing.T) {
	env, _, _ := setup(t, "sms")
	post(t, env, "webhook", inboundForm("sms", sid("SM", 1), "4155550100", "no country code: default_region US"))
	m := inbound(t, env)[0]
	if _, err := core.ParseIdentity(string(m.From)); err != nil || m.From != "sms:+14155550100" {
		t.Errorf("From = %q (%v), want sms:+14155550100", m.From, err)
	}
}
