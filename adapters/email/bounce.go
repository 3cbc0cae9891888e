package email

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Bounce is what a bounce says about the message it returns: read from its
// delivery status notification (RFC 3464) when it has one, else from its text
// as the common mail servers write it (Postfix, Exim, qmail, Sendmail,
// Microsoft 365 and Exchange, Gmail).
type Bounce struct {
	// Recipient is the address that failed (Final-Recipient), lower-cased;
	// for a bounce without a DSN, the one its text names.
	Recipient string
	// OriginalRecipient is the address the sender gave (Original-Recipient),
	// when the DSN says and it differs from Recipient: a forwarding that
	// failed further on.
	OriginalRecipient string `json:",omitempty"`
	// Action is "failed", "delayed", "delivered", "relayed" or "expanded":
	// the DSN's, or for a bounce without one "failed" or "delayed" as its
	// text says; "" when a DSN had no Action.
	Action string
	// Status is the enhanced status code, e.g. "5.1.1": the DSN's, or the
	// first the text gives; for a text that gives only a basic SMTP code
	// (550) its class ("5.0.0"), and "5.0.0" for one that says the failure
	// is permanent without any code.
	Status string
	// Diagnostic is the remote server's answer (Diagnostic-Code), e.g.
	// "smtp; 550 5.1.1 user unknown", or the line of the text that has it.
	Diagnostic string
	// EnvelopeID is the DSN's Original-Envelope-Id: the ENVID the sender
	// gave with MAIL FROM.
	EnvelopeID string `json:",omitempty"`
	// MessageID and OmnigateID are the returned message's Message-ID and
	// X-Omnigate-Id.
	MessageID, OmnigateID string
	// At is when the reporting server last tried (Last-Attempt-Date), zero
	// when the DSN does not say.
	At time.Time `json:",omitzero"`
}

// Failed reports whether the bounce says the message was not delivered and
// will not be tried again, as opposed to a delay (the sending server goes on
// trying) or a success report.
func (b *Bounce) Failed() bool {
	return b.Action == "" || b.Action == "failed"
}

// Permanent reports a hard bounce: a failure with a 5.x.x status code, which says
// the address cannot receive mail, so trying later cannot help. A failure
// with a 4.x.x status (the server gave up after days of temporary errors) is
// not one.
func (b *Bounce) Permanent() bool {
	return b.Failed() && enhancedCodeRE.MatchString(b.Status) && b.Status[0] == '5'
}

// Error is the reason of a failed delivery, for meta "error".
func (b *Bounce) Error() string {
	parts := make([]string, 0, 3)
	if b.Status != "" {
		parts = append(parts, b.Status)
	}
	if b.Diagnostic != "" {
		parts = append(parts, b.Diagnostic)
	}
	if len(parts) == 0 {
		return "bounced"
	}
	return strings.Join(parts, " ")
}

// Mail that is a bounce without a DSN is known by its sender and subject.
var (
	// bounceDaemonRE is the local part of a sender that sends nothing but
	// bounces.
	bounceDaemonRE = regexp.MustCompile(`^(mailer[-_]?daemon|mail-daemon)$`)
	// bounceSenderRE is the local part of a sender that sends bounces among
	// other mail (a postmaster is also a person): its mail is a bounce when
	// the subject says so. Exchange's system mailbox is
	// MicrosoftExchange<32 hex digits>.
	bounceSenderRE = regexp.MustCompile(`^(postmaster|microsoftexchange[0-9a-f]{32})$`)
	// bounceSubjectRE is the start of a bounce's subject, as servers write
	// it: Postfix, Exim (failure and delay warning), qmail, Sendmail, Gmail's
	// and Exchange's delivery status notifications, Exchange's
	// "Undeliverable:" in the languages of its non-delivery reports.
	bounceSubjectRE = regexp.MustCompile(`(?i)^\s*(` +
		`undelivered mail returned to sender|delayed mail \(still being retried\)` + // Postfix
		`|mail delivery failed|warning: message \S+ delayed` + // Exim
		`|failure notice` + // qmail, Yahoo
		`|returned mail\s*:|warning: could not send message` + // Sendmail
		`|delivery status notification\b` + // Gmail, Exchange
		`|undeliverable\s*:|undeliverable mail|undelivered mail|delivery failure|delivery has failed|message not delivered|mail system error` +
		`|unzustellbar\s*:|non remis\s*:|no se puede entregar\s*:|não é possível entregar\s*:|non recapitabile\s*:|onbestelbaar\s*:` +
		`|недоставляемое|не доставлено|无法传递\s*[:：]|无法投递|配信不能|배달되지 않음` +
		`)`)
	// bounceSubjectDelayRE is a subject that reports a delay, not a failure.
	bounceSubjectDelayRE = regexp.MustCompile(`(?i)\(delay\)|delayed|warning: message|still being retried`)
	// bounceSubjectFailureRE is a subject that reports a failure.
	bounceSubjectFailureRE = regexp.MustCompile(`(?i)\(failure\)|returned to sender|delivery failed|undeliverable`)
)

// bounceByHeader reports whether a mail from local@... with this subject and
// Return-Path is a bounce that has no DSN to say so: from MAILER-DAEMON, or
// with a bounce's subject from a postmaster or with a null return path.
func bounceByHeader(local, subject, returnPath string) (bool, string) {
	local = strings.ToLower(local)
	switch {
	case bounceDaemonRE.MatchString(local):
		return true, "from MAILER-DAEMON"
	case !bounceSubjectRE.MatchString(subject):
		return false, ""
	case bounceSenderRE.MatchString(local):
		return true, "bounce subject from " + local
	case returnPath == "<>":
		return true, "bounce subject with a null Return-Path"
	}
	return false, ""
}

// deliveryStatus reads a message/delivery-status part (RFC 3464): the
// per-message fields, then one block per recipient; the first failed
// recipient (or the first recipient) is the one reported.
func (n *normalizer) deliveryStatus(r io.Reader) {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	blocks := dsnBlocks(string(b))
	bo := n.p.Bounce
	var chosen map[string]string
	for i, f := range blocks {
		if i == 0 && f["final-recipient"] == "" && f["action"] == "" {
			// The per-message fields.
			bo.EnvelopeID = core.Truncate(clean(strings.TrimSpace(f["original-envelope-id"])), 100)
			continue
		}
		if chosen == nil || (strings.EqualFold(f["action"], "failed") && !strings.EqualFold(chosen["action"], "failed")) {
			chosen = f
		}
	}
	if chosen == nil {
		return
	}
	n.dsn = true
	bo.Recipient = dsnAddress(cmp.Or(chosen["final-recipient"], chosen["original-recipient"]))
	if orig := dsnAddress(chosen["original-recipient"]); orig != bo.Recipient {
		bo.OriginalRecipient = orig
	}
	bo.Action = strings.ToLower(strings.TrimSpace(chosen["action"]))
	// "5.1.1", also with a comment some servers add: "5.0.0 (permanent failure)".
	if st := strings.TrimSpace(chosen["status"]); leadingCodeRE.MatchString(st) {
		bo.Status = leadingCodeRE.FindStringSubmatch(st)[1]
	} else if st != "" {
		bo.Status = core.Truncate(clean(st), 20)
	}
	bo.Diagnostic = core.Truncate(clean(collapse(chosen["diagnostic-code"])), 1000)
	if d, err := mail.ParseDate(strings.TrimSpace(chosen["last-attempt-date"])); err == nil && d.Year() > 1970 && d.Year() < 10000 {
		bo.At = d.UTC()
	}
}

var (
	// enhancedCodeRE is a whole enhanced status code (RFC 3463).
	enhancedCodeRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)
	// leadingCodeRE is an enhanced status code at the start of a field,
	// before its end or a space.
	leadingCodeRE = regexp.MustCompile(`^([245]\.[0-9]{1,3}\.[0-9]{1,3})(\s|$)`)
)

// dsnAddress returns the address of a DSN address field ("rfc822;
// ann@example.com"), lower-cased, "" when there is none.
func dsnAddress(v string) string {
	if _, addr, ok := strings.Cut(v, ";"); ok {
		v = addr
	}
	v = strings.ToLower(strings.Trim(strings.TrimSpace(v), "<>"))
	if !strings.Contains(v, "@") || strings.ContainsAny(v, " \t<>") {
		return ""
	}
	return core.Truncate(clean(v), 254)
}

// dsnBlocks splits delivery-status text into blocks of header fields, keys
// lower-cased, continuation lines joined.
func dsnBlocks(s string) []map[string]string {
	var blocks []map[string]string
	cur := map[string]string{}
	last := ""
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			if len(cur) > 0 {
				blocks = append(blocks, cur)
				cur = map[string]string{}
			}
			last = ""
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && last != "" {
			cur[last] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		if _, dup := cur[last]; !dup {
			cur[last] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	return blocks
}

// returned reads the header of the message a bounce returns.
func (n *normalizer) returned(r io.Reader) {
	h, err := textproto.ReadHeader(bufio.NewReader(io.LimitReader(r, 256<<10)))
	if err != nil && h.Len() == 0 {
		return
	}
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		n.p.Bounce.MessageID = ids[0]
	}
	n.p.Bounce.OmnigateID = strings.TrimSpace(h.Get(HeaderOmnigateID))
}

// What a bounce without a DSN says in its text. The patterns follow how the
// servers word their bounces; only the part above the copy of the returned
// message is read for the status and the recipient.
var (
	// returnedCopyRE starts the copy of the returned message (or its
	// headers) in a bounce's text.
	returnedCopyRE = regexp.MustCompile(`(?im)^[ \t]*(` +
		`-+ ?this is a copy of the message` + // Exim
		`|-+ ?below this line is a copy of the message` + // qmail
		`|-+ ?original message ?-+` + // Gmail
		`|original message headers:` + // Microsoft 365
		`|-+ ?the original message was received` + // Sendmail
		`|-+ ?transcript of session follows` + // Sendmail
		`)`)
	// omnigateIDLineRE finds an X-Omnigate-Id header quoted in a bounce's text.
	omnigateIDLineRE = regexp.MustCompile(`(?im)^\s*X-Omnigate-Id:\s*([0-9A-Za-z]{26})\s*$`)
	// messageIDLineRE finds a Message-ID header quoted in a bounce's text.
	messageIDLineRE = regexp.MustCompile(`(?im)^\s*Message-Id:\s*<([^<>\s]+)>`)
	// smtpAnswerRE is an SMTP answer with an enhanced code: "550 5.1.1 ...",
	// Gmail's "550-5.1.1 ...", "550 #5.1.1 ...".
	smtpAnswerRE = regexp.MustCompile(`\b([45][0-9][0-9])[ -]#?([45]\.[0-9]{1,3}\.[0-9]{1,3})\b([^\n]*)`)
	// qmailCodeRE is qmail's code of a local failure: "(#5.1.1)".
	qmailCodeRE = regexp.MustCompile(`([^\n]*)\(#([45]\.[0-9]{1,3}\.[0-9]{1,3})\)`)
	// statusLineRE is a "Status: 5.1.1" line of a text that mimics a DSN.
	statusLineRE = regexp.MustCompile(`(?im)^[ \t]*status:[ \t]*([45]\.[0-9]{1,3}\.[0-9]{1,3})\b([^\n]*)`)
	// basicAnswerRE is an SMTP answer without an enhanced code, on a line of
	// its own as Exim quotes it: "    550 No such user here".
	basicAnswerRE = regexp.MustCompile(`(?m)^[ \t]*([45][0-9][0-9])[ -]([A-Za-z<][^\n]*)`)
	// bounceDelayRE is a text that reports a delay: the server goes on trying.
	bounceDelayRE = regexp.MustCompile(`(?i)(has not yet been delivered|not been delivered yet|has been delayed|is delayed|will be retried|will retry|will continue to try|still trying|warning only|do not need to resend)`)
	// bouncePermanentRE is a text that says the failure is final.
	bouncePermanentRE = regexp.MustCompile(`(?i)(permanent (error|failure|fatal)|failed permanently|i've given up|i'm not going to try again|giving up on|retry time(out)? (exceeded|expired)|could not be delivered to one or more|couldn't be delivered|wasn't delivered|delivery has failed|message could not be delivered)`)
	// bounceAddrRE is an address in a bounce's text.
	bounceAddrRE = regexp.MustCompile(`[^\s<>()\[\]"',;:]+@[^\s<>()\[\]"',;:]+\.[A-Za-z]{2,}`)
	// bounceRecipientRE finds the failed address where the servers put it:
	// "<ann@example.com>:" (Postfix, qmail), an address alone on its line
	// (Exim, Gmail, Microsoft 365: "ann@example.com (ann@example.com)"), or
	// after "delivered to" / "message to".
	bounceRecipientRE = regexp.MustCompile(`(?im)^[ \t]*<([^\s<>]+@[^\s<>]+)>:` +
		`|^[ \t]*<?([^\s<>()"',;:]+@[^\s<>()"',;:]+\.[A-Za-z]{2,})>?(?:[ \t]+\([^\n]*\))?[ \t]*$` +
		`|(?:delivered to|message to)[ \t]+<?([^\s<>()"',;:]+@[^\s<>()"',;:]+\.[A-Za-z]{2,})`)
)

// bounceFallback fills what a bounce without a (complete) DSN says in its
// text: the returned message's ids, the server's answer, and, when no DSN
// said, whether the failure is final and the address that failed.
func (n *normalizer) bounceFallback() {
	bo := n.p.Bounce
	text := n.bounceText.String()
	if text == "" {
		text = n.p.FullText
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if bo.OmnigateID == "" {
		if m := omnigateIDLineRE.FindStringSubmatch(text); m != nil {
			bo.OmnigateID = m[1]
		}
	}
	if bo.MessageID == "" {
		if m := messageIDLineRE.FindStringSubmatch(text); m != nil {
			bo.MessageID = m[1]
		}
	}
	report := text
	if loc := returnedCopyRE.FindStringIndex(text); loc != nil {
		report = text[:loc[0]]
	}
	if bo.Status == "" && bo.Diagnostic == "" {
		bo.Status, bo.Diagnostic = textStatus(report)
	}
	if !n.dsn {
		bo.Action = textAction(n.p.Subject, report, bo.Status)
		if bo.Action == "failed" && bo.Status == "" && bouncePermanentRE.MatchString(report) {
			bo.Status = "5.0.0"
		}
	}
	if bo.Recipient == "" {
		bo.Recipient = n.textRecipient(report)
	}
}

// textStatus returns the enhanced status code and the line of the server's
// answer that a bounce's text gives first.
func textStatus(report string) (status, diagnostic string) {
	diag := func(s string) string {
		return core.Truncate(strings.Trim(collapse(s), ` '"`), 1000)
	}
	if m := smtpAnswerRE.FindStringSubmatchIndex(report); m != nil {
		code, status := report[m[2]:m[3]], report[m[4]:m[5]]
		return status, diag(code + " " + status + report[m[6]:m[7]] + continuation(report[m[1]:], code))
	}
	if m := qmailCodeRE.FindStringSubmatch(report); m != nil {
		return m[2], diag(m[1] + "(#" + m[2] + ")")
	}
	if m := statusLineRE.FindStringSubmatch(report); m != nil {
		return m[1], diag(m[1] + m[2])
	}
	if m := basicAnswerRE.FindStringSubmatchIndex(report); m != nil {
		code := report[m[2]:m[3]]
		return code[:1] + ".0.0", diag(code + " " + report[m[4]:m[5]] + continuation(report[m[1]:], code))
	}
	return "", ""
}

// continuation returns the lines that go on with an SMTP answer whose first
// line ended where rest starts: the lines a server wrapped (indented), or
// the further lines of a multi-line reply ("550-5.1.1 ..."), without their
// code; at most a few.
func continuation(rest, code string) string {
	_, rest, _ = strings.Cut(rest, "\n")
	var b strings.Builder
	for range 6 {
		l, after, _ := strings.Cut(rest, "\n")
		t := strings.TrimSpace(l)
		switch {
		case t == "":
			return b.String()
		case strings.HasPrefix(t, code+"-") || strings.HasPrefix(t, code+" "):
			t = strings.TrimSpace(t[len(code)+1:])
			if f, r, ok := strings.Cut(t, " "); ok && enhancedCodeRE.MatchString(strings.TrimPrefix(f, "#")) {
				t = r
			}
		case l[0] != ' ' && l[0] != '\t':
			return b.String()
		}
		b.WriteString(" " + t)
		rest = after
	}
	return b.String()
}

// textAction says whether a bounce without a DSN reports a failure or a
// delay: a 5.x.x answer is a failure; a subject or text that says the
// server goes on trying is a delay; a 4.x.x answer is a delay unless the
// text says the server gave up; anything else from a bounce's sender is a
// failure.
func textAction(subject, report, status string) string {
	switch {
	case strings.HasPrefix(status, "5."):
		return "failed"
	case bounceSubjectFailureRE.MatchString(subject) && !bounceSubjectDelayRE.MatchString(subject):
		return "failed"
	case bounceSubjectDelayRE.MatchString(subject), bounceDelayRE.MatchString(report):
		return "delayed"
	case strings.HasPrefix(status, "4.") && !bouncePermanentRE.MatchString(report):
		return "delayed"
	}
	return "failed"
}

// textRecipient returns the failed address a bounce's text names, leaving
// out the addresses of the bounce itself (its sender, the support address).
func (n *normalizer) textRecipient(report string) string {
	own := func(addr string) bool {
		addr = strings.ToLower(addr)
		return addr == n.p.From || containsFold(n.p.To, addr) || containsFold(n.p.DeliveredTo, addr)
	}
	for _, m := range bounceRecipientRE.FindAllStringSubmatch(report, 20) {
		addr := cmp.Or(m[1], m[2], m[3])
		if !own(addr) && bounceAddrRE.MatchString(addr) {
			return core.Truncate(strings.ToLower(strings.TrimRight(addr, ".")), 254)
		}
	}
	return ""
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// bounce handles a bounce. Of a reply omnigate sent, a failure becomes a
// delivery.failed event for the reply, so the desk shows it in the thread;
// a hard bounce (5.x.x) also marks the address unreachable with a
// contact.unreachable on the inbound subject, for the pipeline to record and
// to send later replies on another channel. A delay or a success report is
// logged only: the sending server goes on trying. So is a bounce of mail
// omnigate did not send. It returns an error only when the store or the bus
// failed, for the mail to be handled again.
func (a *Adapter) bounce(ctx context.Context, p *Parsed, raw []byte, log *slog.Logger) error {
	b := p.Bounce
	id, by := a.bouncedReply(p)
	log = log.With("reply", id, "action", b.Action, "status", b.Status)
	if !b.Failed() {
		log.Debug("delivery report: not a failure, the sending server goes on trying")
		return nil
	}
	if id == "" {
		log.Info("bounce of a mail omnigate did not send skipped")
		return nil
	}
	var sent sentInfo
	if _, err := a.threads.Get(ctx, sentKey(id), &sent); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("email: look up the bounced reply %s: %w", id, err)
	}
	to := a.bouncedAddress(b, sent)
	at := b.At
	if at.IsZero() && p.Date.Year() > 1970 && p.Date.Year() < 10000 {
		at = p.Date
	}

	ev := core.NewMessage(core.KindEvent, core.Outbound, Name)
	ev.Type = event.DeliveryFailed
	ev.ReplyTo = id
	ev.ConversationID, ev.ContactID, ev.To = sent.Conversation, sent.Contact, to
	ev.SentAt = at
	ev.External.Message = externalID(p, raw) + ":failed"
	ev.Meta = map[string]string{event.MetaError: core.Truncate(b.Error(), 1024)}
	setMeta(ev.Meta, MetaDSNStatus, b.Status)
	if b.Permanent() {
		ev.Meta[event.MetaReason] = event.ReasonBounced
	}
	if err := a.pub.Event(ctx, ev); err != nil {
		if !errors.Is(err, core.ErrInvalid) {
			return err
		}
		log.Warn("bounce event not valid, skipped", "err", err)
	}

	if b.Permanent() && to != "" {
		u := adapters.UnreachableEvent(Name, to, event.ReasonBounced, b.Error())
		// The pipeline finds the reply in the transcript and sends it on the
		// customer's next reachable channel.
		u.ReplyTo, u.ContactID = id, sent.Contact
		u.ConversationID = sent.Conversation
		u.SentAt = at
		u.External.Message = externalID(p, raw) + ":unreachable"
		if _, err := a.pub.Inbound(ctx, u); err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				return err
			}
			log.Warn("unreachable event not valid, skipped", "err", err)
		}
	}
	log.Info("bounce: reply not delivered", "matched_by", by, "permanent", b.Permanent())
	return nil
}

// bouncedReply returns the envelope id of the reply a bounce is about and
// what told it: the returned message's X-Omnigate-Id or Message-ID
// (<envelope-id@domain>), a Message-ID of the bounce's own In-Reply-To or
// References that omnigate made, the DSN's Original-Envelope-Id (the ENVID
// of the reply's MAIL FROM), or the token of the return path it was sent to
// (VERP: <local>+<token>@...). It returns "" for mail omnigate did not send.
func (a *Adapter) bouncedReply(p *Parsed) (id, by string) {
	b := p.Bounce
	if id := strings.ToUpper(b.OmnigateID); core.ValidID(id) {
		return id, "x-omnigate-id"
	}
	if id := a.ownEnvelope(b.MessageID); id != "" {
		return id, "message-id"
	}
	for _, ref := range slices.Concat(p.InReplyTo, p.References) {
		if id := a.ownEnvelope(ref); id != "" {
			return id, "references"
		}
	}
	if id := strings.ToUpper(b.EnvelopeID); core.ValidID(id) {
		return id, "original-envelope-id"
	}
	if id := tokenEnvelope(a.replyToken(p)); id != "" {
		return id, "return-path"
	}
	return "", ""
}

// bouncedAddress is the identity that bounced: the recipient omnigate sent
// the reply to, when it remembers the reply (a forwarding may have failed
// further on, at an address that is not the customer's), else the one the
// bounce names, "" when it names none.
func (a *Adapter) bouncedAddress(b *Bounce, sent sentInfo) core.Identity {
	if sent.To != "" {
		return sent.To
	}
	for _, addr := range []string{b.OriginalRecipient, b.Recipient} {
		if addr == "" {
			continue
		}
		if id, err := core.ParseIdentity(string(identity(addr))); err == nil {
			return id
		}
	}
	return ""
}
