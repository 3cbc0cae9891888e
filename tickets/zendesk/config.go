// Package zendesk is the wire protocol of omnigate's Zendesk bridge: a client of
// the Zendesk Support Tickets API (create, update, comment, find by external id)
// with basic authentication by API token, the verification of Zendesk webhook
// signatures, and the mapping between Zendesk's ticket statuses and omnigate's.
// It knows nothing of omnigate's tickets: package tickets translates.
//
// Wire formats, as Zendesk documents them:
//
//	POST /api/v2/tickets.json          {"ticket": {...}}  -> 201 {"ticket": {"id": 35436, ...}}
//	PUT  /api/v2/tickets/{id}.json     {"ticket": {"status": "solved", "comment": {"body": "...", "public": false}}}
//	GET  /api/v2/tickets.json?external_id=omnigate-1042  -> {"tickets": [...]}
//	Authorization: Basic base64("{email}/token:{api_token}")
//
// Webhooks from Zendesk (a trigger's "Notify webhook" action) carry
// X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(signing secret,
// X-Zendesk-Webhook-Signature-Timestamp + raw body)).
package zendesk

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/config"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one API call.
	DefaultTimeout = 15 * time.Second
	// DefaultTolerance is how far a webhook's signed timestamp may be from the clock.
	DefaultTolerance = 5 * time.Minute
	// DefaultExternalIDPrefix is put before the ticket number in external_id.
	DefaultExternalIDPrefix = "omnigate-"
)

// Config configures the Zendesk bridge (tickets.zendesk).
type Config struct {
	Subdomain        string           `yaml:"subdomain" doc:"Your Zendesk subdomain: acme for https://acme.zendesk.com. Empty (and no base_url) turns the Zendesk bridge off."`
	BaseURL          string           `yaml:"base_url" doc:"Base URL of the Zendesk API, instead of https://<subdomain>.zendesk.com: a host-mapped domain or a test double."`
	Email            string           `yaml:"email" doc:"Email address of the Zendesk agent the API token belongs to; tickets are created in their name."`
	APIToken         config.Secret    `yaml:"api_token" doc:"Zendesk API token (Admin Center, Apps and integrations, Zendesk API). Write it as ${env:NAME} or ${file:/path}."`
	WebhookSecret    config.Secret    `yaml:"webhook_secret" doc:"Signing secret of the Zendesk webhook that reports status changes to POST /api/tickets/hooks/zendesk. Without it, status changes made in Zendesk are refused (401)."`
	WebhookTolerance time.Duration    `yaml:"webhook_tolerance" doc:"How far X-Zendesk-Webhook-Signature-Timestamp may be from this server's clock; other requests are refused as replays."`
	PublicComments   bool             `yaml:"public_comments" doc:"Create comments that are public in omnigate as public Zendesk comments (Zendesk then emails the requester). Off: every comment is an internal note."`
	CustomFields     map[string]int64 `yaml:"custom_fields" doc:"Ticket custom fields to copy, omnigate field name -> Zendesk ticket field id, e.g. {order_id: 360012345678}."`
	ExternalIDPrefix string           `yaml:"external_id_prefix" doc:"Prefix of the external_id set on Zendesk tickets: <prefix><ticket number>. It links both ways, so keep it stable."`
	Timeout          time.Duration    `yaml:"timeout" doc:"Timeout of one Zendesk API call."`
}

var subdomainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// SetDefaults fills timeout, webhook_tolerance and external_id_prefix, and trims
// a trailing "/" from base_url.
func (c *Config) SetDefaults() {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.Subdomain = strings.ToLower(strings.TrimSpace(c.Subdomain))
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.WebhookTolerance == 0 {
		c.WebhookTolerance = DefaultTolerance
	}
	if c.ExternalIDPrefix == "" {
		c.ExternalIDPrefix = DefaultExternalIDPrefix
	}
}

// Enabled reports whether the bridge is configured (subdomain or base_url set).
func (c *Config) Enabled() bool { return c.Subdomain != "" || c.BaseURL != "" }

// APIBase is the base URL API paths are appended to.
func (c *Config) APIBase() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	return "https://" + c.Subdomain + ".zendesk.com"
}

// Validate reports every problem of the section. An empty section is valid: the
// bridge is off.
func (c *Config) Validate() error {
	var p config.Problems
	if c.Subdomain != "" && !subdomainPattern.MatchString(c.Subdomain) {
		p.Add("subdomain", "must be the subdomain only, like acme for https://acme.zendesk.com; got %q", c.Subdomain)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("base_url", "must be an absolute http:// or https:// URL")
		}
	}
	if c.Enabled() {
		if c.Email == "" || !strings.Contains(c.Email, "@") {
			p.Add("email", "required: the email address of the agent the API token belongs to")
		}
		if c.APIToken == "" {
			p.Add("api_token", "required when the Zendesk bridge is on")
		}
	}
	for name, id := range c.CustomFields {
		if name == "" {
			p.Add("custom_fields", "empty field name")
		}
		if id <= 0 {
			p.Add("custom_fields."+name, "must be a Zendesk ticket field id (a positive number), got %d", id)
		}
	}
	if c.WebhookTolerance <= 0 {
		p.Add("webhook_tolerance", "must be a positive duration, got %s", c.WebhookTolerance)
	}
	if c.Timeout <= 0 {
		p.Add("timeout", "must be a positive duration, got %s", c.Timeout)
	}
	return p.Err()
}
