package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/omnigate/omnigate/core"
)

// MergeResult says what Merge did, so the pipeline can tell the agent desks.
type MergeResult struct {
	// Contact is the surviving contact after the merge.
	Contact *Contact
	// From is the contact merged away; it now has MergedInto == Contact.ID.
	From string
	// Open is the survivor's open conversation after the merge, or nil.
	Open *Conversation
	// Closed is the merged contact's open conversation when the survivor had one
	// too: it is closed with MergedInto == Open.ID, and its desk thread should say
	// that the conversation continues in Open's. Nil otherwise.
	Closed *Conversation
	// Moved is true when the merged contact's open conversation became the
	// survivor's (it is Open, with ContactID changed) because the survivor had none:
	// its desk thread simply continues.
	Moved bool
}

// MergeContacts merges contact from into contact into (their survivors, if either was
// merged before): from's identities point to into, into gains from's identities,
// tags, and the attributes and fields it does not have itself (into wins on
// conflicts), and from gets MergedInto = into, so every later lookup of from
// lands on into. Open conversations are handled as MergeResult describes.
//
// Each step can be repeated, so calling Merge again after an error finishes the
// job; merging contacts that are already one returns the survivor. Merging a contact
// into itself fails with ErrInvalid.
func (s *Store) MergeContacts(ctx context.Context, from, into string) (*MergeResult, error) {
	r, err := s.merge(ctx, from, into)
	if err != nil {
		return nil, fmt.Errorf("store: merge contact %s into %s: %w", from, into, err)
	}
	return r, nil
}

func (s *Store) merge(ctx context.Context, from, into string) (*MergeResult, error) {
	if from == into {
		return nil, fmt.Errorf("%w: merge into itself", ErrInvalid)
	}
	var f *Contact // the merged contact, as frozen by the merge
	var t *Contact // the survivor
	err := casLoop(ctx, func() error {
		var err error
		if t, err = s.contact(ctx, into); err != nil {
			return fmt.Errorf("contact %s: %w", into, err)
		}
		if f, err = s.contact(ctx, from); err != nil {
			return fmt.Errorf("contact %s: %w", from, err)
		}
		if f.ID == t.ID {
			// Already merged (maybe by an earlier, interrupted call): finish the job
			// with from's own record.
			if f, err = s.rawContact(ctx, from); err != nil {
				return fmt.Errorf("contact %s: %w", from, err)
			}
			return nil
		}
		f.MergedInto = t.ID
		f.UpdatedAt = s.now()
		data, err := json.Marshal(f)
		if err != nil {
			return err
		}
		f.Revision, err = s.kv.Update(ctx, bucketContacts, f.ID, data, f.Revision, 0)
		return err // on conflict: read both again, from may have been merged meanwhile
	})
	if err != nil {
		return nil, err
	}
	res := &MergeResult{From: f.ID}
	if f.ID == t.ID {
		// from is the survivor itself (into was merged into from before).
		res.Contact = t
		if res.Open, err = s.openConversation(ctx, t.ID); errors.Is(err, ErrNotFound) {
			err = nil
		}
		return res, err
	}

	// Point from's identities to the survivor. An identity linked to from while we
	// run still resolves through MergedInto.
	for _, id := range f.Identities {
		err := casLoop(ctx, func() error {
			e, err := s.kv.Get(ctx, bucketIdentities, string(id))
			if errors.Is(err, ErrNotFound) || err == nil && string(e.Value) != f.ID {
				return nil
			}
			if err != nil {
				return err
			}
			_, err = s.kv.Update(ctx, bucketIdentities, string(id), []byte(t.ID), e.Revision, 0)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("move %s identity: %w", id.Channel(), err)
		}
	}

	if res.Contact, err = s.updateContact(ctx, t.ID, func(c *Contact) error {
		return mergeInto(c, f)
	}); err != nil {
		return nil, err
	}

	if err := casLoop(ctx, func() error { return s.mergeConversations(ctx, f.ID, t.ID, res) }); err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	return res, nil
}

// mergeInto adds what f has and c lacks to c, or returns ErrSkip if that is nothing.
func mergeInto(c, f *Contact) error {
	before, _ := json.Marshal(c)
	c.Identities = uniqueIdentities(append(c.Identities, f.Identities...))
	for id, u := range f.Unreachable {
		if _, ok := c.Unreachable[id]; !ok {
			if c.Unreachable == nil {
				c.Unreachable = map[core.Identity]Unreachability{}
			}
			c.Unreachable[id] = u
		}
	}
	for _, t := range f.Tags {
		if !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	if len(f.Attributes) > 0 {
		a := maps.Clone(f.Attributes)
		maps.Copy(a, c.Attributes)
		c.Attributes = a
	}
	for _, p := range [][2]*string{{&c.Name, &f.Name}, {&c.Email, &f.Email}, {&c.Phone, &f.Phone}, {&c.LastConversation, &f.LastConversation}} {
		if *p[0] == "" {
			*p[0] = *p[1]
		}
	}
	if !f.CreatedAt.IsZero() && f.CreatedAt.Before(c.CreatedAt) {
		c.CreatedAt = f.CreatedAt
	}
	if after, _ := json.Marshal(c); string(before) == string(after) {
		return ErrSkip
	}
	return nil
}

// mergeConversations settles the open conversations of from and into (see
// MergeResult). It returns ErrConflict when into got an open conversation while it
// was moving from's, to run again and close from's instead.
func (s *Store) mergeConversations(ctx context.Context, from, into string, res *MergeResult) error {
	fo, err := s.openConversation(ctx, from)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	to, err := s.openConversation(ctx, into)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	res.Open = to
	switch {
	case fo == nil:
		return nil
	case to == nil:
		// Move: claim into's index for fo, then re-own fo, then drop from's index.
		idx, _ := json.Marshal(openIndex{Conversation: fo.ID, Opens: fo.Opens})
		if _, err := s.kv.Create(ctx, bucketOpen, into, idx, 0); err != nil {
			if errors.Is(err, ErrExists) {
				return ErrConflict
			}
			return err
		}
	case to.ID != fo.ID:
		res.Closed, err = s.closeConversation(ctx, fo.ID, s.now(), to.ID)
		return err
	}
	// fo is into's open conversation now (or already was, when an earlier call was
	// interrupted mid-move): finish the move.
	moved, err := s.mutateConversation(ctx, fo.ID, func(c *Conversation) error {
		if c.ContactID == into {
			return ErrSkip
		}
		c.ContactID = into
		return nil
	})
	if err != nil {
		return err
	}
	e, err := s.kv.Get(ctx, bucketOpen, from)
	if err == nil {
		var old openIndex
		if json.Unmarshal(e.Value, &old) == nil && old.Conversation == fo.ID {
			if err := s.kv.Delete(ctx, bucketOpen, from, e.Revision); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	res.Open, res.Moved = moved, true
	return nil
}
