package telegram_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/config"
)

const goodToken = "123456789:AAHfake-Token_for-tests-0123456789abcdef"

func TestConfig_Defaults(t *testing.T) {
	c := telegram.Config{Token: goodToken, PublicURL: "https://support.example.com/"}
	c.SetDefaults()
	if c.Mode != "polling" || c.APIEndpoint != "https://api.telegram.org/bot%s/%s" || c.PollTimeout != 30*time.Second || c.PublicURL != "https://support.example.com" || c.AllowGroups {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestConfig_ValidateListsEveryProblem: all problems at once, none
// repeating a secret.
func TestConfig_ValidateListsEveryProblem(t *testing.T) {
	c := telegram.Config{
		Token:         "not-a-token-SECRET1",
		Mode:          "webhook",
		WebhookSecret: "has spaces SECRET2",
		PublicURL:     "http://support.example.com",
		APIEndpoint:   "https://api.telegram.org/bot/%s",
	}
	err := c.Validate()
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Validate: %v, want config.Errors", err)
	}
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	slices.Sort(paths)
	if want := []string{"api_endpoint", "public_url", "token", "webhook_secret"}; !slices.Equal(paths, want) {
		t.Errorf("problems at %v, want %v:\n%v", paths, want, err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("a problem repeats a secret:\n%v", err)
	}

	tests := []struct {
		name string
		c    telegram.Config
		path string
	}{
		{"no token", telegram.Config{Mode: "polling", PollTimeout: time.Second, APIEndpoint: "http://x/bot%s/%s"}, "token"},
		{"bad mode", telegram.Config{Token: goodToken, Mode: "push", APIEndpoint: "http://x/bot%s/%s"}, "mode"},
		{"webhook without secret", telegram.Config{Token: goodToken, Mode: "webhook", APIEndpoint: "http://x/bot%s/%s"}, "webhook_secret"},
		{"poll timeout too long", telegram.Config{Token: goodToken, Mode: "polling", PollTimeout: time.Hour, APIEndpoint: "http://x/bot%s/%s"}, "poll_timeout"},
		{"poll timeout fraction", telegram.Config{Token: goodToken, Mode: "polling", PollTimeout: 1500 * time.Millisecond, APIEndpoint: "http://x/bot%s/%s"}, "poll_timeout"},
		{"endpoint with a stray verb", telegram.Config{Token: goodToken, Mode: "polling", PollTimeout: time.Second, APIEndpoint: "http://x/bot%s/%s%d"}, "api_endpoint"},
		{"endpoint not a URL", telegram.Config{Token: goodToken, Mode: "polling", PollTimeout: time.Second, APIEndpoint: "bot%s/%s"}, "api_endpoint"},
		{"public url with query", telegram.Config{Token: goodToken, Mode: "polling", PollTimeout: time.Second, APIEndpoint: "http://x/bot%s/%s", PublicURL: "https://x.example.com/?a=1"}, "public_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs config.Errors
			if err := tt.c.Validate(); !errors.As(err, &errs) || len(errs) != 1 || errs[0].Path != tt.path {
				t.Errorf("Validate: %v, want one problem at %s", err, tt.path)
			}
		})
	}
}

// TestConfig_Registered: the registry decodes channels.telegram strictly,
// with OMNIGATE_CHANNELS_TELEGRAM_* overrides and file positions.
func TestConfig_Registered(t *testing.T) {
	info, ok := adapters.Lookup("telegram")
	if !ok || info.Kind != adapters.Channel {
		t.Fatalf("telegram not registered as a channel: %+v", info)
	}
	var keys []string
	for _, k := range info.Keys {
		keys = append(keys, k.Path)
	}
	for _, want := range []string{"token", "mode", "webhook_secret", "public_url", "api_endpoint", "allow_groups", "poll_timeout"} {
		if !slices.Contains(keys, "channels.telegram."+want) {
			t.Errorf("key channels.telegram.%s not listed (have %v)", want, keys)
		}
	}

	deps := adapters.Deps{Publisher: &adapters.Publisher{}, Routes: adapters.NewRoutes(http.NewServeMux(), "telegram")}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("mode: webhook\nwebhok_secret: x\npoll_timeout: 2s\n"), &node); err != nil {
		t.Fatal(err)
	}
	_, err := adapters.Build("telegram", "omnigate.yaml", &node, deps)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Build: %v, want config.Errors", err)
	}
	msg := err.Error()
	for _, want := range []string{"omnigate.yaml:2:1: channels.telegram.webhok_secret: unknown key", "channels.telegram.token", "channels.telegram.webhook_secret"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Build error lacks %q:\n%s", want, msg)
		}
	}

	t.Setenv("OMNIGATE_CHANNELS_TELEGRAM_TOKEN", goodToken)
	t.Setenv("OMNIGATE_CHANNELS_TELEGRAM_WEBHOOK_SECRET", "from-env")
	if err := yaml.Unmarshal([]byte("mode: webhook\n"), &node); err != nil {
		t.Fatal(err)
	}
	if _, err := adapters.Build("telegram", "omnigate.yaml", &node, deps); err != nil {
		t.Errorf("Build with the token and secret from the environment: %v", err)
	}
}

func TestNew_Deps(t *testing.T) {
	c := telegram.Config{Token: goodToken, Mode: "polling"}
	if _, err := telegram.New(c, adapters.Deps{Publisher: &adapters.Publisher{}}); err == nil {
		t.Error("polling without a store: no error")
	}
	c = telegram.Config{Token: goodToken, Mode: "webhook", WebhookSecret: "s"}
	if _, err := telegram.New(c, adapters.Deps{Publisher: &adapters.Publisher{}}); err == nil {
		t.Error("webhook without routes: no error")
	}
	if _, err := telegram.New(c, adapters.Deps{}); err == nil {
		t.Error("no publisher: no error")
	}
}
