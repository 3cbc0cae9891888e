package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core/bus"
)

func TestHTTP_Fallback(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	var w frame
	if resp := call(t, f, "POST", "/hello", "", shopOrigin, map[string]any{"site": "shop"}, &w); resp.StatusCode != 200 || w.Type != "welcome" || w.VisitorToken == "" {
		t.Fatalf("hello: %d %+v", resp.StatusCode, w)
	}
	var m frame
	resp := call(t, f, "POST", "/messages", w.VisitorToken, shopOrigin, map[string]any{"client_id": "h1", "text": "over http"}, &m)
	if resp.StatusCode != 200 || m.Type != "message" || m.Seq != 1 || m.Text != "over http" {
		t.Fatalf("POST messages: %d %+v", resp.StatusCode, m)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("no CORS header for the site's origin: %v", resp.Header)
	}
	if got := inbound(t, f.env, 1)[0]; got.From.Address() != w.Visitor || got.Text != "over http" {
		t.Errorf("inbound %+v", got)
	}

	// Events: replies and the visitor's own messages arrive as SSE, message
	// frames with their seq as the event id.
	ev := openEvents(t, f, w.VisitorToken, "", "0")
	if got := ev.next(t); got.Seq != 1 || got.Text != "over http" || got.id != "1" {
		t.Errorf("replayed event %+v", got)
	}
	if _, err := f.a.Send(t.Context(), reply("web", w.Visitor, "agent over sse")); err != nil {
		t.Fatal(err)
	}
	if got := ev.next(t); got.Text != "agent over sse" || got.From != "agent" || got.id != "2" {
		t.Errorf("live event %+v", got)
	}
	ev.close()

	// Missed while away: Last-Event-ID replays it.
	if _, err := f.a.Send(t.Context(), reply("web", w.Visitor, "while away")); err != nil {
		t.Fatal(err)
	}
	ev = openEvents(t, f, w.VisitorToken, "2", "")
	if got := ev.next(t); got.Text != "while away" || got.id != "3" {
		t.Errorf("resumed event %+v", got)
	}
	ev.close()

	var h frame
	if resp := call(t, f, "GET", "/history?limit=2", w.VisitorToken, "", nil, &h); resp.StatusCode != 200 || len(h.Messages) != 2 || h.Messages[1].Text != "while away" || !h.More {
		t.Errorf("history: %d %+v", resp.StatusCode, h)
	}
	if resp := call(t, f, "GET", "/history?after=1&limit=1", w.VisitorToken, "", nil, &h); resp.StatusCode != 200 || len(h.Messages) != 1 || h.Messages[0].Seq != 2 || !h.More {
		t.Errorf("history after: %d %+v", resp.StatusCode, h)
	}
	if resp := call(t, f, "POST", "/read", w.VisitorToken, "", map[string]any{"up_to": 3}, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("read: %d", resp.StatusCode)
	}
	var w2 frame
	call(t, f, "POST", "/hello", "", "", map[string]any{"visitor_token": w.VisitorToken}, &w2)
	if w2.ReadUpTo != 3 || w2.Visitor != w.Visitor || w2.Site != "shop" {
		t.Errorf("hello by token alone: %+v", w2)
	}
}

func TestHTTP_Errors(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	app := newFixture(t, "app", testConfig)
	var w, aw frame
	call(t, f, "POST", "/hello", "", "", map[string]any{"site": "shop"}, &w)
	call(t, app, "POST", "/hello", "", "", map[string]any{"site": "shop"}, &aw)
	forged := w.VisitorToken[:len(w.VisitorToken)-3] + "AAA"
	tests := []struct {
		name         string
		method, path string
		token        string
		origin       string
		body         any
		code         int
		errCode      string
	}{
		{"no token", "POST", "/messages", "", "", `{"text":"hi"}`, 401, "token_invalid"},
		{"forged token", "POST", "/messages", forged, "", `{"text":"hi"}`, 401, "token_invalid"},
		{"garbage token", "GET", "/history", "v1.nope", "", nil, 401, "token_invalid"},
		{"token of the app channel", "POST", "/messages", aw.VisitorToken, "", `{"text":"hi"}`, 401, "token_invalid"},
		{"malformed body", "POST", "/messages", w.VisitorToken, "", `{"text": `, 400, "bad_frame"},
		{"wrong type", "POST", "/messages", w.VisitorToken, "", `{"type":"read","up_to":1}`, 400, "bad_frame"},
		{"body too large", "POST", "/messages", w.VisitorToken, "", `{"text":"` + strings.Repeat("x", 300<<10) + `"}`, 413, "too_large"},
		{"text too long", "POST", "/messages", w.VisitorToken, "", `{"text":"` + strings.Repeat("x", 65<<10) + `"}`, 413, "too_large"},
		{"foreign origin", "POST", "/messages", w.VisitorToken, otherOrigin, `{"text":"hi"}`, 403, "origin_forbidden"},
		{"hello for unknown site", "POST", "/hello", "", "", `{"site":"nope"}`, 403, "unknown_site"},
		{"hello without site", "POST", "/hello", "", "", `{}`, 400, "bad_frame"},
		{"bad history cursor", "GET", "/history?before=x", w.VisitorToken, "", nil, 400, "bad_frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e frame
			resp := call(t, f, tt.method, tt.path, tt.token, tt.origin, tt.body, &e)
			if resp.StatusCode != tt.code || e.Type != "error" || e.Code != tt.errCode {
				t.Errorf("%d %+v, want %d %s", resp.StatusCode, e, tt.code, tt.errCode)
			}
		})
	}
	if n := f.env.Count(t, bus.StreamIn); n != 0 {
		t.Errorf("%d messages published", n)
	}
}

func TestHTTP_CORS(t *testing.T) {
	f := newFixture(t, "web", testConfig)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, f.url+"/channels/web/messages", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := preflight(shopOrigin); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != shopOrigin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example.net"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign preflight: %d %v", resp.StatusCode, resp.Header)
	}
	var w frame
	resp := call(t, f, "POST", "/hello", "", "https://evil.example.net", map[string]any{"site": "shop"}, &w)
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("hello from a foreign origin: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestHTTP_IPRateLimit(t *testing.T) {
	f := newFixture(t, "web", "rate_limit:\n  per_ip: 0.1\n  per_ip_burst: 3\n")
	codes := []int{}
	var last *http.Response
	for range 4 {
		last = call(t, f, "POST", "/hello", "", "", map[string]any{"site": "demo"}, nil)
		codes = append(codes, last.StatusCode)
	}
	if codes[0] != 200 || codes[2] != 200 || codes[3] != 429 {
		t.Fatalf("codes %v, want 200 200 200 429", codes)
	}
	if s, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", last.Header.Get("Retry-After"))
	}
}

// sse reads a Server-Sent Events stream.
type sse struct {
	cancel context.CancelFunc
	events chan sseEvent
}

type sseEvent struct {
	frame
	id string
}

func openEvents(t *testing.T, f *fixture, token, lastEventID, resumeAfter string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	u := f.url + "/channels/" + f.env.Name + "/events?token=" + token
	if resumeAfter != "" {
		u += "&resume_after=" + resumeAfter
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{cancel: cancel, events: make(chan sseEvent, 64)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				e.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e.frame)
			case line == "":
				if e.Type != "" {
					s.events <- e
				}
				e = sseEvent{}
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

func (s *sse) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return sseEvent{}
	}
}

func (s *sse) close() { s.cancel() }
