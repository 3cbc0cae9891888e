package email_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

// reply is an outbound envelope to the customer.
func reply(to, text string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Outbound, email.Name)
	m.To = core.NewIdentity(email.Name, to)
	m.ConversationID = "01JH5CONV0000000000000000A"
	m.ContactID = "01JH5CONTACT00000000000000"
	m.Text = text
	return m
}

// lastMail returns the last mail the server accepted, parsed.
func lastMail(t *testing.T, s *mailtest.SMTPServer) (mailtest.Mail, *mail.Message, *email.Parsed) {
	t.Helper()
	mails := s.Mails()
	if len(mails) == 0 {
		t.Fatal("the server accepted no mail")
	}
	sm := mails[len(mails)-1]
	msg, err := mail.ReadMessage(bytes.NewReader(sm.Data))
	if err != nil {
		t.Fatalf("sent mail does not parse: %v\n%s", err, sm.Data)
	}
	p, err := email.Normalize(bytes.NewReader(sm.Data), email.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return sm, msg, p
}

// TestSend_ThreadsUnderInbound: a reply threads under the customer's last
// mail (In-Reply-To, References, "Re:" subject), the next reply under the
// previous one, with a plus-addressed Reply-To and the headers of a human
// reply.
func TestSend_ThreadsUnderInbound(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	a := w.adapter(t, cfg{top: []string{"reply_token: true"}})
	w.imap.Deliver(t, "INBOX", readCorpus(t, "gmail_reply"))
	run(t, a)
	w.inbound(t, 1)

	m := reply("ann.lee@gmail.com", "Hello Ann,\n\nthe refund was sent again <today>.")
	rc, err := a.Send(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	sm, msg, p := lastMail(t, w.smtp)
	h := msg.Header
	wantID := m.ID + "@example.com"
	checks := map[string]string{
		"Message-Id":    "<" + wantID + ">",
		"In-Reply-To":   "<CAJ7x9Qh3mWq_Lt8D+uRfT0bY5c1=fXkE7nQ2vZpA4sWz9oL6cQ@mail.gmail.com>",
		"References":    "<CAJ7x9Qh1ZrFs2b3=kP0aYv@mail.gmail.com> <01jh2x8k4m5n6p7q8r9s0t1v2w@example.com> <CAJ7x9Qh3mWq_Lt8D+uRfT0bY5c1=fXkE7nQ2vZpA4sWz9oL6cQ@mail.gmail.com>",
		"Subject":       "Re: Refund for order #4821",
		"Reply-To":      `"Example Support" <support+` + strings.ToLower(m.ID) + `@example.com>`,
		"From":          `"Example Support" <support@example.com>`,
		"X-Omnigate-Id": m.ID,
	}
	for k, want := range checks {
		if got := strings.Join(strings.Fields(h.Get(k)), " "); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if h.Get("Auto-Submitted") != "" || h.Get("Precedence") != "" {
		t.Error("an agent's reply is marked automatic: the customer's client may hide it")
	}
	if rc.ProviderID != wantID || rc.Status != "sent" {
		t.Errorf("receipt %+v", rc)
	}
	// With reply tokens, the return path is the reply's plus address too
	// (VERP), and the DSN parameters name the reply and ask for headers only.
	if sm.From != "support+"+strings.ToLower(m.ID)+"@example.com" || len(sm.To) != 1 || sm.To[0] != "ann.lee@gmail.com" ||
		sm.EnvelopeID != m.ID || sm.Return != "HDRS" {
		t.Errorf("envelope from %q to %q, envid %q ret %q", sm.From, sm.To, sm.EnvelopeID, sm.Return)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type %q, want multipart/alternative", ct)
	}
	if p.Text != "Hello Ann,\n\nthe refund was sent again <today>." || !strings.Contains(p.HTML, "&lt;today&gt;") {
		t.Errorf("text %q html %q", p.Text, p.HTML)
	}
	if auths := w.smtp.Auths(); auths[0] != "PLAIN:"+mailtest.SMTPUser {
		t.Errorf("auth %q, want PLAIN", auths)
	}

	// The next reply of the conversation threads under the first.
	m2 := reply("ann.lee@gmail.com", "One more thing.")
	if _, err := a.Send(t.Context(), m2); err != nil {
		t.Fatal(err)
	}
	_, msg, _ = lastMail(t, w.smtp)
	if got := msg.Header.Get("In-Reply-To"); got != "<"+wantID+">" {
		t.Errorf("second reply In-Reply-To %q, want the first reply", got)
	}
	if got := msg.Header.Get("References"); !strings.HasPrefix(got, "<CAJ7x9Qh1ZrFs2b3=kP0aYv@mail.gmail.com>") || !strings.HasSuffix(got, "<"+wantID+">") {
		t.Errorf("second reply References %q", got)
	}
	if got := msg.Header.Get("Subject"); got != "Re: Refund for order #4821" {
		t.Errorf("second reply Subject %q", got)
	}
}

// TestSend_MetaThreading: in_reply_to, references and subject set on the
// envelope win; a reply without any thread gets a plain subject.
func TestSend_MetaThreading(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	a := w.adapter(t, cfg{})
	m := reply(mailtest.CustomerAddress, "hi")
	m.Meta = map[string]string{
		email.MetaInReplyTo:  "parent@customer.example",
		email.MetaReferences: "root@customer.example parent@customer.example",
		event.MetaSubject:    "RE: Re: Broken\r\nBcc: evil@attacker.example screen",
	}
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	_, msg, _ := lastMail(t, w.smtp)
	if got := msg.Header.Get("In-Reply-To"); got != "<parent@customer.example>" {
		t.Errorf("In-Reply-To %q", got)
	}
	if got := msg.Header.Get("References"); got != "<root@customer.example> <parent@customer.example>" {
		t.Errorf("References %q", got)
	}
	if got := msg.Header.Get("Subject"); got != "Re: Broken Bcc: evil@attacker.example screen" || msg.Header.Get("Bcc") != "" {
		t.Errorf("Subject %q, Bcc %q: a header was injected", got, msg.Header.Get("Bcc"))
	}

	fresh := reply("new.customer@customer.example", "We noticed your order is late.")
	fresh.ConversationID = "01JH5CONV0000000000000000B"
	fresh.Meta = map[string]string{event.MetaSubject: "Your order 77"}
	if _, err := a.Send(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	_, msg, _ = lastMail(t, w.smtp)
	if msg.Header.Get("Subject") != "Your order 77" || msg.Header.Get("In-Reply-To") != "" || msg.Header.Get("Reply-To") != "" {
		t.Errorf("a new thread: Subject %q In-Reply-To %q Reply-To %q", msg.Header.Get("Subject"), msg.Header.Get("In-Reply-To"), msg.Header.Get("Reply-To"))
	}
}

// TestSend_Attachments: data: URLs and downloads become attachments; what
// can never be had is Permanent.
func TestSend_Attachments(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/manual.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write([]byte("%PDF-1.4 manual"))
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer files.Close()
	host := strings.TrimPrefix(files.URL, "http://")
	w := newWorld(t, mailtest.WithIdle)
	a := w.adapter(t, cfg{top: []string{"attachment_hosts: [" + host + "]"}})

	m := reply(mailtest.CustomerAddress, "Two files attached.")
	m.Attachments = []core.Attachment{
		{
			Name:        "note.txt",
			ContentType: "text/plain",
			URL:         "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("a note")),
		},
		{Name: "manual.pdf", URL: files.URL + "/manual.pdf"},
	}
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	_, msg, p := lastMail(t, w.smtp)
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/mixed") {
		t.Errorf("Content-Type %q", ct)
	}
	if p.Text != "Two files attached." || len(p.Attachments) != 2 ||
		string(p.Attachments[0].Data) != "a note" || p.Attachments[1].Name != "manual.pdf" ||
		p.Attachments[1].ContentType != "application/pdf" || string(p.Attachments[1].Data) != "%PDF-1.4 manual" {
		t.Errorf("text %q attachments %+v", p.Text, p.Attachments)
	}

	for _, tc := range []struct {
		name      string
		at        core.Attachment
		permanent bool
	}{
		{"object store key", core.Attachment{Name: "x", Key: "objects/1"}, true},
		{"not found", core.Attachment{Name: "x", URL: files.URL + "/gone"}, true},
		{"server busy", core.Attachment{Name: "x", URL: files.URL + "/busy"}, false},
		{"private host not listed", core.Attachment{Name: "x", URL: "https://127.0.0.2:1/x"}, true},
		{"broken data URL", core.Attachment{Name: "x", URL: "data:text/plain;base64,!!!"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := reply(mailtest.CustomerAddress, "attachment "+tc.name)
			m.Attachments = []core.Attachment{tc.at}
			_, err := a.Send(t.Context(), m)
			if err == nil || bus.IsPermanent(err) != tc.permanent {
				t.Errorf("Send = %v, want an error, permanent %v", err, tc.permanent)
			}
		})
	}
}

// TestSend_SMTPAnswers: what the receiving server says decides the retry.
func TestSend_SMTPAnswers(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	a := w.adapter(t, cfg{})
	for _, tc := range []struct {
		code      int
		enhanced  smtp.EnhancedCode
		permanent bool
		retry     bool
	}{
		{421, smtp.EnhancedCode{4, 7, 0}, false, true},
		{452, smtp.EnhancedCode{4, 5, 3}, false, true},
		{450, smtp.EnhancedCode{4, 2, 1}, false, false},
		{451, smtp.EnhancedCode{4, 3, 0}, false, false},
		{550, smtp.EnhancedCode{5, 1, 1}, true, false},
		{551, smtp.EnhancedCode{5, 1, 6}, true, false},
		{553, smtp.EnhancedCode{5, 1, 3}, true, false},
		{554, smtp.EnhancedCode{5, 7, 1}, true, false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			w.smtp.FailRcpt(&smtp.SMTPError{Code: tc.code, EnhancedCode: tc.enhanced, Message: "test answer"})
			_, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "x"))
			_, retry := bus.RetryDelay(err)
			if err == nil || bus.IsPermanent(err) != tc.permanent || retry != tc.retry {
				t.Errorf("Send = %v: permanent %v retry-after %v, want %v %v", err, bus.IsPermanent(err), retry, tc.permanent, tc.retry)
			}
		})
	}
	w.smtp.FailRcpt(nil)

	t.Run("auth refused", func(t *testing.T) {
		bad := build(t, w.env.Deps, strings.Replace(cfg{smtpPort: w.smtp.Port}.yaml(), mailtest.SMTPPassword, "wrong", 1))
		_, err := bad.Send(t.Context(), reply(mailtest.CustomerAddress, "x"))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 535 || bus.IsPermanent(err) {
			t.Errorf("Send = %v, want the 535 as a retried error (an operator fixes the password)", err)
		}
	})
	t.Run("auth login", func(t *testing.T) {
		w.smtp.Offer(sasl.Login)
		defer w.smtp.Offer(sasl.Plain, sasl.Login)
		if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "via LOGIN")); err != nil {
			t.Fatal(err)
		}
		if auths := w.smtp.Auths(); auths[len(auths)-1] != "LOGIN:"+mailtest.SMTPUser {
			got := auths[len(auths)-1]
			t.Errorf("auth %q", got)
		}
	})
	t.Run("bad recipient identity", func(t *testing.T) {
		for _, to := range []core.Identity{"sms:+15551234567", "email:not an address", "email:a@b.example\r\nBcc: x@y.example"} {
			m := reply("x@y.example", "x")
			m.To = to
			if _, err := a.Send(t.Context(), m); !bus.IsPermanent(err) {
				t.Errorf("Send to %q = %v, want Permanent", to, err)
			}
		}
	})
}

// TestSend_DKIM: with a key configured, replies carry a DKIM signature that
// verifies against the published key.
func TestSend_DKIM(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  any
		txt  func() string
	}{
		{"ed25519", edKey, func() string {
			return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edKey.Public().(ed25519.PublicKey))
		}},
		{"rsa", rsaKey, func() string {
			der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
			return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := x509.MarshalPKCS8PrivateKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
			w := newWorld(t, mailtest.WithIdle)
			indented := "    " + strings.ReplaceAll(strings.TrimSpace(pemKey), "\n", "\n    ")
			a := w.adapter(t, cfg{top: []string{"dkim:", "  selector: mail2025", "  private_key: |", indented}})
			if _, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "signed reply")); err != nil {
				t.Fatal(err)
			}
			sm, _, _ := lastMail(t, w.smtp)
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(sm.Data), &dkim.VerifyOptions{LookupTXT: func(domain string) ([]string, error) {
				if domain != "mail2025._domainkey.example.com" {
					return nil, fmt.Errorf("unexpected lookup of %s", domain)
				}
				return []string{tc.txt()}, nil
			}})
			if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
				t.Fatalf("verify: %v %+v", err, vs)
			}
		})
	}
}

// TestSend_ConcurrentDistinctConnections is covered by the conformance kit;
// this checks the timeout: a server that never answers does not hold Send.
func TestSend_Timeout(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	ln := newSilentListener(t)
	a := build(t, w.env.Deps, strings.Replace(cfg{smtpPort: ln}.yaml(), "timeout: 5s", "timeout: 300ms", 1))
	start := time.Now()
	_, err := a.Send(t.Context(), reply(mailtest.CustomerAddress, "x"))
	if err == nil || bus.IsPermanent(err) {
		t.Errorf("Send = %v, want a retried error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %s against a silent server with a 300ms timeout", d)
	}
}
