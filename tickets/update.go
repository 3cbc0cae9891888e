package tickets

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Patch is a change to a ticket: nil fields are left as they are.
type Patch struct {
	Status   *Status   `json:"status,omitempty"`
	Priority *Priority `json:"priority,omitempty"`
	// Assignee "" unassigns.
	Assignee *string `json:"assignee,omitempty"`
	Subject  *string `json:"subject,omitempty"`
	// Tags replaces the tags; AddTags and RemoveTags change them.
	Tags       *[]string `json:"tags,omitempty"`
	AddTags    []string  `json:"add_tags,omitempty"`
	RemoveTags []string  `json:"remove_tags,omitempty"`
	// Fields sets custom fields; a nil value removes the field.
	Fields map[string]*string `json:"fields,omitempty"`
	// DueAt sets the due date; the zero time clears it.
	DueAt *time.Time `json:"due_at,omitempty"`
	// Comment adds a comment, logged as an event of its own.
	Comment *Comment `json:"comment,omitempty"`
	// Conversation links one more conversation.
	Conversation string `json:"conversation_id,omitempty"`

	// Actor is who makes the change, for the log ("slack:U123", "api").
	Actor string `json:"actor,omitempty"`
	// Source is the bridge the change comes from, which is then not told.
	Source string `json:"-"`
	// Ref identifies the request: a patch with a Ref already in the log is not
	// applied again.
	Ref string `json:"-"`
}

// Update applies p to ticket number and returns the ticket as stored. A status
// change the lifecycle does not allow fails with a *TransitionError (matching
// ErrInvalidTransition) and changes nothing; bad values fail with ErrInvalid; a
// missing ticket with ErrNotFound. A patch that changes nothing writes nothing.
func (s *Service) Update(ctx context.Context, number int64, p Patch) (*Ticket, error) {
	if err := s.checkPatch(&p); err != nil {
		return nil, err
	}
	t, _, err := s.mutate(ctx, number, func(t *Ticket, now time.Time) ([]Event, error) {
		if t.hasRef(p.Ref) {
			return nil, nil
		}
		return s.applyPatch(t, p, now)
	})
	if err != nil {
		return nil, fmt.Errorf("tickets: update #%d: %w", number, err)
	}
	return t, nil
}

// Comment adds a comment to ticket number.
func (s *Service) Comment(ctx context.Context, number int64, c Comment, actor string) (*Ticket, error) {
	return s.Update(ctx, number, Patch{Comment: &c, Actor: actor})
}

// Get returns ticket number, with its log; ErrNotFound if there is none.
func (s *Service) Get(ctx context.Context, number int64) (*Ticket, error) {
	t, err := s.repo.get(ctx, number)
	if err != nil {
		return nil, fmt.Errorf("tickets: get: %w", err)
	}
	return t, nil
}

// ByExternal returns the ticket a bridge knows by its id.
func (s *Service) ByExternal(ctx context.Context, bridge, id string) (*Ticket, error) {
	n, err := s.repo.byExternal(ctx, bridge, id)
	if err != nil {
		return nil, fmt.Errorf("tickets: by external id: %w", err)
	}
	return s.Get(ctx, n)
}

// checkPatch validates and normalizes p's values.
func (s *Service) checkPatch(p *Patch) error {
	if p.Status != nil {
		st, err := ParseStatus(string(*p.Status))
		if err != nil {
			return err
		}
		p.Status = &st
	}
	if p.Priority != nil {
		pr, err := ParsePriority(string(*p.Priority))
		if err != nil {
			return err
		}
		p.Priority = &pr
	}
	if p.Subject != nil {
		sub := strings.TrimSpace(*p.Subject)
		if sub == "" {
			return fmt.Errorf("%w: subject: empty", ErrInvalid)
		}
		sub = firstLine(sub, MaxSubjectRunes)
		p.Subject = &sub
	}
	if p.Assignee != nil {
		a := strings.TrimSpace(*p.Assignee)
		if err := checkText("assignee", a, MaxAssigneeBytes); err != nil {
			return err
		}
		p.Assignee = &a
	}
	if p.Tags != nil {
		tags, err := normTags(*p.Tags)
		if err != nil {
			return err
		}
		p.Tags = &tags
	}
	var err error
	if p.AddTags, err = normTags(p.AddTags); err != nil {
		return err
	}
	if p.RemoveTags, err = normTags(p.RemoveTags); err != nil {
		return err
	}
	set := map[string]string{}
	for k, v := range p.Fields {
		if v != nil {
			set[k] = *v
		} else if k == "" {
			return fmt.Errorf("%w: empty field name", ErrInvalid)
		}
	}
	if err := checkFields(set); err != nil {
		return err
	}
	if c := p.Comment; c != nil {
		c.Body = strings.TrimSpace(c.Body)
		if c.Body == "" {
			return fmt.Errorf("%w: comment: empty", ErrInvalid)
		}
		if err := checkText("comment", c.Body, MaxTextBytes); err != nil {
			return err
		}
	}
	if p.Conversation != "" && !validConversationID(p.Conversation) {
		return fmt.Errorf("%w: conversation_id %q", ErrInvalid, p.Conversation)
	}
	return nil
}

// applyPatch changes t by p and returns the events: one for the field changes,
// one for the comment.
func (s *Service) applyPatch(t *Ticket, p Patch, now time.Time) ([]Event, error) {
	actor := cmp.Or(p.Actor, "api")
	ev := Event{Actor: actor, Action: ActionUpdated, Source: p.Source, Ref: p.Ref}
	if p.Status != nil && *p.Status != t.Status {
		from := t.Status
		if err := CanTransition(from, *p.Status); err != nil {
			return nil, err
		}
		s.setStatus(t, *p.Status, now)
		ev.Changes = append(ev.Changes, Change{Field: "status", From: string(from), To: string(t.Status)})
	}
	if p.Priority != nil && *p.Priority != t.Priority {
		ev.Changes = append(ev.Changes, Change{Field: "priority", From: string(t.Priority), To: string(*p.Priority)})
		t.Priority = *p.Priority
		if t.DueFromSLA {
			due := t.CreatedAt.Add(s.cfg.SLA.For(t.Priority))
			ev.Changes = append(ev.Changes, Change{Field: "due_at", From: timeText(t.DueAt), To: timeText(due)})
			t.DueAt = due
		}
	}
	if p.Assignee != nil && *p.Assignee != t.Assignee {
		ev.Changes = append(ev.Changes, Change{Field: "assignee", From: t.Assignee, To: *p.Assignee})
		t.Assignee = *p.Assignee
	}
	if p.Subject != nil && *p.Subject != t.Subject {
		ev.Changes = append(ev.Changes, Change{Field: "subject", From: t.Subject, To: *p.Subject})
		t.Subject = *p.Subject
	}
	tags := slices.Clone(t.Tags)
	if p.Tags != nil {
		tags = slices.Clone(*p.Tags)
	}
	for _, tag := range p.AddTags {
		if !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
	}
	tags = slices.DeleteFunc(tags, func(tag string) bool { return slices.Contains(p.RemoveTags, tag) })
	if len(tags) > MaxTags {
		return nil, fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(tags), MaxTags)
	}
	if !slices.Equal(tags, t.Tags) {
		ev.Changes = append(ev.Changes, Change{Field: "tags", From: strings.Join(t.Tags, ","), To: strings.Join(tags, ",")})
		t.Tags = tags
		if len(t.Tags) == 0 {
			t.Tags = nil
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Fields)) {
		v := p.Fields[k]
		old, had := t.Fields[k]
		switch {
		case v == nil && had:
			delete(t.Fields, k)
			ev.Changes = append(ev.Changes, Change{Field: "fields." + k, From: old})
		case v != nil && (!had || old != *v):
			if t.Fields == nil {
				t.Fields = map[string]string{}
			}
			t.Fields[k] = *v
			ev.Changes = append(ev.Changes, Change{Field: "fields." + k, From: old, To: *v})
		}
	}
	if len(t.Fields) > MaxFields {
		return nil, fmt.Errorf("%w: %d fields, at most %d", ErrInvalid, len(t.Fields), MaxFields)
	}
	if len(t.Fields) == 0 {
		t.Fields = nil
	}
	if p.DueAt != nil {
		due := p.DueAt.UTC()
		if p.DueAt.IsZero() {
			due = time.Time{}
		}
		if !due.Equal(t.DueAt) || t.DueFromSLA {
			ev.Changes = append(ev.Changes, Change{Field: "due_at", From: timeText(t.DueAt), To: timeText(due)})
			t.DueAt, t.DueFromSLA = due, false
		}
	}
	var evs []Event
	if p.Conversation != "" && !slices.Contains(t.Conversations, p.Conversation) {
		t.Conversations = append(t.Conversations, p.Conversation)
		evs = append(evs, Event{Actor: actor, Action: ActionLinked, Source: p.Source, Ref: p.Ref,
			Changes: []Change{{Field: "conversations", To: p.Conversation}}})
	}
	if len(ev.Changes) > 0 {
		if len(ev.Changes) == 1 && ev.Changes[0].Field == "status" {
			ev.Action = ActionStatus
		}
		evs = append(evs, ev)
	}
	if p.Comment != nil {
		c := *p.Comment
		evs = append(evs, Event{Actor: actor, Action: ActionCommented, Comment: &c, Source: p.Source, Ref: p.Ref})
	}
	return evs, nil
}

// setStatus sets t's status with what comes with it: solved and closed times,
// the survey asked when a ticket is solved, and its end when reopened.
func (s *Service) setStatus(t *Ticket, to Status, now time.Time) {
	from := t.Status
	t.Status = to
	switch {
	case to == StatusSolved:
		t.SolvedAt = now
		if s.cfg.Survey.Enabled && t.Satisfaction == nil {
			// The event that records this change gets Seq LastSeq+1 or +2 (after
			// a link event): Survey.Seq is fixed up when the event is recorded.
			t.Survey = &Survey{At: now, Until: now.Add(s.cfg.Survey.Window)}
		}
	case to == StatusClosed:
		t.ClosedAt = now
		t.Survey = nil
	case from == StatusSolved:
		t.SolvedAt, t.Survey = time.Time{}, nil
	}
}

// timeText writes a time for the log; "" for zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// validConversationID reports whether id can be a conversation id.
func validConversationID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// setExternal records the id a bridge's tracker gave the ticket, as a quiet
// event (logged, not published: nothing to tell anyone).
func (s *Service) setExternal(ctx context.Context, n int64, bridge, id string) error {
	_, _, err := s.mutate(ctx, n, func(t *Ticket, now time.Time) ([]Event, error) {
		if old, ok := t.External[bridge]; ok && old == id {
			return nil, nil
		}
		if t.External == nil {
			t.External = map[string]string{}
		}
		old := t.External[bridge]
		t.External[bridge] = id
		return []Event{{Actor: bridge, Action: ActionExternal, Source: bridge, Quiet: true,
			Changes: []Change{{Field: "external." + bridge, From: old, To: id}}}}, nil
	})
	return err
}
