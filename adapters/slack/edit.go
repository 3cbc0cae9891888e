package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack/slackevents"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Meta keys of an agent's edit or deletion of a reply already sent. The desk
// publishes either for the pipeline as it publishes a reply (an outbound
// message from slack:<user> in the conversation, on its partition), so that
// it reaches the channel that carried the reply, in order with the others:
//
//   - an edit has meta edit_of = the envelope id of the reply it changes,
//     Text = the whole new text (CommonMark, meta format markdown);
//   - a deletion has meta delete_of = the envelope id of the reply, and no
//     Text;
//
// both with meta reply_via = the channel that carried the reply, so that the
// pipeline does not send them elsewhere. A channel applies them to the
// message it sent for that envelope id (Telegram's editMessageText and
// deleteMessage, the web chat's own frames).
//
// They cross a package boundary and belong in core/event's catalogue; until
// they are there, they are spelled here.
const (
	metaEditOf   = event.MetaEditOf
	metaDeleteOf = event.MetaDeleteOf
)

// editChannels are the customer channels whose adapters apply edit_of and
// delete_of. For the others (SMS, WhatsApp, email: what was sent stays sent)
// the desk notes in the thread that the customer keeps the first version.
// Telegram applies them (editMessageText, deleteMessage); the web widget and
// the app are to come. It belongs in adapters.Info, as a capability a channel
// declares.
var editChannels = map[string]bool{"telegram": true}

// agentEdit passes on an agent's edit (a message_changed event) of a reply
// already published: as an edit_of envelope where the channel that carried
// the reply can change it, else as a note in the thread. Changes that are
// not a person's edit of the text (an unfurl, a reply count, a bot's message)
// are ignored. published reports whether an envelope was published.
func (a *Adapter) agentEdit(ctx context.Context, eventID string, ev *slackevents.MessageEvent) (published bool, err error) {
	msg, prev := ev.Message, ev.PreviousMessage
	switch {
	case msg == nil || msg.Edited == nil || msg.Edited.Timestamp == "" || ev.Channel == "":
		return false, nil
	case msg.BotID != "" || msg.User == "" || msg.User == a.botUserID():
		return false, nil
	case prev != nil && prev.Text == msg.Text:
		return false, nil // the text did not change (files, attachments)
	case strings.TrimSpace(msg.Text) == "":
		return false, nil
	}
	orig, rec, ok, err := a.replyAt(ctx, ev.Channel, msg.Timestamp)
	if err != nil || !ok {
		return false, err
	}
	key := "edit:" + ev.Channel + ":" + msg.Timestamp + ":" + msg.Edited.Timestamp
	th := thread{channel: rec.Channel, ts: cmp.Or(rec.Thread, rec.TS)}
	target, err := a.carrier(ctx, rec)
	if err != nil || target == "" {
		return false, err
	}
	if !editChannels[target] {
		note := ":pencil2: <@" + cmp.Or(msg.Edited.User, msg.User) + "> edited a reply here, but " + channelLabel(target) +
			" cannot change a message already sent: the customer keeps the first version. Send a new reply if the change matters."
		return false, a.onceNote(ctx, key, th, note)
	}
	m, err := a.change(ctx, key, rec, msg.Edited.User, eventID)
	if err != nil {
		return false, err
	}
	m.SentAt = slackTime(msg.Edited.Timestamp)
	m.Text = ConvertMrkdwn(a.resolveMentions(ctx, msg.Text))
	m.Meta[event.MetaFormat] = event.FormatMarkdown
	m.Meta[metaEditOf] = orig
	m.Meta[event.MetaReplyVia] = target
	return a.publishChange(ctx, m, rec, orig)
}

// agentDelete passes on an agent's deletion (a message_deleted event) of a
// reply already published: as a delete_of envelope where the channel that
// carried it can take it back, else as a note in the thread.
func (a *Adapter) agentDelete(ctx context.Context, eventID string, ev *slackevents.MessageEvent) (published bool, err error) {
	prev := ev.PreviousMessage
	if ev.DeletedTimeStamp == "" || ev.Channel == "" || prev != nil && prev.BotID != "" {
		return false, nil
	}
	orig, rec, ok, err := a.replyAt(ctx, ev.Channel, ev.DeletedTimeStamp)
	if err != nil || !ok {
		return false, err
	}
	key := "delete:" + ev.Channel + ":" + ev.DeletedTimeStamp
	th := thread{channel: rec.Channel, ts: cmp.Or(rec.Thread, rec.TS)}
	target, err := a.carrier(ctx, rec)
	if err != nil || target == "" {
		return false, err
	}
	author := ""
	if prev != nil {
		author = prev.User
	}
	if !editChannels[target] {
		note := ":wastebasket: A reply was deleted here, but " + channelLabel(target) +
			" cannot take back a message already sent: the customer still has it."
		return false, a.onceNote(ctx, key, th, note)
	}
	m, err := a.change(ctx, key, rec, author, eventID)
	if err != nil {
		return false, err
	}
	m.SentAt = slackTime(ev.TimeStamp)
	m.Meta[metaDeleteOf] = orig
	m.Meta[event.MetaReplyVia] = target
	return a.publishChange(ctx, m, rec, orig)
}

// replyAt returns the envelope id and the record of the agent's reply at
// channel/ts; ok is false for a message that is not a reply the desk
// published (a note, a customer's message, a card).
func (a *Adapter) replyAt(ctx context.Context, channel, ts string) (id string, rec msgRecord, ok bool, err error) {
	if ts == "" {
		return "", rec, false, nil
	}
	var ref msgRecord
	if _, err := a.messages.Get(ctx, "ts:"+channel+":"+ts, &ref); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", rec, false, nil
		}
		return "", rec, false, err
	}
	if ref.Envelope == "" {
		return "", rec, false, nil
	}
	if _, err := a.messages.Get(ctx, "env:"+ref.Envelope, &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", rec, false, nil
		}
		return "", rec, false, err
	}
	return ref.Envelope, rec, rec.Conversation != "" && rec.Channel != "", nil
}

// carrier is the customer channel that carried reply rec: the one its
// delivery reports came from (advance), else, before any came, the one the
// pipeline sends the conversation's replies on. "" when the conversation is
// gone.
func (a *Adapter) carrier(ctx context.Context, rec msgRecord) (string, error) {
	if rec.Via != "" {
		return rec.Via, nil
	}
	conv, err := a.st.Conversation(ctx, rec.Conversation)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	settings, err := a.convSettings(ctx, conv.ID)
	if err != nil {
		return "", err
	}
	return cmp.Or(settings.ReplyVia, conv.LastChannel, conv.Channel), nil
}

// change starts the envelope of an edit or deletion key (one per Slack
// change, however often Slack delivers it) by user of reply rec: its id is
// chosen the first time and recorded under key.
func (a *Adapter) change(ctx context.Context, key string, rec msgRecord, user, eventID string) (*core.Message, error) {
	var ref msgRecord
	if _, err := a.messages.Update(ctx, key, &ref, messageTTL, func(bool) error {
		if ref.Envelope != "" {
			return store.ErrSkip
		}
		ref.Envelope = core.NewID()
		return nil
	}); err != nil {
		return nil, fmt.Errorf("slack: record change: %w", err)
	}
	m := core.NewMessage(core.KindMessage, core.Outbound, Name)
	m.ID = ref.Envelope
	if user != "" {
		m.From = core.NewIdentity(Name, user)
		if name := a.userName(ctx, user); name != "" {
			m.Meta = map[string]string{event.MetaAgentName: core.Ellipsize(name, 200)}
		}
	}
	if m.Meta == nil {
		m.Meta = map[string]string{}
	}
	m.ConversationID = rec.Conversation
	m.External = core.External{Message: cmp.Or(eventID, key), Thread: rec.Thread, Chat: rec.Channel}
	return m, nil
}

// publishChange publishes edit or deletion m of reply orig for the pipeline
// and records where it is in Slack (the reply's message), so that a failure
// to deliver it is noted there.
func (a *Adapter) publishChange(ctx context.Context, m *core.Message, rec msgRecord, orig string) (bool, error) {
	where := msgRecord{Channel: rec.Channel, TS: rec.TS, Thread: rec.Thread, Conversation: rec.Conversation, EditOf: orig}
	if _, err := a.messages.Create(ctx, "env:"+m.ID, where, messageTTL); err != nil && !errors.Is(err, store.ErrExists) {
		return false, fmt.Errorf("slack: record change: %w", err)
	}
	dup, err := a.pub.Desk(ctx, m, m.ConversationID)
	if errors.Is(err, core.ErrInvalid) {
		a.log.Warn("change of a reply not valid as an envelope, dropped", "msg_id", m.ID, "err", err)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	a.log.Debug("change of a reply published", "msg_id", m.ID, "of", orig, "conversation", m.ConversationID, "duplicate", dup)
	return true, nil
}
