package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Page sizes of ListConversations.
const (
	// DefaultListLimit is the page size when Limit is 0 or less.
	DefaultListLimit = 50
	// MaxListLimit is the largest page; larger limits are cut to it.
	MaxListLimit = 500
)

// ConversationFilter selects the conversations ListConversations returns.
// Zero fields select everything.
type ConversationFilter struct {
	// State is open or closed.
	State ConversationState
	// Channel matches the channel a conversation started on or was used last.
	Channel string
	// Queue is routing's queue.
	Queue string
	// ContactID lists one contact's conversations (of its survivor, if it
	// was merged): its open one and its earlier ones, newest first.
	ContactID string
	// Tag keeps the conversations of contacts that have this tag.
	Tag string
	// UpdatedSince keeps conversations updated at or after it.
	UpdatedSince time.Time
	// Before is the cursor: only conversations whose id sorts before it, that
	// is, opened before it (ids are time-ordered). "" starts at the newest.
	Before string
	// Limit is the page size: DefaultListLimit when 0 or less, at most
	// MaxListLimit.
	Limit int
}

// ListConversations returns the conversations that match f, newest first
// (by id, which is the time a conversation was opened), up to f.Limit, and
// the Before of the next page ("" when this page is the last).
//
// It needs no index of its own: one contact's conversations are its open
// conversation and the chain of Previous links from its last one; open
// conversations are the open index (one key per contact that has one);
// anything else reads the conversation keys. It then reads the
// conversations one by one, newest first, until the page is full: meant for
// admin and integrator reads, not the hot path. A filter that matches few of
// many conversations reads many; the API says so (docs/api.md).
func (s *Store) ListConversations(ctx context.Context, f ConversationFilter) (convs []*Conversation, next string, err error) {
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	f.Limit = min(f.Limit, MaxListLimit)
	var ids []string
	switch {
	case f.ContactID != "":
		ids, err = s.contactConversations(ctx, f.ContactID)
	case f.State == StateOpen:
		ids, err = s.openConversationIDs(ctx)
	default:
		ids, err = s.kv.Keys(ctx, bucketConversations, "")
	}
	if err != nil {
		return nil, "", fmt.Errorf("store: list conversations: %w", err)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	// Newest first, below the cursor.
	end := len(ids)
	if f.Before != "" {
		end, _ = slices.BinarySearch(ids, f.Before)
	}
	tagged := map[string]bool{} // contact id -> has f.Tag
	for i := end - 1; i >= 0; i-- {
		c, err := s.conversation(ctx, ids[i])
		if errors.Is(err, ErrNotFound) {
			continue // expired or merged away meanwhile
		} else if err != nil {
			return convs, "", fmt.Errorf("store: list conversations: %w", err)
		}
		if !f.match(c) {
			continue
		}
		if f.Tag != "" {
			has, ok := tagged[c.ContactID]
			if !ok {
				ct, err := s.contact(ctx, c.ContactID)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return convs, "", fmt.Errorf("store: list conversations: %w", err)
				}
				has = err == nil && slices.Contains(ct.Tags, f.Tag)
				tagged[c.ContactID] = has
			}
			if !has {
				continue
			}
		}
		if len(convs) == f.Limit {
			return convs, convs[len(convs)-1].ID, nil
		}
		convs = append(convs, c)
	}
	return convs, "", nil
}

// match reports whether c passes every field of f but the cursor.
func (f *ConversationFilter) match(c *Conversation) bool {
	switch {
	case f.State != "" && c.State != f.State:
		return false
	case f.Channel != "" && c.Channel != f.Channel && c.LastChannel != f.Channel:
		return false
	case f.Queue != "" && c.Queue != f.Queue:
		return false
	case !f.UpdatedSince.IsZero() && c.UpdatedAt.Before(f.UpdatedSince):
		return false
	}
	return true
}

// maxContactConversations bounds the Previous chain ContactConversations
// follows, so a cycle left by a bug cannot loop.
const maxContactConversations = 10000

// contactConversations returns the ids of contactID's conversations: its
// open one and the chain of Previous links from it, or from its last closed
// one.
func (s *Store) contactConversations(ctx context.Context, contactID string) ([]string, error) {
	ct, err := s.contact(ctx, contactID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	follow := func(id string) error {
		for id != "" && !seen[id] && len(ids) < maxContactConversations {
			seen[id] = true
			c, err := s.conversation(ctx, id)
			if errors.Is(err, ErrNotFound) {
				return nil // the older ones expired (store.closed_ttl)
			} else if err != nil {
				return err
			}
			ids = append(ids, id)
			id = c.Previous
		}
		return nil
	}
	if open, err := s.openConversation(ctx, ct.ID); err == nil {
		if err := follow(open.ID); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return ids, follow(ct.LastConversation)
}

// openConversationIDs returns the conversations the open index names.
func (s *Store) openConversationIDs(ctx context.Context) ([]string, error) {
	keys, err := s.kv.Keys(ctx, bucketOpen, "")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		e, err := s.kv.Get(ctx, bucketOpen, k)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		var idx openIndex
		if json.Unmarshal(e.Value, &idx) == nil && strings.TrimSpace(idx.Conversation) != "" {
			ids = append(ids, idx.Conversation)
		}
	}
	return ids, nil
}
