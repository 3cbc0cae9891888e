package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/canned"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/markdown"
	"github.com/omnigate/omnigate/core/store"
)

// Action ids of the suggestions' buttons, and the ids of the Edit modal.
const (
	actionSuggestSend = "omni_suggest_send"
	actionSuggestEdit = "omni_suggest_edit"
	// viewSuggestEdit is the Edit modal's callback id; its text input is
	// blockSuggestText/inputSuggestText.
	viewSuggestEdit  = "omni_suggest_edit"
	blockSuggestText = "omni_suggest_text"
	inputSuggestText = "text"
)

// suggestionRecord is what "slack_messages" keeps under "sugg:<id>" of a
// set of suggestions posted in a thread: id is the suggestions event's, or
// the command's for /omni answer.
type suggestionRecord struct {
	Conversation string `json:"conversation"`
	// ReplyTo is the customer message suggested for ("" for /omni answer).
	ReplyTo string `json:"reply_to,omitempty"`
	// Channel and TS are the suggestions' Slack message, in thread Thread.
	Channel string              `json:"channel,omitempty"`
	TS      string              `json:"ts,omitempty"`
	Thread  string              `json:"thread,omitempty"`
	Items   []canned.Suggestion `json:"items"`
	// Asked marks a canned answer an agent asked for (/omni answer): rank 0.
	Asked bool `json:"asked,omitempty"`
	// Outcome is "" while pending, then outcomeSending (a click is sending
	// one), outcomeUsed or outcomeIgnored.
	Outcome string `json:"outcome,omitempty"`
	// By is the agent who used one.
	By string `json:"by,omitempty"`
}

// Outcomes of a suggestionRecord.
const (
	outcomeSending = "sending"
	outcomeUsed    = "used"
	outcomeIgnored = "ignored"
)

// suggestionKey is the record key of suggestions id.
func suggestionKey(id string) string { return "sugg:" + id }

// suggestions posts the knowledge base's suggestions for a customer message
// (event.Suggestions) in its thread, each with Send and Edit. The thread
// opens with the customer's message: until it has, the event is tried again.
// Suggestions the agent passed over before these are counted as ignored.
func (a *Adapter) suggestions(ctx context.Context, m *core.Message) error {
	items, err := canned.DecodeSuggestions(m.Meta[event.MetaSuggestions])
	if err != nil {
		return adapters.Permanent(fmt.Errorf("slack: suggestions %s: %w", m.ID, err))
	}
	if len(items) == 0 || m.ConversationID == "" {
		return nil
	}
	conv, err := a.st.Conversation(ctx, m.ConversationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if conv.State != store.StateOpen {
		return nil
	}
	th, ok, err := a.threadOf(ctx, conv.ID)
	if err != nil {
		return err
	}
	if !ok {
		return adapters.RetryAfter(fmt.Errorf("slack: suggestions %s: the conversation has no thread yet", m.ID), time.Second)
	}
	rec := suggestionRecord{Conversation: conv.ID, ReplyTo: m.ReplyTo, Items: items}
	if err := a.postSuggestions(ctx, m.ID, th, &rec, conv); err != nil {
		return err
	}
	var r convRecord
	var prev string
	if _, err := a.convs.Update(ctx, conv.ID, &r, 0, func(bool) error {
		prev = r.Suggestions
		if prev == m.ID {
			return store.ErrSkip
		}
		r.Suggestions = m.ID
		return nil
	}); err != nil {
		return fmt.Errorf("slack: suggestions %s: %w", m.ID, err)
	}
	if prev != "" && prev != m.ID {
		a.ignored(ctx, prev)
	}
	return nil
}

// postSuggestions posts rec's items in thread th, unless suggestions id
// were posted already, and records them under suggestionKey(id).
func (a *Adapter) postSuggestions(ctx context.Context, id string, th thread, rec *suggestionRecord, conv *store.Conversation) error {
	var have suggestionRecord
	if _, err := a.messages.Get(ctx, suggestionKey(id), &have); err == nil && have.TS != "" {
		*rec = have
		return nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	vars, err := a.answerVars(ctx, conv)
	if err != nil {
		return err
	}
	// The record exists before the buttons do: an agent can click Send the
	// moment the post shows, before its ts is known here.
	rec.Channel, rec.Thread = th.channel, th.ts
	if _, err := a.messages.Create(ctx, suggestionKey(id), rec, messageTTL); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("slack: record suggestions %s: %w", id, err)
	}
	blocks, text := suggestionBlocks(id, rec, vars)
	ts, err := a.post(ctx, th.channel, slackThread(th), slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl())
	if err != nil {
		return fmt.Errorf("slack: post suggestions %s: %w", id, err)
	}
	rec.TS = ts
	var cur suggestionRecord
	if _, err := a.messages.Update(ctx, suggestionKey(id), &cur, messageTTL, func(exists bool) error {
		if !exists {
			return store.ErrNotFound
		}
		cur.TS = ts
		return nil
	}); err != nil {
		return fmt.Errorf("slack: record suggestions %s: %w", id, err)
	}
	return nil
}

// suggestionBlocks shows suggestions: each one's title and text (variables
// filled where vars can, else left as {{name}}), with Send and Edit.
func suggestionBlocks(id string, rec *suggestionRecord, vars map[string]string) ([]slack.Block, string) {
	head := ":bulb: *Suggested replies* from the knowledge base: *Send* replies to the customer as you, *Edit* changes it first."
	text := "Suggested replies"
	if rec.Asked {
		head = ":bookmark: *Canned answer*: *Send* replies to the customer as you, *Edit* changes it first."
		text = "Canned answer"
	}
	blocks := []slack.Block{slack.NewContextBlock("", mrkdwn(head))}
	for i, s := range rec.Items {
		body, err := canned.Fill(s.Text, vars)
		title := cmp.Or(s.Title, s.Name, "Suggestion")
		if s.Learned {
			title = "An agent's answer to a similar question"
		}
		line := "*" + strconv.Itoa(i+1) + ". " + escapeMrkdwn(core.Ellipsize(title, 150)) + "*"
		if s.Name != "" {
			line += "  `" + escapeMrkdwn(s.Name) + "`"
		}
		line += "\n" + escapeMrkdwn(markdown.WhatsApp(body))
		if err != nil {
			line += "\n:warning: _" + escapeMrkdwn(err.Error()) + ": Edit it before sending._"
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(core.Ellipsize(line, 3000)), nil, nil))
		value := id + ":" + strconv.Itoa(i)
		blocks = append(blocks, slack.NewActionBlock("omni_suggest_"+strconv.Itoa(i),
			slack.NewButtonBlockElement(actionSuggestSend, value, plain("Send")).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(actionSuggestEdit, value, plain("Edit")),
		))
		text += "\n" + strconv.Itoa(i+1) + ". " + core.Ellipsize(title, 80)
	}
	return blocks, text
}

// answerVars are the values of the canned answers' variables for conv: the
// customer's name (the contact's, else the one their channel gave), the
// latest ticket and the wait routing last announced.
func (a *Adapter) answerVars(ctx context.Context, conv *store.Conversation) (map[string]string, error) {
	contact, err := a.contactOf(ctx, conv)
	if err != nil {
		return nil, err
	}
	settings, err := a.convSettings(ctx, conv.ID)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{canned.ContactName: settings.Name, canned.QueueExpectedWait: settings.ExpectedWait}
	if contact != nil && strings.TrimSpace(contact.Name) != "" {
		vars[canned.ContactName] = contact.Name
	}
	if ids := slices.Sorted(maps.Keys(settings.TicketStatus)); len(ids) > 0 {
		vars[canned.TicketNumber] = ids[len(ids)-1]
	}
	return vars, nil
}

// suggestionClick handles Send and Edit on a suggestion (value "<id>:<n>").
func (a *Adapter) suggestionClick(ctx context.Context, cb *slack.InteractionCallback, ba *slack.BlockAction) (result, error) {
	id, n, rec, ok, err := a.suggestionOf(ctx, ba.Value)
	if err != nil || !ok {
		return result{say: "These suggestions are too old to use; write the reply in the thread."}, err
	}
	act := action{user: cb.User.ID, channel: rec.Channel, conv: rec.Conversation, dedup: cmp.Or(cb.TriggerID, ba.ActionTs, core.NewID()) + ":" + ba.ActionID}
	a.rememberAgent(ctx, act.user, act.channel, act.conv)
	if ba.ActionID == actionSuggestEdit {
		return a.openEdit(ctx, cb.TriggerID, id, n, rec)
	}
	return a.sendSuggestion(ctx, act, id, n, rec.Items[n].Text, false)
}

// suggestionOf reads the record of a button's value "<id>:<n>".
func (a *Adapter) suggestionOf(ctx context.Context, value string) (id string, n int, rec suggestionRecord, ok bool, err error) {
	i := strings.LastIndexByte(value, ':')
	if i <= 0 {
		return "", 0, rec, false, fmt.Errorf("%w: suggestion value %q", errMalformed, value)
	}
	id = value[:i]
	n, nerr := strconv.Atoi(value[i+1:])
	if nerr != nil {
		return "", 0, rec, false, fmt.Errorf("%w: suggestion value %q", errMalformed, value)
	}
	if _, err := a.messages.Get(ctx, suggestionKey(id), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return id, n, rec, false, nil
		}
		return id, n, rec, false, err
	}
	if n < 0 || n >= len(rec.Items) {
		return id, n, rec, false, fmt.Errorf("%w: suggestion %d of %d", errMalformed, n, len(rec.Items))
	}
	return id, n, rec, true, nil
}

// sendSuggestion sends suggestion n of set id (its text, or what the agent
// made of it: edited) to the customer as act.user's reply, the way a reply
// in the thread goes: posted in the thread, where the delivery reactions
// show, and published for the pipeline. Variables are filled first; one
// that cannot be is told the agent, and nothing is sent. One suggestion of
// a set is sent at most once.
func (a *Adapter) sendSuggestion(ctx context.Context, act action, id string, n int, text string, edited bool) (result, error) {
	conv, err := a.st.Conversation(ctx, act.conv)
	if errors.Is(err, store.ErrNotFound) {
		return result{say: "This conversation no longer exists."}, nil
	}
	if err != nil {
		return result{}, err
	}
	vars, err := a.answerVars(ctx, conv)
	if err != nil {
		return result{}, err
	}
	body, ferr := canned.Fill(text, vars)
	if ferr != nil {
		return result{say: ":warning: Not sent: " + escapeMrkdwn(ferr.Error()) + ". Click *Edit* and write it in."}, nil
	}
	var rec suggestionRecord
	var busy string
	if _, err := a.messages.Update(ctx, suggestionKey(id), &rec, messageTTL, func(exists bool) error {
		if !exists {
			return store.ErrNotFound
		}
		if rec.Outcome == outcomeSending || rec.Outcome == outcomeUsed {
			busy = rec.By
			return store.ErrSkip
		}
		rec.Outcome, rec.By = outcomeSending, act.user
		return nil
	}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return result{say: "These suggestions are too old to use; write the reply in the thread."}, nil
		}
		return result{}, err
	}
	if busy != "" {
		return result{say: "<@" + busy + "> sent one of these already."}, nil
	}
	th := thread{channel: rec.Channel, ts: rec.Thread}
	item := rec.Items[n]
	if err := a.replyAsAgent(ctx, act, th, conv, body, item, edited); err != nil {
		a.setOutcome(ctx, id, "", "")
		return result{}, err
	}
	a.setOutcome(ctx, id, outcomeUsed, act.user)
	rank := n + 1
	if rec.Asked {
		rank = 0
	}
	meta := map[string]string{event.MetaArticle: item.Article, event.MetaRank: strconv.Itoa(rank), event.MetaDesk: Name}
	if edited {
		meta[event.MetaEdited] = "true"
	}
	a.publishOutcome(ctx, event.SuggestionUsed, act.agent(), conv, rec.ReplyTo, id, meta)
	return result{after: func(ctx context.Context) error {
		blocks := []slack.Block{slack.NewContextBlock("", mrkdwn(":white_check_mark: <@"+act.user+"> sent "+escapeMrkdwn(cmp.Or(item.Title, item.Name, "suggestion "+strconv.Itoa(n+1)))+"."))}
		ts := rec.TS
		if ts == "" { // clicked before postSuggestions recorded its ts
			var now suggestionRecord
			if _, err := a.messages.Get(ctx, suggestionKey(id), &now); err != nil || now.TS == "" {
				return err
			}
			ts = now.TS
		}
		return a.update(ctx, rec.Channel, ts, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText("Suggested reply sent", false))
	}}, nil
}

// replyAsAgent posts text in thread th as what act.user sent, then
// publishes it as their reply for the pipeline, as agentMessage does with a
// reply typed in the thread.
func (a *Adapter) replyAsAgent(ctx context.Context, act action, th thread, conv *store.Conversation, text string, item canned.Suggestion, edited bool) error {
	settings, err := a.convSettings(ctx, conv.ID)
	if err != nil {
		return err
	}
	how := "sent a suggested reply"
	switch {
	case item.Name != "" && edited:
		how = "sent the canned answer `" + escapeMrkdwn(item.Name) + "`, edited"
	case item.Name != "":
		how = "sent the canned answer `" + escapeMrkdwn(item.Name) + "`"
	case edited:
		how = "sent a suggested reply, edited"
	}
	shown := ":outbox_tray: <@" + act.user + "> " + how + ":\n" + escapeMrkdwn(core.Ellipsize(markdown.WhatsApp(text), maxPartRunes))
	ts, err := a.post(ctx, th.channel, slackThread(th), slackText(shown))
	if err != nil {
		return fmt.Errorf("slack: send suggestion: %w", err)
	}
	id, err := a.envelopeID(ctx, th.channel, ts, th.ts, conv.ID)
	if err != nil {
		return err
	}
	m := core.NewMessage(core.KindMessage, core.Outbound, Name)
	m.ID = id
	m.From = act.agent()
	m.ConversationID = conv.ID
	m.External = core.External{Message: "suggestion:" + act.dedup, Thread: th.ts, Chat: th.channel}
	m.Text = text
	m.Meta = map[string]string{event.MetaFormat: event.FormatMarkdown, event.MetaArticle: item.Article}
	if settings.ReplyVia != "" {
		m.Meta[event.MetaReplyVia] = settings.ReplyVia
	}
	if name := a.userName(ctx, act.user); name != "" {
		m.Meta[event.MetaAgentName] = core.Ellipsize(name, 200)
	}
	if _, err := a.pub.Desk(ctx, m, conv.ID); err != nil {
		return fmt.Errorf("slack: send suggestion: %w", err)
	}
	a.log.Debug("suggestion sent", "msg_id", m.ID, "conversation", conv.ID, "article", item.Article)
	return nil
}

// setOutcome records what became of suggestions id. Failures are logged:
// the outcome only keeps a second click from sending again.
func (a *Adapter) setOutcome(ctx context.Context, id, outcome, by string) {
	var rec suggestionRecord
	if _, err := a.messages.Update(ctx, suggestionKey(id), &rec, messageTTL, func(exists bool) error {
		if !exists {
			return store.ErrSkip
		}
		rec.Outcome, rec.By = outcome, by
		return nil
	}); err != nil {
		a.log.Warn("suggestion outcome not recorded", "err", err)
	}
}

// ignored counts suggestions id as passed over (suggestion.ignored), unless
// one of them was used or they were counted already.
func (a *Adapter) ignored(ctx context.Context, id string) {
	var rec suggestionRecord
	var done bool
	if _, err := a.messages.Update(ctx, suggestionKey(id), &rec, messageTTL, func(exists bool) error {
		if !exists || rec.Outcome != "" || rec.Asked {
			return store.ErrSkip
		}
		rec.Outcome, done = outcomeIgnored, true
		return nil
	}); err != nil {
		a.log.Warn("ignored suggestions not recorded", "err", err)
		return
	}
	if !done {
		return
	}
	articles := make([]string, len(rec.Items))
	for i, s := range rec.Items {
		articles[i] = s.Article
	}
	conv := &store.Conversation{ID: rec.Conversation}
	if c, err := a.st.Conversation(ctx, rec.Conversation); err == nil {
		conv = c
	}
	a.publishOutcome(ctx, event.SuggestionIgnored, core.NewIdentity(Name, a.botUserID()), conv, rec.ReplyTo, id,
		map[string]string{event.MetaArticle: strings.Join(articles, ","), event.MetaDesk: Name})
}

// passOver counts the pending suggestions of conversation id as ignored:
// an agent answered in their own words.
func (a *Adapter) passOver(ctx context.Context, id string) {
	settings, err := a.convSettings(ctx, id)
	if err != nil || settings.Suggestions == "" {
		return
	}
	a.ignored(ctx, settings.Suggestions)
}

// publishOutcome publishes suggestion.used or suggestion.ignored for the
// analytics; failures are logged, as a count is not worth failing a reply.
func (a *Adapter) publishOutcome(ctx context.Context, typ string, from core.Identity, conv *store.Conversation, replyTo, id string, meta map[string]string) {
	ev := core.NewMessage(core.KindEvent, core.Inbound, Name)
	ev.Type = typ
	ev.From = from
	ev.ConversationID, ev.ContactID = conv.ID, conv.ContactID
	ev.ReplyTo = replyTo
	ev.External.Message = typ + ":" + id
	ev.Meta = meta
	if err := a.pub.Event(ctx, ev); err != nil {
		a.log.Warn("suggestion outcome not published", "type", typ, "err", err)
	}
}

// openEdit opens the Edit modal of suggestion n of set id, its text filled
// in as far as the variables can be.
func (a *Adapter) openEdit(ctx context.Context, triggerID, id string, n int, rec suggestionRecord) (result, error) {
	if triggerID == "" {
		return result{}, fmt.Errorf("%w: Edit without trigger_id", errMalformed)
	}
	text := rec.Items[n].Text
	if conv, err := a.st.Conversation(ctx, rec.Conversation); err == nil {
		if vars, err := a.answerVars(ctx, conv); err == nil {
			if filled, err := canned.Fill(text, vars); err == nil {
				text = filled
			}
		}
	}
	input := slack.NewPlainTextInputBlockElement(plain("The reply"), inputSuggestText)
	input.Multiline = true
	input.InitialValue = core.Truncate(text, 3000)
	input.MaxLength = 3000
	view := slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      viewSuggestEdit,
		Title:           plain("Edit the reply"),
		Submit:          plain("Send"),
		Close:           plain("Cancel"),
		PrivateMetadata: id + ":" + strconv.Itoa(n),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock(blockSuggestText, plain("Reply to the customer (Markdown)"), plain("{{contact.name}}, {{ticket.number}} and {{queue.expected_wait}} are filled in when sent."), input),
		}},
	}
	if _, err := a.api.OpenViewContext(ctx, triggerID, view); err != nil {
		return result{}, apiError("views.open", err)
	}
	return result{}, nil
}

// editSubmitted sends what the agent wrote in the Edit modal.
func (a *Adapter) editSubmitted(ctx context.Context, cb *slack.InteractionCallback) (followUp, error) {
	id, n, rec, ok, err := a.suggestionOf(ctx, cb.View.PrivateMetadata)
	if err != nil {
		return nil, err
	}
	user := cb.User.ID
	if !ok {
		return nil, nil
	}
	text := strings.TrimSpace(cb.View.State.Values[blockSuggestText][inputSuggestText].Value)
	if text == "" {
		return nil, nil
	}
	act := action{user: user, channel: rec.Channel, conv: rec.Conversation, dedup: cmp.Or(cb.View.ID, cb.TriggerID, core.NewID()) + ":edit"}
	res, err := a.sendSuggestion(ctx, act, id, n, text, text != rec.Items[n].Text)
	if err != nil {
		return nil, err
	}
	fs := []followUp{res.after}
	if res.say != "" {
		say := res.say
		fs = append(fs, func(ctx context.Context) error {
			a.ephemeral(ctx, rec.Channel, user, rec.Thread, say)
			return nil
		})
	}
	return joinFollowUps(fs), nil
}

// answer shows canned answer name, its variables filled, in the thread of
// act's conversation, with Send and Edit (/omni answer <name>). An unknown
// name or a variable without a value is told the agent.
func (a *Adapter) answer(ctx context.Context, act action, name string) (result, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	var ans canned.Answer
	if _, err := a.answers.Get(ctx, name, &ans); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return result{}, err
		}
		names, err := a.answers.Keys(ctx, "")
		if err != nil {
			return result{}, err
		}
		if len(names) == 0 {
			return result{say: "There are no canned answers: the knowledge base (insight.knowledge_base) has no article with a `name`."}, nil
		}
		slices.Sort(names)
		return result{say: fmt.Sprintf("There is no canned answer `%s`. The canned answers are: %s.", escapeMrkdwn(name), escapeMrkdwn(strings.Join(names[:min(len(names), 30)], ", ")))}, nil
	}
	conv, err := a.st.Conversation(ctx, act.conv)
	if err != nil {
		return result{}, fmt.Errorf("slack: answer: %w", err)
	}
	vars, err := a.answerVars(ctx, conv)
	if err != nil {
		return result{}, err
	}
	if _, err := canned.Fill(ans.Text, vars); err != nil {
		return result{say: ":warning: The canned answer `" + escapeMrkdwn(name) + "` cannot be used here: " + escapeMrkdwn(err.Error()) + "."}, nil
	}
	th, ok, err := a.threadOf(ctx, conv.ID)
	if err != nil || !ok {
		return result{say: "This conversation has no thread yet."}, err
	}
	rec := suggestionRecord{Conversation: conv.ID, Asked: true, Items: []canned.Suggestion{{Article: ans.Article, Title: ans.Title, Name: ans.Name, Text: ans.Text}}}
	if err := a.postSuggestions(ctx, act.dedup, th, &rec, conv); err != nil {
		return result{}, err
	}
	return result{say: "The canned answer `" + escapeMrkdwn(name) + "` is in the thread" + a.threadLink(ctx, conv.ID) + ", filled in: *Send* it or *Edit* it."}, nil
}
