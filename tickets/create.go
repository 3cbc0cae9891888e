package tickets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

// CreateRequest asks for a ticket. Everything is optional: a ticket for a
// conversation takes its requester, subject, description and language from the
// conversation, its contact and its transcript.
type CreateRequest struct {
	// Subject is the ticket's title; default: the customer's last message.
	Subject string `json:"subject,omitempty"`
	// Description is the first comment; default: the end of the transcript.
	Description string `json:"description,omitempty"`
	// Status is new (the default), open, pending or on-hold.
	Status Status `json:"status,omitempty"`
	// Priority defaults to Config.DefaultPriority.
	Priority Priority `json:"priority,omitempty"`
	Assignee string   `json:"assignee,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	// Fields are custom fields (a bridge may copy them, see zendesk.custom_fields).
	Fields map[string]string `json:"fields,omitempty"`
	// DueAt overrides the SLA's due date.
	DueAt time.Time `json:"due_at,omitzero"`
	// ConversationID links the ticket to a conversation, whose contact is the
	// requester.
	ConversationID string `json:"conversation_id,omitempty"`
	// ContactID names the requester when there is no conversation.
	ContactID string `json:"contact_id,omitempty"`
	// Requester overrides what the contact says (name, email, phone).
	Requester *Requester `json:"requester,omitempty"`
	// Language is the customer's language, for notifications.
	Language string `json:"language,omitempty"`
	// Actor is who asks ("slack:U123", "routing", "api"), for the log.
	Actor string `json:"actor,omitempty"`
	// IdempotencyKey makes a repeated request return the ticket the first one
	// created, for 7 days.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// ReuseActive returns the conversation's ticket that is not solved or closed
	// yet, when there is one, instead of creating another.
	ReuseActive bool `json:"reuse_active,omitempty"`
	// Silent creates the ticket without telling the customer.
	Silent bool `json:"silent,omitempty"`
}

// Limits on ticket contents, enforced on create and update.
const (
	MaxSubjectRunes   = 250
	MaxTextBytes      = 64 << 10
	MaxTags           = 50
	MaxTagBytes       = 64
	MaxFields         = 50
	MaxFieldKeyBytes  = 64
	MaxFieldValueRune = 4096
	MaxAssigneeBytes  = 256
)

// excerptMessages is how many transcript entries a default description quotes.
const excerptMessages = 20

// maxTranscriptRead bounds the transcript entries read for a default subject.
const maxTranscriptRead = 2000

// createResult is what create did.
type createResult struct {
	t *Ticket
	// created is false when an earlier request with the same key, or an active
	// ticket of the conversation (reused), answered.
	created, reused bool
}

// Create creates a ticket, or returns the one an earlier request with the same
// IdempotencyKey created (or the conversation's active ticket, with
// ReuseActive). Invalid requests, and conversations or contacts that do not
// exist, fail with an error matching ErrInvalid. Routing can call it, or
// publish EventCreate.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Ticket, error) {
	r, err := s.create(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.t, nil
}

func (s *Service) create(ctx context.Context, req CreateRequest) (createResult, error) {
	now := s.now().UTC()
	prio := Priority(s.cfg.DefaultPriority)
	if req.Priority != "" {
		p, err := ParsePriority(string(req.Priority))
		if err != nil {
			return createResult{}, err
		}
		prio = p
	}
	status := StatusNew
	if req.Status != "" {
		st, err := ParseStatus(string(req.Status))
		if err != nil {
			return createResult{}, err
		}
		if !st.Active() {
			return createResult{}, fmt.Errorf("%w: a new ticket cannot be %s", ErrInvalid, st)
		}
		status = st
	}
	tags, err := normTags(req.Tags)
	if err != nil {
		return createResult{}, err
	}
	if err := checkFields(req.Fields); err != nil {
		return createResult{}, err
	}
	if err := checkText("assignee", req.Assignee, MaxAssigneeBytes); err != nil {
		return createResult{}, err
	}
	if err := checkText("description", req.Description, MaxTextBytes); err != nil {
		return createResult{}, err
	}
	if req.ConversationID != "" && !bus.ValidToken(req.ConversationID) {
		return createResult{}, fmt.Errorf("%w: conversation_id %q", ErrInvalid, req.ConversationID)
	}

	var reserved int64
	if req.IdempotencyKey != "" {
		var n int64
		_, err := s.repo.idem.Get(ctx, req.IdempotencyKey, &n)
		switch {
		case err == nil && n > 0:
			t, err := s.repo.get(ctx, n)
			if err == nil {
				return createResult{t: t}, nil
			}
			if !errors.Is(err, ErrNotFound) {
				return createResult{}, err
			}
			reserved = n // the first attempt stopped before storing it: finish it
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return createResult{}, fmt.Errorf("idempotency key: %w", err)
		}
	}

	var conv *store.Conversation
	if req.ConversationID != "" {
		conv, err = s.conversation(ctx, req.ConversationID)
		if err != nil {
			return createResult{}, err
		}
		if req.ReuseActive {
			ns, err := s.repo.numbers(ctx, convKey(conv.ID))
			if err != nil {
				return createResult{}, err
			}
			for i := len(ns) - 1; i >= 0; i-- {
				t, err := s.repo.get(ctx, ns[i])
				if err == nil && t.Status.Active() {
					return createResult{t: t, reused: true}, nil
				}
			}
		}
	}
	requester := Requester{ContactID: req.ContactID}
	if conv != nil {
		requester.ContactID, requester.Identity = conv.ContactID, conv.LastIdentity
	}
	lang := req.Language
	if requester.ContactID != "" {
		c, err := s.st.Contact(ctx, requester.ContactID)
		if errors.Is(err, store.ErrNotFound) {
			return createResult{}, fmt.Errorf("%w: contact %s not found", ErrInvalid, requester.ContactID)
		}
		if err != nil {
			return createResult{}, err
		}
		requester.ContactID, requester.Name, requester.Email, requester.Phone = c.ID, c.Name, c.Email, c.Phone
		if lang == "" {
			lang = c.Attributes[s.cfg.Languages.Attribute]
		}
		if requester.Identity == "" && len(c.Identities) > 0 {
			requester.Identity = c.Identities[0]
		}
	}
	if r := req.Requester; r != nil {
		requester.Name = cmp.Or(r.Name, requester.Name)
		requester.Email = cmp.Or(r.Email, requester.Email)
		requester.Phone = cmp.Or(r.Phone, requester.Phone)
		requester.Identity = cmp.Or(r.Identity, requester.Identity)
	}

	subject, desc := strings.TrimSpace(req.Subject), req.Description
	if conv != nil && (subject == "" || desc == "" || lang == "") {
		ex, err := s.excerpt(ctx, conv.ID)
		if err != nil {
			s.log.Warn("transcript not read for the ticket's subject", "conversation", conv.ID, "err", err)
		}
		subject, desc, lang = cmp.Or(subject, ex.subject), cmp.Or(desc, ex.text), cmp.Or(lang, ex.language, s.lang.Detect(ex.subject))
	}
	if subject == "" {
		subject = "Request"
		if requester.Name != "" {
			subject = "Request from " + requester.Name
		}
	}
	subject = firstLine(subject, MaxSubjectRunes)

	n := reserved
	if n == 0 {
		if n, err = s.repo.allocate(ctx, s.cfg.FirstNumber); err != nil {
			return createResult{}, err
		}
	}
	if req.IdempotencyKey != "" {
		var held int64
		if _, err := s.repo.idem.Update(ctx, req.IdempotencyKey, &held, idemTTL, func(bool) error {
			if held != 0 {
				return store.ErrSkip
			}
			held = n
			return nil
		}); err != nil {
			return createResult{}, fmt.Errorf("idempotency key: %w", err)
		}
		if held != n {
			// A concurrent request with the same key got there first.
			if t, err := s.repo.get(ctx, held); err == nil {
				return createResult{t: t}, nil
			}
			return createResult{}, fmt.Errorf("ticket #%d for this idempotency key is being created; try again", held)
		}
	}

	t := &Ticket{
		Number:      n,
		Subject:     subject,
		Description: desc,
		Status:      status,
		Priority:    prio,
		Assignee:    strings.TrimSpace(req.Assignee),
		Requester:   requester,
		Tags:        tags,
		Fields:      maps.Clone(req.Fields),
		Language:    lang,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if conv != nil {
		t.Conversations = []string{conv.ID}
	}
	if req.DueAt.IsZero() {
		t.DueAt, t.DueFromSLA = now.Add(s.cfg.SLA.For(prio)), true
	} else {
		t.DueAt = req.DueAt.UTC()
	}
	ev := Event{At: now, Actor: cmp.Or(req.Actor, "api"), Action: ActionCreated, Ref: req.IdempotencyKey, NoNotify: req.Silent}
	ev.Changes = append(ev.Changes, Change{Field: "status", To: string(status)}, Change{Field: "priority", To: string(prio)})
	if t.Assignee != "" {
		ev.Changes = append(ev.Changes, Change{Field: "assignee", To: t.Assignee})
	}
	if len(tags) > 0 {
		ev.Changes = append(ev.Changes, Change{Field: "tags", To: strings.Join(tags, ",")})
	}
	ev.Changes = append(ev.Changes, Change{Field: "due_at", To: t.DueAt.Format(time.RFC3339)})
	ev = t.record(ev)

	mark, err := s.repo.mark(ctx, n, now)
	if err != nil {
		return createResult{}, err
	}
	if err := s.repo.create(ctx, t); err != nil {
		_ = s.repo.unmark(ctx, mark)
		if errors.Is(err, store.ErrExists) && req.IdempotencyKey != "" {
			if t, err := s.repo.get(ctx, n); err == nil {
				return createResult{t: t}, nil
			}
		}
		return createResult{}, fmt.Errorf("store ticket #%d: %w", n, err)
	}
	s.finish(ctx, t, []Event{ev}, mark)
	s.log.Info("ticket created", "ticket", n, "conversation", req.ConversationID, "actor", ev.Actor)
	return createResult{t: t, created: true}, nil
}

// conversation returns conversation id, following merges; a missing one is
// ErrInvalid.
func (s *Service) conversation(ctx context.Context, id string) (*store.Conversation, error) {
	for range maxMergeHops {
		c, err := s.st.Conversation(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: conversation %s not found", ErrInvalid, id)
		}
		if err != nil {
			return nil, err
		}
		if c.MergedInto == "" {
			return c, nil
		}
		id = c.MergedInto
	}
	return nil, fmt.Errorf("%w: conversation %s: merge chain too long", ErrInvalid, id)
}

// transcriptExcerpt is what a conversation's transcript says for a new ticket.
type transcriptExcerpt struct {
	// subject is the first line of the customer's last message.
	subject string
	// text quotes the last excerptMessages messages.
	text string
	// language is the language of the customer's last message that had one.
	language string
}

// excerpt reads conversation's transcript.
func (s *Service) excerpt(ctx context.Context, conversation string) (transcriptExcerpt, error) {
	var ex transcriptExcerpt
	var last []*core.Message
	var after uint64
	read := 0
	for read < maxTranscriptRead {
		page, next, err := pipeline.Transcript(ctx, s.bus.JetStream(), conversation, after, pipeline.MaxTranscriptLimit)
		if err != nil {
			return ex, err
		}
		if len(page) == 0 {
			break
		}
		read += len(page)
		after = next
		for _, e := range page {
			m := e.Message
			if m == nil || m.Kind != core.KindMessage {
				continue
			}
			if m.Direction == core.Inbound {
				if m.Text != "" {
					ex.subject = m.Text
				}
				if m.Language != "" {
					ex.language = m.Language
				}
			}
			last = append(last, m)
			if len(last) > excerptMessages {
				last = last[1:]
			}
		}
	}
	var b strings.Builder
	for _, m := range last {
		who := "Agent"
		switch {
		case m.Direction == core.Inbound:
			who = "Customer"
		case m.Meta[event.MetaAuto] != "":
			who = "omnigate"
		}
		text := m.Text
		if text == "" && len(m.Attachments) > 0 {
			text = "(" + strconv.Itoa(len(m.Attachments)) + " attachment(s))"
		}
		fmt.Fprintf(&b, "[%s] %s (%s): %s\n", m.ReceivedAt.UTC().Format("2006-01-02 15:04 MST"), who, m.Channel, text)
	}
	ex.text = core.Truncate(b.String(), MaxTextBytes)
	return ex, nil
}

// handleCreate handles EventCreate from a desk or routing.
func (s *Service) handleCreate(ctx context.Context, d *bus.Delivery) error {
	m, err := d.Message()
	if err != nil {
		return err
	}
	if m.ConversationID == "" && m.ContactID == "" {
		return bus.Permanent(fmt.Errorf("%s %s: no conversation or contact", event.TicketCreate, m.ID))
	}
	req := CreateRequest{
		Subject:        cmp.Or(m.Meta[event.MetaSubject], m.Text),
		Priority:       Priority(m.Meta[event.MetaPriority]),
		Assignee:       m.Meta[event.MetaAssignee],
		ConversationID: m.ConversationID,
		ContactID:      m.ContactID,
		Language:       m.Language,
		Actor:          cmp.Or(string(m.From), m.Channel),
		IdempotencyKey: "evt:" + m.ID,
		ReuseActive:    true,
	}
	if tags := m.Meta[event.MetaTags]; tags != "" {
		req.Tags = strings.Split(tags, ",")
	}
	r, err := s.create(ctx, req)
	if errors.Is(err, ErrInvalid) {
		return bus.Permanent(fmt.Errorf("%s %s: %w", event.TicketCreate, m.ID, err))
	}
	if err != nil {
		return err
	}
	if r.reused {
		// Tell the desk which ticket the conversation already has.
		ev := Event{Seq: r.t.LastSeq, At: m.ReceivedAt, Actor: req.Actor, Action: ActionExists}
		return s.toDesks(ctx, r.t, ev, ":exists:"+m.ID)
	}
	return nil
}

// normTags lower-cases tags, turns spaces into '_', drops empty and repeated
// ones and checks the limits.
func normTags(in []string) ([]string, error) {
	var out []string
	for _, t := range in {
		t = strings.ToLower(strings.Join(strings.Fields(t), "_"))
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if len(t) > MaxTagBytes || !utf8.ValidString(t) {
			return nil, fmt.Errorf("%w: tag %q: at most %d bytes of UTF-8", ErrInvalid, core.Truncate(t, 40), MaxTagBytes)
		}
		out = append(out, t)
	}
	if len(out) > MaxTags {
		return nil, fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(out), MaxTags)
	}
	return out, nil
}

// checkFields checks custom fields against the limits.
func checkFields(f map[string]string) error {
	if len(f) > MaxFields {
		return fmt.Errorf("%w: %d fields, at most %d", ErrInvalid, len(f), MaxFields)
	}
	for k, v := range f {
		if k == "" || len(k) > MaxFieldKeyBytes || !utf8.ValidString(k) {
			return fmt.Errorf("%w: field name %q: 1 to %d bytes of UTF-8", ErrInvalid, core.Truncate(k, 40), MaxFieldKeyBytes)
		}
		if utf8.RuneCountInString(v) > MaxFieldValueRune || !utf8.ValidString(v) {
			return fmt.Errorf("%w: field %q: at most %d characters of UTF-8", ErrInvalid, k, MaxFieldValueRune)
		}
	}
	return nil
}

// checkText checks one text value against a byte limit.
func checkText(name, v string, limit int) error {
	if len(v) > limit || !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s: at most %d bytes of UTF-8", ErrInvalid, name, limit)
	}
	return nil
}

// firstLine is the first non-empty line of s, cut to limit runes with "…".
func firstLine(s string, limit int) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			s = line
			break
		}
	}
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:limit-1])) + "…"
}
