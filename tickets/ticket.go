package tickets

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
)

// Sentinel errors. Compare with errors.Is: they come wrapped with the operation.
var (
	// ErrNotFound means no ticket has the number (or external id) asked for.
	ErrNotFound = errors.New("tickets: not found")
	// ErrInvalid means a request is malformed: an unknown status or priority, a
	// missing subject, a field too long. The message says which and why.
	ErrInvalid = errors.New("tickets: invalid")
	// ErrInvalidTransition is matched by every *TransitionError.
	ErrInvalidTransition = errors.New("tickets: invalid status transition")
)

// Status is where a ticket is in its lifecycle.
type Status string

// The statuses, in lifecycle order.
const (
	// StatusNew is a ticket nobody has looked at yet.
	StatusNew Status = "new"
	// StatusOpen is a ticket an agent is working on.
	StatusOpen Status = "open"
	// StatusPending waits for the customer.
	StatusPending Status = "pending"
	// StatusOnHold waits for a third party.
	StatusOnHold Status = "on-hold"
	// StatusSolved is answered; the customer's reply reopens it.
	StatusSolved Status = "solved"
	// StatusClosed is final: nothing changes its status any more.
	StatusClosed Status = "closed"
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusNew, StatusOpen, StatusPending, StatusOnHold, StatusSolved, StatusClosed}

// transitions is the lifecycle: the statuses each status may change to. Setting
// a ticket's status to the one it has is not a transition and always allowed.
// A solved ticket goes back to open (reopened) or on to closed; closed is final.
var transitions = map[Status][]Status{
	StatusNew:     {StatusOpen, StatusPending, StatusOnHold, StatusSolved, StatusClosed},
	StatusOpen:    {StatusPending, StatusOnHold, StatusSolved, StatusClosed},
	StatusPending: {StatusOpen, StatusOnHold, StatusSolved, StatusClosed},
	StatusOnHold:  {StatusOpen, StatusPending, StatusSolved, StatusClosed},
	StatusSolved:  {StatusOpen, StatusClosed},
	StatusClosed:  {},
}

// Transitions returns the statuses from may change to, in lifecycle order.
func Transitions(from Status) []Status { return slices.Clone(transitions[from]) }

// CanTransition returns nil when a ticket in status from may be set to to (or
// to == from), else a *TransitionError saying which statuses are allowed.
func CanTransition(from, to Status) error {
	if !to.Valid() {
		return fmt.Errorf("%w: status %q: want one of %s", ErrInvalid, to, joinStatuses(Statuses))
	}
	if from == to || slices.Contains(transitions[from], to) {
		return nil
	}
	return &TransitionError{From: from, To: to, Allowed: Transitions(from)}
}

// TransitionError is a status change the lifecycle does not allow. It matches
// ErrInvalidTransition.
type TransitionError struct {
	From, To Status
	// Allowed are the statuses From may change to; empty when From is final.
	Allowed []Status
}

// Error says what was refused and what is allowed, e.g. "tickets: cannot change
// status from solved to pending: a solved ticket can only become open or closed".
func (e *TransitionError) Error() string {
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("tickets: cannot change status from %s to %s: %s is final, its status cannot change", e.From, e.To, e.From)
	}
	return fmt.Sprintf("tickets: cannot change status from %s to %s: a%s %s ticket can only become %s",
		e.From, e.To, article(string(e.From)), e.From, joinOr(e.Allowed))
}

// Is makes a TransitionError match ErrInvalidTransition.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "n"
	}
	return ""
}

func joinOr(ss []Status) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	switch len(parts) {
	case 1:
		return parts[0]
	case 2:
		return parts[0] + " or " + parts[1]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func joinStatuses(ss []Status) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Active reports whether the ticket still needs work: not solved or closed.
func (s Status) Active() bool { return s != StatusSolved && s != StatusClosed && s != "" }

// ParseStatus reads a status, accepting "hold", "on_hold" and "on hold" for
// on-hold and any case. The error matches ErrInvalid.
func ParseStatus(s string) (Status, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "hold", "on_hold", "on hold", "onhold":
		v = string(StatusOnHold)
	}
	if st := Status(v); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("%w: status %q: want one of %s", ErrInvalid, s, joinStatuses(Statuses))
}

// Priority is how urgent a ticket is; it picks the default due date (Config.SLA).
type Priority string

// The priorities, lowest first.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent}

// Valid reports whether p is one of Priorities.
func (p Priority) Valid() bool { return slices.Contains(Priorities, p) }

// ParsePriority reads a priority in any case. The error matches ErrInvalid.
func ParsePriority(s string) (Priority, error) {
	if p := Priority(strings.ToLower(strings.TrimSpace(s))); p.Valid() {
		return p, nil
	}
	return "", fmt.Errorf("%w: priority %q: want low, normal, high or urgent", ErrInvalid, s)
}

// Ticket is one customer request tracked to its end. The JSON form is what the
// admin API returns and what the webhook bridge delivers (without Events).
type Ticket struct {
	// Number is the human-friendly number (#1042), unique across replicas.
	Number      int64    `json:"number"`
	Subject     string   `json:"subject"`
	Description string   `json:"description,omitempty"`
	Status      Status   `json:"status"`
	Priority    Priority `json:"priority"`
	// Assignee is who works on it, as the desk names them ("slack:U123") or an
	// email address; "" when unassigned.
	Assignee  string    `json:"assignee,omitempty"`
	Requester Requester `json:"requester"`
	// Conversations are the linked conversations, oldest first.
	Conversations []string          `json:"conversations,omitempty"`
	Tags          []string          `json:"tags,omitempty"`
	Fields        map[string]string `json:"fields,omitempty"`
	// DueAt is when the ticket should be solved; zero for none.
	DueAt time.Time `json:"due_at,omitzero"`
	// DueFromSLA is true while DueAt is the SLA default of the priority: a
	// priority change then moves it. Setting DueAt explicitly clears it.
	DueFromSLA bool `json:"due_from_sla,omitempty"`
	// Language is the customer's language (BCP 47), which picks notification
	// templates.
	Language string `json:"language,omitempty"`
	// External maps a bridge name to the tracker's id of this ticket. A key with
	// an empty value means the tracker has it but gave no id.
	External     map[string]string `json:"external,omitempty"`
	Satisfaction *Satisfaction     `json:"satisfaction,omitempty"`
	// Survey is the satisfaction survey asked for when the ticket was solved.
	Survey    *Survey   `json:"survey,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	SolvedAt  time.Time `json:"solved_at,omitzero"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	// Events is the log of every change, oldest first; at most MaxEvents are
	// kept, EventsDropped counts those let go.
	Events        []Event `json:"events,omitempty"`
	EventsDropped int     `json:"events_dropped,omitempty"`
	// LastSeq is the Seq of the latest event.
	LastSeq int64 `json:"last_seq"`
	// Revision is the stored revision this value was read at or written with.
	Revision uint64 `json:"-"`
}

// MaxEvents is how many events a ticket keeps; older ones are dropped (and
// counted) so that a ticket stays well below the store's value size.
const MaxEvents = 1000

// Requester is the customer a ticket is for: a snapshot of the contact when the
// ticket was created.
type Requester struct {
	ContactID string        `json:"contact_id,omitempty"`
	Name      string        `json:"name,omitempty"`
	Email     string        `json:"email,omitempty"`
	Phone     string        `json:"phone,omitempty"`
	Identity  core.Identity `json:"identity,omitempty"`
}

// Satisfaction is the customer's answer to the survey.
type Satisfaction struct {
	// Score is 1 (very dissatisfied) to 5 (very satisfied).
	Score int `json:"score"`
	// Text is what the customer wrote.
	Text    string    `json:"text,omitempty"`
	Channel string    `json:"channel,omitempty"`
	At      time.Time `json:"at"`
}

// Survey is a satisfaction survey sent after the ticket was solved: the next
// reply that reads as a score, before Until, records it.
type Survey struct {
	// Seq is the event that solved the ticket and asked the survey.
	Seq   int64     `json:"seq"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// Actions of events, in Event.Action.
const (
	ActionCreated      = "created"
	ActionUpdated      = "updated"
	ActionStatus       = "status"
	ActionReopened     = "reopened"
	ActionCommented    = "commented"
	ActionLinked       = "linked"
	ActionSatisfaction = "satisfaction"
	ActionExternal     = "external"
	// ActionExists is only in desk events: a desk asked for a ticket for a
	// conversation that has an active one, which the event names.
	ActionExists = "exists"
)

// Event is one entry of a ticket's log: who changed what, when.
type Event struct {
	// Seq numbers the ticket's events from 1.
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// Actor is who made the change: "slack:U123", "api", "zendesk",
	// "sms:+15551234567" (the customer), "system".
	Actor string `json:"actor"`
	// Action is one of the Action constants.
	Action  string   `json:"action"`
	Changes []Change `json:"changes,omitempty"`
	Comment *Comment `json:"comment,omitempty"`
	// Source is the bridge the change came from, so it is not sent back there.
	Source string `json:"source,omitempty"`
	// Ref is the id of what caused the change (an envelope, a request), which
	// makes its redelivery a no-op.
	Ref string `json:"ref,omitempty"`
	// Quiet events are logged only: no bus event, no notification.
	Quiet bool `json:"quiet,omitempty"`
	// NoNotify events are published, but the customer is not told.
	NoNotify bool `json:"no_notify,omitempty"`
}

// Change is one field's change; From and To are their text forms, "" for none.
type Change struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// Comment is a note on a ticket. Public comments may be shown to the customer
// by a tracker; others are internal.
type Comment struct {
	Body   string `json:"body"`
	Public bool   `json:"public,omitempty"`
}

// Change returns the change of field in e, if any.
func (e *Event) Change(field string) (Change, bool) {
	for _, c := range e.Changes {
		if c.Field == field {
			return c, true
		}
	}
	return Change{}, false
}

// Event returns the event with sequence seq, if still kept.
func (t *Ticket) Event(seq int64) (Event, bool) {
	for i := len(t.Events) - 1; i >= 0; i-- {
		if t.Events[i].Seq == seq {
			return t.Events[i], true
		}
	}
	return Event{}, false
}

// hasRef reports whether an event caused by ref is in the log.
func (t *Ticket) hasRef(ref string) bool {
	if ref == "" {
		return false
	}
	for i := len(t.Events) - 1; i >= 0; i-- {
		if t.Events[i].Ref == ref {
			return true
		}
	}
	return false
}

// record appends ev with the next Seq and returns it.
func (t *Ticket) record(ev Event) Event {
	t.LastSeq++
	ev.Seq = t.LastSeq
	t.Events = append(t.Events, ev)
	if n := len(t.Events) - MaxEvents; n > 0 {
		t.Events = slices.Delete(t.Events, 0, n)
		t.EventsDropped += n
	}
	return ev
}

// Key returns the ticket's number as the conversation's Tickets list and the
// desks show it: the decimal number.
func (t *Ticket) Key() string { return strconv.FormatInt(t.Number, 10) }

// summary is t without its log, for lists and deliveries.
func (t *Ticket) summary() *Ticket {
	c := *t
	c.Events = nil
	return &c
}
