package email_test

import (
	"net/mail"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/email"
	"github.com/omnigate/omnigate/adapters/email/mailtest"
	"github.com/omnigate/omnigate/core/event"
)

// TestAdapter_ReplyTokenLinks: a reply's Reply-To is the support address
// plus a token naming the reply; an answer to that address, even from
// another address and without In-Reply-To or References, carries the
// reply's envelope id as its first thread key, which is what the pipeline
// recorded with the conversation when it sent the reply
// (TestPipeline_ThreadKeys proves the pipeline's side). So does an answer
// that only keeps In-Reply-To. A plus address omnigate did not make is kept
// as meta reply_token and links nothing.
func TestAdapter_ReplyTokenLinks(t *testing.T) {
	w := newWorld(t, mailtest.WithIdle)
	a := w.adapter(t, cfg{top: []string{"reply_token: true"}})
	run(t, a)
	r := reply("ann@customer.example", "Your refund is on its way.")
	r.Meta = map[string]string{event.MetaSubject: "Refund 4821"}
	if _, err := a.Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	_, sent, _ := lastMail(t, w.smtp)
	replyTo, err := mail.ParseAddress(sent.Header.Get("Reply-To"))
	if err != nil {
		t.Fatalf("Reply-To %q: %v", sent.Header.Get("Reply-To"), err)
	}
	if want := "support+" + strings.ToLower(r.ID) + "@example.com"; replyTo.Address != want {
		t.Fatalf("Reply-To %s, want %s", replyTo.Address, want)
	}

	mails := []string{
		// Ann's husband writes to the address of the reply, as a new mail.
		"From: Bob <bob@home.example>\r\nTo: Example Support <" + replyTo.Address + ">\r\nSubject: Refund 4821\r\n" +
			"Message-ID: <bob-1@home.example>\r\n\r\nI am Ann's husband: the refund did not come.\r\n",
		// A client that keeps In-Reply-To, answering the plain address.
		"From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Re: Refund 4821\r\n" +
			"Message-ID: <ann-2@customer.example>\r\nIn-Reply-To: <" + r.ID + "@example.com>\r\n\r\nThanks!\r\n",
		// A plus address of the team's own.
		"From: Cy <cy@corp.example>\r\nTo: support+billing@example.com\r\nSubject: Invoice\r\n" +
			"Message-ID: <cy-1@corp.example>\r\n\r\nWhere is my invoice?\r\n",
	}
	for _, m := range mails {
		w.imap.Deliver(t, "INBOX", []byte(m))
	}
	got := w.inbound(t, 3)
	for i, want := range []struct{ token, keys string }{
		{strings.ToLower(r.ID), r.ID},
		{"", r.ID + "," + r.ID + "@example.com"},
		{"billing", ""},
	} {
		if m := got[i]; m.Meta[email.MetaReplyToken] != want.token || m.Meta[event.MetaThreadKeys] != want.keys {
			t.Errorf("mail %d: reply_token %q thread_keys %q, want %q %q", i+1, m.Meta[email.MetaReplyToken], m.Meta[event.MetaThreadKeys], want.token, want.keys)
		}
	}
}
