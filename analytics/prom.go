package analytics

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bounds of the service metrics' labels: values past maxLabelValues distinct
// ones of a label are reported as "other", so data cannot add series.
const (
	maxLabelValues = 64
	otherLabel     = "other"
	// collectEvery is how long one computation of the service metrics is
	// served to scrapes.
	collectEvery = 5 * time.Second
)

// responseBuckets are the histogram buckets of response and resolution times.
var responseBuckets = []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800}

var (
	descOpened    = prometheus.NewDesc("omnigate_conversations_opened_total", "Conversations opened by a customer's first message, by the first message's channel and the conversation's queue.", []string{"channel", "queue"}, nil)
	descClosed    = prometheus.NewDesc("omnigate_conversations_closed_total", "Conversation closes.", []string{"channel", "queue"}, nil)
	descReopened  = prometheus.NewDesc("omnigate_conversations_reopened_total", "Conversations reopened, by the customer's message or an agent.", []string{"channel", "queue"}, nil)
	descMessages  = prometheus.NewDesc("omnigate_messages_total", "Messages: in from customers, out from agents, auto sent by omnigate.", []string{"channel", "direction"}, nil)
	descFirstResp = prometheus.NewDesc("omnigate_first_response_seconds", "Time from a conversation's first customer message to the first agent reply (wall clock).", []string{"channel", "queue"}, nil)
	descResol     = prometheus.NewDesc("omnigate_resolution_seconds", "Time from a conversation's first customer message to its last close, for closed conversations.", []string{"channel", "queue"}, nil)
	descWaiting   = prometheus.NewDesc("omnigate_queue_waiting", "Open conversations whose customer waits for an agent's answer now.", []string{"queue"}, nil)
	descBreaches  = prometheus.NewDesc("omnigate_sla_breaches_total", "SLA breaches: first_response as routing reported them, resolution against analytics.resolution_target.", []string{"queue", "kind"}, nil)
	descCSAT      = prometheus.NewDesc("omnigate_csat_responses_total", "Satisfaction survey answers by score (1-5).", []string{"queue", "score"}, nil)
	descFailures  = prometheus.NewDesc("omnigate_delivery_failures_total", "Replies the provider could not deliver, by channel and the provider's error code or words.", []string{"channel", "reason"}, nil)
	descSwitches  = prometheus.NewDesc("omnigate_channel_switches_total", "Conversations in which the customer wrote on more than one channel.", []string{"queue"}, nil)
	descAbandoned = prometheus.NewDesc("omnigate_abandoned_total", "Conversations nobody answered before the customer left (analytics.abandon_window).", []string{"channel", "queue"}, nil)
	descApplied   = prometheus.NewDesc("omnigate_analytics_applied_total", "Envelopes analytics has applied from the transcript and event streams.", nil, nil)
)

// collector exports the service metrics from the state this replica works
// on. Only the replica holding the lease exports them, so a sum over
// replicas counts each conversation once.
type collector struct {
	a    *Analytics
	mu   sync.Mutex
	at   time.Time
	last []prometheus.Metric
}

// Collector is the Prometheus collector of the service metrics.
func (a *Analytics) Collector() prometheus.Collector { return &collector{a: a} }

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpened, descClosed, descReopened, descMessages, descFirstResp, descResol,
		descWaiting, descBreaches, descCSAT, descFailures, descSwitches, descAbandoned, descApplied} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > collectEvery {
		c.last, c.at = c.a.serviceMetrics(), time.Now()
	}
	for _, m := range c.last {
		ch <- m
	}
}

// labels bounds the values of one label.
type labels map[string]bool

func (l labels) of(v string) string {
	if v == "" {
		return "none"
	}
	if l[v] || len(l) < maxLabelValues {
		l[v] = true
		return v
	}
	return otherLabel
}

// series counts one metric by its label values, joined by "\x00".
type series map[string]float64

func (s series) inc(vals ...string) { s[strings.Join(vals, "\x00")]++ }

// hist is one histogram per label set.
type hist map[string][]float64

// serviceMetrics computes the service metrics, nil when this replica does
// not hold the lease.
func (a *Analytics) serviceMetrics() []prometheus.Metric {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.live {
		return nil
	}
	now := a.now()
	chans, queues, reasons := labels{}, labels{}, labels{}
	opened, closed, reopened, msgs := series{}, series{}, series{}, series{}
	waiting, breaches, csat, failures, switches, abandoned := series{}, series{}, series{}, series{}, series{}, series{}
	frt, res := hist{}, hist{}
	convQueue := map[string]string{}
	for id, tl := range a.st.Timelines {
		if strings.HasPrefix(id, ticketPrefix) {
			continue
		}
		f := factsOf(tl, now.Add(time.Nanosecond))
		q := queues.of(f.queue)
		convQueue[id] = q
		for _, e := range tl.Entries {
			switch e.Kind {
			case kIn:
				msgs.inc(chans.of(e.Arg), "in")
			case kAgent:
				msgs.inc(chans.of(e.Arg2), "out")
			case kAuto, kSurvey:
				msgs.inc(chans.of(e.Arg2), "auto")
			case kBreach:
				breaches.inc(q, e.Arg)
			case kFailed:
				failures.inc(chans.of(e.Arg), reasons.of(e.Arg2))
			}
		}
		if f.opened.IsZero() {
			continue
		}
		ch := chans.of(f.channel)
		key := ch + "\x00" + q
		opened.inc(ch, q)
		closes := f.reopens
		if f.closed {
			closes++
		}
		closed[key] += float64(closes)
		reopened[key] += float64(f.reopens)
		if !f.firstReply.IsZero() {
			frt[key] = append(frt[key], f.firstReply.Sub(f.opened).Seconds())
		}
		if f.closed {
			res[key] = append(res[key], f.lastClose.Sub(f.opened).Seconds())
		}
		if t := a.deps.Settings.ResolutionTarget; t > 0 {
			end := now
			if f.closed {
				end = f.lastClose
			}
			if end.Sub(f.opened) > t {
				breaches.inc(q, "resolution")
			}
		}
		if f.waiting() {
			waiting.inc(q)
		}
		if len(f.channels) > 1 {
			switches.inc(q)
		}
		if f.abandoned(now, a.deps.Settings.AbandonWindow) {
			abandoned.inc(ch, q)
		}
	}
	for id, tl := range a.st.Timelines {
		if !strings.HasPrefix(id, ticketPrefix) {
			continue
		}
		for _, e := range tl.Entries {
			if n := score(e.Arg); e.Kind == kScore && n > 0 {
				csat.inc(queues.of(convQueue[e.Arg3]), strconv.Itoa(n))
			}
		}
	}
	var out []prometheus.Metric
	add := func(d *prometheus.Desc, t prometheus.ValueType, s series) {
		for k, v := range s {
			out = append(out, prometheus.MustNewConstMetric(d, t, v, strings.Split(k, "\x00")...))
		}
	}
	add(descOpened, prometheus.CounterValue, opened)
	add(descClosed, prometheus.CounterValue, closed)
	add(descReopened, prometheus.CounterValue, reopened)
	add(descMessages, prometheus.CounterValue, msgs)
	add(descWaiting, prometheus.GaugeValue, waiting)
	add(descBreaches, prometheus.CounterValue, breaches)
	add(descCSAT, prometheus.CounterValue, csat)
	add(descFailures, prometheus.CounterValue, failures)
	add(descSwitches, prometheus.CounterValue, switches)
	add(descAbandoned, prometheus.CounterValue, abandoned)
	for _, h := range []struct {
		d *prometheus.Desc
		h hist
	}{{descFirstResp, frt}, {descResol, res}} {
		for k, vals := range h.h {
			out = append(out, constHistogram(h.d, vals, strings.Split(k, "\x00")))
		}
	}
	out = append(out, prometheus.MustNewConstMetric(descApplied, prometheus.CounterValue, float64(a.st.Applied)))
	return out
}

// constHistogram is a histogram of vals with responseBuckets.
func constHistogram(d *prometheus.Desc, vals []float64, lv []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(responseBuckets))
	var sum float64
	for _, v := range vals {
		sum += v
		for _, b := range responseBuckets {
			if v <= b {
				buckets[b]++
			}
		}
	}
	return prometheus.MustNewConstHistogram(d, uint64(len(vals)), sum, buckets, lv...)
}
