package sms_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/sms"
	"github.com/omnigate/omnigate/adapters/sms/twiliotest"
	"github.com/omnigate/omnigate/core"
)

func TestAdapter_ConformanceSMS(t *testing.T) {
	adaptertest.Run(t, harness("sms"))
}

func TestAdapter_ConformanceWhatsApp(t *testing.T) {
	adaptertest.Run(t, harness("whatsapp"))
}

// harness describes channel name to the conformance kit, on a fresh fake
// Twilio for each check.
func harness(name string) adaptertest.Harness {
	return adaptertest.Harness{
		Name: name,
		New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
			fake := twiliotest.NewServer(t)
			a := build(t, name, configYAML(name, fake), deps)
			var window sync.Once
			return &adaptertest.Fixture{
				Adapter: a,
				Inbound: func(t *testing.T, in adaptertest.Incoming) *http.Request {
					form := inboundForm(name, sid("SM", in.N), customer, in.Text)
					return signedRequest(t, deps.PublicURL, name, "webhook", form)
				},
				Forged: func(t *testing.T) *http.Request {
					form := inboundForm(name, sid("SM", 99), customer, "forged")
					req := signedRequest(t, deps.PublicURL, name, "webhook", form)
					req.Header.Set(sms.SignatureHeader, sms.Sign("not-the-token", req.URL.String(), form))
					return req
				},
				Malformed: func(t *testing.T) *http.Request {
					form := url.Values{"AccountSid": {twiliotest.AccountSID}, "Body": {"no sid, no sender"}}
					return signedRequest(t, deps.PublicURL, name, "webhook", form)
				},
				Outbound: func(t *testing.T) *core.Message {
					if name == "whatsapp" {
						// WhatsApp allows free-form replies only within 24 hours of
						// the customer's last message: the customer writes first.
						window.Do(func() { openWindow(t, deps, customer) })
					}
					return &core.Message{To: core.NewIdentity(name, customer)}
				},
				Sent:        func(*testing.T) []string { return fake.SentTexts() },
				RateLimited: func(*testing.T) { fake.Fail(twiliotest.TooManyRequests(1)) },
				// The kit wants a refusal that is dead-lettered: an invalid
				// number (21211) no longer is, it is Unreachable and handed
				// back to the pipeline for another channel (TestSend_Errors).
				BadRecipient: func(*testing.T) { fake.Fail(twiliotest.InvalidTo()) },
			}
		},
	}
}

// openWindow delivers a whatsapp message from number over the network.
func openWindow(t *testing.T, deps adapters.Deps, number string) {
	t.Helper()
	env := &adaptertest.Env{Name: "whatsapp", Deps: deps}
	if code := postNetwork(t, env, "webhook", inboundForm("whatsapp", sid("SM", 1000), number, "hello")); code != http.StatusOK {
		t.Fatalf("opening the window: webhook answered %d", code)
	}
}
