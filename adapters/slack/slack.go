// Package slack is the agent desk on Slack: every conversation gets one thread
// in the Slack channel of its queue, opened by a card that shows the customer
// and the conversation's state, with buttons to claim, close, reopen, transfer
// and ask for a ticket. Customer messages land in the thread; what an agent
// writes in the thread goes back to the customer on the channel they used
// last, and a reaction on it tells when the customer's channel delivered it.
//
// Slack reaches the adapter by Socket Mode (a WebSocket the adapter opens with
// the app-level token; no public URL) or by the Events API over HTTP (POST
// /channels/slack/events, /interactivity and /commands, signed with the
// signing secret). docs/slack-setup.md has the app manifest.
//
// The adapter is registered as the desk "slack": the runtime calls Send for
// every message on omni.desk.slack (customer messages, replies written
// elsewhere, and the events of the owners of what the card shows: routed,
// assigned, linked, merged, rejected commands) and HandleEvent for delivery
// and conversation events. Agents' replies are published for the pipeline on
// omni.in.slack.<partition of the conversation> as outbound messages from
// slack:<user id>, in CommonMark; what agents click and type are commands
// for the owners (core/event): close, reopen and link for the pipeline on the
// same subjects, claim and transfer for routing and ticket.create for the
// ticket service on omni.evt. The desk never writes a conversation; the card
// changes when the owner answers.
//
// Where each conversation lives is the desk's own record
// ("slack_conversations", Thread = "<channel>:<root ts>"), indexed in
// "slack_threads" ("<channel>:<thread ts>" -> conversation), so a restart or
// another replica finds every thread again. The queues, and the channel each
// one's threads go to, are routing's (adapters.Deps.Queues).
package slack

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core/canned"
	"github.com/omnigate/omnigate/core/keylock"
	"github.com/omnigate/omnigate/core/store"
)

// Name is the adapter's and the desk's name.
const Name = "slack"

// Record buckets the adapter keeps in the store.
const (
	// recordsThreads maps "<channel>:<thread ts>" to the conversation.
	recordsThreads = "slack_threads"
	// recordsMessages holds "env:<envelope id>" -> the agent's Slack message,
	// "ts:<channel>:<ts>" -> the envelope id of that message, "part:..." for
	// the Slack messages a desk message was posted as, and "evt:<event id>"
	// for Events API deliveries already handled.
	recordsMessages = "slack_messages"
	// recordsConversations holds per conversation what Slack needs besides the
	// conversation itself (reply-via, links), "agent:<user>:<channel>" -> the
	// conversation an agent last worked on there, "name:<contact>" -> the name
	// a channel gave the customer, and "file:<id>" -> an agent's file.
	recordsConversations = "slack_conversations"
)

// messageTTL is how long the records of one message are kept: long enough for
// any delivery report.
const messageTTL = 30 * 24 * time.Hour

// callTimeout bounds a Web API call made outside Send and HandleEvent (which
// have the runtime's timeout).
const callTimeout = 15 * time.Second

func init() {
	adapters.Register(adapters.Info{
		Name: Name, Kind: adapters.Desk, Title: "Slack", Icon: ":speech_balloon:",
		Address: adapters.AddressUser, Format: adapters.FormatMrkdwn,
		Doc: "Slack agent desk: one thread per conversation, replies, card actions, /omni (Socket Mode or Events API)",
	}, func(cfg Config, deps adapters.Deps) (adapters.Adapter, error) { return New(cfg, deps) })
}

// Adapter is the Slack desk. Build it with New.
type Adapter struct {
	cfg       Config
	log       *slog.Logger
	pub       *adapters.Publisher
	st        *store.Store
	api       *slack.Client
	hc        *http.Client
	publicURL string
	fileURL   func(path string) string // absolute URL of a path under /channels/slack/
	// transcriptURL is deps.TranscriptURL: the card's Transcript link.
	transcriptURL func(conversation string) string
	fileKey       [32]byte

	threads  *store.Records
	messages *store.Records
	convs    *store.Records
	// answers are insight's canned answers, read by name.
	answers *store.Records

	// queues are routing's queues shown on this desk.
	queues []adapters.Queue

	limits limiter
	users  userCache

	// bg tracks the work done after answering Slack (card updates, notes).
	bg sync.WaitGroup
	// cards serializes the refreshes of each conversation's card.
	cards keylock.Locks

	// ReadyState is why the adapter is not ready; Ready reports it.
	adapters.ReadyState

	mu      sync.Mutex
	botUser string // the bot's user id, from auth.test
}

// New builds the adapter from cfg (defaults are applied and it is validated
// again) and deps, which must have a publisher and a store. It does no I/O:
// Run checks the token. In http mode it mounts POST /channels/slack/events,
// /interactivity and /commands; in both modes GET /channels/slack/files/...,
// the signed links to agents' files.
func New(cfg Config, deps adapters.Deps) (*Adapter, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Publisher == nil:
		return nil, errors.New("deps: no publisher")
	case deps.Store == nil:
		return nil, errors.New("deps: no store: the desk keeps its threads there")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		cfg:           cfg,
		log:           log,
		pub:           deps.Publisher,
		st:            deps.Store,
		hc:            &http.Client{Timeout: 30 * time.Second},
		publicURL:     strings.TrimRight(deps.PublicURL, "/"),
		threads:       deps.Store.Records(recordsThreads),
		messages:      deps.Store.Records(recordsMessages),
		convs:         deps.Store.Records(recordsConversations),
		answers:       deps.Store.Records(canned.Records),
		transcriptURL: deps.TranscriptURL,
	}
	for _, q := range deps.Queues {
		if q.Desk == Name {
			a.queues = append(a.queues, q)
		}
	}
	a.setState(errors.New("not started"))
	a.limits = limiter{rate: cfg.ChannelRate, burst: cfg.ChannelBurst}
	a.fileKey = sha256.Sum256([]byte("omnigate slack file links\x00" + cfg.BotToken.Value()))
	opts := []slack.Option{slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(a.hc)}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken.Value()))
	}
	a.api = slack.New(cfg.BotToken.Value(), opts...)
	if deps.Routes != nil {
		if cfg.Mode == ModeHTTP {
			deps.Routes.HandleFunc("POST /events", a.serveEvents)
			deps.Routes.HandleFunc("POST /interactivity", a.serveInteractivity)
			deps.Routes.HandleFunc("POST /commands", a.serveCommands)
		}
		deps.Routes.HandleFunc("GET /files/{id}/{name}", a.serveFile)
		if a.publicURL != "" {
			a.fileURL = func(path string) string { return deps.Routes.URL(a.publicURL, path) }
		}
	} else if cfg.Mode == ModeHTTP {
		return nil, errors.New("deps: http mode needs routes")
	}
	return a, nil
}

// Name returns "slack".
func (a *Adapter) Name() string { return Name }

// Run checks the bot token (auth.test), then in socket mode receives events,
// interactions and slash commands over Socket Mode until ctx is done; in http
// mode it waits for ctx. It returns nil once ctx is done, and an error (the
// runtime restarts it with backoff) when Slack refuses the tokens or the
// connection fails for good.
func (a *Adapter) Run(ctx context.Context) error {
	defer a.setState(errors.New("stopped"))
	if err := a.authTest(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		a.setState(err)
		return err
	}
	if a.cfg.Mode == ModeSocket {
		return a.runSocket(ctx)
	}
	a.setState(nil)
	<-ctx.Done()
	return nil
}

// authTest learns the bot's user id, so its own messages are ignored.
func (a *Adapter) authTest(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := a.api.AuthTestContext(ctx)
	if err != nil {
		return apiError("auth.test", err)
	}
	a.mu.Lock()
	a.botUser = res.UserID
	a.mu.Unlock()
	a.log.Info("slack bot connected", "team", res.Team, "bot_user", res.UserID, "mode", a.cfg.Mode)
	return nil
}

// botUserID is the bot's user id, "" before Run's auth.test.
func (a *Adapter) botUserID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.botUser
}

// setState records why the adapter is not ready (nil: it is), for Ready.
func (a *Adapter) setState(err error) {
	if err != nil {
		err = fmt.Errorf("slack: %w", err)
	}
	a.SetReady(err)
}

// Close waits, until ctx is done, for the work started after answering Slack
// (card updates and notes).
func (a *Adapter) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		a.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("slack: close: %w", ctx.Err())
	}
}

// later runs fn after Slack was answered, bounded by callTimeout and tracked
// for Close. What it does is cosmetic (cards, notes): errors are logged.
func (a *Adapter) later(ctx context.Context, what string, fn func(ctx context.Context) error) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*callTimeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			a.log.Warn(what, "err", err)
		}
	}()
}

// Interface guards.
var (
	_ adapters.Adapter      = (*Adapter)(nil)
	_ adapters.Readier      = (*Adapter)(nil)
	_ adapters.Closer       = (*Adapter)(nil)
	_ adapters.EventHandler = (*Adapter)(nil)
)
