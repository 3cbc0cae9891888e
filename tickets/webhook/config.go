// Package webhook is the wire protocol of omnigate's generic ticket bridge: ticket
// events POSTed as signed JSON to a tracker's URL, and signed status updates the
// tracker POSTs back. It knows HTTP, JSON and HMAC, nothing of tickets: package
// tickets builds the payloads and applies the updates.
//
// # Signature
//
// Every request, both ways, carries
//
//	X-Omnigate-Timestamp: <unix seconds>
//	X-Omnigate-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// The receiver recomputes the HMAC over the raw body, compares in constant time,
// and refuses a timestamp further than the tolerance (default 5 minutes) from its
// clock, so a captured request cannot be replayed later.
package webhook

import (
	"net/url"
	"time"

	"github.com/omnigate/omnigate/config"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one delivery.
	DefaultTimeout = 10 * time.Second
	// DefaultTolerance is how far a signed timestamp may be from the clock.
	DefaultTolerance = 5 * time.Minute
)

// Config configures the webhook bridge (tickets.webhook).
type Config struct {
	URL           string        `yaml:"url" doc:"Where ticket events are POSTed as signed JSON, e.g. https://tracker.example.com/hooks/omnigate. Empty turns outbound delivery off."`
	Secret        config.Secret `yaml:"secret" doc:"HMAC-SHA256 key of the X-Omnigate-Signature header on every delivery; share it with the receiver. Write it as ${env:NAME} or ${file:/path}. Required with url."`
	InboundSecret config.Secret `yaml:"inbound_secret" doc:"Key the tracker signs its status updates with (POST /api/tickets/hooks/webhook). Default: secret. With neither set, inbound updates are refused."`
	Timeout       time.Duration `yaml:"timeout" doc:"Timeout of one delivery, response included."`
	Tolerance     time.Duration `yaml:"tolerance" doc:"How far the X-Omnigate-Timestamp of an inbound update may be from this server's clock; older or newer requests are refused as replays."`
}

// SetDefaults sets timeout, tolerance and inbound_secret (from secret).
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.InboundSecret == "" {
		c.InboundSecret = c.Secret
	}
}

// Validate reports every problem of the section.
func (c *Config) Validate() error {
	var p config.Problems
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("url", "must be an absolute http:// or https:// URL")
		}
		if c.Secret == "" {
			p.Add("secret", "required when url is set: receivers must be able to check where events come from")
		}
	}
	if c.Timeout <= 0 {
		p.Add("timeout", "must be a positive duration, got %s", c.Timeout)
	}
	if c.Tolerance <= 0 {
		p.Add("tolerance", "must be a positive duration, got %s", c.Tolerance)
	}
	return p.Err()
}

// Outbound reports whether events are delivered (url is set).
func (c *Config) Outbound() bool { return c.URL != "" }

// Inbound reports whether status updates from the tracker are accepted.
func (c *Config) Inbound() bool { return c.InboundSecret != "" }
