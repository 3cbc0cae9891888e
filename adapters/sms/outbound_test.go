package sms_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

func TestSend_Params(t *testing.T) {
	env, a, fake := setup(t, "sms")
	m := reply(env, "+1 415 555 0100", "here is the manual")
	m.Attachments = []core.Attachment{
		{URL: "https://files.example.com/manual.pdf", ContentType: "application/pdf"},
		{Key: "objects/no-url"}, // Twilio fetches media by URL: left out
		{URL: "https://files.example.com/photo.jpg"},
	}
	rc, err := a.Send(ctx(t), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(rc.ProviderID, "SM") || rc.Status != "queued" || rc.At.IsZero() {
		t.Errorf("receipt %+v, want the SID, queued and a time", rc)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d messages accepted, want 1", len(sent))
	}
	got := sent[0].Form
	checks := map[string]string{
		"To":             "+14155550100",
		"From":           twiliotest.From,
		"Body":           "here is the manual",
		"StatusCallback": env.Deps.PublicURL + "/channels/sms/status",
	}
	for k, want := range checks {
		if got.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, got.Get(k), want)
		}
	}
	if media := got["MediaUrl"]; len(media) != 2 || media[0] != "https://files.example.com/manual.pdf" || media[1] != "https://files.example.com/photo.jpg" {
		t.Errorf("MediaUrl = %q", media)
	}
	if got.Get("MessagingServiceSid") != "" {
		t.Errorf("MessagingServiceSid set without config")
	}
}

func TestSend_MessagingService(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	fake := twiliotest.NewServer(t)
	service := "MG" + strings.Repeat("1", 32)
	a := build(t, "sms", strings.Join([]string{
		"account_sid: " + twiliotest.AccountSID, "auth_token: " + twiliotest.AuthToken,
		"messaging_service_sid: " + service, "api_base_url: " + fake.URL,
	}, "\n"), env.Deps)
	if _, err := a.Send(ctx(t), reply(env, customer, "from the pool")); err != nil {
		t.Fatal(err)
	}
	got := fake.Sent()[0]
	if got.MessagingServiceSID != service || got.From != "" {
		t.Errorf("MessagingServiceSid %q From %q, want the service and no From", got.MessagingServiceSID, got.From)
	}
}

// TestSend_Errors: Twilio's answers become errors the runtime acts on: 429
// RetryAfter with Twilio's delay, 5xx and credentials plain (retried),
// refusals Permanent with a reason.
func TestSend_Errors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		code       int
		retryAfter string
		permanent  bool
		delay      time.Duration // 0: no RetryAfter
		reason     string        // substring of the error
		// unreachable is the event.Reason* of an Unreachable error, "" for
		// none.
		unreachable string
	}{
		{name: "429 with Retry-After", status: 429, code: 20429, retryAfter: "7", delay: 7 * time.Second},
		{name: "429 without Retry-After", status: 429, code: 20429, delay: 2 * time.Second},
		{
			name:       "429 HTTP date",
			status:     429,
			code:       20429,
			retryAfter: time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat),
			delay:      -1,
		},
		{name: "WhatsApp rate limit", status: 400, code: 63018, delay: 2 * time.Second},
		{name: "500", status: 500, code: 20500, reason: "http 500"},
		{name: "503", status: 503, code: 20503, reason: "http 503"},
		{name: "credentials", status: 401, code: 20003, reason: "credentials"},
		{name: "invalid To", status: 400, code: 21211, permanent: true, reason: "not a valid phone number", unreachable: event.ReasonInvalid},
		{name: "not mobile", status: 400, code: 21614, permanent: true, reason: "not a mobile number", unreachable: event.ReasonInvalid},
		{name: "cannot be reached", status: 400, code: 21214, permanent: true, reason: "cannot be reached", unreachable: event.ReasonInvalid},
		{name: "no WhatsApp", status: 400, code: 63003, permanent: true, reason: "no WhatsApp account", unreachable: event.ReasonInvalid},
		{name: "unsubscribed", status: 400, code: 21610, permanent: true, reason: "opted out", unreachable: event.ReasonOptedOut},
		{name: "geo permissions", status: 400, code: 21408, permanent: true, reason: "geo permissions"},
		{name: "other 4xx", status: 400, code: 21999, permanent: true, reason: "fake failure 21999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, a, fake := setup(t, "sms")
			fake.Fail(twiliotest.Failure{Status: tt.status, Code: tt.code, RetryAfter: tt.retryAfter, Times: 1})
			_, err := a.Send(ctx(t), reply(env, customer, "hello"))
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if got := bus.IsPermanent(err); got != tt.permanent {
				t.Errorf("Permanent = %v, want %v (%v)", got, tt.permanent, err)
			}
			d, ok := bus.RetryDelay(err)
			switch {
			case tt.delay == 0 && ok:
				t.Errorf("RetryAfter %s, want none (%v)", d, err)
			case tt.delay > 0 && d != tt.delay:
				t.Errorf("RetryAfter %s (%v), want %s", d, ok, tt.delay)
			case tt.delay < 0 && (d < 20*time.Second || d > 31*time.Second):
				t.Errorf("RetryAfter %s, want about 30s", d)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not contain %q", err, tt.reason)
			}
			// The recipient cannot be reached on this channel: the runtime
			// hands the reply back to the pipeline for another one.
			if reason, _ := adapters.UnreachableReason(err); reason != tt.unreachable {
				t.Errorf("unreachable reason %q, want %q (%v)", reason, tt.unreachable, err)
			}
			var ae *sms.APIError
			if !errors.As(err, &ae) && tt.code != 21610 {
				t.Errorf("error %v does not wrap *sms.APIError", err)
			} else if ae != nil && (ae.Code != tt.code || ae.HTTPStatus != tt.status) {
				t.Errorf("APIError %+v, want code %d status %d", ae, tt.code, tt.status)
			}
			if tt.code == 21610 {
				// Twilio knows of an opt-out omnigate missed: recorded, so the
				// next reply does not even reach Twilio.
				n := len(fake.Attempts())
				if _, err := a.Send(ctx(t), reply(env, customer, "again")); !errors.Is(err, sms.ErrOptedOut) {
					t.Errorf("second Send: %v, want ErrOptedOut", err)
				}
				if len(fake.Attempts()) != n {
					t.Errorf("second Send reached Twilio")
				}
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		env, a, fake := setup(t, "sms")
		fake.Close()
		_, err := a.Send(ctx(t), reply(env, customer, "hello"))
		if err == nil || bus.IsPermanent(err) {
			t.Errorf("Send to an unreachable API: %v, want a plain error", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		env, a, fake := setup(t, "sms", "timeout: 200ms")
		fake.Fail(twiliotest.Hang())
		start := time.Now()
		_, err := a.Send(ctx(t), reply(env, customer, "hello"))
		if err == nil || bus.IsPermanent(err) {
			t.Errorf("Send to a hanging API: %v, want a plain error", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Send returned after %s, want about the 200ms timeout", d)
		}
	})
}

// TestSend_Refused: what cannot be sent is Permanent and never reaches Twilio.
func TestSend_Refused(t *testing.T) {
	env, a, fake := setup(t, "sms")
	long := reply(env, customer, strings.Repeat("é", 1601))
	empty := reply(env, customer, "  ")
	noTo := reply(env, customer, "x")
	noTo.To = ""
	email := reply(env, customer, "x")
	email.To = "email:ann@example.com"
	bad := reply(env, "12", "x")
	badMedia := reply(env, customer, "x")
	badMedia.Attachments = []core.Attachment{{URL: "file:///etc/passwd"}}
	for name, m := range map[string]*core.Message{
		"too long": long, "empty": empty, "no recipient": noTo, "email recipient": email,
		"invalid number": bad, "media not http": badMedia,
	} {
		_, err := a.Send(ctx(t), m)
		if !bus.IsPermanent(err) {
			t.Errorf("%s: %v, want Permanent", name, err)
		}
		// Only an address that is no phone number says the customer cannot
		// be reached here; the others are the message's fault.
		if reason, ok := adapters.UnreachableReason(err); ok != (m == bad) || ok && reason != event.ReasonInvalid {
			t.Errorf("%s: unreachable reason %q (%v)", name, reason, ok)
		}
	}
	if n := len(fake.Attempts()); n != 0 {
		t.Errorf("%d requests reached Twilio, want 0", n)
	}
	// 1600 characters is the limit, not more.
	if _, err := a.Send(ctx(t), reply(env, customer, strings.Repeat("é", 1600))); err != nil {
		t.Errorf("1600 characters: %v", err)
	}
}

// TestSend_RuntimeRetries runs replies through the runtime on a real JetStream:
// a provider that fails with 5xx or 429 is unavailable, not refusing the
// message: the reply is retried in place, beyond MaxDeliver (3 here), for as
// long as that lasts, and sent once when the provider recovers, with nothing
// dead-lettered and no delivery.failed.
func TestSend_RuntimeRetries(t *testing.T) {
	tests := []struct {
		name       string
		times      int // failures before success
		status     int
		code       int
		retryAfter string
	}{
		{name: "outage recovers", times: 1, status: 500, code: 20500},
		{name: "throttled once", times: 1, status: 429, code: 20429, retryAfter: "1"},
		{name: "outage longer than the retry schedule", times: 6, status: 500, code: 20500},
		{name: "throttled longer than the retry schedule", times: 4, status: 429, code: 20429, retryAfter: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, a, fake := setup(t, "sms")
			env.Start(t, a)
			fake.Fail(twiliotest.Failure{Status: tt.status, Code: tt.code, RetryAfter: tt.retryAfter, Times: tt.times})
			m := reply(env, customer, "reply "+tt.name)
			start := time.Now()
			env.PublishOutbound(t, m, "")
			env.WaitSent(t, 1)
			if got := fake.SentTexts(); len(got) != 1 || got[0] != m.Text {
				t.Errorf("sent %q, want the reply once", got)
			}
			if n := len(fake.Attempts()); n != tt.times+1 {
				t.Errorf("%d attempts, want %d", n, tt.times+1)
			}
			if tt.retryAfter != "" && time.Since(start) < time.Duration(tt.times)*time.Second {
				t.Errorf("sent after %s, before %d Retry-After delays", time.Since(start), tt.times)
			}
			if evs := env.Events(t, event.DeliverySent, m.ID); len(evs) != 1 {
				t.Errorf("%d delivery.sent events, want 1", len(evs))
			}
			if evs := env.Events(t, event.DeliveryFailed, m.ID); len(evs) != 0 {
				t.Errorf("%d delivery.failed events for a reply that went out", len(evs))
			}
			if dls, err := env.Bus.DeadLetters(ctx(t), "", 0); err != nil || len(dls) != 0 {
				t.Errorf("%d dead letters (%v), want none", len(dls), err)
			}
		})
	}
}

// TestSend_AnswerLostAfterTwilioTookIt: Twilio takes a reply but its answer is
// lost (a 502 from a proxy, a broken connection, a timeout). The retry does
// not send it again: the runtime recorded its intent to send, finds it, and
// asks Twilio, which lists the message; the reply is recorded as sent with
// Twilio's SID, once, and nothing is dead-lettered.
func TestSend_AnswerLostAfterTwilioTookIt(t *testing.T) {
	for _, f := range []twiliotest.Failure{
		{AfterAccept: true, Status: http.StatusBadGateway, Code: 0, Times: 1},
		{AfterAccept: true, Hang: true, Times: 1},
	} {
		name := "502"
		if f.Hang {
			name = "timeout"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env, a, fake := setup(t, "sms", "timeout: 500ms")
			env.Start(t, a)
			fake.Fail(f)
			m := reply(env, customer, "lost answer "+name)
			env.PublishOutbound(t, m, "")
			env.WaitSent(t, 1)
			sent := fake.Sent()
			if len(sent) != 1 || sent[0].Body != m.Text {
				t.Fatalf("Twilio took %d messages (%v), want the reply once", len(sent), fake.SentTexts())
			}
			if n := len(fake.Attempts()); n != 1 {
				t.Errorf("%d sends, want 1: the retry must look the message up instead", n)
			}
			evs := env.Events(t, event.DeliverySent, m.ID)
			if len(evs) != 1 || evs[0].External.Message != sent[0].SID {
				t.Errorf("delivery.sent events %v, want one naming %s", evs, sent[0].SID)
			}
			if dls, err := env.Bus.DeadLetters(ctx(t), "", 0); err != nil || len(dls) != 0 {
				t.Errorf("%d dead letters (%v), want none", len(dls), err)
			}
		})
	}
}

// TestSend_ReconcileDoesNotMatchOtherMessages: a retry after a definite
// failure finds only another message to the customer and sends the reply.
func TestSend_ReconcileDoesNotMatchOtherMessages(t *testing.T) {
	env, a, fake := setup(t, "sms")
	env.Start(t, a)
	env.WaitSent(t, env.PublishOutbound(t, reply(env, customer, "an earlier reply"), ""))
	fake.Fail(twiliotest.Failure{Status: http.StatusInternalServerError, Code: 20500, Times: 1})
	m := reply(env, customer, "the reply")
	env.PublishOutbound(t, m, "")
	env.WaitSent(t, 2)
	if got := fake.SentTexts(); len(got) != 2 || got[1] != m.Text {
		t.Fatalf("sent %q, want the earlier reply and this one", got)
	}
}
