package tickets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// maxMergeHops bounds how many MergedInto links a notification follows.
const maxMergeHops = 8

// notificationsFor returns the template keys ev calls for, in sending order.
func (s *Service) notificationsFor(t *Ticket, ev Event) []string {
	on := s.cfg.Notify.On
	var keys []string
	switch ev.Action {
	case ActionCreated:
		if !ev.NoNotify && slices.Contains(on, notifyCreated) {
			keys = append(keys, notifyCreated)
		}
		return keys
	case ActionReopened:
		if slices.Contains(on, notifyReopened) {
			keys = append(keys, notifyReopened)
		}
		return keys
	case ActionSatisfaction:
		return []string{notifySurveyThanks}
	}
	if c, ok := ev.Change("status"); ok && !ev.NoNotify && slices.Contains(on, c.To) {
		keys = append(keys, c.To)
	}
	if c, ok := ev.Change("status"); ok && c.To == string(StatusSolved) && t.Survey != nil && t.Survey.Seq == ev.Seq {
		keys = append(keys, notifySurvey)
	}
	return keys
}

// handleNotify tells the customer about a change on the channel they used last.
func (s *Service) handleNotify(ctx context.Context, d *bus.Delivery) error {
	if !*s.cfg.Notify.Enabled {
		return nil
	}
	_, t, ev, err := s.loadEvent(ctx, d)
	if err != nil {
		return err
	}
	keys := s.notificationsFor(t, ev)
	if len(keys) == 0 {
		return nil
	}
	conv, err := s.customerConversation(ctx, t)
	if err != nil {
		return err
	}
	if conv == nil {
		s.log.Debug("no channel to tell the customer on", "ticket", t.Number, "seq", ev.Seq)
		return nil
	}
	for _, key := range keys {
		if err := s.notify(ctx, t, ev, conv, key); err != nil {
			return err
		}
	}
	return nil
}

// customerConversation returns the conversation whose last channel reaches the
// customer: their open conversation, else the latest linked one; nil when none
// has a channel.
func (s *Service) customerConversation(ctx context.Context, t *Ticket) (*store.Conversation, error) {
	if id := t.Requester.ContactID; id != "" {
		c, err := s.st.OpenConversation(ctx, id)
		switch {
		case err == nil && c.LastChannel != "" && c.LastIdentity != "":
			return c, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	for i := len(t.Conversations) - 1; i >= 0; i-- {
		id := t.Conversations[i]
		for range maxMergeHops {
			c, err := s.st.Conversation(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				return nil, err
			}
			if c.MergedInto != "" {
				id = c.MergedInto
				continue
			}
			if c.LastChannel != "" && c.LastIdentity != "" {
				return c, nil
			}
			break
		}
	}
	return nil, nil
}

// notify sends the message of template key to the customer of conv. Its envelope id is derived from the ticket event and
// the key, so a redelivery publishes the same envelope, which the stream and the
// adapters runtime send once.
func (s *Service) notify(ctx context.Context, t *Ticket, ev Event, conv *store.Conversation, key string) error {
	text, lang, err := s.render(key, t)
	if err != nil {
		return bus.Permanent(fmt.Errorf("notification %s of #%d: %w", key, t.Number, err))
	}
	if text == "" {
		return nil
	}
	// The pipeline's reply path picks the channel and the recipient, appends it
	// to the transcript and echoes it to the desks, as for an agent's reply.
	m := &core.Message{
		V:              core.EnvelopeVersion,
		ID:             derivedID(ev.At, "notify:"+t.Key()+":"+strconv.FormatInt(ev.Seq, 10)+":"+key),
		Kind:           core.KindMessage,
		Direction:      core.Outbound,
		Channel:        event.ByTickets,
		ContactID:      conv.ContactID,
		ConversationID: conv.ID,
		Text:           text,
		Language:       lang,
		ReceivedAt:     s.now().UTC(),
		Meta:           map[string]string{event.MetaAuto: "ticket", event.MetaTicket: t.Key(), event.MetaTemplate: key},
	}
	if _, err := s.bus.PublishMessage(ctx, bus.SubjectIn(event.ByTickets, conv.ID), m, bus.WithMsgID("ticket-notify:"+m.ID)); err != nil {
		if errors.Is(err, core.ErrInvalid) {
			return bus.Permanent(err)
		}
		return fmt.Errorf("notify #%d: %w", t.Number, err)
	}
	s.log.Debug("customer notified", "ticket", t.Number, "template", key, "channel", conv.LastChannel, "conversation", conv.ID)
	return nil
}
