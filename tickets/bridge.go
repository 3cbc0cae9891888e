package tickets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Bridge keeps an external tracker (Zendesk, Jira, a webhook) in step with the
// tickets. The service calls it from a durable consumer of its own,
// "tickets-bridge-<Name()>" on omni.evt.ticket.*, shared by the replicas, so
// a bridge's calls are asynchronous to the change, one at a time per process,
// and never block another bridge.
//
// Every method gets the ticket as it is now (not as it was at the event), so a
// late or repeated call still brings the tracker to the current state. Return nil
// when the tracker has the change; wrap errors with bus.Permanent when no retry
// can help (the event goes to omni.dlq.tickets-<name> with the reason at once) or
// bus.RetryAfter when the tracker says when to come back; any other error is
// retried with the configured backoff (tickets.bridge) and dead-lettered after
// the last attempt. Calls may repeat (a crash, a lost ack), so they should be
// idempotent where the tracker allows it.
//
// Changes that came from the bridge itself (ev.Source == Name()) are not sent
// back to it.
type Bridge interface {
	// Name names the bridge in consumers, dead letters, Ticket.External and logs;
	// letters, digits, '_' and '-'.
	Name() string
	// Created puts the new ticket in the tracker and returns the tracker's id for
	// it ("" when it has none). It is also called before Updated or Commented
	// when the ticket is not in the tracker yet.
	Created(ctx context.Context, t *Ticket) (externalID string, err error)
	// Updated sends ev, a change of t's fields (status, priority, assignee,
	// tags, fields, due date, subject, links, satisfaction).
	Updated(ctx context.Context, t *Ticket, ev Event) error
	// Commented sends ev's comment.
	Commented(ctx context.Context, t *Ticket, ev Event) error
}

// bridgeHandler returns the handler of b's consumer.
func (s *Service) bridgeHandler(b Bridge) bus.Handler {
	name := b.Name()
	return func(ctx context.Context, d *bus.Delivery) error {
		m, t, ev, err := s.loadEvent(ctx, d)
		if err != nil {
			return err
		}
		if ev.Source == name {
			return nil
		}
		if _, known := t.External[name]; !known {
			if err := s.createIn(ctx, b, t); err != nil {
				return err
			}
		}
		switch m.Type {
		case event.TicketCreated:
			return nil
		case event.TicketCommented:
			if ev.Comment == nil {
				return nil
			}
			if err := b.Commented(ctx, t, ev); err != nil {
				return fmt.Errorf("%s: comment on #%d: %w", name, t.Number, err)
			}
		default:
			if err := b.Updated(ctx, t, ev); err != nil {
				return fmt.Errorf("%s: update #%d: %w", name, t.Number, err)
			}
		}
		return nil
	}
}

// createIn puts t in b's tracker and records the tracker's id. Replicas may
// handle two events of a new ticket at once, and both would create it: a claim
// record makes one of them wait (and retry) until the other is done.
func (s *Service) createIn(ctx context.Context, b Bridge, t *Ticket) error {
	name := b.Name()
	ttl := s.cfg.Timeouts.Handler + 5*time.Second
	key := "creating:" + name + ":" + t.Key()
	if _, err := s.repo.links.Create(ctx, key, s.now().UTC(), ttl); errors.Is(err, store.ErrExists) {
		return bus.RetryAfter(fmt.Errorf("%s: #%d is being created in the tracker by another replica", name, t.Number), ttl/3)
	} else if err != nil {
		return fmt.Errorf("%s: claim #%d: %w", name, t.Number, err)
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.repo.links.Delete(rctx, key, 0); err != nil {
			s.log.Warn("tracker claim not released; it expires", "bridge", name, "ticket", t.Number, "err", err)
		}
	}
	defer release()
	id, err := b.Created(ctx, t)
	if err != nil {
		return fmt.Errorf("%s: create #%d: %w", name, t.Number, err)
	}
	if err := s.setExternal(ctx, t.Number, name, id); err != nil {
		return fmt.Errorf("%s: record id of #%d: %w", name, t.Number, err)
	}
	if t.External == nil {
		t.External = map[string]string{}
	}
	t.External[name] = id
	s.log.Info("ticket created in tracker", "bridge", name, "ticket", t.Number, "external_id", id)
	return nil
}
