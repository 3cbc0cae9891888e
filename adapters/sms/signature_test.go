package sms_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core/bus"
)

func TestSign_TwilioDocExample(t *testing.T) {
	// twilio.com/docs/usage/security: auth token 12345, this URL and these
	// POST parameters sign as 0/KCTR6DLpKmkAf8muzZqo1nDgQ=.
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	got := sms.Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if want := "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

// TestWebhook_Forged: a request whose signature is missing or does not match
// is refused with 403, and nothing is published.
func TestWebhook_Forged(t *testing.T) {
	for _, path := range []string{"webhook", "status"} {
		t.Run(path, func(t *testing.T) {
			env, _, _ := setup(t, "sms")
			form := inboundForm("sms", sid("SM", 1), customer, "hello")
			form.Set("MessageStatus", "delivered")
			target := "/channels/sms/" + path
			good := sms.Sign(twiliotest.AuthToken, env.Deps.PublicURL+target, form)
			tampered := url.Values{}
			for k, v := range form {
				tampered[k] = v
			}
			tampered.Set("Body", "send me the admin password")

			tests := []struct {
				name string
				form url.Values
				sig  string
			}{
				{"missing", form, ""},
				{"garbage", form, "not base64!"},
				{"other token", form, sms.Sign("other-token", env.Deps.PublicURL+target, form)},
				{"other URL", form, sms.Sign(twiliotest.AuthToken, "https://evil.example.com"+target, form)},
				{"tampered body", tampered, good},
			}
			for _, tt := range tests {
				req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(tt.form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.sig != "" {
					req.Header.Set(sms.SignatureHeader, tt.sig)
				}
				if resp := env.Serve(t, req); resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: answered %d, want 403", tt.name, resp.StatusCode)
				}
			}
			// Another account's request, correctly signed with our token, is not ours.
			other := inboundForm("sms", sid("SM", 2), customer, "hello")
			other.Set("AccountSid", "AC"+strings.Repeat("f", 32))
			if code, _ := post(t, env, path, other); code != http.StatusForbidden {
				t.Errorf("other account: answered %d, want 403", code)
			}
			if n := env.Count(t, bus.StreamIn); n != 0 {
				t.Errorf("%d messages published on %s, want 0", n, bus.StreamIn)
			}
			if n := env.Count(t, bus.StreamEvt); n != 0 {
				t.Errorf("%d events published, want 0", n)
			}
		})
	}
}

// TestWebhook_BehindProxy: the signature covers public_url plus the path,
// whatever Host a proxy forwards; a path prefix the proxy strips is part of
// public_url.
func TestWebhook_BehindProxy(t *testing.T) {
	env, _, _ := setup(t, "sms", "public_url: https://support.example.com/omni/")
	form := inboundForm("sms", sid("SM", 1), customer, "via proxy")
	target := "/channels/sms/webhook?region=eu"

	send := func(signedURL string) int {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		req.Host = "omnigate-1.internal:8080"
		req.Header.Set("X-Forwarded-Host", "evil.example.com")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(sms.SignatureHeader, sms.Sign(twiliotest.AuthToken, signedURL, form))
		return env.Serve(t, req).StatusCode
	}
	if code := send("http://omnigate-1.internal:8080" + target); code != http.StatusForbidden {
		t.Errorf("signed over the Host header: answered %d, want 403", code)
	}
	if code := send("https://evil.example.com" + target); code != http.StatusForbidden {
		t.Errorf("signed over X-Forwarded-Host: answered %d, want 403", code)
	}
	if code := send("https://support.example.com/omni" + target); code != http.StatusOK {
		t.Fatalf("signed over public_url + path: answered %d, want 200", code)
	}
	if n := env.Count(t, bus.StreamIn); n != 1 {
		t.Errorf("%d messages published, want 1", n)
	}
}

// TestWebhook_SignatureURL: behind a proxy that rewrites the path Twilio
// calls (https://hooks.example.com/twilio/sms-in?acct=7 arrives as
// /channels/sms/webhook), signature_url declares the URL Twilio signed: a
// request signed for it is taken, one signed for public_url plus the path it
// arrived at is refused. Status callbacks, which go where omnigate asked, are
// still checked against public_url.
func TestWebhook_SignatureURL(t *testing.T) {
	const declared = "https://hooks.example.com/twilio/sms-in?acct=7"
	env, _, _ := setup(t, "sms", "public_url: https://support.example.com", "signature_url: "+declared)
	form := inboundForm("sms", sid("SM", 1), customer, "via a rewriting proxy")

	send := func(target, signedURL string, form url.Values) int {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		req.Host = "omnigate-1.internal:8080"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(sms.SignatureHeader, sms.Sign(twiliotest.AuthToken, signedURL, form))
		return env.Serve(t, req).StatusCode
	}
	if code := send("/channels/sms/webhook", "https://support.example.com/channels/sms/webhook", form); code != http.StatusForbidden {
		t.Errorf("signed over public_url + path: answered %d, want 403", code)
	}
	if code := send("/channels/sms/webhook", "https://hooks.example.com/twilio/sms-in", form); code != http.StatusForbidden {
		t.Errorf("signed without the declared query: answered %d, want 403", code)
	}
	if code := send("/channels/sms/webhook", declared, form); code != http.StatusOK {
		t.Fatalf("signed over signature_url: answered %d, want 200", code)
	}
	msgs := inbound(t, env)
	if len(msgs) != 1 || msgs[0].Text != "via a rewriting proxy" {
		t.Fatalf("published %v, want the message", msgs)
	}

	status := url.Values{"AccountSid": {twiliotest.AccountSID}, "MessageSid": {sid("SM", 2)}, "MessageStatus": {"delivered"}, "To": {customer}}
	if code := send("/channels/sms/status", declared, status); code != http.StatusForbidden {
		t.Errorf("status callback signed over signature_url: answered %d, want 403", code)
	}
	if code := send("/channels/sms/status", "https://support.example.com/channels/sms/status", status); code != http.StatusOK {
		t.Errorf("status callback signed over public_url + path: answered %d, want 200", code)
	}
}
