package slack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// errMalformed marks a payload Slack would never send; HTTP answers 400.
var errMalformed = errors.New("slack: malformed payload")

// eventTTL is how long an Events API event id is remembered as handled, longer
// than Slack's retries take (three over about an hour at most).
const eventTTL = 2 * time.Hour

// envelope is the outer Events API payload, as POSTed to /events or carried
// by a Socket Mode "events_api" request.
type envelope struct {
	Type      string          `json:"type"`
	Challenge string          `json:"challenge"`
	EventID   string          `json:"event_id"`
	Event     json.RawMessage `json:"event"`
}

// parsedEvent is what parseEvents found in a payload.
type parsedEvent struct {
	// challenge is set for url_verification.
	challenge string
	eventID   string
	// message is set for a message event, nil for anything else.
	message *slackevents.MessageEvent
}

// parseEvents reads an Events API payload. A payload that is not one matches
// errMalformed; events the desk does not use come back with message nil.
func parseEvents(raw []byte) (parsedEvent, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return parsedEvent{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	switch env.Type {
	case slackevents.URLVerification:
		if env.Challenge == "" {
			return parsedEvent{}, fmt.Errorf("%w: url_verification without challenge", errMalformed)
		}
		return parsedEvent{challenge: env.Challenge}, nil
	case slackevents.CallbackEvent:
	case "":
		return parsedEvent{}, fmt.Errorf("%w: no type", errMalformed)
	default:
		return parsedEvent{}, nil // app_rate_limited and the like
	}
	if len(env.Event) == 0 || string(env.Event) == "null" {
		return parsedEvent{}, fmt.Errorf("%w: event_callback without event", errMalformed)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(env.Event, &head); err != nil {
		return parsedEvent{}, fmt.Errorf("%w: event: %v", errMalformed, err)
	}
	p := parsedEvent{eventID: env.EventID}
	if head.Type != string(slackevents.Message) {
		return p, nil
	}
	ev := new(slackevents.MessageEvent)
	if err := json.Unmarshal(env.Event, ev); err != nil {
		return parsedEvent{}, fmt.Errorf("%w: message event: %v", errMalformed, err)
	}
	p.message = ev
	return p, nil
}

// handleEvents handles one Events API payload: an agent's message in a
// thread, or their edit or deletion of a reply (message_changed,
// message_deleted); retry is true when Slack says it delivers it again. It
// returns the url_verification challenge, if any.
// An error matching errMalformed is the payload's fault; any other asks Slack
// to deliver it again.
func (a *Adapter) handleEvents(ctx context.Context, raw []byte, retry bool) (challenge string, err error) {
	p, err := parseEvents(raw)
	if err != nil || p.challenge != "" || p.message == nil {
		return p.challenge, err
	}
	if retry && p.eventID != "" {
		var done bool
		if _, err := a.messages.Get(ctx, "evt:"+p.eventID, &done); err == nil {
			a.log.Debug("slack retry of a handled event", "event", p.eventID)
			return "", nil
		}
	}
	var published bool
	switch p.message.SubType {
	case "message_changed":
		published, err = a.agentEdit(ctx, p.eventID, p.message)
	case "message_deleted":
		published, err = a.agentDelete(ctx, p.eventID, p.message)
	default:
		published, err = a.agentMessage(ctx, p.eventID, p.message)
	}
	if err != nil {
		return "", err
	}
	if published && p.eventID != "" {
		if _, err := a.messages.Create(ctx, "evt:"+p.eventID, true, eventTTL); err != nil && !errors.Is(err, store.ErrExists) {
			a.log.Warn("handled event not recorded", "event", p.eventID, "err", err)
		}
	}
	return "", nil
}

// replySubtypes are the message subtypes that are an agent writing: a plain
// message, one with files, one also sent to the channel.
var replySubtypes = map[string]bool{"": true, "file_share": true, "thread_broadcast": true}

// msgRecord is what "slack_messages" keeps of an agent's reply: under
// "ts:<channel>:<ts>" its envelope id, under "env:<id>" where it is in Slack
// and how far it got to the customer.
type msgRecord struct {
	Envelope     string `json:"envelope,omitempty"`
	Channel      string `json:"channel,omitempty"`
	TS           string `json:"ts,omitempty"`
	Thread       string `json:"thread,omitempty"`
	Conversation string `json:"conversation,omitempty"`
	// Delivery is the furthest delivery state of the reply on each customer
	// channel that reported on it (advance): only forward, failed is final.
	Delivery map[string]deliveryState `json:"delivery,omitempty"`
	// Via is the customer channel that last reported a state other than
	// failed: the one that carried the reply.
	Via string `json:"via,omitempty"`
	// EditOf, on the record of an agent's edit, is the envelope id of the
	// reply it changes.
	EditOf string `json:"edit_of,omitempty"`
}

// agentMessage publishes what a human wrote in a conversation's thread as a
// reply for the pipeline, unless it is a note. Other messages (outside the
// desk's threads, by bots) are ignored; edits and deletions are agentEdit's
// and agentDelete's. published reports whether it was a reply.
func (a *Adapter) agentMessage(ctx context.Context, eventID string, ev *slackevents.MessageEvent) (published bool, err error) {
	msg := ev.Message
	if msg == nil {
		msg = &slack.Msg{}
	}
	text := cmp.Or(ev.Text, msg.Text)
	threadTS := cmp.Or(ev.ThreadTimeStamp, msg.ThreadTimestamp)
	ts := cmp.Or(ev.TimeStamp, msg.Timestamp)
	user := cmp.Or(ev.User, msg.User)
	switch {
	case !replySubtypes[ev.SubType]:
		return false, nil
	case threadTS == "" || threadTS == ts || ev.Channel == "" || ts == "":
		return false, nil // not a reply in a thread
	case ev.BotID != "" || msg.BotID != "" || user == "" || user == a.botUserID():
		return false, nil
	}
	convID, ok, err := a.conversationOf(ctx, ev.Channel, threadTS)
	if err != nil || !ok {
		return false, err
	}
	log := a.log.With("conversation", convID)
	a.rememberAgent(ctx, user, ev.Channel, convID)
	if strings.HasPrefix(strings.TrimSpace(text), a.cfg.NotePrefix) {
		log.Debug("internal note, not sent to the customer")
		return false, nil
	}
	files := agentFiles(msg.Files)
	if strings.TrimSpace(text) == "" && len(files) == 0 {
		return false, nil
	}

	conv, err := a.st.Conversation(ctx, convID)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("reply in the thread of a conversation that no longer exists, ignored")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	settings, err := a.convSettings(ctx, convID)
	if err != nil {
		return false, err
	}
	target := cmp.Or(settings.ReplyVia, cmp.Or(conv.LastChannel, conv.Channel))

	id, err := a.envelopeID(ctx, ev.Channel, ts, threadTS, convID)
	if err != nil {
		return false, err
	}
	m := core.NewMessage(core.KindMessage, core.Outbound, Name)
	m.ID = id
	m.From = core.NewIdentity(Name, user)
	m.ConversationID = convID
	m.External = core.External{Message: cmp.Or(eventID, ev.Channel+":"+ts), Thread: threadTS, Chat: ev.Channel}
	m.SentAt = slackTime(ts)
	text = a.resolveMentions(ctx, text)
	m.Meta = map[string]string{}
	// One neutral format: the customer's channel renders it.
	m.Text = ConvertMrkdwn(text)
	m.Meta[event.MetaFormat] = event.FormatMarkdown
	if settings.ReplyVia != "" {
		m.Meta[event.MetaReplyVia] = settings.ReplyVia
	}
	if u := a.user(ctx, user); u.name != "" {
		m.Meta[event.MetaAgentName] = core.Ellipsize(u.name, 200)
		if u.avatar != "" {
			m.Meta[event.MetaAgentAvatar] = u.avatar
		}
	}
	m.Attachments = a.relayFiles(ctx, files)
	if len(m.Meta) == 0 {
		m.Meta = nil
	}
	dup, err := a.pub.Desk(ctx, m, convID)
	if errors.Is(err, core.ErrInvalid) {
		log.Warn("reply not valid as an envelope, dropped", "msg_id", m.ID, "err", err)
		a.later(ctx, "ephemeral", func(ctx context.Context) error {
			a.ephemeral(ctx, ev.Channel, user, threadTS, ":warning: This reply could not be sent to the customer: "+err.Error())
			return nil
		})
		return false, nil
	}
	if err != nil {
		return false, err
	}
	log.Debug("agent reply published", "msg_id", m.ID, "duplicate", dup, "channel", target)
	a.passOver(ctx, convID)
	return true, nil
}

// envelopeID returns the envelope id of the agent's message channel/ts,
// choosing it the first time and recording where the message is, so that a
// redelivered event publishes the same envelope and delivery reports find the
// message.
func (a *Adapter) envelopeID(ctx context.Context, channel, ts, threadTS, conv string) (string, error) {
	var rec msgRecord
	_, err := a.messages.Update(ctx, "ts:"+channel+":"+ts, &rec, messageTTL, func(exists bool) error {
		if exists && rec.Envelope != "" {
			return store.ErrSkip
		}
		rec.Envelope = core.NewID()
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("slack: record reply: %w", err)
	}
	where := msgRecord{Channel: channel, TS: ts, Thread: threadTS, Conversation: conv}
	if _, err := a.messages.Create(ctx, "env:"+rec.Envelope, where, messageTTL); err != nil && !errors.Is(err, store.ErrExists) {
		return "", fmt.Errorf("slack: record reply: %w", err)
	}
	return rec.Envelope, nil
}

// agentTTL is how long the adapter remembers which conversation an agent
// worked on last in a channel, for /omni without a conversation.
const agentTTL = 7 * 24 * time.Hour

// rememberAgent records that user worked on conversation conv in channel.
// Failures are logged: it only spares the agent naming the conversation.
func (a *Adapter) rememberAgent(ctx context.Context, user, channel, conv string) {
	var cur string
	if _, err := a.convs.Update(ctx, "agent:"+user+":"+channel, &cur, agentTTL, func(bool) error {
		cur = conv
		return nil
	}); err != nil {
		a.log.Debug("agent's conversation not remembered", "err", err)
	}
}

// mentionRE is a user mention without a label, as Slack delivers mentions.
var mentionRE = regexp.MustCompile(`<@([UW][A-Z0-9]+)>`)

// maxMentions bounds the users.info lookups of one message.
const maxMentions = 10

// resolveMentions gives each <@U123> its user's name, <@U123|name>, so that
// ConvertMrkdwn writes @name.
func (a *Adapter) resolveMentions(ctx context.Context, text string) string {
	n := 0
	return mentionRE.ReplaceAllStringFunc(text, func(s string) string {
		id := s[2 : len(s)-1]
		if n++; n > maxMentions {
			return s
		}
		if name := a.userName(ctx, id); name != "" {
			return "<@" + id + "|" + strings.NewReplacer("|", "", ">", "").Replace(name) + ">"
		}
		return s
	})
}

// slackTime reads a Slack ts ("1712345678.000100") as a time; zero if it is
// not one.
func slackTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	var s, us int64
	if _, err := fmt.Sscanf(sec, "%d", &s); err != nil || s <= 0 {
		return time.Time{}
	}
	if frac != "" {
		frac = (frac + "000000")[:6]
		_, _ = fmt.Sscanf(frac, "%d", &us)
	}
	return time.Unix(s, us*1000).UTC()
}

// agentFiles are the files of an agent's message that can be relayed.
func agentFiles(files []slack.File) []slack.File {
	var out []slack.File
	for _, f := range files {
		if f.ID != "" && f.URLPrivate != "" && len(out) < core.MaxAttachments {
			out = append(out, f)
		}
	}
	return out
}

// validContentType reports whether Validate accepts ct as an attachment's type.
func validContentType(ct string) bool {
	t, _, err := mime.ParseMediaType(ct)
	return err == nil && strings.Contains(t, "/")
}
