package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnigate/omnigate/core"
)

// Contact is one customer, whatever the channels they write on. Its identities are
// indexed in the store, so ContactByIdentity finds it; Identities is the list of
// those the contact holds.
type Contact struct {
	ID         string            `json:"id"`
	Name       string            `json:"name,omitempty"`
	Email      string            `json:"email,omitempty"`
	Phone      string            `json:"phone,omitempty"`
	Identities []core.Identity   `json:"identities,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	// Unreachable holds the identities that cannot be reached now, as their
	// channels said (a block, an opt-out, a bounce): replies go to another
	// identity of the contact. An identity leaves it when the customer writes
	// from it or opts in again.
	Unreachable map[core.Identity]Unreachability `json:"unreachable,omitempty"`
	// MergedInto is the contact this one was merged into; Contact and
	// UpdateContact follow it to the survivor.
	MergedInto string `json:"merged_into,omitempty"`
	// LastConversation is the contact's most recently closed conversation, the
	// one FindOrOpenConversation may reopen and a new one points back to.
	LastConversation string    `json:"last_conversation,omitempty"`
	CreatedAt        time.Time `json:"created_at,omitzero"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
	// Revision is the stored revision this value was read at or written with.
	Revision uint64 `json:"-"`
}

// Unreachability says why, and since when, an identity cannot be reached.
type Unreachability struct {
	// Reason is an event.Reason* value (blocked, bounced, opted_out, ...).
	Reason string `json:"reason"`
	// Detail is the provider's words.
	Detail string `json:"detail,omitempty"`
	// Since is when the channel said so.
	Since time.Time `json:"since"`
}

// maxMergeChain bounds how many MergedInto links Contact follows.
const maxMergeChain = 32

// Contact returns the contact id, following MergedInto to the surviving contact
// (whose ID then differs from id). ErrNotFound if there is none.
func (s *Store) Contact(ctx context.Context, id string) (*Contact, error) {
	c, err := s.contact(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("store: contact %s: %w", id, err)
	}
	return c, nil
}

// contact is Contact without the error context.
func (s *Store) contact(ctx context.Context, id string) (*Contact, error) {
	for range maxMergeChain {
		c, err := s.rawContact(ctx, id)
		if err != nil {
			return nil, err
		}
		if c.MergedInto == "" {
			return c, nil
		}
		id = c.MergedInto
	}
	return nil, fmt.Errorf("merge chain longer than %d", maxMergeChain)
}

// rawContact reads one contact record without following MergedInto.
func (s *Store) rawContact(ctx context.Context, id string) (*Contact, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	e, err := s.kv.Get(ctx, bucketContacts, id)
	if err != nil {
		return nil, err
	}
	c := &Contact{}
	if err := json.Unmarshal(e.Value, c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	c.ID, c.Revision = id, e.Revision
	return c, nil
}

// CreateContact stores c as a new contact and links every identity in
// c.Identities to it. It assigns c.ID (core.NewID) when empty and sets CreatedAt,
// UpdatedAt and Revision. If an identity already belongs to another contact,
// nothing is stored and the error matches ErrExists (and is an *IdentityTakenError);
// an existing c.ID also gives ErrExists.
func (s *Store) CreateContact(ctx context.Context, c *Contact) error {
	if _, err := s.createContact(ctx, c); err != nil {
		return fmt.Errorf("store: create contact %s: %w", c.ID, err)
	}
	return nil
}

// IdentityTakenError is returned by CreateContact when one of the new contact's
// identities belongs to another contact. It matches ErrExists.
type IdentityTakenError struct {
	Identity core.Identity
	Owner    string // the contact holding Identity
}

// Error reports the channel of the identity and its owner, never the address:
// addresses are personal data and errors end up in logs.
func (e *IdentityTakenError) Error() string {
	return fmt.Sprintf("%s identity belongs to contact %s: %v", e.Identity.Channel(), e.Owner, ErrExists)
}

// Is makes IdentityTakenError match ErrExists.
func (e *IdentityTakenError) Is(target error) bool { return target == ErrExists }

// createContact writes the record first and then claims the identities, in sorted
// order so that two creators with overlapping identities fail fast on the same
// one. A record is never indexed before it exists, so an identity pointing to a
// missing contact is always stale. On a taken identity the claims made so far and
// the record are removed, in that order.
func (s *Store) createContact(ctx context.Context, c *Contact) (*IdentityTakenError, error) {
	if c.ID == "" {
		c.ID = core.NewID()
	}
	now := s.now()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	c.MergedInto = ""
	c.Identities = uniqueIdentities(c.Identities)
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	rev, err := s.kv.Create(ctx, bucketContacts, c.ID, data, 0)
	if err != nil {
		return nil, err
	}
	claims := slices.Clone(c.Identities)
	slices.Sort(claims)
	var claimed []Entry
	for _, id := range claims {
		owner, e, err := s.claimIdentity(ctx, id, c.ID)
		if err == nil && owner == c.ID {
			claimed = append(claimed, e)
			continue
		}
		// Roll back with a fresh context: a cancelled ctx must not leave half a contact.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		for _, e := range claimed {
			_ = s.kv.Delete(rctx, bucketIdentities, e.Key, e.Revision)
		}
		_ = s.kv.Delete(rctx, bucketContacts, c.ID, rev)
		cancel()
		if err != nil {
			return nil, err
		}
		taken := &IdentityTakenError{Identity: id, Owner: owner}
		return taken, taken
	}
	c.Revision = rev
	return nil, nil
}

// claimIdentity makes id point to contactID if it points nowhere yet (or to a
// contact that no longer exists). It returns the owner afterwards: contactID on
// success, else the surviving contact that holds id. e is the index entry when
// contactID owns it.
func (s *Store) claimIdentity(ctx context.Context, id core.Identity, contactID string) (owner string, e Entry, err error) {
	err = casLoop(ctx, func() error {
		rev, err := s.kv.Create(ctx, bucketIdentities, string(id), []byte(contactID), 0)
		if err == nil {
			owner, e = contactID, Entry{Key: string(id), Value: []byte(contactID), Revision: rev}
			return nil
		}
		if !errors.Is(err, ErrExists) {
			return err
		}
		cur, err := s.kv.Get(ctx, bucketIdentities, string(id))
		if errors.Is(err, ErrNotFound) {
			return ErrConflict // deleted meanwhile: try creating again
		}
		if err != nil {
			return err
		}
		if string(cur.Value) == contactID {
			owner, e = contactID, cur
			return nil
		}
		c, err := s.contact(ctx, string(cur.Value))
		if errors.Is(err, ErrNotFound) {
			// Stale index (its contact is gone): drop it and claim again.
			if err := s.kv.Delete(ctx, bucketIdentities, string(id), cur.Revision); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
			return ErrConflict
		}
		if err != nil {
			return err
		}
		owner, e = c.ID, cur
		return nil
	})
	return owner, e, err
}

// UpdateContact changes contact id with fn and stores it with compare-and-set,
// calling fn again on a fresh copy whenever another writer got there first. It
// follows MergedInto, so fn always sees (and changes) the surviving contact. fn
// must not keep c; it cannot change ID, MergedInto or Identities (identities are
// indexed: add them with LinkIdentity, join contacts with Merge). fn may return
// ErrSkip to leave the contact unchanged; any other error aborts the update and is
// returned wrapped. UpdateContact returns the stored contact.
func (s *Store) UpdateContact(ctx context.Context, id string, fn func(c *Contact) error) (*Contact, error) {
	c, err := s.updateContact(ctx, id, func(c *Contact) error {
		ids := slices.Clone(c.Identities)
		err := fn(c)
		c.Identities = ids
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: update contact %s: %w", id, err)
	}
	return c, nil
}

// updateContact is UpdateContact without the error context.
func (s *Store) updateContact(ctx context.Context, id string, fn func(c *Contact) error) (*Contact, error) {
	defer s.locks.Lock(bucketContacts + "/" + id)()
	var out *Contact
	err := casLoop(ctx, func() error {
		c, err := s.contact(ctx, id)
		if err != nil {
			return err
		}
		cid, rev := c.ID, c.Revision
		if err := fn(c); errors.Is(err, ErrSkip) {
			out = c
			return nil
		} else if err != nil {
			return err
		}
		c.ID, c.MergedInto, c.UpdatedAt = cid, "", s.now()
		c.Identities = uniqueIdentities(c.Identities)
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if c.Revision, err = s.kv.Update(ctx, bucketContacts, cid, data, rev, 0); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, err
}

// ContactByIdentity returns the contact that holds id (the survivor, if it was
// merged), or ErrNotFound.
func (s *Store) ContactByIdentity(ctx context.Context, id core.Identity) (*Contact, error) {
	c, _, err := s.contactByIdentity(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("store: contact by %s identity: %w", id.Channel(), err)
	}
	return c, nil
}

// contactByIdentity also returns the index entry, whose contact may be stale
// (ErrNotFound from the contact with a valid entry).
func (s *Store) contactByIdentity(ctx context.Context, id core.Identity) (*Contact, Entry, error) {
	e, err := s.kv.Get(ctx, bucketIdentities, string(id))
	if err != nil {
		return nil, Entry{}, err
	}
	c, err := s.contact(ctx, string(e.Value))
	return c, e, err
}

// LinkIdentity gives id to contactID (or to its survivor, if it was merged) when
// no contact holds id yet, and adds it to the contact's Identities. It returns the
// contact that holds id afterwards: the survivor of contactID when the link was made
// or already existed; another contact when that one holds id, in which case nothing
// changes and the caller decides whether to Merge. ErrNotFound if contactID does
// not exist.
func (s *Store) LinkIdentity(ctx context.Context, id core.Identity, contactID string) (owner string, err error) {
	owner, err = s.linkIdentity(ctx, id, contactID)
	if err != nil {
		return "", fmt.Errorf("store: link %s identity to contact %s: %w", id.Channel(), contactID, err)
	}
	return owner, nil
}

func (s *Store) linkIdentity(ctx context.Context, id core.Identity, contactID string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w identity: empty", ErrInvalid)
	}
	c, err := s.contact(ctx, contactID)
	if err != nil {
		return "", err
	}
	owner, _, err := s.claimIdentity(ctx, id, c.ID)
	if err != nil || owner != c.ID {
		return owner, err
	}
	_, err = s.updateContact(ctx, c.ID, func(c *Contact) error {
		if slices.Contains(c.Identities, id) {
			return ErrSkip
		}
		c.Identities = append(c.Identities, id)
		return nil
	})
	return owner, err
}

// ResolveContact returns the contact that holds id, creating one when there is
// none: seed (may be nil) fills the new contact before it is stored, which holds
// id and any identities seed adds. created reports whether this call made it.
// Replicas racing on the same new identity end with one contact: the one whose
// claim on id lands first; the others return it with created false. If an
// identity seed added belongs to another contact, nothing is created and the
// error is an *IdentityTakenError.
func (s *Store) ResolveContact(ctx context.Context, id core.Identity, seed func(c *Contact)) (c *Contact, created bool, err error) {
	c, created, err = s.resolveContact(ctx, id, seed)
	if err != nil {
		return nil, false, fmt.Errorf("store: resolve contact by %s identity: %w", id.Channel(), err)
	}
	return c, created, nil
}

func (s *Store) resolveContact(ctx context.Context, id core.Identity, seed func(c *Contact)) (*Contact, bool, error) {
	if id == "" {
		return nil, false, fmt.Errorf("%w identity: empty", ErrInvalid)
	}
	defer s.locks.Lock(bucketIdentities + "/" + string(id))()
	var (
		out     *Contact
		created bool
	)
	err := casLoop(ctx, func() error {
		c, e, err := s.contactByIdentity(ctx, id)
		if err == nil {
			out = c
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if e.Revision != 0 {
			// The index points to a contact that is gone: drop it and start over.
			if err := s.kv.Delete(ctx, bucketIdentities, string(id), e.Revision); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
			return ErrConflict
		}
		c = &Contact{}
		if seed != nil {
			seed(c)
		}
		c.ID, c.Revision = "", 0
		c.Identities = append([]core.Identity{id}, c.Identities...)
		taken, err := s.createContact(ctx, c)
		if taken != nil && taken.Identity == id {
			return ErrConflict // another replica won the race: read its contact
		}
		if err != nil {
			return err
		}
		out, created = c, true
		return nil
	})
	return out, created, err
}

// uniqueIdentities drops empty and repeated identities, keeping the first of each.
func uniqueIdentities(ids []core.Identity) []core.Identity {
	var out []core.Identity
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
