package tickets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
)

// Channel is the channel name of the envelopes the service publishes itself.
const Channel = "tickets"

// busType is the omni.evt type of ev.
func busType(ev Event) string {
	switch ev.Action {
	case ActionCreated:
		return event.TicketCreated
	case ActionCommented:
		return event.TicketCommented
	}
	return event.TicketUpdated
}

// derivedID returns a ULID made of at and a hash of key: the same inputs give
// the same id, so an envelope republished after a crash or a redelivery has the
// id of the first, and everything downstream that deduplicates by id (the
// stream's duplicate window, the adapters runtime's sent records) sees a repeat.
func derivedID(at time.Time, key string) string {
	sum := sha256.Sum256([]byte(key))
	ms := ulid.Timestamp(at)
	if ms > ulid.MaxTime() {
		ms = ulid.MaxTime()
	}
	id, err := ulid.New(ms, bytes.NewReader(sum[:]))
	if err != nil {
		return core.NewID()
	}
	return id.String()
}

// eventID is the envelope id of ticket n's event seq.
func eventID(n, seq int64, at time.Time) string {
	return derivedID(at, "ticket:"+strconv.FormatInt(n, 10)+":"+strconv.FormatInt(seq, 10))
}

// meta describes t (as it is now) and ev for envelopes.
func meta(t *Ticket, ev Event) map[string]string {
	m := map[string]string{
		event.MetaTicket:   t.Key(),
		event.MetaSeq:      strconv.FormatInt(ev.Seq, 10),
		event.MetaAction:   ev.Action,
		event.MetaStatus:   string(t.Status),
		event.MetaPriority: string(t.Priority),
		event.MetaSubject:  core.Truncate(t.Subject, 1000),
		event.MetaActor:    core.Truncate(ev.Actor, 256),
	}
	if t.Assignee != "" {
		m[event.MetaAssignee] = core.Truncate(t.Assignee, 256)
	}
	if len(t.Tags) > 0 {
		m[event.MetaTags] = core.Truncate(strings.Join(t.Tags, ","), 2000)
	}
	if !t.DueAt.IsZero() {
		m[event.MetaDueAt] = t.DueAt.UTC().Format(time.RFC3339)
	}
	if ev.Source != "" {
		m[event.MetaSource] = ev.Source
	}
	if c, ok := ev.Change("satisfaction"); ok && ev.Action == ActionSatisfaction {
		m[event.MetaSatisfaction] = c.To
	}
	if len(ev.Changes) > 0 {
		fields := make([]string, len(ev.Changes))
		for i, c := range ev.Changes {
			fields[i] = c.Field
		}
		m[event.MetaChanges] = core.Truncate(strings.Join(fields, ","), 2000)
	}
	if c, ok := ev.Change("status"); ok {
		m[event.MetaPreviousStatus] = c.From
	}
	return m
}

// describe says in words what ev did to t: "Ticket #1042 solved (was open) by slack:U1".
func describe(t *Ticket, ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Ticket #%d", t.Number)
	switch ev.Action {
	case ActionCreated:
		fmt.Fprintf(&b, " created: %s", t.Subject)
	case ActionReopened:
		b.WriteString(" reopened by the customer's reply")
	case ActionCommented:
		b.WriteString(" commented")
	case ActionSatisfaction:
		if c, ok := ev.Change("satisfaction"); ok {
			fmt.Fprintf(&b, " rated %s/5 by the customer", c.To)
		}
	default:
		var parts []string
		for _, c := range ev.Changes {
			switch {
			case c.Field == "status":
				parts = append(parts, c.To+" (was "+c.From+")")
			case c.To == "":
				parts = append(parts, c.Field+" cleared")
			default:
				parts = append(parts, c.Field+": "+c.To)
			}
		}
		b.WriteString(" " + strings.Join(parts, ", "))
	}
	if ev.Actor != "" && ev.Action != ActionReopened {
		b.WriteString(" by " + ev.Actor)
	}
	if ev.Comment != nil && ev.Comment.Body != "" {
		b.WriteString(": " + ev.Comment.Body)
	}
	return core.Truncate(b.String(), 2000)
}

// publishEvent publishes ev of t on omni.evt.<type>.
func (s *Service) publishEvent(ctx context.Context, t *Ticket, ev Event) error {
	m := &core.Message{
		V:          core.EnvelopeVersion,
		ID:         eventID(t.Number, ev.Seq, ev.At),
		Kind:       core.KindEvent,
		Type:       busType(ev),
		Direction:  core.Inbound,
		Channel:    Channel,
		ContactID:  t.Requester.ContactID,
		Text:       describe(t, ev),
		ReceivedAt: ev.At,
		Meta:       meta(t, ev),
	}
	if n := len(t.Conversations); n > 0 {
		m.ConversationID = t.Conversations[n-1]
	}
	msgID := "ticket:" + t.Key() + ":" + strconv.FormatInt(ev.Seq, 10)
	if _, err := s.bus.PublishMessage(ctx, bus.SubjectEvt(m.Type), m, bus.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("publish %s of #%d: %w", m.Type, t.Number, err)
	}
	return nil
}

// loadEvent reads the ticket and the event a ticket envelope is about. When the
// event fell out of the log, it is rebuilt from the envelope's meta.
func (s *Service) loadEvent(ctx context.Context, d *bus.Delivery) (*core.Message, *Ticket, Event, error) {
	m, err := d.Message()
	if err != nil {
		return nil, nil, Event{}, err
	}
	n, err1 := strconv.ParseInt(m.Meta[event.MetaTicket], 10, 64)
	seq, err2 := strconv.ParseInt(m.Meta[event.MetaSeq], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, nil, Event{}, bus.Permanent(fmt.Errorf("%s %s: meta %q or %q missing", m.Type, m.ID, event.MetaTicket, event.MetaSeq))
	}
	t, err := s.repo.get(ctx, n)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, Event{}, bus.Permanent(err)
	}
	if err != nil {
		return nil, nil, Event{}, err
	}
	ev, ok := t.Event(seq)
	if !ok {
		ev = Event{
			Seq:    seq,
			At:     m.ReceivedAt,
			Actor:  m.Meta[event.MetaActor],
			Action: m.Meta[event.MetaAction],
			Source: m.Meta[event.MetaSource],
		}
		for _, f := range strings.Split(m.Meta[event.MetaChanges], ",") {
			if f == "status" {
				ev.Changes = append(ev.Changes, Change{Field: f, From: m.Meta[event.MetaPreviousStatus], To: m.Meta[event.MetaStatus]})
			} else if f != "" {
				ev.Changes = append(ev.Changes, Change{Field: f})
			}
		}
	}
	return m, t, ev, nil
}

// handleDesk tells every desk about a change, once per linked conversation.
func (s *Service) handleDesk(ctx context.Context, d *bus.Delivery) error {
	_, t, ev, err := s.loadEvent(ctx, d)
	if err != nil {
		return err
	}
	return s.toDesks(ctx, t, ev, "")
}

// toDesks publishes the desk event of ev; tag makes its ids distinct from
// another desk event about the same ticket event.
func (s *Service) toDesks(ctx context.Context, t *Ticket, ev Event, tag string) error {
	md := meta(t, ev)
	text := describe(t, ev)
	for _, conv := range t.Conversations {
		for _, desk := range s.desks {
			key := "desk:" + desk + ":" + t.Key() + ":" + strconv.FormatInt(ev.Seq, 10) + ":" + conv + tag
			m := &core.Message{
				V:              core.EnvelopeVersion,
				ID:             derivedID(ev.At, key),
				Kind:           core.KindEvent,
				Type:           event.TicketUpdated,
				Direction:      core.Inbound,
				Channel:        desk,
				ContactID:      t.Requester.ContactID,
				ConversationID: conv,
				Text:           text,
				ReceivedAt:     s.now().UTC(),
				Meta:           md,
			}
			if _, err := s.bus.PublishMessage(ctx, bus.SubjectDesk(desk), m, bus.WithMsgID("ticket-"+key)); err != nil {
				return fmt.Errorf("publish to desk %s: %w", desk, err)
			}
		}
	}
	return nil
}
