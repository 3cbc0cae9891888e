package api

import (
	"net/http"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

// Conversation is a conversation as the API shows it (docs/openapi.yaml).
type Conversation struct {
	ID            string    `json:"id"`
	ContactID     string    `json:"contact_id"`
	Status        string    `json:"status"`
	Channel       string    `json:"channel,omitempty"`
	LastChannel   string    `json:"last_channel,omitempty"`
	LastIdentity  string    `json:"last_identity,omitempty"`
	Queue         string    `json:"queue,omitempty"`
	Priority      string    `json:"priority,omitempty"`
	Assignee      string    `json:"assignee,omitempty"`
	Previous      string    `json:"previous,omitempty"`
	MergedInto    string    `json:"merged_into,omitempty"`
	OpenedAt      time.Time `json:"opened_at,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
	LastMessageAt time.Time `json:"last_message_at,omitzero"`
	ClosedAt      time.Time `json:"closed_at,omitzero"`
}

func conversationView(c *store.Conversation) Conversation {
	return Conversation{
		ID: c.ID, ContactID: c.ContactID, Status: string(c.State),
		Channel: c.Channel, LastChannel: c.LastChannel, LastIdentity: string(c.LastIdentity),
		Queue: c.Queue, Priority: c.Priority, Assignee: c.Assignee,
		Previous: c.Previous, MergedInto: c.MergedInto,
		OpenedAt: c.OpenedAt, UpdatedAt: c.UpdatedAt, LastMessageAt: c.LastMessageAt, ClosedAt: c.ClosedAt,
	}
}

// conversationList is the answer of GET /api/v1/conversations.
type conversationList struct {
	Conversations []Conversation `json:"conversations"`
	// Next is the cursor of the following page, absent on the last.
	Next string `json:"next,omitempty"`
}

func (a *API) listConversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ConversationFilter{Channel: q.Get("channel"), Queue: q.Get("queue"), ContactID: q.Get("contact"), Tag: q.Get("tag")}
	switch st := q.Get("status"); st {
	case "", string(store.StateOpen), string(store.StateClosed):
		f.State = store.ConversationState(st)
	default:
		writeError(w, http.StatusBadRequest, "status: want open or closed")
		return
	}
	if v := q.Get("updated_since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "updated_since: want an RFC 3339 time, like 2026-01-02T15:04:05Z")
			return
		}
		f.UpdatedSince = t
	}
	limit, c, err := pageParams(q, store.DefaultListLimit, store.MaxListLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit, f.Before = limit, c.Before
	convs, next, err := a.deps.Store.ListConversations(r.Context(), f)
	if err != nil {
		a.storeError(w, r, "conversations", err)
		return
	}
	out := conversationList{Conversations: make([]Conversation, 0, len(convs))}
	for _, c := range convs {
		out.Conversations = append(out.Conversations, conversationView(c))
	}
	if next != "" {
		out.Next = cursor{Before: next}.encode()
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getConversation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !core.ValidID(id) {
		writeError(w, http.StatusNotFound, "no such conversation")
		return
	}
	c, err := a.deps.Store.Conversation(r.Context(), id)
	if err != nil {
		a.storeError(w, r, "conversation", err)
		return
	}
	writeJSON(w, http.StatusOK, conversationView(c))
}

// Entry is one envelope of a transcript as the API shows it.
type Entry struct {
	// Seq is the entry's position in the transcript.
	Seq        uint64 `json:"seq"`
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Type       string `json:"type,omitempty"`
	Direction  string `json:"direction"`
	Channel    string `json:"channel"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	SenderName string `json:"sender_name,omitempty"`
	Text       string `json:"text,omitempty"`
	// Format is "markdown" when Text is CommonMark (an agent's reply).
	Format      string       `json:"format,omitempty"`
	HTML        string       `json:"html,omitempty"`
	Attachments []Attachment `json:"attachments"`
	Language    string       `json:"language,omitempty"`
	ReplyTo     string       `json:"reply_to,omitempty"`
	SentAt      time.Time    `json:"sent_at,omitzero"`
	ReceivedAt  time.Time    `json:"received_at,omitzero"`
	// Time is when the entry was added to the transcript.
	Time time.Time `json:"time"`
}

// Attachment is a file of an entry.
type Attachment struct {
	Name        string `json:"name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	// URL is where the bytes are, when the channel gave one.
	URL string `json:"url,omitempty"`
	// Key names the bytes in the channel's own store, when it gave no URL.
	Key    string `json:"key,omitempty"`
	Inline bool   `json:"inline,omitempty"`
}

func entryView(e pipeline.TranscriptEntry) Entry {
	m := e.Message
	out := Entry{
		Seq: e.Seq, ID: m.ID, Kind: string(m.Kind), Type: m.Type, Direction: string(m.Direction), Channel: m.Channel,
		From: string(m.From), To: string(m.To), SenderName: senderName(m), Text: m.Text, Format: m.Meta[event.MetaFormat], HTML: m.HTML,
		Attachments: make([]Attachment, 0, len(m.Attachments)), Language: m.Language, ReplyTo: m.ReplyTo,
		SentAt: m.SentAt, ReceivedAt: m.ReceivedAt, Time: e.Time,
	}
	for _, at := range m.Attachments {
		out.Attachments = append(out.Attachments, Attachment{Name: at.Name, ContentType: at.ContentType, Size: at.Size, URL: at.URL, Key: at.Key, Inline: at.Inline})
	}
	return out
}

// transcriptPage is the answer of GET /api/v1/conversations/{id}/transcript.
type transcriptPage struct {
	Conversation string  `json:"conversation"`
	Entries      []Entry `json:"entries"`
	// Next is the cursor of the following page; absent when this page is
	// empty, that is, the transcript is read to its current end.
	Next string `json:"next,omitempty"`
}

func (a *API) getTranscript(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !core.ValidID(id) {
		writeError(w, http.StatusNotFound, "no such conversation")
		return
	}
	q := r.URL.Query()
	limit, c, err := pageParams(q, pipeline.DefaultTranscriptLimit, pipeline.MaxTranscriptLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := a.deps.Store.Conversation(r.Context(), id); err != nil {
		a.storeError(w, r, "conversation", err)
		return
	}
	entries, next, err := pipeline.Transcript(r.Context(), a.deps.JetStream, id, c.After, limit)
	if err != nil {
		a.log.Warn("transcript not read", "conversation", id, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the transcript could not be read now: try again shortly")
		return
	}
	out := transcriptPage{Conversation: id, Entries: make([]Entry, 0, len(entries))}
	for _, e := range entries {
		if e.Err != nil {
			continue // written by a newer build; its seq still moves the cursor
		}
		out.Entries = append(out.Entries, entryView(e))
	}
	if len(entries) > 0 {
		out.Next = cursor{After: next}.encode()
	}
	writeJSON(w, http.StatusOK, out)
}

// senderName is who wrote m, as far as the envelope says.
func senderName(m *core.Message) string {
	for _, k := range []string{event.MetaAgentName, event.MetaName} {
		if v := m.Meta[k]; v != "" {
			return v
		}
	}
	return ""
}
