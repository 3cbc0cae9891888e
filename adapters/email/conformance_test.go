package email_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/core"
)

// TestAdapter_Conformance runs the kit every channel passes, with go-imap's
// in-memory IMAP server as the mailbox and go-smtp as the receiving server.
// IMAP has no webhook: Forged and Malformed are skipped.
func TestAdapter_Conformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Harness{
		Name: email.Name,
		Skip: adaptertest.Skip{Forged: true, Malformed: true},
		New: func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture {
			im := startIMAP(t, withIdle)
			sm := startSMTP(t)
			a := build(t, deps, cfg{imapPort: im.port, smtpPort: sm.port}.yaml())
			return &adaptertest.Fixture{
				Adapter: a,
				Inbound: func(t *testing.T, in adaptertest.Incoming) *http.Request {
					// The same N is the same mail (same Message-ID), delivered again.
					id := fmt.Sprintf("conformance-%d@customer.example", in.N)
					im.deliver(t, "INBOX", customerMail(id, "Question", in.Text))
					return nil
				},
				Outbound: func(*testing.T) *core.Message {
					return &core.Message{To: core.NewIdentity(email.Name, customerAddr)}
				},
				Sent:         sm.Texts,
				RateLimited:  func(*testing.T) { sm.setMode(throttled) },
				BadRecipient: func(*testing.T) { sm.setMode(noMailbox) },
			}
		},
	})
}
