package slack

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/config"
)

// Modes of receiving what agents do in Slack.
const (
	// ModeSocket: the adapter opens a WebSocket to Slack (Socket Mode) with the
	// app-level token; no public URL needed.
	ModeSocket = "socket"
	// ModeHTTP: Slack POSTs events, interactions and slash commands to
	// /channels/slack/events, /interactivity and /commands (Events API).
	ModeHTTP = "http"
)

// Config is the channels.slack section.
type Config struct {
	Mode           string        `yaml:"mode" doc:"How Slack reaches omnigate: socket (Socket Mode, a WebSocket the adapter opens; no public URL needed) or http (Slack POSTs to <public_url>/channels/slack/events, /interactivity and /commands)."`
	BotToken       config.Secret `yaml:"bot_token" doc:"Bot User OAuth Token from OAuth & Permissions, xoxb-...; write it as ${env:SLACK_BOT_TOKEN}. Required."`
	AppToken       config.Secret `yaml:"app_token" doc:"App-level token with the connections:write scope, xapp-... (Basic Information > App-Level Tokens). Required in socket mode."`
	SigningSecret  config.Secret `yaml:"signing_secret" doc:"Signing Secret from Basic Information > App Credentials; every HTTP request from Slack is checked against it. Required in http mode."`
	DefaultChannel string        `yaml:"default_channel" doc:"Channel id (C... or G..., not the name) where a conversation gets its thread when its queue has no channel of its own (routing.queues.<name>.channel). Invite the bot there. Required."`
	// Queues moved: each queue's channel is configured once, under routing.
	Queues         struct{}      `yaml:"queues" moved:"set each queue's Slack channel as routing.queues.<name>.channel (desk: slack); the Transfer menu lists routing's queues"`
	NotePrefix     string        `yaml:"note_prefix" doc:"A thread reply starting with this is an internal note between agents and is not sent to the customer."`
	ChannelRate    float64       `yaml:"channel_rate" doc:"Messages per second the adapter posts or updates in one Slack channel (Slack allows about 1 chat.postMessage per second per channel)."`
	ChannelBurst   int           `yaml:"channel_burst" doc:"How many messages may go to one channel at once before channel_rate applies."`
	Reactions      Reactions     `yaml:"reactions" doc:"Emoji names (without colons) put on an agent's reply as the customer's channel reports on it; none turns one off."`
	TicketURL      string        `yaml:"ticket_url" doc:"Link of a ticket on the card, with {id} replaced by the ticket id, e.g. https://tracker.example.com/t/{id}. Empty shows the ids without links."`
	MaxUploadBytes int64         `yaml:"max_upload_bytes" doc:"Largest customer attachment, in bytes, uploaded into the thread (files upload v2, needs the files:write scope); a larger one, one that cannot be fetched or whose upload fails is shown as a link with a note saying why. -1 uploads none."`
	FileLinkTTL    time.Duration `yaml:"file_link_ttl" doc:"How long the signed links to files agents attach stay valid for the customer's channel to fetch them (needs http.public_url)."`
	APIURL         string        `yaml:"api_url" doc:"Slack Web API base URL ending in /; change it only for a test fake."`
}

// Reactions are the emoji of delivery feedback.
type Reactions struct {
	Sent      string `yaml:"sent" doc:"Emoji put on an agent's reply when the customer's channel accepted it (delivery.sent); none for no reaction."`
	Delivered string `yaml:"delivered" doc:"Emoji put on an agent's reply when the customer's channel confirmed delivery (delivery.delivered); none for no reaction."`
	Read      string `yaml:"read" doc:"Emoji put on an agent's reply when the customer read it, where the channel tells (delivery.read); none for no reaction."`
	Failed    string `yaml:"failed" doc:"Emoji put on an agent's reply that could not be delivered (delivery.failed), besides a note with the reason; none for no reaction."`
}

// noReaction is the reaction name that turns a reaction off.
const noReaction = "none"

// Defaults.
const (
	defaultAPIURL       = "https://slack.com/api/"
	defaultNotePrefix   = "//"
	defaultChannelRate  = 1
	defaultChannelBurst = 3
	defaultFileLinkTTL  = 7 * 24 * time.Hour
	// defaultMaxUploadBytes is the largest attachment most mail services
	// take, above MMS's and WhatsApp's media limits.
	defaultMaxUploadBytes = 25 << 20
)

// SetDefaults sets mode socket, note_prefix "//", channel_rate 1, channel_burst
// 3, the reactions (outbox_tray, white_check_mark, eyes, x), max_upload_bytes
// 25 MiB, file_link_ttl 7 days and Slack's API URL.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeSocket
	}
	if c.NotePrefix == "" {
		c.NotePrefix = defaultNotePrefix
	}
	if c.ChannelRate == 0 {
		c.ChannelRate = defaultChannelRate
	}
	if c.ChannelBurst == 0 {
		c.ChannelBurst = defaultChannelBurst
	}
	r := &c.Reactions
	for _, f := range []struct {
		v   *string
		def string
	}{{&r.Sent, "outbox_tray"}, {&r.Delivered, "white_check_mark"}, {&r.Read, "eyes"}, {&r.Failed, "x"}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if c.FileLinkTTL == 0 {
		c.FileLinkTTL = defaultFileLinkTTL
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = defaultMaxUploadBytes
	}
	if c.APIURL == "" {
		c.APIURL = defaultAPIURL
	}
}

var (
	// channelIDRE is a public (C), private (G) channel id; names do not work in the API.
	channelIDRE = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	// emojiRE is an emoji name as reactions.add takes it.
	emojiRE = regexp.MustCompile(`^[a-z0-9_+'-]{1,64}$`)
)

// Validate reports every problem at once. Messages never repeat a secret.
func (c *Config) Validate() error {
	var p config.Problems
	switch tok := c.BotToken.Value(); {
	case tok == "":
		p.Add("bot_token", "required: the Bot User OAuth Token (xoxb-...) from OAuth & Permissions")
	case !strings.HasPrefix(tok, "xoxb-"):
		p.Add("bot_token", "is not a bot token: want xoxb-... (a user token xoxp- or an app token xapp- does not work here)")
	}
	switch c.Mode {
	case ModeSocket:
		switch tok := c.AppToken.Value(); {
		case tok == "":
			p.Add("app_token", "required in socket mode: an app-level token (xapp-...) with connections:write")
		case !strings.HasPrefix(tok, "xapp-"):
			p.Add("app_token", "is not an app-level token: want xapp-...")
		}
	case ModeHTTP:
		if c.SigningSecret == "" {
			p.Add("signing_secret", "required in http mode: without it anyone could post forged events")
		}
	default:
		p.Add("mode", "must be one of socket, http; got %q", c.Mode)
	}
	switch {
	case c.DefaultChannel == "":
		p.Add("default_channel", "required: the id of the channel for conversation threads, e.g. C0123456789")
	case !channelIDRE.MatchString(c.DefaultChannel):
		p.Add("default_channel", "must be a channel id like C0123456789 (channel details > About), not a name; got %q", c.DefaultChannel)
	}
	if strings.TrimSpace(c.NotePrefix) == "" {
		p.Add("note_prefix", "must not be blank")
	}
	if c.ChannelRate <= 0 {
		p.Add("channel_rate", "must be positive, got %g", c.ChannelRate)
	}
	if c.ChannelBurst < 1 {
		p.Add("channel_burst", "must be at least 1, got %d", c.ChannelBurst)
	}
	for _, r := range []struct{ key, v string }{
		{"sent", c.Reactions.Sent}, {"delivered", c.Reactions.Delivered}, {"read", c.Reactions.Read}, {"failed", c.Reactions.Failed},
	} {
		if r.v != "" && !emojiRE.MatchString(r.v) {
			p.Add("reactions."+r.key, "must be an emoji name without colons, like white_check_mark, or none; got %q", r.v)
		}
	}
	if c.TicketURL != "" {
		if u, err := url.Parse(strings.ReplaceAll(c.TicketURL, "{id}", "1")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("ticket_url", "must be an absolute http(s) URL with {id}, got %q", c.TicketURL)
		}
	}
	if c.MaxUploadBytes < -1 {
		p.Add("max_upload_bytes", "must be a number of bytes, or -1 to upload none; got %d", c.MaxUploadBytes)
	}
	if c.FileLinkTTL < time.Minute {
		p.Add("file_link_ttl", "must be at least 1m, got %s", c.FileLinkTTL)
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasSuffix(c.APIURL, "/") {
		p.Add("api_url", "must be an absolute http(s) URL ending in /, got %q", c.APIURL)
	}
	return p.Err()
}

// maxQueues is how many options a static_select takes (Block Kit: 100).
const maxQueues = 100
