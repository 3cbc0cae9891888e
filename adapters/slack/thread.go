package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/core/store"
)

// thread is where a conversation lives in Slack: the channel and the ts of the
// root message, the card.
type thread struct {
	channel, ts string
}

// ref is the thread as stored in the conversation's record: "<channel>:<ts>".
func (t thread) ref() string { return t.channel + ":" + t.ts }

// parseRef reads a thread reference written by ref.
func parseRef(ref string) (thread, bool) {
	ch, ts, ok := strings.Cut(ref, ":")
	if !ok || ch == "" || ts == "" {
		return thread{}, false
	}
	return thread{channel: ch, ts: ts}, true
}

// threadKey is the "slack_threads" key of a thread (or of any message, by
// its ts) in channel.
func threadKey(channel, ts string) string { return channel + ":" + ts }

// threadRecord is the value of a "slack_threads" key.
type threadRecord struct {
	Conversation string `json:"conversation"`
}

// convRecord is what the adapter keeps per conversation in
// "slack_conversations": the desk's own state, which nothing else writes.
type convRecord struct {
	// Thread is where the conversation lives in Slack (ref); it changes when
	// a transfer moves it to another channel.
	Thread string `json:"thread,omitempty"`
	// ReplyVia is the channel replies go by, set with /omni reply-via.
	ReplyVia string `json:"reply_via,omitempty"`
	// Previous is the permalink of the previous conversation's thread.
	Previous string `json:"previous,omitempty"`
	// Name is the customer's name as a channel gave it, shown when the
	// contact has none.
	Name string `json:"name,omitempty"`
	// TicketStatus is the last status the ticket system reported for each
	// ticket of the conversation, shown on the card.
	TicketStatus map[string]string `json:"ticket_status,omitempty"`
	// Suggestions is the id of the latest suggestions posted for a customer
	// message, counted as ignored when the agent answers in their own words.
	Suggestions string `json:"suggestions,omitempty"`
	// ExpectedWait is the wait routing last announced to the customer, for
	// the canned answers' {{queue.expected_wait}}.
	ExpectedWait string `json:"expected_wait,omitempty"`
	// Intent is what the customer wants: routing's intent model's answer
	// (with IntentConfidence) or an agent's correction (IntentBy).
	Intent           string `json:"intent,omitempty"`
	IntentConfidence string `json:"intent_confidence,omitempty"`
	IntentBy         string `json:"intent_by,omitempty"`
	// IntentText is the customer's message the intent was told from, sent
	// back with a correction as the training row's text.
	IntentText string `json:"intent_text,omitempty"`
}

// threadOf returns where conversation id lives in Slack; ok is false while it
// has no thread.
func (a *Adapter) threadOf(ctx context.Context, id string) (th thread, ok bool, err error) {
	r, err := a.convSettings(ctx, id)
	if err != nil {
		return thread{}, false, err
	}
	th, ok = parseRef(r.Thread)
	return th, ok, nil
}

// convSettings reads conversation id's record; a missing one is empty.
func (a *Adapter) convSettings(ctx context.Context, id string) (convRecord, error) {
	var r convRecord
	if _, err := a.convs.Get(ctx, id, &r); err != nil && !errors.Is(err, store.ErrNotFound) {
		return r, err
	}
	return r, nil
}

// conversationOf returns the conversation whose thread (or an old thread of
// it, before a transfer) is channel/threadTS; ok is false for a thread that
// is not a conversation's.
func (a *Adapter) conversationOf(ctx context.Context, channel, threadTS string) (id string, ok bool, err error) {
	var rec threadRecord
	if _, err := a.threads.Get(ctx, threadKey(channel, threadTS), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", false, nil
		}
		return "", false, err
	}
	return rec.Conversation, rec.Conversation != "", nil
}

// ensureThread returns the thread of conv, opening it with a card in the
// channel of conv's queue if it has none yet. However many replicas race, one
// thread is kept: each posts a root and indexes it, then sets the record's
// Thread with compare-and-set; whoever finds it already set deletes its root
// and index entry and uses the one that won.
func (a *Adapter) ensureThread(ctx context.Context, conv *store.Conversation, contact *store.Contact, name string) (thread, error) {
	if th, ok, err := a.threadOf(ctx, conv.ID); err != nil || ok {
		return th, err
	}
	// Channels name the sender on some messages only: remember the name per
	// contact, for the threads of later conversations.
	if contact != nil {
		key := "name:" + contact.ID
		if name == "" {
			if _, err := a.convs.Get(ctx, key, &name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return thread{}, err
			}
		} else {
			var cur string
			if _, err := a.convs.Update(ctx, key, &cur, 0, func(bool) error {
				if cur == name {
					return store.ErrSkip
				}
				cur = name
				return nil
			}); err != nil {
				a.log.Warn("customer name not kept", "err", err)
			}
		}
	}
	var previous thread
	settings := convRecord{Name: name}
	if conv.Previous != "" {
		th, ok, err := a.threadOf(ctx, conv.Previous)
		if err != nil {
			return thread{}, fmt.Errorf("slack: previous conversation: %w", err)
		}
		if ok {
			previous = th
			settings.Previous = a.permalink(ctx, th.channel, th.ts)
		}
	}
	channel := a.channelOf(conv.Queue)
	blocks, text := a.card(cardView{conv: conv, contact: contact, previous: settings.Previous, name: name, intent: intentLine(settings)})
	ts, err := a.post(ctx, channel, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
	if err != nil {
		return thread{}, err
	}
	mine := thread{channel: channel, ts: ts}
	// Indexed before it is the conversation's, so that a crash in between
	// leaves at worst a root that still leads to the conversation.
	if _, err := a.threads.Create(ctx, threadKey(channel, ts), threadRecord{Conversation: conv.ID}, 0); err != nil && !errors.Is(err, store.ErrExists) {
		a.dropRoot(ctx, mine, false)
		return thread{}, fmt.Errorf("slack: index thread: %w", err)
	}
	var r convRecord
	if _, err := a.convs.Update(ctx, conv.ID, &r, 0, func(bool) error {
		if r.Thread != "" {
			return store.ErrSkip
		}
		r.Thread = mine.ref()
		r.Previous, r.Name = cmp.Or(r.Previous, settings.Previous), cmp.Or(r.Name, settings.Name)
		return nil
	}); err != nil {
		a.dropRoot(ctx, mine, true)
		return thread{}, fmt.Errorf("slack: store thread: %w", err)
	}
	won, ok := parseRef(r.Thread)
	if !ok {
		return thread{}, fmt.Errorf("slack: conversation %s: unreadable thread reference", conv.ID)
	}
	if won != mine {
		a.log.Debug("another replica opened the thread first", "conversation", conv.ID)
		a.dropRoot(ctx, mine, true)
		return won, nil
	}
	a.log.Debug("thread opened", "conversation", conv.ID, "channel", channel)
	if settings.Previous != "" {
		if link := a.permalink(ctx, channel, ts); link != "" {
			a.note(ctx, previous, fmt.Sprintf(":leftwards_arrow_with_hook: The customer is back: <%s|continued in a new conversation>.", link))
		}
	}
	return mine, nil
}

// dropRoot deletes a root that did not become the conversation's thread, and
// its index entry when indexed. Failures are logged: the root is harmless.
func (a *Adapter) dropRoot(ctx context.Context, th thread, indexed bool) {
	if err := a.remove(ctx, th.channel, th.ts); err != nil {
		a.log.Warn("duplicate thread root not deleted", "channel", th.channel, "err", err)
	}
	if indexed {
		if err := a.threads.Delete(ctx, threadKey(th.channel, th.ts), 0); err != nil {
			a.log.Warn("duplicate thread index not deleted", "channel", th.channel, "err", err)
		}
	}
}

// note posts text as the bot in thread th. Failures are logged: notes tell
// agents what happened, nothing depends on them.
func (a *Adapter) note(ctx context.Context, th thread, text string) {
	if _, err := a.post(ctx, th.channel, slackThread(th), slackText(text)); err != nil {
		a.log.Warn("thread note not posted", "channel", th.channel, "err", err)
	}
}

// refreshCard renders the card of conversation id again from the store.
//
// Refreshes of one conversation take turns in this process, each reading
// after the previous one posted: two at once could post what the earlier read
// saw last, and the card would show stale state.
func (a *Adapter) refreshCard(ctx context.Context, id string) error {
	defer a.cards.Lock(id)()
	conv, err := a.st.Conversation(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	settings, err := a.convSettings(ctx, id)
	if err != nil {
		return err
	}
	th, ok := parseRef(settings.Thread)
	if !ok {
		return nil
	}
	contact, err := a.contactOf(ctx, conv)
	if err != nil {
		return err
	}
	blocks, text := a.card(cardView{conv: conv, contact: contact, previous: settings.Previous, replyVia: settings.ReplyVia, name: settings.Name, ticketStatus: settings.TicketStatus, intent: intentLine(settings)})
	return a.update(ctx, th.channel, th.ts, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
}

// contactOf returns conv's contact, nil when it is gone.
func (a *Adapter) contactOf(ctx context.Context, conv *store.Conversation) (*store.Contact, error) {
	c, err := a.st.Contact(ctx, conv.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return c, err
}
