package routing

import (
	"slices"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/core/store"
)

// convState is the routing state of one conversation, in the records
// "routing_conv" under the conversation id. Every change goes through
// compare-and-set, and every transition is idempotent and tolerant of
// transcript messages handled out of order (replicas share the transcript
// consumer): waiting is derived from the stream sequences of the latest
// customer message and the latest agent reply, and every timer, reply and
// event is recorded here before it is acted on.
type convState struct {
	// Opens is the conversation opening the state is about; a reopened
	// conversation is routed afresh.
	Opens int `json:"opens"`
	// OpenSeq is the transcript sequence of the opening's first message seen;
	// older messages belong to an earlier opening.
	OpenSeq uint64 `json:"open_seq,omitempty"`

	Routed bool     `json:"routed,omitempty"`
	Rules  []string `json:"rules,omitempty"`
	// Queue, Priority and Assignee are the conversation's, the one copy
	// (store.SetRouting), seen here while the state is handled: they are not
	// stored with the state. What a handler changes of them is kept in Pending
	// until it is written to the conversation.
	Queue     string   `json:"-"`
	Priority  string   `json:"-"`
	Assignee  string   `json:"-"`
	Tags      []string `json:"tags,omitempty"`
	Skills    []string `json:"skills,omitempty"`
	Language  string   `json:"language,omitempty"`
	Score     float64  `json:"score,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	Escalated bool     `json:"escalated,omitempty"`
	// Intent and IntentConfidence are the intent model's answer for the
	// opening's first message.
	Intent           string  `json:"intent,omitempty"`
	IntentConfidence float64 `json:"intent_confidence,omitempty"`
	// intentText is the message the intent was told from, while it is
	// routed; not stored.
	intentText string
	// RouteRev counts routing changes; it makes the ids of routed events.
	RouteRev int `json:"route_rev,omitempty"`

	// Pending is a change of the conversation's queue, priority or assignee
	// decided but not written to the conversation yet; its Rev is
	// RoutingRev, which the conversation records, so a late writer of an
	// older change cannot undo a newer one.
	Pending    *store.Routing `json:"pending,omitempty"`
	RoutingRev int            `json:"routing_rev,omitempty"`
	// Commands are the ids of the last commands (claims, transfers) applied,
	// so that a redelivered one, perhaps after a later one, changes nothing.
	Commands []string `json:"commands,omitempty"`
	// Reserved is the agent whose capacity slot the conversation holds; it
	// differs from Assignee only until the next reconcile.
	Reserved   string `json:"reserved,omitempty"`
	AssignRev  int    `json:"assign_rev,omitempty"`
	Backlogged bool   `json:"backlogged,omitempty"`

	// InSeq and OutSeq are the transcript sequences of the latest customer
	// message and agent reply; InAt is the time of the former.
	InSeq  uint64    `json:"in_seq,omitempty"`
	InAt   time.Time `json:"in_at,omitzero"`
	OutSeq uint64    `json:"out_seq,omitempty"`
	// WaitEpoch is the sequence of the customer message that started the
	// current wait, 0 when nobody waits; WaitSince is when it started.
	WaitEpoch uint64    `json:"wait_epoch,omitempty"`
	WaitSince time.Time `json:"wait_since,omitzero"`
	// FirstWait is when the opening's first wait started.
	FirstWait time.Time `json:"first_wait,omitzero"`
	// Responded is set by the opening's first agent reply.
	Responded bool `json:"responded,omitempty"`

	AckEpoch      uint64 `json:"ack_epoch,omitempty"`      // wait an ack was sent for
	OOHEpoch      uint64 `json:"ooh_epoch,omitempty"`      // wait an out-of-hours reply covered
	OOHUntil      int64  `json:"ooh_until,omitempty"`      // the opening (unix) it announced
	AutoReplied   bool   `json:"auto_replied,omitempty"`   // the rule's auto_reply was sent
	FirstBreached bool   `json:"first_breached,omitempty"` // first-response target breached
	NextBreached  uint64 `json:"next_breached,omitempty"`  // wait whose next-response target was breached

	Closed bool `json:"closed,omitempty"`

	// Timers are the armed timers, id -> due.
	Timers map[string]time.Time `json:"timers,omitempty"`
	// Outbox holds what must still be published or recorded.
	Outbox []effect `json:"outbox,omitempty"`
}

// stateTTL is how long the routing state of a conversation outlives its last
// change.
const stateTTL = 30 * 24 * time.Hour

func (s *convState) waiting() bool { return s.WaitEpoch != 0 }

// view fills Queue, Priority and Assignee: the pending change, else the
// conversation's.
func (s *convState) view(conv *store.Conversation) {
	s.RoutingRev = max(s.RoutingRev, conv.RoutingRev)
	r := store.Routing{Queue: conv.Queue, Priority: conv.Priority, Assignee: conv.Assignee}
	if s.Pending != nil {
		r = *s.Pending
	}
	s.Queue, s.Priority, s.Assignee = r.Queue, r.Priority, r.Assignee
}

// maxCommands is how many command ids a state remembers.
const maxCommands = 16

// command records command id as applied; it reports false when it was already.
func (s *convState) command(id string) bool {
	if slices.Contains(s.Commands, id) {
		return false
	}
	s.Commands = append(s.Commands, id)
	if len(s.Commands) > maxCommands {
		s.Commands = s.Commands[len(s.Commands)-maxCommands:]
	}
	return true
}

// routing is s's view of the conversation's routing.
func (s *convState) routing() store.Routing {
	return store.Routing{Queue: s.Queue, Priority: s.Priority, Assignee: s.Assignee}
}

// stage keeps a change of the view since before as the pending write.
func (s *convState) stage(before store.Routing) {
	now := s.routing()
	if now == before {
		return
	}
	s.RoutingRev++
	now.Rev = s.RoutingRev
	s.Pending = &now
}

// opening moves s to conv's current opening, resetting what is per opening.
// It reports false when seq belongs to an earlier opening.
func (s *convState) opening(conv *store.Conversation, seq uint64) bool {
	if conv.Opens > s.Opens {
		if conv.Opens == 1 {
			seq = 0 // no earlier opening: every message is of this one
		}
		keep := convState{
			Opens: conv.Opens, OpenSeq: seq,
			// The agent and queue stay: a reopened conversation goes back to them
			// unless the rules say otherwise.
			Queue: s.Queue, Priority: s.Priority, Assignee: s.Assignee, Pending: s.Pending, RoutingRev: s.RoutingRev,
			Reserved: s.Reserved, AssignRev: s.AssignRev, Commands: s.Commands,
			RouteRev: s.RouteRev, InSeq: s.InSeq, OutSeq: s.OutSeq, OOHUntil: s.OOHUntil,
			Timers: s.Timers, Outbox: s.Outbox,
		}
		*s = keep
		return true
	}
	return seq >= s.OpenSeq
}

// observeInbound records a customer message with transcript sequence seq at at.
func (s *convState) observeInbound(seq uint64, at time.Time) {
	if seq > s.InSeq {
		s.InSeq, s.InAt = seq, at
	}
	if seq <= s.OutSeq {
		return // answered already: handled after a later reply
	}
	switch {
	case s.WaitEpoch == 0:
		s.WaitEpoch, s.WaitSince = seq, at
		if !s.Responded && s.FirstWait.IsZero() {
			s.FirstWait = at
		}
	case at.Before(s.WaitSince):
		// An earlier message of the same wait, handled late.
		s.WaitSince = at
		if !s.Responded && at.Before(s.FirstWait) {
			s.FirstWait = at
		}
	}
}

// observeOutbound records an agent reply; it returns how long the customer
// waited for it, 0 when it answered no wait.
func (s *convState) observeOutbound(seq uint64, at time.Time) time.Duration {
	if seq <= s.OutSeq {
		return 0
	}
	s.OutSeq = seq
	s.Responded = true
	if s.WaitEpoch == 0 {
		return 0
	}
	waited := at.Sub(s.WaitSince)
	if s.InSeq > seq {
		// The customer wrote again after this reply (handled first): a new wait
		// from that message.
		s.WaitEpoch, s.WaitSince = s.InSeq, s.InAt
		return max(waited, 0)
	}
	s.WaitEpoch, s.WaitSince = 0, time.Time{}
	return max(waited, 0)
}

// addEffects appends effects whose id is not in the outbox yet.
func (s *convState) addEffects(es ...effect) {
	for _, e := range es {
		dup := false
		for _, o := range s.Outbox {
			if o.ID == e.ID {
				dup = true
				break
			}
		}
		if !dup {
			s.Outbox = append(s.Outbox, e)
		}
	}
}

// timerID names a timer of conversation conv.
func timerID(kind, conv string, opens int, epoch uint64) string {
	switch kind {
	case TimerFirstResponse:
		return "frt-" + conv + "-" + itoa(opens)
	case TimerNextResponse:
		return "nrt-" + conv + "-" + itoa(opens) + "-" + utoa(epoch)
	}
	return "ack-" + conv + "-" + itoa(opens) + "-" + utoa(epoch)
}

// desiredTimers are the timers s needs in queue q.
func (pl *plan) desiredTimers(conv string, s *convState) map[string]timerRecord {
	out := map[string]timerRecord{}
	if s.Closed || !s.Routed || !s.waiting() {
		return out
	}
	q := pl.queue(s.Queue)
	e := s.WaitEpoch
	if q.AckAfter > 0 && s.AckEpoch != e && s.OOHEpoch != e {
		out[timerID(TimerAck, conv, s.Opens, e)] = timerRecord{Kind: TimerAck, Conversation: conv, Opens: s.Opens, Epoch: e, Due: s.WaitSince.Add(q.AckAfter)}
	}
	t := q.targets(s.Priority)
	if !s.Responded && t.FirstResponse > 0 && !s.FirstBreached {
		start := s.FirstWait
		if start.IsZero() {
			start = s.WaitSince
		}
		out[timerID(TimerFirstResponse, conv, s.Opens, 0)] = timerRecord{Kind: TimerFirstResponse, Conversation: conv, Opens: s.Opens, Due: q.due(start, t.FirstResponse)}
	}
	if s.Responded && t.NextResponse > 0 && s.NextBreached != e {
		out[timerID(TimerNextResponse, conv, s.Opens, e)] = timerRecord{Kind: TimerNextResponse, Conversation: conv, Opens: s.Opens, Epoch: e, Due: q.due(s.WaitSince, t.NextResponse)}
	}
	return out
}

// sameTimers reports whether armed holds exactly want's ids and due times.
func sameTimers(armed map[string]time.Time, want map[string]timerRecord) bool {
	if len(armed) != len(want) {
		return false
	}
	for id, t := range want {
		if d, ok := armed[id]; !ok || !d.Equal(t.Due) {
			return false
		}
	}
	return true
}

func timerDues(want map[string]timerRecord) map[string]time.Time {
	if len(want) == 0 {
		return nil
	}
	out := make(map[string]time.Time, len(want))
	for id, t := range want {
		out[id] = t.Due
	}
	return out
}

func utoa(u uint64) string { return strconv.FormatUint(u, 10) }
