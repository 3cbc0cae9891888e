package sms_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/config"
)

func TestConfig_ValidateListsEveryProblem(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	section := strings.Join([]string{
		"account_sid: 12345",
		`from: "+1"`,
		"messaging_service_sid: MGxyz",
		"public_url: ftp://example.com",
		"api_base_url: https://api.twilio.com?x=1",
		"default_region: XX",
		"timeout: -1s",
		"media_hosts: ['Bad Host']",
		"max_media_bytes: -5",
		"signature_url: /twilio/in",
	}, "\n")
	_, err := buildErr("sms", section, env.Deps)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Build: %v, want config.Errors", err)
	}
	want := []string{
		"omnigate.yaml:1:1: channels.sms.account_sid: must be AC followed by 32 hex digits",
		"channels.sms.auth_token",
		"omnigate.yaml:2:1: channels.sms.from:",
		"omnigate.yaml:3:1: channels.sms.messaging_service_sid: must be MG",
		"omnigate.yaml:4:1: channels.sms.public_url: must be an absolute http",
		"omnigate.yaml:5:1: channels.sms.api_base_url: must not have a query",
		"omnigate.yaml:6:1: channels.sms.default_region: unknown region",
		"omnigate.yaml:7:1: channels.sms.timeout: must be a positive duration",
		"channels.sms.media_hosts[0]: must be a lower-case host name",
		"omnigate.yaml:9:1: channels.sms.max_media_bytes: must be positive",
		"omnigate.yaml:10:1: channels.sms.signature_url: must be an absolute http",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(errs), len(want), err)
	}
}

func TestConfig_Problems(t *testing.T) {
	sid := "account_sid: " + twiliotest.AccountSID + "\nauth_token: " + twiliotest.AuthToken + "\n"
	tests := []struct {
		name, channel, section, want string
	}{
		{"no sender", "sms", sid, "channels.sms.from (default): required unless messaging_service_sid is set"},
		{"whatsapp short code", "whatsapp", sid + "from: '12345'\n", "channels.whatsapp.from: must be the WhatsApp sender's number"},
		{"whatsapp sender on sms", "sms", sid + "from: 'whatsapp:+14155238886'\n", "channels.sms.from: a whatsapp: sender belongs in channels.whatsapp"},
		{"sender id too long", "sms", sid + "from: AcmeSupportDesk\n", "channels.sms.from: must be a number in E.164"},
		{"bad content sid", "whatsapp", sid + "from: '+14155238886'\ntemplate:\n  content_sid: HX1\n", "channels.whatsapp.template.content_sid: must be HX"},
		{"variables without template", "whatsapp", sid + "from: '+14155238886'\ntemplate:\n  variables: {'1': x}\n", "channels.whatsapp.template.variables: set without template.content_sid"},
		{"unknown key", "sms", sid + "from: '+15005550006'\nwebhook_path: /x\n", "channels.sms.webhook_path: unknown key"},
		{"signature_url with credentials", "sms", sid + "from: '+15005550006'\nsignature_url: https://u:p@hooks.example.com/in\n", "channels.sms.signature_url: must not hold credentials"},
		{"signature_url with a fragment", "sms", sid + "from: '+15005550006'\nsignature_url: https://hooks.example.com/in#x\n", "channels.sms.signature_url: must not have a fragment"},
		{"help too long", "sms", sid + "from: '+15005550006'\nhelp_reply: " + strings.Repeat("h", 1601) + "\n", "channels.sms.help_reply: 1601 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := adaptertest.NewEnv(t, tt.channel)
			_, err := buildErr(tt.channel, tt.section, env.Deps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), twiliotest.AuthToken) {
				t.Errorf("error shows the auth token: %v", err)
			}
		})
	}
}

func TestConfig_Valid(t *testing.T) {
	for _, from := range []string{"+15005550006", "+1 (500) 555-0006", "12345", "AcmeSupport"} {
		c := sms.Config{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: from}
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("from %q: %v", from, err)
		}
	}
	c := sms.Config{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, MessagingServiceSID: "MG" + strings.Repeat("a", 32)}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("messaging service only: %v", err)
	}
	if c.APIBaseURL != sms.DefaultAPIBaseURL || c.DefaultRegion != "US" || c.Timeout != sms.DefaultTimeout ||
		c.StatusCallback == nil || !*c.StatusCallback || c.MaxMediaBytes != sms.DefaultMaxMediaBytes {
		t.Errorf("defaults: %+v", c)
	}
}

// TestConfig_Keys: both adapters are registered with their keys, each with its
// environment variable, the token marked secret.
func TestConfig_Keys(t *testing.T) {
	for _, name := range []string{"sms", "whatsapp"} {
		info, ok := adapters.Lookup(name)
		if !ok || info.Kind != adapters.Channel || info.Doc == "" {
			t.Fatalf("%s: registered %v, info %+v", name, ok, info)
		}
		keys := map[string]config.Key{}
		for _, k := range info.Keys {
			keys[k.Path] = k
			if k.Doc == "" {
				t.Errorf("%s has no doc", k.Path)
			}
		}
		prefix := "channels." + name + "."
		env := "OMNIGATE_CHANNELS_" + strings.ToUpper(name) + "_"
		for _, k := range []string{"account_sid", "auth_token", "from", "messaging_service_sid", "public_url", "status_callback", "api_base_url", "default_region", "timeout"} {
			got, ok := keys[prefix+k]
			if !ok {
				t.Errorf("no key %s%s", prefix, k)
				continue
			}
			if want := env + strings.ToUpper(k); got.Env != want {
				t.Errorf("%s: env %q, want %q", got.Path, got.Env, want)
			}
		}
		if !keys[prefix+"auth_token"].Secret {
			t.Errorf("%sauth_token is not secret", prefix)
		}
		if d := keys[prefix+"api_base_url"].Default; d != `"https://api.twilio.com"` && d != "https://api.twilio.com" {
			t.Errorf("api_base_url default %q", d)
		}
		_, hasTemplate := keys[prefix+"template.content_sid"]
		if hasTemplate != (name == "whatsapp") {
			t.Errorf("%s: template.content_sid listed = %v", name, hasTemplate)
		}
	}
}

// TestConfig_Env: every key can come from OMNIGATE_CHANNELS_SMS_*.
func TestConfig_Env(t *testing.T) {
	fake := twiliotest.NewServer(t)
	t.Setenv("OMNIGATE_CHANNELS_SMS_ACCOUNT_SID", twiliotest.AccountSID)
	t.Setenv("TWILIO_TOKEN", twiliotest.AuthToken)
	t.Setenv("OMNIGATE_CHANNELS_SMS_AUTH_TOKEN", "${env:TWILIO_TOKEN}")
	t.Setenv("OMNIGATE_CHANNELS_SMS_FROM", twiliotest.From)
	t.Setenv("OMNIGATE_CHANNELS_SMS_API_BASE_URL", fake.URL)
	env := adaptertest.NewEnv(t, "sms")
	a, err := buildErr("sms", "", env.Deps)
	if err != nil {
		t.Fatalf("Build from the environment: %v", err)
	}
	if _, err := a.Send(ctx(t), reply(env, customer, "configured by env")); err != nil {
		t.Errorf("Send: %v", err)
	}
}

func TestNew_NeedsPublicURL(t *testing.T) {
	env := adaptertest.NewEnv(t, "sms")
	deps := env.Deps
	deps.PublicURL = ""
	fake := twiliotest.NewServer(t)
	_, err := buildErr("sms", configYAML("sms", fake), deps)
	if err == nil || !strings.Contains(err.Error(), "public_url") {
		t.Errorf("Build without a public URL: %v, want an error naming public_url", err)
	}
	// public_url in the section is enough.
	if _, err := buildErr("sms", configYAML("sms", fake, "public_url: https://support.example.com"), deps); err != nil {
		t.Errorf("Build with public_url: %v", err)
	}
}

func TestAdapter_Ready(t *testing.T) {
	env, a, fake := setup(t, "sms")
	if err := a.Ready(ctx(t)); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := a.Ready(ctx(t)); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if n := fake.AccountFetches(); n != 1 {
		t.Errorf("%d account fetches for two Ready calls within a minute, want 1", n)
	}
	// Wrong token: not ready, with a reason.
	bad := build(t, "sms", strings.Replace(configYAML("sms", fake), twiliotest.AuthToken, "wrong0token", 1), adapters.Deps{
		Publisher: env.Deps.Publisher, Store: env.Store, PublicURL: env.Deps.PublicURL,
	})
	err := bad.Ready(ctx(t))
	var ae *sms.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusUnauthorized {
		t.Errorf("Ready with a wrong token: %v, want Twilio's 401", err)
	}
}
