package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// reachEvent reports whether m is a channel's word on whether its customer
// can be reached (contact.unreachable, contact.reachable).
func reachEvent(m *core.Message) bool {
	return m.Kind == core.KindEvent && (m.Type == event.ContactUnreachable || m.Type == event.ContactReachable)
}

// reachability handles a contact.unreachable or contact.reachable a customer
// channel published about identity m.From: it records it on the contact, tells
// the desks (omni.evt.<type>, with the conversation), and sends the reply that
// failed for it, if the event carries one, on the contact's next reachable
// channel.
func (p *Pipeline) reachability(ctx context.Context, m *core.Message, redelivered bool) error {
	if m.From == "" || m.From.Channel() != m.Channel {
		return bus.Permanent(fmt.Errorf("%s about identity %q on channel %s: a channel speaks for its own identities", m.Type, m.From, m.Channel))
	}
	pr, err := p.progress(ctx, m.ID, redelivered)
	if err != nil || pr.rec.Done {
		return err
	}
	contact, err := p.st.ContactByIdentity(ctx, m.From)
	if errors.Is(err, store.ErrNotFound) {
		p.log.Debug("reachability of an unknown identity, ignored", "msg_id", m.ID, "type", m.Type, "channel", m.Channel)
		return p.markDone(ctx, pr, "")
	}
	if err != nil {
		return fmt.Errorf("contact of %s: %w", m.Type, err)
	}
	var u *store.Unreachability
	if m.Type == event.ContactUnreachable {
		u = &store.Unreachability{Reason: m.Meta[event.MetaReason], Detail: m.Meta[event.MetaError], Since: p.now()}
	}
	contact, changed, err := p.markReach(ctx, contact.ID, m.From, u)
	if err != nil {
		return err
	}
	conv, err := p.reachConversation(ctx, m, contact)
	if err != nil {
		return err
	}
	if changed {
		if err := p.reachNotice(ctx, m, contact, conv); err != nil {
			return err
		}
	}
	if m.Type == event.ContactUnreachable && m.ReplyTo != "" && conv != nil {
		if err := p.reroute(ctx, m, conv, contact); err != nil {
			return err
		}
	}
	p.log.Info("reachability changed", "type", m.Type, "channel", m.Channel, "reason", m.Meta[event.MetaReason], "contact", contact.ID, "changed", changed)
	return p.markDone(ctx, pr, convID(conv))
}

func convID(c *store.Conversation) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// markReach records u as why id of contact cid cannot be reached, or, with u
// nil, that it can; it reports whether that changed anything.
func (p *Pipeline) markReach(ctx context.Context, cid string, id core.Identity, u *store.Unreachability) (*store.Contact, bool, error) {
	changed := false
	c, err := p.st.UpdateContact(ctx, cid, func(c *store.Contact) error {
		old, had := c.Unreachable[id]
		switch {
		case u == nil && !had, u != nil && had && old.Reason == u.Reason:
			return store.ErrSkip
		case u == nil:
			delete(c.Unreachable, id)
		default:
			if c.Unreachable == nil {
				c.Unreachable = map[core.Identity]store.Unreachability{}
			}
			c.Unreachable[id] = *u
		}
		changed = true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("record reachability: %w", err)
	}
	return c, changed, nil
}

// reachConversation is the conversation a reachability event is about: the
// failed reply's, else the contact's open one; nil when there is none.
func (p *Pipeline) reachConversation(ctx context.Context, m *core.Message, contact *store.Contact) (*store.Conversation, error) {
	if m.ConversationID != "" {
		conv, err := p.conversationOf(ctx, m.ConversationID, true)
		if err == nil || !bus.IsPermanent(err) {
			return conv, err
		}
	}
	conv, err := p.st.OpenConversation(ctx, contact.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open conversation: %w", err)
	}
	return conv, nil
}

// reachNotice tells the desks that identity m.From of contact can, or can no
// longer, be reached, on omni.evt.<type>.
func (p *Pipeline) reachNotice(ctx context.Context, m *core.Message, contact *store.Contact, conv *store.Conversation) error {
	ev := core.NewMessage(core.KindEvent, core.Inbound, m.Channel)
	ev.Type, ev.From, ev.ReceivedAt = m.Type, m.From, p.now()
	ev.ContactID, ev.ConversationID, ev.ReplyTo = contact.ID, convID(conv), m.ReplyTo
	ev.Meta = map[string]string{}
	for _, k := range []string{event.MetaReason, event.MetaError} {
		if v := m.Meta[k]; v != "" {
			ev.Meta[k] = v
		}
	}
	return p.publishEvent(ctx, ev, m)
}

// reroute sends the reply a contact.unreachable carries (m.ReplyTo, with its
// content) on the contact's next reachable channel. The reply keeps its
// envelope id, so the desk's delivery reports find the agent's message.
func (p *Pipeline) reroute(ctx context.Context, m *core.Message, conv *store.Conversation, contact *store.Contact) error {
	src := m // the reply as written: its content, and the meta it was written with
	if m.Text == "" && m.HTML == "" && len(m.Attachments) == 0 {
		// The channel did not have the reply (a bounce returns its headers
		// only): the transcript does.
		orig, err := p.transcriptEntry(ctx, conv.ID, m.ReplyTo)
		if err != nil || orig == nil {
			return err
		}
		src = orig
	}
	r := core.NewMessage(core.KindMessage, core.Outbound, m.Channel)
	r.ID = m.ReplyTo
	r.Text, r.HTML, r.Attachments, r.QuickReplies = src.Text, src.HTML, src.Attachments, src.QuickReplies
	r.ConversationID, r.ContactID = conv.ID, contact.ID
	r.ReceivedAt = p.now()
	r.Meta = maps.Clone(src.Meta)
	// What the event or the earlier routing said, not the reply.
	for _, k := range []string{event.MetaReason, event.MetaError, event.MetaCarriedBy} {
		delete(r.Meta, k)
	}
	rt := p.route(m.Channel, conv, contact)
	rt.address(r)
	return p.send(ctx, r, rt)
}

// maxTranscriptScan bounds how many transcript entries transcriptEntry reads.
const maxTranscriptScan = 10 * MaxTranscriptLimit

// transcriptEntry finds the envelope id in conversation's transcript; nil
// when it is not among the first maxTranscriptScan entries.
func (p *Pipeline) transcriptEntry(ctx context.Context, conversation, id string) (*core.Message, error) {
	var after uint64
	for read := 0; read < maxTranscriptScan; {
		page, next, err := Transcript(ctx, p.bus.JetStream(), conversation, after, MaxTranscriptLimit)
		if err != nil {
			return nil, fmt.Errorf("read the transcript: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Message != nil && e.Message.ID == id {
				return e.Message, nil
			}
		}
		read, after = read+len(page), next
	}
	p.log.Warn("reply to send again not found in the transcript", "msg_id", id, "conversation", conversation)
	return nil, nil
}

// routed is where route sends a reply.
type routed struct {
	// target is the channel the reply would go to; channel and to where it
	// goes, channel "" when nothing can reach the customer.
	target, channel string
	to              core.Identity
	// passed lists the identities passed over and why, for the desk.
	passed []string
}

// route picks the channel and identity a reply goes to: target and its
// recipient when the contact can be reached there, else the first reachable
// identity on the configured fallback channels (or, without any, on the
// contact's other identities, in order).
func (p *Pipeline) route(target string, conv *store.Conversation, c *store.Contact) routed {
	r := routed{target: target}
	reachable := func(id core.Identity) bool {
		u, bad := c.Unreachable[id]
		if bad {
			r.passed = append(r.passed, fmt.Sprintf("%s (%s)", id, u.Reason))
		}
		return !bad
	}
	if id, err := recipient(target, conv, c); err == nil && reachable(id) {
		r.channel, r.to = target, id
		return r
	}
	order := p.cfg.ReplyFallback
	if len(order) == 0 {
		for _, id := range c.Identities {
			if ch := id.Channel(); !slices.Contains(order, ch) {
				order = append(order, ch)
			}
		}
	}
	for _, ch := range order {
		if ch == target || !p.customerChannel(ch) {
			continue
		}
		for _, id := range c.Identities {
			if id.Channel() == ch && reachable(id) {
				r.channel, r.to = ch, id
				return r
			}
		}
	}
	r.to, _ = recipient(target, conv, c) // for the record: whom it was for
	return r
}

// reachableAgain clears the unreachability of m.From, whose customer just
// wrote from it (WhatsApp's window opens, a block is evidently lifted), and
// tells the desks.
func (p *Pipeline) reachableAgain(ctx context.Context, m *core.Message, contact *store.Contact, conv *store.Conversation) error {
	c, changed, err := p.markReach(ctx, contact.ID, m.From, nil)
	if err != nil || !changed {
		return err
	}
	ev := core.NewMessage(core.KindEvent, core.Inbound, m.Channel)
	ev.ID, ev.Type, ev.From = m.ID, event.ContactReachable, m.From
	ev.Meta = map[string]string{event.MetaReason: "wrote"}
	return p.reachNotice(ctx, ev, c, conv)
}

// address sets m's channel and recipient as r says (a reply nothing can
// reach keeps its target), marking a rerouted one with meta carried_by.
func (r routed) address(m *core.Message) {
	m.Channel, m.To = cmp.Or(r.channel, r.target), r.to
	m.External = core.External{}
	if r.channel != "" && r.channel != r.target {
		if m.Meta == nil {
			m.Meta = map[string]string{}
		}
		m.Meta[event.MetaCarriedBy] = r.channel
	}
}

// send publishes reply m, addressed by r, on omni.out.<channel>, telling the
// desks on omni.evt.delivery.rerouted when that is not r's target, or on
// omni.evt.delivery.failed, sending nothing, when no channel can reach the
// customer.
func (p *Pipeline) send(ctx context.Context, m *core.Message, r routed) error {
	notice := func(typ string, meta map[string]string) error {
		ev := core.NewMessage(core.KindEvent, core.Outbound, m.Channel)
		ev.Type, ev.ReplyTo, ev.ReceivedAt = typ, m.ID, p.now()
		ev.ContactID, ev.ConversationID, ev.To = m.ContactID, m.ConversationID, r.to
		ev.Meta = meta
		if _, err := p.bus.PublishMessage(ctx, bus.SubjectEvt(typ), ev, bus.WithMsgID("evt:"+typ+":"+m.ID+":"+r.target)); err != nil {
			return publishErr(fmt.Errorf("publish %s: %w", typ, err))
		}
		return nil
	}
	if r.channel == "" {
		p.log.Info("reply not sent: no channel of the contact can reach them", "msg_id", m.ID, "conversation", m.ConversationID)
		return notice(event.DeliveryFailed, map[string]string{
			event.MetaError:       "no channel can reach the customer: " + cmpJoin(r.passed, "the contact has no identity to reply to"),
			event.MetaReason:      "unreachable",
			event.MetaUnreachable: strings.Join(r.passed, ", "),
		})
	}
	id := "out:" + m.ID
	if r.channel != r.target {
		id += ":" + r.channel // the reply may have gone to the target already
	}
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectOut(r.channel), m, bus.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish reply: %w", err)
	}
	if r.channel == r.target {
		return nil
	}
	p.log.Info("reply rerouted", "msg_id", m.ID, "conversation", m.ConversationID, "from", r.target, "to", r.channel)
	return notice(event.DeliveryRerouted, map[string]string{
		event.MetaCarriedBy:   r.channel,
		event.MetaReason:      "unreachable",
		event.MetaUnreachable: strings.Join(r.passed, ", "),
	})
}

// cmpJoin joins parts with ", ", or returns none when there are none.
func cmpJoin(parts []string, none string) string {
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, ", ")
}
