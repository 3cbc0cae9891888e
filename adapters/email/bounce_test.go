package email_test

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// published is what the adapter put on the bus for the mail it processed:
// delivery.failed events and the envelopes of OMNI_IN.
type published struct {
	failed  []*core.Message
	inbound []*core.Message
}

// settle waits until the mailbox's n mails are processed (flagged \Seen,
// which the adapter does after it published), then returns what is on the
// bus: a positive signal that handling is over, not a sleep.
func (w *world) settle(t *testing.T, n int) published {
	t.Helper()
	w.processed(t, "INBOX", n)
	var p published
	for _, s := range w.env.Stored(t, bus.StreamIn) {
		if s.Message == nil {
			t.Fatalf("undecodable envelope on %s: %v", bus.StreamIn, s.Err)
		}
		p.inbound = append(p.inbound, s.Message)
	}
	p.failed = w.env.Events(t, event.DeliveryFailed, "")
	return p
}

// TestAdapter_Bounces: a reply is sent (with reply tokens, so its return
// path is its plus address, and with ENVID); the recipient's server bounces
// it with a DSN as Postfix writes it, which arrives in the mailbox over IMAP.
// A hard bounce (5.x.x) becomes a delivery.failed for the reply, with its
// conversation and meta reason "bounced", and a contact.unreachable for the
// address on the inbound subject; a failure with 4.x.x only the first; a
// delay nothing. The reply is found by whatever the bounce still has of it:
// its returned headers, the Original-Envelope-Id, the return path. A bounce
// fetched twice is stored once.
func TestAdapter_Bounces(t *testing.T) {
	const rcpt = "no.such.user@customer.example"
	for _, tc := range []struct {
		name      string
		config    []string
		bounce    mailtest.Bounce
		matchedBy string // "": no failure published
		hard      bool
		twice     bool // the bounce is delivered a second time
	}{
		{name: "returned headers", bounce: mailtest.Bounce{}, matchedBy: "x-omnigate-id", hard: true},
		{name: "returned message-id only", bounce: mailtest.Bounce{Omit: []string{email.HeaderOmnigateID}}, matchedBy: "message-id", hard: true},
		{name: "original-envelope-id only", config: []string{"verp: false"}, bounce: mailtest.Bounce{NoHeaders: true}, matchedBy: "original-envelope-id", hard: true},
		{name: "return path only", bounce: mailtest.Bounce{NoHeaders: true, NoEnvelopeID: true}, matchedBy: "return-path", hard: true},
		{name: "nothing of the reply", config: []string{"verp: false"}, bounce: mailtest.Bounce{NoHeaders: true, NoEnvelopeID: true}},
		{name: "gave up after temporary failures", bounce: mailtest.Bounce{Status: "4.4.7", Diagnostic: "X-Postfix; delivery temporarily suspended: connect to mx1.customer.example: Connection timed out"}, matchedBy: "x-omnigate-id"},
		{name: "delayed", bounce: mailtest.Bounce{Action: "delayed", Status: "4.4.1"}},
		{name: "fetched twice", bounce: mailtest.Bounce{}, matchedBy: "x-omnigate-id", hard: true, twice: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, mailtest.WithIdle)
			a := w.adapter(t, cfg{top: append([]string{"reply_token: true"}, tc.config...)})
			run(t, a)
			r := reply(rcpt, "This will bounce.")
			if _, err := a.Send(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			sm, _, _ := lastMail(t, w.smtp)
			dsn := mailtest.DSN(sm, tc.bounce)
			w.imap.Deliver(t, "INBOX", dsn)
			n := 1
			if tc.twice {
				w.imap.Deliver(t, "INBOX", dsn)
				n = 2
			}
			if tc.matchedBy != "" {
				bustest.Eventually(t, wait, func() error {
					if w.log.count("bounce: reply not delivered", "matched_by", tc.matchedBy) < n {
						return fmt.Errorf("bounce not handled %d time(s) as matched by %s", n, tc.matchedBy)
					}
					return nil
				})
			}
			got := w.settle(t, n)

			if tc.matchedBy == "" {
				if len(got.failed) != 0 || len(got.inbound) != 0 {
					t.Fatalf("published %d delivery.failed and %d inbound envelopes, want none", len(got.failed), len(got.inbound))
				}
				return
			}
			if len(got.failed) != 1 {
				t.Fatalf("%d delivery.failed events, want 1", len(got.failed))
			}
			ev := got.failed[0]
			wantReason := ""
			if tc.hard {
				wantReason = event.ReasonBounced
			}
			if ev.ReplyTo != r.ID || ev.ConversationID != r.ConversationID || ev.ContactID != r.ContactID || ev.To != "email:"+rcpt ||
				ev.Meta[event.MetaReason] != wantReason || ev.Meta[email.MetaDSNStatus] != cmp.Or(tc.bounce.Status, "5.1.1") ||
				!strings.HasPrefix(ev.Meta[event.MetaError], cmp.Or(tc.bounce.Status, "5.1.1")+" ") ||
				!ev.SentAt.Equal(time.Date(2025, 1, 7, 10, 0, 1, 0, time.UTC)) {
				t.Errorf("delivery.failed %+v meta %v", ev, ev.Meta)
			}
			if !tc.hard {
				if len(got.inbound) != 0 {
					t.Errorf("%d inbound envelopes for a failure that is not a hard bounce", len(got.inbound))
				}
				return
			}
			if len(got.inbound) != 1 {
				t.Fatalf("%d inbound envelopes, want one contact.unreachable", len(got.inbound))
			}
			u := got.inbound[0]
			if u.Kind != core.KindEvent || u.Type != event.ContactUnreachable || u.From != "email:"+rcpt || u.ConversationID != r.ConversationID ||
				u.Meta[event.MetaReason] != event.ReasonBounced || u.Meta[event.MetaError] != ev.Meta[event.MetaError] ||
				!strings.HasSuffix(u.External.Message, ":unreachable") || u.ReplyTo != r.ID {
				t.Errorf("contact.unreachable %+v meta %v", u, u.Meta)
			}
			for _, s := range w.env.Stored(t, bus.StreamIn) {
				if want := bus.SubjectIn(email.Name, string(u.From)); s.Subject != want {
					t.Errorf("contact.unreachable on %s, want %s (in order with the customer's mail)", s.Subject, want)
				}
			}
		})
	}
}

// TestAdapter_TextBounces: bounces without a DSN, as Exim, qmail, old
// Postfix, Gmail and Microsoft 365 write them, are known by their sender and
// subject, matched to the reply by the headers they return or their own
// References, and turned into delivery.failed and contact.unreachable for
// the address their text names; a delay warning, and a DSN that reports a
// delay, publish nothing. None is published as a customer's message.
func TestAdapter_TextBounces(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	hard := map[string]struct{ reply, rcpt, status string }{
		"exim_bounce":         {"01JHQYYJTEW0TGFE0JKN9K1EG1", "olga@customer.example", "5.0.0"},
		"qmail_bounce":        {"01JH91XXJEKQGT5PZVBJ2J50QF", "hans@customer.example", "5.1.1"},
		"postfix_text_bounce": {"01JHZ9KKMXX4AY0WZ0Y7X5Z19E", "marta@legacy.customer.example", "5.2.1"},
		"gmail_text_bounce":   {"01JHSQ22SMY4EM657F0S273S9G", "lucia@customer.example", "5.1.1"},
		"microsoft_ndr":       {"01JHFB0FF769HRT2SXXXG231CV", "kenji@contoso.example", "5.1.10"},
	}
	names := []string{"exim_bounce", "exim_delay", "qmail_bounce", "postfix_text_bounce", "gmail_text_bounce", "microsoft_ndr", "dsn_delayed"}
	for _, name := range names {
		w.imap.Deliver(t, "INBOX", readCorpus(t, name))
	}
	run(t, w.adapter(t, cfg{}))
	bustest.Eventually(t, wait, func() error {
		if n := w.log.count("bounce: reply not delivered", "", ""); n < len(hard) {
			return fmt.Errorf("%d bounces handled, want %d", n, len(hard))
		}
		return nil
	})
	got := w.settle(t, len(names))

	failed := map[string]*core.Message{}
	for _, ev := range got.failed {
		failed[ev.ReplyTo] = ev
	}
	unreachable := map[core.Identity]*core.Message{}
	for _, m := range got.inbound {
		if m.Kind != core.KindEvent || m.Type != event.ContactUnreachable {
			t.Errorf("published %s %s %q from %s: a bounce is no customer message", m.Kind, m.Type, m.Text, m.From)
			continue
		}
		unreachable[m.From] = m
	}
	if len(failed) != len(hard) || len(unreachable) != len(hard) {
		t.Errorf("%d delivery.failed and %d contact.unreachable, want %d each", len(failed), len(unreachable), len(hard))
	}
	for name, want := range hard {
		ev, u := failed[want.reply], unreachable[core.Identity("email:"+want.rcpt)]
		if ev == nil || u == nil {
			t.Errorf("%s: delivery.failed %v, contact.unreachable %v", name, ev != nil, u != nil)
			continue
		}
		if ev.To != core.Identity("email:"+want.rcpt) || ev.Meta[email.MetaDSNStatus] != want.status || ev.Meta[event.MetaReason] != event.ReasonBounced ||
			u.Meta[event.MetaReason] != event.ReasonBounced || !strings.HasPrefix(u.Meta[event.MetaError], want.status+" ") {
			t.Errorf("%s: delivery.failed to %s meta %v; unreachable meta %v", name, ev.To, ev.Meta, u.Meta)
		}
	}
}

// TestAdapter_BounceLookalikes: mail from a postmaster about something else,
// and a customer forwarding a bounce, are customer mail.
func TestAdapter_BounceLookalikes(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	w.imap.Deliver(t, "INBOX", []byte("From: Postmaster <postmaster@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Our SPF record\r\nMessage-ID: <pm-1@customer.example>\r\n\r\nYour replies fail our SPF check, can you help?\r\n"))
	w.imap.Deliver(t, "INBOX", []byte("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\n"+
		"Subject: Fwd: Undelivered Mail Returned to Sender\r\nMessage-ID: <ann-fwd@customer.example>\r\n\r\nMy mail to you bounced, see below.\r\n"))
	run(t, w.adapter(t, cfg{}))
	got := w.inbound(t, 2)
	for _, m := range got {
		if m.Kind != core.KindMessage || m.From.Channel() != email.Name {
			t.Errorf("published %+v, want the customer's message", m)
		}
	}
}

// TestSend_VERPRefused: a submission server that refuses the plus-addressed
// return path gets the support address instead, with one warning.
func TestSend_VERPRefused(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	w.smtp.RefusePlusSender(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "Client does not have permissions to send as this sender"})
	a := w.adapter(t, cfg{top: []string{"reply_token: true"}})
	for range 2 {
		m := reply(mailtest.CustomerAddress, "hello")
		if _, err := a.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		if sm, _, _ := lastMail(t, w.smtp); sm.From != mailtest.Address || sm.EnvelopeID != m.ID {
			t.Errorf("envelope from %q envid %q, want the address and the reply's id", sm.From, sm.EnvelopeID)
		}
	}
	if n := w.log.count("the submission server refuses the plus-addressed return path; replies go out from address (set verp: false to stop trying)", "", ""); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
}

// TestBounce_Severity: what each bounce of the corpus says, independently
// of the golden files: whether it is a failure, a hard one, and for whom.
func TestBounce_Severity(t *testing.T) {
	for _, tc := range []struct {
		name            string
		failed, hard    bool
		recipient, envl string
	}{
		{"dsn_bounce", true, true, "no.such.user@customer.example", "01JH31ABCDEFGHJKMNPQRSTVWX"},
		{"dsn_delayed", false, false, "amir@customer.example", "01JHZBTDV1ZKJ74KZFYDW8Z56M"},
		{"exim_bounce", true, true, "olga@customer.example", ""},
		{"exim_delay", false, false, "piet@customer.example", ""},
		{"qmail_bounce", true, true, "hans@customer.example", ""},
		{"postfix_text_bounce", true, true, "marta@legacy.customer.example", ""},
		{"gmail_text_bounce", true, true, "lucia@customer.example", ""},
		{"microsoft_ndr", true, true, "kenji@contoso.example", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tc.name+".eml"))
			if err != nil {
				t.Fatal(err)
			}
			p, err := email.Normalize(bytes.NewReader(raw), email.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			b := p.Bounce
			if p.Kind != email.KindBounce || b == nil {
				t.Fatalf("kind %s (%s), want a bounce", p.Kind, p.Reason)
			}
			if b.Failed() != tc.failed || b.Permanent() != tc.hard || b.Recipient != tc.recipient || b.EnvelopeID != tc.envl {
				t.Errorf("failed %v hard %v recipient %q envelope %q; want %v %v %q %q", b.Failed(), b.Permanent(), b.Recipient, b.EnvelopeID,
					tc.failed, tc.hard, tc.recipient, tc.envl)
			}
		})
	}
}
