package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// APIError is an error answer of Twilio's REST API: its documented JSON
// ({code, message, more_info, status}) with the HTTP status and Retry-After.
// Send wraps it; find it with errors.As.
type APIError struct {
	// HTTPStatus is the response's status code.
	HTTPStatus int
	// Code is Twilio's error code (21211, 20429, ...); 0 when the body had none.
	Code int
	// Message is Twilio's description.
	Message string
	// MoreInfo links Twilio's page about Code.
	MoreInfo string
	// RetryAfter is the response's Retry-After; 0 when it had none.
	RetryAfter time.Duration
}

// Error returns "twilio: <status> <code>: <message>".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "twilio: http %d", e.HTTPStatus)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", error %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// api returns twilio-go's Api v2010 service bound to ctx: its requests go
// through c, so they are cancelled with ctx and reach cfg.APIBaseURL.
func (a *Adapter) api(ctx context.Context) *openapi.ApiService {
	svc := openapi.NewApiServiceWithClient(&apiClient{ctx: ctx, a: a})
	// api_base_url is the one place the host comes from, not TWILIO_EDGE/REGION.
	svc.RequestHandler().Edge, svc.RequestHandler().Region = "", ""
	return svc
}

// apiClient is twilio-go's BaseClient on the adapter's own http.Client, made
// for one call. twilio-go's own Client builds requests without a context and
// drops an error response's headers, so a Send could neither be cancelled nor
// honour Retry-After; twilio-go still builds the parameters and decodes the
// answers. It holds a ctx, against the usual rule, because BaseClient's
// methods take none; it lives for one call.
type apiClient struct {
	ctx context.Context
	a   *Adapter
}

var _ twclient.BaseClient = (*apiClient)(nil)

func (c *apiClient) AccountSid() string       { return c.a.cfg.AccountSID }
func (c *apiClient) SetTimeout(time.Duration) {}
func (c *apiClient) SetOauth(twclient.OAuth)  {}
func (c *apiClient) OAuth() twclient.OAuth    { return nil }

// SendRequest sends one request of twilio-go to api_base_url. An answer of
// 400 or above becomes an *APIError.
func (c *apiClient) SendRequest(method, rawURL string, data url.Values, headers map[string]any, body ...byte) (*http.Response, error) {
	target, err := c.a.apiURL(rawURL)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	switch method {
	case http.MethodGet, http.MethodDelete:
		if len(data) > 0 {
			target += "?" + data.Encode()
		}
	default:
		if len(body) > 0 {
			rd = strings.NewReader(string(body))
		} else {
			rd = strings.NewReader(data.Encode())
		}
	}
	req, err := http.NewRequestWithContext(c.ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, fmt.Sprint(v))
	}
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "omnigate twilio-go/"+twclient.LibraryVersion)
	req.SetBasicAuth(c.a.cfg.AccountSID, c.a.cfg.AuthToken.Value())
	resp, err := c.a.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeAPIError(resp, time.Now())
}

// decodeAPIError reads Twilio's error JSON from resp.
func decodeAPIError(resp *http.Response, now time.Time) *APIError {
	e := &APIError{HTTPStatus: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now)}
	var body twclient.TwilioRestError
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message, e.MoreInfo = body.Code, body.Message, body.MoreInfo
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter parses a Retry-After header: seconds or an HTTP date. It returns
// 0 when there is none or it is unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, int(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// apiURL moves a URL twilio-go built for https://api.twilio.com onto
// api_base_url, keeping its path and query.
func (a *Adapter) apiURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("twilio: url: %w", err)
	}
	out := a.apiBase.JoinPath(u.EscapedPath())
	out.RawQuery = u.RawQuery
	return out.String(), nil
}
