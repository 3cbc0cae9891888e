package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// errClosedMeanwhile ends a conversation update that found the conversation
// closed after FindOrOpenConversation returned it open: the message then looks
// for its conversation again.
var errClosedMeanwhile = errors.New("conversation closed meanwhile")

// maxPlaceAttempts bounds how often a message looks for its conversation again
// when agents keep closing it under it.
const maxPlaceAttempts = 3

// lastMessageEvery is how stale a conversation's LastMessageAt may get: a
// message that changes nothing else about its conversation writes it only when
// it is older than this, so a busy conversation costs no store write per message.
const lastMessageEvery = 5 * time.Second

// inbound handles a message on a customer channel.
func (p *Pipeline) inbound(ctx context.Context, m *core.Message, redelivered bool) error {
	ctx, span := tracer.Start(ctx, "pipeline inbound")
	defer span.End()
	switch {
	case m.Kind != core.KindMessage:
		return bus.Permanent(fmt.Errorf("event %q on customer channel %s: customer channels send messages only", m.Type, m.Channel))
	case m.Direction != core.Inbound:
		return bus.Permanent(fmt.Errorf("outbound message on customer channel %s: replies come from a desk", m.Channel))
	case m.From == "":
		return bus.Permanent(errNoSender)
	case m.From.Channel() != m.Channel:
		// An adapter speaks for its own channel only: a web visitor must not be
		// able to claim an email address's contact.
		return bus.Permanent(fmt.Errorf("sender identity is on channel %q, the message on %q", m.From.Channel(), m.Channel))
	}
	links := p.linksOf(m)
	pf, err := p.prefetch(ctx, m, links, redelivered)
	if err != nil || pf.progress.rec.Done {
		return err
	}
	pr, threads := pf.progress, pf.threads
	contact, err := p.resolve(ctx, m, links, pf)
	if err != nil {
		return err
	}
	conv, opened, err := p.place(ctx, contact.ID, m)
	if err != nil {
		return err
	}
	if _, ok := contact.Unreachable[m.From]; ok {
		if err := p.reachableAgain(ctx, m, contact, conv); err != nil {
			return err
		}
	}
	if err := p.recordThread(ctx, m, conv, threads); err != nil {
		return err
	}

	m.ContactID, m.ConversationID = conv.ContactID, conv.ID
	var meta map[string]string
	if opened {
		meta = map[string]string{event.MetaConversationOpened: "true"}
		if conv.Previous != "" {
			meta[event.MetaPreviousConversation] = conv.Previous
		}
	}
	// toDesks copies m before it adds meta, so both may read m at once.
	if err := concurrently(
		func() error { return p.appendTranscript(ctx, m) },
		func() error { return p.toDesks(ctx, m, "", meta) },
	); err != nil {
		return publishErr(err)
	}
	if err := p.markDone(ctx, pr, conv.ID); err != nil {
		return err
	}
	p.log.Debug("inbound message", "msg_id", m.ID, "channel", m.Channel, "contact", conv.ContactID,
		"conversation", conv.ID, "opened", opened)
	return nil
}

// prefetched is what inbound reads before it decides anything.
type prefetched struct {
	progress *progress
	threads  *threads
	// sender is the contact holding m.From, nil when there is none.
	sender *store.Contact
	// holders maps the identities of links that do not claim (phone siblings) to
	// the contact holding them, nil when there is none.
	holders map[core.Identity]*store.Contact
}

// prefetch runs the reads inbound needs first, which do not depend on each other,
// at once: the processed check (on a redelivery), the thread keys, the sender's
// contact and the holders of its phone siblings. The store's read cache answers
// most of them for a known sender.
func (p *Pipeline) prefetch(ctx context.Context, m *core.Message, links []link, redelivered bool) (*prefetched, error) {
	pf := &prefetched{holders: map[core.Identity]*store.Contact{}}
	var mu sync.Mutex
	reads := []func() error{
		func() (err error) {
			pf.progress, err = p.progress(ctx, m.ID, redelivered)
			return err
		},
		func() (err error) {
			pf.threads, err = p.lookupThreads(ctx, m)
			return err
		},
		func() (err error) {
			pf.sender, err = p.holder(ctx, m.From)
			return err
		},
	}
	for _, l := range links {
		if l.claim {
			continue
		}
		reads = append(reads, func() error {
			c, err := p.holder(ctx, l.id)
			mu.Lock()
			pf.holders[l.id] = c
			mu.Unlock()
			return err
		})
	}
	if err := concurrently(reads...); err != nil {
		return nil, err
	}
	return pf, nil
}

// holder returns the contact holding id, or nil when none does.
func (p *Pipeline) holder(ctx context.Context, id core.Identity) (*store.Contact, error) {
	c, err := p.st.ContactByIdentity(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("look up %s identity: %w", id.Channel(), err)
	}
	return c, nil
}

// place finds or opens the conversation of contactID for m and records m as its
// latest message. opened is true when m opened or reopened it, also on a
// redelivery after the first attempt opened it and failed later (the
// conversation's OpenedBy is m). A message that changes nothing but the time of
// the last message writes nothing unless that time is lastMessageEvery old.
func (p *Pipeline) place(ctx context.Context, contactID string, m *core.Message) (conv *store.Conversation, opened bool, err error) {
	window := max(p.cfg.ReopenWindow, 0)
	now := p.now()
	for attempt := 1; ; attempt++ {
		var isNew bool
		conv, isNew, err = p.st.FindOrOpenConversation(ctx, contactID, window, now, func(c *store.Conversation) {
			c.Channel, c.LastChannel, c.LastIdentity, c.LastMessageAt = m.Channel, m.Channel, m.From, now
			c.OpenedBy = m.ID
		})
		if err != nil {
			return nil, false, fmt.Errorf("find conversation: %w", err)
		}
		opened = isNew || conv.OpenedBy == m.ID
		if isNew && conv.Opens == 1 && conv.LastIdentity == m.From {
			return conv, opened, nil // init filled the Last* fields
		}
		if !isNew && conv.LastChannel == m.Channel && conv.LastIdentity == m.From && now.Sub(conv.LastMessageAt) < lastMessageEvery {
			return conv, opened, nil
		}
		updated, err := p.st.UpdateConversation(ctx, conv.ID, func(c *store.Conversation) error {
			if c.State != store.StateOpen {
				return errClosedMeanwhile
			}
			c.LastChannel, c.LastIdentity = m.Channel, m.From
			if now.After(c.LastMessageAt) {
				c.LastMessageAt = now
			}
			if isNew {
				c.OpenedBy = m.ID // reopened by m
			}
			return nil
		})
		switch {
		case err == nil:
			return updated, opened, nil
		case errors.Is(err, errClosedMeanwhile) && attempt < maxPlaceAttempts:
			continue
		default:
			return nil, false, fmt.Errorf("update conversation: %w", err)
		}
	}
}
