package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/edge"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/tickets/webhook"
)

// WebhookBridge is the name of the generic webhook bridge.
const WebhookBridge = "webhook"

// WebhookPayload is the JSON body of a webhook delivery.
type WebhookPayload struct {
	// ID is the delivery id, also in X-Omnigate-Delivery: the same on every retry.
	ID string `json:"id"`
	// Type is ticket.created, ticket.updated or ticket.commented.
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Ticket is the ticket as it is now, without its log.
	Ticket *Ticket `json:"ticket"`
	// Event is the change being delivered.
	Event Event `json:"event"`
}

// webhookAnswer is what a receiver may answer to ticket.created.
type webhookAnswer struct {
	ExternalID any `json:"external_id"`
}

// webhookBridge delivers ticket events to the configured URL.
type webhookBridge struct {
	s *Service
	c *webhook.Client
}

// Name is WebhookBridge.
func (b *webhookBridge) Name() string { return WebhookBridge }

// Created delivers ticket.created; the receiver's answer may name its id.
func (b *webhookBridge) Created(ctx context.Context, t *Ticket) (string, error) {
	ev, ok := t.Event(1)
	if !ok {
		ev = Event{Seq: 1, At: t.CreatedAt, Action: ActionCreated}
	}
	answer, err := b.deliver(ctx, event.TicketCreated, t, ev)
	if err != nil {
		return "", err
	}
	var a webhookAnswer
	if json.Unmarshal(answer, &a) == nil {
		switch v := a.ExternalID.(type) {
		case string:
			return strings.TrimSpace(v), nil
		case float64:
			return fmt.Sprint(int64(v)), nil
		}
	}
	return "", nil
}

// Updated delivers ticket.updated.
func (b *webhookBridge) Updated(ctx context.Context, t *Ticket, ev Event) error {
	_, err := b.deliver(ctx, event.TicketUpdated, t, ev)
	return err
}

// Commented delivers ticket.commented.
func (b *webhookBridge) Commented(ctx context.Context, t *Ticket, ev Event) error {
	_, err := b.deliver(ctx, event.TicketCommented, t, ev)
	return err
}

func (b *webhookBridge) deliver(ctx context.Context, typ string, t *Ticket, ev Event) ([]byte, error) {
	id := eventID(t.Number, ev.Seq, ev.At)
	body, err := json.Marshal(WebhookPayload{ID: id, Type: typ, Time: ev.At, Ticket: t.summary(), Event: ev})
	if err != nil {
		return nil, bus.Permanent(err)
	}
	return b.c.Deliver(ctx, id, typ, body)
}

// maxHookBody bounds the body of an inbound webhook.
const maxHookBody = 1 << 20

// handleWebhookInbound applies a status update the tracker POSTs to
// /api/tickets/hooks/webhook. 401 when the signature or timestamp is wrong, 400
// for a malformed body, 404 for an unknown ticket, 409 for a transition the
// lifecycle refuses; 200 with the ticket otherwise.
func (s *Service) handleWebhookInbound(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Webhook
	body, err := edge.ReadBody(w, r, maxHookBody)
	if err != nil {
		writeError(w, edge.Status(err), "body: "+err.Error())
		return
	}
	if err := webhook.Verify([]byte(cfg.InboundSecret.Value()), r.Header, body, s.now(), cfg.Tolerance); err != nil {
		edge.Reject(r, s.log, edgeChannel, edge.Signature, "webhook update refused", "err", err, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	u, err := webhook.ParseUpdate(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := u.Ticket
	if n == 0 {
		if n, err = s.repo.byExternal(r.Context(), WebhookBridge, u.ExternalID); err != nil {
			writeErr(w, err)
			return
		}
	}
	p := Patch{Actor: WebhookBridge, Source: WebhookBridge,
		Ref: WebhookBridge + ":" + r.Header.Get(webhook.HeaderTimestamp) + ":" + r.Header.Get(webhook.HeaderSignature)}
	if u.Actor != "" {
		p.Actor = WebhookBridge + ":" + u.Actor
	}
	if u.Status != "" {
		st, err := ParseStatus(u.Status)
		if err != nil {
			writeErr(w, err)
			return
		}
		p.Status = &st
	}
	if u.Comment != "" {
		p.Comment = &Comment{Body: u.Comment}
	}
	t, err := s.Update(r.Context(), n, p)
	if err != nil {
		if !errors.Is(err, ErrInvalidTransition) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
			s.log.Error("webhook update not applied", "ticket", n, "err", err)
		}
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t.summary())
}

var _ Bridge = (*webhookBridge)(nil)
