package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Send shows in Slack what the pipeline published on omni.desk.slack:
//
//   - a customer's message goes into its conversation's thread, opening the
//     thread with the card first (in the channel of the conversation's queue),
//     posted under the customer's name and channel, its attachments uploaded
//     into the thread (or, when they cannot be, shown as links with a note
//     why); a message that reopened the conversation also updates the card;
//   - a reply written on another desk is shown in the thread;
//   - a "contact.merged" event is noted in the threads it concerns and their
//     cards updated;
//   - "suggestions" (insight's suggested replies for a customer message) are
//     posted in the thread with Send and Edit.
//
// Anything else is acknowledged and ignored. The Receipt's ProviderID is
// "<channel>:<ts>" of the (first) Slack message. A 429 becomes RetryAfter, a
// channel the bot cannot post to Permanent.
func (a *Adapter) Send(ctx context.Context, m *core.Message) (adapters.Receipt, error) {
	if m.Kind == core.KindEvent {
		switch m.Type {
		case event.ContactMerged:
			return adapters.Receipt{}, a.merged(ctx, m)
		case event.TicketUpdated:
			return adapters.Receipt{}, a.ticketUpdated(ctx, m)
		case event.ConversationRouted:
			return adapters.Receipt{}, a.routed(ctx, m)
		case event.ConversationAssigned, event.SLABreached:
			return adapters.Receipt{}, a.eventNote(ctx, m, routingNote(m), m.Type != event.SLABreached)
		case event.ContactLinked:
			note := ":link: The customer also is " + escapeMrkdwn(m.Meta[event.MetaIdentity]) + "."
			if u, ok := slackUser(m.From); ok {
				note = ":link: <@" + u + "> linked " + escapeMrkdwn(m.Meta[event.MetaIdentity]) + " to this customer."
			}
			return adapters.Receipt{}, a.eventNote(ctx, m, note, true)
		case event.CommandRejected:
			return adapters.Receipt{}, a.eventNote(ctx, m, rejectedNote(m), true)
		case event.Suggestions:
			return adapters.Receipt{}, a.suggestions(ctx, m)
		}
		return adapters.Receipt{}, nil
	}
	if m.ConversationID == "" {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("slack: desk message %s has no conversation", m.ID))
	}
	conv, err := a.st.Conversation(ctx, m.ConversationID)
	if errors.Is(err, store.ErrNotFound) {
		return adapters.Receipt{}, adapters.Permanent(fmt.Errorf("slack: desk message %s: %w", m.ID, err))
	}
	if err != nil {
		return adapters.Receipt{}, err
	}
	contact, err := a.contactOf(ctx, conv)
	if err != nil {
		return adapters.Receipt{}, err
	}
	th, err := a.ensureThread(ctx, conv, contact, senderName(m))
	if err != nil {
		return adapters.Receipt{}, fmt.Errorf("slack: send %s: %w", m.ID, err)
	}
	var parts []part
	if m.Direction == core.Inbound && m.Meta[event.MetaEditOf] != "" {
		if rc, done, err := a.customerEdit(ctx, m, contact, th); done || err != nil {
			return rc, err
		}
	}
	if m.Direction == core.Inbound {
		if m.Meta[event.MetaConversationOpened] == "true" && conv.Opens > 1 {
			parts = append(parts, part{key: "reopened", text: ":arrows_counterclockwise: The customer wrote again: conversation reopened."})
			a.later(ctx, "card not updated", func(ctx context.Context) error { return a.refreshCard(ctx, conv.ID) })
		}
		parts = append(parts, customerParts(m, contact)...)
	} else {
		if w := m.Meta[event.MetaExpectedWait]; w != "" {
			a.keepExpectedWait(ctx, conv.ID, w)
		}
		parts = append(parts, echoParts(m)...)
	}
	ts, err := a.postParts(ctx, m.ID, th, parts)
	if err != nil {
		return adapters.Receipt{}, fmt.Errorf("slack: send %s: %w", m.ID, err)
	}
	if m.Direction == core.Inbound && customerEdits[m.Channel] && m.External.Message != "" && ts != "" {
		// Where the customer's edit will find it.
		if _, err := a.messages.Create(ctx, externalKey(m.Channel, m.External.Message), ts, messageTTL); err != nil && !errors.Is(err, store.ErrExists) {
			a.log.Warn("posted, but not recorded; the customer's edit of it will be posted as a new message", "msg_id", m.ID, "err", err)
		}
	}
	a.log.Debug("posted", "msg_id", m.ID, "conversation", conv.ID, "parts", len(parts))
	return adapters.Receipt{ProviderID: th.channel + ":" + cmp.Or(ts, th.ts)}, nil
}

// keepExpectedWait remembers the wait an acknowledgement announced, for the
// canned answers' {{queue.expected_wait}}. Failures are logged.
func (a *Adapter) keepExpectedWait(ctx context.Context, conv, wait string) {
	var r convRecord
	if _, err := a.convs.Update(ctx, conv, &r, 0, func(bool) error {
		if r.ExpectedWait == wait {
			return store.ErrSkip
		}
		r.ExpectedWait = wait
		return nil
	}); err != nil {
		a.log.Warn("expected wait not kept", "conversation", conv, "err", err)
	}
}

// customerEdits are the channels whose customers can edit a message they
// sent (meta edit_of on the edit names the original's External.Message).
var customerEdits = map[string]bool{"telegram": true}

// externalKey names the record of the Slack ts of the customer message with
// provider id ext on channel.
func externalKey(channel, ext string) string { return "ext:" + channel + ":" + ext }

// customerEdit shows a customer's edit (m, meta edit_of) as an edit: the
// Slack message of the original gets the new text, marked edited. done is
// false when the original is not known (posted before, or too long ago): m
// is then posted as a new message, marked as an edit.
func (a *Adapter) customerEdit(ctx context.Context, m *core.Message, contact *store.Contact, th thread) (adapters.Receipt, bool, error) {
	var ts string
	_, err := a.messages.Get(ctx, externalKey(m.Channel, m.Meta[event.MetaEditOf]), &ts)
	if errors.Is(err, store.ErrNotFound) {
		m.Text = "_(edited a message)_ " + m.Text
		return adapters.Receipt{}, false, nil
	}
	if err != nil {
		return adapters.Receipt{}, false, err
	}
	parts := customerParts(m, contact)
	text := parts[0].text + " _(edited)_"
	if err := a.update(ctx, th.channel, ts, slack.MsgOptionText(text, false)); err != nil {
		return adapters.Receipt{}, false, fmt.Errorf("slack: show the customer's edit %s: %w", m.ID, err)
	}
	a.log.Debug("customer's edit shown", "msg_id", m.ID, "conversation", m.ConversationID)
	return adapters.Receipt{ProviderID: th.channel + ":" + ts}, true, nil
}

// part is one Slack message a desk message is posted as, in its thread.
type part struct {
	// key names the part among those of its message, for idempotency.
	key  string
	text string
	// file, instead of text, is a customer's attachment, uploaded into the
	// thread (postFile).
	file *core.Attachment
	// username and icon post it under the customer's name; empty posts it as
	// the bot.
	username, icon string
}

// postParts posts parts in thread th and returns the ts of the first
// message posted ("" when there are only uploads). When there are several,
// or an upload, each one posted is recorded, so that a retry after a later
// one failed does not post it again.
func (a *Adapter) postParts(ctx context.Context, id string, th thread, parts []part) (first string, err error) {
	track := len(parts) > 1
	for _, p := range parts {
		track = track || p.file != nil
	}
	for _, p := range parts {
		key := "part:" + id + ":" + p.key
		if track {
			var ts string
			_, err := a.messages.Get(ctx, key, &ts)
			if err == nil {
				first = cmp.Or(first, postedTS(ts))
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return "", err
			}
		}
		var ts string
		if p.file != nil {
			ts, err = a.postFile(ctx, th, p)
		} else {
			opts := []slack.MsgOption{
				slack.MsgOptionTS(th.ts),
				slack.MsgOptionText(p.text, false),
				slack.MsgOptionDisableLinkUnfurl(),
				slack.MsgOptionDisableMediaUnfurl(),
			}
			if p.username != "" {
				opts = append(opts, slack.MsgOptionUsername(p.username), slack.MsgOptionIconEmoji(p.icon))
			}
			ts, err = a.post(ctx, th.channel, opts...)
		}
		if err != nil {
			return "", err
		}
		if track {
			if _, err := a.messages.Create(ctx, key, ts, messageTTL); err != nil && !errors.Is(err, store.ErrExists) {
				a.log.Warn("posted, but not recorded; a retry may post it again", "msg_id", id, "err", err)
			}
		}
		first = cmp.Or(first, postedTS(ts))
	}
	return first, nil
}

// postedTS is the ts of what a part was recorded as, "" for an upload
// ("file:<id>").
func postedTS(rec string) string {
	if strings.HasPrefix(rec, "file:") {
		return ""
	}
	return rec
}

// customerParts are the Slack messages of a customer's message: its text in
// pieces, then each attachment (uploaded into the thread, or a link), under
// the customer's name and channel.
func customerParts(m *core.Message, contact *store.Contact) []part {
	username := core.Ellipsize(customerName(contact, senderName(m), m.From)+" ("+channelLabel(m.Channel)+")", 80)
	icon := channelIcon(m.Channel)
	var parts []part
	for i, t := range splitText(escapeMrkdwn(m.Text), maxPartRunes) {
		parts = append(parts, part{key: "text-" + strconv.Itoa(i), text: t, username: username, icon: icon})
	}
	for i := range m.Attachments {
		parts = append(parts, part{key: "file-" + strconv.Itoa(i), file: &m.Attachments[i], username: username, icon: icon})
	}
	if len(parts) == 0 {
		parts = append(parts, part{key: "empty", text: "_(a message without text)_", username: username, icon: icon})
	}
	return parts
}

// attachmentLines shows a customer's attachments, one link per line.
func attachmentLines(atts []core.Attachment) string {
	var lines []string
	for _, att := range atts {
		name := att.Name
		if name == "" {
			name = "attachment"
		}
		var desc []string
		if att.ContentType != "" {
			desc = append(desc, escapeMrkdwn(att.ContentType))
		}
		if att.Size > 0 {
			desc = append(desc, humanSize(att.Size))
		}
		line := ":paperclip: "
		if strings.HasPrefix(att.URL, "https://") || strings.HasPrefix(att.URL, "http://") {
			line += "<" + strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(att.URL) + "|" + escapeMrkdwn(strings.ReplaceAll(name, "|", "/")) + ">"
		} else {
			line += escapeMrkdwn(name)
			if att.Key != "" {
				desc = append(desc, "stored as `"+escapeMrkdwn(att.Key)+"`")
			}
		}
		if len(desc) > 0 {
			line += " (" + strings.Join(desc, ", ") + ")"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// humanSize writes n bytes for people.
func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// echoParts shows a reply written on another desk.
func echoParts(m *core.Message) []part {
	head := ":leftwards_arrow_with_hook: _Reply via " + channelLabel(m.Channel)
	if d := m.Meta[event.MetaDesk]; d != "" {
		head += ", written on " + escapeMrkdwn(d)
	}
	head += "_"
	var parts []part
	for i, t := range splitText(escapeMrkdwn(m.Text), maxPartRunes-len(head)) {
		if i == 0 {
			t = head + "\n" + t
		}
		parts = append(parts, part{key: "echo-" + strconv.Itoa(i), text: t})
	}
	if files := attachmentLines(m.Attachments); files != "" {
		parts = append(parts, part{key: "files", text: files})
	}
	if len(parts) == 0 {
		parts = append(parts, part{key: "echo", text: head})
	}
	return parts
}

// merged notes a contact merge in the threads it concerns and updates their
// cards: the surviving conversation's, and the one closed into it. Only
// reading the store can fail it; Slack's failures are logged, so that a retry
// does not repeat the notes.
func (a *Adapter) merged(ctx context.Context, m *core.Message) error {
	reason := m.Meta[event.MetaReason]
	survivor := m.Meta[event.MetaConversation]
	if survivor == "" {
		survivor = m.ConversationID
	}
	var link string
	if survivor != "" {
		conv, err := a.st.Conversation(ctx, survivor)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if th, ok, err := a.threadOf(ctx, conv.ID); err != nil {
				return err
			} else if ok {
				a.note(ctx, th, ":link: Another contact of this customer was merged into this one (matched by "+escapeMrkdwn(reasonLabel(reason))+").")
				link = a.permalink(ctx, th.channel, th.ts)
				if err := a.refreshCard(ctx, survivor); err != nil {
					a.log.Warn("card not updated", "conversation", survivor, "err", err)
				}
			}
		}
	}
	if closed := m.Meta[event.MetaClosedConversation]; closed != "" {
		conv, err := a.st.Conversation(ctx, closed)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if th, ok, err := a.threadOf(ctx, conv.ID); err != nil {
				return err
			} else if ok {
				text := ":link: This customer's contacts were merged; this conversation continues in the other one."
				if link != "" {
					text = ":link: This customer's contacts were merged; this conversation continues <" + link + "|here>."
				}
				a.note(ctx, th, text)
				if err := a.refreshCard(ctx, closed); err != nil {
					a.log.Warn("card not updated", "conversation", closed, "err", err)
				}
			}
		}
	}
	return nil
}

// reasonLabel says in words what proved two contacts one.
func reasonLabel(reason string) string {
	switch reason {
	case "phone":
		return "phone number"
	case event.MetaVerifiedEmail:
		return "verified email"
	case event.MetaVerifiedPhone:
		return "verified phone"
	case event.MetaVerifiedUser:
		return "signed-in account"
	case "thread":
		return "email thread"
	case "agent":
		return "an agent's link"
	case "":
		return "an identity"
	}
	return reason
}

// recordTicket keeps, for the card, the ticket and status a ticket event
// reports about its conversation.
func (a *Adapter) recordTicket(ctx context.Context, m *core.Message) error {
	id, st := m.Meta[event.MetaTicket], m.Meta[event.MetaStatus]
	if m.ConversationID == "" || id == "" {
		return nil
	}
	var r convRecord
	if _, err := a.convs.Update(ctx, m.ConversationID, &r, 0, func(bool) error {
		if cur, ok := r.TicketStatus[id]; ok && (st == "" || cur == st) {
			return store.ErrSkip
		}
		if r.TicketStatus == nil {
			r.TicketStatus = map[string]string{}
		}
		r.TicketStatus[id] = cmp.Or(st, r.TicketStatus[id])
		return nil
	}); err != nil {
		return fmt.Errorf("slack: ticket %s: %w", id, err)
	}
	return nil
}

// ticketUpdated keeps the ticket's status for the card, refreshes the card and
// notes the change in the thread.
func (a *Adapter) ticketUpdated(ctx context.Context, m *core.Message) error {
	id, st := m.Meta[event.MetaTicket], m.Meta[event.MetaStatus]
	if m.ConversationID == "" || id == "" {
		return nil
	}
	if err := a.recordTicket(ctx, m); err != nil {
		return err
	}
	note := ":ticket: Ticket " + escapeMrkdwn(id)
	if m.Text != "" {
		note += ": " + escapeMrkdwn(core.Ellipsize(m.Text, 500))
	} else if st != "" {
		note += " is now " + escapeMrkdwn(st)
	}
	return a.eventNote(ctx, m, note, true)
}

// rejectedNote says in the thread why a command was not executed.
func rejectedNote(m *core.Message) string {
	what := map[string]string{
		event.ConversationClose: "close", event.ConversationReopen: "reopen", event.ContactLink: "link",
		event.ConversationClaim: "claim", event.ConversationTransfer: "transfer",
	}[m.Meta[event.MetaCommand]]
	note := ":warning: Not done"
	if what != "" {
		note = ":warning: Could not " + what + " this conversation"
	}
	if u, ok := slackUser(m.From); ok {
		note += " for <@" + u + ">"
	}
	if r := strings.TrimSpace(m.Meta[event.MetaReason]); r != "" {
		note += ": " + escapeMrkdwn(core.Ellipsize(r, 500))
	}
	return note + "."
}

// routingNote says in the thread what routing decided or noticed.
func routingNote(m *core.Message) string {
	md := m.Meta
	switch m.Type {
	case event.ConversationRouted:
		note := ":twisted_rightwards_arrows: Routed to *" + escapeMrkdwn(md["queue"]) + "*"
		if p := md["priority"]; p != "" {
			note += ", priority " + escapeMrkdwn(p)
		}
		if r := md["rule"]; r != "" {
			note += " (rule " + escapeMrkdwn(r) + ")"
		}
		if in := md[event.MetaIntent]; in != "" {
			note += ", intent " + escapeMrkdwn(in)
			if c := md[event.MetaIntentConfidence]; c != "" {
				note += " (" + escapeMrkdwn(c) + ")"
			}
		}
		return note + "."
	case event.SLABreached:
		note := ":rotating_light: SLA breached"
		if sla := md["sla"]; sla != "" {
			note += ": " + escapeMrkdwn(sla)
		}
		if w := md["waited"]; w != "" {
			note += ", the customer has waited " + escapeMrkdwn(w)
		}
		// The mention is configured by the operator to ping a group: kept as is.
		if mention := md["mention"]; strings.HasPrefix(mention, "<") && strings.HasSuffix(mention, ">") {
			note += " " + mention
		}
		return note + "."
	}
	return assignedNote(m)
}

// routed follows routing's decision: when the conversation's queue has another
// channel than its thread (the first thread can open before routing decided),
// the thread moves there, as a Transfer does; otherwise the thread is told.
func (a *Adapter) routed(ctx context.Context, m *core.Message) error {
	if m.ConversationID == "" {
		return nil
	}
	conv, err := a.st.Conversation(ctx, m.ConversationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	th, ok, err := a.threadOf(ctx, conv.ID)
	if err != nil {
		return err
	}
	if ok && a.channelOf(conv.Queue) != th.channel {
		who := "Routing"
		if u, ok := slackUser(core.Identity(m.Meta[event.MetaAgent])); ok && m.Meta[event.MetaReason] == event.ReasonTransfer {
			who = "<@" + u + ">"
		}
		return a.moveThread(ctx, conv.ID, who, a.queueOf(m.Meta[event.MetaPreviousQueue]), a.queueOf(conv.Queue))
	}
	if err := a.keepIntent(ctx, m); err != nil {
		return err
	}
	return a.eventNote(ctx, m, routingNote(m), true)
}
