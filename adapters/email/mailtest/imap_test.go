package mailtest_test

import (
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
)

var securities = []string{email.SecurityNone, email.SecurityStartTLS, email.SecurityTLS}

// dialIMAP logs in to s as a client that verifies its certificate against
// mailtest.CertPool.
func dialIMAP(t *testing.T, s *mailtest.IMAPServer, o *imapclient.Options) *imapclient.Client {
	t.Helper()
	o.TLSConfig = &tls.Config{RootCAs: mailtest.CertPool(t), MinVersion: tls.VersionTLS12}
	var (
		c   *imapclient.Client
		err error
	)
	switch s.Security {
	case email.SecurityTLS:
		c, err = imapclient.DialTLS(s.Addr(), o)
	case email.SecurityStartTLS:
		c, err = imapclient.DialStartTLS(s.Addr(), o)
	default:
		c, err = imapclient.DialInsecure(s.Addr(), o)
	}
	if err != nil {
		t.Fatalf("dial %s (%s): %v", s.Addr(), s.Security, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// TestIMAP_DeliverPushesToIdle: over every security, a client idling on
// INBOX hears of a delivered mail at once, and List shows it with its flags.
func TestIMAP_DeliverPushesToIdle(t *testing.T) {
	for _, security := range securities {
		t.Run(security, func(t *testing.T) {
			s := mailtest.NewIMAPSecurity(t, nil, security)
			if s.Host != "127.0.0.1" || s.Port == 0 || s.Security != security || s.User != mailtest.Address || s.Password != mailtest.IMAPPassword {
				t.Fatalf("server %+v", s)
			}
			exists := make(chan uint32, 10)
			c := dialIMAP(t, s, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						exists <- *d.NumMessages
					}
				},
			}})
			if !c.Caps().Has(imap.CapIdle) || !c.Caps().Has(imap.CapMove) {
				t.Errorf("caps %v, want IDLE and MOVE by default", c.Caps())
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			idle, err := c.Idle()
			if err != nil {
				t.Fatal(err)
			}
			uid := s.Deliver(t, "INBOX", mailtest.CustomerMail("1@customer.example", "Hi", "hello"))
			select {
			case n := <-exists:
				if n != 1 {
					t.Errorf("EXISTS %d, want 1", n)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no EXISTS while idling")
			}
			if err := idle.Close(); err != nil {
				t.Fatal(err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatal(err)
			}

			seen := s.Deliver(t, "INBOX", mailtest.CustomerMail("2@customer.example", "Hi", "again"), imap.FlagSeen)
			got := s.List(t, "INBOX")
			if len(got) != 2 || got[0].UID != uid || slices.Contains(got[0].Flags, imap.FlagSeen) ||
				got[1].UID != seen || !slices.Contains(got[1].Flags, imap.FlagSeen) {
				t.Errorf("List = %+v, want uid %d unseen and uid %d seen", got, uid, seen)
			}
			if got := s.List(t, "Processed"); len(got) != 0 {
				t.Errorf("Processed holds %+v, want nothing", got)
			}
		})
	}
}

// TestIMAP_Recreate: a recreated mailbox is empty with a new UIDVALIDITY.
func TestIMAP_Recreate(t *testing.T) {
	s := mailtest.NewIMAP(t, mailtest.WithoutIdle)
	s.Deliver(t, "INBOX", mailtest.CustomerMail("1@customer.example", "Hi", "hello"))
	validity := func() uint32 {
		c := dialIMAP(t, s, &imapclient.Options{})
		st, err := c.Status("INBOX", &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Logout().Wait()
		return st.UIDValidity
	}
	before := validity()
	s.Recreate(t, "INBOX")
	if after := validity(); after == before {
		t.Errorf("UIDVALIDITY %d unchanged", after)
	}
	if got := s.List(t, "INBOX"); len(got) != 0 {
		t.Errorf("recreated INBOX holds %+v", got)
	}
}

// TestIMAP_WithoutIdle: a server given WithoutIdle offers neither IDLE nor
// MOVE after login (imapserver would add IDLE), in plain text and over TLS.
func TestIMAP_WithoutIdle(t *testing.T) {
	for _, security := range []string{email.SecurityNone, email.SecurityTLS} {
		t.Run(security, func(t *testing.T) {
			s := mailtest.NewIMAPSecurity(t, mailtest.WithoutIdle, security)
			c := dialIMAP(t, s, &imapclient.Options{})
			if caps := c.Caps(); !caps.Has(imap.CapIMAP4rev1) || caps.Has(imap.CapIdle) || caps.Has(imap.CapMove) {
				t.Errorf("caps %v, want IMAP4rev1 without IDLE and MOVE", caps)
			}
			// A mailbox still works as before.
			s.Deliver(t, "INBOX", mailtest.CustomerMail("1@customer.example", "IDLE in the subject", "IDLE in the text"))
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
			if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "IDLE in the subject" {
				t.Errorf("fetch = %v, %v", msgs, err)
			}
		})
	}
}

// TestIMAP_Close: a closed server refuses connections.
func TestIMAP_Close(t *testing.T) {
	s := mailtest.NewIMAP(t, nil)
	s.Close()
	if c, err := imapclient.DialInsecure(s.Addr(), nil); err == nil {
		_ = c.Close()
		t.Error("dial to a closed server succeeded")
	}
}
