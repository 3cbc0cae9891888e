package slack_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core/bus"
)

// TestHTTP_Signature rejects forged, stale and unsigned requests with 401 on
// every route, and publishes nothing.
func TestHTTP_Signature(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	event := slackfake.EventPayload("EvForged", slackfake.AgentReply(agentUser, ch, ts, "1700000000.000900", "forged"))
	clickBody := slackfake.InteractionForm(slackfake.Click(agentUser, ch, ts, "omni_claim", conv.ID))
	cmdBody := []byte(slackfake.Command(agentUser, ch, "close "+conv.ID).Encode())

	routes := []struct {
		path, ct string
		body     []byte
	}{
		{"events", slackfake.JSON, event},
		{"interactivity", slackfake.Form, clickBody},
		{"commands", slackfake.Form, cmdBody},
	}
	tests := []struct {
		name string
		req  func(path, ct string, body []byte) *http.Request
	}{
		{"wrong secret", func(p, ct string, b []byte) *http.Request {
			return slackfake.Signed(p, ct, b, "not-the-secret", time.Now())
		}},
		{"stale", func(p, ct string, b []byte) *http.Request {
			return slackfake.Signed(p, ct, b, testSecret, time.Now().Add(-6*time.Minute))
		}},
		{"future", func(p, ct string, b []byte) *http.Request {
			return slackfake.Signed(p, ct, b, testSecret, time.Now().Add(6*time.Minute))
		}},
		{"tampered body", func(p, ct string, b []byte) *http.Request {
			good := slackfake.Signed(p, ct, b, testSecret, time.Now())
			r := httptest.NewRequest(http.MethodPost, good.URL.Path, bytes.NewReader(append(slices.Clone(b), ' ')))
			r.Header = good.Header.Clone()
			return r
		}},
		{"unsigned", func(p, ct string, b []byte) *http.Request {
			r := slackfake.Signed(p, ct, b, testSecret, time.Now())
			r.Header.Del("X-Slack-Signature")
			return r
		}},
		{"not v0", func(p, ct string, b []byte) *http.Request {
			r := slackfake.Signed(p, ct, b, testSecret, time.Now())
			r.Header.Set("X-Slack-Signature", strings.Replace(r.Header.Get("X-Slack-Signature"), "v0=", "v1=", 1))
			return r
		}},
	}
	for _, tt := range tests {
		for _, rt := range routes {
			if code, body := d.serve(tt.req(rt.path, rt.ct, rt.body)); code != http.StatusUnauthorized {
				t.Errorf("%s %s: answered %d %s, want 401", tt.name, rt.path, code, body)
			}
		}
	}
	// Webhooks publish before they answer: nothing can come later.
	if n := len(d.stored(bus.StreamIn, "omni.in.slack.")); n != 0 {
		t.Errorf("%d messages published by forged requests", n)
	}
	if n := len(d.stored(bus.StreamEvt, "")); n != 0 {
		t.Errorf("%d events published by forged requests", n)
	}
	if a := d.conversation(conv.ID).Assignee; a != "" {
		t.Errorf("a forged click assigned the conversation to %q", a)
	}
}

// TestHTTP_URLVerification answers Slack's challenge when the events URL is
// set up.
func TestHTTP_URLVerification(t *testing.T) {
	d := newDesk(t, nil)
	body := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	code, resp := d.postEvent(body, 0)
	if code != http.StatusOK || !strings.Contains(resp, `"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"`) {
		t.Fatalf("answered %d %s, want the challenge", code, resp)
	}
}

// TestHTTP_Malformed answers 400 to signed nonsense.
func TestHTTP_Malformed(t *testing.T) {
	d := newDesk(t, nil)
	for _, tt := range []struct{ path, ct, body string }{
		{"events", "application/json", `not json`},
		{"events", "application/json", `{"type":"event_callback","event_id":"Ev1"}`},
		{"events", "application/json", `{}`},
		{"interactivity", "application/x-www-form-urlencoded", `payload=%7Bnope`},
		{"interactivity", "application/x-www-form-urlencoded", `nothing=here`},
		{"commands", "application/x-www-form-urlencoded", `command=%2Fomni&text=help`},
	} {
		if code, body := d.serve(slackfake.Signed(tt.path, tt.ct, []byte(tt.body), testSecret, time.Now())); code != http.StatusBadRequest {
			t.Errorf("%s %q: answered %d %s, want 400", tt.path, tt.body, code, body)
		}
	}
}
