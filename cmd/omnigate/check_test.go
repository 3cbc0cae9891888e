package main

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/lang"
)

// noDesk is the warning of every config below without a desk, at the
// channels key (line 1 when it is first).
const noDesk = "no agent desk is configured, so nobody can answer customers: their messages are stored and wait. Configure a desk, e.g. Slack (channels.slack; see docs/slack-setup.md)"

// A Slack desk that check-config accepts (socket mode; no I/O is done).
const slackDesk = `  slack:
    bot_token: xoxb-1-2-abc
    app_token: xapp-1-2-abc
    default_channel: C0GENERAL
`

const smsSection = `  sms:
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: tok
    from: "+15551234567"
`

// TestCheckConfig_Table runs check-config on broken files and wants exactly
// these lines on stderr, in file order: every problem of every section, then
// the warnings, then the count; and exit code 1 on any error, 0 on warnings
// alone.
func TestCheckConfig_Table(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		code int      // exit code
		want []string // stderr, line by line
		out  string   // stdout
	}{
		{
			name: "sms without public_url, which serve refuses",
			yaml: "channels:\n" + smsSection + slackDesk,
			code: 1,
			want: []string{
				"omnigate.yaml:3:5: channels.sms.public_url (default): required here or as http.public_url, e.g. https://support.example.com: Twilio's signatures cover the URL it calls, so omnigate must know it",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "sms with http.public_url",
			yaml: "http:\n  public_url: https://support.example.com\nchannels:\n" + smsSection + slackDesk,
			out:  "omnigate.yaml: ok\n",
		},
		{
			name: "every section at once",
			yaml: `http:
  addr: nope
nats:
  streams:
    replicas: 9
channels:
  smss:
    from: "+1"
  telegrm: {}
routing:
  rules:
    - name: vip
      when: {languages: [fr]}
      then: {queue: vip}
tickets:
  first_number: -3
language:
  detect: [en, xx]
  min_confidence: 2
`,
			code: 1,
			want: []string{
				`omnigate.yaml:2:3: http.addr: must be host:port, like :8080 or 127.0.0.1:8080; got "nope"`,
				"omnigate.yaml:5:5: nats.streams.replicas: must be between 1 and 5, got 9",
				`omnigate.yaml:7:3: channels.smss: unknown adapter "smss"; did you mean sms? (known adapters: app, email, slack, sms, telegram, web, whatsapp)`,
				`omnigate.yaml:9:3: channels.telegrm: unknown adapter "telegrm"; did you mean telegram? (known adapters: app, email, slack, sms, telegram, web, whatsapp)`,
				`omnigate.yaml:14:14: routing.rules[0].then.queue: no queue "vip" (queues: default)`,
				"omnigate.yaml:16:3: tickets.first_number: must be at least 1, got -3",
				`omnigate.yaml:18:16: language.detect[1]: the detector does not know "xx"; it knows the ISO 639-1 codes af ar az be bg bn bs ca cs cy da de el en eo es et eu fa fi fr ga gu he hi hr hu hy id is it ja ka kk ko la lg lt lv mi mk mn mr ms nb nl nn pa pl pt ro ru sk sl sn so sq sr st sv sw ta te th tl tn tr ts uk ur vi xh yo zh zu`,
				"omnigate.yaml:19:3: language.min_confidence: must be from 0 up to (not including) 1, got 2",
				"warning: omnigate.yaml:6:1: channels: " + noDesk,
				"omnigate.yaml: 8 errors, 1 warning",
			},
		},
		{
			name: "unknown adapter far from every name",
			yaml: "channels:\n  fax: {}\n" + slackDesk,
			code: 1,
			want: []string{
				`omnigate.yaml:2:3: channels.fax: unknown adapter "fax" (known adapters: app, email, slack, sms, telegram, web, whatsapp)`,
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "syntax error in a flow mapping, where it is",
			yaml: "http:\n  addr: \":8080\"\nchannels:\n  sms: {account_sid: AC1, from: \"+15551234567\"\n  slack: {}\n",
			code: 1,
			want: []string{
				"omnigate.yaml:4:33: ',' or '}' must be specified after this value",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "list left open",
			yaml: "conversation:\n  reply_fallback: [sms, email\nlog:\n  level: info\n",
			code: 1,
			want: []string{
				"omnigate.yaml:2:25: ',' or ']' must be specified after this value",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "unterminated string",
			yaml: "routing:\n  queues:\n    billing:\n      desk: slack\n      channel: \"C0BILLING\n",
			code: 1,
			want: []string{
				"omnigate.yaml:5:16: could not find end character of double-quoted text",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "bad indentation",
			yaml: "log:\n  level: info\n   format: json\n",
			code: 1,
			want: []string{
				"omnigate.yaml:3: mapping values are not allowed in this context",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "tab",
			yaml: "log:\n  level: info\n\tformat: json\n",
			code: 1,
			want: []string{
				"omnigate.yaml:3:1: found character '\t' that cannot start any token",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
		{
			name: "queues whose desk does not exist",
			yaml: "http:\n  public_url: https://support.example.com\nchannels:\n" + slackDesk + smsSection + `routing:
  default_queue: support
  queues:
    support: {channel: C0SUPPORT}
    billing: {desk: sms, channel: C0BILLING}
    sales: {desk: slakc, channel: C0SALES}
`,
			code: 1,
			want: []string{
				"omnigate.yaml:16:15: routing.queues.billing.desk: sms is a customer channel, not an agent desk (desks: slack)",
				`omnigate.yaml:17:13: routing.queues.sales.desk: desk "slakc" is not configured; did you mean slack? (configured desks: slack)`,
				"omnigate.yaml: 2 errors, 0 warnings",
			},
		},
		{
			name: "a queue's desk written but no desk configured",
			yaml: "routing:\n  queues:\n    default: {desk: slack, channel: C0GENERAL}\n",
			code: 1,
			want: []string{
				`omnigate.yaml:3:15: routing.queues.default.desk: desk "slack" is not configured: add channels.slack (see docs/slack-setup.md)`,
				"warning: omnigate.yaml: channels (default): " + noDesk,
				"omnigate.yaml: 1 error, 1 warning",
			},
		},
		{
			name: "no desk at all: a warning, exit 0",
			yaml: "http:\n  addr: \":9090\"\n",
			want: []string{"warning: omnigate.yaml: channels (default): " + noDesk},
			out:  "omnigate.yaml: ok, 1 warning\n",
		},
		{
			name: "telegram webhook without an https URL: a warning",
			yaml: `http:
  public_url: http://support.example.com
channels:
  telegram:
    token: "123456789:AAHabcdefghijklmnopqrstuvwxyz012345"
    mode: webhook
    webhook_secret: s3cret
` + slackDesk,
			want: []string{"warning: omnigate.yaml:5:5: channels.telegram.public_url (default): not set, and http.public_url is not https://: in webhook mode Telegram delivers nothing until the webhook is registered; set one of them to the https:// URL Telegram reaches, or use mode: polling"},
			out:  "omnigate.yaml: ok, 1 warning\n",
		},
		{
			name: "slack over http without a public URL: a warning",
			yaml: "channels:\n  slack:\n    bot_token: xoxb-1-2-abc\n    signing_secret: abc\n    mode: http\n    default_channel: C0GENERAL\n",
			want: []string{"warning: omnigate.yaml:5:5: channels.slack.mode: http without http.public_url: Slack must reach <public url>/channels/slack/events, /interactivity and /commands, and files agents attach cannot be linked; set http.public_url, or use mode: socket (docs/slack-setup.md)"},
			out:  "omnigate.yaml: ok, 1 warning\n",
		},
		{
			name: "language codes the detector cannot tell apart",
			yaml: "language:\n  detect: [en, en]\nchannels:\n" + slackDesk,
			code: 1,
			want: []string{
				"omnigate.yaml:2:3: language.detect: need at least two different languages to choose among, got [en en]",
				"omnigate.yaml: 1 error, 0 warnings",
			},
		},
	}
	t.Chdir(t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile("omnigate.yaml", []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"check-config", "omnigate.yaml"}, &stdout, &stderr)
			code := 0
			var ee exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatalf("check-config: %v", err)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if stderr.Len() == 0 {
				got = nil
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if stdout.String() != tt.out {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.out)
			}
		})
	}
}

// FuzzCheckConfig runs check-config's checks on arbitrary YAML: they never
// panic, and every problem has a message.
func FuzzCheckConfig(f *testing.F) {
	example, err := os.ReadFile("../../config/omnigate.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		"",
		"channels:\n" + smsSection + slackDesk,
		"channels: {smss: {}, slack: []}\n",
		"channels: {sms: &a {x: *a}}\n",
		"channels:\n  web: {sites: {shop: {origins: [1]}}}\n",
		"routing: {queues: {a: {desk: sms}, b: {desk: ''}}, default_queue: a}\n",
		"routing: [1, 2]\ntickets: 3\nlanguage: {detect: [zz, en, en]}\n",
		"language: {detect: [en], min_confidence: -1}\n",
		"http: {public_url: 'ftp://x'}\nchannels: {telegram: {mode: webhook}}\n",
		"a: [1, 2\nb: 3\n",
		"\t- bad",
		"? [a]\n: b\n",
		"channels:\n  slack: {mode: http, bot_token: xoxb-1, default_channel: C1}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		errs, warns := checkConfigData("fuzz.yaml", data)
		for _, e := range append(errs, warns...) {
			if e == nil || e.Msg == "" {
				t.Fatalf("a problem without a message: %#v", e)
			}
		}
	})
}

// The config's default languages are the detector's.
func TestLanguageDefaults(t *testing.T) {
	if !slices.Equal(config.DefaultDetect, lang.DefaultLanguages) || config.Default().Language.MinConfidence != lang.DefaultMinConfidence {
		t.Errorf("config defaults %v %v, detector's %v %v", config.DefaultDetect, config.Default().Language.MinConfidence, lang.DefaultLanguages, lang.DefaultMinConfidence)
	}
}
