package mailtest_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// TestSMTP_DSNAndPlusSender: the server offers DSN and records ENVID and
// RET; RefusePlusSender refuses a plus-addressed MAIL FROM until cleared.
func TestSMTP_DSNAndPlusSender(t *testing.T) {
	s := mailtest.NewSMTP(t)
	send := func(from string) error {
		c := dialSMTP(t, s)
		if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("DSN"); !ok {
			t.Error("DSN not offered")
		}
		if err := c.Mail(from, &smtp.MailOptions{EnvelopeID: "01JH31ABCDEFGHJKMNPQRSTVWX", Return: smtp.DSNReturnHeaders}); err != nil {
			return err
		}
		if err := c.Rcpt(mailtest.CustomerAddress, nil); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte("Subject: x\r\n\r\nx\r\n"))
		return w.Close()
	}
	refused := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "SendAsDenied"}
	s.RefusePlusSender(refused)
	var se *smtp.SMTPError
	if err := send("support+01jh31abcdefghjkmnpqrstvwx@example.com"); !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("plus sender: %v, want 550", err)
	}
	if err := send(mailtest.Address); err != nil {
		t.Fatal(err)
	}
	s.RefusePlusSender(nil)
	if err := send("support+x@example.com"); err != nil {
		t.Errorf("plus sender after RefusePlusSender(nil): %v", err)
	}
	mails := s.Mails()
	if len(mails) != 2 || mails[0].From != mailtest.Address || mails[0].EnvelopeID != "01JH31ABCDEFGHJKMNPQRSTVWX" || mails[0].Return != "HDRS" ||
		mails[1].From != "support+x@example.com" {
		t.Errorf("recorded %+v", mails)
	}
}

// TestDSN: the notification reads back, through email.Normalize, as the
// bounce it describes.
func TestDSN(t *testing.T) {
	m := mailtest.Mail{
		From: "support+01jh31abcdefghjkmnpqrstvwx@example.com", EnvelopeID: "01JH31ABCDEFGHJKMNPQRSTVWX", To: []string{"gone@customer.example"},
		Data: []byte("From: support@example.com\r\nTo: gone@customer.example\r\nMessage-Id: <01jh31abcdefghjkmnpqrstvwx@example.com>\r\n" +
			"X-Omnigate-Id: 01JH31ABCDEFGHJKMNPQRSTVWX\r\nSubject: Re: x\r\n\r\nthe reply's text\r\n"),
	}
	for _, tc := range []struct {
		name string
		b    mailtest.Bounce
		want email.Bounce
	}{
		{"default", mailtest.Bounce{}, email.Bounce{Recipient: "gone@customer.example", Action: "failed", Status: "5.1.1",
			EnvelopeID: "01JH31ABCDEFGHJKMNPQRSTVWX", MessageID: "01jh31abcdefghjkmnpqrstvwx@example.com", OmnigateID: "01JH31ABCDEFGHJKMNPQRSTVWX"}},
		{"omit", mailtest.Bounce{Omit: []string{"x-omnigate-id"}, NoEnvelopeID: true}, email.Bounce{Recipient: "gone@customer.example", Action: "failed",
			Status: "5.1.1", MessageID: "01jh31abcdefghjkmnpqrstvwx@example.com"}},
		{"delayed without headers", mailtest.Bounce{Action: "delayed", Status: "4.4.1", NoHeaders: true}, email.Bounce{Recipient: "gone@customer.example",
			Action: "delayed", Status: "4.4.1", EnvelopeID: "01JH31ABCDEFGHJKMNPQRSTVWX"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := mailtest.DSN(m, tc.b)
			if bytes.Contains(raw, []byte("the reply's text")) {
				t.Error("the DSN returns the reply's body")
			}
			p, err := email.Normalize(bytes.NewReader(raw), email.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != email.KindBounce || p.Bounce == nil || !slices.Contains(p.To, m.From) {
				t.Fatalf("kind %s to %q", p.Kind, p.To)
			}
			got := *p.Bounce
			got.Diagnostic, got.At = "", got.At.UTC()
			if !strings.HasPrefix(p.Bounce.Diagnostic, "smtp; ") || got.At.IsZero() {
				t.Errorf("diagnostic %q at %s", p.Bounce.Diagnostic, got.At)
			}
			got.At = tc.want.At
			if got != tc.want {
				t.Errorf("bounce %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}
