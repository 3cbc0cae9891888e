package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// EventTypes lists the events the runtime hands to HandleEvent: delivery
// reports of replies and the changes of conversations a card shows.
func (a *Adapter) EventTypes() []string {
	return []string{
		event.DeliverySent, event.DeliveryDelivered, event.DeliveryRead, event.DeliveryFailed,
		event.ContactUnreachable, event.ContactReachable, event.DeliveryRerouted,
		event.ConversationClosed, event.ConversationReopened, event.TicketCreated,
		event.ConversationTagged,
	}
}

// HandleEvent shows in Slack what became of a conversation and its replies:
//
//   - delivery.sent, .delivered and .read of a reply written in Slack put a
//     reaction on the agent's message; delivery.failed one too, and a note
//     in the thread with the channel's error. Delivery states only move
//     forward (queued < sent < delivered < read; failed is final), per
//     channel: a report behind the furthest one recorded, late or repeated,
//     changes nothing;
//   - contact.unreachable and contact.reachable (a channel that can no longer,
//     or again, reach the customer) and delivery.rerouted (a reply sent on
//     another channel for it) are noted in the thread;
//   - conversation.closed, conversation.reopened and ticket.created, the
//     answers to what agents asked for here or elsewhere, update the card,
//     with a note.
//
// Routing's events (routed, assigned, sla.breached) come to Send on the desk
// subject.
//
// Events about messages or conversations the desk does not know are ignored.
func (a *Adapter) HandleEvent(ctx context.Context, ev *core.Message) error {
	switch ev.Type {
	case event.DeliverySent:
		return a.reactTo(ctx, ev, a.cfg.Reactions.Sent)
	case event.DeliveryDelivered:
		return a.reactTo(ctx, ev, a.cfg.Reactions.Delivered)
	case event.DeliveryRead:
		return a.reactTo(ctx, ev, a.cfg.Reactions.Read)
	case event.DeliveryFailed:
		return a.failed(ctx, ev)
	case event.ContactUnreachable:
		return a.eventNote(ctx, ev, ":no_entry: "+unreachableNote(cmp.Or(ev.From.Channel(), ev.Channel), ev.Meta[event.MetaReason], ev.Meta[event.MetaError]), false)
	case event.ContactReachable:
		return a.eventNote(ctx, ev, ":white_check_mark: The customer can be reached on "+channelLabel(cmp.Or(ev.From.Channel(), ev.Channel))+" again.", false)
	case event.DeliveryRerouted:
		note := ":twisted_rightwards_arrows: Sent by " + channelLabel(ev.Meta[event.MetaCarriedBy]) + " instead"
		if u := ev.Meta[event.MetaUnreachable]; u != "" {
			note += ": the customer cannot be reached at " + u
		}
		return a.eventNote(ctx, ev, note+".", false)
	case event.ConversationClosed:
		by := "The conversation was closed."
		if u, ok := slackUser(ev.From); ok {
			by = "<@" + u + "> closed this conversation."
		}
		return a.eventNote(ctx, ev, ":white_check_mark: "+by+" The customer's next message opens it again.", true)
	case event.ConversationTagged:
		return a.eventNote(ctx, ev, taggedNote(ev), true)
	case event.ConversationReopened:
		by := "The conversation was reopened."
		if u, ok := slackUser(ev.From); ok {
			by = "<@" + u + "> reopened this conversation."
		}
		return a.eventNote(ctx, ev, ":arrows_counterclockwise: "+by, true)
	case event.TicketCreated:
		if err := a.recordTicket(ctx, ev); err != nil {
			return err
		}
		note := ":ticket: A ticket was created"
		if id := ev.Meta[event.MetaTicket]; id != "" {
			if u := ev.Meta[event.MetaTicketURL]; strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
				note += ": <" + u + "|" + escapeMrkdwn(id) + ">"
			} else {
				note += ": " + escapeMrkdwn(id)
			}
		}
		return a.eventNote(ctx, ev, note+".", true)
	}
	return nil
}

// assignedNote says who has the conversation now, and who chose them.
func assignedNote(ev *core.Message) string {
	as := ev.Meta[event.MetaAssignee]
	switch {
	case as == "":
		return ":raising_hand: The conversation is unassigned."
	case ev.Meta[event.MetaBy] == Name:
		return ":raising_hand: " + mention(as) + " claimed this conversation."
	}
	return ":raising_hand: Assigned to " + mention(as) + "."
}

// slackUser returns the user id of a Slack identity.
func slackUser(id core.Identity) (string, bool) {
	if id.Channel() != Name || id.Address() == "" {
		return "", false
	}
	return id.Address(), true
}

// reactTo puts reaction name on the agent's message ev reports on, when
// its delivery state moved forward (advance): a late delivery.sent after
// delivery.delivered adds nothing.
func (a *Adapter) reactTo(ctx context.Context, ev *core.Message, name string) error {
	rec, show, ok, err := a.advance(ctx, ev)
	if err != nil || !ok || !show || rec.EditOf != "" {
		return err
	}
	if err := a.react(ctx, rec.Channel, rec.TS, name); err != nil {
		return err
	}
	a.shown(ctx, ev)
	return nil
}

// failed marks the agent's message that could not be delivered and notes
// why in its thread, once per reply and channel however many failures the
// channel reports.
func (a *Adapter) failed(ctx context.Context, ev *core.Message) error {
	rec, show, ok, err := a.advance(ctx, ev)
	if err != nil || !ok || !show {
		return err
	}
	why := strings.TrimSpace(ev.Meta[event.MetaError])
	if why == "" {
		why = "no reason given"
	}
	th := thread{channel: rec.Channel, ts: cmp.Or(rec.Thread, rec.TS)}
	note := ":warning: This reply could not be delivered via " + channelLabel(ev.Channel) + ": " + escapeMrkdwn(core.Ellipsize(why, 500))
	if rec.EditOf != "" {
		// The original reply keeps its reactions: only the note tells.
		note = ":warning: An edit of this reply could not be delivered via " + channelLabel(ev.Channel) + ": " + escapeMrkdwn(core.Ellipsize(why, 500))
	} else if err := a.react(ctx, rec.Channel, rec.TS, a.cfg.Reactions.Failed); err != nil {
		return err
	}
	if err := a.onceNote(ctx, "failed:"+ev.ReplyTo+":"+ev.Channel, th, note); err != nil {
		return err
	}
	a.shown(ctx, ev)
	return nil
}

// eventNote notes text in the thread of ev's conversation, once per event,
// and updates its card when card is set.
func (a *Adapter) eventNote(ctx context.Context, ev *core.Message, text string, card bool) error {
	if ev.ConversationID == "" {
		return nil
	}
	th, ok, err := a.threadOf(ctx, ev.ConversationID)
	if err != nil || !ok {
		return err
	}
	if card {
		if err := a.refreshCard(ctx, ev.ConversationID); err != nil {
			return err
		}
	}
	return a.onceNote(ctx, ev.ID, th, text)
}

// onceNote posts text in thread th unless the note of event id was posted.
func (a *Adapter) onceNote(ctx context.Context, id string, th thread, text string) error {
	key := "note:" + id
	var done bool
	if _, err := a.messages.Get(ctx, key, &done); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := a.post(ctx, th.channel, slackThread(th), slackText(text)); err != nil {
		return fmt.Errorf("slack: note: %w", err)
	}
	if _, err := a.messages.Create(ctx, key, true, messageTTL); err != nil && !errors.Is(err, store.ErrExists) {
		a.log.Warn("note posted, but not recorded", "err", err)
	}
	return nil
}

// unreachableNote says in words why the customer cannot be reached on channel.
func unreachableNote(channel, reason, detail string) string {
	on := channelLabel(channel)
	var s string
	switch reason {
	case event.ReasonBlocked:
		s = "The customer blocked us on " + on
	case event.ReasonBounced:
		s = "Mail to the customer bounced"
	case event.ReasonOptedOut:
		s = "The customer opted out of " + on + " (they must opt in again, e.g. reply START)"
	case event.ReasonOutsideWindow:
		s = on + "'s 24-hour window is closed and no template is configured; the customer's next message opens it"
	default:
		s = "The customer cannot be reached on " + on
		if detail != "" {
			s += " (" + detail + ")"
		}
	}
	return s + ": replies go by their next reachable channel, or `/omni reply-via` picks one."
}
