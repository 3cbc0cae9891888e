package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

const (
	// idleRecheck is the longest an IDLE waits before the mailbox is checked
	// anyway: a lost EXISTS must not delay mail for long.
	idleRecheck = 5 * time.Minute
	// quickRetries is how often Run reconnects by itself before it returns the
	// error and lets the runtime restart it with its longer backoff.
	quickRetries = 3
	// healthySession is how long a session must have run for the next failure
	// to count as the first one again.
	healthySession = time.Minute
	// searchBatch is how many messages one pass of sync processes before it
	// searches again.
	searchBatch = 100
)

// errFatal marks an IMAP failure no reconnect can fix (bad credentials, a
// missing mailbox, a certificate that does not verify): Run returns it at once, so /readyz shows it.
var errFatal = errors.New("imap")

// position is where processing of one mailbox stands, stored under
// stateKey in the records "email_state".
type position struct {
	// UIDValidity is the mailbox's UIDVALIDITY the UIDs below belong to.
	UIDValidity uint32 `json:"uidvalidity"`
	// LastUID is the highest UID processed; every lower one is done.
	LastUID uint32 `json:"last_uid"`
	// UnseenUpTo, during an initial scan of unseen mail, is the highest UID of
	// the scan: up to it, messages flagged \Seen are skipped.
	UnseenUpTo uint32 `json:"unseen_up_to,omitempty"`
	// Updated is when it last changed.
	Updated time.Time `json:"updated"`
}

// stateKey names the mailbox's position: the same mailbox reached by two
// configurations shares it, another mailbox does not.
func (a *Adapter) stateKey() string {
	c := a.cfg.IMAP
	return strings.ToLower(c.Username) + "@" + strings.ToLower(c.Host) + ":" + strconv.Itoa(c.Port) + "/" + c.Mailbox
}

// Run reads the mailbox until ctx is done. It reconnects a few times by
// itself with a short backoff; a failure that outlasts them, or that no
// reconnect can fix (login refused, mailbox missing, certificate not
// verified), is returned for the
// runtime to report and retry. Without imap.host it just waits.
func (a *Adapter) Run(ctx context.Context) error {
	if a.cfg.IMAP.Host == "" {
		<-ctx.Done()
		return nil
	}
	delay, failures := time.Second, 0
	for {
		start := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			a.setIMAPErr(errors.New("imap: stopped"))
			return nil
		}
		if err == nil {
			err = errors.New("imap: session ended")
		}
		a.setIMAPErr(err)
		if time.Since(start) > healthySession {
			delay, failures = time.Second, 0
		}
		failures++
		if errors.Is(err, errFatal) || failures > quickRetries {
			return err
		}
		a.log.Warn("imap session ended, reconnecting", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay *= 2
	}
}

// session connects, logs in, selects the mailbox and processes it until an
// error or ctx ends it.
func (a *Adapter) session(ctx context.Context) error {
	newMail := make(chan struct{}, 1)
	c, err := a.dial(ctx, newMail)
	if err != nil {
		return err
	}
	defer c.Close()
	// Commands do not take a context: closing the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	cfg := a.cfg.IMAP
	if err := a.login(ctx, c); err != nil {
		return err
	}
	sel, err := c.Select(cfg.Mailbox, nil).Wait()
	if err != nil {
		if imapNo(err) {
			return fmt.Errorf("%w: select %s: %v", errFatal, cfg.Mailbox, err)
		}
		return fmt.Errorf("imap: select %s: %w", cfg.Mailbox, err)
	}
	pos, err := a.start(ctx, c, sel)
	if err != nil {
		return err
	}
	a.setIMAPErr(nil)
	a.log.Info("imap session up", "mailbox", cfg.Mailbox, "uidvalidity", sel.UIDValidity, "last_uid", pos.LastUID,
		"idle", a.idle(c))
	for {
		if err := a.sync(ctx, c, &pos); err != nil {
			return err
		}
		if err := a.wait(ctx, c, newMail); err != nil {
			return err
		}
	}
}

// login logs in with the password or, with auth: oauth2, an access token. A
// refused login is errFatal: reconnecting with the same credentials cannot
// help.
func (a *Adapter) login(ctx context.Context, c *imapclient.Client) error {
	cfg := a.cfg.IMAP
	if a.tokens == nil {
		if err := c.Login(cfg.Username, cfg.Password.Value()).Wait(); err != nil {
			if imapNo(err) {
				return fmt.Errorf("%w: login as %s refused: %v", errFatal, cfg.Username, err)
			}
			return fmt.Errorf("imap: login: %w", err)
		}
		return nil
	}
	caps := c.Caps()
	mech := pickMechanism(func(m string) bool { return caps.Has(imap.Cap("AUTH=" + m)) })
	if mech == "" {
		return fmt.Errorf("%w: %w", errFatal, errNoBearerMech("imap"))
	}
	err := a.tokens.authenticate(ctx, "imap", mech, c.Authenticate, imapNo)
	var rej *TokenRejectedError
	if errors.As(err, &rej) || errors.Is(err, ErrRefreshRefused) {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	return err
}

// dial opens the IMAP connection with the configured security and waits for
// the greeting.
func (a *Adapter) dial(ctx context.Context, newMail chan struct{}) (*imapclient.Client, error) {
	cfg := a.cfg.IMAP
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	d := net.Dialer{Timeout: a.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imap: dial %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	// The greeting, STARTTLS and the handshake must not hang forever.
	_ = conn.SetDeadline(time.Now().Add(a.cfg.Timeout))
	opts := &imapclient.Options{
		TLSConfig:   tlsConfig(cfg.Host, cfg.InsecureSkipVerify),
		WordDecoder: wordDecoder,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Called on the client's reader goroutine: never block it.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var c *imapclient.Client
	switch cfg.Security {
	case SecurityTLS:
		tc := tls.Client(conn, opts.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("imap: tls handshake with %s: %w", addr, certFatal(err))
		}
		c = imapclient.New(tc, opts)
		conn = tc
	case SecurityStartTLS:
		c, err = imapclient.NewStartTLS(conn, opts)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("imap: starttls with %s: %w", addr, certFatal(err))
		}
	default:
		c = imapclient.New(conn, opts)
	}
	if err := c.WaitGreeting(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("imap: greeting of %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		_ = c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

// tlsConfig is the TLS configuration for host.
func tlsConfig(host string, insecure bool) *tls.Config {
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // opt-in for test servers, documented as such
}

// certFatal marks a certificate that does not verify as errFatal: a quick
// reconnect will not change it.
func certFatal(err error) error {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	return err
}

// imapNo reports whether err is the server's NO or BAD answer (as opposed to a
// network failure).
func imapNo(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie)
}

// idle reports whether the session waits with IDLE.
func (a *Adapter) idle(c *imapclient.Client) bool {
	caps := c.Caps()
	return *a.cfg.IMAP.Idle && (caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2))
}

// start loads the mailbox's position, or sets a new one when the mailbox is
// new to omnigate or its UIDVALIDITY changed (its old UIDs mean nothing now:
// the scan starts again, and Message-ID deduplication and the \Seen flag keep
// what was processed from being published twice).
func (a *Adapter) start(ctx context.Context, c *imapclient.Client, sel *imap.SelectData) (position, error) {
	next := uint32(sel.UIDNext)
	if next == 0 {
		// The server did not say: the highest UID in use, plus one.
		data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return position{}, fmt.Errorf("imap: search: %w", err)
		}
		uids := data.AllUIDs()
		next = 1
		if len(uids) > 0 {
			next = uint32(slices.Max(uids)) + 1
		}
	}
	var pos position
	_, err := a.state.Update(ctx, a.stateKey(), &pos, 0, func(bool) error {
		if pos.UIDValidity == sel.UIDValidity && pos.UIDValidity != 0 {
			return store.ErrSkip
		}
		if pos.UIDValidity != 0 {
			a.log.Warn("imap UIDVALIDITY changed: scanning the mailbox again", "mailbox", a.cfg.IMAP.Mailbox,
				"old", pos.UIDValidity, "new", sel.UIDValidity, "initial_scan", a.cfg.IMAP.InitialScan)
		}
		pos = position{UIDValidity: sel.UIDValidity, Updated: now()}
		switch a.cfg.IMAP.InitialScan {
		case ScanNone:
			pos.LastUID = next - 1
		case ScanUnseen:
			pos.UnseenUpTo = next - 1
		}
		return nil
	})
	if err != nil {
		return position{}, fmt.Errorf("imap: load position: %w", err)
	}
	return pos, nil
}

// sync processes every message after pos, in UID order, until none is left.
func (a *Adapter) sync(ctx context.Context, c *imapclient.Client, pos *position) error {
	for {
		uids, err := a.candidates(ctx, c, pos)
		if err != nil {
			return err
		}
		if len(uids) == 0 {
			return nil
		}
		for _, uid := range uids {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := a.process(ctx, c, uid, pos); err != nil {
				return err
			}
		}
	}
}

// candidates returns the next UIDs to process, ascending, at most searchBatch.
// During an initial scan of unseen mail it first finishes that scan, and
// moves pos past it when nothing unseen is left in its range.
func (a *Adapter) candidates(ctx context.Context, c *imapclient.Client, pos *position) ([]imap.UID, error) {
	if pos.UnseenUpTo > pos.LastUID {
		crit := &imap.SearchCriteria{
			UID:     []imap.UIDSet{{{Start: imap.UID(pos.LastUID + 1), Stop: imap.UID(pos.UnseenUpTo)}}},
			NotFlag: []imap.Flag{imap.FlagSeen},
		}
		data, err := c.UIDSearch(crit, nil).Wait()
		if err != nil {
			return nil, fmt.Errorf("imap: search unseen: %w", err)
		}
		uids := above(data.AllUIDs(), pos.LastUID, pos.UnseenUpTo)
		if len(uids) > 0 {
			return uids, nil
		}
		if err := a.advance(ctx, pos, pos.UnseenUpTo); err != nil {
			return nil, err
		}
	}
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{{Start: imap.UID(pos.LastUID + 1), Stop: 0}}}}
	data, err := c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("imap: search: %w", err)
	}
	// "n:*" always matches the highest UID, even one below n.
	return above(data.AllUIDs(), pos.LastUID, 0), nil
}

// above returns the uids greater than low (and at most high, unless it is 0),
// sorted, at most searchBatch.
func above(uids []imap.UID, low, high uint32) []imap.UID {
	out := make([]imap.UID, 0, len(uids))
	for _, u := range uids {
		if uint32(u) > low && (high == 0 || uint32(u) <= high) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), searchBatch)]
}

// advance records that every UID up to uid is processed. It never moves the
// position back: a replica that got further wins.
func (a *Adapter) advance(ctx context.Context, pos *position, uid uint32) error {
	want := *pos
	var cur position
	_, err := a.state.Update(ctx, a.stateKey(), &cur, 0, func(bool) error {
		if cur.UIDValidity == want.UIDValidity && cur.LastUID >= uid {
			return store.ErrSkip
		}
		if cur.UIDValidity != want.UIDValidity && cur.UIDValidity != 0 {
			// Another replica saw a new UIDVALIDITY: this session is stale.
			return fmt.Errorf("uidvalidity changed to %d meanwhile", cur.UIDValidity)
		}
		cur = want
		cur.LastUID = uid
		if cur.UnseenUpTo <= uid {
			cur.UnseenUpTo = 0
		}
		cur.Updated = now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("imap: save position: %w", err)
	}
	*pos = cur
	return nil
}

// process fetches, publishes and files one message. The position advances
// only after the bus has the message; a failure to publish returns an error,
// and the session starts over from the same message.
func (a *Adapter) process(ctx context.Context, c *imapclient.Client, uid imap.UID, pos *position) error {
	maxBytes := a.cfg.Limits.MaxMessageBytes
	section := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: maxBytes}}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
		UID:         true,
		RFC822Size:  true,
		BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		return fmt.Errorf("imap: fetch uid %d: %w", uid, err)
	}
	log := a.log.With("uid", uint32(uid))
	var raw []byte
	var size int64
	found := false
	for _, m := range msgs {
		if m.UID == uid {
			raw, size, found = m.FindBodySection(section), m.RFC822Size, true
		}
	}
	if !found {
		log.Debug("message gone before it was fetched")
		return a.advance(ctx, pos, uint32(uid))
	}
	truncated := size > maxBytes || int64(len(raw)) > maxBytes
	if err := a.handle(ctx, raw, truncated, log); err != nil {
		return err
	}
	// The bus has it: record that even when the adapter is being stopped, so
	// the next session does not publish it again.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.advance(actx, pos, uint32(uid)); err != nil {
		return err
	}
	a.file(c, uid, log)
	return nil
}

// file flags a processed message \Seen and moves it to the processed mailbox.
// Failures are logged: the position has moved on, the message is done.
func (a *Adapter) file(c *imapclient.Client, uid imap.UID, log *slog.Logger) {
	set := imap.UIDSetNum(uid)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		log.Warn("imap: flag \\Seen", "err", err)
	}
	if dst := a.cfg.IMAP.ProcessedMailbox; dst != "" {
		if _, err := c.Move(set, dst).Wait(); err != nil {
			log.Warn("imap: move to processed_mailbox (does it exist?)", "mailbox", dst, "err", err)
		}
	}
}

// wait blocks until the mailbox may have changed: new mail announced during
// IDLE, idleRecheck or poll_interval elapsed. Without IDLE it polls with NOOP.
func (a *Adapter) wait(ctx context.Context, c *imapclient.Client, newMail chan struct{}) error {
	if !a.idle(c) {
		t := time.NewTimer(a.cfg.IMAP.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.Closed():
			t.Stop()
			return errors.New("imap: connection closed")
		case <-t.C:
		}
		if err := c.Noop().Wait(); err != nil {
			return fmt.Errorf("imap: noop: %w", err)
		}
		return nil
	}
	select {
	case <-newMail:
		return nil // arrived while processing: look again now
	default:
	}
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("imap: idle: %w", err)
	}
	t := time.NewTimer(idleRecheck)
	select {
	case <-newMail:
	case <-t.C:
	case <-ctx.Done():
	case <-c.Closed():
	}
	t.Stop()
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("imap: end idle: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("imap: idle: %w", err)
	}
	return ctx.Err()
}

// handle turns one fetched mail into what it is: a customer message on the
// bus, a delivery.failed event for a bounce of a reply, or nothing. It returns
// an error only when the bus did not take what it published: everything else
// (an unreadable mail, an invalid address) is logged and the mail is done.
func (a *Adapter) handle(ctx context.Context, raw []byte, truncated bool, log *slog.Logger) error {
	p, err := Normalize(bytes.NewReader(raw), Limits{AttachmentBytes: a.keepBytes()})
	if err != nil {
		log.Warn("unreadable mail skipped", "err", err)
		return nil
	}
	log = log.With("message_id", p.MessageID)
	if p.Kind == KindBounce {
		return a.bounce(ctx, p, raw, log)
	}
	if own := a.own(p); own != "" {
		log.Info("mail not from a customer skipped", "reason", own)
		return nil
	}
	switch p.Kind {
	case KindBulk:
		if p.ListID != "" && slices.Contains(a.cfg.ListIDs, p.ListID) {
			break
		}
		log.Info("mailing-list mail skipped", "reason", p.Reason)
		return nil
	case KindAutoReply:
		log.Info("automatic mail skipped", "reason", p.Reason)
		return nil
	}
	m, err := a.inbound(p, raw, truncated)
	if err != nil {
		log.Warn("mail skipped", "err", err)
		return nil
	}
	// Remembered first: once the message is on the bus, a reply to it threads.
	a.rememberInbound(ctx, p, log)
	dup, err := a.pub.Inbound(ctx, m)
	switch {
	case errors.Is(err, core.ErrInvalid):
		log.Warn("mail skipped: not a valid envelope", "err", err)
		return nil
	case err != nil:
		return err
	}
	log.Debug("inbound", "msg_id", m.ID, "duplicate", dup)
	return nil
}

// own returns why p is mail the channel must not treat as a customer's (its
// own replies coming back), or "".
func (a *Adapter) own(p *Parsed) string {
	if p.From == "" {
		return "no sender address"
	}
	if strings.EqualFold(p.From, a.cfg.Address) {
		return "sent by the support address itself"
	}
	if p.OmnigateID != "" {
		return "sent by omnigate (X-Omnigate-Id)"
	}
	return ""
}

// keepBytes is how much of an attachment Normalize keeps: what may go into
// an envelope, or nothing.
func (a *Adapter) keepBytes() int64 {
	if n := min(a.cfg.Limits.InlineAttachmentBytes, a.cfg.Limits.InlineTotalBytes); n > 0 {
		return n
	}
	return -1
}
