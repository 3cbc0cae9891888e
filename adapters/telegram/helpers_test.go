package telegram_test

import (
	"fmt"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
)

// Test values.
const (
	secret    = "hook-Secret_42"
	customer  = 4242 // user id, and the id of the private chat with them
	publicURL = "https://omnigate.example.com"
)

// build builds the adapter through the registry, as omnigate serve does, from
// a channels.telegram section.
func build(t *testing.T, deps adapters.Deps, section string) *telegram.Adapter {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(section), &node); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	a, err := adapters.Build("telegram", "omnigate.yaml", &node, deps)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return a.(*telegram.Adapter)
}

// webhookConfig is a webhook-mode section for fake.
func webhookConfig(fake *telegramtest.Server) string {
	return fmt.Sprintf("token: %q\nmode: webhook\nwebhook_secret: %q\npublic_url: %s\napi_endpoint: %q\n",
		fake.Token, secret, publicURL, fake.Endpoint())
}

// pollingConfig is a polling-mode section for fake.
func pollingConfig(fake *telegramtest.Server) string {
	return fmt.Sprintf("token: %q\nmode: polling\npoll_timeout: 1s\napi_endpoint: %q\n", fake.Token, fake.Endpoint())
}

// message is a private-chat message from the customer as Telegram sends it;
// extra fields are merged in.
func message(id int, extra map[string]any) map[string]any {
	m := map[string]any{
		"message_id": id,
		"from":       map[string]any{"id": customer, "is_bot": false, "first_name": "Ann", "last_name": "Lee", "username": "annlee", "language_code": "en"},
		"chat":       map[string]any{"id": customer, "first_name": "Ann", "last_name": "Lee", "username": "annlee", "type": "private"},
		"date":       1700000000 + id,
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// textUpdate is update updateID carrying message id with text.
func textUpdate(updateID, id int, text string) map[string]any {
	return map[string]any{"update_id": updateID, "message": message(id, map[string]any{"text": text})}
}

const webhookPath = "/channels/telegram/webhook"

var waitFor = 10 * time.Second
