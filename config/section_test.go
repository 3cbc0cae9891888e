package config_test

import (
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/config"
)

// smsConfig is a sample adapter config, shaped like the ones adapters declare.
type smsConfig struct {
	AccountSID string        `yaml:"account_sid" doc:"Twilio account SID."`
	AuthToken  config.Secret `yaml:"auth_token" doc:"Twilio auth token."`
	From       string        `yaml:"from" doc:"Sender phone number, E.164."`
	Timeout    time.Duration `yaml:"timeout" doc:"Timeout of one API call."`
	WhatsApp   bool          `yaml:"whatsapp" doc:"Also handle WhatsApp."`
	Allow      []string      `yaml:"allow" doc:"Numbers allowed to write; empty allows all."`
	Webhook    smsWebhook    `yaml:"webhook" doc:"Inbound webhook."`
}

type smsWebhook struct {
	Path     string `yaml:"path" doc:"Path under /channels/sms/."`
	Validate bool   `yaml:"validate" doc:"Check the X-Twilio-Signature header."`
}

func (c *smsConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Webhook.Path == "" {
		c.Webhook.Path = "inbound"
	}
}

func (c *smsConfig) Validate() error {
	var p config.Problems
	if c.AccountSID == "" {
		p.Add("account_sid", "required")
	}
	if c.AuthToken == "" {
		p.Add("auth_token", "required")
	}
	if !strings.HasPrefix(c.From, "+") {
		p.Add("from", "must be an E.164 number like +15551234567")
	}
	return p.Err()
}

func TestDecodeSection(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string // the channels section of a file, or "" for none
		env     map[string]string
		want    smsConfig
		wantErr []string
	}{
		{
			name: "valid",
			yaml: `
channels:
  sms:
    account_sid: AC123
    auth_token: ${env:TWILIO_TOKEN}
    from: "+15550001111"
    allow: ["+1555", "+1666"]
    webhook:
      validate: true
`,
			env: map[string]string{"TWILIO_TOKEN": "tok"},
			want: smsConfig{AccountSID: "AC123", AuthToken: "tok", From: "+15550001111", Timeout: 10 * time.Second,
				Allow: []string{"+1555", "+1666"}, Webhook: smsWebhook{Path: "inbound", Validate: true}},
		},
		{
			name: "env overrides",
			yaml: "channels:\n  sms:\n    account_sid: AC123\n    auth_token: file-token\n    from: '+1'\n",
			env: map[string]string{
				"OMNIGATE_CHANNELS_SMS_AUTH_TOKEN":       "env-token",
				"OMNIGATE_CHANNELS_SMS_ALLOW":            "+1,+2",
				"OMNIGATE_CHANNELS_SMS_WHATSAPP":         "true",
				"OMNIGATE_CHANNELS_SMS_WEBHOOK_VALIDATE": "1",
			},
			want: smsConfig{AccountSID: "AC123", AuthToken: "env-token", From: "+1", Timeout: 10 * time.Second,
				WhatsApp: true, Allow: []string{"+1", "+2"}, Webhook: smsWebhook{Path: "inbound", Validate: true}},
		},
		{
			name: "absent section, env only",
			env: map[string]string{
				"OMNIGATE_CHANNELS_SMS_ACCOUNT_SID": "AC9",
				"OMNIGATE_CHANNELS_SMS_AUTH_TOKEN":  "t",
				"OMNIGATE_CHANNELS_SMS_FROM":        "+1",
			},
			want: smsConfig{AccountSID: "AC9", AuthToken: "t", From: "+1", Timeout: 10 * time.Second, Webhook: smsWebhook{Path: "inbound"}},
		},
		{
			name: "errors with positions",
			yaml: `
channels:
  sms:
    account_sid: AC123
    from: 5550001111
    timeout: 10
    webhok:
      path: x
`,
			env: map[string]string{"OMNIGATE_CHANNELS_SMS_WHATSAPP": "maybe"},
			wantErr: []string{
				"omnigate.yaml:4:5: channels.sms.auth_token (default): required",
				"omnigate.yaml:5:5: channels.sms.from: must be an E.164 number like +15551234567",
				`omnigate.yaml:6:14: channels.sms.timeout: want a duration like 30s, 5m or 72h, got "10"`,
				"omnigate.yaml:7:5: channels.sms.webhok: unknown key (known keys: account_sid, auth_token, from, timeout, whatsapp, allow, webhook)",
				`channels.sms.whatsapp (env OMNIGATE_CHANNELS_SMS_WHATSAPP): want true or false, got "maybe"`,
			},
		},
		{
			name:    "absent section, nothing set",
			wantErr: []string{"omnigate.yaml: channels.sms.account_sid (default): required", "omnigate.yaml: channels.sms.auth_token (default): required", "omnigate.yaml: channels.sms.from (default): must be an E.164 number like +15551234567"},
		},
		{
			name:    "null section",
			yaml:    "channels:\n  sms:\n",
			wantErr: []string{"omnigate.yaml:2:7: channels.sms.account_sid (default): required", "omnigate.yaml:2:7: channels.sms.auth_token (default): required", "omnigate.yaml:2:7: channels.sms.from (default): must be an E.164 number like +15551234567"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := mustParse(t, tt.yaml)
			var got smsConfig
			node, ok := c.Channels["sms"]
			var err error
			if ok {
				err = config.DecodeSection("omnigate.yaml", &node, config.EnvName("channels.sms"), &got)
			} else {
				err = config.DecodeSection("omnigate.yaml", nil, "OMNIGATE_CHANNELS_SMS", &got)
			}
			if tt.wantErr != nil {
				var errs config.Errors
				if !errors.As(err, &errs) {
					t.Fatalf("err = %v (%T), want config.Errors", err, err)
				}
				if err.Error() != strings.Join(tt.wantErr, "\n") {
					t.Errorf("got\n%v\nwant\n%s", err, strings.Join(tt.wantErr, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeSection_SectionPath(t *testing.T) {
	var got smsConfig
	err := config.DecodeSection("f.yaml", nil, "OMNIGATE_CHANNELS_MY_BOT", &got)
	if err == nil || !strings.HasPrefix(err.Error(), "f.yaml: channels.my_bot.account_sid (default): required") {
		t.Errorf("err = %v", err)
	}
}

func TestDecodeSection_BadDestination(t *testing.T) {
	for _, dst := range []any{nil, smsConfig{}, new(int), (*smsConfig)(nil)} {
		err := config.DecodeSection("f.yaml", nil, "", dst)
		var errs config.Errors
		if err == nil || errors.As(err, &errs) {
			t.Errorf("DecodeSection(%T) = %v, want a plain error", dst, err)
		}
	}
}

// Common is embedded inline by kitchenSink, as adapters may share keys.
type Common struct {
	Enabled *bool `yaml:"enabled" doc:"Turn the adapter off without deleting its section."`
}

// kitchenSink has the less common field types an adapter config may use.
type kitchenSink struct {
	Common  `yaml:",inline"`
	Level   slog.Level        `yaml:"level" doc:"Log level of the adapter."`
	Bind    net.IP            `yaml:"bind" doc:"Source address."`
	Headers map[string]string `yaml:"headers" doc:"Extra HTTP headers."`
	Ratio   float64           `yaml:"ratio" doc:"A ratio."`
	Ports   []uint16          `yaml:"ports" doc:"Ports."`
	Ignored string            `yaml:"-"`
}

func TestDecodeSection_FieldTypes(t *testing.T) {
	doc := "channels:\n  x:\n    enabled: false\n    level: warn\n    bind: 10.0.0.1\n    headers: {X-A: b}\n    ratio: 0.5\n    ports: [80, 0x1bb]\n"
	t.Setenv("OMNIGATE_CHANNELS_X_LEVEL", "debug")
	t.Setenv("OMNIGATE_CHANNELS_X_BIND", "::1")
	c := mustParse(t, doc)
	node := c.Channels["x"]
	var got kitchenSink
	if err := config.DecodeSection("f.yaml", &node, "OMNIGATE_CHANNELS_X", &got); err != nil {
		t.Fatal(err)
	}
	off := false
	want := kitchenSink{Common: Common{Enabled: &off}, Level: slog.LevelDebug, Bind: net.ParseIP("::1"),
		Headers: map[string]string{"X-A": "b"}, Ratio: 0.5, Ports: []uint16{80, 443}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	var types []string
	for _, k := range config.Keys(kitchenSink{}, "x") {
		types = append(types, k.Path+":"+k.Type+"="+k.Default+":"+k.Env)
	}
	wantTypes := "x.enabled:bool=:OMNIGATE_X_ENABLED x.level:string=:OMNIGATE_X_LEVEL x.bind:string=:OMNIGATE_X_BIND " +
		"x.headers:map[string]string=: x.ratio:float=:OMNIGATE_X_RATIO x.ports:[]uint=:OMNIGATE_X_PORTS"
	if got := strings.Join(types, " "); got != wantTypes {
		t.Errorf("Keys:\n got %s\nwant %s", got, wantTypes)
	}

	bad := "channels:\n  x:\n    level: loud\n    ports: [70000]\n    headers: [a]\n"
	c = mustParse(t, bad)
	node = c.Channels["x"]
	// Without an environment prefix, paths are relative to the section.
	err := config.DecodeSection("f.yaml", &node, "", &got)
	wantErr := `f.yaml:3:12: level: invalid value "loud": slog: level string "loud": unknown name
f.yaml:4:13: ports[0]: "70000" is out of range
f.yaml:5:14: headers: want a mapping, got a list`
	if err == nil || err.Error() != wantErr {
		t.Errorf("err =\n%v\nwant\n%s", err, wantErr)
	}
}
