package telegram

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/omnigate/omnigate/config"
)

// Modes of receiving updates.
const (
	// ModeWebhook: Telegram POSTs each update to /channels/telegram/webhook.
	ModeWebhook = "webhook"
	// ModePolling: the adapter long-polls getUpdates.
	ModePolling = "polling"
)

// Config is the channels.telegram section.
type Config struct {
	Token         config.Secret `yaml:"token" doc:"Bot token from @BotFather, like 123456789:AAH...; write it as ${env:TELEGRAM_BOT_TOKEN} or ${file:/run/secrets/telegram}. Required."`
	Mode          string        `yaml:"mode" doc:"How updates arrive: webhook (Telegram calls https://<public_url>/channels/telegram/webhook; any number of replicas) or polling (getUpdates long polling; no public URL needed; with several replicas one polls at a time, and if it dies another takes over within about 12 s)."`
	WebhookSecret config.Secret `yaml:"webhook_secret" doc:"Secret Telegram sends in the X-Telegram-Bot-Api-Secret-Token header of every webhook call, 1-256 characters of A-Z, a-z, 0-9, _ and -. Required in webhook mode."`
	PublicURL     string        `yaml:"public_url" doc:"https:// base URL at which Telegram reaches this server; the webhook is registered at <public_url>/channels/telegram/webhook on start. Defaults to http.public_url; when both are empty the webhook is not registered (set it yourself)."`
	APIEndpoint   string        `yaml:"api_endpoint" doc:"Bot API method URL with two %s, for the token and the method; change it for a local Bot API server or a test fake."`
	AllowGroups   bool          `yaml:"allow_groups" doc:"Accept messages from groups and supergroups the bot is a member of; private chats only when false."`
	PollTimeout   time.Duration `yaml:"poll_timeout" doc:"Long-polling timeout of each getUpdates call in polling mode, whole seconds, 1s to 5m."`
}

// Defaults.
const (
	defaultPollTimeout = 30 * time.Second
	maxPollTimeout     = 5 * time.Minute
)

// SetDefaults sets mode polling, api_endpoint Telegram's, poll_timeout 30s and
// trims a trailing "/" from public_url.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModePolling
	}
	if c.APIEndpoint == "" {
		c.APIEndpoint = tgbotapi.APIEndpoint
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = defaultPollTimeout
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

var (
	// tokenRE is the shape of a bot token: the bot's numeric id, a colon, the secret.
	tokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,128}$`)
	// secretRE is Telegram's rule for setWebhook's secret_token.
	secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
)

// Validate reports every problem at once. Messages never repeat a secret.
func (c *Config) Validate() error {
	var p config.Problems
	switch {
	case c.Token == "":
		p.Add("token", "required: the bot token @BotFather gave you")
	case !tokenRE.MatchString(c.Token.Value()):
		p.Add("token", "is not a bot token: want <bot id>:<secret>, like 123456789:AAH... from @BotFather")
	}
	switch c.Mode {
	case ModeWebhook:
		switch {
		case c.WebhookSecret == "":
			p.Add("webhook_secret", "required in webhook mode: without it anyone could post forged updates")
		case !secretRE.MatchString(c.WebhookSecret.Value()):
			p.Add("webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
		}
	case ModePolling:
		if c.PollTimeout < time.Second || c.PollTimeout > maxPollTimeout {
			p.Add("poll_timeout", "must be between 1s and %s, got %s", maxPollTimeout, c.PollTimeout)
		} else if c.PollTimeout%time.Second != 0 {
			p.Add("poll_timeout", "must be whole seconds, got %s", c.PollTimeout)
		}
	default:
		p.Add("mode", "must be one of webhook, polling; got %q", c.Mode)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || u.Host == "":
			p.Add("public_url", "must be an absolute https:// URL, got %q", c.PublicURL)
		case u.Scheme != "https":
			p.Add("public_url", "must be https://: Telegram delivers webhooks over HTTPS only, got %q", c.PublicURL)
		case u.RawQuery != "" || u.Fragment != "":
			p.Add("public_url", "must not have a query or fragment")
		}
	}
	if err := checkEndpoint(c.APIEndpoint); err != nil {
		p.Add("api_endpoint", "%v", err)
	}
	return p.Err()
}

// checkEndpoint checks a Bot API endpoint pattern: exactly two %s and nothing
// else for fmt, giving an absolute http(s) URL.
func checkEndpoint(e string) error {
	if strings.Count(e, "%s") != 2 || strings.Count(e, "%") != 2 {
		return fmt.Errorf("must contain %%s twice (token, then method) and no other %%, like %s; got %q", tgbotapi.APIEndpoint, e)
	}
	u, err := url.Parse(fmt.Sprintf(e, "0:x", "getMe"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL pattern, got %q", e)
	}
	return nil
}

// fileEndpoint derives the file download pattern from the API endpoint, the
// way api.telegram.org lays them out: .../bot%s/%s -> .../file/bot%s/%s.
func fileEndpoint(api string) (string, bool) {
	base, ok := strings.CutSuffix(api, "/bot%s/%s")
	if !ok {
		return "", false
	}
	return base + "/file/bot%s/%s", true
}
