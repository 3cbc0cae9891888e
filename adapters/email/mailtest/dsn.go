package mailtest

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Bounce describes the delivery status notification that the mail server of
// a mail's recipient sends back after it accepted the mail and could not
// deliver it. The zero value is a hard bounce: the address does not exist.
type Bounce struct {
	// Action is the DSN's Action: "failed" (the default) or "delayed".
	Action string
	// Status is the enhanced status code: "5.1.1" by default.
	Status string
	// Diagnostic is the remote server's answer (Diagnostic-Code); by default
	// an answer made from Status.
	Diagnostic string
	// Omit lists header fields of the mail that the returned headers leave
	// out, e.g. "X-Omnigate-Id" or "Message-Id".
	Omit []string
	// NoHeaders returns nothing of the mail, as a server does that ignores
	// RET=HDRS and has been told to return nothing.
	NoHeaders bool
	// NoEnvelopeID leaves Original-Envelope-Id out, as a server does that
	// did not offer the DSN extension and so never got the ENVID.
	NoEnvelopeID bool
}

// DSN returns the RFC 3464 delivery status notification, as Postfix writes
// it, that reports b about m to m's envelope sender: To is m.From (the
// return path the adapter set), the per-message fields carry m.EnvelopeID as
// Original-Envelope-Id, and the headers of m come back as
// text/rfc822-headers (RET=HDRS), less b.Omit. Its Message-ID is made from
// m, so the same bounce of the same mail is the same mail.
func DSN(m Mail, b Bounce) []byte {
	b.Action = cmp.Or(b.Action, "failed")
	b.Status = cmp.Or(b.Status, "5.1.1")
	rcpt := CustomerAddress
	if len(m.To) > 0 {
		rcpt = m.To[0]
	}
	if b.Diagnostic == "" {
		code := "550"
		if strings.HasPrefix(b.Status, "4.") {
			code = "450"
		}
		b.Diagnostic = "smtp; " + code + " " + b.Status + " <" + rcpt + ">: Recipient address rejected: User unknown in virtual mailbox table"
	}
	sum := sha256.Sum256(append(m.Data, b.Action+b.Status...))
	id := hex.EncodeToString(sum[:8])
	const boundary = "4YSnB31RZ0z9sWf.1736244002/mx.customer.example"

	var w bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&w, format+"\r\n", args...) }
	line("Return-Path: <>")
	line("Delivered-To: %s", m.From)
	line("Date: Tue,  7 Jan 2025 10:00:02 +0000 (UTC)")
	line("From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)")
	if b.Action == "delayed" {
		line("Subject: Delayed Mail (still being retried)")
	} else {
		line("Subject: Undelivered Mail Returned to Sender")
	}
	line("To: %s", m.From)
	line("Auto-Submitted: auto-replied")
	line("MIME-Version: 1.0")
	line("Content-Type: multipart/report; report-type=delivery-status;")
	line("\tboundary=\"%s\"", boundary)
	line("Message-Id: <%s@mx.customer.example>", id)
	line("")
	line("This is a MIME-encapsulated message.")
	line("")
	line("--%s", boundary)
	line("Content-Description: Notification")
	line("Content-Type: text/plain; charset=us-ascii")
	line("")
	line("This is the mail system at host mx.customer.example.")
	line("")
	if b.Action == "delayed" {
		line("####################################################################")
		line("# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #")
		line("####################################################################")
		line("")
		line("Your message could not be delivered for more than 4 hour(s).")
		line("It will be retried until it is 5 day(s) old.")
	} else {
		line("I'm sorry to have to inform you that your message could not")
		line("be delivered to one or more recipients. It's attached below.")
	}
	line("")
	line("                   The mail system")
	line("")
	line("<%s>: host mx1.customer.example[203.0.113.25] said:", rcpt)
	line("    %s (in reply to RCPT TO command)", strings.TrimPrefix(b.Diagnostic, "smtp; "))
	line("")
	line("--%s", boundary)
	line("Content-Description: Delivery report")
	line("Content-Type: message/delivery-status")
	line("")
	line("Reporting-MTA: dns; mx.customer.example")
	line("X-Postfix-Queue-ID: 4YSn9z5QwVz9sWc")
	line("X-Postfix-Sender: rfc822; %s", m.From)
	if m.EnvelopeID != "" && !b.NoEnvelopeID {
		line("Original-Envelope-Id: %s", m.EnvelopeID)
	}
	line("Arrival-Date: Tue,  7 Jan 2025 09:59:58 +0000 (UTC)")
	line("")
	line("Final-Recipient: rfc822; %s", rcpt)
	line("Original-Recipient: rfc822;%s", rcpt)
	line("Action: %s", b.Action)
	line("Status: %s", b.Status)
	line("Remote-MTA: dns; mx1.customer.example")
	line("Diagnostic-Code: %s", b.Diagnostic)
	line("Last-Attempt-Date: Tue,  7 Jan 2025 10:00:01 +0000 (UTC)")
	line("")
	if !b.NoHeaders {
		line("--%s", boundary)
		line("Content-Description: Undelivered Message Headers")
		line("Content-Type: text/rfc822-headers")
		line("")
		head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		w.Write(omitFields(head, b.Omit))
		line("")
		line("")
	}
	line("--%s--", boundary)
	return w.Bytes()
}

// omitFields returns the header block head without the fields named in omit,
// with their continuation lines.
func omitFields(head []byte, omit []string) []byte {
	var out bytes.Buffer
	skip := false
	for i, l := range bytes.Split(head, []byte("\r\n")) {
		if len(l) > 0 && l[0] != ' ' && l[0] != '\t' {
			name, _, _ := bytes.Cut(l, []byte(":"))
			skip = false
			for _, o := range omit {
				if strings.EqualFold(strings.TrimSpace(string(name)), o) {
					skip = true
				}
			}
		}
		if skip {
			continue
		}
		if i > 0 && out.Len() > 0 {
			out.WriteString("\r\n")
		}
		out.Write(l)
	}
	return out.Bytes()
}
