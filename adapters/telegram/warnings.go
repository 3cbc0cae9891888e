package telegram

import (
	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/config"
)

// Warnings says, in webhook mode without an https:// public URL, that the
// webhook will not be registered: Telegram then delivers nothing until
// someone points setWebhook at this server.
func (a *Adapter) Warnings() error {
	var p config.Problems
	if a.cfg.Mode == ModeWebhook && a.hookURL == "" {
		p.Add("public_url", "not set, and http.public_url is not https://: in webhook mode Telegram delivers nothing until the webhook is registered; set one of them to the https:// URL Telegram reaches, or use mode: polling")
	}
	return p.Err()
}

var _ adapters.Warner = (*Adapter)(nil)
