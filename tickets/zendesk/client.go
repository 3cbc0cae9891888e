package zendesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/core/bus"
)

// maxResponseBytes bounds what is read of an API answer.
const maxResponseBytes = 1 << 20

// defaultRetryAfter is the delay after a 429 without a usable Retry-After.
const defaultRetryAfter = time.Minute

// Ticket is a Zendesk ticket as the Tickets API reads and writes it. Fields left
// zero are left out of a request, so an update changes only what it sets.
type Ticket struct {
	ID         int64  `json:"id,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	Subject    string `json:"subject,omitempty"`
	// Comment adds a comment; on create it is the ticket's description.
	Comment  *Comment `json:"comment,omitempty"`
	Status   string   `json:"status,omitempty"`
	Priority string   `json:"priority,omitempty"`
	// Requester creates or finds the end user by email (or name) on create.
	Requester *Requester `json:"requester,omitempty"`
	// Tags replaces the ticket's tags when not nil; an empty list clears them.
	Tags          *[]string     `json:"tags,omitempty"`
	CustomFields  []CustomField `json:"custom_fields,omitempty"`
	AssigneeEmail string        `json:"assignee_email,omitempty"`
}

// Comment is a ticket comment; Public false makes it an internal note.
type Comment struct {
	Body   string `json:"body"`
	Public bool   `json:"public"`
}

// Requester names the end user a ticket is for.
type Requester struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// CustomField sets one ticket field by its Zendesk id.
type CustomField struct {
	ID    int64 `json:"id"`
	Value any   `json:"value"`
}

// APIError is an answer of the API other than 2xx.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code and Description are Zendesk's "error" and "description", when given.
	Code, Description string
	// Body is the start of the answer when it was not Zendesk's error JSON.
	Body string
}

// Error says what Zendesk answered.
func (e *APIError) Error() string {
	s := "zendesk answered " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	switch {
	case e.Code != "" && e.Description != "":
		s += ": " + e.Code + ": " + e.Description
	case e.Code != "":
		s += ": " + e.Code
	case e.Body != "":
		s += ": " + e.Body
	}
	return s
}

// Client calls the Zendesk Tickets API. It is safe for concurrent use. Errors
// say what the bus should do with the event being synced: a 429 is a
// bus.RetryAfter with Zendesk's Retry-After; 409 (a concurrent update), 5xx and
// network errors are plain errors, retried with backoff; other 4xx (bad
// credentials, a missing or closed ticket, an invalid field) are bus.Permanent.
type Client struct {
	cfg  Config
	hc   *http.Client
	base string
	now  func() time.Time
}

// NewClient returns a Client for cfg (defaults applied) using hc; nil hc means a
// client with cfg.Timeout.
func NewClient(cfg Config, hc *http.Client) *Client {
	cfg.SetDefaults()
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, hc: hc, base: cfg.APIBase(), now: time.Now}
}

// Create creates t and returns the ticket Zendesk stored (with its ID).
func (c *Client) Create(ctx context.Context, t Ticket) (Ticket, error) {
	var out struct {
		Ticket Ticket `json:"ticket"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v2/tickets.json", map[string]any{"ticket": t}, &out); err != nil {
		return Ticket{}, fmt.Errorf("zendesk: create ticket: %w", err)
	}
	if out.Ticket.ID == 0 {
		return Ticket{}, fmt.Errorf("zendesk: create ticket: answer without a ticket id")
	}
	return out.Ticket, nil
}

// Update changes ticket id with the fields set in t (a comment included).
func (c *Client) Update(ctx context.Context, id int64, t Ticket) (Ticket, error) {
	var out struct {
		Ticket Ticket `json:"ticket"`
	}
	t.ID = 0
	path := "/api/v2/tickets/" + strconv.FormatInt(id, 10) + ".json"
	if err := c.call(ctx, http.MethodPut, path, map[string]any{"ticket": t}, &out); err != nil {
		return Ticket{}, fmt.Errorf("zendesk: update ticket %d: %w", id, err)
	}
	return out.Ticket, nil
}

// FindByExternalID lists the tickets whose external_id is ext (Zendesk does not
// make it unique).
func (c *Client) FindByExternalID(ctx context.Context, ext string) ([]Ticket, error) {
	var out struct {
		Tickets []Ticket `json:"tickets"`
	}
	path := "/api/v2/tickets.json?external_id=" + url.QueryEscape(ext)
	if err := c.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, fmt.Errorf("zendesk: find tickets by external id: %w", err)
	}
	return out.Tickets, nil
}

// call sends one request and decodes a 2xx answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return bus.Permanent(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return bus.Permanent(err)
	}
	req.SetBasicAuth(c.cfg.Email+"/token", c.cfg.APIToken.Value())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "omnigate-tickets/1")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, strings.SplitN(path, "?", 2)[0], err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return nil
	}
	aerr := &APIError{Status: resp.StatusCode}
	var e struct {
		Error       any    `json:"error"`
		Description string `json:"description"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != nil {
		switch v := e.Error.(type) {
		case string:
			aerr.Code = v
		case map[string]any: // {"error": {"title": ..., "message": ...}}
			aerr.Code, _ = v["title"].(string)
			if m, _ := v["message"].(string); m != "" {
				aerr.Description = m
			}
		}
		if e.Description != "" {
			aerr.Description = e.Description
		}
	} else {
		aerr.Body = snippet(data)
	}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		return bus.RetryAfter(aerr, retryAfter(resp.Header.Get("Retry-After")))
	case code == http.StatusConflict || code == http.StatusRequestTimeout || code >= 500:
		return aerr
	default:
		return bus.Permanent(aerr)
	}
}

func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return defaultRetryAfter
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
