package slack

import (
	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/config"
)

// Warnings says, in http mode without http.public_url, that Slack's request
// URLs must still be set by hand and that the links to agents' files cannot
// be made.
func (a *Adapter) Warnings() error {
	var p config.Problems
	if a.cfg.Mode == ModeHTTP && a.publicURL == "" {
		p.Add("mode", "http without http.public_url: Slack must reach <public url>/channels/slack/events, /interactivity and /commands, and files agents attach cannot be linked; set http.public_url, or use mode: socket (docs/slack-setup.md)")
	}
	return p.Err()
}

var _ adapters.Warner = (*Adapter)(nil)
