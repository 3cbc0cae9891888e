package slack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// followUp is what is left to do after Slack was answered: updating cards,
// posting notes. It runs in the background, bounded by a timeout.
type followUp func(ctx context.Context) error

// result is the outcome of an agent's action.
type result struct {
	// say is told the agent only: the answer to a command, an ephemeral
	// message after a click.
	say string
	// after runs once Slack was answered; nil for nothing.
	after followUp
}

// action is one agent's action on one conversation.
type action struct {
	user    string // the agent's Slack user id
	channel string // where the agent acted
	conv    string // the conversation acted on
	// dedup makes what the action publishes unique to it, so that Slack
	// delivering it twice publishes once.
	dedup string
}

// agent is the identity of the agent acting.
func (act action) agent() core.Identity { return core.NewIdentity(Name, act.user) }

// parseInteraction reads an interaction payload (the "payload" form value of
// a POST to /interactivity, or a Socket Mode "interactive" request).
func parseInteraction(raw []byte) (*slack.InteractionCallback, error) {
	cb := new(slack.InteractionCallback)
	if err := json.Unmarshal(raw, cb); err != nil {
		return nil, fmt.Errorf("%w: interaction: %v", errMalformed, err)
	}
	if cb.Type == "" {
		return nil, fmt.Errorf("%w: interaction without type", errMalformed)
	}
	return cb, nil
}

// handleInteraction handles clicks on a card: Claim, Close, Reopen, Create
// ticket and Transfer. What must be stored or published is done before it
// returns; the follow-up updates Slack. An error means the click was not
// handled and Slack shows the agent it failed.
func (a *Adapter) handleInteraction(ctx context.Context, cb *slack.InteractionCallback) (followUp, error) {
	if cb.Type == slack.InteractionTypeViewSubmission && cb.View.CallbackID == viewSuggestEdit {
		return a.editSubmitted(ctx, cb)
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil, nil
	}
	channel := cmp.Or(cb.Container.ChannelID, cb.Channel.ID)
	ts := cmp.Or(cb.Container.MessageTs, cb.Message.Timestamp)
	user := cb.User.ID
	var afters []followUp
	for _, ba := range cb.ActionCallback.BlockActions {
		if ba == nil || !slices.Contains([]string{actionClaim, actionClose, actionReopen, actionTicket, actionTransfer, actionSuggestSend, actionSuggestEdit}, ba.ActionID) {
			continue
		}
		if channel == "" || ts == "" || user == "" {
			return nil, fmt.Errorf("%w: block action without channel, message or user", errMalformed)
		}
		if ba.ActionID == actionSuggestSend || ba.ActionID == actionSuggestEdit {
			res, err := a.suggestionClick(ctx, cb, ba)
			if err != nil {
				return nil, err
			}
			afters = append(afters, res.after, a.sayLater(channel, user, res.say))
			continue
		}
		convID, ok, err := a.conversationOf(ctx, channel, ts)
		if err != nil {
			return nil, err
		}
		if !ok {
			a.log.Debug("click on a card of no known conversation", "channel", channel)
			continue
		}
		a.rememberAgent(ctx, user, channel, convID)
		dedup := cmp.Or(cb.TriggerID, ba.ActionTs)
		if dedup == "" {
			dedup = core.NewID()
		}
		act := action{user: user, channel: channel, conv: convID, dedup: dedup + ":" + ba.ActionID}
		var res result
		switch ba.ActionID {
		case actionClaim:
			res, err = a.claim(ctx, act)
		case actionClose:
			res, err = a.closeConversation(ctx, act)
		case actionReopen:
			res, err = a.reopen(ctx, act)
		case actionTicket:
			res, err = a.ticket(ctx, act)
		case actionTransfer:
			res, err = a.transfer(ctx, act, ba.SelectedOption.Value)
		}
		if err != nil {
			return nil, err
		}
		afters = append(afters, res.after)
		if res.say != "" {
			say := res.say
			afters = append(afters, func(ctx context.Context) error {
				a.ephemeral(ctx, channel, user, "", say)
				return nil
			})
		}
	}
	return joinFollowUps(afters), nil
}

// sayLater shows say to user in channel once Slack was answered; nil when
// there is nothing to say.
func (a *Adapter) sayLater(channel, user, say string) followUp {
	if say == "" {
		return nil
	}
	return func(ctx context.Context) error {
		a.ephemeral(ctx, channel, user, "", say)
		return nil
	}
}

// joinFollowUps runs fs in order; the first error ends them.
func joinFollowUps(fs []followUp) followUp {
	fs = slices.DeleteFunc(fs, func(f followUp) bool { return f == nil })
	if len(fs) == 0 {
		return nil
	}
	return func(ctx context.Context) error {
		for _, f := range fs {
			if err := f(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// cardAndNote updates the card of conversation id and posts note in its
// thread.
func (a *Adapter) cardAndNote(id, note string) followUp {
	return func(ctx context.Context) error {
		if note != "" {
			if th, ok, err := a.threadOf(ctx, id); err == nil && ok {
				a.note(ctx, th, note)
			}
		}
		return a.refreshCard(ctx, id)
	}
}

// claim asks routing to assign the conversation to the agent; the card
// changes when routing says it did (conversation.assigned).
func (a *Adapter) claim(ctx context.Context, act action) (result, error) {
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: claim: %w", err)
	}
	assignee := string(act.agent())
	if conv.Assignee == assignee {
		return result{say: "You have this conversation already."}, nil
	}
	if err := a.publishEvent(ctx, event.ConversationClaim, conv, act, map[string]string{event.MetaAssignee: assignee}); err != nil {
		return result{}, err
	}
	return result{say: "Claiming the conversation for you."}, nil
}

// closeConversation asks the pipeline to close the conversation; the card
// changes when it says it did (conversation.closed).
func (a *Adapter) closeConversation(ctx context.Context, act action) (result, error) {
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: close: %w", err)
	}
	if conv.State == store.StateClosed {
		return result{say: "This conversation is closed already.", after: a.cardAndNote(conv.ID, "")}, nil
	}
	if err := a.deskEvent(ctx, event.ConversationClose, act, map[string]string{event.MetaOpens: strconv.Itoa(conv.Opens)}); err != nil {
		return result{}, err
	}
	return result{say: "Closing the conversation."}, nil
}

// reopen asks the pipeline to reopen a closed conversation; the card changes
// when it says it did (conversation.reopened), and the agent hears why when it
// cannot (command.rejected). What the store already shows is answered at once.
func (a *Adapter) reopen(ctx context.Context, act action) (result, error) {
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: reopen: %w", err)
	}
	if conv.State == store.StateOpen {
		return result{say: "This conversation is open already.", after: a.cardAndNote(conv.ID, "")}, nil
	}
	if open, err := a.st.OpenConversation(ctx, conv.ContactID); err == nil {
		return result{say: "The customer has another open conversation" + a.threadLink(ctx, open.ID) + "; continue there."}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return result{}, fmt.Errorf("slack: reopen: %w", err)
	}
	if err := a.deskEvent(ctx, event.ConversationReopen, act, map[string]string{event.MetaOpens: strconv.Itoa(conv.Opens)}); err != nil {
		return result{}, err
	}
	return result{say: "Reopening the conversation."}, nil
}

// threadLink is " (<permalink|thread>)" for the thread of conversation id, or "".
func (a *Adapter) threadLink(ctx context.Context, id string) string {
	if th, ok, err := a.threadOf(ctx, id); err == nil && ok {
		if link := a.permalink(ctx, th.channel, th.ts); link != "" {
			return " (<" + link + "|thread>)"
		}
	}
	return ""
}

// ticket asks for a ticket for the conversation (ticket.create).
func (a *Adapter) ticket(ctx context.Context, act action) (result, error) {
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: ticket: %w", err)
	}
	if err := a.publishEvent(ctx, event.TicketCreate, conv, act, nil); err != nil {
		return result{}, err
	}
	return result{
		say:   "A ticket was requested; it shows on the card once created.",
		after: a.cardAndNote(conv.ID, ":ticket: <@"+act.user+"> asked for a ticket."),
	}, nil
}

// transfer asks routing to move the conversation to queue; routing answers
// with conversation.routed, and the thread follows to the queue's channel.
func (a *Adapter) transfer(ctx context.Context, act action, queue string) (result, error) {
	if !slices.Contains(a.queueNames(), queue) {
		return result{say: fmt.Sprintf("There is no queue %q.", queue)}, nil
	}
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: transfer: %w", err)
	}
	if a.queueOf(conv.Queue) == queue {
		return result{say: "The conversation is in queue " + queue + " already."}, nil
	}
	if err := a.publishEvent(ctx, event.ConversationTransfer, conv, act, map[string]string{event.MetaQueue: queue}); err != nil {
		return result{}, err
	}
	return result{say: "Transferring the conversation to queue " + queue + "."}, nil
}

// moveThread follows a change of queue in Slack: when the new queue's channel
// is another, the conversation gets a new thread there (the old one stays
// indexed, so replies in it still reach the customer, and its card points to
// the new one); otherwise a note and the card tell. who is who moved it, as
// the notes say it.
func (a *Adapter) moveThread(ctx context.Context, id, who, from, to string) error {
	conv, err := a.st.Conversation(ctx, id)
	if err != nil {
		return err
	}
	settings, err := a.convSettings(ctx, conv.ID)
	if err != nil {
		return err
	}
	old, ok := parseRef(settings.Thread)
	if !ok {
		return nil
	}
	moved := ":twisted_rightwards_arrows: " + who + " transferred this conversation from queue *" + escapeMrkdwn(from) + "* to *" + escapeMrkdwn(to) + "*"
	channel := a.channelOf(conv.Queue)
	if channel == old.channel {
		return a.cardAndNote(conv.ID, moved+".")(ctx)
	}
	contact, err := a.contactOf(ctx, conv)
	if err != nil {
		return err
	}
	view := cardView{
		conv:         conv,
		contact:      contact,
		previous:     settings.Previous,
		replyVia:     settings.ReplyVia,
		name:         settings.Name,
		ticketStatus: settings.TicketStatus,
		intent:       intentLine(settings),
	}
	blocks, text := a.card(view)
	ts, err := a.post(ctx, channel, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
	if err != nil {
		return err
	}
	mine := thread{channel: channel, ts: ts}
	if _, err := a.threads.Create(ctx, threadKey(channel, ts), threadRecord{Conversation: conv.ID}, 0); err != nil && !errors.Is(err, store.ErrExists) {
		a.dropRoot(ctx, mine, false)
		return err
	}
	var r convRecord
	_, err = a.convs.Update(ctx, conv.ID, &r, 0, func(bool) error {
		if r.Thread != old.ref() {
			return store.ErrSkip
		}
		r.Thread = mine.ref()
		return nil
	})
	if err != nil || r.Thread != mine.ref() {
		a.dropRoot(ctx, mine, true) // failed, or another transfer moved it first
		return err
	}
	link := a.permalink(ctx, channel, ts)
	if link != "" {
		moved += ": <" + link + "|continue in the new thread>"
		view.movedTo = link
		blocks, text := a.card(view)
		if err := a.update(ctx, old.channel, old.ts, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false)); err != nil {
			a.log.Warn("old card not updated", "conversation", conv.ID, "err", err)
		}
	}
	a.note(ctx, old, moved+".")
	here := ":twisted_rightwards_arrows: " + who + " transferred this conversation here from queue *" + escapeMrkdwn(from) + "*"
	if oldLink := a.permalink(ctx, old.channel, old.ts); oldLink != "" {
		here += ": <" + oldLink + "|earlier messages>"
	}
	a.note(ctx, mine, here+".")
	return nil
}

// publishEvent publishes a command for routing or tickets about act's
// conversation on omni.evt.<typ>, deduplicated by the action.
func (a *Adapter) publishEvent(ctx context.Context, typ string, conv *store.Conversation, act action, meta map[string]string) error {
	return a.publishTextEvent(ctx, typ, conv, act, "", meta)
}

// publishTextEvent is publishEvent with the event's Text.
func (a *Adapter) publishTextEvent(ctx context.Context, typ string, conv *store.Conversation, act action, text string, meta map[string]string) error {
	ev := core.NewMessage(core.KindEvent, core.Inbound, Name)
	ev.Type = typ
	ev.Text = text
	ev.From = act.agent()
	ev.ConversationID, ev.ContactID = conv.ID, conv.ContactID
	ev.External.Message = typ + ":" + act.dedup
	ev.Meta = map[string]string{event.MetaDesk: Name}
	for k, v := range meta {
		ev.Meta[k] = v
	}
	if err := a.pub.Event(ctx, ev); err != nil {
		return fmt.Errorf("slack: %s: %w", typ, err)
	}
	return nil
}

// deskEvent publishes a command of act's conversation for the pipeline
// (conversation.close, conversation.reopen, contact.link), on the
// conversation's partition so that it keeps its order with the replies.
func (a *Adapter) deskEvent(ctx context.Context, typ string, act action, meta map[string]string) error {
	ev := core.NewMessage(core.KindEvent, core.Inbound, Name)
	ev.Type = typ
	ev.From = act.agent()
	ev.ConversationID = act.conv
	ev.External.Message = typ + ":" + act.dedup
	ev.Meta = meta
	if _, err := a.pub.Desk(ctx, ev, act.conv); err != nil {
		return fmt.Errorf("slack: %s: %w", typ, err)
	}
	return nil
}
