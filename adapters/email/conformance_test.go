package email_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
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
			im := mailtest.NewIMAP(t, mailtest.WithIdle)
			sm := mailtest.NewSMTP(t)
			a := build(t, deps, cfg{imapPort: im.Port, smtpPort: sm.Port}.yaml())
			return &adaptertest.Fixture{
				Adapter: a,
				Inbound: func(t *testing.T, in adaptertest.Incoming) *http.Request {
					// The same N is the same mail (same Message-ID), delivered again.
					id := fmt.Sprintf("conformance-%d@customer.example", in.N)
					im.Deliver(t, "INBOX", mailtest.CustomerMail(id, "Question", in.Text))
					return nil
				},
				Outbound: func(*testing.T) *core.Message {
					return &core.Message{To: core.NewIdentity(email.Name, mailtest.CustomerAddress)}
				},
				Sent:         func(t *testing.T) []string { return sm.Texts(t) },
				RateLimited:  func(*testing.T) { sm.FailRcpt(mailtest.Throttled) },
				BadRecipient: func(*testing.T) { sm.FailRcpt(mailtest.NoMailbox) },
			}
		},
	})
}
