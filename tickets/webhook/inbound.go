package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is matched by ParseUpdate's errors: answer 400.
var ErrMalformed = errors.New("webhook: malformed update")

// Update is a status update a tracker POSTs to omnigate:
//
//	{"ticket": 1042, "status": "solved", "comment": "Fixed in 2.3.1", "actor": "jira:ann"}
//
// The ticket is named by its number ("ticket", a number or a string such as
// "1042" or "#1042") or by the tracker's own id ("external_id", as the tracker
// answered the ticket.created delivery). Status, comment or both must be given.
type Update struct {
	Ticket     int64  `json:"-"`
	ExternalID string `json:"external_id,omitempty"`
	Status     string `json:"status,omitempty"`
	Comment    string `json:"comment,omitempty"`
	// Actor names who made the change in the tracker, for the ticket's log.
	Actor string `json:"actor,omitempty"`
}

// ParseUpdate reads an Update from a request body. Unknown fields are ignored,
// so trackers can send more. The error matches ErrMalformed.
func ParseUpdate(body []byte) (Update, error) {
	var raw struct {
		Ticket     json.RawMessage `json:"ticket"`
		ExternalID any             `json:"external_id"`
		Status     string          `json:"status"`
		Comment    string          `json:"comment"`
		Actor      string          `json:"actor"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	u := Update{Status: strings.TrimSpace(raw.Status), Comment: strings.TrimSpace(raw.Comment), Actor: strings.TrimSpace(raw.Actor)}
	switch v := raw.ExternalID.(type) {
	case nil:
	case string:
		u.ExternalID = strings.TrimSpace(v)
	case float64:
		u.ExternalID = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return Update{}, fmt.Errorf("%w: external_id must be a string or a number", ErrMalformed)
	}
	if len(raw.Ticket) > 0 && string(raw.Ticket) != "null" {
		n, err := ParseNumber(string(raw.Ticket))
		if err != nil {
			return Update{}, fmt.Errorf("%w: ticket: %v", ErrMalformed, err)
		}
		u.Ticket = n
	}
	switch {
	case u.Ticket == 0 && u.ExternalID == "":
		return Update{}, fmt.Errorf("%w: ticket or external_id required", ErrMalformed)
	case u.Status == "" && u.Comment == "":
		return Update{}, fmt.Errorf("%w: status or comment required", ErrMalformed)
	}
	return u, nil
}

// ParseNumber reads a ticket number written as 1042, "1042" or "#1042".
func ParseNumber(s string) (int64, error) {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, `"`)
	s = strings.TrimPrefix(strings.TrimSpace(s), "#")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a ticket number", s)
	}
	return n, nil
}
