package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/core"
)

// ConversationState says whether a conversation takes new messages.
type ConversationState string

// The states of a conversation.
const (
	// StateOpen is a conversation new messages of its contact land in. A contact
	// has at most one.
	StateOpen ConversationState = "open"
	// StateClosed is a conversation that is over; it may be reopened within the
	// reopen window and expires after Options.ClosedTTL.
	StateClosed ConversationState = "closed"
)

// Conversation is one exchange with a contact, across channels: a customer who
// switches from web chat to email stays in the same conversation.
//
// Every field has one owner, the only component that writes it; everyone
// else reads it and asks the owner by a command on the bus (core/event) when
// it should change. The pipeline owns the lifecycle and what the customer
// used (ID, ContactID, State, Channel, LastChannel, LastIdentity, Previous,
// MergedInto, Opens, OpenedBy, the times and Tags) and writes it with FindOrOpenConversation,
// UpdateConversation, CloseConversation and Merge; routing owns Queue,
// Priority and Assignee (and RoutingRev) and writes them with SetRouting, the
// only way to change them. A desk keeps where a conversation lives on it (a Slack thread)
// in its own records, and the ticket service its own index of tickets. A test
// in this package fails when another package calls a writer.
type Conversation struct {
	ID        string            `json:"id"`
	ContactID string            `json:"contact_id"`
	State     ConversationState `json:"state"`
	// Channel is the channel the conversation started on.
	Channel string `json:"channel,omitempty"`
	// LastChannel and LastIdentity are what the customer used last: replies go
	// there by default.
	LastChannel  string        `json:"last_channel,omitempty"`
	LastIdentity core.Identity `json:"last_identity,omitempty"`
	// Queue, Priority and Assignee are routing's (SetRouting): the queue the
	// conversation waits in, its priority and the agent it is assigned to, as
	// a desk identity.
	Assignee string `json:"assignee,omitempty"`
	Queue    string `json:"queue,omitempty"`
	Priority string `json:"priority,omitempty"`
	// RoutingRev is routing's revision of these three, for its own use (a
	// write of an older decision is told apart).
	RoutingRev int `json:"routing_rev,omitempty"`
	// Tags are the conversation's tags, sorted: the pipeline's, changed by
	// conversation.tag commands from desks (an agent's /omni tag) and
	// routing; routing rules and reports read them.
	Tags []string `json:"tags,omitempty"`
	// OpenedBy is the envelope id of the message that opened or last reopened
	// the conversation, so a redelivery of it still tells desks it opened it.
	OpenedBy string `json:"opened_by,omitempty"`
	// Previous is the contact's conversation before this one.
	Previous string `json:"previous,omitempty"`
	// MergedInto is set when MergeContacts closed this conversation because its contact was
	// merged into one that had an open conversation: that one.
	MergedInto string `json:"merged_into,omitempty"`
	// Opens counts how often the conversation was opened: 1 when new, +1 on every
	// reopen. The open index records it, which is how a half-done reopen or close
	// left by a crashed replica is told apart and finished.
	Opens         int       `json:"opens"`
	OpenedAt      time.Time `json:"opened_at,omitzero"`
	ReopenedAt    time.Time `json:"reopened_at,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
	LastMessageAt time.Time `json:"last_message_at,omitzero"`
	ClosedAt      time.Time `json:"closed_at,omitzero"`
	// Revision is the stored revision this value was read at or written with.
	Revision uint64 `json:"-"`
}

// Routing is the part of a conversation routing owns: its queue, priority and
// assignee, and routing's revision of them.
type Routing struct {
	Queue    string `json:"queue,omitempty"`
	Priority string `json:"priority,omitempty"`
	Assignee string `json:"assignee,omitempty"`
	Rev      int    `json:"rev,omitempty"`
}

func (c *Conversation) routing() Routing {
	return Routing{Queue: c.Queue, Priority: c.Priority, Assignee: c.Assignee, Rev: c.RoutingRev}
}

func (c *Conversation) setRouting(r Routing) {
	c.Queue, c.Priority, c.Assignee, c.RoutingRev = r.Queue, r.Priority, r.Assignee, r.Rev
}

// openIndex is the value under a contact's key in the open bucket. The key exists
// exactly while the contact has an open conversation; it is only ever created with
// KV.Create, so two replicas cannot both open one.
//
// The conversation record and the index are two keys, written one after the other,
// so readers finish what a writer left half done:
//   - index {X, n}, X open with Opens n: consistent.
//   - index {X, n}, X closed with Opens n-1: a reopen claimed the index but has not
//     updated X yet: readers reopen X.
//   - index {X, n}, X closed with Opens n: a close updated X but has not removed the
//     index yet: readers remove it.
//   - anything else (X gone, or Opens mismatched after a merge): stale, removed.
type openIndex struct {
	Conversation string `json:"conversation"`
	Opens        int    `json:"opens"`
}

// Conversation returns conversation id, or ErrNotFound.
func (s *Store) Conversation(ctx context.Context, id string) (*Conversation, error) {
	c, err := s.conversation(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("store: conversation %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) conversation(ctx context.Context, id string) (*Conversation, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	e, err := s.kv.Get(ctx, bucketConversations, id)
	if err != nil {
		return nil, err
	}
	c := &Conversation{}
	if err := json.Unmarshal(e.Value, c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	c.ID, c.Revision = id, e.Revision
	return c, nil
}

// CreateConversation stores c as a new conversation of c.ContactID (of its
// survivor, if it was merged). It assigns c.ID (core.NewID) when empty, State open
// when empty, and sets Opens, times and Revision. An open conversation becomes the
// contact's open one: if the contact already has one, nothing is stored and the
// error matches ErrExists. Most callers want FindOrOpenConversation instead.
func (s *Store) CreateConversation(ctx context.Context, c *Conversation) error {
	if err := s.createConversation(ctx, c); err != nil {
		return fmt.Errorf("store: create conversation %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) createConversation(ctx context.Context, c *Conversation) error {
	contact, err := s.contact(ctx, c.ContactID)
	if err != nil {
		return fmt.Errorf("contact %s: %w", c.ContactID, err)
	}
	now := s.now()
	c.ContactID = contact.ID
	if c.ID == "" {
		c.ID = core.NewID()
	}
	if c.OpenedAt.IsZero() {
		c.OpenedAt = now
	}
	c.UpdatedAt = now
	switch c.State {
	case "", StateOpen:
		c.State, c.Opens, c.ClosedAt = StateOpen, 1, time.Time{}
		return s.createOpen(ctx, c)
	case StateClosed:
		c.Opens = max(c.Opens, 1)
		if c.ClosedAt.IsZero() {
			c.ClosedAt = now
		}
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		c.Revision, err = s.kv.Create(ctx, bucketConversations, c.ID, data, s.closedTTL(c))
		return err
	default:
		return fmt.Errorf("%w state %q", ErrInvalid, c.State)
	}
}

// createOpen stores the open conversation c and then claims its contact's open
// index; if another conversation holds the index, it deletes c again and returns
// ErrExists. The record comes first so that the index never points to a
// conversation that does not exist yet.
func (s *Store) createOpen(ctx context.Context, c *Conversation) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, bucketConversations, c.ID, data, 0)
	if err != nil {
		return err
	}
	idx, _ := json.Marshal(openIndex{Conversation: c.ID, Opens: c.Opens})
	if _, err := s.kv.Create(ctx, bucketOpen, c.ContactID, idx, 0); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.kv.Delete(rctx, bucketConversations, c.ID, rev)
		cancel()
		return err
	}
	c.Revision = rev
	return nil
}

// closedTTL is how long closed conversation c has left to live: Options.ClosedTTL
// from ClosedAt, at least a millisecond once due; 0 when c is open or nothing
// expires.
func (s *Store) closedTTL(c *Conversation) time.Duration {
	if c.State != StateClosed || s.opts.ClosedTTL <= 0 {
		return 0
	}
	left := s.opts.ClosedTTL - s.now().Sub(c.ClosedAt)
	return min(max(left, time.Millisecond), s.opts.ClosedTTL)
}

// UpdateConversation changes conversation id with fn and stores it with
// compare-and-set, calling fn again on a fresh copy whenever another writer got
// there first; fn may return ErrSkip to leave it unchanged. fn must not keep c; it
// cannot change ID, ContactID, Opens or MergedInto, nor routing's Queue,
// Priority and Assignee (SetRouting changes those). Setting State to closed closes
// the conversation as CloseConversation does (ClosedAt defaults to now and
// Options.ClosedTTL applies); reopening is only done by FindOrOpenConversation, so
// setting a closed one open fails with ErrInvalid. It returns the stored value.
func (s *Store) UpdateConversation(ctx context.Context, id string, fn func(c *Conversation) error) (*Conversation, error) {
	var closed bool
	c, err := s.mutateConversation(ctx, id, func(c *Conversation) error {
		was := *c
		if err := fn(c); err != nil {
			return err
		}
		c.ID, c.ContactID, c.Opens, c.MergedInto = was.ID, was.ContactID, was.Opens, was.MergedInto
		c.setRouting(was.routing())
		switch {
		case c.State != StateOpen && c.State != StateClosed:
			return fmt.Errorf("%w state %q", ErrInvalid, c.State)
		case was.State == StateClosed && c.State == StateOpen:
			return fmt.Errorf("%w: reopen through FindOrOpenConversation", ErrInvalid)
		case was.State == StateOpen && c.State == StateClosed:
			if c.ClosedAt.IsZero() {
				c.ClosedAt = s.now()
			}
			closed = true
		}
		return nil
	})
	if err == nil && closed {
		err = s.finishClose(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("store: update conversation %s: %w", id, err)
	}
	return c, nil
}

// SetRouting changes routing's part of conversation id with fn and stores it
// with compare-and-set, calling fn again with a fresh copy whenever another
// writer got there first. fn reads the conversation as stored in c (changes to
// c are dropped) and changes r; it may return ErrSkip to leave it unchanged.
// It returns the stored conversation.
func (s *Store) SetRouting(ctx context.Context, id string, fn func(c Conversation, r *Routing) error) (*Conversation, error) {
	c, err := s.mutateConversation(ctx, id, func(c *Conversation) error {
		r := c.routing()
		if err := fn(*c, &r); err != nil {
			return err
		}
		if r == c.routing() {
			return ErrSkip
		}
		c.setRouting(r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: set routing of conversation %s: %w", id, err)
	}
	return c, nil
}

// mutateConversation is the compare-and-set loop under every conversation update.
// It sets UpdatedAt and the expiry that fits the resulting state.
func (s *Store) mutateConversation(ctx context.Context, id string, fn func(c *Conversation) error) (*Conversation, error) {
	defer s.locks.Lock(bucketConversations + "/" + id)()
	var out *Conversation
	err := casLoop(ctx, func() error {
		c, err := s.conversation(ctx, id)
		if err != nil {
			return err
		}
		rev := c.Revision
		if err := fn(c); errors.Is(err, ErrSkip) {
			out = c
			return nil
		} else if err != nil {
			return err
		}
		c.UpdatedAt = s.now()
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if c.Revision, err = s.kv.Update(ctx, bucketConversations, id, data, rev, s.closedTTL(c)); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, err
}

// CloseConversation closes conversation id at now: it stops being its contact's
// open conversation, becomes the contact's LastConversation and expires after
// Options.ClosedTTL. Closing a closed conversation changes nothing but finishes a
// close that a crash interrupted. It returns the stored conversation.
func (s *Store) CloseConversation(ctx context.Context, id string, now time.Time) (*Conversation, error) {
	c, err := s.closeConversation(ctx, id, now, "")
	if err != nil {
		return nil, fmt.Errorf("store: close conversation %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) closeConversation(ctx context.Context, id string, now time.Time, mergedInto string) (*Conversation, error) {
	c, err := s.mutateConversation(ctx, id, func(c *Conversation) error {
		if c.State == StateClosed {
			return ErrSkip
		}
		c.State, c.ClosedAt, c.MergedInto = StateClosed, now.UTC(), mergedInto
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, s.finishClose(ctx, c)
}

// finishClose runs the steps of a close after the record says closed, each safe to
// repeat: remove the contact's open index if it still points to c as open, then
// make c the contact's LastConversation (unless a merge closed it, or the contact
// already points to a later conversation: IDs are ULIDs and sort by time).
func (s *Store) finishClose(ctx context.Context, c *Conversation) error {
	err := casLoop(ctx, func() error {
		e, err := s.kv.Get(ctx, bucketOpen, c.ContactID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var idx openIndex
		if err := json.Unmarshal(e.Value, &idx); err != nil || idx.Conversation != c.ID || idx.Opens != c.Opens {
			return nil // another conversation, or a reopen of c already claimed the index
		}
		return s.kv.Delete(ctx, bucketOpen, c.ContactID, e.Revision)
	})
	if err != nil || c.MergedInto != "" {
		return err
	}
	_, err = s.updateContact(ctx, c.ContactID, func(ct *Contact) error {
		if ct.LastConversation >= c.ID {
			return ErrSkip
		}
		ct.LastConversation = c.ID
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil // the contact is gone: nothing to point from
	}
	return err
}

// OpenConversation returns the open conversation of contactID (of its survivor, if
// it was merged), or ErrNotFound.
func (s *Store) OpenConversation(ctx context.Context, contactID string) (*Conversation, error) {
	c, err := s.openConversation(ctx, contactID)
	if errors.Is(err, ErrNotFound) {
		var ct *Contact
		if ct, err = s.contact(ctx, contactID); err == nil {
			if ct.ID == contactID {
				err = ErrNotFound
			} else {
				c, err = s.openConversation(ctx, ct.ID)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open conversation of contact %s: %w", contactID, err)
	}
	return c, nil
}

// openConversation reads contactID's open index and returns its conversation,
// finishing a half-done reopen or close it finds (see openIndex).
func (s *Store) openConversation(ctx context.Context, contactID string) (*Conversation, error) {
	if contactID == "" {
		return nil, ErrNotFound
	}
	var out *Conversation
	err := casLoop(ctx, func() error {
		e, err := s.kv.Get(ctx, bucketOpen, contactID)
		if err != nil {
			return err
		}
		var idx openIndex
		if err := json.Unmarshal(e.Value, &idx); err != nil {
			return fmt.Errorf("decode open index: %w", err)
		}
		c, err := s.conversation(ctx, idx.Conversation)
		switch {
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		case err == nil && c.State == StateOpen && c.Opens == idx.Opens:
			out = c
			return nil
		case err == nil && c.State == StateClosed && c.Opens == idx.Opens-1:
			if _, err := s.reopen(ctx, c.ID, contactID, idx.Opens, s.now()); err != nil {
				return err
			}
			return ErrConflict // read again
		}
		if err := s.kv.Delete(ctx, bucketOpen, contactID, e.Revision); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
		return ErrConflict
	})
	return out, err
}

// reopen turns conversation id, closed with Opens == opens-1, into contactID's open
// conversation with Opens == opens. The open index must already be claimed. If the
// conversation is not in that state any more, it is returned unchanged.
func (s *Store) reopen(ctx context.Context, id, contactID string, opens int, now time.Time) (*Conversation, error) {
	return s.mutateConversation(ctx, id, func(c *Conversation) error {
		if c.State != StateClosed || c.Opens != opens-1 {
			return ErrSkip
		}
		c.State, c.Opens, c.ContactID = StateOpen, opens, contactID
		c.ClosedAt, c.ReopenedAt = time.Time{}, now.UTC()
		return nil
	})
}

// FindOrOpenConversation returns the conversation a new message of contactID
// belongs to (contactID's survivor, if it was merged):
//   - the open conversation, if there is one (opened false);
//   - else the contact's LastConversation reopened, if it closed within
//     reopenWindow before now and was not closed by a merge (opened true,
//     ReopenedAt == now, desk references kept);
//   - else a new conversation with Previous = LastConversation, filled by init
//     (which may set anything but ID, ContactID, State and the times) before it is
//     stored (opened true, Opens == 1).
//
// However many replicas race, a contact ends with exactly one open conversation and
// exactly one caller gets opened true for it.
func (s *Store) FindOrOpenConversation(ctx context.Context, contactID string, reopenWindow time.Duration, now time.Time, init func(c *Conversation)) (conv *Conversation, opened bool, err error) {
	now = now.UTC()
	defer s.locks.Lock(bucketOpen + "/" + contactID)()
	err = casLoop(ctx, func() error {
		c, err := s.openConversation(ctx, contactID)
		if err == nil {
			conv, opened = c, false
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		contact, err := s.contact(ctx, contactID)
		if err != nil {
			return fmt.Errorf("contact: %w", err)
		}
		if contact.ID != contactID {
			contactID = contact.ID // merged: start over with the survivor
			return ErrConflict
		}
		if reopenWindow > 0 && contact.LastConversation != "" {
			last, err := s.conversation(ctx, contact.LastConversation)
			switch {
			case errors.Is(err, ErrNotFound): // expired: open a new one
			case err != nil:
				return err
			case last.State == StateClosed && last.MergedInto == "" && !now.After(last.ClosedAt.Add(reopenWindow)):
				opens := last.Opens + 1
				idx, _ := json.Marshal(openIndex{Conversation: last.ID, Opens: opens})
				if _, err := s.kv.Create(ctx, bucketOpen, contactID, idx, 0); err != nil {
					if errors.Is(err, ErrExists) {
						return ErrConflict // someone opened one meanwhile: read it
					}
					return err
				}
				c, err := s.reopen(ctx, last.ID, contactID, opens, now)
				if err != nil {
					return err
				}
				if c.State != StateOpen || c.Opens != opens {
					return ErrConflict // it changed under us; readers clean the index up
				}
				conv, opened = c, true
				return nil
			}
		}
		c = &Conversation{}
		if init != nil {
			init(c)
		}
		c.ID, c.ContactID, c.State, c.Opens = core.NewID(), contactID, StateOpen, 1
		c.Previous, c.MergedInto = contact.LastConversation, ""
		c.OpenedAt, c.UpdatedAt, c.ReopenedAt, c.ClosedAt = now, now, time.Time{}, time.Time{}
		if err := s.createOpen(ctx, c); err != nil {
			if errors.Is(err, ErrExists) {
				return ErrConflict // another replica opened one first: read it
			}
			return err
		}
		conv, opened = c, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: find or open conversation of contact %s: %w", contactID, err)
	}
	return conv, opened, nil
}
