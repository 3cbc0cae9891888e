package analytics

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Breakdowns a report may be grouped by.
const (
	ByNone    = ""
	ByQueue   = "queue"
	ByAgent   = "agent"
	ByChannel = "channel"
	ByTag     = "tag"
	ByIntent  = "intent"
	ByHour    = "hour"
	ByDay     = "day"
	// byQueueHour groups by queue and hour, for the weak spots: "billing 2026-12-01T14".
	byQueueHour = "queue_hour"
)

// Breakdowns lists every grouping Query.By takes, for help texts and checks.
var Breakdowns = []string{ByQueue, ByAgent, ByChannel, ByTag, ByIntent, ByHour, ByDay}

// Labels of a row whose conversations have no value for the breakdown.
const (
	NoQueue  = "(none)"
	NoAgent  = "(unassigned)"
	NoTag    = "(none)"
	NoIntent = "(none)"
	// Total is the key of the one row of a report without a breakdown.
	Total = "all"
)

// Query asks for a report: the metrics of [From, To), one row per value of By
// ("" for one row, Total).
type Query struct {
	From, To time.Time
	By       string
	// Location is the time zone of hour and day rows; default UTC.
	Location *time.Location
}

// Validate says what is wrong with q, if anything.
func (q Query) Validate() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return fmt.Errorf("analytics: a report needs from and to")
	case !q.From.Before(q.To):
		return fmt.Errorf("analytics: from (%s) must be before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	case q.By != ByNone && !slices.Contains(Breakdowns, q.By):
		return fmt.Errorf("analytics: cannot group by %q: use one of %s", q.By, strings.Join(Breakdowns, ", "))
	}
	return nil
}

// Settings are what the metrics need besides the timelines.
type Settings struct {
	// AbandonWindow: a conversation nobody answered is abandoned once the
	// customer's last message is this old.
	AbandonWindow time.Duration
	// ResolutionTarget is the resolution SLA; 0 counts no resolution breach.
	ResolutionTarget time.Duration
	// Business returns how much of [from, to) was within queue's business
	// hours; nil or a nil answer counts wall-clock time.
	Business func(queue string) func(from, to time.Time) time.Duration
	// Capacity is each configured agent's capacity (open conversations).
	Capacity map[string]int
	// DefaultCapacity is the capacity of agents not in Capacity.
	DefaultCapacity int
}

// Report is the answer to a Query.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	By   string    `json:"by,omitempty"`
	// Rows are sorted by key.
	Rows []Row `json:"rows"`
	// Weak are the cells significantly worse than their peers (weak.go);
	// filled by Analytics.Report.
	Weak []WeakSpot `json:"weak_spots"`
	// Units are the unit of each figure in Row.Figures: "s" seconds, "%" a
	// rate (a fraction), "" a count or a mean.
	Units map[string]string `json:"units"`
}

// Row is the metrics of one breakdown value.
type Row struct {
	Key string `json:"key"`
	Metrics
	// Figures are the row's Columns by name, as plain numbers (seconds,
	// rates as fractions): what the dashboard and CSV show.
	Figures map[string]float64 `json:"figures"`
}

// Ratio is a rate: Num of Den, Value Num/Den (0 when Den is 0).
type Ratio struct {
	Num   int64   `json:"num"`
	Den   int64   `json:"den"`
	Value float64 `json:"value"`
}

func (r *Ratio) add(hit bool) {
	r.Den++
	if hit {
		r.Num++
	}
}

func (r *Ratio) finish() {
	r.Value = 0
	if r.Den > 0 {
		r.Value = float64(r.Num) / float64(r.Den)
	}
}

// Mean is an average of N samples.
type Mean struct {
	N   int64   `json:"n"`
	Sum float64 `json:"sum"`
	Avg float64 `json:"avg"`
}

func (m *Mean) add(v float64) { m.N++; m.Sum += v }

func (m *Mean) finish() {
	m.Avg = 0
	if m.N > 0 {
		m.Avg = m.Sum / float64(m.N)
	}
}

// Dist is a distribution of durations in seconds: its count and nearest-rank
// percentiles.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	// Samples are the values, sorted, kept for histograms and tests.
	Samples []float64 `json:"-"`
}

func (d *Dist) add(v time.Duration) { d.Samples = append(d.Samples, v.Seconds()) }

func (d *Dist) finish() {
	slices.Sort(d.Samples)
	d.N = len(d.Samples)
	d.P50, d.P90 = Percentile(d.Samples, 0.5), Percentile(d.Samples, 0.9)
}

// Percentile is the nearest-rank p-quantile of sorted: the smallest value
// with at least p of the values at or below it; 0 for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Metrics are the service metrics of a set of conversations; docs/metrics.md
// defines each.
type Metrics struct {
	ConversationsOpened   int64 `json:"conversations_opened"`
	ConversationsClosed   int64 `json:"conversations_closed"`
	ConversationsReopened int64 `json:"conversations_reopened"`
	MessagesIn            int64 `json:"messages_in"`
	MessagesOut           int64 `json:"messages_out"`
	MessagesAuto          int64 `json:"messages_auto"`

	FirstResponse         Dist  `json:"first_response_seconds"`
	FirstResponseBusiness Dist  `json:"first_response_business_seconds"`
	AgentReplyTime        Mean  `json:"agent_reply_seconds"`
	Resolution            Dist  `json:"resolution_seconds"`
	FirstContactResolved  Ratio `json:"first_contact_resolution"`
	Reopen                Ratio `json:"reopen_rate"`
	Transfers             Ratio `json:"transfers_per_conversation"`
	SLAFirstResponse      Ratio `json:"sla_first_response_breach_rate"`
	SLAResolution         Ratio `json:"sla_resolution_breach_rate"`

	QueueLength int64 `json:"queue_length"`
	QueueWait   Mean  `json:"queue_wait_seconds"`
	Abandonment Ratio `json:"abandonment_rate"`
	AutoAck     Ratio `json:"auto_ack_rate"`

	CSAT           Mean  `json:"csat"`
	SurveyResponse Ratio `json:"survey_response_rate"`

	Escalation  Ratio            `json:"escalation_rate"`
	Escalations map[string]int64 `json:"escalations_by_kind,omitempty"`

	ConversationsPerAgent Ratio `json:"conversations_per_agent"`
	Occupancy             Ratio `json:"agent_occupancy"`

	TicketsCreated  int64 `json:"tickets_created"`
	TicketsResolved int64 `json:"tickets_resolved"`
	TicketCycle     Mean  `json:"ticket_cycle_seconds"`

	DeliveryFailure Ratio            `json:"delivery_failure_rate"`
	Failures        map[string]int64 `json:"delivery_failures_by_error,omitempty"`
	OptOuts         int64            `json:"opt_outs"`
	Bounces         int64            `json:"bounces"`

	ChannelSwitch Ratio `json:"channel_switch_rate"`

	SuggestionUse Ratio `json:"suggestion_use_rate"`

	// agents and assigned count distinct values for ConversationsPerAgent.
	agents   map[string]bool
	assigned map[string]bool
	// capAgents are the agents whose capacity Occupancy's Den holds.
	capAgents map[string]bool
}

func (m *Metrics) finish() {
	for _, d := range []*Dist{&m.FirstResponse, &m.FirstResponseBusiness, &m.Resolution} {
		d.finish()
	}
	for _, x := range []*Mean{&m.AgentReplyTime, &m.QueueWait, &m.CSAT, &m.TicketCycle} {
		x.finish()
	}
	m.ConversationsPerAgent = Ratio{Num: int64(len(m.assigned)), Den: int64(len(m.agents))}
	for _, r := range []*Ratio{&m.FirstContactResolved, &m.Reopen, &m.Transfers, &m.SLAFirstResponse, &m.SLAResolution,
		&m.Abandonment, &m.AutoAck, &m.SurveyResponse, &m.Escalation, &m.ConversationsPerAgent, &m.Occupancy,
		&m.DeliveryFailure, &m.ChannelSwitch, &m.SuggestionUse} {
		r.finish()
	}
}

// aggregate computes the report of q over timelines.
func aggregate(tls map[string]*timeline, q Query, s Settings) *Report {
	return aggregateFacts(tls, conversationFacts(tls, q.To), q, s)
}

// conversationFacts derives the facts of every conversation as of to.
func conversationFacts(tls map[string]*timeline, to time.Time) map[string]*facts {
	convFacts := make(map[string]*facts, len(tls))
	for id, tl := range tls {
		if strings.HasPrefix(id, ticketPrefix) {
			continue
		}
		f := factsOf(tl, to)
		convFacts[id] = &f
	}
	return convFacts
}

// aggregateFacts computes the report of q over timelines whose facts as of
// q.To are convFacts: reports of one range by several breakdowns share them.
func aggregateFacts(tls map[string]*timeline, convFacts map[string]*facts, q Query, s Settings) *Report {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	rows := map[string]*Metrics{}
	row := func(key string) *Metrics {
		r := rows[key]
		if r == nil {
			r = &Metrics{agents: map[string]bool{}, assigned: map[string]bool{}, capAgents: map[string]bool{}}
			rows[key] = r
		}
		return r
	}
	in := func(t time.Time) bool { return !t.Before(q.From) && t.Before(q.To) }
	bucket := func(t time.Time) string {
		if q.By == ByDay {
			return t.In(loc).Format("2006-01-02")
		}
		return t.In(loc).Format("2006-01-02T15")
	}
	// keys are the rows a conversation counts in; at is the time that places
	// it in an hour or a day; channel and agent replace its own where an
	// entry has one.
	keys := func(f *facts, t time.Time, channel, agent string) []string {
		switch q.By {
		case ByNone:
			return []string{Total}
		case ByQueue:
			return []string{cmp.Or(f.queue, NoQueue)}
		case ByAgent:
			return []string{cmp.Or(agent, cmp.Or(f.agent(), NoAgent))}
		case ByChannel:
			return []string{cmp.Or(channel, cmp.Or(f.channel, NoQueue))}
		case ByTag:
			if len(f.tags) == 0 {
				return []string{NoTag}
			}
			return f.tags
		case ByIntent:
			return []string{cmp.Or(f.intent, NoIntent)}
		case byQueueHour:
			return []string{cmp.Or(f.queue, NoQueue) + " " + bucket(t)}
		default: // hour, day
			return []string{bucket(t)}
		}
	}
	each := func(ks []string, fn func(m *Metrics)) {
		for _, k := range ks {
			fn(row(k))
		}
	}
	for id, tl := range tls {
		if strings.HasPrefix(id, ticketPrefix) {
			continue
		}
		f := convFacts[id]
		conversationMetrics(f, q, s, keys, each, in)
		entryMetrics(tl, f, q, keys, each, in)
	}
	for id, tl := range tls {
		if strings.HasPrefix(id, ticketPrefix) {
			ticketMetrics(tl, convFacts, keys, each, in)
		}
	}
	occupancy(convFacts, q, s, row, keys)
	r := &Report{From: q.From, To: q.To, By: q.By, Units: make(map[string]string, len(Columns))}
	for _, c := range Columns {
		r.Units[c.Name] = c.Unit
	}
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		m := rows[k]
		m.finish()
		figs := make(map[string]float64, len(Columns))
		for _, c := range Columns {
			figs[c.Name] = c.Value(m)
		}
		r.Rows = append(r.Rows, Row{Key: k, Metrics: *m, Figures: figs})
	}
	return r
}

type keysFunc func(f *facts, t time.Time, channel, agent string) []string
type eachFunc func(ks []string, fn func(m *Metrics))

// conversationMetrics adds the metrics of conversations opened in the range.
func conversationMetrics(f *facts, q Query, s Settings, keys keysFunc, each eachFunc, in func(time.Time) bool) {
	if f.opened.IsZero() {
		return
	}
	if f.waiting() {
		each(keys(f, f.opened, "", ""), func(m *Metrics) { m.QueueLength++ })
	}
	if !in(f.opened) {
		return
	}
	each(keys(f, f.opened, "", ""), func(m *Metrics) {
		m.ConversationsOpened++
		if !f.firstReply.IsZero() {
			m.FirstResponse.add(f.firstReply.Sub(f.opened))
			m.FirstResponseBusiness.add(businessTime(s, f.queue, f.opened, f.firstReply))
		}
		if f.closed {
			m.Resolution.add(f.lastClose.Sub(f.opened))
			if f.agentReplies > 0 {
				m.FirstContactResolved.add(f.reopens == 0 && f.agentReplies == 1)
			}
		}
		if !f.firstClose.IsZero() {
			m.Reopen.add(f.reopens > 0)
		}
		m.Transfers.Num += int64(f.transfers)
		m.Transfers.Den++
		m.SLAFirstResponse.add(f.breachFR)
		if s.ResolutionTarget > 0 {
			end := q.To
			if f.closed {
				end = f.lastClose
			}
			m.SLAResolution.add(end.Sub(f.opened) > s.ResolutionTarget)
		}
		if !f.assignedAt.IsZero() {
			m.QueueWait.add(f.assignedAt.Sub(f.opened).Seconds())
		}
		m.Abandonment.add(f.abandoned(q.To, s.AbandonWindow))
		m.AutoAck.add(f.autoAck)
		m.Escalation.add(f.escalated != "")
		if f.escalated != "" {
			if m.Escalations == nil {
				m.Escalations = map[string]int64{}
			}
			m.Escalations[f.escalated]++
		}
		m.ChannelSwitch.add(len(f.channels) > 1)
	})
}

// entryMetrics adds what happened in the range, entry by entry.
func entryMetrics(tl *timeline, f *facts, q Query, keys keysFunc, each eachFunc, in func(time.Time) bool) {
	var pending time.Time // the first customer message no agent answered yet
	closed := false
	for _, e := range tl.Entries {
		if !e.At.Before(q.To) {
			break
		}
		hit := in(e.At)
		switch e.Kind {
		case kIn:
			if pending.IsZero() {
				pending = e.At
			}
			if hit {
				each(keys(f, e.At, e.Arg, ""), func(m *Metrics) { m.MessagesIn++ })
				if closed {
					each(keys(f, e.At, "", ""), func(m *Metrics) { m.ConversationsReopened++ })
				}
			}
			closed = false
		case kAgent:
			if hit && !f.opened.IsZero() {
				each(keys(f, e.At, e.Arg2, e.Arg), func(m *Metrics) {
					m.MessagesOut++
					m.DeliveryFailure.Den++
					if !pending.IsZero() {
						m.AgentReplyTime.add(e.At.Sub(pending).Seconds())
					}
				})
			}
			pending = time.Time{}
		case kAuto, kSurvey:
			if hit {
				each(keys(f, e.At, e.Arg2, ""), func(m *Metrics) {
					m.MessagesAuto++
					m.DeliveryFailure.Den++
					if e.Kind == kSurvey {
						m.SurveyResponse.Den++
					}
				})
			}
		case kClose:
			if hit && !closed {
				each(keys(f, e.At, "", ""), func(m *Metrics) { m.ConversationsClosed++ })
			}
			closed = true
		case kReopen:
			if hit && closed {
				each(keys(f, e.At, "", ""), func(m *Metrics) { m.ConversationsReopened++ })
			}
			closed = false
		case kAssigned:
			if hit && e.Arg != "" {
				each(keys(f, e.At, "", e.Arg), func(m *Metrics) {
					m.agents[e.Arg] = true
					m.assigned[tl.ID] = true
				})
			}
		case kFailed:
			if hit {
				each(keys(f, e.At, e.Arg, ""), func(m *Metrics) {
					m.DeliveryFailure.Num++
					if m.Failures == nil {
						m.Failures = map[string]int64{}
					}
					m.Failures[e.Arg+": "+e.Arg2]++
				})
			}
		case kSuggestUsed, kSuggestIgnored:
			if hit {
				each(keys(f, e.At, "", ""), func(m *Metrics) { m.SuggestionUse.add(e.Kind == kSuggestUsed) })
			}
		case kUnreachable:
			if hit {
				each(keys(f, e.At, e.Arg, ""), func(m *Metrics) {
					switch e.Arg2 {
					case "opted_out":
						m.OptOuts++
					case "bounced":
						m.Bounces++
					}
				})
			}
		}
	}
}

// ticketMetrics adds a ticket's creation, solving and satisfaction score in
// the range, counted with the conversation it names.
func ticketMetrics(tl *timeline, convs map[string]*facts, keys keysFunc, each eachFunc, in func(time.Time) bool) {
	var created time.Time
	solved := false
	for _, e := range tl.Entries {
		f := convs[e.Arg3]
		if f == nil {
			f = &facts{}
		}
		hit := in(e.At)
		switch e.Kind {
		case kTicketOpen:
			created = e.At
			if hit {
				each(keys(f, e.At, "", ""), func(m *Metrics) { m.TicketsCreated++ })
			}
		case kTicketSolved:
			if !solved && hit {
				each(keys(f, e.At, "", ""), func(m *Metrics) {
					m.TicketsResolved++
					if !created.IsZero() {
						m.TicketCycle.add(e.At.Sub(created).Seconds())
					}
				})
			}
			solved = true
		case kTicketReopen:
			solved = false
		case kScore:
			if n := score(e.Arg); n > 0 && hit {
				each(keys(f, e.At, "", ""), func(m *Metrics) {
					m.CSAT.add(float64(n))
					m.SurveyResponse.Num++
				})
			}
		}
	}
}

// occupancy fills each row's agent occupancy at the end of the range: the
// open conversations assigned to its agents over their capacity.
func occupancy(convs map[string]*facts, q Query, s Settings, row func(string) *Metrics, keys keysFunc) {
	capOf := func(a string) int64 {
		if c, ok := s.Capacity[a]; ok && c > 0 {
			return int64(c)
		}
		return int64(max(s.DefaultCapacity, 1))
	}
	for _, f := range convs {
		if f.opened.IsZero() || f.closed || f.assignee == "" {
			continue
		}
		for _, k := range keys(f, f.opened, "", f.assignee) {
			m := row(k)
			m.Occupancy.Num++
			if !m.capAgents[f.assignee] {
				m.capAgents[f.assignee] = true
				m.Occupancy.Den += capOf(f.assignee)
			}
		}
	}
	if q.By == ByNone {
		// The whole desk: every configured agent's capacity, busy or not.
		m := row(Total)
		for a := range s.Capacity {
			if !m.capAgents[a] {
				m.capAgents[a] = true
				m.Occupancy.Den += capOf(a)
			}
		}
	}
}

// businessTime is how much of [from, to) was within queue's business hours.
func businessTime(s Settings, queue string, from, to time.Time) time.Duration {
	if s.Business != nil {
		if fn := s.Business(queue); fn != nil {
			return fn(from, to)
		}
	}
	return to.Sub(from)
}
