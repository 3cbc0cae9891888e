package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// maxMergeHops bounds how many MergedInto links a reply follows.
const maxMergeHops = 8

// handleDesk handles what a desk published: an agent's reply or a desk event.
func (p *Pipeline) handleDesk(ctx context.Context, m *core.Message) error {
	pr, err := p.progress(ctx, m.ID)
	if err != nil || pr.rec.Done {
		return err
	}
	switch {
	case m.Kind == core.KindEvent:
		switch m.Type {
		case event.ConversationClose:
			return p.closeConversation(ctx, m, pr)
		case event.ContactLink:
			return p.agentLink(ctx, m, pr)
		default:
			return bus.Permanent(fmt.Errorf("unknown desk event type %q", m.Type))
		}
	case m.Direction == core.Outbound:
		return p.reply(ctx, m, pr)
	default:
		return bus.Permanent(fmt.Errorf("inbound message from desk %s: %w", m.Channel, errUnknownDeskKind))
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

// reply routes an agent's reply to the customer.
func (p *Pipeline) reply(ctx context.Context, m *core.Message, pr *progress) error {
	conv, err := p.conversationOf(ctx, m.ConversationID, true)
	if err != nil {
		return err
	}
	contact, err := p.st.Contact(ctx, conv.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("conversation %s: contact %s not found", conv.ID, conv.ContactID))
	}
	if err != nil {
		return fmt.Errorf("load contact: %w", err)
	}
	target := m.Meta[event.MetaReplyVia]
	if target == "" && m.To != "" {
		target = m.To.Channel()
	}
	if target == "" {
		target = conv.LastChannel
	}
	if target == "" {
		target = conv.Channel
	}
	if target == "" {
		return bus.Permanent(fmt.Errorf("conversation %s has no channel to reply on", conv.ID))
	}
	if !p.customerChannel(target) {
		return bus.Permanent(fmt.Errorf("reply via %w %q", errUnknownChannel, target))
	}
	to, err := recipient(m.To, target, conv, contact)
	if err != nil {
		return bus.Permanent(err)
	}

	desk := m.Channel
	m.Channel, m.To = target, to
	m.ContactID, m.ConversationID = contact.ID, conv.ID
	if m.Meta == nil {
		m.Meta = map[string]string{}
	}
	m.Meta[event.MetaDesk] = desk
	// Before the adapter can send it: the customer's answer may cite it.
	if err := p.recordReply(ctx, m, conv.ID, contact.ID); err != nil {
		return err
	}
	if err := concurrently(
		func() error { return p.appendTranscript(ctx, m) },
		func() error {
			if _, err := p.bus.PublishMessage(ctx, bus.SubjectOut(target), m, bus.WithMsgID("out:"+m.ID)); err != nil {
				return fmt.Errorf("publish reply: %w", err)
			}
			return nil
		},
		func() error { return p.toDesks(ctx, m, desk, nil) },
	); err != nil {
		return publishErr(err)
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("reply", "msg_id", m.ID, "desk", desk, "channel", target, "contact", contact.ID, "conversation", conv.ID)
	return nil
}

// recipient picks whom a reply on channel goes to: to, when set (it must be one of
// the contact's identities); else the conversation's last identity when it is on
// channel; else the contact's first identity on channel.
func recipient(to core.Identity, channel string, conv *store.Conversation, c *store.Contact) (core.Identity, error) {
	if to != "" {
		if to.Channel() != channel {
			return "", fmt.Errorf("recipient is on channel %q, the reply goes via %q", to.Channel(), channel)
		}
		if !slices.Contains(c.Identities, to) {
			return "", fmt.Errorf("recipient is not an identity of contact %s", c.ID)
		}
		return to, nil
	}
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

// closeConversation handles a desk's "conversation.close".
func (p *Pipeline) closeConversation(ctx context.Context, m *core.Message, pr *progress) error {
	conv, err := p.conversationOf(ctx, m.ConversationID, false)
	if err != nil {
		return err
	}
	conv, err = p.st.CloseConversation(ctx, conv.ID, p.now())
	if err != nil {
		return fmt.Errorf("close conversation: %w", err)
	}
	ev := core.NewMessage(core.KindEvent, core.Inbound, m.Channel)
	ev.Type = event.ConversationClosed
	ev.ReceivedAt = p.now()
	ev.From = m.From
	ev.ContactID, ev.ConversationID = conv.ContactID, conv.ID
	ev.ReplyTo = m.ID
	ev.Meta = map[string]string{event.MetaDesk: m.Channel}
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectEvt(event.ConversationClosed), ev, bus.WithMsgID("evt:closed:"+m.ID)); err != nil {
		return publishErr(fmt.Errorf("publish %s: %w", event.ConversationClosed, err))
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("conversation closed", "msg_id", m.ID, "desk", m.Channel, "conversation", conv.ID)
	return nil
}

// agentLink handles a desk's "contact.link": the identity in meta "identity"
// belongs to the contact of the conversation.
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
	c, err := p.st.Contact(ctx, conv.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("conversation %s: contact %s not found", conv.ID, conv.ContactID))
	}
	if err != nil {
		return fmt.Errorf("load contact: %w", err)
	}
	if c, err = p.link(ctx, c, link{id: id, reason: reasonAgent, claim: true}, m.Channel, nil); err != nil {
		return err
	}
	if p.isPhone(id.Channel()) && e164.MatchString(id.Address()) {
		for _, ch := range p.opts.PhoneChannels {
			sib := core.NewIdentity(ch, id.Address())
			if sib == id {
				continue
			}
			if c, err = p.link(ctx, c, link{id: sib, reason: reasonPhone}, m.Channel, nil); err != nil {
				return err
			}
		}
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("identity linked by agent", "msg_id", m.ID, "desk", m.Channel, "channel", id.Channel(), "contact", c.ID)
	return nil
}
