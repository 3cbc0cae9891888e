package routing

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// Explanation says what routing would do with a customer message that opens
// a conversation at a given time, and why.
type Explanation struct {
	Now     time.Time `json:"now"`
	Channel string    `json:"channel"`
	From    string    `json:"from,omitempty"`
	Text    string    `json:"text,omitempty"`
	// Language and LanguageSource ("channel", "detected" or "default").
	Language       string         `json:"language"`
	LanguageSource string         `json:"language_source"`
	Score          Classification `json:"score"`
	// Intent and IntentConfidence are the intent model's answer; "" without
	// a model.
	Intent           string      `json:"intent,omitempty"`
	IntentConfidence float64     `json:"intent_confidence,omitempty"`
	Returning        bool        `json:"returning"`
	Rules            []RuleTrace `json:"rules"`
	Decision         Decision    `json:"decision"`
	Queue            QueueInfo   `json:"queue"`
	// Replies are the auto-replies the customer would get.
	Replies []ReplyInfo `json:"replies,omitempty"`
}

// QueueInfo describes the queue a decision routes to.
type QueueInfo struct {
	Name     string `json:"name"`
	Desk     string `json:"desk"`
	Channel  string `json:"channel,omitempty"`
	Strategy string `json:"strategy"`
	Fallback string `json:"fallback,omitempty"`
	Calendar string `json:"calendar,omitempty"`
	Open     bool   `json:"open"`
	// NextOpen is the next opening when the queue is closed.
	NextOpen time.Time `json:"next_open,omitzero"`
	// FirstResponse is the target for the decided priority, and
	// FirstResponseDue when it would be breached without a reply.
	FirstResponse    time.Duration `json:"first_response,omitempty"`
	FirstResponseDue time.Time     `json:"first_response_due,omitzero"`
	NextResponse     time.Duration `json:"next_response,omitempty"`
	AckAfter         time.Duration `json:"ack_after,omitempty"`
	Mention          string        `json:"mention,omitempty"`
	Overflow         string        `json:"overflow,omitempty"`
}

// ReplyInfo is one auto-reply and when it would go out.
type ReplyInfo struct {
	Kind     string    `json:"kind"`
	Template string    `json:"template"`
	Language string    `json:"language"`
	At       time.Time `json:"at"`
	Text     string    `json:"text"`
}

// Explain evaluates cfg (defaults applied here) on m, a customer message from
// contact (nil when unknown) at now, with the built-in scorer and language
// detector, and without the store: the expected wait is the queue's
// default_wait, and the customer counts as returning when contact has a
// LastConversation. The error is config.Errors when cfg is invalid.
func Explain(cfg Config, m *core.Message, contact *store.Contact, now time.Time) (Explanation, error) {
	return explain(cfg, m, contact, now, nil, nil)
}

// ExplainWith is Explain with a scorer (nil: the built-in lexicon) and an
// intent model (nil: none), as omnigate serve would classify m.
func ExplainWith(cfg Config, m *core.Message, contact *store.Contact, now time.Time, cl TextScorer, im IntentModel) (Explanation, error) {
	return explain(cfg, m, contact, now, cl, im)
}

// explain is ExplainWith.
func explain(cfg Config, m *core.Message, contact *store.Contact, now time.Time, cl TextScorer, im IntentModel) (Explanation, error) {
	cfg.SetDefaults()
	var p config.Problems
	pl := compile(&cfg, &p)
	if err := p.Err(); err != nil {
		return Explanation{}, err
	}
	if m == nil {
		return Explanation{}, errors.New("routing: explain: no message")
	}
	e := Explanation{Now: now, Channel: m.Channel, From: string(m.From), Text: m.Text}
	f := facts{Message: m, Contact: contact, Now: now, Language: m.Language}
	e.LanguageSource = "channel"
	if f.Language == "" {
		f.Language, e.LanguageSource = DefaultDetector().Detect(m.Text), "detected"
	}
	if f.Language == "" {
		f.Language, e.LanguageSource = cfg.DefaultLanguage, "default"
	}
	f.Returning = contact != nil && contact.LastConversation != ""
	f.Score = defaultScorer.Score(m.Text, f.Language)
	if cl != nil {
		f.Score = cl.Score(m.Text, f.Language)
	}
	if im != nil && m.Text != "" {
		f.Intent, f.IntentConfidence = im.Intent(m.Text, f.Language)
	}
	e.Language, e.Score, e.Returning = f.Language, f.Score, f.Returning
	e.Intent, e.IntentConfidence = f.Intent, f.IntentConfidence
	e.Decision, e.Rules = pl.decide(f)

	q := pl.queue(e.Decision.Queue)
	t := q.targets(e.Decision.Priority)
	e.Queue = QueueInfo{
		Name: q.name, Desk: q.Desk, Channel: q.Channel, Strategy: q.Strategy, Calendar: q.Hours,
		Open: q.open(now), FirstResponse: t.FirstResponse, NextResponse: t.NextResponse, AckAfter: q.AckAfter,
		Mention: q.SLA.Mention, Overflow: q.SLA.Overflow,
	}
	if q.Strategy == StrategySticky || q.Strategy == StrategySkills {
		e.Queue.Fallback = q.Fallback
	}
	if t.FirstResponse > 0 {
		e.Queue.FirstResponseDue = q.due(now, t.FirstResponse)
	}
	conv := &store.Conversation{ID: "explain", Channel: m.Channel, LastChannel: m.Channel, LastIdentity: m.From}
	s := &convState{Queue: q.name, Language: f.Language}
	reply := func(kind, tmpl string, at time.Time, data replyData) error {
		text, lang, err := pl.render(tmpl, f.Language, data)
		if err != nil {
			return err
		}
		e.Replies = append(e.Replies, ReplyInfo{Kind: kind, Template: tmpl, Language: lang, At: at, Text: text})
		return nil
	}
	var errs []error
	if e.Decision.AutoReply != "" {
		errs = append(errs, reply("auto_reply", e.Decision.AutoReply, now, replyDataFor(pl, conv, s, now, 0)))
	}
	switch {
	case !e.Queue.Open && q.hours != nil:
		if next, ok := q.hours.NextOpen(now); ok {
			e.Queue.NextOpen = next
			if *q.OutOfHoursReply {
				data := replyDataFor(pl, conv, s, now, 0)
				data.NextOpen = humanTime(next, now, f.Language)
				errs = append(errs, reply(AutoOutOfHours, q.OutOfHoursTemplate, now, data))
			}
		}
	case q.AckAfter > 0:
		at := now.Add(q.AckAfter)
		errs = append(errs, reply(AutoAck, q.AckTemplate, at, replyDataFor(pl, conv, s, at, max(q.DefaultWait-q.AckAfter, time.Minute))))
	}
	return e, errors.Join(errs...)
}

// replyDataFor is Router.replyData without a Router.
func replyDataFor(pl *plan, conv *store.Conversation, s *convState, now time.Time, wait time.Duration) replyData {
	return (&Router{plan: pl}).replyData(conv, s, now, wait)
}

// WriteTo prints e for people, as omnigate route --explain shows it.
func (e Explanation) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Message   %s from %s at %s\n", e.Channel, cmp.Or(e.From, "(unknown sender)"), e.Now.Format(time.RFC3339))
	fmt.Fprintf(&b, "Language  %s (%s)\n", e.Language, e.LanguageSource)
	fmt.Fprintf(&b, "Score     %.2f %s\n", e.Score.Score, strings.Join(e.Score.Labels, ", "))
	if e.Intent != "" {
		fmt.Fprintf(&b, "Intent    %s (confidence %.2f)\n", e.Intent, e.IntentConfidence)
	}
	fmt.Fprintf(&b, "Customer  %s\n", map[bool]string{true: "returning", false: "new"}[e.Returning])
	b.WriteString("\nRules\n")
	if len(e.Rules) == 0 {
		b.WriteString("  (none configured)\n")
	}
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	for _, r := range e.Rules {
		mark := "  no "
		switch {
		case r.Skipped:
			mark = "  -- "
		case r.Matched:
			mark = "  YES"
		}
		why := strings.Join(r.Why, "; ")
		if r.Skipped {
			why = "not tried: an earlier rule decided"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, r.Name, why)
	}
	tw.Flush()
	d := e.Decision
	b.WriteString("\nDecision\n")
	fmt.Fprintf(&b, "  queue     %s (desk %s%s, %s)\n", d.Queue, e.Queue.Desk, optional(", channel ", e.Queue.Channel), strategyLine(e.Queue))
	fmt.Fprintf(&b, "  priority  %s%s\n", d.Priority, map[bool]string{true: " (escalated by score)", false: ""}[d.Escalated])
	if len(d.Tags) > 0 {
		fmt.Fprintf(&b, "  tags      %s\n", strings.Join(d.Tags, ", "))
	}
	if len(d.Skills) > 0 {
		fmt.Fprintf(&b, "  skills    %s\n", strings.Join(d.Skills, ", "))
	}
	if len(d.Rules) == 0 {
		b.WriteString("  by        no rule matched: default queue and priority\n")
	} else {
		fmt.Fprintf(&b, "  by        %s\n", strings.Join(d.Rules, ", "))
	}
	q := e.Queue
	switch {
	case q.Calendar == "":
		b.WriteString("  hours     always open\n")
	case q.Open:
		fmt.Fprintf(&b, "  hours     open (%s)\n", q.Calendar)
	default:
		fmt.Fprintf(&b, "  hours     closed (%s), opens %s\n", q.Calendar, q.NextOpen.Format("Mon 2 Jan 15:04 MST"))
	}
	if q.FirstResponse > 0 {
		fmt.Fprintf(&b, "  sla       first response %s, due %s", q.FirstResponse, q.FirstResponseDue.Format("Mon 2 Jan 15:04 MST"))
		if q.NextResponse > 0 {
			fmt.Fprintf(&b, "; next response %s", q.NextResponse)
		}
		b.WriteString("\n")
		if q.Mention != "" || q.Overflow != "" {
			fmt.Fprintf(&b, "  breach    mention %s, move to %s\n", cmp.Or(q.Mention, "nobody"), cmp.Or(q.Overflow, "(stays)"))
		}
	} else {
		b.WriteString("  sla       none\n")
	}
	if len(e.Replies) > 0 {
		b.WriteString("\nAuto-replies\n")
		for _, r := range e.Replies {
			when := "at once"
			if r.At.After(e.Now) {
				when = "if nobody answers by " + r.At.Format("15:04 MST")
			}
			fmt.Fprintf(&b, "  %s (%s.%s, %s):\n    %s\n", r.Kind, r.Template, r.Language, when, r.Text)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func optional(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}

func strategyLine(q QueueInfo) string {
	if q.Fallback != "" {
		return q.Strategy + ", else " + q.Fallback
	}
	return q.Strategy
}

// Sample is a message to explain, as omnigate route --explain takes it.
type Sample struct {
	// Envelope is a JSON envelope (partial is fine: missing id, v, kind and
	// direction are filled in). When set, Text, Channel, From and Language
	// only fill what it leaves empty.
	Envelope []byte
	// Text, Channel ("web" when empty), From (channel:address) and Language
	// (detected when empty) describe the message otherwise.
	Text, Channel, From, Language string
	// Attributes and Tags are the contact's; Returning says the customer had a
	// conversation before.
	Attributes map[string]string
	Tags       []string
	Returning  bool
	// Now is when the message arrives; zero is the current time.
	Now time.Time
	// Classifier scores the message (nil: the built-in lexicon scorer) and
	// Intent tells its intent (nil: none), as omnigate serve would.
	Classifier TextScorer
	Intent     IntentModel
}

// TextScorer scores a text without a network call: Scorer and ModelScorer
// are.
type TextScorer interface {
	Score(text, language string) Classification
}

// Message builds the envelope s describes.
func (s Sample) Message() (*core.Message, error) {
	m := &core.Message{}
	if len(s.Envelope) > 0 {
		if err := json.Unmarshal(s.Envelope, m); err != nil {
			return nil, fmt.Errorf("routing: sample envelope: %w", err)
		}
	}
	m.V = core.EnvelopeVersion
	if m.ID == "" {
		m.ID = core.NewID()
	}
	if m.Kind == "" {
		m.Kind = core.KindMessage
	}
	if m.Direction == "" {
		m.Direction = core.Inbound
	}
	m.Text = cmp.Or(m.Text, s.Text)
	m.Channel = cmp.Or(m.Channel, s.Channel)
	m.Language = cmp.Or(m.Language, s.Language)
	if m.From == "" && s.From != "" {
		id, err := core.ParseIdentity(s.From)
		if err != nil {
			return nil, fmt.Errorf("routing: sample sender: %w", err)
		}
		m.From = id
	}
	if m.Channel == "" && m.From != "" {
		m.Channel = m.From.Channel()
	}
	m.Channel = cmp.Or(m.Channel, "web")
	if m.From == "" {
		m.From = core.NewIdentity(m.Channel, "sample")
	}
	return m, nil
}

// ExplainSample explains s under cfg and prints the explanation to w, as text
// or, with asJSON, as JSON: what omnigate route --explain does.
func ExplainSample(w io.Writer, cfg Config, s Sample, asJSON bool) error {
	m, err := s.Message()
	if err != nil {
		return err
	}
	c := &store.Contact{ID: "sample", Attributes: s.Attributes, Tags: s.Tags, Identities: []core.Identity{m.From}}
	if s.Returning {
		c.LastConversation = "previous"
	}
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	e, err := explain(cfg, m, c, now, s.Classifier, s.Intent)
	if err != nil && e.Channel == "" {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if werr := enc.Encode(e); werr != nil {
			return werr
		}
	} else if _, werr := e.WriteTo(w); werr != nil {
		return werr
	}
	return err
}
