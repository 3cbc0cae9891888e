package mailtest_test

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

// dialSMTP connects to s as a client that verifies its certificate against
// mailtest.CertPool.
func dialSMTP(t *testing.T, s *mailtest.SMTPServer) *smtp.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: mailtest.CertPool(t), MinVersion: tls.VersionTLS12}
	var (
		c   *smtp.Client
		err error
	)
	switch s.Security {
	case email.SecurityTLS:
		c, err = smtp.DialTLS(s.Addr(), cfg)
	case email.SecurityStartTLS:
		c, err = smtp.DialStartTLS(s.Addr(), cfg)
	default:
		c, err = smtp.Dial(s.Addr())
	}
	if err != nil {
		t.Fatalf("dial %s (%s): %v", s.Addr(), s.Security, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestSMTP_RecordsMail: over every security, an authenticated submission is
// recorded with its envelope and data, and its AUTH with it.
func TestSMTP_RecordsMail(t *testing.T) {
	for _, security := range securities {
		t.Run(security, func(t *testing.T) {
			s := mailtest.NewSMTPSecurity(t, security)
			if s.Host != "127.0.0.1" || s.Port == 0 || s.Security != security || s.User != mailtest.SMTPUser || s.Password != mailtest.SMTPPassword {
				t.Fatalf("server %+v", s)
			}
			c := dialSMTP(t, s)
			if err := c.Mail(mailtest.Address, nil); err == nil {
				t.Error("MAIL before AUTH accepted")
			}
			if err := c.Auth(sasl.NewPlainClient("", s.User, "wrong")); err == nil {
				t.Error("AUTH with a wrong password accepted")
			}
			if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
				t.Fatal(err)
			}
			raw := "From: support@example.com\r\nTo: ann.lee@customer.example\r\nSubject: Re: Hi\r\n\r\nHello Ann\r\n"
			if err := c.SendMail(mailtest.Address, []string{mailtest.CustomerAddress, "cc@customer.example"}, strings.NewReader(raw)); err != nil {
				t.Fatal(err)
			}
			_ = c.Quit()

			mails := s.Mails()
			if len(mails) != 1 {
				t.Fatalf("%d mails recorded, want 1", len(mails))
			}
			m := mails[0]
			if m.From != mailtest.Address || !slices.Equal(m.To, []string{mailtest.CustomerAddress, "cc@customer.example"}) || string(m.Data) != raw {
				t.Errorf("recorded %+v", m)
			}
			if texts := s.Texts(t); !slices.Equal(texts, []string{"Hello Ann"}) {
				t.Errorf("Texts = %q", texts)
			}
			if auths := s.Auths(); !slices.Equal(auths, []string{"PLAIN:" + mailtest.SMTPUser}) {
				t.Errorf("Auths = %q", auths)
			}
		})
	}
}

// TestSMTP_FailRcpt: every RCPT gets the set answer until it is cleared.
func TestSMTP_FailRcpt(t *testing.T) {
	s := mailtest.NewSMTP(t)
	send := func() error {
		c := dialSMTP(t, s)
		if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
			t.Fatal(err)
		}
		return c.SendMail(mailtest.Address, []string{mailtest.CustomerAddress}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
	}
	for _, want := range []*smtp.SMTPError{mailtest.NoMailbox, mailtest.Throttled} {
		s.FailRcpt(want)
		var got *smtp.SMTPError
		if err := send(); !errors.As(err, &got) || got.Code != want.Code || got.EnhancedCode != want.EnhancedCode {
			t.Errorf("send = %v, want %d %v", err, want.Code, want.EnhancedCode)
		}
	}
	s.FailRcpt(nil)
	if err := send(); err != nil {
		t.Errorf("send after FailRcpt(nil) = %v", err)
	}
	if n := len(s.Mails()); n != 1 {
		t.Errorf("%d mails recorded, want 1", n)
	}
}

// TestSMTP_Offer: AUTH LOGIN works, and only offered mechanisms are listed.
func TestSMTP_Offer(t *testing.T) {
	s := mailtest.NewSMTP(t)
	s.Offer(sasl.Login)
	c := dialSMTP(t, s)
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if c.SupportsAuth(sasl.Plain) || !c.SupportsAuth(sasl.Login) {
		t.Error("want only LOGIN offered")
	}
	if err := c.Auth(sasl.NewLoginClient(s.User, s.Password)); err != nil {
		t.Fatal(err)
	}
	if auths := s.Auths(); !slices.Equal(auths, []string{"LOGIN:" + mailtest.SMTPUser}) {
		t.Errorf("Auths = %q", auths)
	}
}
