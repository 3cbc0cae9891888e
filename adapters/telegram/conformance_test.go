package telegram_test

import (
	"net/http"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
)

// TestAdapter_ConformanceWebhook runs the adapter kit against webhook mode.
func TestAdapter_ConformanceWebhook(t *testing.T) {
	adaptertest.Run(t, adaptertest.Harness{
		Name: "telegram",
		New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
			fake := telegramtest.NewServer(t, "")
			fx := fixture(t, fake, build(t, deps, webhookConfig(fake)))
			fx.Inbound = func(t *testing.T, in adaptertest.Incoming) *http.Request {
				return telegramtest.WebhookRequest(t, webhookPath, secret, textUpdate(1000+in.N, in.N, in.Text))
			}
			fx.Forged = func(t *testing.T) *http.Request {
				return telegramtest.WebhookRequest(t, webhookPath, "not-"+secret, textUpdate(999, 99, "forged"))
			}
			fx.Malformed = func(t *testing.T) *http.Request {
				return telegramtest.WebhookRequest(t, webhookPath, secret, []any{"not", "an", "update"})
			}
			return fx
		},
	})
}

// TestAdapter_ConformancePolling runs the adapter kit against polling mode:
// nothing to forge or malform, the adapter fetches updates itself.
func TestAdapter_ConformancePolling(t *testing.T) {
	adaptertest.Run(t, adaptertest.Harness{
		Name: "telegram",
		Skip: adaptertest.Skip{Forged: true, Malformed: true},
		New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
			fake := telegramtest.NewServer(t, "")
			fx := fixture(t, fake, build(t, deps, pollingConfig(fake)))
			fx.Inbound = func(t *testing.T, in adaptertest.Incoming) *http.Request {
				// The same message again comes in a new update, as after a
				// restart that lost the offset: stored once all the same.
				fake.AddUpdate(t, map[string]any{"message": message(in.N, map[string]any{"text": in.Text})})
				return nil
			}
			return fx
		},
	})
}

// fixture fills the outbound hooks, the same in both modes.
func fixture(t *testing.T, fake *telegramtest.Server, a adapters.Adapter) *adaptertest.Fixture {
	return &adaptertest.Fixture{
		Adapter: a,
		Outbound: func(t *testing.T) *core.Message {
			return &core.Message{Kind: core.KindMessage, Direction: core.Outbound, Channel: "telegram", To: "telegram:4242"}
		},
		Sent:         func(t *testing.T) []string { return fake.SentTexts() },
		RateLimited:  func(t *testing.T) { fake.Fail(telegramtest.TooManyRequests(3)) },
		BadRecipient: func(t *testing.T) { fake.Fail(telegramtest.ChatNotFound()) },
	}
}
