package email_test

import (
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// TestAdapter_TLS: both IMAP and SMTP work over implicit TLS and STARTTLS,
// and a certificate that does not verify is refused unless
// insecure_skip_verify says otherwise.
func TestAdapter_TLS(t *testing.T) {
	for _, security := range []string{email.SecurityTLS, email.SecurityStartTLS} {
		t.Run(security, func(t *testing.T) {
			env := adaptertest.NewEnv(t, email.Name)
			im := mailtest.NewIMAPSecurity(t, mailtest.WithIdle, security)
			sm := mailtest.NewSMTPSecurity(t, security)
			c := cfg{imapPort: im.Port, smtpPort: sm.Port,
				imap: []string{"security: " + security, "insecure_skip_verify: true"},
				smtp: []string{"security: " + security, "insecure_skip_verify: true"}}
			a := build(t, env.Deps, c.yaml())
			run(t, a)
			im.Deliver(t, "INBOX", mailtest.CustomerMail(mailID(1), "Secure", "over "+security))
			w := &world{env: env, imap: im, smtp: sm}
			if m := w.inbound(t, 1)[0]; m.Text != "over "+security {
				t.Errorf("text %q", m.Text)
			}
			if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "reply over "+security)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if texts := sm.Texts(t); len(texts) != 1 || texts[0] != "reply over "+security {
				t.Errorf("sent %q", texts)
			}

			// The self-signed certificate does not verify by default.
			c.imap, c.smtp = []string{"security: " + security}, []string{"security: " + security}
			strict := build(t, env.Deps, c.yaml())
			if _, err := strict.Send(t.Context(), reply(mailtest.CustomerAddress, "x")); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Send to an unverifiable server = %v, want a certificate error", err)
			}
			if err := strict.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Run against an unverifiable server = %v, want a certificate error", err)
			}
		})
	}
}
