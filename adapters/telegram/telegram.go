// Package telegram is the Telegram channel: customers write to a bot, agents
// answer through it. It receives updates by webhook (Telegram POSTs them to
// /channels/telegram/webhook, authenticated by a secret header) or by long
// polling getUpdates, and sends replies with the Bot API (telegram-bot-api v5).
//
// A customer is the identity telegram:<user id>; External.Chat is the chat id
// and External.Message "<chat id>:<message id>", so Telegram's retries of an
// update are stored once. Edits of a customer's message (and live-location
// updates) are messages marked as edits of it; a reply's quick replies are an
// inline keyboard whose presses come back as the customer's choice; the
// customer's blocking or unblocking the bot is a contact.unreachable or
// contact.reachable event. See docs/channels/telegram.md for setup.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core/store"
)

// Name is the adapter's and the channel's name.
const Name = "telegram"

// Sentinel errors of Send, wrapped with Permanent. Test with errors.Is.
var (
	// ErrBlocked: Telegram answered 403, the user blocked the bot.
	ErrBlocked = errors.New("user blocked the bot")
	// ErrChatNotFound: Telegram does not know the chat, or the bot is not in it.
	ErrChatNotFound = errors.New("chat not found")
)

// allowedUpdates are the update kinds the adapter asks Telegram for, in
// webhook and polling mode alike: messages and their edits, presses on
// quick-reply buttons, and the customer's blocking or unblocking the bot.
var allowedUpdates = []string{"message", "edited_message", "callback_query", "my_chat_member"}

func init() {
	adapters.Register(adapters.Info{
		Name: Name, Kind: adapters.Channel, Title: "Telegram", Icon: ":airplane:",
		Address: adapters.AddressChatID, Format: adapters.FormatMarkdownV2,
		Doc: "Telegram bot: webhook or long polling, text, media, locations, contacts, deep links, quick replies, edits",
	}, func(cfg Config, deps adapters.Deps) (adapters.Adapter, error) { return New(cfg, deps) })
}

// Adapter is the Telegram channel. Build it with New.
type Adapter struct {
	cfg     Config
	log     *slog.Logger
	pub     *adapters.Publisher
	records *store.Records // offsets and sent parts; nil without a store
	lease   *store.Lease   // who polls, in polling mode
	bot     *tgbotapi.BotAPI
	hc      *http.Client
	botID   string // the numeric part of the token, public: it is the bot's user id
	hookURL string // where setWebhook points Telegram; "" to leave it alone
	secret  [32]byte

	// ReadyState is why the adapter is not ready; Ready reports it.
	adapters.ReadyState
}

// New builds the adapter from cfg (defaults are applied and it is validated
// again) and deps. It does no I/O: Run checks the token and registers the
// webhook. In webhook mode it mounts POST /channels/telegram/webhook.
func New(cfg Config, deps adapters.Deps) (*Adapter, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Publisher == nil {
		return nil, errors.New("deps: no publisher")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		cfg: cfg,
		log: log,
		pub: deps.Publisher,
		hc:  &http.Client{},
	}
	a.setState(errors.New("not started"))
	a.botID, _, _ = strings.Cut(cfg.Token.Value(), ":")
	// The library's constructors call getMe; a factory does no I/O, so build
	// the client by hand and check the token in Run.
	a.bot = &tgbotapi.BotAPI{Token: cfg.Token.Value(), Client: a.hc, Buffer: 100}
	a.bot.SetAPIEndpoint(cfg.APIEndpoint)
	if deps.Store != nil {
		a.records = deps.Store.Records(Name)
	}
	switch cfg.Mode {
	case ModeWebhook:
		if deps.Routes == nil {
			return nil, errors.New("deps: webhook mode needs routes")
		}
		a.secret = secretHash(cfg.WebhookSecret.Value())
		deps.Routes.HandleFunc("POST /webhook", a.serveWebhook)
		base := cfg.PublicURL
		if base == "" && strings.HasPrefix(deps.PublicURL, "https://") {
			base = deps.PublicURL // Telegram calls HTTPS webhooks only
		}
		if base != "" {
			a.hookURL = deps.Routes.URL(base, "webhook")
		}
	case ModePolling:
		if a.records == nil {
			return nil, errors.New("deps: polling mode needs a store for the update offset")
		}
		a.lease = pollLease(deps.Store, a.botID)
	}
	return a, nil
}

// Name returns "telegram".
func (a *Adapter) Name() string { return Name }

// Run checks the token (getMe), then in webhook mode registers the webhook
// when a public URL is known and waits for ctx; in polling mode it receives
// updates with getUpdates until ctx is done, on the one replica that holds
// the polling lease. It returns nil once ctx is done, and an error (the
// runtime restarts it with backoff) when Telegram or the store refuses.
func (a *Adapter) Run(ctx context.Context) error {
	defer a.setState(errors.New("stopped"))
	me, err := a.getMe(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		a.setState(err)
		return err
	}
	a.log.Info("telegram bot connected", "bot", "@"+me.UserName, "mode", a.cfg.Mode)
	if a.cfg.Mode == ModePolling {
		return a.poll(ctx)
	}
	if a.hookURL == "" {
		a.log.Warn("no https public_url: webhook not registered; point setWebhook at <public url>/channels/telegram/webhook yourself")
	} else if err := a.setWebhook(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		a.setState(err)
		return err
	}
	a.setState(nil)
	<-ctx.Done()
	return nil
}

// setState records why the adapter is not ready (nil: it is), for Ready.
func (a *Adapter) setState(err error) {
	if err != nil {
		err = fmt.Errorf("telegram: %w", err)
	}
	a.SetReady(err)
}

// callTimeout bounds Bot API calls made outside Send (which has the runtime's).
const callTimeout = 30 * time.Second

func (a *Adapter) getMe(ctx context.Context) (tgbotapi.User, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	me, err := a.client(ctx).GetMe()
	if err != nil {
		return me, a.errorf("getMe", err)
	}
	return me, nil
}

// setWebhook points Telegram at the webhook with the secret, asking only for
// the update kinds the adapter handles. Pending updates are kept.
func (a *Adapter) setWebhook(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p := tgbotapi.Params{"url": a.hookURL, "secret_token": a.cfg.WebhookSecret.Value()}
	if err := p.AddInterface("allowed_updates", allowedUpdates); err != nil {
		return err
	}
	if _, err := a.client(ctx).MakeRequest("setWebhook", p); err != nil {
		return a.errorf("setWebhook", err)
	}
	a.log.Info("telegram webhook registered", "url", a.hookURL)
	return nil
}

// client returns the bot bound to ctx. The library has no context parameter,
// so each call gets a copy whose HTTP client attaches ctx to the request:
// cancelling ctx aborts the call, and concurrent calls share nothing mutable.
func (a *Adapter) client(ctx context.Context) *tgbotapi.BotAPI {
	b := *a.bot
	b.Client = ctxClient{ctx: ctx, hc: a.hc}
	return &b
}

type ctxClient struct {
	ctx context.Context
	hc  *http.Client
}

func (c ctxClient) Do(r *http.Request) (*http.Response, error) { return c.hc.Do(r.WithContext(c.ctx)) }

// errorf wraps err from Bot API method op, with the token scrubbed: the
// library puts it in every URL, and net/http errors repeat the URL.
func (a *Adapter) errorf(op string, err error) error {
	return &apiError{msg: "telegram: " + op + ": " + a.scrub(err.Error()), err: a.scrubURL(err)}
}

// scrub replaces the token, and its secret part on its own, in s.
func (a *Adapter) scrub(s string) string {
	tok := a.cfg.Token.Value()
	if tok == "" {
		return s
	}
	s = strings.ReplaceAll(s, tok, "<token>")
	if _, secret, ok := strings.Cut(tok, ":"); ok && secret != "" {
		s = strings.ReplaceAll(s, secret, "<token>")
		s = strings.ReplaceAll(s, url.PathEscape(secret), "<token>")
	}
	return s
}

// scrubURL returns err with a *url.Error's URL scrubbed, so that unwrapping
// it finds no token either.
func (a *Adapter) scrubURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: a.scrub(ue.URL), Err: ue.Err}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Nested deeper: keep the cause, drop the wrappers that repeat the URL.
		return ue.Err
	}
	return err
}

// apiError is a Bot API call's error with the token scrubbed from its text.
type apiError struct {
	msg string
	err error
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

// Interface guards.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Readier = (*Adapter)(nil)
)
