package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Delays asked of the runtime when the server says to come back later.
const (
	// busyDelay follows 421 (service not available) and 452 (insufficient
	// storage, too many recipients): the server is throttling.
	busyDelay = time.Minute
)

// Send submits one reply over SMTP. Each call uses its own connection, so
// calls may run concurrently. SMTP answers decide the retry: 421 and 452 are
// adapters.RetryAfter, other 4xx plain errors (retried), 5xx for the recipient
// (550, 551, 553) or the content (552, 554) adapters.Permanent; a refused
// login or sender is a plain error, since an operator fixes those and the
// reply should then go out.
func (a *Adapter) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	if a.cfg.SMTP.Host == "" {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("email: send %s: smtp.host is not configured (inbound-only channel)", m.ID))
	}
	if m.To.Channel() != Name {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("email: send %s: recipient is not an email identity", m.ID))
	}
	to, err := mail.ParseAddress(m.To.Address())
	if err != nil || to.Name != "" || strings.ContainsAny(to.Address, "\r\n<>") {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("email: send %s: recipient is not a valid address", m.ID))
	}
	log := a.log.With("msg_id", m.ID, "conversation", m.ConversationID)
	th := a.threadOf(ctx, m, to.Address, log)
	messageID := m.ID + "@" + a.cfg.Domain
	raw, err := a.compose(ctx, m, to.Address, messageID, th)
	if err != nil {
		return adapters.Receipt{}, err
	}
	if a.signer != nil {
		raw, err = a.sign(raw)
		if err != nil {
			return adapters.Receipt{}, fmt.Errorf("email: send %s: dkim: %w", m.ID, err)
		}
	}
	if err := a.submit(ctx, a.envelopeOf(m.ID, to.Address), raw, log); err != nil {
		return adapters.Receipt{}, fmt.Errorf("email: send %s: %w", m.ID, err)
	}
	a.rememberSent(ctx, m, messageID, th, log)
	return adapters.Receipt{ProviderID: messageID, Status: "sent", At: now()}, nil
}

// threadOf returns the threading of a reply: meta in_reply_to, references and
// subject when the envelope sets them, else the latest mail of the
// conversation or of the customer that the adapter remembers, the more
// recent of the two.
func (a *Adapter) threadOf(ctx context.Context, m *core.Message, to string, log *slog.Logger) threadInfo {
	var th threadInfo
	if v := m.Meta[MetaInReplyTo]; v != "" {
		if ids := msgIDs(bracket(v)); len(ids) > 0 {
			th.MessageID = ids[0]
		}
		th.References = msgIDs(bracket(m.Meta[MetaReferences]))
		if th.MessageID != "" {
			th.References = replyReferences(th.References, th.MessageID)
		}
	} else {
		var byConv, byAddr threadInfo
		if m.ConversationID != "" {
			if _, err := a.threads.Get(ctx, convKey(m.ConversationID), &byConv); err != nil && !errors.Is(err, store.ErrNotFound) {
				log.Warn("thread lookup", "err", err)
			}
		}
		if _, err := a.threads.Get(ctx, addrKey(to), &byAddr); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.Warn("thread lookup", "err", err)
		}
		th = byConv
		if byAddr.At.After(byConv.At) {
			th = byAddr
		}
		if th.MessageID != "" {
			th.References = replyReferences(th.References, th.MessageID)
		}
	}
	if s := strings.TrimSpace(m.Meta[event.MetaSubject]); s != "" {
		th.Subject = s
	}
	return th
}

// bracket turns a list of Message-IDs written with or without angle brackets,
// separated by spaces or commas, into the bracketed form msgIDs reads.
func bracket(v string) string {
	if strings.Contains(v, "<") {
		return v
	}
	var b strings.Builder
	for _, id := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		b.WriteString("<" + id + ">")
	}
	return b.String()
}

// rePrefixRE matches reply prefixes of several languages, repeated.
var rePrefixRE = regexp.MustCompile(`(?i)^\s*((re|aw|sv|vs|antw|ref|回复|回覆|答复)\s*(\[\d+\])?\s*[:：]\s*)+`)

// replySubject is "Re: " and the subject without its reply prefixes.
func replySubject(s string) string {
	s = strings.TrimSpace(rePrefixRE.ReplaceAllString(s, ""))
	if s == "" {
		return ""
	}
	return "Re: " + s
}

// rememberSent records the sent reply: as the conversation's latest mail, for
// the threading of the next reply, and by envelope id, for its bounce.
func (a *Adapter) rememberSent(ctx context.Context, m *core.Message, messageID string, th threadInfo, log *slog.Logger) {
	if m.ConversationID != "" {
		info := threadInfo{MessageID: messageID, References: th.References, Subject: th.Subject, At: now()}
		var cur threadInfo
		if _, err := a.threads.Update(ctx, convKey(m.ConversationID), &cur, threadTTL, func(bool) error {
			cur = info
			return nil
		}); err != nil {
			log.Warn("could not remember the reply for threading", "err", err)
		}
	}
	var cur sentInfo
	if _, err := a.threads.Update(ctx, sentKey(m.ID), &cur, sentTTL, func(bool) error {
		cur = sentInfo{Conversation: m.ConversationID, Contact: m.ContactID, To: m.To}
		return nil
	}); err != nil {
		log.Warn("could not remember the reply for its bounce", "err", err)
	}
}

// sign adds a DKIM-Signature to raw.
func (a *Adapter) sign(raw []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(raw) + 1024)
	err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain:                 a.cfg.DKIM.Domain,
		Selector:               a.cfg.DKIM.Selector,
		Signer:                 a.signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-Id", "In-Reply-To",
			"References", "Mime-Version", "Content-Type", "Content-Transfer-Encoding", HeaderOmnigateID},
	})
	if err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// envelope is the SMTP envelope of one reply.
type envelope struct {
	// from is the return path, where bounces go: the reply's plus address
	// with verp, else the support address.
	from, rcpt string
	// id is the reply's envelope id, given as ENVID (RFC 3461) so that a
	// DSN names it in Original-Envelope-Id.
	id string
}

// envelopeOf is the envelope of the reply with envelope id to rcpt.
func (a *Adapter) envelopeOf(id, rcpt string) envelope {
	e := envelope{from: a.cfg.Address, rcpt: rcpt, id: id}
	if *a.cfg.VERP && !a.verpRefused.Load() {
		e.from = a.plusAddress(id)
	}
	return e
}

// submit delivers raw to env.rcpt through the submission server.
func (a *Adapter) submit(ctx context.Context, env envelope, raw []byte, log *slog.Logger) error {
	rcpt := env.rcpt
	cfg := a.cfg.SMTP
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	d := net.Dialer{Timeout: a.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: dial %s: %w", addr, err)
	}
	defer conn.Close()
	// Commands do not take a context: closing the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	tc := tlsConfig(cfg.Host, cfg.InsecureSkipVerify)
	var c *smtp.Client
	switch cfg.Security {
	case SecurityTLS:
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp: tls handshake with %s: %w", addr, err)
		}
		c = smtp.NewClient(t)
	case SecurityStartTLS:
		c, err = smtp.NewClientStartTLS(conn, tc)
		if err != nil {
			return classify(ctx, "starttls", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = a.cfg.Timeout, a.cfg.Timeout
	defer c.Close()
	// After STARTTLS the client greets again, now with the configured name.
	if err := c.Hello(cfg.HeloName); err != nil {
		return classify(ctx, "ehlo", err)
	}
	if a.tokens != nil {
		mech := pickMechanism(c.SupportsAuth)
		if mech == "" {
			return adapters.Unavailable(errNoBearerMech("smtp"))
		}
		if err := a.tokens.authenticate(ctx, "smtp", mech, c.Auth, smtpRefused); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			// Refused tokens, a refused refresh token and an unreachable
			// token endpoint wait for the operator or the provider.
			return adapters.Unavailable(err)
		}
	} else if cfg.Username != "" {
		var auth sasl.Client
		switch {
		case c.SupportsAuth(sasl.Plain):
			auth = sasl.NewPlainClient("", cfg.Username, cfg.Password.Value())
		case c.SupportsAuth(sasl.Login):
			auth = sasl.NewLoginClient(cfg.Username, cfg.Password.Value())
		default:
			return errors.New("smtp: the server offers neither AUTH PLAIN nor AUTH LOGIN")
		}
		if err := c.Auth(auth); err != nil {
			return classify(ctx, "auth", err)
		}
	}
	// ENVID and RET go out only to a server that offers DSN: a bounce then
	// names the reply and returns only its headers.
	opts := &smtp.MailOptions{EnvelopeID: env.id, Return: smtp.DSNReturnHeaders, UTF8: !isASCII(rcpt)}
	err = c.Mail(env.from, opts)
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code/100 == 5 && env.from != a.cfg.Address {
		// A server that lets the account send only as itself: bounces then
		// come to the address, and are matched by what they return.
		if a.verpRefused.CompareAndSwap(false, true) {
			log.Warn("the submission server refuses the plus-addressed return path; replies go out from address (set verp: false to stop trying)", "err", err)
		}
		if err = c.Reset(); err == nil {
			err = c.Mail(a.cfg.Address, opts)
		}
	}
	if err != nil {
		return classify(ctx, "mail from", err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return classify(ctx, "rcpt to", err)
	}
	w, err := c.Data()
	if err != nil {
		return classify(ctx, "data", err)
	}
	if _, err := w.Write(raw); err != nil {
		return classify(ctx, "data", err)
	}
	if err := w.Close(); err != nil {
		return classify(ctx, "data", err)
	}
	// The server has the mail; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// smtpRefused reports whether err is the server's refusal of the
// credentials: 535 (and 534, 530), or any 5.7.x.
func smtpRefused(err error) bool {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return false
	}
	return se.Code == 535 || se.Code == 534 || se.Code == 530 || se.EnhancedCode[0] == 5 && se.EnhancedCode[1] == 7
}

// classify wraps an SMTP failure at stage with what the runtime should do.
func classify(ctx context.Context, stage string, err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		if ctx.Err() != nil {
			return fmt.Errorf("smtp: %s: %w (%w)", stage, ctx.Err(), err)
		}
		return fmt.Errorf("smtp: %s: %w", stage, err)
	}
	err = fmt.Errorf("smtp: %s: %w", stage, err)
	switch {
	case se.Code == 421 || se.Code == 452:
		return adapters.RetryAfter(err, busyDelay)
	case se.Code/100 == 4:
		return err
	case stage == "rcpt to" && se.Code/100 == 5, stage == "data" && se.Code/100 == 5:
		// The recipient does not exist or refuses this mail: retrying cannot help.
		return adapters.Permanent(err)
	case se.Code == 552 || se.Code == 553 && stage != "mail from":
		return adapters.Permanent(err)
	}
	// A refused login, sender or greeting: the configuration or the server is
	// wrong, not the message. Retried until it is fixed.
	return adapters.Unavailable(err)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
