package sms

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/omnigate/omnigate/config"
)

// Defaults of Config.
const (
	// DefaultAPIBaseURL is Twilio's REST API.
	DefaultAPIBaseURL = "https://api.twilio.com"
	// DefaultRegion is the region of numbers written without a country code.
	DefaultRegion = "US"
	// DefaultTimeout bounds one API call.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxMediaBytes is the largest file FetchMedia downloads: WhatsApp's
	// limit for media, above MMS's 5 MB.
	DefaultMaxMediaBytes = 16 << 20
)

// Config configures the sms channel (channels.sms) and is the shared part of
// the whatsapp channel's WhatsAppConfig (channels.whatsapp).
type Config struct {
	AccountSID          string        `yaml:"account_sid" doc:"Twilio Account SID, AC followed by 32 hex digits (Twilio console, Account info)."`
	AuthToken           config.Secret `yaml:"auth_token" doc:"Twilio Auth Token: authenticates API calls and checks the X-Twilio-Signature of every webhook. Write it as ${env:NAME} or ${file:/path}."`
	From                string        `yaml:"from" doc:"Sender: your Twilio number in E.164 (+15551234567); for sms also a short code or an alphanumeric sender ID. Required unless messaging_service_sid is set."`
	MessagingServiceSID string        `yaml:"messaging_service_sid" doc:"Messaging Service SID (MG followed by 32 hex digits) to send through the service's sender pool; with from set too, from is the sender within the pool."`
	PublicURL           string        `yaml:"public_url" doc:"Base URL at which Twilio reaches omnigate, e.g. https://support.example.com; overrides http.public_url. Signatures are checked against this URL plus the request path, so behind a proxy it is the URL as Twilio calls it, not the Host header the proxy forwards."`
	SignatureURL        string        `yaml:"signature_url" doc:"The exact URL Twilio calls for incoming messages, as written in the Twilio console (query included), when a proxy in front of omnigate rewrites the path, e.g. https://hooks.example.com/twilio/sms-in forwarded to /channels/<name>/webhook. Signatures of incoming messages are checked against it instead of public_url plus the path. Status callbacks still go to public_url/channels/<name>/status, which the proxy must pass unchanged."`
	StatusCallback      *bool         `yaml:"status_callback" doc:"Ask Twilio for delivery status callbacks at <public_url>/channels/<name>/status on every message sent. Turn off when the Messaging Service already has that Status Callback URL."`
	APIBaseURL          string        `yaml:"api_base_url" doc:"Base URL of Twilio's REST API; change it for a regional edge (https://api.dublin.ie1.twilio.com) or a test double."`
	DefaultRegion       string        `yaml:"default_region" doc:"ISO 3166 region (US, GB, DE, ...) of phone numbers written without a country code."`
	Timeout             time.Duration `yaml:"timeout" doc:"Timeout of one Twilio API call."`
	MediaHosts          []string      `yaml:"media_hosts" doc:"Hosts FetchMedia may download from besides Twilio's own (api.twilio.com, *.twilio.com, *.twiliocdn.com and the api_base_url host); *.example.com allows subdomains. Credentials are never sent to these."`
	MaxMediaBytes       int64         `yaml:"max_media_bytes" doc:"Largest media file FetchMedia downloads, in bytes."`
	HelpReply           string        `yaml:"help_reply" doc:"Reply to HELP and INFO, answered in the webhook's TwiML. Leave empty when Twilio's default or Advanced Opt-Out replies answer HELP (the default for long codes and toll-free numbers); set it for short codes, where carriers require an answer naming the program and how to get help."`
}

// WhatsAppConfig configures the whatsapp channel (channels.whatsapp): the keys
// of Config, plus the template sent outside WhatsApp's 24-hour window.
type WhatsAppConfig struct {
	Config `yaml:",inline"`
	// Template is sent instead of a free-form reply outside the window.
	Template Template `yaml:"template" doc:"Approved template sent when a reply is due more than 24 hours after the customer's last message, when WhatsApp allows no free-form message."`
}

// Template is an approved WhatsApp template of Twilio's Content API.
type Template struct {
	ContentSID string            `yaml:"content_sid" doc:"Content SID (HX followed by 32 hex digits) of an approved WhatsApp template. Empty: replies outside the 24-hour window fail with a reason the agent sees."`
	Variables  map[string]string `yaml:"variables" doc:"Template variables by number, e.g. {\"1\": \"{{text}}\"}; {{text}} is replaced by the agent's reply, so a template with a variable carries the reply itself. Without it only the template's fixed text reaches the customer."`
}

// SetDefaults fills api_base_url, default_region, timeout, max_media_bytes and
// status_callback (true), and trims a trailing "/" from the URLs.
func (c *Config) SetDefaults() {
	if c.APIBaseURL == "" {
		c.APIBaseURL = DefaultAPIBaseURL
	}
	c.APIBaseURL = strings.TrimRight(c.APIBaseURL, "/")
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.SignatureURL = strings.TrimSpace(c.SignatureURL)
	if c.DefaultRegion == "" {
		c.DefaultRegion = DefaultRegion
	}
	c.DefaultRegion = strings.ToUpper(c.DefaultRegion)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxMediaBytes == 0 {
		c.MaxMediaBytes = DefaultMaxMediaBytes
	}
	if c.StatusCallback == nil {
		on := true
		c.StatusCallback = &on
	}
}

// SetDefaults fills Config's defaults.
func (c *WhatsAppConfig) SetDefaults() { c.Config.SetDefaults() }

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	contentSIDPattern = regexp.MustCompile(`^HX[0-9a-fA-F]{32}$`)
	shortCodePattern  = regexp.MustCompile(`^[0-9]{3,8}$`)
	// An alphanumeric sender ID: 1-11 letters, digits and spaces, at least one letter.
	senderIDPattern = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	hostPattern     = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$`)
)

// Validate reports every problem of an sms section.
func (c *Config) Validate() error { return c.validate("sms") }

// Validate reports every problem of a whatsapp section.
func (c *WhatsAppConfig) Validate() error {
	var p config.Problems
	p.Merge("", c.Config.validate("whatsapp"))
	if t := c.Template; t.ContentSID != "" && !contentSIDPattern.MatchString(t.ContentSID) {
		p.Add("template.content_sid", "must be HX followed by 32 hex digits")
	} else if t.ContentSID == "" && len(t.Variables) > 0 {
		p.Add("template.variables", "set without template.content_sid")
	}
	for k := range c.Template.Variables {
		if k == "" {
			p.Add("template.variables", "empty variable name")
		}
	}
	return p.Err()
}

func (c *Config) validate(channel string) error {
	var p config.Problems
	switch {
	case c.AccountSID == "":
		p.Add("account_sid", "required")
	case !accountSIDPattern.MatchString(c.AccountSID):
		p.Add("account_sid", "must be AC followed by 32 hex digits")
	}
	if c.AuthToken == "" {
		p.Add("auth_token", "required")
	}
	switch {
	case c.From == "" && c.MessagingServiceSID == "":
		p.Add("from", "required unless messaging_service_sid is set")
	case c.From != "":
		if _, err := parseSender(channel, c.From, c.DefaultRegion); err != nil {
			p.Add("from", "%v", err)
		}
	}
	if c.MessagingServiceSID != "" && !serviceSIDPattern.MatchString(c.MessagingServiceSID) {
		p.Add("messaging_service_sid", "must be MG followed by 32 hex digits")
	}
	if c.PublicURL != "" {
		checkBaseURL(&p, "public_url", c.PublicURL)
	}
	if c.SignatureURL != "" {
		checkSignatureURL(&p, "signature_url", c.SignatureURL)
	}
	checkBaseURL(&p, "api_base_url", c.APIBaseURL)
	if !phonenumbers.GetSupportedRegions()[c.DefaultRegion] {
		p.Add("default_region", "unknown region %q; want an ISO 3166 code like US or GB", c.DefaultRegion)
	}
	if c.Timeout <= 0 {
		p.Add("timeout", "must be a positive duration, got %s", c.Timeout)
	}
	for i, h := range c.MediaHosts {
		if !hostPattern.MatchString(h) {
			p.Add(fmt.Sprintf("media_hosts[%d]", i), "must be a lower-case host name like media.example.com or *.example.com, got %q", h)
		}
	}
	if c.MaxMediaBytes <= 0 {
		p.Add("max_media_bytes", "must be positive, got %d", c.MaxMediaBytes)
	}
	if n := utf8.RuneCountInString(c.HelpReply); n > maxBodyChars {
		p.Add("help_reply", "%d characters, Twilio sends at most %d", n, maxBodyChars)
	}
	return p.Err()
}

// checkBaseURL reports a URL that is not an absolute http(s) URL without
// credentials, query or fragment.
func checkBaseURL(p *config.Problems, path, raw string) { checkHTTPURL(p, path, raw, false) }

// checkSignatureURL reports a signature_url that is not an absolute http(s)
// URL Twilio could call: a query is allowed (Twilio signs it), credentials
// and a fragment are not.
func checkSignatureURL(p *config.Problems, path, raw string) { checkHTTPURL(p, path, raw, true) }

// checkHTTPURL reports raw unless it is an absolute http(s) URL without
// credentials or fragment, and, unless query is set, without a query.
func checkHTTPURL(p *config.Problems, path, raw string, query bool) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.Add(path, "must be an absolute http:// or https:// URL, got %q", raw)
	case u.User != nil:
		p.Add(path, "must not hold credentials")
	case !query && (u.RawQuery != "" || u.Fragment != ""):
		p.Add(path, "must not have a query or fragment")
	case query && (u.Fragment != "" || strings.HasSuffix(raw, "#")):
		p.Add(path, "must not have a fragment: Twilio does not send it, so it cannot be signed")
	}
}
