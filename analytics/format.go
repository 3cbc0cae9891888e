package analytics

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats a report is written in.
const (
	FormatTable = "table"
	FormatCSV   = "csv"
	FormatJSON  = "json"
)

// Column is one scalar figure of a row, as reports print it.
type Column struct {
	// Name is the column's header, the metric's name in docs/metrics.md.
	Name string
	// Value is the figure of a row.
	Value func(m *Metrics) float64
	// Unit is "s" for seconds, "%" for a rate, "" for a count or a mean.
	Unit string
}

// Columns are the figures of a report's rows, in the order reports print them.
var Columns = []Column{
	{"conversations_opened", func(m *Metrics) float64 { return float64(m.ConversationsOpened) }, ""},
	{"conversations_closed", func(m *Metrics) float64 { return float64(m.ConversationsClosed) }, ""},
	{"conversations_reopened", func(m *Metrics) float64 { return float64(m.ConversationsReopened) }, ""},
	{"messages_in", func(m *Metrics) float64 { return float64(m.MessagesIn) }, ""},
	{"messages_out", func(m *Metrics) float64 { return float64(m.MessagesOut) }, ""},
	{"messages_auto", func(m *Metrics) float64 { return float64(m.MessagesAuto) }, ""},
	{"first_response_p50", func(m *Metrics) float64 { return m.FirstResponse.P50 }, "s"},
	{"first_response_p90", func(m *Metrics) float64 { return m.FirstResponse.P90 }, "s"},
	{"first_response_business_p50", func(m *Metrics) float64 { return m.FirstResponseBusiness.P50 }, "s"},
	{"first_response_business_p90", func(m *Metrics) float64 { return m.FirstResponseBusiness.P90 }, "s"},
	{"agent_reply_avg", func(m *Metrics) float64 { return m.AgentReplyTime.Avg }, "s"},
	{"resolution_p50", func(m *Metrics) float64 { return m.Resolution.P50 }, "s"},
	{"resolution_p90", func(m *Metrics) float64 { return m.Resolution.P90 }, "s"},
	{"first_contact_resolution", func(m *Metrics) float64 { return m.FirstContactResolved.Value }, "%"},
	{"reopen_rate", func(m *Metrics) float64 { return m.Reopen.Value }, "%"},
	{"transfers_per_conversation", func(m *Metrics) float64 { return m.Transfers.Value }, ""},
	{"sla_first_response_breach_rate", func(m *Metrics) float64 { return m.SLAFirstResponse.Value }, "%"},
	{"sla_resolution_breach_rate", func(m *Metrics) float64 { return m.SLAResolution.Value }, "%"},
	{"queue_length", func(m *Metrics) float64 { return float64(m.QueueLength) }, ""},
	{"queue_wait_avg", func(m *Metrics) float64 { return m.QueueWait.Avg }, "s"},
	{"abandonment_rate", func(m *Metrics) float64 { return m.Abandonment.Value }, "%"},
	{"auto_ack_rate", func(m *Metrics) float64 { return m.AutoAck.Value }, "%"},
	{"csat_avg", func(m *Metrics) float64 { return m.CSAT.Avg }, ""},
	{"survey_response_rate", func(m *Metrics) float64 { return m.SurveyResponse.Value }, "%"},
	{"escalation_rate", func(m *Metrics) float64 { return m.Escalation.Value }, "%"},
	{"conversations_per_agent", func(m *Metrics) float64 { return m.ConversationsPerAgent.Value }, ""},
	{"agent_occupancy", func(m *Metrics) float64 { return m.Occupancy.Value }, "%"},
	{"tickets_created", func(m *Metrics) float64 { return float64(m.TicketsCreated) }, ""},
	{"tickets_resolved", func(m *Metrics) float64 { return float64(m.TicketsResolved) }, ""},
	{"ticket_cycle_avg", func(m *Metrics) float64 { return m.TicketCycle.Avg }, "s"},
	{"delivery_failure_rate", func(m *Metrics) float64 { return m.DeliveryFailure.Value }, "%"},
	{"opt_outs", func(m *Metrics) float64 { return float64(m.OptOuts) }, ""},
	{"bounces", func(m *Metrics) float64 { return float64(m.Bounces) }, ""},
	{"channel_switch_rate", func(m *Metrics) float64 { return m.ChannelSwitch.Value }, "%"},
	{"suggestion_use_rate", func(m *Metrics) float64 { return m.SuggestionUse.Value }, "%"},
}

// Write writes r in format (table, csv or json).
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV:
		return writeCSV(w, r)
	case FormatTable, "":
		return writeTable(w, r)
	}
	return fmt.Errorf("unknown format %q: use table, csv or json", format)
}

// writeCSV writes one line per row: the key, then every Column as a plain
// number (seconds, rates as fractions).
func writeCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	head := []string{cmp.Or(r.By, "total")}
	for _, c := range Columns {
		head = append(head, c.Name)
	}
	_ = cw.Write(head)
	for i := range r.Rows {
		rec := []string{r.Rows[i].Key}
		for _, c := range Columns {
			rec = append(rec, strconv.FormatFloat(c.Value(&r.Rows[i].Metrics), 'f', -1, 64))
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// writeTable writes the weak spots first, then one block per column with a
// line per row: a report has more metrics than a terminal has columns.
func writeTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "omnigate report %s to %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	if r.By != "" {
		fmt.Fprintf(tw, " by %s", r.By)
	}
	fmt.Fprintln(tw)
	if len(r.Weak) == 0 {
		fmt.Fprintln(tw, "\nweak spots: none")
	} else {
		fmt.Fprintln(tw, "\nweak spots (worse than their peers, robust z-score >= 3.5):")
		for _, ws := range r.Weak {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t(baseline %s, z %.1f, n %d)\n", ws.Cell, ws.Metric, show(ws.Value, ws.Unit), show(ws.Baseline, ws.Unit), ws.Score, ws.N)
		}
	}
	fmt.Fprintln(tw)
	keys := make([]string, len(r.Rows))
	for i := range r.Rows {
		keys[i] = r.Rows[i].Key
	}
	fmt.Fprintf(tw, "metric\t%s\n", strings.Join(keys, "\t"))
	for _, c := range Columns {
		vals := make([]string, len(r.Rows))
		for i := range r.Rows {
			vals[i] = show(c.Value(&r.Rows[i].Metrics), c.Unit)
		}
		fmt.Fprintf(tw, "%s\t%s\n", c.Name, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

// show formats v for people: durations as 1h02m03s, rates as percentages.
func show(v float64, unit string) string {
	switch unit {
	case "s":
		return (time.Duration(v * float64(time.Second))).Round(time.Second).String()
	case "%":
		return strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
	}
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
