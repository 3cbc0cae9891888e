package sms_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// Numbers used in tests. Twilio's test numbers (+1500555xxxx) are possible
// numbers, not valid ones: the adapter must accept them.
const (
	customer      = "+14155550100"
	otherCustomer = "+14155550199"
)

// configYAML is a channels.<name> section pointing at fake, plus extra lines.
func configYAML(name string, fake *twiliotest.Server, extra ...string) string {
	from := twiliotest.From
	if name == "whatsapp" {
		from = twiliotest.WhatsAppFrom
	}
	lines := []string{
		"account_sid: " + twiliotest.AccountSID,
		"auth_token: " + twiliotest.AuthToken,
		`from: "` + from + `"`,
		"api_base_url: " + fake.URL,
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

// build builds the adapter registered as name from section through the
// registry, as omnigate serve does, and fails t on an error.
func build(t *testing.T, name, section string, deps adapters.Deps) *sms.Adapter {
	t.Helper()
	a, err := buildErr(name, section, deps)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return a
}

func buildErr(name, section string, deps adapters.Deps) (*sms.Adapter, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(section), &doc); err != nil {
		return nil, err
	}
	a, err := adapters.Build(name, "omnigate.yaml", &doc, deps)
	if err != nil {
		return nil, err
	}
	return a.(*sms.Adapter), nil
}

// setup returns an Env and an adapter on it talking to a fresh fake.
func setup(t *testing.T, name string, extra ...string) (*adaptertest.Env, *sms.Adapter, *twiliotest.Server) {
	t.Helper()
	env := adaptertest.NewEnv(t, name)
	fake := twiliotest.NewServer(t)
	a := build(t, name, configYAML(name, fake, extra...), env.Deps)
	return env, a, fake
}

// sid returns the n-th message SID of a test.
func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

// address is number as Twilio writes it on channel.
func address(channel, number string) string {
	if channel == "whatsapp" {
		return "whatsapp:" + number
	}
	return number
}

// inboundForm is the form of Twilio's incoming-message webhook.
func inboundForm(channel, msgSID, from, body string) url.Values {
	to := twiliotest.From
	if channel == "whatsapp" {
		to = twiliotest.WhatsAppFrom
	}
	v := twiliotest.IncomingMessage(msgSID, address(channel, from), address(channel, to), body)
	if channel == "whatsapp" {
		v.Set("ProfileName", "Ann")
	} else {
		v.Set("FromCountry", "US")
	}
	return v
}

// signedRequest is a webhook request to path under /channels/<channel>/, as
// Twilio sends it to base: form-encoded and signed over base+path.
func signedRequest(t *testing.T, base, channel, path string, form url.Values) *http.Request {
	t.Helper()
	return twiliotest.WebhookRequest(t, base+"/channels/"+channel+"/"+path, form)
}

// post serves a signed webhook on env and returns the status and body.
func post(t *testing.T, env *adaptertest.Env, path string, form url.Values) (int, string) {
	t.Helper()
	resp := env.Serve(t, signedRequest(t, env.Deps.PublicURL, env.Name, path, form))
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, string(b)
}

// postNetwork sends a signed webhook to env's server over the network.
func postNetwork(t *testing.T, env *adaptertest.Env, path string, form url.Values) int {
	t.Helper()
	code, _ := twiliotest.PostWebhook(t, env.Deps.PublicURL+"/channels/"+env.Name+"/"+path, form)
	return code
}

// inbound returns the messages on OMNI_IN, without the events.
func inbound(t *testing.T, env *adaptertest.Env) []*core.Message {
	t.Helper()
	var out []*core.Message
	for _, m := range stored(t, env) {
		if m.Kind == core.KindMessage {
			out = append(out, m)
		}
	}
	return out
}

// inboundEvents returns the events of type typ on OMNI_IN, in order.
func inboundEvents(t *testing.T, env *adaptertest.Env, typ string) []*core.Message {
	t.Helper()
	var out []*core.Message
	for _, m := range stored(t, env) {
		if m.Kind == core.KindEvent && m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// stored returns every envelope on OMNI_IN, in order.
func stored(t *testing.T, env *adaptertest.Env) []*core.Message {
	t.Helper()
	var out []*core.Message
	for _, s := range env.Stored(t, bus.StreamIn) {
		if s.Message == nil {
			t.Fatalf("undecodable envelope on %s: %v", bus.StreamIn, s.Err)
		}
		out = append(out, s.Message)
	}
	return out
}

// reply returns an outbound message to number on env's channel.
func reply(env *adaptertest.Env, number, text string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Outbound, env.Name)
	m.To = core.NewIdentity(env.Name, number)
	m.Text = text
	m.ConversationID = "conv-1"
	m.ContactID = "contact-1"
	return m
}

// ctx is a test's context.
func ctx(t *testing.T) context.Context { return t.Context() }
