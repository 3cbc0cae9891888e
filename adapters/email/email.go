// Package email is the email channel: one support mailbox, read over IMAP
// (IDLE, with polling as a fallback) and answered over SMTP submission.
//
// Inbound, every mail in the configured mailbox is processed exactly once, in
// UID order: the mailbox's UIDVALIDITY and the last processed UID are kept in
// the store (records "email_state") and advanced only after the bus has the
// message; then the mail is flagged \Seen and, if configured, moved. A mail is
// normalized by Normalize: its text without quoted history and signature, its
// attachments, its thread (External.Thread is the thread's root Message-ID,
// meta "thread_keys" the envelope ids of the replies it answers, found by
// its plus-address token and its In-Reply-To and References, and every
// Message-ID it refers to). Auto-replies, mailing lists and bounces are not
// customer messages: they are not published, and a bounce of a reply becomes
// a delivery.failed event and, for a hard bounce, a contact.unreachable for
// the address (bounce.go).
//
// Outbound, a reply is a multipart/alternative mail (text and HTML, plus
// attachments) with Message-ID <envelope-id@domain>, In-Reply-To and
// References of the conversation's last mail, a "Re:" subject, ENVID and
// RET=HDRS for the DSN it may cause, and optionally a plus-addressed Reply-To
// and return path naming the reply, and a DKIM signature.
package email

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core/store"
)

// Name is the adapter's and the channel's name.
const Name = "email"

// Record buckets of the adapter in the store.
const (
	// stateBucket holds the IMAP position per mailbox: UIDVALIDITY and the last
	// processed UID.
	stateBucket = "email_state"
	// threadBucket remembers the last mail of each customer and conversation,
	// for the threading headers of replies, and the envelope of each sent mail,
	// for bounces.
	threadBucket = "email_thread"
)

func init() {
	adapters.Register(adapters.Info{
		Name: Name, Kind: adapters.Channel, Title: "Email", Icon: ":email:",
		Address: adapters.AddressEmail, Format: adapters.FormatHTML,
		Doc: "Email: IMAP IDLE in, SMTP out, RFC 5322 threading.",
	}, New)
}

// Adapter connects one mailbox to omnigate.
type Adapter struct {
	cfg     Config
	pub     *adapters.Publisher
	log     *slog.Logger
	state   *store.Records
	threads *store.Records
	signer  crypto.Signer
	http    *http.Client
	// tokens hands out the access tokens of auth: oauth2; nil with passwords.
	tokens *tokenSource

	// verpRefused is set once the submission server refused a
	// plus-addressed MAIL FROM: later replies use the address at once.
	verpRefused atomic.Bool

	mu      sync.Mutex
	imapErr error // why the IMAP session is not up; nil while it is
}

// New builds the adapter from its validated config. It does no I/O.
func New(cfg Config, deps adapters.Deps) (adapters.Adapter, error) {
	if deps.Publisher == nil || deps.Logger == nil {
		return nil, errors.New("deps: publisher and logger required")
	}
	if deps.Store == nil {
		return nil, errors.New("deps: a store is required (imap position, threading)")
	}
	a := &Adapter{
		cfg:     cfg,
		pub:     deps.Publisher,
		log:     deps.Logger,
		state:   deps.Store.Records(stateBucket),
		threads: deps.Store.Records(threadBucket),
		imapErr: errors.New("imap: not connected yet"),
	}
	if cfg.DKIM.Selector != "" {
		k, err := parsePrivateKey(cfg.DKIM.PrivateKey.Value())
		if err != nil {
			return nil, fmt.Errorf("dkim.private_key: %w", err)
		}
		a.signer = k
	}
	a.http = newFetchClient(cfg)
	if cfg.Auth == AuthOAuth2 {
		if cfg.OAuth2.RefreshToken == "" {
			return nil, errors.New("oauth2.refresh_token is empty: run omnigate email login --config FILE once and set what it prints")
		}
		a.tokens = newTokenSource(cfg.OAuth2, cfg.IMAP.Username, deps.Store, cfg.Timeout, deps.Logger)
	}
	return a, nil
}

// Name is the channel name, "email".
func (a *Adapter) Name() string { return Name }

// Ready reports whether the IMAP session is up (always ready without IMAP).
func (a *Adapter) Ready(context.Context) error {
	if a.cfg.IMAP.Host == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.imapErr
}

func (a *Adapter) setIMAPErr(err error) {
	a.mu.Lock()
	a.imapErr = err
	a.mu.Unlock()
}

// Close releases the attachment client's idle connections.
func (a *Adapter) Close(context.Context) error {
	a.http.CloseIdleConnections()
	return nil
}

// now is the adapter's clock.
func now() time.Time { return time.Now().UTC() }

var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Readier = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
