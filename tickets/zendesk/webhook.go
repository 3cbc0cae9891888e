package zendesk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is matched by ParseWebhook's errors: answer 400.
var ErrMalformed = errors.New("zendesk: malformed webhook")

// Event is what a Zendesk webhook says about one ticket.
type Event struct {
	// TicketID is Zendesk's ticket id; 0 when the payload had none.
	TicketID int64
	// ExternalID is the ticket's external_id ("omnigate-1042").
	ExternalID string
	// Status is the ticket's status as sent, for FromZendesk.
	Status string
}

// ParseWebhook reads the JSON body of a webhook a Zendesk trigger sends. The
// body is whatever the trigger's JSON template says; docs/tickets.md gives this
// one:
//
//	{"ticket_id": "{{ticket.id}}", "external_id": "{{ticket.external_id}}", "status": "{{ticket.status}}"}
//
// Ids may be numbers or strings; the fields may also sit in a "ticket" object
// ({"ticket": {"id": ..., "external_id": ..., "status": ...}}) or, for Zendesk
// event webhooks, in "detail" with the new status in "event.current". The error
// matches ErrMalformed.
func ParseWebhook(body []byte) (Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var ev Event
	// At the top level "id" may be the event's own id (event webhooks), so only
	// ticket_id names the ticket there.
	if err := fill(&ev, top, "ticket_id"); err != nil {
		return Event{}, err
	}
	for _, nested := range []string{"ticket", "detail"} {
		raw, ok := top[nested]
		if !ok {
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			continue
		}
		if err := fill(&ev, obj, "ticket_id", "id"); err != nil {
			return Event{}, err
		}
	}
	if raw, ok := top["event"]; ok {
		var e struct {
			Current any `json:"current"`
		}
		if json.Unmarshal(raw, &e) == nil {
			if s, ok := e.Current.(string); ok && s != "" {
				ev.Status = s
			}
		}
	}
	switch {
	case ev.TicketID == 0 && ev.ExternalID == "":
		return Event{}, fmt.Errorf("%w: no ticket_id or external_id", ErrMalformed)
	case ev.Status == "":
		return Event{}, fmt.Errorf("%w: no status", ErrMalformed)
	}
	return ev, nil
}

// fill sets what obj has of the ticket id (under one of idKeys), external id and
// status, keeping what is already set.
func fill(ev *Event, obj map[string]json.RawMessage, idKeys ...string) error {
	for _, k := range idKeys {
		raw, ok := obj[k]
		if !ok || ev.TicketID != 0 {
			continue
		}
		s, err := scalar(raw)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, k, err)
		}
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("%w: %s %q is not a ticket id", ErrMalformed, k, s)
		}
		ev.TicketID = n
	}
	if raw, ok := obj["external_id"]; ok && ev.ExternalID == "" {
		s, err := scalar(raw)
		if err != nil {
			return fmt.Errorf("%w: external_id: %v", ErrMalformed, err)
		}
		ev.ExternalID = s
	}
	if raw, ok := obj["status"]; ok && ev.Status == "" {
		s, err := scalar(raw)
		if err != nil {
			return fmt.Errorf("%w: status: %v", ErrMalformed, err)
		}
		ev.Status = s
	}
	return nil
}

// scalar reads a JSON string, number or null as a trimmed string.
func scalar(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", errors.New("want a string or a number")
}
