package web

import (
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/config"
)

// Config is the section channels.web (or channels.app) of omnigate.yaml. Every
// key has a default: with no section at all the channel serves one site, "demo",
// that only this server's own pages may embed.
type Config struct {
	Sites            map[string]Site `yaml:"sites" doc:"Sites that embed the chat, by name (the widget's data-site, the hello frame's site). Empty: one site \"demo\" that only pages of this server may embed, with anonymous visitors only."`
	TokenSecret      config.Secret   `yaml:"token_secret" doc:"Key that signs visitor tokens (HMAC-SHA256), at least 32 characters, the same on every replica. Empty: a random key generated once and kept in the store."`
	TokenTTL         time.Duration   `yaml:"token_ttl" doc:"How long a visitor token stays valid; every connection renews it."`
	IdentityMaxAge   time.Duration   `yaml:"identity_max_age" doc:"How old a site's signed identity claim (its ts) may be when the widget presents it."`
	HistoryTTL       time.Duration   `yaml:"history_ttl" doc:"How long messages and uploads are kept for history and resume."`
	HistoryOnConnect int             `yaml:"history_on_connect" doc:"How many of the latest messages a new connection gets in its welcome."`
	Offline          bool            `yaml:"offline" doc:"Tell visitors that no agent is available, whatever routing says, so the widget offers its offline form. A callback set with (*web.Adapter).SetAgentsOnline takes precedence."`
	Widget           Widget          `yaml:"widget"`
	Uploads          Uploads         `yaml:"uploads"`
	RateLimit        RateLimit       `yaml:"rate_limit"`
	TrustedProxies   []string        `yaml:"trusted_proxies" doc:"Reverse proxies (CIDRs, e.g. 10.0.0.0/8) whose X-Forwarded-For and X-Forwarded-Proto are believed, for per-IP limits and upload URLs."`
}

// Site is one website (or app) that embeds the chat.
type Site struct {
	Secret   config.Secret `yaml:"secret" doc:"Key the site's backend signs identity claims with (HMAC-SHA256, docs/web-protocol.md), at least 16 characters. Empty: the site has anonymous visitors only."`
	Origins  []string      `yaml:"origins" doc:"Browser origins allowed to use the chat, e.g. https://www.example.com; \"*\" allows any. Pages of this server are always allowed; apps send no origin."`
	Accounts string        `yaml:"accounts" doc:"Namespace of the site's user ids: a verified user is user:<accounts>:<user_id>, so sites and apps sharing one account system share one value. Default: the site name."`
	Queue    string        `yaml:"queue" doc:"Routing queue whose availability the site's widget shows (online when one of its agents is available within its business hours). Default: routing's default queue."`
}

// Widget is how the chat widget looks and what it asks, for every site of
// the channel; a page's data- attributes override the theme.
type Widget struct {
	Title        string            `yaml:"title" doc:"Title of the chat panel. Default: \"Chat with us\", in the page's language."`
	Greeting     map[string]string `yaml:"greeting" doc:"First words of the panel, by language (en, zh, ...; the page's language, else en), e.g. {en: \"Hi! How can we help?\"}. Default: none."`
	Color        string            `yaml:"color" doc:"Main colour, as #rgb or #rrggbb."`
	Position     string            `yaml:"position" doc:"Corner of the launcher: right or left."`
	LauncherText string            `yaml:"launcher_text" doc:"Text on the launcher button beside its icon. Default: the icon alone."`
	LogoURL      string            `yaml:"logo_url" doc:"Logo in the panel's header: an https URL, or a path on this server (the page's CSP must allow it as img-src)."`
	Prechat      Prechat           `yaml:"prechat"`
	OfflineForm  string            `yaml:"offline_form" doc:"What a message left while nobody is available becomes: email (a conversation with the visitor's typed email address, answered by email; needs channels.email) or chat (a web conversation that keeps the address in meta contact_email, answered in the widget)."`
}

// Prechat is the form a visitor fills before the first message.
type Prechat struct {
	Enabled bool    `yaml:"enabled" doc:"Ask for name and email (and fields) before the first message; the desk sees them as meta name, contact_email and prechat."`
	Fields  []Field `yaml:"fields" doc:"Further fields of the form, e.g. [{name: order, label: Order number}]."`
}

// Field is one further field of the pre-chat form.
type Field struct {
	Name     string `yaml:"name" json:"name" doc:"Key of the value in meta prechat: lower case letters, digits and _."`
	Label    string `yaml:"label" json:"label,omitempty" doc:"What the form shows; default the name."`
	Required bool   `yaml:"required" json:"required,omitempty" doc:"The form is not sent without it."`
}

// What an offline form's message becomes (Widget.OfflineForm).
const (
	// OfflineEmail: a conversation of the typed email address, answered by
	// email.
	OfflineEmail = "email"
	// OfflineChat: a web conversation with the address in meta contact_email.
	OfflineChat = "chat"
)

// Uploads limits what visitors may attach.
type Uploads struct {
	MaxBytes int64    `yaml:"max_bytes" doc:"Largest attachment a visitor may upload, in bytes."`
	Types    []string `yaml:"types" doc:"Content types visitors may upload, as sniffed from the bytes (what the client claims is ignored)."`
}

// RateLimit bounds what one address or one visitor may do.
type RateLimit struct {
	PerIP           float64 `yaml:"per_ip" doc:"HTTP requests and connection attempts per second from one IP address, sustained."`
	PerIPBurst      int     `yaml:"per_ip_burst" doc:"HTTP requests and connection attempts one IP address may make at once."`
	PerVisitor      float64 `yaml:"per_visitor" doc:"Messages and uploads per second from one visitor, sustained."`
	PerVisitorBurst int     `yaml:"per_visitor_burst" doc:"Messages and uploads one visitor may send at once."`
}

// Defaults.
const (
	defaultSite             = "demo"
	defaultTokenTTL         = 90 * 24 * time.Hour
	defaultIdentityMaxAge   = time.Hour
	defaultHistoryTTL       = 30 * 24 * time.Hour
	defaultHistoryOnConnect = 50
	defaultMaxUploadBytes   = 10 << 20
)

// defaultUploadTypes are the content types visitors may upload by default:
// pictures, PDF and plain text. SVG and HTML are left out on purpose: they can
// carry script.
var defaultUploadTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}

// SetDefaults fills what the file left out.
func (c *Config) SetDefaults() {
	if c.TokenTTL == 0 {
		c.TokenTTL = defaultTokenTTL
	}
	if c.IdentityMaxAge == 0 {
		c.IdentityMaxAge = defaultIdentityMaxAge
	}
	if c.HistoryTTL == 0 {
		c.HistoryTTL = defaultHistoryTTL
	}
	if c.HistoryOnConnect == 0 {
		c.HistoryOnConnect = defaultHistoryOnConnect
	}
	if c.Uploads.MaxBytes == 0 {
		c.Uploads.MaxBytes = defaultMaxUploadBytes
	}
	if c.Uploads.Types == nil {
		c.Uploads.Types = append([]string(nil), defaultUploadTypes...)
	}
	if c.Widget.OfflineForm == "" {
		c.Widget.OfflineForm = OfflineEmail
	}
	if c.Widget.Position == "" {
		c.Widget.Position = "right"
	}
	r := &c.RateLimit
	if r.PerIP == 0 {
		r.PerIP = 5
	}
	if r.PerIPBurst == 0 {
		r.PerIPBurst = 40
	}
	if r.PerVisitor == 0 {
		r.PerVisitor = 1
	}
	if r.PerVisitorBurst == 0 {
		r.PerVisitorBurst = 10
	}
}

// siteNameRE is what a site name may look like: it travels in tokens, frames
// and store keys.
var siteNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var p config.Problems
	for name, s := range c.Sites {
		path := "sites." + name
		if !siteNameRE.MatchString(name) {
			p.Add(path, "site name must match %s", siteNameRE)
		}
		if s.Secret != "" && len(s.Secret.Value()) < 16 {
			p.Add(path+".secret", "at least 16 characters")
		}
		for i, o := range s.Origins {
			if _, err := parseOrigin(o); err != nil {
				p.Add(path+".origins["+itoa(i)+"]", "%v", err)
			}
		}
		if s.Queue != "" && !siteNameRE.MatchString(s.Queue) {
			p.Add(path+".queue", "not a queue name")
		}
		if s.Accounts != "" && (len(s.Accounts) > 64 || strings.ContainsAny(s.Accounts, ": \t\r\n")) {
			p.Add(path+".accounts", "at most 64 characters, no colon or white space")
		}
	}
	if c.TokenSecret != "" && len(c.TokenSecret.Value()) < 32 {
		p.Add("token_secret", "at least 32 characters")
	}
	if c.TokenTTL < time.Minute {
		p.Add("token_ttl", "at least 1m")
	}
	if c.IdentityMaxAge < time.Minute {
		p.Add("identity_max_age", "at least 1m")
	}
	if c.HistoryTTL < time.Hour {
		p.Add("history_ttl", "at least 1h")
	}
	if c.HistoryOnConnect < 0 || c.HistoryOnConnect > maxHistoryLimit {
		p.Add("history_on_connect", "between 0 and %d", maxHistoryLimit)
	}
	if c.Uploads.MaxBytes < 1024 || c.Uploads.MaxBytes > maxUploadBytes {
		p.Add("uploads.max_bytes", "between 1024 and %d", maxUploadBytes)
	}
	for i, t := range c.Uploads.Types {
		if !contentTypeRE.MatchString(t) {
			p.Add("uploads.types["+itoa(i)+"]", "%q is not a content type like image/png", t)
		} else if risky(t) {
			p.Add("uploads.types["+itoa(i)+"]", "%q can carry script and is never served to browsers", t)
		}
	}
	c.Widget.validate(&p)
	r := c.RateLimit
	if r.PerIP < 0 || r.PerVisitor < 0 {
		p.Add("rate_limit", "rates must be positive")
	}
	if r.PerIPBurst < 1 || r.PerVisitorBurst < 1 {
		p.Add("rate_limit", "bursts must be at least 1")
	}
	for i, s := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(s); err != nil {
			if _, err := netip.ParseAddr(s); err != nil {
				p.Add("trusted_proxies["+itoa(i)+"]", "%q is not an address or CIDR", s)
			}
		}
	}
	return p.Err()
}

// maxUploadBytes is the most uploads.max_bytes may be: uploads are kept in the
// store, in chunks.
const maxUploadBytes = 64 << 20

var contentTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$`)

// risky reports whether a content type can run script in a browser, and so is
// never accepted as an upload, whatever the config says.
func risky(ct string) bool {
	switch ct {
	case "text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml", "text/javascript", "application/javascript":
		return true
	}
	return false
}

// parseOrigin checks an allowed origin: "*" or scheme://host[:port] with no path.
func parseOrigin(s string) (string, error) {
	if s == "*" {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return "", &originError{s}
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

type originError struct{ s string }

func (e *originError) Error() string {
	return "origin " + quote(e.s) + " must be \"*\" or like https://www.example.com (scheme and host, no path)"
}

var (
	colorRE     = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	fieldNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// maxPrechatFields bounds the pre-chat form.
const maxPrechatFields = 8

func (w *Widget) validate(p *config.Problems) {
	if w.Color != "" && !colorRE.MatchString(w.Color) {
		p.Add("widget.color", "%q is not a colour like #2563eb", w.Color)
	}
	if w.Position != "right" && w.Position != "left" {
		p.Add("widget.position", "right or left, not %q", w.Position)
	}
	if len(w.Title) > 80 || len(w.LauncherText) > 40 {
		p.Add("widget", "title at most 80 bytes, launcher_text at most 40")
	}
	for lang, g := range w.Greeting {
		if !langRE.MatchString(lang) || len(g) > 500 {
			p.Add("widget.greeting."+lang, "a language code like en or zh, and at most 500 bytes")
		}
	}
	if u := w.LogoURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || !(pu.Scheme == "https" && pu.Host != "" || pu.Scheme == "" && pu.Host == "" && strings.HasPrefix(pu.Path, "/")) {
			p.Add("widget.logo_url", "an https URL or a path starting with /, not %q", u)
		}
	}
	if w.OfflineForm != OfflineEmail && w.OfflineForm != OfflineChat {
		p.Add("widget.offline_form", "email or chat, not %q", w.OfflineForm)
	}
	if len(w.Prechat.Fields) > maxPrechatFields {
		p.Add("widget.prechat.fields", "at most %d", maxPrechatFields)
	}
	seen := map[string]bool{"name": true, "email": true}
	for i, f := range w.Prechat.Fields {
		path := "widget.prechat.fields[" + itoa(i) + "]"
		if !fieldNameRE.MatchString(f.Name) {
			p.Add(path+".name", "lower case letters, digits and _, starting with a letter")
		} else if seen[f.Name] {
			p.Add(path+".name", "%q is already a field", f.Name)
		}
		seen[f.Name] = true
		if len(f.Label) > 80 {
			p.Add(path+".label", "at most 80 bytes")
		}
	}
}
