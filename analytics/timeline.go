package analytics

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// kind is what one timeline entry records.
type kind uint8

// The kinds of timeline entries.
const (
	kIn          kind = iota + 1 // a customer message; Arg is its channel
	kAgent                       // an agent's reply; Arg is the agent, Arg2 the channel it went on
	kAuto                        // an automatic message; Arg is meta auto (ack, out_of_hours, ticket...), Arg2 its template
	kClose                       // conversation.closed
	kReopen                      // conversation.reopened (an agent's reopen)
	kRouted                      // conversation.routed; Arg queue, Arg2 reason, Arg3 labels
	kAssigned                    // conversation.assigned; Arg the assignee
	kBreach                      // sla.breached; Arg the target (first_response, next_response)
	kFailed                      // delivery.failed; Arg channel, Arg2 provider error
	kUnreachable                 // contact.unreachable; Arg channel, Arg2 reason
	kSurvey                      // a satisfaction survey sent; Arg the ticket
	// Ticket entries live on the ticket's timeline; Arg3 is the conversation.
	kScore          // a satisfaction score; Arg the score (1-5)
	kTicketOpen     // ticket.created; Arg the ticket key
	kTicketSolved   // ticket.updated to solved; Arg the ticket key
	kTicketReopen   // ticket.updated away from solved; Arg the ticket key
	kSuggestUsed    // suggestion.used: an agent sent a suggested reply or canned answer
	kSuggestIgnored // suggestion.ignored: the suggestions for a message were passed over
)

// entry is one thing that happened in a conversation.
type entry struct {
	At   time.Time `json:"t"`
	Kind kind      `json:"k"`
	// Src orders entries of the same time: stream (0 transcript, 1 events)
	// and sequence, so a timeline sorts the same however the streams were
	// interleaved when they were read.
	Src  uint8  `json:"s,omitempty"`
	Seq  uint64 `json:"q"`
	Arg  string `json:"a,omitempty"`
	Arg2 string `json:"b,omitempty"`
	Arg3 string `json:"c,omitempty"`
}

// timeline is what analytics knows of one conversation.
type timeline struct {
	ID      string   `json:"id"`
	Contact string   `json:"contact,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Intent  string   `json:"intent,omitempty"`
	Entries []entry  `json:"entries"`
	// Last is the latest entry time, for retention.
	Last time.Time `json:"last"`
}

// add records e, keeping the entries sorted.
func (tl *timeline) add(e entry) {
	i := len(tl.Entries)
	for i > 0 && less(e, tl.Entries[i-1]) {
		i--
	}
	tl.Entries = slices.Insert(tl.Entries, i, e)
	if e.At.After(tl.Last) {
		tl.Last = e.At
	}
}

func less(a, b entry) bool {
	if c := a.At.Compare(b.At); c != 0 {
		return c < 0
	}
	if a.Src != b.Src {
		return a.Src < b.Src
	}
	return a.Seq < b.Seq
}

// addTags adds the comma-separated tags of s.
func (tl *timeline) addTags(s string) {
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tl.Tags, t) {
			tl.Tags = append(tl.Tags, t)
		}
	}
	slices.Sort(tl.Tags)
}

// source tells which stream an envelope came from.
type source uint8

const (
	srcConv source = iota // OMNI_CONV, the transcripts
	srcEvt                // OMNI_EVT, the events
)

// at is when m happened, as omnigate learned it.
func at(m *core.Message) time.Time {
	return cmp.Or(m.ReceivedAt, m.SentAt).UTC()
}

// entriesOf turns an envelope into the timeline entries it adds, and the
// conversation they belong to ("" for none). Envelopes that say nothing a
// metric needs add none.
func entriesOf(src source, seq uint64, m *core.Message) (conv string, es []entry) {
	e := entry{At: at(m), Src: uint8(src), Seq: seq}
	one := func(k kind, a ...string) []entry {
		e.Kind = k
		if len(a) > 0 {
			e.Arg = a[0]
		}
		if len(a) > 1 {
			e.Arg2 = a[1]
		}
		if len(a) > 2 {
			e.Arg3 = a[2]
		}
		return []entry{e}
	}
	meta := func(k string) string { return m.Meta[k] }
	if src == srcConv {
		if m.Kind != core.KindMessage || m.Meta[event.MetaEditOf] != "" || m.Meta[event.MetaDeleteOf] != "" {
			return m.ConversationID, nil
		}
		switch {
		case m.Direction == core.Inbound:
			return m.ConversationID, one(kIn, m.Channel)
		case meta(event.MetaTemplate) == "survey":
			return m.ConversationID, one(kSurvey, meta(event.MetaTicket))
		case meta(event.MetaAuto) != "":
			return m.ConversationID, one(kAuto, meta(event.MetaAuto), meta(event.MetaTemplate))
		default:
			agent := string(m.From)
			if agent == "" {
				agent = meta(event.MetaDesk)
			}
			return m.ConversationID, one(kAgent, agent, m.Channel)
		}
	}
	switch m.Type {
	case event.ConversationClosed:
		return m.ConversationID, one(kClose)
	case event.ConversationReopened:
		return m.ConversationID, one(kReopen)
	case event.ConversationRouted:
		return m.ConversationID, one(kRouted, meta(event.MetaQueue), meta(event.MetaReason), meta(event.MetaLabels))
	case event.ConversationAssigned:
		return m.ConversationID, one(kAssigned, meta(event.MetaAssignee))
	case event.SLABreached:
		return m.ConversationID, one(kBreach, meta(event.MetaSLA))
	case event.DeliveryFailed:
		return m.ConversationID, one(kFailed, m.Channel, errorClass(meta(event.MetaError)))
	case event.SuggestionUsed:
		return m.ConversationID, one(kSuggestUsed)
	case event.SuggestionIgnored:
		return m.ConversationID, one(kSuggestIgnored)
	case event.ContactUnreachable:
		return m.ConversationID, one(kUnreachable, m.From.Channel(), meta(event.MetaReason))
	case event.TicketCreated:
		return ticketKey(m), one(kTicketOpen, meta(event.MetaTicket), "", m.ConversationID)
	case event.TicketUpdated:
		switch {
		case meta(event.MetaAction) == "satisfaction" && meta(event.MetaSatisfaction) != "":
			return ticketKey(m), one(kScore, meta(event.MetaSatisfaction), "", m.ConversationID)
		case meta(event.MetaStatus) == "solved" && meta(event.MetaPreviousStatus) != "solved" && meta(event.MetaPreviousStatus) != "":
			return ticketKey(m), one(kTicketSolved, meta(event.MetaTicket), "", m.ConversationID)
		case meta(event.MetaPreviousStatus) == "solved" && meta(event.MetaStatus) != "solved":
			return ticketKey(m), one(kTicketReopen, meta(event.MetaTicket), "", m.ConversationID)
		}
	}
	return m.ConversationID, nil
}

// ticketPrefix starts the timeline key of a ticket: a ticket's events may
// name different conversations over its life.
const ticketPrefix = "ticket:"

// ticketKey is the timeline key of the ticket m is about, "" without one.
func ticketKey(m *core.Message) string {
	if k := m.Meta[event.MetaTicket]; k != "" {
		return ticketPrefix + k
	}
	return ""
}

// maxErrorClass bounds the provider error kept per failure.
const maxErrorClass = 80

// errorClass is the part of a provider's error that names its kind: a
// leading code ("21610", "550 5.1.1") or the error's first words, so that
// failures group by cause and not by the recipient in the text.
func errorClass(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "unknown"
	}
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ':' || r == ',' || r == ';' || r == '(' || r == ')' })
	for i := 0; i < len(f) && i < 3; i++ {
		if _, err := strconv.Atoi(strings.TrimLeft(f[i], "#")); err == nil {
			if i+1 < len(f) && strings.Count(f[i+1], ".") == 2 {
				return f[i] + " " + f[i+1] // SMTP code and enhanced status
			}
			return f[i]
		}
	}
	if len(f) > 4 {
		f = f[:4]
	}
	return core.Truncate(strings.Join(f, " "), maxErrorClass)
}
