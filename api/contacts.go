package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// Contact is a contact as the API shows it, with its identities.
type Contact struct {
	ID         string            `json:"id"`
	Name       string            `json:"name,omitempty"`
	Email      string            `json:"email,omitempty"`
	Phone      string            `json:"phone,omitempty"`
	Identities []Identity        `json:"identities"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	// OpenConversation is the contact's open conversation, if any.
	OpenConversation string `json:"open_conversation,omitempty"`
	// LastConversation is its most recently closed one.
	LastConversation string    `json:"last_conversation,omitempty"`
	CreatedAt        time.Time `json:"created_at,omitzero"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
}

// Identity is one of a contact's identities.
type Identity struct {
	// Identity is channel:address, e.g. sms:+15551234567.
	Identity string `json:"identity"`
	Channel  string `json:"channel"`
	Address  string `json:"address"`
	// Unreachable says why replies cannot go there now (blocked, bounced,
	// opted_out, ...), when a channel said so.
	Unreachable string `json:"unreachable,omitempty"`
}

// contactView is c as the API shows it; open is its open conversation ("").
func contactView(c *store.Contact, open string) Contact {
	out := Contact{
		ID: c.ID, Name: c.Name, Email: c.Email, Phone: c.Phone, Identities: make([]Identity, 0, len(c.Identities)),
		Attributes: c.Attributes, Tags: c.Tags, OpenConversation: open, LastConversation: c.LastConversation,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	for _, id := range c.Identities {
		out.Identities = append(out.Identities, Identity{Identity: string(id), Channel: id.Channel(), Address: id.Address(), Unreachable: c.Unreachable[id].Reason})
	}
	return out
}

// contact returns c as the API shows it, with its open conversation.
func (a *API) contact(ctx context.Context, c *store.Contact) (Contact, error) {
	open, err := a.deps.Store.OpenConversation(ctx, c.ID)
	switch {
	case err == nil:
		return contactView(c, open.ID), nil
	case errors.Is(err, store.ErrNotFound):
		return contactView(c, ""), nil
	}
	return Contact{}, err
}

func (a *API) getContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !core.ValidID(id) {
		writeError(w, http.StatusNotFound, "no such contact")
		return
	}
	c, err := a.deps.Store.Contact(r.Context(), id)
	if err != nil {
		a.storeError(w, r, "contact", err)
		return
	}
	out, err := a.contact(r.Context(), c)
	if err != nil {
		a.storeError(w, r, "contact", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// contactList is the answer of GET /api/v1/contacts.
type contactList struct {
	Contacts []Contact `json:"contacts"`
}

func (a *API) findContacts(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("identity")
	if raw == "" {
		writeError(w, http.StatusBadRequest, "identity: required, like identity=sms:%2B15551234567 or identity=email:ann@example.com")
		return
	}
	// A '+' left unencoded in a query arrives as a space; identities have none.
	id, err := core.ParseIdentity(strings.ReplaceAll(raw, " ", "+"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "identity: want channel:address, like sms:+15551234567 ("+strings.TrimPrefix(err.Error(), "core: ")+")")
		return
	}
	out := contactList{Contacts: []Contact{}}
	c, err := a.deps.Store.ContactByIdentity(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, out)
		return
	} else if err != nil {
		a.storeError(w, r, "contact", err)
		return
	}
	v, err := a.contact(r.Context(), c)
	if err != nil {
		a.storeError(w, r, "contact", err)
		return
	}
	out.Contacts = append(out.Contacts, v)
	writeJSON(w, http.StatusOK, out)
}

// queueList is the answer of GET /api/v1/queues.
type queueList struct {
	Queues []QueueStatus `json:"queues"`
}

func (a *API) listQueues(w http.ResponseWriter, r *http.Request) {
	out := queueList{Queues: []QueueStatus{}}
	if a.deps.Queues != nil {
		qs, err := a.deps.Queues(r.Context())
		if err != nil {
			a.storeError(w, r, "queues", err)
			return
		}
		out.Queues = append(out.Queues, qs...)
	}
	writeJSON(w, http.StatusOK, out)
}
