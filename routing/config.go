package routing

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// Config is the routing section of omnigate.yaml (routing: ...). Decode it with
// config.DecodeSection(file, node, config.EnvName("routing"), &cfg), which calls
// SetDefaults and Validate and locates every problem in the file.
type Config struct {
	DefaultQueue    string              `yaml:"default_queue" doc:"Queue of a conversation that no rule sends elsewhere. Default: the only queue, or the queue called default."`
	DefaultPriority string              `yaml:"default_priority" doc:"Priority of a conversation that no rule gives one: low, normal, high or urgent."`
	DefaultLanguage string              `yaml:"default_language" doc:"Language of auto-replies when the customer's language has no template text."`
	Queues          map[string]Queue    `yaml:"queues" default:"one queue called default (slack desk, manual)" doc:"Queues by name (1-64 of [A-Za-z0-9_-]). Each lives on one desk channel and has its own assignment, hours, acknowledgement and SLA."`
	Rules           []Rule              `yaml:"rules" doc:"Routing rules, tried in order: the first matching rule without continue decides. Not settable from the environment."`
	Agents          []Agent             `yaml:"agents" doc:"Agents with their skills and capacity. Agents listed in a queue but not here get default_capacity and no skills."`
	DefaultCapacity int                 `yaml:"default_capacity" doc:"How many open conversations an agent gets assigned at most, unless the agent sets capacity."`
	Hours           map[string]Hours    `yaml:"hours" doc:"Business hours calendars by name; queues and rules refer to them."`
	Templates       map[string]Template `yaml:"templates" doc:"Auto-reply texts by name, each a map of language -> Go text/template. Built in: ack and out_of_hours in en and zh; entries here replace or add languages."`
	Escalation      Escalation          `yaml:"escalation" doc:"Escalation of angry, urgent or churning customers by sentiment."`
	Models          Models              `yaml:"models" doc:"Trained intent and sentiment models; see docs/models.md."`
	Workers         int                 `yaml:"workers" doc:"Transcript messages handled at once by each replica."`
	TimerScan       time.Duration       `yaml:"timer_scan" doc:"How often a replica lists all pending timers, picking up those armed by a replica that stopped. A timer armed by a running replica fires on time regardless."`
	WaitSamples     int                 `yaml:"wait_samples" doc:"How many recent response times per queue the expected wait is computed from."`
	WaitWindow      time.Duration       `yaml:"wait_window" doc:"Response times older than this are left out of the expected wait."`
}

// Queue is one queue: where its conversations are shown and how they are
// assigned, acknowledged and timed.
type Queue struct {
	Desk               string        `yaml:"desk" doc:"Desk adapter the queue's conversations are shown on."`
	Channel            string        `yaml:"channel" doc:"Channel on the desk for this queue, e.g. a Slack channel id C0123456789; sent to the desk with every routing event."`
	Strategy           string        `yaml:"strategy" doc:"Assignment: manual (agents claim), round_robin, least_active (fewest open conversations), sticky (the customer's previous agent, else fallback) or skills (agents with every skill the rules ask for, least active first, else fallback)."`
	Fallback           string        `yaml:"fallback" default:"least_active for sticky, else manual" doc:"Strategy used when sticky or skills finds nobody: manual, round_robin or least_active."`
	Agents             []string      `yaml:"agents" doc:"Members of the queue, as desk identities (slack:U0123ABCD)."`
	Hours              string        `yaml:"hours" doc:"Business hours calendar (a name under hours). Empty: always open."`
	AckAfter           time.Duration `yaml:"ack_after" doc:"Send the ack template on the customer's channel when no agent answered within this time, with the expected wait. 0 sends none."`
	DefaultWait        time.Duration `yaml:"default_wait" doc:"Expected wait told to customers while the queue has too few recent response times to compute one."`
	OutOfHoursReply    *bool         `yaml:"out_of_hours_reply" default:"true" doc:"Answer a customer who writes outside the queue's hours with the out_of_hours template and the next opening time, once per closed period."`
	AckTemplate        string        `yaml:"ack_template" doc:"Template of the acknowledgement."`
	AckQuickReplies    []string      `yaml:"ack_quick_replies" doc:"Answers the acknowledgement offers, one tap each where the channel has buttons (Telegram), e.g. [Track my order, Talk to a person]; the customer's choice comes back as their message."`
	OutOfHoursTemplate string        `yaml:"out_of_hours_template" doc:"Template of the out-of-hours reply."`
	SLA                SLA           `yaml:"sla" doc:"Response time targets and what happens on a breach."`
}

// SLA are a queue's response targets.
type SLA struct {
	FirstResponse time.Duration         `yaml:"first_response" doc:"Time from the customer's first message to the first agent reply. 0: no target."`
	NextResponse  time.Duration         `yaml:"next_response" doc:"Time from a customer message after an agent reply to the next agent reply. 0: no target."`
	Priorities    map[string]SLATargets `yaml:"priorities" doc:"Targets by priority (low, normal, high, urgent), replacing first_response and next_response where set."`
	BusinessTime  *bool                 `yaml:"business_time" default:"true when the queue has hours" doc:"Count only the queue's business hours towards the targets."`
	Mention       string                `yaml:"mention" doc:"Group mentioned in the desk when a target is breached, e.g. <!subteam^S0123ABC> or @support-leads."`
	Overflow      string                `yaml:"overflow" doc:"Queue a conversation moves to when a target is breached. Empty: it stays."`
}

// SLATargets are the targets of one priority.
type SLATargets struct {
	FirstResponse time.Duration `yaml:"first_response" doc:"First response target for this priority."`
	NextResponse  time.Duration `yaml:"next_response" doc:"Next response target for this priority."`
}

// Agent describes one agent.
type Agent struct {
	ID       string   `yaml:"id" doc:"The agent's desk identity, e.g. slack:U0123ABCD."`
	Name     string   `yaml:"name" doc:"Display name, for logs and explanations."`
	Skills   []string `yaml:"skills" doc:"Skills, matched against the skills rules ask for (e.g. billing, zh)."`
	Capacity int      `yaml:"capacity" doc:"Open conversations assigned at most; 0 uses default_capacity."`
}

// Rule matches conversations and says where they go. Every condition set in
// When must hold; a rule with no condition matches everything.
type Rule struct {
	Name     string `yaml:"name" default:"rule-<n>" doc:"Name shown in explanations and desk events."`
	When     Match  `yaml:"when" doc:"Conditions; all that are set must hold."`
	Then     Action `yaml:"then" doc:"What a match does."`
	Continue bool   `yaml:"continue" doc:"Go on with the next rules after a match. A value (queue, priority, auto_reply) is set by the first matching rule that sets it; tags and skills add up."`
}

// Match are the conditions of a rule.
type Match struct {
	Channels         []string          `yaml:"channels" doc:"The message came on one of these channels."`
	Identities       []string          `yaml:"identities" doc:"The sender identity matches one of these globs (* any run, ? one character, case-insensitive), e.g. email:*@bigcorp.com."`
	IdentityRegex    string            `yaml:"identity_regex" doc:"The sender identity matches this regular expression (RE2)."`
	Keywords         []string          `yaml:"keywords" doc:"The text contains one of these, case-insensitive; Latin words must match whole words, CJK anywhere."`
	TextRegex        string            `yaml:"text_regex" doc:"The text matches this regular expression (RE2; add (?i) to ignore case)."`
	Languages        []string          `yaml:"languages" doc:"The customer's language (the channel's, else detected) is one of these, e.g. zh."`
	Tiers            []string          `yaml:"tiers" doc:"The contact's tier attribute is one of these."`
	Tags             []string          `yaml:"tags" doc:"The contact has every one of these tags."`
	ConversationTags []string          `yaml:"conversation_tags" doc:"The conversation has every one of these tags (agents' /omni tag, a rule's then.tags; a reopened conversation keeps them)."`
	Attributes       map[string]string `yaml:"attributes" doc:"Each contact attribute matches its glob."`
	Customer         string            `yaml:"customer" doc:"new (no earlier conversation) or returning."`
	Hours            string            `yaml:"hours" doc:"open or closed: inside or outside business hours of calendar."`
	Calendar         string            `yaml:"calendar" doc:"Calendar for hours. Default: the only calendar."`
	MinScore         float64           `yaml:"min_score" doc:"The escalation score of the message is at least this (0 to 1)."`
	Intents          []string          `yaml:"intent" doc:"The intent model's intent of the message is one of these, e.g. [card_arrival, lost_or_stolen_card]; unknown matches a message no intent fits."`
	MinIntentConf    float64           `yaml:"intent_confidence" doc:"The intent model's confidence in the message's intent is at least this (0 to 1)."`
}

// Action is what a matching rule does.
type Action struct {
	Queue     string   `yaml:"queue" doc:"Queue to route to."`
	Priority  string   `yaml:"priority" doc:"Priority: low, normal, high or urgent."`
	Tags      []string `yaml:"tags" doc:"Tags for the conversation, shown on the desk."`
	Skills    []string `yaml:"skills" doc:"Skills an agent needs (for the skills strategy)."`
	AutoReply string   `yaml:"auto_reply" doc:"Template sent to the customer at once, once per conversation opening."`
	Ticket    bool     `yaml:"ticket" doc:"Ask the ticket system for a ticket for the conversation (event ticket.create), once per conversation opening."`
}

// Hours is a business hours calendar.
type Hours struct {
	TimeZone string   `yaml:"time_zone" doc:"IANA time zone, e.g. Europe/Paris or Asia/Shanghai."`
	Weekdays string   `yaml:"weekdays" doc:"Hours of Monday to Friday unless the day is set, e.g. 09:00-18:00 or 09:00-12:00,13:00-18:00."`
	Mon      string   `yaml:"mon" doc:"Monday's hours; closed for none."`
	Tue      string   `yaml:"tue" doc:"Tuesday's hours."`
	Wed      string   `yaml:"wed" doc:"Wednesday's hours."`
	Thu      string   `yaml:"thu" doc:"Thursday's hours."`
	Fri      string   `yaml:"fri" doc:"Friday's hours."`
	Sat      string   `yaml:"sat" doc:"Saturday's hours."`
	Sun      string   `yaml:"sun" doc:"Sunday's hours."`
	Holidays []string `yaml:"holidays" doc:"Dates closed all day, YYYY-MM-DD in the calendar's time zone."`
}

// Template is one auto-reply in several languages: language -> text/template
// text. The text sees .Queue, .Wait (the expected wait, in words), .NextOpen
// (the next opening, in the queue's time zone), .Name (the contact's name) and
// .Channel.
type Template map[string]string

// Escalation raises the priority of conversations whose messages score high:
// angry, urgent, threatening to leave.
type Escalation struct {
	Disabled        bool             `yaml:"disabled" doc:"Turn escalation by score off."`
	Threshold       float64          `yaml:"threshold" doc:"A message scoring at least this (0 to 1) escalates its conversation."`
	Priority        string           `yaml:"priority" doc:"Priority an escalated conversation gets at least."`
	UrgentThreshold float64          `yaml:"urgent_threshold" doc:"A message scoring at least this makes the conversation urgent."`
	Queue           string           `yaml:"queue" doc:"Queue escalated conversations move to, e.g. a senior team. Empty: they stay."`
	Tags            []string         `yaml:"tags" doc:"Tags an escalated conversation gets."`
	Classifier      ClassifierConfig `yaml:"classifier" doc:"External scorer; without url the built-in English/Chinese scorer is used."`
}

// ClassifierConfig is an HTTP hook that scores messages: POST {"text","language"},
// answer {"score","labels"}.
type ClassifierConfig struct {
	URL     string        `yaml:"url" doc:"Endpoint that scores a message. Empty uses the built-in scorer."`
	Token   config.Secret `yaml:"token" doc:"Sent as Authorization: Bearer <token>; write it as ${env:CLASSIFIER_TOKEN}."`
	Timeout time.Duration `yaml:"timeout" doc:"How long to wait for a score before falling back to the built-in scorer."`
}

// Priorities, lowest first.
const (
	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
	PriorityUrgent = "urgent"
)

var priorities = []string{PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent}

// priorityRank orders priorities; unknown ones rank as normal.
func priorityRank(p string) int {
	if i := slices.Index(priorities, p); i >= 0 {
		return i
	}
	return 1
}

// maxPriority returns the higher of a and b.
func maxPriority(a, b string) string {
	if priorityRank(b) > priorityRank(a) {
		return b
	}
	return a
}

// Assignment strategies.
const (
	StrategyManual      = "manual"
	StrategyRoundRobin  = "round_robin"
	StrategyLeastActive = "least_active"
	StrategySticky      = "sticky"
	StrategySkills      = "skills"
)

var strategies = []string{StrategyManual, StrategyRoundRobin, StrategyLeastActive, StrategySticky, StrategySkills}

// Built-in template names.
const (
	TemplateAck        = "ack"
	TemplateOutOfHours = "out_of_hours"
)

// DefaultQueueName is the queue made when none is configured.
const DefaultQueueName = "default"

// SetDefaults fills every unset key.
func (c *Config) SetDefaults() {
	if len(c.Queues) == 0 {
		c.Queues = map[string]Queue{DefaultQueueName: {}}
	}
	if c.DefaultQueue == "" {
		switch {
		case len(c.Queues) == 1:
			for name := range c.Queues {
				c.DefaultQueue = name
			}
		default:
			if _, ok := c.Queues[DefaultQueueName]; ok {
				c.DefaultQueue = DefaultQueueName
			}
		}
	}
	if c.DefaultPriority == "" {
		c.DefaultPriority = PriorityNormal
	}
	if c.DefaultLanguage == "" {
		c.DefaultLanguage = "en"
	}
	if c.DefaultCapacity == 0 {
		c.DefaultCapacity = 5
	}
	for name, q := range c.Queues {
		q.SetDefaults()
		c.Queues[name] = q
	}
	for i := range c.Rules {
		if c.Rules[i].Name == "" {
			c.Rules[i].Name = "rule-" + itoa(i+1)
		}
	}
	c.Escalation.setDefaults()
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.TimerScan == 0 {
		c.TimerScan = 30 * time.Second
	}
	if c.WaitSamples == 0 {
		c.WaitSamples = 50
	}
	if c.WaitWindow == 0 {
		c.WaitWindow = 24 * time.Hour
	}
}

// SetDefaults fills the queue's unset keys: desk slack, strategy manual,
// default_wait 15m, out_of_hours_reply true, the built-in templates, and
// business-time SLAs when the queue has hours.
func (q *Queue) SetDefaults() {
	if q.Desk == "" {
		q.Desk = "slack"
	}
	if q.Strategy == "" {
		q.Strategy = StrategyManual
	}
	if q.Fallback == "" {
		switch q.Strategy {
		case StrategySticky:
			q.Fallback = StrategyLeastActive
		default:
			q.Fallback = StrategyManual
		}
	}
	if q.DefaultWait == 0 {
		q.DefaultWait = 15 * time.Minute
	}
	if q.OutOfHoursReply == nil {
		t := true
		q.OutOfHoursReply = &t
	}
	if q.AckTemplate == "" {
		q.AckTemplate = TemplateAck
	}
	if q.OutOfHoursTemplate == "" {
		q.OutOfHoursTemplate = TemplateOutOfHours
	}
	if q.SLA.BusinessTime == nil {
		t := q.Hours != ""
		q.SLA.BusinessTime = &t
	}
}

func (e *Escalation) setDefaults() {
	if e.Threshold == 0 {
		e.Threshold = 0.6
	}
	if e.UrgentThreshold == 0 {
		e.UrgentThreshold = 0.85
	}
	if e.Priority == "" {
		e.Priority = PriorityHigh
	}
	if e.Classifier.Timeout == 0 {
		e.Classifier.Timeout = 2 * time.Second
	}
}

// Validate reports every problem, with its path below routing. It compiles
// everything New compiles (patterns, time zones, templates), so a config that
// validates builds a Router.
func (c *Config) Validate() error {
	var p config.Problems
	_ = compile(c, &p)
	return p.Err()
}

// validate checks the keys that need no compiling.
func (c *Config) validate(p *config.Problems) {
	if c.DefaultQueue == "" {
		p.Add("default_queue", "required when there are several queues and none is called %q", DefaultQueueName)
	} else if _, ok := c.Queues[c.DefaultQueue]; !ok {
		p.Add("default_queue", "no queue %q (queues: %s)", c.DefaultQueue, strings.Join(slices.Sorted(maps.Keys(c.Queues)), ", "))
	}
	checkPriority(p, "default_priority", c.DefaultPriority)
	if c.DefaultCapacity < 1 {
		p.Add("default_capacity", "must be at least 1, got %d", c.DefaultCapacity)
	}
	if c.Workers < 1 || c.Workers > 256 {
		p.Add("workers", "must be between 1 and 256, got %d", c.Workers)
	}
	if c.TimerScan < time.Second {
		p.Add("timer_scan", "must be at least 1s, got %s", c.TimerScan)
	}
	if c.WaitSamples < 1 || c.WaitSamples > 1000 {
		p.Add("wait_samples", "must be between 1 and 1000, got %d", c.WaitSamples)
	}
	if c.WaitWindow <= 0 {
		p.Add("wait_window", "must be a positive duration, got %s", c.WaitWindow)
	}
	seen := map[string]int{}
	for i, a := range c.Agents {
		path := "agents[" + itoa(i) + "]"
		switch _, err := core.ParseIdentity(a.ID); {
		case a.ID == "":
			p.Add(path+".id", "required: the agent's desk identity, e.g. slack:U0123ABCD")
		case err != nil:
			p.Add(path+".id", "must be a desk identity like slack:U0123ABCD, got %q", a.ID)
		}
		if j, dup := seen[a.ID]; dup && a.ID != "" {
			p.Add(path+".id", "agent %q is already listed at agents[%d]", a.ID, j)
		}
		seen[a.ID] = i
		if a.Capacity < 0 {
			p.Add(path+".capacity", "must not be negative, got %d", a.Capacity)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		c.validateQueue(p, name, c.Queues[name])
	}
	e := c.Escalation
	if t := c.Models.IntentThreshold; t < 0 || t > 1 {
		p.Add("models.intent_threshold", "must be between 0 and 1, got %g", t)
	}
	if c.Models.Reload < 0 {
		p.Add("models.reload", "must not be negative, got %s", c.Models.Reload)
	}
	for lang := range c.Models.Sentiment {
		if !languageTag.MatchString(lang) {
			p.Add("models.sentiment."+lang, "want a language tag like en or zh")
		}
	}
	checkScore(p, "escalation.threshold", e.Threshold)
	checkScore(p, "escalation.urgent_threshold", e.UrgentThreshold)
	if e.UrgentThreshold < e.Threshold {
		p.Add("escalation.urgent_threshold", "must not be below threshold (%g), got %g", e.Threshold, e.UrgentThreshold)
	}
	checkPriority(p, "escalation.priority", e.Priority)
	if e.Queue != "" {
		c.checkQueueRef(p, "escalation.queue", e.Queue)
	}
	if e.Classifier.URL != "" {
		if u, err := url.Parse(e.Classifier.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("escalation.classifier.url", "must be an absolute http:// or https:// URL, got %q", e.Classifier.URL)
		}
	}
	if e.Classifier.Timeout <= 0 {
		p.Add("escalation.classifier.timeout", "must be a positive duration, got %s", e.Classifier.Timeout)
	}
}

func (c *Config) validateQueue(p *config.Problems, name string, q Queue) {
	path := "queues." + name
	if !bus.ValidToken(name) || len(name) > 64 {
		p.Add(path, "queue names are 1-64 of letters, digits, '_' and '-'")
	}
	if !core.ValidChannel(q.Desk) {
		p.Add(path+".desk", "must be a desk adapter name like slack, got %q", q.Desk)
	}
	checkEnum(p, path+".strategy", q.Strategy, strategies...)
	checkEnum(p, path+".fallback", q.Fallback, StrategyManual, StrategyRoundRobin, StrategyLeastActive)
	for i, a := range q.Agents {
		if _, err := core.ParseIdentity(a); err != nil {
			p.Add(path+".agents["+itoa(i)+"]", "must be a desk identity like slack:U0123ABCD, got %q", a)
		}
		if slices.Index(q.Agents, a) < i {
			p.Add(path+".agents["+itoa(i)+"]", "%q is listed twice", a)
		}
	}
	if q.Strategy != StrategyManual && len(q.Agents) == 0 {
		p.Add(path+".agents", "strategy %s needs the queue's agents", q.Strategy)
	}
	if q.Hours != "" {
		if _, ok := c.Hours[q.Hours]; !ok {
			p.Add(path+".hours", "no calendar %q under hours", q.Hours)
		}
	}
	if q.AckAfter < 0 {
		p.Add(path+".ack_after", "must not be negative, got %s", q.AckAfter)
	}
	if q.DefaultWait <= 0 {
		p.Add(path+".default_wait", "must be a positive duration, got %s", q.DefaultWait)
	}
	s := q.SLA
	if s.FirstResponse < 0 {
		p.Add(path+".sla.first_response", "must not be negative, got %s", s.FirstResponse)
	}
	if s.NextResponse < 0 {
		p.Add(path+".sla.next_response", "must not be negative, got %s", s.NextResponse)
	}
	for _, pr := range slices.Sorted(maps.Keys(s.Priorities)) {
		pp := path + ".sla.priorities." + pr
		checkPriority(p, pp, pr)
		if t := s.Priorities[pr]; t.FirstResponse < 0 || t.NextResponse < 0 {
			p.Add(pp, "targets must not be negative")
		}
	}
	if s.Overflow != "" {
		c.checkQueueRef(p, path+".sla.overflow", s.Overflow)
		if s.Overflow == name {
			p.Add(path+".sla.overflow", "must be another queue")
		}
	}
}

func (c *Config) checkQueueRef(p *config.Problems, path, q string) {
	if _, ok := c.Queues[q]; !ok {
		p.Add(path, "no queue %q (queues: %s)", q, strings.Join(slices.Sorted(maps.Keys(c.Queues)), ", "))
	}
}

func checkPriority(p *config.Problems, path, v string) {
	checkEnum(p, path, v, priorities...)
}

func checkScore(p *config.Problems, path string, v float64) {
	if v < 0 || v > 1 {
		p.Add(path, "must be between 0 and 1, got %g", v)
	}
}

func checkEnum(p *config.Problems, path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.Add(path, "must be one of %s; got %q", strings.Join(allowed, ", "), v)
	}
}

// agentsByID indexes the configured agents.
func (c *Config) agentsByID() map[string]Agent {
	m := make(map[string]Agent, len(c.Agents))
	for _, a := range c.Agents {
		if a.Capacity == 0 {
			a.Capacity = c.DefaultCapacity
		}
		m[a.ID] = a
	}
	return m
}
