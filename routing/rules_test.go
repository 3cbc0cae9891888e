package routing_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/routing"
)

// rulesConfig has one rule per condition, in order, each sending to its own
// queue, so the queue names the rule that decided.
func rulesConfig() routing.Config {
	q := func(names ...string) map[string]routing.Queue {
		m := map[string]routing.Queue{}
		for _, n := range names {
			m[n] = routing.Queue{Channel: "C0" + strings.ToUpper(strings.ReplaceAll(n, "_", ""))}
		}
		return m
	}
	return routing.Config{
		DefaultQueue: "general",
		Queues:       q("general", "bigcorp", "phone", "legal", "refunds", "chinese", "vip", "beta", "enterprise", "newbies", "night", "angry", "sms_only"),
		Hours:        map[string]routing.Hours{"office": {TimeZone: "Asia/Shanghai", Weekdays: "09:00-18:00"}},
		Rules: []routing.Rule{
			{Name: "tag-vip-high", Continue: true, When: routing.Match{Tags: []string{"vip"}}, Then: routing.Action{Priority: "high", Tags: []string{"vip"}}},
			{Name: "bigcorp", When: routing.Match{Identities: []string{"email:*@bigcorp.com"}}, Then: routing.Action{Queue: "bigcorp"}},
			{Name: "us-phone", When: routing.Match{IdentityRegex: `^(sms|whatsapp):\+1\d{10}$`, Keywords: []string{"phone"}}, Then: routing.Action{Queue: "phone"}},
			{Name: "legal", When: routing.Match{Keywords: []string{"lawyer", "律师"}}, Then: routing.Action{Queue: "legal", Priority: "urgent", Tags: []string{"legal"}}},
			{Name: "refunds", When: routing.Match{TextRegex: `(?i)\brefund(s|ed)?\b|退款`}, Then: routing.Action{Queue: "refunds", Skills: []string{"billing"}}},
			{Name: "chinese", When: routing.Match{Languages: []string{"zh"}, Channels: []string{"web", "app", "whatsapp"}}, Then: routing.Action{Queue: "chinese", Skills: []string{"zh"}}},
			{Name: "gold", When: routing.Match{Tiers: []string{"gold", "platinum"}}, Then: routing.Action{Queue: "vip"}},
			{Name: "beta", When: routing.Match{Tags: []string{"beta", "tester"}}, Then: routing.Action{Queue: "beta"}},
			{Name: "enterprise", When: routing.Match{Attributes: map[string]string{"plan": "enterprise*"}}, Then: routing.Action{Queue: "enterprise"}},
			{Name: "angry", When: routing.Match{MinScore: 0.5}, Then: routing.Action{Queue: "angry"}},
			{Name: "night", When: routing.Match{Hours: "closed"}, Then: routing.Action{Queue: "night", AutoReply: "out_of_hours"}},
			{Name: "newbies", When: routing.Match{Customer: "new", Channels: []string{"web"}}, Then: routing.Action{Queue: "newbies"}},
			{Name: "sms-only", When: routing.Match{Channels: []string{"sms"}}, Then: routing.Action{Queue: "sms_only"}},
		},
	}
}

// monday10 is Monday 3 March 2025, 10:00 in Shanghai: office hours.
var monday10 = time.Date(2025, 3, 3, 2, 0, 0, 0, time.UTC)

func TestExplain_Rules(t *testing.T) {
	cfg := rulesConfig()
	cfg.SetDefaults()
	type contact struct {
		attrs     map[string]string
		tags      []string
		returning bool
	}
	tests := []struct {
		name     string
		channel  string
		from     string
		text     string
		lang     string
		contact  contact
		now      time.Time
		queue    string
		priority string
		tags     []string
		skills   []string
		rules    []string
	}{
		{name: "identity glob", channel: "email", from: "email:Ann@BigCorp.com", text: "hello", queue: "bigcorp", rules: []string{"bigcorp"}},
		{name: "identity glob other domain", channel: "email", from: "email:ann@smallcorp.com", text: "hello", contact: contact{returning: true}, queue: "general"},
		{name: "identity regex and keyword", channel: "sms", from: "sms:+15551234567", text: "My phone bill", queue: "phone"},
		{name: "identity regex without keyword", channel: "sms", from: "sms:+15551234567", text: "My bill", queue: "sms_only"},
		{name: "keyword whole word only", channel: "email", from: "email:a@x.com", text: "The lawyers' office called", contact: contact{returning: true}, queue: "general"},
		{name: "keyword", channel: "email", from: "email:a@x.com", text: "My LAWYER will call", queue: "legal", priority: "urgent", tags: []string{"legal"}},
		{name: "keyword chinese substring", channel: "email", from: "email:a@x.com", text: "我已经找了律师", queue: "legal", priority: "urgent"},
		{name: "text regex", channel: "email", from: "email:a@x.com", text: "When will I be refunded?", contact: contact{returning: true}, queue: "refunds", skills: []string{"billing"}},
		{name: "text regex chinese", channel: "telegram", from: "telegram:7", text: "请问退款到哪里了", contact: contact{returning: true}, queue: "refunds"},
		{name: "language detected and channel", channel: "web", from: "web:v1", text: "你好，请问几点开门？", queue: "chinese", skills: []string{"zh"}},
		{name: "language on wrong channel", channel: "telegram", from: "telegram:8", text: "你好，请问几点开门？", contact: contact{returning: true}, queue: "general"},
		{name: "language from the channel", channel: "web", from: "web:v2", text: "hola", lang: "zh-Hans", queue: "chinese"},
		{name: "tier", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{attrs: map[string]string{"tier": "platinum"}, returning: true}, queue: "vip"},
		{name: "continue rule adds to the decider", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{tags: []string{"vip"}, attrs: map[string]string{"tier": "gold"}, returning: true}, queue: "vip", priority: "high", tags: []string{"vip"}, rules: []string{"tag-vip-high", "gold"}},
		{name: "continue rule first value wins", channel: "email", from: "email:a@x.com", text: "my lawyer", contact: contact{tags: []string{"vip"}}, queue: "legal", priority: "high", tags: []string{"vip", "legal"}},
		{name: "tags all needed", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{tags: []string{"beta"}, returning: true}, queue: "general"},
		{name: "tags", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{tags: []string{"tester", "beta"}, returning: true}, queue: "beta"},
		{name: "attribute glob", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{attrs: map[string]string{"plan": "Enterprise-2024"}, returning: true}, queue: "enterprise"},
		{name: "score", channel: "email", from: "email:a@x.com", text: "This is ridiculous and unacceptable!!", contact: contact{returning: true}, queue: "angry"},
		{name: "outside hours", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{returning: true}, now: monday10.Add(10 * time.Hour), queue: "night"},
		{name: "holiday-free weekend", channel: "email", from: "email:a@x.com", text: "hi", contact: contact{returning: true}, now: monday10.Add(5 * 24 * time.Hour), queue: "night"},
		{name: "new customer", channel: "web", from: "web:v3", text: "hi", queue: "newbies"},
		{name: "returning customer", channel: "web", from: "web:v3", text: "hi", contact: contact{returning: true}, queue: "general", priority: "normal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := core.NewMessage(core.KindMessage, core.Inbound, tt.channel)
			m.From, m.Text, m.Language = core.Identity(tt.from), tt.text, tt.lang
			c := &store.Contact{ID: "c1", Attributes: tt.contact.attrs, Tags: tt.contact.tags}
			if tt.contact.returning {
				c.LastConversation = "c0"
			}
			now := tt.now
			if now.IsZero() {
				now = monday10
			}
			e, err := routing.Explain(cfg, m, c, now)
			if err != nil {
				t.Fatal(err)
			}
			d := e.Decision
			var trace bytes.Buffer
			e.WriteTo(&trace)
			if d.Queue != tt.queue {
				t.Fatalf("queue = %s, want %s\n%s", d.Queue, tt.queue, trace.String())
			}
			if tt.priority != "" && d.Priority != tt.priority {
				t.Errorf("priority = %s, want %s", d.Priority, tt.priority)
			}
			if tt.tags != nil && !slices.Equal(d.Tags, tt.tags) {
				t.Errorf("tags = %v, want %v", d.Tags, tt.tags)
			}
			if tt.skills != nil && !slices.Equal(d.Skills, tt.skills) {
				t.Errorf("skills = %v, want %v", d.Skills, tt.skills)
			}
			if tt.rules != nil && !slices.Equal(d.Rules, tt.rules) {
				t.Errorf("rules = %v, want %v", d.Rules, tt.rules)
			}
		})
	}
}

func TestExplain_EscalationAndTrace(t *testing.T) {
	cfg := routing.Config{
		Queues: map[string]routing.Queue{"general": {}, "senior": {}},
		Rules: []routing.Rule{
			{Name: "email", When: routing.Match{Channels: []string{"email"}}, Then: routing.Action{Tags: []string{"mail"}}},
			{Name: "catch-all", Then: routing.Action{Queue: "general"}},
			{Name: "never", Then: routing.Action{Queue: "senior"}},
		},
		DefaultQueue: "general",
		Escalation:   routing.Escalation{Queue: "senior", Tags: []string{"escalated"}},
	}
	cfg.SetDefaults()
	m := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	m.From, m.Text = "sms:+15550000000", "Cancel my account. I'm done with your terrible service!!!"
	e, err := routing.Explain(cfg, m, nil, monday10)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Decision
	if d.Queue != "senior" || d.Priority != routing.PriorityUrgent || !d.Escalated || !slices.Equal(d.Tags, []string{"escalated"}) {
		t.Fatalf("decision = %+v", d)
	}
	if !slices.Contains(e.Score.Labels, routing.LabelChurn) {
		t.Fatalf("labels = %v, want churn", e.Score.Labels)
	}
	want := []struct {
		matched, skipped bool
	}{{false, false}, {true, false}, {false, true}}
	for i, w := range want {
		if r := e.Rules[i]; r.Matched != w.matched || r.Skipped != w.skipped {
			t.Errorf("rule %s: matched %v skipped %v, want %v %v", r.Name, r.Matched, r.Skipped, w.matched, w.skipped)
		}
	}
	if why := e.Rules[0].Why; len(why) != 1 || !strings.HasPrefix(why[0], "not: channel sms") {
		t.Errorf("why = %v", why)
	}
}

func TestExplainSample_PrintsTextAndJSON(t *testing.T) {
	cfg := rulesConfig()
	cfg.SetDefaults()
	var out bytes.Buffer
	err := routing.ExplainSample(&out, cfg, routing.Sample{
		Envelope: []byte(`{"channel":"email","from":"email:cfo@bigcorp.com","text":"Where is the invoice?"}`),
		Now:      monday10,
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"YES  bigcorp", "queue     bigcorp", "Language  en (detected)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := routing.ExplainSample(&out, cfg, routing.Sample{Text: "你好", Channel: "web", Now: monday10.Add(12 * time.Hour)}, true); err != nil {
		t.Fatal(err)
	}
	var e routing.Explanation
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	// Chinese on web, at night in Shanghai: the chinese rule decides first.
	if e.Decision.Queue != "chinese" || e.Language != "zh" || e.Queue.Name != "chinese" {
		t.Fatalf("explanation = %+v", e.Decision)
	}
}
