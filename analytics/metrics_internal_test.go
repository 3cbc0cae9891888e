package analytics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// builder feeds envelopes to a state as the two streams would.
type builder struct {
	st  *state
	seq [2]uint64
	t0  time.Time
}

func newBuilder() *builder {
	return &builder{st: newState(), t0: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
}

func (b *builder) add(src source, min int, m *core.Message) {
	b.seq[src]++
	m.ReceivedAt = b.t0.Add(time.Duration(min) * time.Minute)
	applyTo(b.st, src, b.seq[src], m)
}

func (b *builder) in(min int, conv, channel string) {
	m := core.NewMessage(core.KindMessage, core.Inbound, channel)
	m.ConversationID, m.From = conv, core.NewIdentity(channel, "x"+conv)
	b.add(srcConv, min, m)
}

func (b *builder) reply(min int, conv, agent, channel string) {
	m := core.NewMessage(core.KindMessage, core.Outbound, channel)
	m.ConversationID, m.From = conv, core.Identity(agent)
	b.add(srcConv, min, m)
}

func (b *builder) evt(min int, conv, typ string, meta map[string]string) {
	m := core.NewMessage(core.KindEvent, core.Inbound, "routing")
	m.Type, m.ConversationID, m.Meta = typ, conv, meta
	b.add(srcEvt, min, m)
}

// TestAggregate_Signals checks the metrics the replayed day does not reach:
// tags from conversation.tagged, intents, agents' load, tickets and their
// satisfaction, delivery failures by provider error, opt-outs and bounces.
func TestAggregate_Signals(t *testing.T) {
	b := newBuilder()
	b.in(0, "c1", "sms")
	b.evt(0, "c1", event.ConversationRouted, map[string]string{event.MetaQueue: "billing", event.MetaIntent: "card_arrival"})
	b.evt(1, "c1", event.ConversationAssigned, map[string]string{event.MetaAssignee: "slack:U1"})
	b.evt(2, "c1", event.ConversationTagged, map[string]string{event.MetaTags: "vip,refund"})
	b.evt(5, "c1", event.SuggestionUsed, nil)
	b.reply(5, "c1", "slack:U1", "sms")
	b.evt(9, "c1", event.SuggestionIgnored, nil)
	b.evt(9, "c1", event.SuggestionIgnored, nil)
	f := core.NewMessage(core.KindEvent, core.Inbound, "sms")
	f.Type, f.ConversationID, f.Meta = event.DeliveryFailed, "c1", map[string]string{event.MetaError: "Twilio error 30007: carrier violation"}
	b.add(srcEvt, 6, f)
	b.evt(7, "", event.TicketCreated, map[string]string{event.MetaTicket: "T-1"})
	b.evt(7, "c1", event.TicketCreated, map[string]string{event.MetaTicket: "T-2"})
	b.evt(67, "c1", event.TicketUpdated, map[string]string{event.MetaTicket: "T-2", event.MetaAction: "status", event.MetaStatus: "solved", event.MetaPreviousStatus: "open"})
	b.evt(70, "c1", event.TicketUpdated, map[string]string{event.MetaTicket: "T-2", event.MetaAction: "satisfaction", event.MetaSatisfaction: "4"})

	b.in(10, "c2", "email")
	b.evt(10, "c2", event.ConversationRouted, map[string]string{event.MetaQueue: "billing", event.MetaReason: event.ReasonEscalation, event.MetaLabels: "legal,angry"})
	b.evt(11, "c2", event.ConversationAssigned, map[string]string{event.MetaAssignee: "slack:U2"})
	u := core.NewMessage(core.KindEvent, core.Inbound, "email")
	u.Type, u.ConversationID, u.From = event.ContactUnreachable, "c2", "email:a@b"
	u.Meta = map[string]string{event.MetaReason: event.ReasonBounced}
	b.add(srcEvt, 12, u)
	u2 := u.Clone()
	u2.From, u2.Meta = "sms:+1", map[string]string{event.MetaReason: event.ReasonOptedOut}
	b.add(srcEvt, 13, u2)

	s := Settings{Capacity: map[string]int{"slack:U1": 4, "slack:U2": 2, "slack:U3": 2}, DefaultCapacity: 5, AbandonWindow: 10 * time.Minute}
	q := Query{From: b.t0, To: b.t0.Add(2 * time.Hour)}
	all := aggregate(b.st.Timelines, q, s).Rows[0]
	checks := map[string]float64{
		"tickets_created": 2, "tickets_resolved": 1, "ticket_cycle_avg": 3600, "csat_avg": 4,
		"delivery_failure_rate": 1, "bounces": 1, "opt_outs": 1, "escalation_rate": 0.5,
		"suggestion_use_rate": 1.0 / 3, "conversations_per_agent": 1, "agent_occupancy": 2.0 / 8, "abandonment_rate": 0.5,
	}
	for name, want := range checks {
		if got := all.Figures[name]; math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if all.Failures["sms: 30007"] != 1 || all.Escalations["legal"] != 1 {
		t.Errorf("failures %v, escalations %v", all.Failures, all.Escalations)
	}
	keys := func(by string) string {
		q.By = by
		var ks []string
		for _, r := range aggregate(b.st.Timelines, q, s).Rows {
			ks = append(ks, r.Key)
		}
		return strings.Join(ks, ",")
	}
	// Ticket T-1 has no conversation: it counts under (none) and (unassigned).
	for by, want := range map[string]string{ByTag: "(none),refund,vip", ByIntent: "(none),card_arrival", ByAgent: "(unassigned),slack:U1,slack:U2", ByQueue: "(none),billing", ByDay: "2026-12-01"} {
		if got := keys(by); got != want {
			t.Errorf("rows by %s: %s, want %s", by, got, want)
		}
	}
}

func TestErrorClass(t *testing.T) {
	for in, want := range map[string]string{
		"Twilio error 21610: unsubscribed recipient": "21610",
		"550 5.1.1 <ann@example.com>: no such user":  "550 5.1.1",
		"Forbidden: bot was blocked by the user":     "Forbidden bot was blocked",
		"":                                           "unknown",
	} {
		if got := errorClass(in); got != want {
			t.Errorf("errorClass(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now": now, "now-24h": now.Add(-24 * time.Hour), "today": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"today-168h": time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), "2026-11-30": time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		"2026-11-30T10:00:00Z": time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, now, time.UTC)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "now-", "now+1h", "today-x", "2026-13-01"} {
		if _, err := ParseTime(bad, now, time.UTC); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

// A checkpoint reads back to the same state.
func TestCheckpointRoundTrip(t *testing.T) {
	b := newBuilder()
	b.in(0, "c1", "sms")
	b.reply(3, "c1", "slack:U1", "sms")
	data, err := encodeState(b.st)
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != b.st.Seq || len(st.Timelines["c1"].Entries) != 2 {
		t.Fatalf("round trip: %+v", st)
	}
	q := Query{From: b.t0, To: b.t0.Add(time.Hour)}
	if a, c := aggregate(b.st.Timelines, q, Settings{}).Rows[0].Figures, aggregate(st.Timelines, q, Settings{}).Rows[0].Figures; a["first_response_p50"] != 180 || c["first_response_p50"] != 180 {
		t.Errorf("first response before %v, after %v", a["first_response_p50"], c["first_response_p50"])
	}
}

// FuzzParseTime: a report bound from a query string never panics, and what
// it accepts is a real time.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "now-24h", "today", "today-168h", "2026-12-01", "2026-12-01T09:00:00Z", "now--1h", "today-9999999h"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := ParseTime(s, now, time.UTC); err == nil && got.IsZero() && s != "0001-01-01" {
			t.Errorf("ParseTime(%q) = zero time without an error", s)
		}
	})
}

// FuzzApply: any bytes on either stream leave the state consistent: no
// panic, and every timeline sorted.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"a","kind":"message","direction":"inbound","channel":"sms","conversation":"c1","received_at":"2026-12-01T09:00:00Z"}`), false)
	f.Add([]byte(`{"v":1,"id":"b","kind":"event","type":"ticket.updated","direction":"inbound","channel":"tickets","meta":{"ticket":"T-1","action":"satisfaction","satisfaction":"9"}}`), true)
	f.Add([]byte(`{"v":1,"id":"c","kind":"event","type":"conversation.tagged","direction":"inbound","channel":"slack","conversation":"c1","meta":{"tags":",,a, b,"}}`), true)
	f.Add([]byte("not json"), false)
	f.Fuzz(func(t *testing.T, data []byte, evt bool) {
		st := newState()
		src := srcConv
		if evt {
			src = srcEvt
		}
		m, err := core.Decode(data)
		if err != nil {
			return
		}
		applyTo(st, src, 1, m)
		applyTo(st, src, 2, m)
		for _, tl := range st.Timelines {
			for i := 1; i < len(tl.Entries); i++ {
				if less(tl.Entries[i], tl.Entries[i-1]) {
					t.Fatalf("timeline %s out of order", tl.ID)
				}
			}
		}
		_ = aggregate(st.Timelines, Query{From: time.Unix(0, 0), To: time.Now(), By: ByTag}, Settings{})
	})
}

// FuzzDecodeState: a damaged checkpoint is an error, never a panic.
func FuzzDecodeState(f *testing.F) {
	good, _ := encodeState(newState())
	f.Add(good)
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeState(data)
	})
}

// cell is a row with first response samples (seconds) and CSAT scores.
func cell(key string, frt float64, n int, csat float64) Row {
	r := Row{Key: key}
	r.FirstResponse = Dist{N: n, P50: frt}
	r.CSAT = Mean{N: int64(n), Avg: csat}
	return r
}

// The weak spots are the cells far worse than their group's median by the
// robust z-score, in the direction that is bad, with enough samples.
func TestWeakSpots(t *testing.T) {
	groups := map[string][]Row{
		"queue billing": {cell("h09", 300, 8, 4.5), cell("h10", 320, 8, 4.4), cell("h11", 2000, 8, 4.6), cell("h12", 280, 8, 4.5), cell("h13", 340, 8, 2.0), cell("h14", 9000, 2, 4.5)},
		"agents":        {cell("a", 300, 9, 4), cell("b", 310, 9, 4), cell("c", 330, 9, 4), cell("d", 305, 9, 4)},
	}
	got := weakSpots(groups)
	var names []string
	for _, w := range got {
		names = append(names, w.Cell+" "+w.Metric)
	}
	want := "h11 first_response_p50,h13 csat"
	if strings.Join(names, ",") != want {
		t.Errorf("weak spots %v, want %s (h14 has too few samples; agents are alike)", names, want)
	}
	if got[0].Baseline != 320 || got[0].Score < 3.5 {
		t.Errorf("first weak spot %+v", got[0])
	}
}

// The service metrics pass the Prometheus client library's lint and say what
// the timelines hold.
func TestCollector_Lint(t *testing.T) {
	b := newBuilder()
	b.in(0, "c1", "sms")
	b.evt(0, "c1", event.ConversationRouted, map[string]string{event.MetaQueue: "billing"})
	b.reply(4, "c1", "slack:U1", "sms")
	b.in(10, "c2", "telegram")
	a := &Analytics{st: b.st, live: true, now: func() time.Time { return b.t0.Add(time.Hour) },
		deps: Deps{Settings: Settings{AbandonWindow: 10 * time.Minute, ResolutionTarget: 24 * time.Hour}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.Collector())
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	want := `
# HELP omnigate_conversations_opened_total Conversations opened by a customer's first message, by the first message's channel and the conversation's queue.
# TYPE omnigate_conversations_opened_total counter
omnigate_conversations_opened_total{channel="sms",queue="billing"} 1
omnigate_conversations_opened_total{channel="telegram",queue="none"} 1
# HELP omnigate_queue_waiting Open conversations whose customer waits for an agent's answer now.
# TYPE omnigate_queue_waiting gauge
omnigate_queue_waiting{queue="none"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "omnigate_conversations_opened_total", "omnigate_queue_waiting"); err != nil {
		t.Error(err)
	}
	// A replica that does not hold the lease exports nothing.
	a.live = false
	c := a.Collector()
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("a replica without the lease exports %d series", n)
	}
}
