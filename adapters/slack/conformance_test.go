package slack_test

import (
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/slack"
)

// TestConformance runs the kit's lifecycle check (Run returns promptly on
// cancel, nothing of the adapter left running) in both modes. The kit's other
// checks are about customer channels (inbound from customers, sends to them)
// and are skipped: this desk's equivalents are the tests of this package.
func TestConformance(t *testing.T) {
	for _, mode := range []string{slack.ModeSocket, slack.ModeHTTP} {
		t.Run(mode, func(t *testing.T) {
			adaptertest.Run(t, adaptertest.Harness{
				Name: slack.Name,
				New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
					fake := newFakeSlack(t)
					cfg := testConfig(fake)
					if mode == slack.ModeSocket {
						cfg.Mode, cfg.AppToken = slack.ModeSocket, testAppTok
					}
					a, err := slack.New(cfg, deps)
					if err != nil {
						t.Fatal(err)
					}
					return &adaptertest.Fixture{Adapter: a}
				},
				Skip: adaptertest.Skip{Inbound: true, Forged: true, Malformed: true, Outbound: true, RateLimited: true, BadRecipient: true},
			})
		})
	}
}
