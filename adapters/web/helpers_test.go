package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/web"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// Secrets of the test config.
const (
	tokenSecret = "test-token-secret-0123456789abcdef"
	shopSecret  = "shop-secret-0123456789"
	otherSecret = "other-secret-0123456789"
	shopOrigin  = "https://shop.example.com"
	otherOrigin = "https://other.example.com"
)

// testConfig is the channel config most tests use: two sites, generous per-IP
// limits (every test client is 127.0.0.1).
const testConfig = `
token_secret: ` + tokenSecret + `
sites:
  shop:
    secret: ` + shopSecret + `
    origins: [` + shopOrigin + `]
  other:
    secret: ` + otherSecret + `
    origins: [` + otherOrigin + `]
    accounts: shop
rate_limit:
  per_ip: 1000
  per_ip_burst: 1000
`

// fixture is one adapter on its own embedded JetStream, served over HTTP.
type fixture struct {
	env *adaptertest.Env
	a   *web.Adapter
	url string // the HTTP server's base URL
}

// newFixture builds the adapter called name from the YAML config src and runs
// it in a runtime, as omnigate serve does. With bus true, Deps.Bus is set
// (live frames across replicas).
func newFixture(t *testing.T, name, src string) *fixture {
	t.Helper()
	env := adaptertest.NewEnv(t, name)
	env.Deps.Bus = env.Bus
	return startOn(t, env, env.Deps, src)
}

// startOn builds the adapter on deps and starts it in env's runtime.
func startOn(t *testing.T, env *adaptertest.Env, deps adapters.Deps, src string) *fixture {
	t.Helper()
	a := build(t, env.Name, deps, src)
	env.Start(t, a)
	return &fixture{env: env, a: a, url: deps.PublicURL}
}

// build builds the adapter through the registry, from its YAML section.
func build(t *testing.T, name string, deps adapters.Deps, src string) *web.Adapter {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(src), &node); err != nil {
		t.Fatal(err)
	}
	a, err := adapters.Build(name, "omnigate.yaml", &node, deps)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return a.(*web.Adapter)
}

// availability is who can answer, as the server tells the widget.
type availability struct {
	Online        bool      `json:"online"`
	Reason        string    `json:"reason"`
	ExpectedWaitS int64     `json:"expected_wait_s"`
	NextOpen      time.Time `json:"next_open"`
}

// frame is any server frame, decoded.
type frame struct {
	Type          string       `json:"type"`
	VisitorToken  string       `json:"visitor_token"`
	Visitor       string       `json:"visitor"`
	Site          string       `json:"site"`
	Verified      bool         `json:"verified"`
	AgentsOnline  bool         `json:"agents_online"`
	Availability  availability `json:"availability"`
	Online        bool         `json:"online"` // an availability frame
	Reason        string       `json:"reason"`
	ExpectedWaitS int64        `json:"expected_wait_s"`
	Avatar        string       `json:"avatar"`
	Auto          string       `json:"auto"`
	History       []frame      `json:"history"`
	Messages      []frame      `json:"messages"`
	More          bool         `json:"more"`
	LastSeq       uint64       `json:"last_seq"`
	ReadUpTo      uint64       `json:"read_up_to"`
	Seq           uint64       `json:"seq"`
	ID            string       `json:"id"`
	ClientID      string       `json:"client_id"`
	From          string       `json:"from"`
	Agent         string       `json:"agent"`
	Text          string       `json:"text"`
	Attachments   []struct {
		Name        string `json:"name"`
		ContentType string `json:"content_type"`
		Size        int64  `json:"size"`
		URL         string `json:"url"`
	} `json:"attachments"`
	UpTo         uint64 `json:"up_to"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	Ref          string `json:"ref"`
	RetryAfterMS int64  `json:"retry_after_ms"`
}

func texts(fs []frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Text
	}
	return out
}

// client is a WebSocket client of the protocol.
type client struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan frame
	closed chan error // the read error that ended the connection
}

// dial opens a WebSocket to f's channel with the given Origin ("" for none).
func dial(t *testing.T, f *fixture, origin string) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	u := "ws" + strings.TrimPrefix(f.url, "http") + "/channels/" + f.env.Name + "/ws"
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(4 << 20)
	cl := &client{t: t, c: c, frames: make(chan frame, 1024), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				cl.closed <- err
				close(cl.frames)
				return
			}
			var fr frame
			if err := json.Unmarshal(data, &fr); err != nil {
				t.Errorf("server frame is not JSON: %v: %s", err, data)
				continue
			}
			cl.frames <- fr
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return cl, resp, nil
}

// mustDial dials with the shop's origin.
func mustDial(t *testing.T, f *fixture) *client {
	t.Helper()
	c, _, err := dial(t, f, shopOrigin)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// send writes one frame, JSON-encoding v unless it is []byte already.
func (c *client) send(v any) {
	c.t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame of type typ, skipping others; it fails the test
// after 10s or when the connection ends.
func (c *client) next(typ string) frame {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection ended while waiting for a %s frame: %v", typ, <-c.closed)
			}
			if f.Type == typ {
				return f
			}
		case <-timeout:
			c.t.Fatalf("no %s frame within 10s", typ)
		}
	}
}

// none checks that no frame of type typ arrives within d.
func (c *client) none(typ string, d time.Duration) {
	c.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return
			}
			if f.Type == typ {
				c.t.Fatalf("unexpected %s frame: %+v", typ, f)
			}
		case <-timeout:
			return
		}
	}
}

// waitClosed waits for the server to end the connection and returns its close
// status.
func (c *client) waitClosed() websocket.StatusCode {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			return websocket.CloseStatus(<-c.closed)
		case <-time.After(10 * time.Second):
			c.t.Fatal("connection still open after 10s")
		}
	}
}

// hello says hello with the fields of h (site defaults to "shop") and returns
// the welcome.
func (c *client) hello(h map[string]any) frame {
	c.t.Helper()
	if h == nil {
		h = map[string]any{}
	}
	h["type"] = "hello"
	if _, ok := h["site"]; !ok {
		h["site"] = "shop"
	}
	c.send(h)
	return c.next("welcome")
}

// say sends a message frame and waits for its echo.
func (c *client) say(clientID, text string) frame {
	c.t.Helper()
	c.send(map[string]any{"type": "message", "client_id": clientID, "text": text})
	for {
		f := c.next("message")
		if f.ClientID == clientID {
			return f
		}
	}
}

// reply is an agent's reply to visitor, as the pipeline hands it to the channel.
func reply(channel, visitor, text string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Outbound, channel)
	m.To = core.NewIdentity(channel, visitor)
	m.ConversationID = "conv1"
	m.ContactID = "contact1"
	m.Text = text
	m.Meta = map[string]string{event.MetaAgentName: "Ann"}
	return m
}

// inbound waits until OMNI_IN holds n messages and returns them.
func inbound(t *testing.T, env *adaptertest.Env, n int) []*core.Message {
	t.Helper()
	var out []*core.Message
	bustest.Eventually(t, 10*time.Second, func() error {
		out = out[:0]
		for _, s := range env.Stored(t, bus.StreamIn) {
			if s.Message == nil {
				return fmt.Errorf("undecodable message on %s: %v", bus.StreamIn, s.Err)
			}
			out = append(out, s.Message)
		}
		if len(out) < n {
			return fmt.Errorf("%d message(s) on %s, want %d", len(out), bus.StreamIn, n)
		}
		return nil
	})
	return out
}

// call makes an HTTP request to the channel's path with an optional bearer
// token, origin and JSON body, and decodes a JSON answer into out.
func call(t *testing.T, f *fixture, method, path, token, origin string, body any, out any) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.url+"/channels/"+f.env.Name+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: answer %d is not JSON: %v: %s", method, path, resp.StatusCode, err, data)
		}
	}
	return resp
}

// identity returns a claim for user signed with secret for site, at ts.
func identity(secret, site, user, email, phone string, ts time.Time) web.Identity {
	return web.SignIdentity(secret, site, web.Identity{UserID: user, Email: email, Phone: phone, TS: ts.Unix()})
}
