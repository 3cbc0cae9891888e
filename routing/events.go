package routing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Auto-reply kinds in meta "auto".
const (
	AutoAck        = "ack"
	AutoOutOfHours = "out_of_hours"
)

// effect is something to publish or record, kept in the conversation's
// outbox until done.
type effect struct {
	// ID is the deduplication id: Nats-Msg-Id of a publish, sample id of a
	// response time.
	ID string `json:"id"`
	// Kind counts it in Metrics.
	Kind    string `json:"kind"`
	Subject string `json:"subject,omitempty"`
	Data    []byte `json:"data,omitempty"`
	// Queue and Wait record a response time.
	Queue string        `json:"queue,omitempty"`
	Wait  time.Duration `json:"wait,omitempty"`
	At    time.Time     `json:"at,omitzero"`
}

// Effect kinds.
const (
	kindRouted    = "routed"
	kindAssigned  = "assigned"
	kindAutoReply = "auto_reply"
	kindAck       = "ack"
	kindOOH       = "out_of_hours"
	kindBreach    = "breach"
	kindSample    = "sample"
	kindEvent     = "event"
	kindTicket    = "ticket"
	kindTag       = "tag"
)

// detID is a ULID at t whose random part derives from key, so rebuilding an
// envelope after a crash gives it the same id (the runtime's sent records and
// JetStream deduplication then keep it from being sent twice).
func detID(key string, t time.Time) string {
	sum := sha256.Sum256([]byte(key))
	return ulid.MustNew(ulid.Timestamp(t), bytes.NewReader(sum[:])).String()
}

// publishEffect encodes m for subject with deduplication id id.
func publishEffect(kind, id, subject string, m *core.Message) (effect, error) {
	data, err := m.Encode()
	if err != nil {
		return effect{}, fmt.Errorf("encode %s: %w", kind, err)
	}
	return effect{ID: id, Kind: kind, Subject: subject, Data: data}, nil
}

// replyEffects build an automatic message to the customer. It takes the
// pipeline's reply path (omni.in.routing.<partition of the conversation>): the
// pipeline picks the channel and recipient, appends it to the transcript and
// echoes it to the desks, as for an agent's reply.
// meta is added to the message's (empty values are not).
func (pl *plan) replyEffects(conv *store.Conversation, s *convState, auto, kind, key, text, lang string, at time.Time, meta map[string]string, quick ...string) ([]effect, error) {
	if conv.LastIdentity == "" && conv.LastChannel == "" && conv.Channel == "" {
		return nil, nil // nobody to answer
	}
	m := core.NewMessage(core.KindMessage, core.Outbound, event.ByRouting)
	m.ID = detID(key, at)
	m.ReceivedAt = at.UTC()
	m.ContactID, m.ConversationID = conv.ContactID, conv.ID
	m.Text = text
	m.QuickReplies = quick
	m.Language = lang
	m.Meta = map[string]string{event.MetaAuto: auto, event.MetaQueue: s.Queue, event.MetaBy: event.ByRouting}
	for k, v := range meta {
		if v != "" {
			m.Meta[k] = v
		}
	}
	e, err := publishEffect(kind, "reply:"+m.ID, bus.SubjectIn(event.ByRouting, conv.ID), m)
	if err != nil {
		return nil, err
	}
	return []effect{e}, nil
}

// tagEffects build the conversation.tag command adding tags to the
// conversation, for the pipeline, on routing's partition of it.
func (pl *plan) tagEffects(conv *store.Conversation, tags []string, key string, at time.Time) ([]effect, error) {
	m := core.NewMessage(core.KindEvent, core.Inbound, event.ByRouting)
	m.ID = detID(key, at)
	m.ReceivedAt = at.UTC()
	m.Type = event.ConversationTag
	m.From = core.NewIdentity(event.ByRouting, "rules")
	m.ContactID, m.ConversationID = conv.ContactID, conv.ID
	m.Meta = map[string]string{event.MetaTags: strings.Join(tags, ","), event.MetaBy: event.ByRouting}
	e, err := publishEffect(kindTag, "tag:"+m.ID, bus.SubjectIn(event.ByRouting, conv.ID), m)
	if err != nil {
		return nil, err
	}
	return []effect{e}, nil
}

// eventEffects build an event of type typ for the conversation, on the desk
// of queue when desk is set and on omni.evt.<typ> when evt is set.
func (pl *plan) eventEffects(conv *store.Conversation, queue, typ, kind, key string, meta map[string]string, at time.Time, desk, evt bool) ([]effect, error) {
	return pl.textEventEffects(conv, queue, typ, kind, key, "", meta, at, desk, evt)
}

// textEventEffects is eventEffects with the event's Text.
func (pl *plan) textEventEffects(conv *store.Conversation, queue, typ, kind, key, text string, meta map[string]string, at time.Time, desk, evt bool) ([]effect, error) {
	q := pl.queue(queue)
	m := core.NewMessage(core.KindEvent, core.Inbound, q.Desk)
	m.Text = text
	m.ID = detID(key, at)
	m.ReceivedAt = at.UTC()
	m.Type = typ
	m.ContactID, m.ConversationID = conv.ContactID, conv.ID
	m.Meta = map[string]string{event.MetaBy: event.ByRouting, event.MetaQueue: q.name}
	if q.Channel != "" {
		m.Meta[event.MetaDeskChannel] = q.Channel
	}
	for k, v := range meta {
		if v != "" {
			m.Meta[k] = v
		}
	}
	var out []effect
	if desk {
		e, err := publishEffect(kind, "desk:"+q.Desk+":"+m.ID, bus.SubjectDesk(q.Desk), m)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if evt {
		e, err := publishEffect(kind, "evt:"+m.ID, bus.SubjectEvt(typ), m)
		if err != nil {
			return nil, err
		}
		if desk {
			e.Kind = kindEvent
		}
		out = append(out, e)
	}
	return out, nil
}

// routedMeta describes s for a routed event.
func routedMeta(s *convState, reason, previous, agent string) map[string]string {
	return map[string]string{
		event.MetaPriority:         s.Priority,
		event.MetaTags:             strings.Join(s.Tags, ","),
		event.MetaSkills:           strings.Join(s.Skills, ","),
		event.MetaLanguage:         s.Language,
		event.MetaScore:            strconv.FormatFloat(s.Score, 'f', 2, 64),
		event.MetaLabels:           strings.Join(s.Labels, ","),
		event.MetaIntent:           s.Intent,
		event.MetaIntentConfidence: intentConfidence(s),
		event.MetaRule:             strings.Join(s.Rules, ","),
		event.MetaReason:           reason,
		event.MetaPreviousQueue:    previous,
		event.MetaAssignee:         s.Assignee,
		event.MetaAgent:            agent,
	}
}

// flush publishes and records the outbox of s, then removes what was done
// from the stored outbox.
func (r *Router) flush(ctx context.Context, conv *store.Conversation, s *convState) error {
	if len(s.Outbox) == 0 {
		return nil
	}
	done := map[string]bool{}
	var firstErr error
	for _, e := range s.Outbox {
		var err error
		switch e.Kind {
		case kindSample:
			err = r.addSample(ctx, e)
		default:
			var ack bus.Ack
			ack, err = r.bus.Publish(ctx, e.Subject, e.Data, bus.WithMsgID(e.ID))
			if err == nil && !ack.Duplicate {
				r.metrics.count(e.Kind)
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("flush %s: %w", e.Kind, err)
			}
			continue
		}
		done[e.ID] = true
	}
	st, err := r.update(ctx, conv, func(st *convState) error {
		kept := st.Outbox[:0]
		for _, e := range st.Outbox {
			if !done[e.ID] {
				kept = append(kept, e)
			}
		}
		if len(kept) == len(st.Outbox) {
			return store.ErrSkip
		}
		st.Outbox = kept
		return nil
	})
	if err == nil {
		*s = st
	} else if firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// intentConfidence formats the confidence of s's intent, "" without one.
func intentConfidence(s *convState) string {
	if s.Intent == "" {
		return ""
	}
	return strconv.FormatFloat(s.IntentConfidence, 'f', 2, 64)
}
