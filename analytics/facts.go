package analytics

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core/event"
)

// facts is what one conversation's timeline says, as of a moment: the input of
// every per-conversation metric (docs/metrics.md).
type facts struct {
	id      string
	opened  time.Time // the first customer message; zero when there was none
	channel string    // the channel of the first customer message
	// channels are the customer's channels, in order of first use.
	channels []string
	queue    string // the queue of the last routing, "" when never routed
	assignee string // the last assignee, "" when never assigned
	// firstAgent is the agent of the first reply, "" when none.
	firstAgent string
	tags       []string
	intent     string

	firstReply   time.Time // the first agent reply after opened
	agentReplies int
	assignedAt   time.Time // the first assignment
	autoAck      bool      // an acknowledgement was sent automatically
	lastIn       time.Time // the last customer message
	// answered says the last customer message has an agent reply after it.
	answered   bool
	closed     bool      // closed as of the moment
	lastClose  time.Time // the last close
	firstClose time.Time
	reopens    int
	transfers  int
	escalated  string // the first escalation's first label ("escalation" without one); "" when none
	breachFR   bool   // a first_response SLA breach
}

// factsOf derives the facts of tl from its entries before asOf.
func factsOf(tl *timeline, asOf time.Time) facts {
	f := facts{id: tl.ID, tags: tl.Tags, intent: tl.Intent}
	for _, e := range tl.Entries {
		if !e.At.Before(asOf) {
			break
		}
		switch e.Kind {
		case kIn:
			if f.opened.IsZero() {
				f.opened, f.channel = e.At, e.Arg
			}
			if !slices.Contains(f.channels, e.Arg) {
				f.channels = append(f.channels, e.Arg)
			}
			if f.closed {
				// A customer's message reopens a closed conversation.
				f.closed = false
				f.reopens++
			}
			f.lastIn, f.answered = e.At, false
		case kAgent:
			if f.opened.IsZero() {
				continue // an agent's first word opens nothing customers wait for
			}
			f.agentReplies++
			if f.firstReply.IsZero() {
				f.firstReply, f.firstAgent = e.At, e.Arg
			}
			f.answered = true
		case kAuto:
			if e.Arg == "ack" {
				f.autoAck = true
			}
		case kClose:
			if f.closed {
				continue
			}
			f.closed, f.lastClose = true, e.At
			if f.firstClose.IsZero() {
				f.firstClose = e.At
			}
		case kReopen:
			if f.closed {
				f.closed = false
				f.reopens++
			}
		case kRouted:
			if e.Arg2 == event.ReasonTransfer {
				f.transfers++
			}
			if e.Arg2 == event.ReasonEscalation && f.escalated == "" {
				f.escalated = firstLabel(e.Arg3)
			}
			if e.Arg != "" {
				f.queue = e.Arg
			}
		case kAssigned:
			f.assignee = e.Arg
			if f.assignedAt.IsZero() {
				f.assignedAt = e.At
			}
		case kBreach:
			if e.Arg == "first_response" {
				f.breachFR = true
			}
		}
	}
	return f
}

// firstLabel is the first of comma-separated labels, "escalation" when none.
func firstLabel(labels string) string {
	first, _, _ := strings.Cut(labels, ",")
	return cmp.Or(first, "escalation")
}

// agent is the conversation's agent for breakdowns: the last assignee, else
// the agent who answered first, else "".
func (f *facts) agent() string {
	if f.assignee != "" {
		return f.assignee
	}
	return f.firstAgent
}

// waitingAt says the customer waits for an answer at asOf: the conversation is
// open and its last customer message has no agent reply after it.
func (f *facts) waiting() bool {
	return !f.opened.IsZero() && !f.closed && !f.answered
}

// abandoned says the customer left before any answer: no agent ever replied,
// and the conversation was closed or the customer's last message is at least
// window old at asOf.
func (f *facts) abandoned(asOf time.Time, window time.Duration) bool {
	if f.opened.IsZero() || f.agentReplies > 0 {
		return false
	}
	return f.closed || asOf.Sub(f.lastIn) >= window
}

// score parses a satisfaction score, 0 when it is none.
func score(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 5 {
		return 0
	}
	return n
}
