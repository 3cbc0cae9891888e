package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Reasons of a link, in "contact.merged" events.
const (
	reasonPhone  = "phone"
	reasonThread = "thread"
	reasonAgent  = "agent"
)

// maxThreadKeys bounds the thread keys one message may bring, so a message with
// a huge References header costs a bounded number of lookups.
const maxThreadKeys = 32

// maxThreadKeyBytes is the longest thread key stored as it is; longer ones are
// stored as a hash.
const maxThreadKeyBytes = 512

// threadRefresh is how often a thread record still pointing to the right
// conversation is written again, to push its expiry back.
const threadRefresh = 24 * time.Hour

// e164 matches an E.164 phone number: '+', then up to 15 digits, not starting with 0.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// link is an identity a message proves belongs to its sender.
type link struct {
	id     core.Identity
	reason string
	// claim gives id to the contact when nobody holds it yet; without it, only an
	// existing holder is merged.
	claim bool
}

// linksOf returns the identities m proves belong to its sender, besides From.
// Unusable verified values are logged and left out.
func (p *Pipeline) linksOf(m *core.Message) []link {
	var ls []link
	add := func(l link) {
		switch i := slices.IndexFunc(ls, func(o link) bool { return o.id == l.id }); {
		case l.id == m.From:
		case i < 0:
			ls = append(ls, l)
		case l.claim && !ls[i].claim:
			ls[i] = l // a verified identity claims what a sibling would only merge
		}
	}
	if p.isPhone(m.Channel) && e164.MatchString(m.From.Address()) {
		for _, ch := range p.cfg.PhoneChannels {
			add(link{id: core.NewIdentity(ch, m.From.Address()), reason: reasonPhone})
		}
	}
	if v, ok := m.Meta[event.MetaVerifiedEmail]; ok {
		if addr, ok := normalizeEmail(v); ok {
			add(link{id: core.NewIdentity("email", addr), reason: event.MetaVerifiedEmail, claim: true})
		} else {
			p.log.Warn("unusable verified email ignored", "msg_id", m.ID, "channel", m.Channel)
		}
	}
	if v, ok := m.Meta[event.MetaVerifiedPhone]; ok {
		if phone := strings.TrimSpace(v); e164.MatchString(phone) {
			for _, ch := range p.cfg.PhoneChannels {
				add(link{id: core.NewIdentity(ch, phone), reason: event.MetaVerifiedPhone, claim: true})
			}
		} else {
			p.log.Warn("verified phone is not E.164, ignored", "msg_id", m.ID, "channel", m.Channel)
		}
	}
	if v, ok := m.Meta[event.MetaVerifiedUser]; ok {
		if id, err := core.ParseIdentity(UserChannel + ":" + strings.TrimSpace(v)); err == nil {
			add(link{id: id, reason: event.MetaVerifiedUser, claim: true})
		} else {
			p.log.Warn("unusable verified user ignored", "msg_id", m.ID, "channel", m.Channel, "err", err)
		}
	}
	return ls
}

// normalizeEmail trims addr and lower-cases its domain, as the email adapter
// does, and reports whether it looks like an address.
func normalizeEmail(addr string) (string, bool) {
	addr = strings.TrimSpace(addr)
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || strings.ContainsAny(addr, " \t\r\n<>") {
		return "", false
	}
	addr = local + "@" + strings.ToLower(domain)
	if _, err := core.ParseIdentity("email:" + addr); err != nil {
		return "", false
	}
	return addr, true
}

// threadRecord is what the "threads" records keep under "<channel>:<thread>".
type threadRecord struct {
	Conversation string    `json:"conversation"`
	Contact      string    `json:"contact"`
	At           time.Time `json:"at"`
}

// threads is what lookupThreads found for a message.
type threads struct {
	// contacts are the contacts of the message's known thread keys.
	contacts []string
	// own is the record of the message's External.Thread, nil if unknown.
	own *threadRecord
}

// threadKey is the record key of thread on channel.
func threadKey(channel, thread string) string {
	k := channel + ":" + thread
	if len(k) > maxThreadKeyBytes {
		sum := sha256.Sum256([]byte(thread))
		k = channel + ":sha256:" + hex.EncodeToString(sum[:])
	}
	return k
}

// threadKeys returns the record keys of m's External.Thread (first) and of meta
// thread_keys, without repeats, at most maxThreadKeys.
func threadKeys(m *core.Message) []string {
	var keys []string
	add := func(t string) {
		if t = strings.TrimSpace(t); t == "" || len(keys) >= maxThreadKeys {
			return
		}
		if k := threadKey(m.Channel, t); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	add(m.External.Thread)
	if v := m.Meta[event.MetaThreadKeys]; v != "" {
		for t := range strings.SplitSeq(v, ",") {
			add(t)
		}
	}
	return keys
}

// lookupThreads reads the records of m's thread keys, at once.
func (p *Pipeline) lookupThreads(ctx context.Context, m *core.Message) (*threads, error) {
	keys := threadKeys(m)
	recs := make([]*threadRecord, len(keys))
	reads := make([]func() error, len(keys))
	for i, key := range keys {
		reads[i] = func() error {
			var rec threadRecord
			_, err := p.threads.Get(ctx, key, &rec)
			switch {
			case err == nil:
				recs[i] = &rec
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("look up thread key: %w", err)
			}
			return nil
		}
	}
	if err := concurrently(reads...); err != nil {
		return nil, err
	}
	th := &threads{}
	for i, rec := range recs {
		if rec == nil {
			continue
		}
		if i == 0 && strings.TrimSpace(m.External.Thread) != "" {
			th.own = rec
		}
		if rec.Contact != "" && !slices.Contains(th.contacts, rec.Contact) {
			th.contacts = append(th.contacts, rec.Contact)
		}
	}
	return th, nil
}

// recordThread points m's External.Thread to conv, unless it already does and was
// written recently.
func (p *Pipeline) recordThread(ctx context.Context, m *core.Message, conv *store.Conversation, th *threads) error {
	if strings.TrimSpace(m.External.Thread) == "" {
		return nil
	}
	now := p.now()
	current := func(r *threadRecord) bool {
		return r.Conversation == conv.ID && r.Contact == conv.ContactID && !r.At.IsZero() && now.Sub(r.At) < threadRefresh
	}
	if th.own != nil && current(th.own) {
		return nil
	}
	var rec threadRecord
	_, err := p.threads.Update(ctx, threadKey(m.Channel, m.External.Thread), &rec, p.cfg.ThreadTTL, func(bool) error {
		if current(&rec) {
			return store.ErrSkip
		}
		rec = threadRecord{Conversation: conv.ID, Contact: conv.ContactID, At: now}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record thread key: %w", err)
	}
	return nil
}

// recordReply records reply m's envelope id as a thread key of its channel, so
// that an answer citing it (see the package documentation) joins conversation.
func (p *Pipeline) recordReply(ctx context.Context, m *core.Message, conversation, contact string) error {
	rec := threadRecord{Conversation: conversation, Contact: contact, At: p.now()}
	if _, err := p.threads.Create(ctx, threadKey(m.Channel, m.ID), rec, p.cfg.ThreadTTL); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("record reply thread key: %w", err)
	}
	return nil
}

// resolve returns the contact of m's sender after every link m proves: its thread
// keys' contacts, its phone siblings and its verified identities.
func (p *Pipeline) resolve(ctx context.Context, m *core.Message, links []link, pf *prefetched) (*store.Contact, error) {
	c := pf.sender
	if c == nil {
		var err error
		if c, err = p.adopt(ctx, m, links, pf); err != nil {
			return nil, err
		}
	}
	var err error
	for _, other := range pf.threads.contacts {
		if other == c.ID {
			continue
		}
		if c, err = p.merge(ctx, c.ID, other, reasonThread, m.Channel); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		if c, err = p.link(ctx, c, l, m.Channel, pf.holders); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// adopt finds the contact of a sender no contact holds yet: the first existing
// contact m proves it belongs to (a thread key's, a phone sibling's or a verified
// identity's), which gets the sender's identity, else a new contact.
func (p *Pipeline) adopt(ctx context.Context, m *core.Message, links []link, pf *prefetched) (*store.Contact, error) {
	candidates := slices.Clone(pf.threads.contacts)
	for _, l := range links {
		h, known := pf.holders[l.id]
		if !known {
			var err error
			if h, err = p.holder(ctx, l.id); err != nil {
				return nil, err
			}
		}
		if h != nil {
			candidates = append(candidates, h.ID)
		}
	}
	for _, cand := range candidates {
		owner, err := p.st.LinkIdentity(ctx, m.From, cand)
		if errors.Is(err, store.ErrNotFound) {
			continue // the candidate is gone
		}
		if err != nil {
			return nil, fmt.Errorf("link sender: %w", err)
		}
		c, err := p.st.Contact(ctx, owner)
		if err != nil {
			return nil, fmt.Errorf("resolve sender: %w", err)
		}
		return c, nil
	}
	c, _, err := p.st.ResolveContact(ctx, m.From, p.seed(m, links))
	if err != nil {
		return nil, fmt.Errorf("resolve sender: %w", err)
	}
	return c, nil
}

// seed fills a new contact's email and phone from what m proves.
func (p *Pipeline) seed(m *core.Message, links []link) func(c *store.Contact) {
	return func(c *store.Contact) {
		ids := []core.Identity{m.From}
		for _, l := range links {
			if l.claim {
				ids = append(ids, l.id)
			}
		}
		for _, id := range ids {
			switch {
			case c.Email == "" && id.Channel() == "email":
				c.Email = id.Address()
			case c.Phone == "" && p.isPhone(id.Channel()):
				c.Phone = id.Address()
			}
		}
	}
}

// link applies l to contact c and returns c's survivor afterwards: l's identity
// is given to c when l claims it and nobody holds it, and its holder, if another
// contact, is merged with c. holders (may be nil) has holders already looked up.
func (p *Pipeline) link(ctx context.Context, c *store.Contact, l link, channel string, holders map[core.Identity]*store.Contact) (*store.Contact, error) {
	if slices.Contains(c.Identities, l.id) {
		return c, nil
	}
	var owner string
	if l.claim {
		var err error
		if owner, err = p.st.LinkIdentity(ctx, l.id, c.ID); err != nil {
			return nil, fmt.Errorf("link %s identity: %w", l.id.Channel(), err)
		}
	} else {
		h, known := holders[l.id]
		if !known {
			var err error
			if h, err = p.holder(ctx, l.id); err != nil {
				return nil, err
			}
		}
		if h == nil {
			return c, nil
		}
		owner = h.ID
	}
	if owner == c.ID {
		c.Identities = append(c.Identities, l.id)
		return c, nil
	}
	return p.merge(ctx, c.ID, owner, l.reason, channel)
}

// merge makes contacts a and b one and returns the survivor: the older of their
// survivors, so that every replica merges in the same direction. When a merge
// happened, desks get a "contact.merged" event on channel.
func (p *Pipeline) merge(ctx context.Context, a, b, reason, channel string) (*store.Contact, error) {
	ca, err := p.st.Contact(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	cb, err := p.st.Contact(ctx, b)
	if errors.Is(err, store.ErrNotFound) {
		return ca, nil // nothing left to merge with
	}
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if ca.ID == cb.ID {
		return ca, nil
	}
	from, into := ca, cb
	if older(ca, cb) {
		from, into = cb, ca
	}
	res, err := p.st.MergeContacts(ctx, from.ID, into.ID)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	p.log.Info("contacts merged", "contact", res.Contact.ID, "merged_contact", res.From, "reason", reason)
	if err := p.announceMerge(ctx, res, reason, channel); err != nil {
		return nil, err
	}
	return res.Contact, nil
}

// older reports whether a was created before b (by id when at the same time).
func older(a, b *store.Contact) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

// announceMerge tells every desk, and omni.evt.contact.merged, about res.
func (p *Pipeline) announceMerge(ctx context.Context, res *store.MergeResult, reason, channel string) error {
	ev := core.NewMessage(core.KindEvent, core.Inbound, channel)
	ev.Type = event.ContactMerged
	ev.ReceivedAt = p.now()
	ev.ContactID = res.Contact.ID
	ev.Meta = map[string]string{event.MetaContact: res.Contact.ID, event.MetaMergedContact: res.From, event.MetaReason: reason}
	if res.Open != nil {
		ev.ConversationID = res.Open.ID
		ev.Meta[event.MetaConversation] = res.Open.ID
	}
	if res.Closed != nil {
		ev.Meta[event.MetaClosedConversation] = res.Closed.ID
	}
	if res.Moved {
		ev.Meta[event.MetaMoved] = "true"
	}
	for _, desk := range p.cfg.Desks {
		if _, err := p.bus.PublishMessage(ctx, bus.SubjectDesk(desk), ev, bus.WithMsgID("desk:"+desk+":merge:"+res.From)); err != nil {
			return fmt.Errorf("announce merge to desk %s: %w", desk, err)
		}
	}
	if _, err := p.bus.PublishMessage(ctx, bus.SubjectEvt(event.ContactMerged), ev, bus.WithMsgID("evt:merge:"+res.From)); err != nil {
		return fmt.Errorf("announce merge: %w", err)
	}
	return nil
}
