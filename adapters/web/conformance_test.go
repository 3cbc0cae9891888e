package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/core"
)

// TestAdapter_Conformance runs the kit on both channels of the package. The
// "provider" of a chat channel is the visitor's own connection:
//
//   - Inbound is the HTTP fallback, POST /channels/<name>/messages with the
//     visitor token of a real POST hello; the provider message id is the
//     client_id.
//   - Forged is that request with a visitor token whose signature is wrong
//     (401); Malformed is a correctly authenticated body that is not JSON (400).
//   - Outbound goes to a visitor connected over a real WebSocket; Sent is what
//     that connection received.
//   - BadRecipient addresses an identity that is no visitor id of the channel,
//     which Send refuses as Permanent.
//   - RateLimited is skipped: Send writes to the store and to in-process
//     sessions; nothing throttles it (a session too slow to keep up is
//     disconnected and resumes from the history instead).
func TestAdapter_Conformance(t *testing.T) {
	for _, name := range []string{"web", "app"} {
		t.Run(name, func(t *testing.T) {
			adaptertest.Run(t, adaptertest.Harness{
				Name: name,
				New:  func(t *testing.T, deps adapters.Deps) *adaptertest.Fixture { return newConformance(t, name, deps) },
				Skip: adaptertest.Skip{RateLimited: true},
			})
		})
	}
}

// conformance is the kit's view of one adapter: a visitor talking over HTTP
// and another listening on a WebSocket.
type conformance struct {
	name string
	deps adapters.Deps

	mu        sync.Mutex
	token     string   // of the HTTP visitor
	listener  string   // visitor id of the WebSocket visitor
	listenTok string   // its token
	seen      uint64   // the highest seq it received
	sent      []string // texts the WebSocket visitor received from agents
	badRecipt bool
}

func newConformance(t *testing.T, name string, deps adapters.Deps) *adaptertest.Fixture {
	c := &conformance{name: name, deps: deps}
	a := build(t, name, deps, testConfig)
	return &adaptertest.Fixture{
		Adapter: a,
		Inbound: func(t *testing.T, in adaptertest.Incoming) *http.Request {
			body := `{"client_id":"msg-` + strconv.Itoa(in.N) + `","text":` + strconv.Quote(in.Text) + `}`
			return c.post(c.visitorToken(t), body)
		},
		Forged: func(t *testing.T) *http.Request {
			tok := c.visitorToken(t)
			i := strings.LastIndexByte(tok, '.')
			forged := tok[:i+1] + strings.Repeat("A", len(tok)-i-1)
			return c.post(forged, `{"client_id":"forged","text":"hi"}`)
		},
		Malformed: func(t *testing.T) *http.Request {
			return c.post(c.visitorToken(t), `{"client_id": 42, "text": `)
		},
		Outbound: func(t *testing.T) *core.Message {
			m := core.NewMessage(core.KindMessage, core.Outbound, name)
			m.ConversationID = "conv1"
			c.mu.Lock()
			bad := c.badRecipt
			c.mu.Unlock()
			if bad {
				m.To = core.NewIdentity(name, "not-a-visitor")
			} else {
				m.To = core.NewIdentity(name, c.listen(t))
			}
			return m
		},
		Sent: func(t *testing.T) []string {
			c.catchUp(t)
			c.mu.Lock()
			defer c.mu.Unlock()
			return append([]string(nil), c.sent...)
		},
		BadRecipient: func(*testing.T) {
			c.mu.Lock()
			c.badRecipt = true
			c.mu.Unlock()
		},
	}
}

// post is the visitor's POST of a message.
func (c *conformance) post(token, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/channels/"+c.name+"/messages", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// visitorToken says hello over HTTP once and returns the token.
func (c *conformance) visitorToken(t *testing.T) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" {
		return c.token
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, c.deps.PublicURL+"/channels/"+c.name+"/hello", strings.NewReader(`{"site":"shop"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	defer resp.Body.Close()
	var w frame
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || w.VisitorToken == "" {
		t.Fatalf("hello answered %d: %v", resp.StatusCode, err)
	}
	c.token = w.VisitorToken
	return c.token
}

// listen connects the listening visitor once and returns its id.
func (c *conformance) listen(t *testing.T) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listener != "" {
		return c.listener
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(c.deps.PublicURL, "http") + "/channels/" + c.name + "/ws"
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","site":"shop"}`)); err != nil {
		t.Fatal(err)
	}
	_, data, err := ws.Read(ctx)
	var w frame
	if err != nil || json.Unmarshal(data, &w) != nil || w.Type != "welcome" {
		t.Fatalf("no welcome: %v %s", err, data)
	}
	c.listener, c.listenTok = w.Visitor, w.VisitorToken
	go func() {
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f frame
			if json.Unmarshal(data, &f) == nil && f.Type == "message" && f.From == "agent" {
				c.mu.Lock()
				c.sent = append(c.sent, f.Text)
				c.seen = max(c.seen, f.Seq)
				c.mu.Unlock()
			}
		}
	}()
	return c.listener
}

// catchUp waits until the listening visitor's connection has received every
// message its history holds: Send returns once the frame is queued for the
// connection, which then takes a moment to arrive.
func (c *conformance) catchUp(t *testing.T) {
	c.mu.Lock()
	tok := c.listenTok
	c.mu.Unlock()
	if tok == "" {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		seen := c.seen
		c.mu.Unlock()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.deps.PublicURL+"/channels/"+c.name+"/history?limit=1&after="+strconv.FormatUint(seen, 10), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		var h frame
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("history answered %d: %v", resp.StatusCode, err)
		}
		if len(h.Messages) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
