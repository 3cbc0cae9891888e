package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// maxMergeHops bounds how many MergedInto links a reply follows.
const maxMergeHops = 8

// handleDesk handles what a desk or a source published: a reply to the customer
// or, from a desk, a command.
func (p *Pipeline) handleDesk(ctx context.Context, m *core.Message, redelivered bool) error {
	ctx, span := tracer.Start(ctx, "pipeline outbound")
	defer span.End()
	pr, err := p.progress(ctx, m.ID, redelivered)
	if err != nil || pr.rec.Done {
		return err
	}
	switch {
	case m.Kind == core.KindEvent && m.Type == event.ConversationTag:
		// Desks (an agent's /omni tag) and routing (a rule's tags) tag.
		return p.tagConversation(ctx, m, pr)
	case m.Kind == core.KindEvent && p.isDesk(m.Channel):
		switch m.Type {
		case event.ConversationClose:
			return p.closeConversation(ctx, m, pr)
		case event.ConversationReopen:
			return p.reopenConversation(ctx, m, pr)
		case event.ContactLink:
			return p.agentLink(ctx, m, pr)
		default:
			return bus.Permanent(fmt.Errorf("unknown desk command %q", m.Type))
		}
	case m.Kind == core.KindMessage && m.Direction == core.Outbound:
		return p.reply(ctx, m, pr)
	default:
		return bus.Permanent(fmt.Errorf("%s %s from %s: %w", m.Direction, m.Kind, m.Channel, errUnknownDeskKind))
	}
}

// conversationOf returns conversation id, following MergedInto when follow is set.
// A conversation that does not exist is a Permanent error.
func (p *Pipeline) conversationOf(ctx context.Context, id string, follow bool) (*store.Conversation, error) {
	if id == "" {
		return nil, bus.Permanent(errors.New("no conversation id"))
	}
	for range maxMergeHops {
		if !bus.ValidToken(id) {
			return nil, bus.Permanent(fmt.Errorf("%w: %q is not a conversation id", errNoConversation, id))
		}
		c, err := p.st.Conversation(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, bus.Permanent(fmt.Errorf("%w: %s", errNoConversation, id))
		}
		if err != nil {
			return nil, fmt.Errorf("load conversation: %w", err)
		}
		if !follow || c.MergedInto == "" {
			return c, nil
		}
		id = c.MergedInto
	}
	return nil, bus.Permanent(fmt.Errorf("conversation merge chain longer than %d", maxMergeHops))
}

// contactOf returns the contact of conv; a missing one is a Permanent error.
func (p *Pipeline) contactOf(ctx context.Context, conv *store.Conversation) (*store.Contact, error) {
	c, err := p.st.Contact(ctx, conv.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bus.Permanent(fmt.Errorf("conversation %s: contact %s not found", conv.ID, conv.ContactID))
	}
	if err != nil {
		return nil, fmt.Errorf("load contact: %w", err)
	}
	return c, nil
}

// reply sends a reply to the customer: an agent's from a desk, or an automatic
// one from a source (routing, tickets). The channel is meta reply_via, else the
// one the customer used last; the recipient is always one of the contact's
// identities, whatever the author put in To or External.
func (p *Pipeline) reply(ctx context.Context, m *core.Message, pr *progress) error {
	conv, err := p.conversationOf(ctx, m.ConversationID, true)
	if err != nil {
		return err
	}
	contact, err := p.contactOf(ctx, conv)
	if err != nil {
		return err
	}
	target := cmp.Or(m.Meta[event.MetaReplyVia], conv.LastChannel, conv.Channel)
	if target == "" {
		return bus.Permanent(fmt.Errorf("conversation %s has no channel to reply on", conv.ID))
	}
	if !p.customerChannel(target) {
		return bus.Permanent(fmt.Errorf("reply via %w %q", errUnknownChannel, target))
	}
	if via := m.Meta[event.MetaReplyVia]; via != "" {
		// The author chose the channel: one the customer is not on is a
		// mistake to report, not a reason to pick another.
		if _, err := recipient(via, conv, contact); err != nil {
			return bus.Permanent(err)
		}
	}
	source := m.Channel
	m.ContactID, m.ConversationID = contact.ID, conv.ID
	if m.Meta == nil {
		m.Meta = map[string]string{}
	}
	m.Meta[event.MetaDesk] = source
	// External held the author's references (a Slack channel and ts); the
	// channel's adapter fills its own.
	rt := p.route(target, conv, contact)
	if (m.Meta[event.MetaEditOf] != "" || m.Meta[event.MetaDeleteOf] != "") && rt.channel != target {
		// An edit changes a message on the channel that carried it; another
		// channel would show it as a new message.
		rt.channel = ""
	}
	rt.address(m)
	// Before the adapter can send it: the customer's answer may cite it.
	if err := p.recordReply(ctx, m, conv.ID, contact.ID); err != nil {
		return err
	}
	if err := concurrently(
		func() error { return p.appendTranscript(ctx, m) },
		func() error { return p.send(ctx, m, rt) },
		func() error { return p.toDesks(ctx, m, source, nil) },
	); err != nil {
		return publishErr(err)
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("reply", "msg_id", m.ID, "source", source, "channel", m.Channel, "contact", contact.ID, "conversation", conv.ID)
	return nil
}

// recipient picks whom a reply on channel goes to: the conversation's last
// identity when it is on channel, else the contact's first identity on channel.
func recipient(channel string, conv *store.Conversation, c *store.Contact) (core.Identity, error) {
	if conv.LastIdentity.Channel() == channel && slices.Contains(c.Identities, conv.LastIdentity) {
		return conv.LastIdentity, nil
	}
	for _, id := range c.Identities {
		if id.Channel() == channel {
			return id, nil
		}
	}
	return "", fmt.Errorf("contact %s has no %s identity", c.ID, channel)
}

// commandEvent builds the event answering command m, of type typ, about conv.
func (p *Pipeline) commandEvent(m *core.Message, typ string, conv *store.Conversation) *core.Message {
	ev := core.NewMessage(core.KindEvent, core.Inbound, m.Channel)
	ev.Type = typ
	ev.ReceivedAt = p.now()
	ev.From = m.From
	ev.ConversationID = m.ConversationID
	if conv != nil {
		ev.ContactID, ev.ConversationID = conv.ContactID, conv.ID
	}
	ev.ReplyTo = m.ID
	ev.Meta = map[string]string{event.MetaDesk: m.Channel}
	return ev
}

// publishEvent publishes the answer ev to command m on omni.evt.<type>.
func (p *Pipeline) publishEvent(ctx context.Context, ev *core.Message, m *core.Message) error {
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectEvt(ev.Type), ev, bus.WithMsgID("evt:"+ev.Type+":"+m.ID)); err != nil {
		return publishErr(fmt.Errorf("publish %s: %w", ev.Type, err))
	}
	return nil
}

// reject tells the desk that sent command m why it was not executed, and
// finishes m.
func (p *Pipeline) reject(ctx context.Context, m *core.Message, pr *progress, conv *store.Conversation, reason string) error {
	ev := p.commandEvent(m, event.CommandRejected, conv)
	ev.Meta[event.MetaCommand] = m.Type
	ev.Meta[event.MetaReason] = reason
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectDesk(m.Channel), ev, bus.WithMsgID("desk:"+m.Channel+":rejected:"+m.ID)); err != nil {
		return publishErr(fmt.Errorf("publish %s: %w", event.CommandRejected, err))
	}
	p.log.Debug("command rejected", "msg_id", m.ID, "command", m.Type, "desk", m.Channel, "reason", reason)
	return p.markDone(ctx, pr, m.ConversationID)
}

// closeConversation executes a desk's conversation.close.
func (p *Pipeline) closeConversation(ctx context.Context, m *core.Message, pr *progress) error {
	conv, err := p.conversationOf(ctx, m.ConversationID, false)
	if err != nil {
		return err
	}
	if n, ok := opensOf(m); ok && conv.Opens > n {
		// The customer wrote again since the agent looked (or since this
		// close, delivered again, ran): the opening it meant is over.
		return p.reject(ctx, m, pr, conv, "the customer wrote again since: the conversation reopened")
	}
	conv, err = p.st.CloseConversation(ctx, conv.ID, p.now())
	if err != nil {
		return fmt.Errorf("close conversation: %w", err)
	}
	if err := p.publishEvent(ctx, p.commandEvent(m, event.ConversationClosed, conv), m); err != nil {
		return err
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("conversation closed", "msg_id", m.ID, "desk", m.Channel, "conversation", conv.ID)
	return nil
}

// reopenConversation executes a desk's conversation.reopen: the contact's
// latest conversation, closed, not by a merge, while the contact has no other
// open one.
func (p *Pipeline) reopenConversation(ctx context.Context, m *core.Message, pr *progress) error {
	conv, err := p.conversationOf(ctx, m.ConversationID, false)
	if err != nil {
		return err
	}
	contact, err := p.contactOf(ctx, conv)
	if err != nil {
		return err
	}
	if conv.State == store.StateOpen {
		if n, ok := opensOf(m); ok && conv.Opens == n+1 {
			// Reopened already: by this command delivered before, or by the
			// customer. Say so once more (the event is deduplicated).
			return p.reopened(ctx, m, pr, conv)
		}
		return p.reject(ctx, m, pr, conv, "the conversation is open already")
	}
	if open, err := p.st.OpenConversation(ctx, contact.ID); err == nil {
		return p.reject(ctx, m, pr, conv, "the customer has another open conversation: "+open.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("open conversation: %w", err)
	}
	if conv.MergedInto != "" || contact.LastConversation != conv.ID {
		return p.reject(ctx, m, pr, conv, "only the customer's latest conversation can be reopened")
	}
	now := p.now()
	// A window that reaches back to when it closed reopens it rather than
	// starting a new one.
	window := now.Sub(conv.ClosedAt) + time.Hour
	got, _, err := p.st.FindOrOpenConversation(ctx, contact.ID, window, now, nil)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	if got.ID != conv.ID {
		return p.reject(ctx, m, pr, conv, "the customer started another conversation meanwhile: "+got.ID)
	}
	return p.reopened(ctx, m, pr, got)
}

// reopened answers command m: conv is open again.
func (p *Pipeline) reopened(ctx context.Context, m *core.Message, pr *progress, conv *store.Conversation) error {
	if err := p.publishEvent(ctx, p.commandEvent(m, event.ConversationReopened, conv), m); err != nil {
		return err
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("conversation reopened", "msg_id", m.ID, "desk", m.Channel, "conversation", conv.ID)
	return nil
}

// opensOf reads meta "opens" of a command: the opening the agent saw.
func opensOf(m *core.Message) (int, bool) {
	n, err := strconv.Atoi(m.Meta[event.MetaOpens])
	return n, err == nil && n > 0
}

// agentLink executes a desk's contact.link: the identity in meta "identity"
// belongs to the contact of the conversation. The desks hear of it by
// contact.linked (and contact.merged when contacts were merged).
func (p *Pipeline) agentLink(ctx context.Context, m *core.Message, pr *progress) error {
	id, err := core.ParseIdentity(m.Meta[event.MetaIdentity])
	if err != nil {
		return bus.Permanent(fmt.Errorf("%s: meta %q: %w", event.ContactLink, event.MetaIdentity, err))
	}
	if ch := id.Channel(); ch != UserChannel && !p.customerChannel(ch) {
		return bus.Permanent(fmt.Errorf("%s: identity on %w %q", event.ContactLink, errUnknownChannel, ch))
	}
	conv, err := p.conversationOf(ctx, m.ConversationID, true)
	if err != nil {
		return err
	}
	c, err := p.contactOf(ctx, conv)
	if err != nil {
		return err
	}
	if c, err = p.link(ctx, c, link{id: id, reason: reasonAgent, claim: true}, m.Channel, nil); err != nil {
		return err
	}
	if p.isPhone(id.Channel()) && e164.MatchString(id.Address()) {
		for _, ch := range p.cfg.PhoneChannels {
			sib := core.NewIdentity(ch, id.Address())
			if sib == id {
				continue
			}
			if c, err = p.link(ctx, c, link{id: sib, reason: reasonPhone}, m.Channel, nil); err != nil {
				return err
			}
		}
	}
	ev := p.commandEvent(m, event.ContactLinked, conv)
	ev.ContactID = c.ID
	ev.Meta[event.MetaIdentity] = string(id)
	for _, desk := range p.cfg.Desks {
		if _, err := p.bus.PublishMessage(ctx, bus.SubjectDesk(desk), ev, bus.WithMsgID("desk:"+desk+":linked:"+m.ID)); err != nil {
			return publishErr(fmt.Errorf("publish %s: %w", event.ContactLinked, err))
		}
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("identity linked by agent", "msg_id", m.ID, "desk", m.Channel, "channel", id.Channel(), "contact", c.ID)
	return nil
}
