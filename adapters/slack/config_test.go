package slack_test

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/config"
)

func TestConfig_Validate(t *testing.T) {
	ok := func() slack.Config {
		return slack.Config{BotToken: "xoxb-1", AppToken: "xapp-1", DefaultChannel: "C0123ABC"}
	}
	tests := []struct {
		name string
		edit func(*slack.Config)
		want []string // problems, by path
	}{
		{"socket ok", func(*slack.Config) {}, nil},
		{"http ok", func(c *slack.Config) { c.Mode, c.AppToken, c.SigningSecret = slack.ModeHTTP, "", "s3cret" }, nil},
		{"missing", func(c *slack.Config) { *c = slack.Config{} }, []string{"bot_token", "app_token", "default_channel"}},
		{"wrong tokens", func(c *slack.Config) { c.BotToken, c.AppToken = "xoxp-1", "xoxb-1" }, []string{"bot_token", "app_token"}},
		{"http without secret", func(c *slack.Config) { c.Mode = slack.ModeHTTP }, []string{"signing_secret"}},
		{"bad mode", func(c *slack.Config) { c.Mode = "rtm" }, []string{"mode"}},
		{"channel name", func(c *slack.Config) { c.DefaultChannel = "#support" }, []string{"default_channel"}},
		{"numbers", func(c *slack.Config) { c.ChannelRate, c.ChannelBurst = -1, -1 }, []string{"channel_rate", "channel_burst"}},
		{"reaction", func(c *slack.Config) { c.Reactions.Delivered = ":tada:" }, []string{"reactions.delivered"}},
		{"reaction off", func(c *slack.Config) { c.Reactions.Read = "none" }, nil},
		{"ticket url", func(c *slack.Config) { c.TicketURL = "tracker/{id}" }, []string{"ticket_url"}},
		{"api url", func(c *slack.Config) { c.APIURL = "https://slack.com/api" }, []string{"api_url"}},
		{"uploads off", func(c *slack.Config) { c.MaxUploadBytes = -1 }, nil},
		{"upload limit", func(c *slack.Config) { c.MaxUploadBytes = -2 }, []string{"max_upload_bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.edit(&c)
			c.SetDefaults()
			err := c.Validate()
			var got []string
			var errs config.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					got = append(got, e.Path)
					if strings.Contains(e.Msg, "xoxp-1") || strings.Contains(e.Msg, "s3cret") {
						t.Errorf("problem repeats a secret: %s", e.Msg)
					}
				}
			} else if err != nil {
				t.Fatalf("Validate = %v, want config.Errors", err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("problems at %v, want %v (%v)", got, tt.want, err)
			}
		})
	}
}

// TestRegistered builds the desk from YAML through the registry, with an
// environment override, as omnigate serve does.
func TestRegistered(t *testing.T) {
	info, ok := adapters.Lookup(slack.Name)
	if !ok || info.Kind != adapters.Desk {
		t.Fatalf("slack registered as %+v, want a desk", info)
	}
	var envs []string
	for _, k := range info.Keys {
		envs = append(envs, k.Env)
	}
	for _, want := range []string{"OMNIGATE_CHANNELS_SLACK_BOT_TOKEN", "OMNIGATE_CHANNELS_SLACK_APP_TOKEN", "OMNIGATE_CHANNELS_SLACK_SIGNING_SECRET", "OMNIGATE_CHANNELS_SLACK_DEFAULT_CHANNEL"} {
		if !strings.Contains(strings.Join(envs, " "), want) {
			t.Errorf("keys lack %s: %v", want, envs)
		}
	}
	t.Setenv("OMNIGATE_CHANNELS_SLACK_APP_TOKEN", "xapp-from-env")
	var node yaml.Node
	src := "bot_token: xoxb-1\ndefault_channel: C0123ABC\n"
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	env := adaptertest.NewEnv(t, slack.Name)
	a, err := adapters.Build(slack.Name, "omnigate.yaml", node.Content[0], env.Deps)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if a.Name() != slack.Name {
		t.Errorf("Name() = %q", a.Name())
	}

	// Queues are routing's: the old key says where it went.
	if err := yaml.Unmarshal([]byte("bot_token: xoxb-1\ndefault_channel: C0123ABC\nqueues:\n  billing: C0456DEF\n"), &node); err != nil {
		t.Fatal(err)
	}
	if _, err := adapters.Build(slack.Name, "omnigate.yaml", node.Content[0], env.Deps); err == nil || !strings.Contains(err.Error(), "omnigate.yaml:3:1: channels.slack.queues: this key moved: set each queue's Slack channel as routing.queues.<name>.channel") {
		t.Errorf("Build with queues = %v, want where they moved", err)
	}

	if err := yaml.Unmarshal([]byte("bot_token: xoxb-1\ndefault_channel: support\nnope: 1\n"), &node); err != nil {
		t.Fatal(err)
	}
	_, err = adapters.Build(slack.Name, "omnigate.yaml", node.Content[0], env.Deps)
	if err == nil || !strings.Contains(err.Error(), "omnigate.yaml:3:1") || !strings.Contains(err.Error(), "default_channel") {
		t.Errorf("Build of a bad section = %v, want located problems", err)
	}
}
