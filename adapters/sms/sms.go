// Package sms connects Twilio SMS/MMS and Twilio WhatsApp to omnigate, as two
// channel adapters of one package: "sms" (identities sms:+E164) and
// "whatsapp" (identities whatsapp:+E164). Both normalize phone numbers to
// E.164, so the sms and the whatsapp identity of one phone share an address
// and core links them to one contact.
//
// Each adapter serves two webhooks, both checked against X-Twilio-Signature:
//
//	POST /channels/<name>/webhook  incoming messages (published on omni.in.<name>)
//	POST /channels/<name>/status   status callbacks (delivery.* events)
//
// and sends replies through Twilio's Messages API. Opt-out keywords (STOP and
// its siblings) are recorded per channel, and Send refuses opted-out numbers;
// the whatsapp adapter tracks WhatsApp's 24-hour customer service window and
// sends an approved template outside it. docs/channels/twilio.md is the
// operator's guide.
package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/store"
)

// Channel names of the two adapters.
const (
	channelSMS      = "sms"
	channelWhatsApp = "whatsapp"
)

// Record buckets, shared by both channels; keys are identities
// ("sms:+15551234567"), so each channel keeps its own entries.
const (
	// bucketOptOut holds the identities that opted out, with when and how.
	bucketOptOut = "sms_optout"
	// bucketWindow holds when each whatsapp identity last wrote.
	bucketWindow = "sms_window"
	// bucketSent maps a sent message's SID to its envelope, for status callbacks.
	bucketSent = "sms_sent"
)

// Timing.
const (
	// window is WhatsApp's customer service window: free-form messages are
	// allowed this long after the customer's last message.
	window = 24 * time.Hour
	// windowTTL keeps a window record a little longer than the window.
	windowTTL = window + time.Hour
	// sentTTL is how long a sent message's SID is remembered for callbacks.
	sentTTL = 7 * 24 * time.Hour
	// readyTTL is how long Ready trusts its last check of the credentials.
	readyTTL = time.Minute
	// defaultRetryAfter is the delay after a 429 without Retry-After.
	defaultRetryAfter = 2 * time.Second
	// maxRetryAfter caps a provider's Retry-After.
	maxRetryAfter = 10 * time.Minute
)

func init() {
	adapters.Register(adapters.Info{
		Name: channelSMS, Kind: adapters.Channel, Title: "SMS", Icon: ":speech_balloon:",
		Address: adapters.AddressPhone, Format: adapters.FormatPlain,
		Doc: "Twilio SMS and MMS: webhooks in, Messages API out, delivery receipts, STOP/START opt-out.",
	}, New)
	adapters.Register(adapters.Info{
		Name: channelWhatsApp, Kind: adapters.Channel, Title: "WhatsApp", Icon: ":green_heart:",
		Address: adapters.AddressPhone, Format: adapters.FormatWhatsApp,
		Doc: "WhatsApp through Twilio: webhooks in, Messages API out, delivery and read receipts, 24-hour window with an approved template.",
	}, NewWhatsApp)
}

// Adapter is the sms or the whatsapp channel. Send, FetchMedia and the
// webhooks are safe for concurrent use.
type Adapter struct {
	name     string
	cfg      Config
	template Template // whatsapp only
	sender   string   // From as Twilio wants it; "" with a messaging service alone
	public   string   // base URL Twilio calls; never ""
	apiBase  *url.URL
	log      *slog.Logger
	pub      *adapters.Publisher
	optOut   *store.Records
	windows  *store.Records
	sent     *store.Records
	http     *http.Client
	media    *http.Client
	now      func() time.Time
	validate func(signedURL string, params map[string]string, signature string) bool

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

// New builds the sms adapter from its validated config. It does no I/O.
func New(cfg Config, deps adapters.Deps) (adapters.Adapter, error) {
	return newAdapter(channelSMS, cfg, Template{}, deps)
}

// NewWhatsApp builds the whatsapp adapter from its validated config. It does
// no I/O.
func NewWhatsApp(cfg WhatsAppConfig, deps adapters.Deps) (adapters.Adapter, error) {
	return newAdapter(channelWhatsApp, cfg.Config, cfg.Template, deps)
}

func newAdapter(name string, cfg Config, tpl Template, deps adapters.Deps) (*Adapter, error) {
	cfg.SetDefaults() // a no-op after config decoding; fills a Config built in code
	if deps.Publisher == nil || deps.Store == nil {
		return nil, errors.New("deps: Publisher and Store are required")
	}
	public := cfg.PublicURL
	if public == "" {
		public = strings.TrimRight(deps.PublicURL, "/")
	}
	if public == "" {
		// A config problem, so that serve and check-config both put it on its line.
		var p config.Problems
		p.Add("public_url", "required here or as http.public_url, e.g. https://support.example.com: Twilio's signatures cover the URL it calls, so omnigate must know it")
		return nil, p.Err()
	}
	apiBase, err := url.Parse(cfg.APIBaseURL)
	if err != nil || apiBase.Host == "" {
		return nil, errors.New("api_base_url: not an absolute URL")
	}
	sender := ""
	if cfg.From != "" {
		if sender, err = parseSender(name, cfg.From, cfg.DefaultRegion); err != nil {
			return nil, err
		}
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Own transport, so Close drops only this adapter's idle connections.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	a := &Adapter{
		name:     name,
		cfg:      cfg,
		template: tpl,
		sender:   sender,
		public:   public,
		apiBase:  apiBase,
		log:      log,
		pub:      deps.Publisher,
		optOut:   deps.Store.Records(bucketOptOut),
		windows:  deps.Store.Records(bucketWindow),
		sent:     deps.Store.Records(bucketSent),
		http: &http.Client{
			Transport: tr,
			// The Messages API never redirects; a redirect is not followed with
			// the credentials.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}
	a.media = &http.Client{Transport: tr, CheckRedirect: a.checkMediaRedirect}
	v := newValidator(cfg.AuthToken.Value())
	a.validate = v.Validate
	if deps.Routes != nil {
		deps.Routes.HandleFunc("POST /webhook", a.serveWebhook)
		deps.Routes.HandleFunc("POST /status", a.serveStatus)
	}
	return a, nil
}

// Name returns "sms" or "whatsapp".
func (a *Adapter) Name() string { return a.name }

// Run waits until ctx is done: Twilio calls the webhooks, and the runtime
// calls Send.
func (a *Adapter) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Ready checks that Twilio accepts the credentials and the account is active,
// by fetching the account. A result is reused for a minute, so a busy
// /readyz does not spend the API's rate limit.
func (a *Adapter) Ready(ctx context.Context) error {
	a.readyMu.Lock()
	defer a.readyMu.Unlock()
	if now := a.now(); !a.readyAt.IsZero() && now.Sub(a.readyAt) < readyTTL {
		return a.readyErr
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	acct, err := a.api(cctx).FetchAccount(a.cfg.AccountSID)
	switch {
	case err != nil:
		err = fmt.Errorf("%s: twilio account: %w", a.name, err)
	case acct.Status != nil && *acct.Status != "active":
		err = fmt.Errorf("%s: twilio account is %s", a.name, *acct.Status)
	}
	if ctx.Err() != nil && err != nil {
		return err // cut short by the caller: do not remember it
	}
	a.readyAt, a.readyErr = a.now(), err
	return err
}

// Close drops idle connections to Twilio.
func (a *Adapter) Close(context.Context) error {
	a.http.CloseIdleConnections()
	return nil
}

// webhookURL is the public URL of one of the adapter's routes.
func (a *Adapter) webhookURL(path string) string {
	return a.public + a.routePath(path)
}

// routePath is the path of one of the adapter's routes on omnigate's server.
func (a *Adapter) routePath(path string) string {
	return "/channels/" + a.name + "/" + path
}

var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Readier = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
