package webhook

import (
	"bytes"
	"context"
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

// maxResponseBytes bounds what is read of a receiver's answer.
const maxResponseBytes = 64 << 10

// defaultRetryAfter is the delay after a 429 or 503 without a usable Retry-After.
const defaultRetryAfter = 30 * time.Second

// Client delivers signed events to Config.URL. It is safe for concurrent use.
type Client struct {
	cfg Config
	hc  *http.Client
	now func() time.Time
}

// NewClient returns a Client for cfg (defaults applied) using hc; nil hc means a
// client with cfg.Timeout.
func NewClient(cfg Config, hc *http.Client) *Client {
	cfg.SetDefaults()
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, hc: hc, now: time.Now}
}

// StatusError is a delivery the receiver answered with a status other than 2xx.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Body is the start of the answer, for the dead letter's reason.
	Body string
}

// Error says what the receiver answered.
func (e *StatusError) Error() string {
	s := "receiver answered " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Deliver POSTs body (a JSON document) as event type event with delivery id id,
// signed, and returns the receiver's answer when it is 2xx. The error says what
// the bus should do: a 429 or 503 is a bus.RetryAfter (the Retry-After header's
// delay, or 30s); another 4xx but 408 is bus.Permanent, as retrying the same
// request cannot help; 408, 5xx and network errors are plain errors, retried with
// the consumer's backoff. An error's text never holds the secret or the URL's
// query.
func (c *Client) Deliver(ctx context.Context, id, event string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("webhook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "omnigate-tickets/1")
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, id)
	SetHeaders(req.Header, []byte(c.cfg.Secret.Value()), c.now(), body)
	where := "POST " + redact(c.cfg.URL)
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, query included
		}
		return nil, fmt.Errorf("webhook: %s: %w", where, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answer, nil
	}
	serr := &StatusError{Code: resp.StatusCode, Body: snippet(answer)}
	err = fmt.Errorf("webhook: %s: %w", where, serr)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return nil, bus.RetryAfter(err, retryAfter(resp.Header.Get("Retry-After"), c.now()))
	case code == http.StatusRequestTimeout || code >= 500:
		return nil, err
	default:
		return nil, bus.Permanent(err)
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return defaultRetryAfter
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return defaultRetryAfter
}

// redact drops user info and query from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// snippet is the start of a response body on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
