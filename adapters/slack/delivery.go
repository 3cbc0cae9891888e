package slack

import (
	"context"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

// Delivery states of a reply on the channel that carries it, in the order
// they may follow each other. Failed is final.
const (
	stateQueued    = "queued"
	stateSent      = "sent"
	stateDelivered = "delivered"
	stateRead      = "read"
	stateFailed    = "failed"
)

// stateRank orders the delivery states: a state only follows one of lower
// rank, and nothing follows stateFailed.
var stateRank = map[string]int{stateQueued: 1, stateSent: 2, stateDelivered: 3, stateRead: 4, stateFailed: 5}

// queuedStatuses are the provider statuses (meta status, Twilio's words) of a
// delivery.sent that say the message is accepted but not yet on its way.
var queuedStatuses = map[string]bool{"accepted": true, "scheduled": true, "queued": true}

// deliveryState is how far a reply got on one customer channel, in its
// "env:<id>" record.
type deliveryState struct {
	// State is one of the state* values.
	State string `json:"state"`
	// At is the provider's time of that state when it gave one (the event's
	// SentAt: Twilio's RawDlrDoneDate, say), else when the event was received.
	At time.Time `json:"at,omitzero"`
	// Shown is set once Slack shows State (its reaction, its note): a report
	// of the same state again then costs no call to Slack.
	Shown bool `json:"shown,omitempty"`
}

// stateOf is the delivery state a delivery event reports, "" for another
// event.
func stateOf(ev *core.Message) string {
	switch ev.Type {
	case event.DeliverySent:
		if queuedStatuses[ev.Meta[event.MetaStatus]] {
			return stateQueued
		}
		return stateSent
	case event.DeliveryDelivered:
		return stateDelivered
	case event.DeliveryRead:
		return stateRead
	case event.DeliveryFailed:
		return stateFailed
	}
	return ""
}

// advance records the state delivery event ev reports for its reply on
// ev.Channel, if it is a step forward from what the record holds, and returns
// the record. show is true when the desk must show the state: it moved
// forward, or it is the state recorded already but not yet shown (the
// reaction of an earlier report of it failed); the caller calls shown once
// it is. A state behind the recorded one, the recorded one shown already, or
// anything after failed changes nothing and show is false. ok is false for a
// reply not written in Slack.
//
// Each channel keeps its own state: a reply that failed on whatsapp and was
// sent again by sms (delivery.rerouted) moves on, on sms.
func (a *Adapter) advance(ctx context.Context, ev *core.Message) (rec msgRecord, show, ok bool, err error) {
	state := stateOf(ev)
	if ev.ReplyTo == "" || state == "" {
		return rec, false, false, nil
	}
	at := ev.SentAt
	if at.IsZero() {
		at = ev.ReceivedAt
	}
	_, err = a.messages.Update(ctx, "env:"+ev.ReplyTo, &rec, messageTTL, func(exists bool) error {
		show, ok = false, exists && rec.Channel != "" && rec.TS != ""
		if !ok {
			return store.ErrSkip
		}
		cur := rec.Delivery[ev.Channel]
		switch {
		case state == cur.State:
			show = !cur.Shown
			return store.ErrSkip
		case cur.State == stateFailed || stateRank[state] < stateRank[cur.State]:
			return store.ErrSkip
		}
		show = true
		if rec.Delivery == nil {
			rec.Delivery = map[string]deliveryState{}
		}
		rec.Delivery[ev.Channel] = deliveryState{State: state, At: at.UTC()}
		if state != stateFailed {
			rec.Via = ev.Channel
		}
		return nil
	})
	if err != nil {
		return rec, false, false, fmt.Errorf("slack: delivery state of %s: %w", ev.ReplyTo, err)
	}
	if ok && !show {
		a.log.Debug("delivery state behind the one shown, ignored", "msg_id", ev.ReplyTo, "state", state, "shown", rec.Delivery[ev.Channel].State, "channel", ev.Channel)
	}
	return rec, show, ok, nil
}

// shown records that Slack shows the delivery state ev reported for its
// reply, unless the reply moved on meanwhile. A failure is logged: the next
// report of the same state shows it again, which Slack takes as a no-op.
func (a *Adapter) shown(ctx context.Context, ev *core.Message) {
	state := stateOf(ev)
	var rec msgRecord
	if _, err := a.messages.Update(ctx, "env:"+ev.ReplyTo, &rec, messageTTL, func(exists bool) error {
		cur, ok := rec.Delivery[ev.Channel]
		if !exists || !ok || cur.State != state || cur.Shown {
			return store.ErrSkip
		}
		cur.Shown = true
		rec.Delivery[ev.Channel] = cur
		return nil
	}); err != nil {
		a.log.Debug("delivery state shown, not recorded", "msg_id", ev.ReplyTo, "err", err)
	}
}
