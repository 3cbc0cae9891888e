package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// report renders the rows as two Markdown tables, customer messages and agent
// replies, with the columns padded so that they also read in a terminal.
func report(rows []row, maxRecovery time.Duration) string {
	in := [][]string{{"fault", "offered", "accepted", "desk", "lost", "dlq", "dup", "reordered", "p50", "max latency", "first after", "recovery"}}
	out := [][]string{{"fault", "sent", "delivered", "lost", "dlq", "dup", "reordered", "p50", "max latency"}}
	for _, r := range rows {
		i, o := r.in, r.out
		in = append(in, []string{r.name, itoa(i.offered), itoa(i.accepted), itoa(i.delivered), itoa(i.lost), itoa(i.dlq),
			itoa(i.duplicated), itoa(i.reordered), dur(i.p50), dur(i.max), firstString(i), recoveryString(i)})
		out = append(out, []string{r.name, itoa(o.accepted), itoa(o.delivered), itoa(o.lost), itoa(o.dlq),
			itoa(o.duplicated), itoa(o.reordered), dur(o.p50), dur(o.max)})
	}
	return "Customer messages (signed SMS webhooks -> desk stream):\n\n" + table(in) +
		"\nAgent replies (desk -> pipeline -> SMS adapter -> fake Twilio):\n\n" + table(out)
}

// verdicts lists what fails the run: anything lost, duplicated or reordered,
// and a first message after the fault arriving later than maxRecovery after
// its end (issue 15's recovery), or, with strict, any partition taking longer
// than that to recover.
func verdicts(rows []row, maxRecovery time.Duration, strict bool) []string {
	var bad []string
	for _, r := range rows {
		var why []string
		add := func(n int, what string) {
			if n > 0 {
				why = append(why, fmt.Sprintf("%d %s", n, what))
			}
		}
		add(r.in.lost, "lost")
		add(r.in.duplicated, "duplicated")
		add(r.in.reordered, "reordered")
		add(r.out.lost, "replies lost")
		add(r.out.duplicated, "replies duplicated")
		add(r.out.reordered, "replies reordered")
		if r.in.measured && r.in.first > maxRecovery {
			why = append(why, fmt.Sprintf("first message after the fault %s > %s", dur(r.in.first), maxRecovery))
		}
		if strict && r.in.measured && r.in.recovery > maxRecovery {
			why = append(why, fmt.Sprintf("recovery %s > %s", dur(r.in.recovery), maxRecovery))
		}
		if len(why) > 0 {
			bad = append(bad, r.name+": "+strings.Join(why, ", "))
		}
	}
	return bad
}

func firstString(s stats) string {
	if !s.measured {
		return "-"
	}
	return dur(s.first)
}

func recoveryString(s stats) string {
	if !s.measured {
		return "-"
	}
	return dur(s.recovery)
}

func itoa(n int) string { return strconv.Itoa(n) }

// dur prints a duration with two significant decimals at most: 45ms, 1.23s.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// table renders rows (the first is the header) as a Markdown table with padded
// columns.
func table(rows [][]string) string {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		for i, c := range r {
			b.WriteString("| ")
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-len(c)+1))
		}
		b.WriteString("|\n")
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, w := range width {
		sep[i] = strings.Repeat("-", w)
	}
	line(sep)
	for _, r := range rows[1:] {
		line(r)
	}
	return b.String()
}
