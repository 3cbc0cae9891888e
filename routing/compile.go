package routing

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/omnigate/omnigate/config"
)

// problems collects configuration problems with their paths.
type problems = *config.Problems

// plan is a validated, compiled Config: what the router and Explain run on.
type plan struct {
	cfg       Config
	queues    map[string]*queuePlan
	rules     []*rule
	calendars map[string]*schedule
	templates map[string]map[string]*template.Template // name -> language -> template
	agents    map[string]Agent                         // configured agents, capacity filled
}

// queuePlan is a queue with its calendar.
type queuePlan struct {
	Queue
	name  string
	hours *schedule // nil: always open
}

// targets are the SLA targets of q for priority.
func (q *queuePlan) targets(priority string) SLATargets {
	t := SLATargets{FirstResponse: q.SLA.FirstResponse, NextResponse: q.SLA.NextResponse}
	if o, ok := q.SLA.Priorities[priority]; ok {
		if o.FirstResponse > 0 {
			t.FirstResponse = o.FirstResponse
		}
		if o.NextResponse > 0 {
			t.NextResponse = o.NextResponse
		}
	}
	return t
}

// open reports whether q is within its hours at t.
func (q *queuePlan) open(t time.Time) bool { return q.hours == nil || q.hours.Open(t) }

// due is when target has passed after start: in business time when the queue
// counts only its hours.
func (q *queuePlan) due(start time.Time, target time.Duration) time.Time {
	if q.hours != nil && q.SLA.BusinessTime != nil && *q.SLA.BusinessTime {
		return q.hours.AddBusiness(start, target)
	}
	return start.Add(target)
}

// member reports whether agent belongs to q.
func (q *queuePlan) member(agent string) bool { return slices.Contains(q.Agents, agent) }

// compile validates c (already defaulted) and compiles it, adding every
// problem to p. The plan is usable only when p has none.
func compile(c *Config, p problems) *plan {
	c.validate(p)
	pl := &plan{
		cfg:       *c,
		queues:    map[string]*queuePlan{},
		calendars: map[string]*schedule{},
		templates: map[string]map[string]*template.Template{},
		agents:    c.agentsByID(),
	}
	for _, name := range slices.Sorted(maps.Keys(c.Hours)) {
		pl.calendars[name] = compileHours(p, "hours."+name, name, c.Hours[name])
	}
	for name, q := range c.Queues {
		qp := &queuePlan{Queue: q, name: name}
		if q.Hours != "" {
			qp.hours = pl.calendars[q.Hours]
		}
		pl.queues[name] = qp
	}
	pl.compileTemplates(p, c)
	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		q := c.Queues[name]
		for _, t := range []struct{ key, name string }{{"ack_template", q.AckTemplate}, {"out_of_hours_template", q.OutOfHoursTemplate}} {
			if _, ok := pl.templates[t.name]; !ok {
				p.Add("queues."+name+"."+t.key, "no template %q (templates: %s)", t.name, strings.Join(slices.Sorted(maps.Keys(pl.templates)), ", "))
			}
		}
	}
	for i := range c.Rules {
		pl.rules = append(pl.rules, pl.compileRule(p, "rules["+strconv.Itoa(i)+"]", c.Rules[i]))
	}
	return pl
}

// builtinTemplates are the auto-replies every config has unless it replaces
// them.
var builtinTemplates = map[string]Template{
	TemplateAck: {
		"en": "Thanks for your message, we have received it. An agent will reply in {{.Wait}}.",
		"zh": "您好，我们已收到您的消息，客服将在{{.Wait}}内回复您。",
	},
	TemplateOutOfHours: {
		"en": "Thanks for your message. We are closed right now and will be back {{.NextOpen}}; an agent will reply then.",
		"zh": "您好，我们目前不在服务时间，将于{{.NextOpen}}恢复服务，届时客服会尽快回复您。",
	},
}

func (pl *plan) compileTemplates(p problems, c *Config) {
	all := map[string]Template{}
	for name, t := range builtinTemplates {
		all[name] = maps.Clone(t)
	}
	for name, t := range c.Templates {
		if all[name] == nil {
			all[name] = Template{}
		}
		maps.Copy(all[name], t)
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		path := "templates." + name
		if !templateName.MatchString(name) {
			p.Add(path, "template names are lower-case snake_case, like ack or vip_welcome")
		}
		if len(all[name]) == 0 {
			p.Add(path, "needs the text in at least one language")
		}
		pl.templates[name] = map[string]*template.Template{}
		for _, lang := range slices.Sorted(maps.Keys(all[name])) {
			text := all[name][lang]
			if !languageTag.MatchString(lang) {
				p.Add(path+"."+lang, "want a language tag like en, zh or pt-BR")
			}
			if strings.TrimSpace(text) == "" {
				p.Add(path+"."+lang, "empty text")
				continue
			}
			t, err := template.New(name + "." + lang).Option("missingkey=error").Parse(text)
			if err != nil {
				p.Add(path+"."+lang, "%v", err)
				continue
			}
			// Executing on sample data catches unknown fields now, not when a
			// customer is waiting.
			if err := t.Execute(discard{}, replyData{}); err != nil {
				p.Add(path+"."+lang, "%s (a template can use .Queue, .Wait, .NextOpen, .Name and .Channel)",
					strings.TrimPrefix(err.Error(), "template: "+name+"."+lang+":"))
				continue
			}
			pl.templates[name][strings.ToLower(lang)] = t
		}
	}
	for i, r := range c.Rules {
		if r.Then.AutoReply == "" {
			continue
		}
		if _, ok := all[r.Then.AutoReply]; !ok {
			p.Add("rules["+strconv.Itoa(i)+"].then.auto_reply", "no template %q (templates: %s)", r.Then.AutoReply, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
		}
	}
}

var (
	templateName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	languageTag  = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

// discard is an io.Writer that drops everything.
type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// template picks name's text for language: the exact tag, then its base
// language, then the default language, then any (sorted, for stability).
func (pl *plan) template(name, language string) (*template.Template, string) {
	ts := pl.templates[name]
	if len(ts) == 0 {
		return nil, ""
	}
	for _, l := range []string{strings.ToLower(language), baseLanguage(language), strings.ToLower(pl.cfg.DefaultLanguage)} {
		if t, ok := ts[l]; ok && l != "" {
			return t, l
		}
	}
	first := slices.Sorted(maps.Keys(ts))[0]
	return ts[first], first
}

// queue returns the queue called name, or the default queue.
func (pl *plan) queue(name string) *queuePlan {
	if q, ok := pl.queues[name]; ok {
		return q
	}
	return pl.queues[pl.cfg.DefaultQueue]
}

// agent returns the configuration of agent id: configured, or the defaults.
func (pl *plan) agent(id string) Agent {
	if a, ok := pl.agents[id]; ok {
		return a
	}
	return Agent{ID: id, Capacity: pl.cfg.DefaultCapacity}
}

// queuesOf lists the queues agent is a member of, sorted.
func (pl *plan) queuesOf(agent string) []string {
	var out []string
	for name, q := range pl.queues {
		if q.member(agent) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
