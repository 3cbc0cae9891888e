// Package config is omnigate's configuration: one YAML file plus OMNIGATE_*
// environment overrides, defaults, and validation that reports every problem with
// its file, line and column.
//
// Each section is a typed struct with yaml tags, a doc tag per key (the key's
// documentation, which Keys and Example turn into listings and the annotated
// example, so docs cannot drift from code), SetDefaults and Validate. Channel
// adapters keep their own sections under channels.<name>; the adapter registry
// decodes them with DecodeSection, so this package imports nothing of omnigate's.
//
// Every key can be overridden from the environment; see EnvName for the naming rule.
package config

import (
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"go.yaml.in/yaml/v3"
)

// Config is the whole omnigate configuration. Build it with Load, Parse or Default.
type Config struct {
	HTTP         HTTP                 `yaml:"http" doc:"HTTP server: webhooks, the web chat widget, health checks."`
	DataDir      string               `yaml:"data_dir" doc:"Directory for local state: the embedded NATS server's JetStream store and other files."`
	Log          Log                  `yaml:"log" doc:"Logging."`
	NATS         NATS                 `yaml:"nats" doc:"NATS JetStream, the message bus."`
	Store        Store                `yaml:"store" doc:"State store: contacts, identities, conversations."`
	Conversation Conversation         `yaml:"conversation" doc:"Conversations."`
	Channels     map[string]yaml.Node `yaml:"channels" doc:"Channel adapters, one section per adapter name (sms, email, telegram, slack, ...); each adapter documents its keys, see 'omnigate adapters'."`
	Routing      yaml.Node            `yaml:"routing" doc:"Routing rules, queues, business hours, SLA and escalation; see docs/routing.md."`
	Tickets      yaml.Node            `yaml:"tickets" doc:"Tickets: numbering, notifications, tracker bridges and the admin API; see docs/tickets.md."`
	Insight      yaml.Node            `yaml:"insight" doc:"Text models: suggested replies and canned answers from a knowledge base; see docs/models.md."`
	Analytics    yaml.Node            `yaml:"analytics" doc:"Service-quality metrics: reports, the supervisor dashboard and the service metrics on /metrics; see docs/metrics.md."`
	Telemetry    Telemetry            `yaml:"telemetry" doc:"Tracing (OpenTelemetry); /metrics is always on."`
	Language     Language             `yaml:"language" doc:"Detecting the language customers write in, for routing rules, auto-replies and ticket notices; see docs/routing.md."`
}

// SetDefaults fills every unset key, including the defaults derived from other keys
// (nats.embedded.store_dir from data_dir, store.kv.replicas from
// nats.streams.replicas).
func (c *Config) SetDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.NATS.Embedded.StoreDir == "" {
		c.NATS.Embedded.StoreDir = filepath.Join(c.DataDir, "nats")
	}
	c.HTTP.SetDefaults()
	c.Log.SetDefaults()
	c.NATS.SetDefaults()
	if c.Store.KV.Replicas == 0 {
		c.Store.KV.Replicas = c.NATS.Streams.Replicas
		c.Store.KV.derived = true
	}
	c.Store.SetDefaults()
	c.Conversation.SetDefaults()
	c.Telemetry.SetDefaults()
	c.Language.SetDefaults()
}

// channelName is the form of an adapter name.
var channelName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate checks every section. Channel sections are checked only for their names
// here; DecodeSection checks their contents.
func (c *Config) Validate() error {
	var p Problems
	p.Merge("http", c.HTTP.Validate())
	if c.DataDir == "" {
		p.Add("data_dir", "required")
	}
	p.Merge("log", c.Log.Validate())
	p.Merge("nats", c.NATS.Validate())
	p.Merge("store", c.Store.Validate())
	p.Merge("conversation", c.Conversation.Validate())
	p.Merge("telemetry", c.Telemetry.Validate())
	p.Merge("language", c.Language.Validate())
	for _, name := range slices.Sorted(maps.Keys(c.Channels)) {
		if !channelName.MatchString(name) {
			p.Add("channels."+name, "adapter names are lower-case snake_case, like sms or my_bot")
		}
	}
	return p.Err()
}

// HTTP configures the HTTP server.
type HTTP struct {
	Addr            string        `yaml:"addr" doc:"Address to listen on, host:port; an empty host listens on all interfaces."`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" doc:"How long shutdown waits for in-flight requests."`
	PublicURL       string        `yaml:"public_url" doc:"Base URL at which this server is reachable from outside, used in links and webhook URLs, e.g. https://support.example.com. Optional."`
	// The limits below keep a slow or hostile client from holding the server:
	// see docs/operations.md.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" doc:"How long a client may take to send a request's line and headers."`
	BodyTimeout       time.Duration `yaml:"body_timeout" doc:"How long a client may take to send a request's body once its headers are in; past it the request gets 408 and the connection is closed. Requests without a body (the web chat's WebSocket and event stream) have no such limit."`
	IdleTimeout       time.Duration `yaml:"idle_timeout" doc:"How long a kept-alive connection may wait for its next request."`
	MaxHeaderBytes    int           `yaml:"max_header_bytes" doc:"Largest request line and headers, in bytes; larger ones get 431."`
	MaxConnsPerClient int           `yaml:"max_conns_per_client" doc:"Connections one client address may hold open at once; more are closed as soon as they are accepted. Behind a proxy or load balancer every connection comes from its address: allow for its pool, or set -1 for no cap."`
	// Auth of the admin and integrator APIs and of the links omnigate signs:
	// see docs/api.md.
	AdminToken Secret        `yaml:"admin_token" doc:"Bearer token of the integrator API (/api/v1) and the other admin endpoints: Authorization: Bearer <token>. Also the tickets API's token when tickets.admin_token is unset. Empty turns them off (every request gets 401). Write it as ${env:NAME} or ${file:/path}."`
	LinkSecret Secret        `yaml:"link_secret" doc:"Key that signs the links omnigate hands out (the Slack card's transcript page). Empty: a random key omnigate makes once and keeps in the store, shared by every replica. Changing it invalidates every link given out."`
	LinkTTL    time.Duration `yaml:"link_ttl" doc:"How long a signed link (a transcript page) stays valid after it was made."`
}

// SetDefaults sets addr ":8080", shutdown_timeout 15s, read_header_timeout 10s,
// body_timeout 60s, idle_timeout 2m, max_header_bytes 64 KiB and
// max_conns_per_client 128, link_ttl 7 days, and trims a trailing "/" from public_url so links
// can be built by appending "/path".
func (h *HTTP) SetDefaults() {
	if h.Addr == "" {
		h.Addr = ":8080"
	}
	if h.ShutdownTimeout == 0 {
		h.ShutdownTimeout = 15 * time.Second
	}
	if h.ReadHeaderTimeout == 0 {
		h.ReadHeaderTimeout = 10 * time.Second
	}
	if h.BodyTimeout == 0 {
		// Twilio, Slack and Telegram send a webhook's body at once; a visitor's
		// 10 MB upload needs about 1.4 Mbit/s to make it.
		h.BodyTimeout = 60 * time.Second
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = 2 * time.Minute
	}
	if h.MaxHeaderBytes == 0 {
		h.MaxHeaderBytes = 64 << 10
	}
	if h.MaxConnsPerClient == 0 {
		h.MaxConnsPerClient = 128
	}
	if h.LinkTTL == 0 {
		h.LinkTTL = 7 * 24 * time.Hour
	}
	h.PublicURL = strings.TrimRight(h.PublicURL, "/")
}

// Validate checks the address, timeouts, limits and URL.
func (h *HTTP) Validate() error {
	var p Problems
	checkHostPort(&p, "addr", h.Addr)
	checkPositive(&p, "shutdown_timeout", h.ShutdownTimeout)
	checkPositive(&p, "read_header_timeout", h.ReadHeaderTimeout)
	checkPositive(&p, "body_timeout", h.BodyTimeout)
	checkPositive(&p, "idle_timeout", h.IdleTimeout)
	checkRange(&p, "max_header_bytes", h.MaxHeaderBytes, 4<<10, 16<<20)
	checkPositive(&p, "link_ttl", h.LinkTTL)
	if h.MaxConnsPerClient < -1 {
		p.Add("max_conns_per_client", "must be -1 (no cap) or a positive number, got %d", h.MaxConnsPerClient)
	}
	if h.PublicURL != "" {
		u, err := url.Parse(h.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("public_url", "must be an absolute http:// or https:// URL, got %q", h.PublicURL)
		} else if u.RawQuery != "" || u.Fragment != "" {
			p.Add("public_url", "must not have a query or fragment")
		}
	}
	return p.Err()
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level" doc:"Minimum level: debug, info, warn or error."`
	Format string `yaml:"format" doc:"Output format: text or json."`
}

// SetDefaults sets level info and format text.
func (l *Log) SetDefaults() {
	if l.Level == "" {
		l.Level = "info"
	}
	if l.Format == "" {
		l.Format = "text"
	}
}

// Validate checks level and format.
func (l *Log) Validate() error {
	var p Problems
	checkEnum(&p, "level", l.Level, "debug", "info", "warn", "error")
	checkEnum(&p, "format", l.Format, "text", "json")
	return p.Err()
}

// Conversation configures conversation lifecycle.
type Conversation struct {
	ReopenWindow  time.Duration `yaml:"reopen_window" doc:"A customer message within this time after a conversation closed reopens it; later ones start a new conversation."`
	ReplyFallback []string      `yaml:"reply_fallback" doc:"Channels to try, in order, when a reply's channel cannot reach the customer (blocked, opted out, bounced, WhatsApp window closed), e.g. [whatsapp, sms, email]. Empty: the contact's other identities, in the order they were added."`
}

// SetDefaults sets reopen_window 24h; an empty reply_fallback is none.
func (c *Conversation) SetDefaults() {
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 24 * time.Hour
	}
	if len(c.ReplyFallback) == 0 {
		c.ReplyFallback = nil // [] and none mean the same
	}
}

// Validate checks reopen_window and the reply_fallback channel names.
func (c *Conversation) Validate() error {
	var p Problems
	checkPositive(&p, "reopen_window", c.ReopenWindow)
	for i, ch := range c.ReplyFallback {
		if !core.ValidChannel(ch) {
			p.Add("reply_fallback["+strconv.Itoa(i)+"]", "%q is not a channel name (lower-case letters, digits, '_' or '-')", ch)
		}
	}
	return p.Err()
}

// Language configures the language detector.
type Language struct {
	Detect        []string `yaml:"detect" doc:"Languages the detector chooses among, as ISO 639-1 codes, at least two; each adds under 1 MB of memory. A message whose channel gives its language is not detected."`
	MinConfidence float64  `yaml:"min_confidence" doc:"How far ahead of the next language, from 0 to 1, the likeliest must be for a message to count as written in it; below, its language is unknown: rules on languages do not match and replies use default_language. 0 selects the default."`
}

// DefaultDetect are the languages detected unless language.detect says
// otherwise (core/lang.DefaultLanguages, which a test keeps equal).
var DefaultDetect = []string{"en", "fr", "es", "de", "pt", "it", "nl", "ru", "ja", "ko", "zh"}

// SetDefaults sets detect to DefaultDetect and min_confidence to 0.2.
func (l *Language) SetDefaults() {
	if len(l.Detect) == 0 {
		l.Detect = slices.Clone(DefaultDetect)
	}
	if l.MinConfidence == 0 {
		l.MinConfidence = 0.2
	}
}

// isoCode is the form of an ISO 639-1 code; which codes the detector knows is
// checked where it is built (this package does not link its models).
var isoCode = regexp.MustCompile(`^[a-z]{2}$`)

// Validate checks the form of the codes and the range of min_confidence.
func (l *Language) Validate() error {
	var p Problems
	for i, c := range l.Detect {
		if !isoCode.MatchString(c) {
			p.Add("detect["+strconv.Itoa(i)+"]", "want a two-letter ISO 639-1 code in lower case like fr, got %q", c)
		}
	}
	if len(l.Detect) < 2 {
		p.Add("detect", "name at least two languages to choose among")
	}
	if l.MinConfidence < 0 || l.MinConfidence >= 1 {
		p.Add("min_confidence", "must be from 0 up to (not including) 1, got %v", l.MinConfidence)
	}
	return p.Err()
}

// checkEnum reports v unless it is one of allowed.
func checkEnum(p *Problems, path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.Add(path, "must be one of %s; got %q", strings.Join(allowed, ", "), v)
	}
}

// checkPositive reports a duration that is not above zero.
func checkPositive(p *Problems, path string, d time.Duration) {
	if d <= 0 {
		p.Add(path, "must be a positive duration, got %s", d)
	}
}

// checkRange reports n outside [lo, hi].
func checkRange(p *Problems, path string, n, lo, hi int) {
	if n < lo || n > hi {
		p.Add(path, "must be between %d and %d, got %d", lo, hi, n)
	}
}

// checkHostPort reports an address that is not host:port with a numeric port.
func checkHostPort(p *Problems, path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.Add(path, "must be host:port, like :8080 or 127.0.0.1:8080; got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.Add(path, "port must be a number from 0 to 65535; got %q", port)
	}
}
