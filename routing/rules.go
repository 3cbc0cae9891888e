package routing

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// TierAttribute is the contact attribute the tiers condition reads.
const TierAttribute = "tier"

// rule is a compiled Rule.
type rule struct {
	Rule
	identities []*regexp.Regexp
	identityRE *regexp.Regexp
	textRE     *regexp.Regexp
	keywords   []keyword
	attributes map[string]*regexp.Regexp
	calendar   *schedule
}

// keyword is a compiled keyword: CJK keywords match anywhere, others as whole
// words.
type keyword struct {
	raw   string
	cjk   string   // lower-cased, when the keyword has CJK characters
	words []string // tokens otherwise
}

func (pl *plan) compileRule(p problems, path string, r Rule) *rule {
	cr := &rule{Rule: r, attributes: map[string]*regexp.Regexp{}}
	w := r.When
	for i, ch := range w.Channels {
		if !core.ValidChannel(ch) {
			p.Add(fmt.Sprintf("%s.when.channels[%d]", path, i), "not a channel name: %q", ch)
		}
	}
	for i, g := range w.Identities {
		if g == "" {
			p.Add(fmt.Sprintf("%s.when.identities[%d]", path, i), "empty pattern")
			continue
		}
		cr.identities = append(cr.identities, globRE(g))
	}
	cr.identityRE = compileRE(p, path+".when.identity_regex", w.IdentityRegex)
	cr.textRE = compileRE(p, path+".when.text_regex", w.TextRegex)
	for i, k := range w.Keywords {
		kw := keyword{raw: k}
		if strings.ContainsFunc(k, isCJK) {
			kw.cjk = strings.ToLower(strings.TrimSpace(k))
		} else {
			kw.words = tokens(k)
		}
		if kw.cjk == "" && len(kw.words) == 0 {
			p.Add(fmt.Sprintf("%s.when.keywords[%d]", path, i), "has no letters or digits")
			continue
		}
		cr.keywords = append(cr.keywords, kw)
	}
	for i, l := range w.Languages {
		if !languageTag.MatchString(l) {
			p.Add(fmt.Sprintf("%s.when.languages[%d]", path, i), "want a language tag like en or zh, got %q", l)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.Attributes)) {
		cr.attributes[k] = globRE(w.Attributes[k])
	}
	checkEnumOpt(p, path+".when.customer", w.Customer, "new", "returning")
	checkEnumOpt(p, path+".when.hours", w.Hours, "open", "closed")
	switch {
	case w.Calendar != "":
		if cr.calendar = pl.calendars[w.Calendar]; cr.calendar == nil {
			p.Add(path+".when.calendar", "no calendar %q under hours", w.Calendar)
		}
	case w.Hours != "":
		if len(pl.calendars) != 1 {
			p.Add(path+".when.calendar", "required with hours when there is not exactly one calendar")
		}
		for _, c := range pl.calendars {
			cr.calendar = c
		}
	}
	if w.MinScore < 0 || w.MinScore > 1 {
		p.Add(path+".when.min_score", "must be between 0 and 1, got %g", w.MinScore)
	}
	if w.MinIntentConf < 0 || w.MinIntentConf > 1 {
		p.Add(path+".when.intent_confidence", "must be between 0 and 1, got %g", w.MinIntentConf)
	}
	for i, in := range w.Intents {
		if strings.TrimSpace(in) == "" {
			p.Add(fmt.Sprintf("%s.when.intent[%d]", path, i), "empty intent")
		}
	}
	t := r.Then
	if t.Queue != "" {
		if _, ok := pl.queues[t.Queue]; !ok {
			p.Add(path+".then.queue", "no queue %q (queues: %s)", t.Queue, strings.Join(slices.Sorted(maps.Keys(pl.queues)), ", "))
		}
	}
	if t.Priority != "" {
		checkPriority(p, path+".then.priority", t.Priority)
	}
	if t.Queue == "" && t.Priority == "" && len(t.Tags) == 0 && len(t.Skills) == 0 && t.AutoReply == "" && !t.Ticket {
		p.Add(path+".then", "does nothing: set queue, priority, tags, skills, auto_reply or ticket")
	}
	return cr
}

func checkEnumOpt(p problems, path, v string, allowed ...string) {
	if v != "" {
		checkEnum(p, path, v, allowed...)
	}
}

// compileRE compiles a regular expression option; "" is no condition.
func compileRE(p problems, path, expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		p.Add(path, "%v", err)
		return nil
	}
	return re
}

// globRE turns a glob (* any run, ? one character) into an anchored,
// case-insensitive regular expression.
func globRE(g string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?is)^`)
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// facts are what the rules look at.
type facts struct {
	Message   *core.Message
	Contact   *store.Contact // nil when unknown
	Returning bool
	// ConversationTags are the conversation's tags (store.Conversation.Tags).
	ConversationTags []string
	Language         string
	Score            Classification
	// Intent is "" when there is no intent model.
	Intent           string
	IntentConfidence float64
	Now              time.Time
}

// Decision is what routing decided for a conversation.
type Decision struct {
	Queue     string   `json:"queue"`
	Priority  string   `json:"priority"`
	Tags      []string `json:"tags,omitempty"`
	Skills    []string `json:"skills,omitempty"`
	AutoReply string   `json:"auto_reply,omitempty"`
	// Ticket asks the ticket system for a ticket for the conversation.
	Ticket bool `json:"ticket,omitempty"`
	// Rules are the names of the rules that matched, in order.
	Rules []string `json:"rules,omitempty"`
	// Escalated is true when the score raised the priority or moved the queue.
	Escalated bool `json:"escalated,omitempty"`
}

// RuleTrace says how one rule fared.
type RuleTrace struct {
	Name    string `json:"name"`
	Matched bool   `json:"matched"`
	// Why lists the conditions that held; for a rule that did not match, the
	// last entry is the one that failed.
	Why []string `json:"why,omitempty"`
	// Skipped is true for rules after the deciding one.
	Skipped bool `json:"skipped,omitempty"`
}

// decide runs the rules and the escalation on f.
func (pl *plan) decide(f facts) (Decision, []RuleTrace) {
	var d Decision
	var traces []RuleTrace
	done := false
	for _, r := range pl.rules {
		if done {
			traces = append(traces, RuleTrace{Name: r.Name, Skipped: true})
			continue
		}
		ok, why := r.match(f)
		traces = append(traces, RuleTrace{Name: r.Name, Matched: ok, Why: why})
		if !ok {
			continue
		}
		d.Rules = append(d.Rules, r.Name)
		t := r.Then
		d.Queue = cmp.Or(d.Queue, t.Queue)
		d.Priority = cmp.Or(d.Priority, t.Priority)
		d.AutoReply = cmp.Or(d.AutoReply, t.AutoReply)
		d.Ticket = d.Ticket || t.Ticket
		d.Tags = addAll(d.Tags, t.Tags...)
		d.Skills = addAll(d.Skills, t.Skills...)
		done = !r.Continue
	}
	d.Queue = cmp.Or(d.Queue, pl.cfg.DefaultQueue)
	d.Priority = cmp.Or(d.Priority, pl.cfg.DefaultPriority)
	pl.escalate(&d, f.Score)
	return d, traces
}

// escalate raises d for a message scoring s; it reports whether it changed d.
func (pl *plan) escalate(d *Decision, s Classification) bool {
	e := pl.cfg.Escalation
	if e.Disabled || s.Score < e.Threshold {
		return false
	}
	before := d.Priority + "/" + d.Queue + "/" + strings.Join(d.Tags, ",")
	d.Priority = maxPriority(d.Priority, e.Priority)
	if s.Score >= e.UrgentThreshold {
		d.Priority = PriorityUrgent
	}
	if e.Queue != "" {
		d.Queue = e.Queue
	}
	d.Tags = addAll(d.Tags, e.Tags...)
	changed := before != d.Priority+"/"+d.Queue+"/"+strings.Join(d.Tags, ",")
	d.Escalated = d.Escalated || changed
	return changed
}

// match checks every condition of r, stopping at the first that fails.
func (r *rule) match(f facts) (bool, []string) {
	var why []string
	check := func(ok bool, format string, args ...any) bool {
		s := fmt.Sprintf(format, args...)
		if !ok {
			s = "not: " + s
		}
		why = append(why, s)
		return ok
	}
	w, m := r.When, f.Message
	if len(w.Channels) > 0 && !check(slices.Contains(w.Channels, m.Channel), "channel %s in %v", m.Channel, w.Channels) {
		return false, why
	}
	if len(r.identities) > 0 {
		hit := ""
		for i, re := range r.identities {
			if re.MatchString(string(m.From)) {
				hit = w.Identities[i]
				break
			}
		}
		if !check(hit != "", "sender %s matches %s", m.From, cmp.Or(hit, strings.Join(w.Identities, " or "))) {
			return false, why
		}
	}
	if r.identityRE != nil && !check(r.identityRE.MatchString(string(m.From)), "sender %s matches /%s/", m.From, w.IdentityRegex) {
		return false, why
	}
	if len(r.keywords) > 0 {
		hit := r.keyword(m.Text)
		if !check(hit != "", "text contains %s", quoteAll(cmp.Or(hit, ""), w.Keywords)) {
			return false, why
		}
	}
	if r.textRE != nil && !check(r.textRE.MatchString(m.Text), "text matches /%s/", w.TextRegex) {
		return false, why
	}
	if len(w.Languages) > 0 && !check(slices.ContainsFunc(w.Languages, func(l string) bool {
		return strings.EqualFold(l, f.Language) || strings.EqualFold(l, baseLanguage(f.Language))
	}), "language %s in %v", cmp.Or(f.Language, "(unknown)"), w.Languages) {
		return false, why
	}
	attrs := map[string]string{}
	var tags []string
	if f.Contact != nil {
		attrs, tags = f.Contact.Attributes, f.Contact.Tags
	}
	if len(w.Tiers) > 0 && !check(slices.Contains(w.Tiers, attrs[TierAttribute]), "tier %s in %v", cmp.Or(attrs[TierAttribute], "(none)"), w.Tiers) {
		return false, why
	}
	for _, t := range w.Tags {
		if !check(slices.Contains(tags, t), "contact tagged %s", t) {
			return false, why
		}
	}
	for _, t := range w.ConversationTags {
		if !check(slices.Contains(f.ConversationTags, strings.ToLower(strings.TrimSpace(t))), "conversation tagged %s", t) {
			return false, why
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.attributes)) {
		v, ok := attrs[k]
		if !check(ok && r.attributes[k].MatchString(v), "attribute %s=%q matches %q", k, v, w.Attributes[k]) {
			return false, why
		}
	}
	switch w.Customer {
	case "new":
		if !check(!f.Returning, "new customer") {
			return false, why
		}
	case "returning":
		if !check(f.Returning, "returning customer") {
			return false, why
		}
	}
	if w.Hours != "" && r.calendar != nil {
		open := r.calendar.Open(f.Now)
		state := "closed"
		if open {
			state = "open"
		}
		if !check(state == w.Hours, "%s hours are %s at %s", r.calendar.name, w.Hours, f.Now.In(r.calendar.loc).Format("Mon 15:04 MST")) {
			return false, why
		}
	}
	if w.MinScore > 0 && !check(f.Score.Score >= w.MinScore, "score %.2f at least %.2f", f.Score.Score, w.MinScore) {
		return false, why
	}
	if len(w.Intents) > 0 && !check(slices.Contains(w.Intents, f.Intent), "intent %s in %v", cmp.Or(f.Intent, "(no intent model)"), w.Intents) {
		return false, why
	}
	if w.MinIntentConf > 0 && !check(f.Intent != "" && f.IntentConfidence >= w.MinIntentConf, "intent confidence %.2f at least %.2f", f.IntentConfidence, w.MinIntentConf) {
		return false, why
	}
	if len(why) == 0 {
		why = append(why, "no conditions")
	}
	return true, why
}

// quoteAll quotes hit, or every one of all joined with "or".
func quoteAll(hit string, all []string) string {
	if hit != "" {
		return strconv.Quote(hit)
	}
	q := make([]string, len(all))
	for i, s := range all {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " or ")
}

// keyword returns the first keyword of r in text, or "".
func (r *rule) keyword(text string) string {
	lower := strings.ToLower(text)
	toks := tokens(text)
	for _, k := range r.keywords {
		if k.cjk != "" {
			if strings.Contains(lower, k.cjk) {
				return k.raw
			}
			continue
		}
		for i := range toks {
			if matchAt(toks, i, k.words) {
				return k.raw
			}
		}
	}
	return ""
}

// addAll appends the values of vs that list does not hold yet.
func addAll(list []string, vs ...string) []string {
	for _, v := range vs {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
