package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// The channels this package registers: one code, two configurations.
const (
	// ChannelWeb is the website chat widget and its API, under /channels/web/.
	ChannelWeb = "web"
	// ChannelApp is the same protocol for mobile apps, under /channels/app/,
	// with its own sites and keys (channels.app).
	ChannelApp = "app"
)

func init() {
	adapters.Register(adapters.Info{
		Name: ChannelWeb, Kind: adapters.Channel, Title: "Web chat", Icon: ":globe_with_meridians:",
		Address: adapters.AddressVisitor, Format: adapters.FormatPlain,
		Doc: "Website chat: the widget (/widget.js) and its WebSocket and HTTP API under /channels/web/.",
	}, func(cfg Config, deps adapters.Deps) (adapters.Adapter, error) { return New(ChannelWeb, cfg, deps) })
	adapters.Register(adapters.Info{
		Name: ChannelApp, Kind: adapters.Channel, Title: "App", Icon: ":iphone:",
		Address: adapters.AddressVisitor, Format: adapters.FormatPlain,
		Doc: "Mobile apps: the web chat protocol under /channels/app/, with their own sites and keys.",
	}, func(cfg Config, deps adapters.Deps) (adapters.Adapter, error) { return New(ChannelApp, cfg, deps) })
}

// Meta keys this adapter sets on inbound messages or reads from outbound ones.
const (
	// MetaSite is the site the visitor wrote from.
	MetaSite = "site"
	// MetaPageURL is the page the widget was on when it connected.
	MetaPageURL = "page_url"
	// MetaContactEmail is an address a visitor typed in the pre-chat or the
	// offline form. It is NOT verified and links nothing (with
	// widget.offline_form email, an offline message comes from that address
	// instead: see docs/web-protocol.md).
	MetaContactEmail = "contact_email"
)

// Meta keys the pipeline links on; they are set only from verified claims.
const (
	metaVerifiedUser  = "verified_user"
	metaVerifiedEmail = "verified_email"
	metaVerifiedPhone = "verified_phone"
)

// Adapter serves one chat channel ("web" or "app"): the WebSocket and HTTP API
// under /channels/<name>/, the widget, and Send for agents' replies. It is
// safe for concurrent use.
type Adapter struct {
	name         string
	cfg          Config
	sites        map[string]*site
	pub          *adapters.Publisher
	log          *slog.Logger
	hist         *history
	uploads      *uploadStore
	keys         *store.Records
	hub          *hub
	avail        *store.Records // routing's availability records
	publicURL    string
	publicOrigin string
	proxies      []netip.Prefix
	ipLim        *limiters
	visitorLim   *limiters
	uploadSlots  chan struct{}
	now          func() time.Time

	keyMu sync.Mutex
	key   []byte

	online  atomic.Pointer[func(ctx context.Context, site string) bool]
	conns   atomic.Int64 // connection handlers running
	stopped atomic.Bool  // Run has returned: new sessions are ended at once
}

// New builds the adapter called name ("web" or "app") from cfg. It mounts its
// routes on deps.Routes and does no I/O. deps.Publisher and deps.Store are
// required; with deps.Bus, sessions on other replicas get replies too.
func New(name string, cfg Config, deps adapters.Deps) (*Adapter, error) {
	if !core.ValidChannel(name) {
		return nil, fmt.Errorf("web: %q is not a channel name", name)
	}
	if deps.Publisher == nil || deps.Routes == nil || deps.Store == nil {
		return nil, errors.New("web: needs deps.Publisher, deps.Routes and deps.Store")
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		name:        name,
		cfg:         cfg,
		sites:       map[string]*site{},
		pub:         deps.Publisher,
		log:         log,
		hist:        &history{rec: deps.Store.Records(name + "_log"), ttl: cfg.HistoryTTL},
		keys:        deps.Store.Records(name + "_keys"),
		publicURL:   strings.TrimRight(deps.PublicURL, "/"),
		proxies:     parseProxies(cfg.TrustedProxies),
		ipLim:       newLimiters(cfg.RateLimit.PerIP, cfg.RateLimit.PerIPBurst),
		visitorLim:  newLimiters(cfg.RateLimit.PerVisitor, cfg.RateLimit.PerVisitorBurst),
		uploadSlots: make(chan struct{}, maxConcurrentUploads),
		now:         time.Now,
	}
	a.avail = deps.Store.Records(event.AvailabilityRecords)
	a.uploads = &uploadStore{rec: deps.Store.Records(name + "_uploads"), ttl: cfg.HistoryTTL}
	if u, err := url.Parse(a.publicURL); err == nil && u.Host != "" {
		a.publicOrigin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	if cfg.TokenSecret != "" {
		a.key = []byte(cfg.TokenSecret.Value())
	}
	for n, s := range cfg.Sites {
		st := &site{name: n, secret: []byte(s.Secret.Value()), accounts: s.Accounts, queue: s.Queue}
		if st.accounts == "" {
			st.accounts = n
		}
		for _, o := range s.Origins {
			norm, _ := parseOrigin(o) // validated
			st.origins = append(st.origins, norm)
		}
		a.sites[n] = st
	}
	if len(a.sites) == 0 {
		// Zero config: the demo site, for this server's own pages. Its secret is
		// random and known to no one, so it has anonymous visitors only.
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		a.sites[defaultSite] = &site{name: defaultSite, secret: secret, accounts: defaultSite}
	}
	// Without the bus, frames reach this process's sessions only.
	var origin [8]byte
	_, _ = rand.Read(origin[:])
	if deps.Bus != nil {
		a.hub = newHub(name, deps.Bus.Conn(), fmt.Sprintf("%x", origin), log)
	} else {
		a.hub = newHub(name, nil, "", log)
	}
	a.routes(deps.Routes)
	return a, nil
}

// routes mounts the API under /channels/<name>/.
func (a *Adapter) routes(r *adapters.Routes) {
	r.HandleFunc("GET /ws", a.serveWS)
	r.HandleFunc("POST /hello", a.serveHello)
	r.HandleFunc("POST /messages", a.serveMessages)
	r.HandleFunc("POST /read", a.serveRead)
	r.HandleFunc("GET /history", a.serveHistory)
	r.HandleFunc("GET /widget/config", a.serveWidgetConfig)
	r.HandleFunc("GET /events", a.serveEvents)
	r.HandleFunc("POST /uploads", a.serveUpload)
	r.HandleFunc("GET /uploads/{id}", a.serveUploaded)
	r.Handle("GET /widget.js", WidgetHandler())
	r.HandleFunc("OPTIONS /", a.preflight)
}

// Name is the channel name, "web" or "app".
func (a *Adapter) Name() string { return a.name }

// Sites returns the names of the configured sites ("demo" with no config).
func (a *Adapter) Sites() []string { return slices.Sorted(maps.Keys(a.sites)) }

// SetAgentsOnline sets the callback that tells whether an agent is available
// on site, instead of routing's availability records; when it says no, the
// widget offers its offline form. It overrides the offline config key. Safe
// to call at any time; nil removes it.
func (a *Adapter) SetAgentsOnline(fn func(ctx context.Context, site string) bool) {
	if fn == nil {
		a.online.Store(nil)
		return
	}
	a.online.Store(&fn)
}

// Run sweeps idle rate-limit state and pushes changes of availability to
// the open sessions until ctx is done, then ends every open
// connection (clients reconnect, to another replica if this one goes away)
// and returns nil.
func (a *Adapter) Run(ctx context.Context) error {
	a.stopped.Store(false)
	if _, err := a.tokenKey(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("visitor token key not loaded yet; retried on first use", "err", err)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	at := time.NewTicker(availabilityEvery)
	defer at.Stop()
	pushed := map[string]availabilityFrame{}
	for {
		select {
		case <-at.C:
			a.pushAvailability(ctx, pushed)
		case <-ctx.Done():
			a.stopped.Store(true)
			a.hub.closeAll()
			a.waitConns(5 * time.Second)
			return nil
		case <-t.C:
			now := a.now()
			a.ipLim.sweep(now)
			a.visitorLim.sweep(now)
		}
	}
}

// waitConns waits up to d for the connection handlers to return.
func (a *Adapter) waitConns(d time.Duration) {
	deadline := time.Now().Add(d)
	for a.conns.Load() > 0 && time.Now().Before(deadline) {
		a.hub.closeAll() // a handler that was still saying hello has a session now
		time.Sleep(10 * time.Millisecond)
	}
}

// Ready reports whether the visitor token key can be loaded from the store.
func (a *Adapter) Ready(ctx context.Context) error {
	_, err := a.tokenKey(ctx)
	return err
}

// tokenKeyRecord is where a generated token key is kept.
const tokenKeyRecord = "token_key"

// tokenKey returns the key that signs visitor tokens: token_secret, or one
// generated once and kept in the store so that every replica and every
// restart uses the same.
func (a *Adapter) tokenKey(ctx context.Context) ([]byte, error) {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.key != nil {
		return a.key, nil
	}
	var rec struct {
		Key []byte `json:"key"`
	}
	rec.Key = make([]byte, 32)
	_, _ = rand.Read(rec.Key)
	_, err := a.keys.Create(ctx, tokenKeyRecord, rec, 0)
	if errors.Is(err, store.ErrExists) {
		_, err = a.keys.Get(ctx, tokenKeyRecord, &rec)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: visitor token key: %w", a.name, err)
	}
	if len(rec.Key) < 32 {
		return nil, fmt.Errorf("%s: visitor token key in the store is too short", a.name)
	}
	a.key = rec.Key
	return a.key, nil
}

// Send delivers an agent's reply (or a typing or read event) to every open
// session of the visitor m.To, on any replica, and keeps the reply in the
// visitor's history, so that a visitor who is away sees it on the next
// connection. The receipt says "delivered" when a session got it, else
// "queued". A recipient that is not a visitor of this channel is Permanent.
func (a *Adapter) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	visitor, err := a.recipient(m)
	if err != nil {
		return adapters.Receipt{}, err
	}
	if m.Kind == core.KindEvent {
		return a.sendEvent(ctx, visitor, m)
	}
	e := entry{
		ID: m.ID, From: fromAgent, Agent: core.Truncate(m.Meta[event.MetaAgentName], 128),
		Avatar: avatarURL(m.Meta[event.MetaAgentAvatar]), Auto: core.Truncate(m.Meta[event.MetaAuto], 32), Text: m.Text,
		Attachments: replyAttachments(m.Attachments), At: m.ReceivedAt.UTC(),
		Conversation: m.ConversationID, Contact: m.ContactID,
	}
	if e.At.IsZero() {
		e.At = a.now().UTC()
	}
	if isBlank(e.Text) && len(e.Attachments) == 0 {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("%s: send %s: no text or http(s) attachment to show", a.name, m.ID))
	}
	stored, _, err := a.hist.append(ctx, visitor, "m:"+m.ID, &e)
	if err != nil {
		return adapters.Receipt{}, fmt.Errorf("%s: send %s: %w", a.name, m.ID, err)
	}
	// A redelivered reply is sent to the sessions again: clients drop a seq
	// they already have, and one that missed it gets it.
	rc := adapters.Receipt{ProviderID: visitor + ":" + strconv.FormatUint(stored.Seq, 10), Status: "queued", At: a.now().UTC()}
	f := stored.frame()
	if a.hub.send(ctx, visitor, outFrame{seq: stored.Seq, data: encodeFrame(f)}) {
		rc.Status = "delivered"
	}
	a.log.Debug("reply", "msg_id", m.ID, "conversation", m.ConversationID, "seq", stored.Seq, "status", rc.Status)
	return rc, nil
}

// recipient returns the visitor id of m.To.
func (a *Adapter) recipient(m *core.Message) (string, error) {
	if m.To.Channel() != a.name {
		return "", adapters.Permanent(fmt.Errorf("%s: send %s: recipient is not a %s identity", a.name, m.ID, a.name))
	}
	v := m.To.Address()
	if !validVisitorID(v) {
		return "", adapters.Permanent(fmt.Errorf("%s: send %s: recipient is not a visitor of this channel", a.name, m.ID))
	}
	return v, nil
}

// sendEvent shows the visitor that an agent types or has read.
func (a *Adapter) sendEvent(ctx context.Context, visitor string, m *core.Message) (adapters.Receipt, error) {
	var data []byte
	switch m.Type {
	case event.Typing:
		data = encodeFrame(typingFrame{Type: typeTyping, From: fromAgent})
	case event.Read:
		upTo, _ := strconv.ParseUint(m.Meta[event.MetaUpTo], 10, 64)
		if upTo == 0 && m.ReplyTo != "" {
			if e, ok, err := a.hist.lookup(ctx, visitor, "m:"+m.ReplyTo); err != nil {
				return adapters.Receipt{}, fmt.Errorf("%s: send %s: %w", a.name, m.ID, err)
			} else if ok {
				upTo = e.Seq
			}
		}
		if upTo == 0 {
			return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("%s: send %s: read event without a known reply_to or meta up_to", a.name, m.ID))
		}
		data = encodeFrame(readFrame{Type: typeRead, From: fromAgent, UpTo: upTo})
	default:
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("%s: send %s: event type %q is not shown to visitors", a.name, m.ID, m.Type))
	}
	rc := adapters.Receipt{Status: "queued", At: a.now().UTC()}
	if a.hub.send(ctx, visitor, outFrame{data: data}) {
		rc.Status = "delivered"
	}
	return rc, nil
}

// avatarURL is u when a browser may load it as the agent's picture: an
// absolute http(s) URL of reasonable length; else "".
func avatarURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || len(u) > 2048 || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil {
		return ""
	}
	return p.String()
}

// replyAttachments keeps the attachments of a reply a browser can fetch.
func replyAttachments(as []core.Attachment) []attachmentFrame {
	var out []attachmentFrame
	for _, at := range as {
		u, err := url.Parse(at.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		out = append(out, attachmentFrame{Name: at.Name, ContentType: at.ContentType, Size: at.Size, URL: at.URL})
	}
	return out
}

// baseURL is the absolute URL of this server as the client reached it.
func (a *Adapter) baseURL(r *http.Request) string {
	if a.publicURL != "" {
		return a.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := r.Header.Get("X-Forwarded-Proto"); p == "https" && a.fromProxy(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// fromProxy reports whether the request's peer is a trusted proxy.
func (a *Adapter) fromProxy(r *http.Request) bool {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	ad, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && isTrusted(ad.Unmap(), a.proxies)
}

// Interface guards.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Readier = (*Adapter)(nil)
)
