package tickets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Filter selects tickets for List. Zero fields match everything.
type Filter struct {
	// Status matches any of these statuses.
	Status []Status
	// Assignee matches exactly; "none" matches unassigned tickets.
	Assignee string
	// Tag matches tickets with this tag.
	Tag string
	// Query matches, case-insensitively, a substring of the subject, the
	// description, the requester's name, email or phone, or a field value.
	Query string
	// Requester matches the requester's contact id.
	Requester string
	// Conversation matches tickets linked to this conversation.
	Conversation string
	// Before lists tickets numbered below it (the next page's cursor); 0 starts
	// at the newest.
	Before int64
	// Limit is the most tickets returned: default 50, at most 500.
	Limit int
}

// Page sizes of List.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// listWorkers is how many tickets List reads at once.
const listWorkers = 16

// List returns the tickets f matches, newest (highest number) first, without
// their logs, and the cursor of the next page (0 when this was the last). It
// reads ticket records one by one: meant for the admin API, not hot paths.
func (s *Service) List(ctx context.Context, f Filter) ([]*Ticket, int64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var ns []int64
	var err error
	switch {
	case f.Conversation != "":
		ns, err = s.repo.numbers(ctx, convKey(f.Conversation))
		slices.Sort(ns)
	default:
		ns, err = s.repo.ticketNumbers(ctx)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("tickets: list: %w", err)
	}
	if f.Before > 0 {
		i, _ := slices.BinarySearch(ns, f.Before)
		ns = ns[:i]
	}
	slices.Reverse(ns)
	q := strings.ToLower(strings.TrimSpace(f.Query))
	var out []*Ticket
	for len(ns) > 0 && len(out) <= limit {
		batch := ns[:min(len(ns), listWorkers)]
		ns = ns[len(batch):]
		got := make([]*Ticket, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, n := range batch {
			wg.Go(func() { got[i], errs[i] = s.repo.get(ctx, n) })
		}
		wg.Wait()
		for i, t := range got {
			if errs[i] != nil {
				if isNotFound(errs[i]) {
					continue
				}
				return nil, 0, fmt.Errorf("tickets: list: %w", errs[i])
			}
			if f.matches(t, q) {
				out = append(out, t.summary())
			}
		}
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Number
	}
	return out, next, nil
}

// matches reports whether t passes f; q is the lower-cased query.
func (f *Filter) matches(t *Ticket, q string) bool {
	switch {
	case len(f.Status) > 0 && !slices.Contains(f.Status, t.Status):
		return false
	case f.Assignee == "none" && t.Assignee != "":
		return false
	case f.Assignee != "" && f.Assignee != "none" && t.Assignee != f.Assignee:
		return false
	case f.Tag != "" && !slices.Contains(t.Tags, strings.ToLower(f.Tag)):
		return false
	case f.Requester != "" && t.Requester.ContactID != f.Requester:
		return false
	case f.Conversation != "" && !slices.Contains(t.Conversations, f.Conversation):
		return false
	}
	if q == "" {
		return true
	}
	texts := []string{t.Subject, t.Description, t.Requester.Name, t.Requester.Email, t.Requester.Phone}
	for _, v := range t.Fields {
		texts = append(texts, v)
	}
	for _, s := range texts {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}
