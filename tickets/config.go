package tickets

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/tickets/webhook"
	"github.com/omnigate/omnigate/tickets/zendesk"
)

// Config is the tickets section of omnigate.yaml. Decode it with
// config.DecodeSection(file, node, "OMNIGATE_TICKETS", &cfg).
type Config struct {
	AdminToken      config.Secret   `yaml:"admin_token" doc:"Bearer token of the admin API (/api/tickets): Authorization: Bearer <token>. Empty turns the admin API off (every request gets 401). Write it as ${env:NAME} or ${file:/path}."`
	FirstNumber     int64           `yaml:"first_number" doc:"Lowest ticket number: the first ticket gets it, later ones count up. Raising it later makes the next ticket jump to it; numbers never go down."`
	DefaultPriority string          `yaml:"default_priority" doc:"Priority of tickets created without one: low, normal, high or urgent."`
	SLA             SLA             `yaml:"sla" doc:"Default time to solve by priority: a new ticket is due this long after it was created, unless whoever creates it says otherwise."`
	ReopenWindow    time.Duration   `yaml:"reopen_window" doc:"A customer reply within this time after a ticket was solved reopens it; later replies leave it solved."`
	OpenOnReply     *bool           `yaml:"open_on_reply" doc:"A customer reply to a pending ticket (waiting for the customer) sets it open again."`
	Notify          Notify          `yaml:"notify" doc:"What the customer is told, on the channel they used last, when their ticket changes."`
	Survey          SurveyConfig    `yaml:"survey" doc:"Satisfaction survey sent to the customer when a ticket is solved."`
	Bridge          BridgeConfig    `yaml:"bridge" doc:"Retries of the bridges to external trackers."`
	Webhook         webhook.Config  `yaml:"webhook" doc:"Generic bridge: ticket events POSTed as signed JSON to a URL, status updates accepted back."`
	Zendesk         zendesk.Config  `yaml:"zendesk" doc:"Zendesk bridge: tickets created and updated in Zendesk Support, status changes synced back by a Zendesk webhook."`
	Timeouts        TimeoutConfig   `yaml:"timeouts" doc:"Bounds of the service's own work."`
	Languages       LanguageOptions `yaml:"languages" doc:"How the customer's language is found."`
}

// SLA is the default time to solve per priority.
type SLA struct {
	Urgent time.Duration `yaml:"urgent" doc:"Time to solve an urgent ticket."`
	High   time.Duration `yaml:"high" doc:"Time to solve a high-priority ticket."`
	Normal time.Duration `yaml:"normal" doc:"Time to solve a normal-priority ticket."`
	Low    time.Duration `yaml:"low" doc:"Time to solve a low-priority ticket."`
}

// For returns the time to solve a ticket of priority p.
func (s SLA) For(p Priority) time.Duration {
	switch p {
	case PriorityUrgent:
		return s.Urgent
	case PriorityHigh:
		return s.High
	case PriorityLow:
		return s.Low
	}
	return s.Normal
}

// Notify configures customer notifications.
type Notify struct {
	Enabled         *bool                `yaml:"enabled" doc:"Tell customers about their tickets at all."`
	On              []string             `yaml:"on" doc:"The changes customers are told about: created, open, pending, on-hold, solved, closed, reopened."`
	DefaultLanguage string               `yaml:"default_language" doc:"Language of notifications when the customer's is unknown or has no templates."`
	Templates       map[string]Templates `yaml:"templates" default:"the built-in English (en) and Chinese (zh) texts" doc:"Notification texts by language (en, zh, pt-BR, ...), Go text/template with {{.Number}}, {{.Subject}}, {{.Status}}, {{.Priority}}. Built-in English (en) and Chinese (zh) texts fill whatever is left empty."`
}

// Templates are the notification texts of one language. An empty one falls back
// to the built-in text of the language, then to the default language's.
type Templates struct {
	Created      string `yaml:"created" doc:"A ticket was opened for the customer."`
	Open         string `yaml:"open" doc:"The ticket is being worked on."`
	Pending      string `yaml:"pending" doc:"The ticket waits for the customer's answer."`
	OnHold       string `yaml:"on_hold" doc:"The ticket waits for a third party."`
	Solved       string `yaml:"solved" doc:"The ticket was solved."`
	Closed       string `yaml:"closed" doc:"The ticket was closed."`
	Reopened     string `yaml:"reopened" doc:"The ticket was reopened by the customer's reply."`
	Survey       string `yaml:"survey" doc:"The satisfaction question, sent after the solved notice."`
	SurveyThanks string `yaml:"survey_thanks" doc:"The answer to a recorded score."`
}

// get returns the template of key ("created", "on-hold", "survey_thanks", ...).
func (t Templates) get(key string) string {
	switch key {
	case notifyCreated:
		return t.Created
	case string(StatusOpen):
		return t.Open
	case string(StatusPending):
		return t.Pending
	case string(StatusOnHold):
		return t.OnHold
	case string(StatusSolved):
		return t.Solved
	case string(StatusClosed):
		return t.Closed
	case notifyReopened:
		return t.Reopened
	case notifySurvey:
		return t.Survey
	case notifySurveyThanks:
		return t.SurveyThanks
	}
	return ""
}

// fill sets every empty text of t from d.
func (t *Templates) fill(d Templates) {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&t.Created, d.Created}, {&t.Open, d.Open}, {&t.Pending, d.Pending}, {&t.OnHold, d.OnHold},
		{&t.Solved, d.Solved}, {&t.Closed, d.Closed}, {&t.Reopened, d.Reopened},
		{&t.Survey, d.Survey}, {&t.SurveyThanks, d.SurveyThanks},
	} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
}

// SurveyConfig configures the satisfaction survey.
type SurveyConfig struct {
	Enabled bool          `yaml:"enabled" doc:"Ask the customer for a score from 1 to 5 when their ticket is solved; the next reply that is a score (1-5, 满意, good, ...) is recorded on the ticket."`
	Window  time.Duration `yaml:"window" doc:"How long after the ticket was solved a reply counts as the score."`
}

// BridgeConfig configures how bridge calls are retried.
type BridgeConfig struct {
	MaxDeliver int             `yaml:"max_deliver" doc:"Attempts of one bridge call before its event goes to the dead-letter queue (omni.dlq.tickets-<bridge>). 0: the bus default (nats.consumer.max_deliver)."`
	Backoff    []time.Duration `yaml:"backoff" doc:"Delays before the 2nd, 3rd, ... attempt; the last one repeats. Empty: the bus default."`
}

// TimeoutConfig bounds the service's work.
type TimeoutConfig struct {
	Handler time.Duration `yaml:"handler" doc:"Bound of handling one bus message (a bridge call included)."`
	Sweep   time.Duration `yaml:"sweep" doc:"How often a replica looks for changes a crashed replica stored but did not publish yet."`
}

// LanguageOptions say where the customer's language comes from.
type LanguageOptions struct {
	Attribute string `yaml:"attribute" doc:"Contact attribute holding the customer's language (BCP 47); the language of the customer's messages is used when it is empty."`
}

// Notification template keys besides the statuses.
const (
	notifyCreated      = "created"
	notifyReopened     = "reopened"
	notifySurvey       = "survey"
	notifySurveyThanks = "survey_thanks"
)

// builtinTemplates are the texts shipped for English and Chinese.
var builtinTemplates = map[string]Templates{
	"en": {
		Created:      "We have opened ticket #{{.Number}} for your request: {{.Subject}}. We will keep you posted here.",
		Open:         "Ticket #{{.Number}} is being worked on.",
		Pending:      "Ticket #{{.Number}}: we need more information from you. Please reply to this message.",
		OnHold:       "Ticket #{{.Number}} is on hold while we wait for a third party. We will update you.",
		Solved:       "Ticket #{{.Number}} has been solved. If anything is still wrong, just reply and we will reopen it.",
		Closed:       "Ticket #{{.Number}} is now closed.",
		Reopened:     "Ticket #{{.Number}} has been reopened; we are looking into it again.",
		Survey:       "How satisfied are you with how we handled ticket #{{.Number}}? Reply with a number from 1 (very dissatisfied) to 5 (very satisfied).",
		SurveyThanks: "Thank you for your feedback!",
	},
	"zh": {
		Created:      "我们已为您的问题创建工单 #{{.Number}}：{{.Subject}}。处理进展会在这里通知您。",
		Open:         "工单 #{{.Number}} 正在处理中。",
		Pending:      "工单 #{{.Number}}：我们需要您提供更多信息，请直接回复此消息。",
		OnHold:       "工单 #{{.Number}} 正在等待第三方处理，我们会及时通知您。",
		Solved:       "工单 #{{.Number}} 已解决。如仍有问题，请直接回复，我们会重新处理。",
		Closed:       "工单 #{{.Number}} 已关闭。",
		Reopened:     "工单 #{{.Number}} 已重新打开，我们会继续跟进。",
		Survey:       "您对工单 #{{.Number}} 的处理满意吗？请回复 1（非常不满意）到 5（非常满意）之间的数字。",
		SurveyThanks: "感谢您的反馈！",
	},
}

// notifyKeys are the values Notify.On accepts.
var notifyKeys = []string{notifyCreated, string(StatusOpen), string(StatusPending), string(StatusOnHold),
	string(StatusSolved), string(StatusClosed), notifyReopened}

// SetDefaults fills every unset key, the bridges' included.
func (c *Config) SetDefaults() {
	if c.FirstNumber == 0 {
		c.FirstNumber = 1
	}
	if c.DefaultPriority == "" {
		c.DefaultPriority = string(PriorityNormal)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SLA.Urgent, 4*time.Hour)
	def(&c.SLA.High, 24*time.Hour)
	def(&c.SLA.Normal, 72*time.Hour)
	def(&c.SLA.Low, 7*24*time.Hour)
	def(&c.ReopenWindow, 7*24*time.Hour)
	if c.OpenOnReply == nil {
		on := true
		c.OpenOnReply = &on
	}
	n := &c.Notify
	if n.Enabled == nil {
		on := true
		n.Enabled = &on
	}
	if n.On == nil {
		n.On = []string{notifyCreated, string(StatusPending), string(StatusOnHold), string(StatusSolved), notifyReopened}
	}
	for i, k := range n.On {
		n.On[i] = strings.ToLower(strings.TrimSpace(k))
		if n.On[i] == "on_hold" || n.On[i] == "hold" {
			n.On[i] = string(StatusOnHold)
		}
	}
	if n.DefaultLanguage == "" {
		n.DefaultLanguage = "en"
	}
	tpl := make(map[string]Templates, len(n.Templates)+len(builtinTemplates))
	for lang, t := range n.Templates {
		tpl[normLang(lang)] = t
	}
	for lang, b := range builtinTemplates {
		t := tpl[lang]
		t.fill(b)
		tpl[lang] = t
	}
	n.Templates = tpl
	def(&c.Survey.Window, 72*time.Hour)
	def(&c.Timeouts.Handler, 25*time.Second)
	def(&c.Timeouts.Sweep, 30*time.Second)
	if c.Languages.Attribute == "" {
		c.Languages.Attribute = "language"
	}
	c.Webhook.SetDefaults()
	c.Zendesk.SetDefaults()
}

// Validate reports every problem of the section, the bridges' included.
func (c *Config) Validate() error {
	var p config.Problems
	if c.FirstNumber < 1 {
		p.Add("first_number", "must be at least 1, got %d", c.FirstNumber)
	}
	if _, err := ParsePriority(c.DefaultPriority); err != nil {
		p.Add("default_priority", "must be low, normal, high or urgent; got %q", c.DefaultPriority)
	}
	for _, s := range []struct {
		key string
		d   time.Duration
	}{{"sla.urgent", c.SLA.Urgent}, {"sla.high", c.SLA.High}, {"sla.normal", c.SLA.Normal}, {"sla.low", c.SLA.Low},
		{"reopen_window", c.ReopenWindow}, {"survey.window", c.Survey.Window},
		{"timeouts.handler", c.Timeouts.Handler}, {"timeouts.sweep", c.Timeouts.Sweep}} {
		if s.d <= 0 {
			p.Add(s.key, "must be a positive duration, got %s", s.d)
		}
	}
	for i, k := range c.Notify.On {
		if !slices.Contains(notifyKeys, k) {
			p.Add("notify.on["+strconv.Itoa(i)+"]", "must be one of %s; got %q", strings.Join(notifyKeys, ", "), k)
		}
	}
	if _, ok := c.Notify.Templates[normLang(c.Notify.DefaultLanguage)]; !ok {
		p.Add("notify.default_language", "no templates for %q: add notify.templates.%s or use one of %s",
			c.Notify.DefaultLanguage, c.Notify.DefaultLanguage, strings.Join(slices.Sorted(maps.Keys(c.Notify.Templates)), ", "))
	}
	for _, lang := range slices.Sorted(maps.Keys(c.Notify.Templates)) {
		t := c.Notify.Templates[lang]
		for _, key := range append(slices.Clone(notifyKeys), notifySurvey, notifySurveyThanks) {
			if _, err := template.New(key).Option("missingkey=error").Parse(t.get(key)); err != nil {
				p.Add("notify.templates."+lang+"."+strings.ReplaceAll(key, "-", "_"), "%v", err)
			}
		}
	}
	if c.Bridge.MaxDeliver < 0 {
		p.Add("bridge.max_deliver", "must be 0 (the bus default) or more, got %d", c.Bridge.MaxDeliver)
	}
	for i, d := range c.Bridge.Backoff {
		if d <= 0 {
			p.Add("bridge.backoff["+strconv.Itoa(i)+"]", "must be a positive duration, got %s", d)
		}
	}
	p.Merge("webhook", c.Webhook.Validate())
	p.Merge("zendesk", c.Zendesk.Validate())
	return p.Err()
}
