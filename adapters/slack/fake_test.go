package slack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// Ids of the fake workspace.
const (
	botUser    = "UBOT0001"
	botID      = "BBOT0001"
	agentUser  = "UAGENT001"
	agent2User = "UAGENT002"
	chSupport  = "CSUPPORT1"
	chBilling  = "CBILLING1"
	testBotTok = "xoxb-1-test"
	testAppTok = "xapp-1-test"
	testSecret = "8f742231b10e8888abcd99yyyzzz85a5"
)

// call is one Web API call the fake Slack received.
type call struct {
	Method   string
	Channel  string
	TS       string // of the message posted, updated, deleted or reacted to
	ThreadTS string
	Text     string
	Blocks   string
	Username string
	Icon     string
	User     string // chat.postEphemeral's user
	Name     string // reactions.add's name
}

// fakeSlack is slack-go's slacktest server with the Web API methods the desk
// uses answered the way Slack documents them (slacktest's own chat.postMessage
// gives whole-second timestamps that collide, and it has no chat.update,
// chat.delete, chat.getPermalink or Socket Mode endpoint), recording every
// call.
type fakeSlack struct {
	t   *testing.T
	srv *slacktest.Server

	mu         sync.Mutex
	calls      []call
	seq        int
	base       int64
	throttle   int // answer this many more calls with 429
	retryAfter int
	failPost   string // chat.postMessage answers this error
	reactions  map[string]bool

	sockMu  sync.Mutex
	sock    *websocket.Conn
	acks    []json.RawMessage
	sockets int
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{t: t, base: time.Now().Unix(), reactions: map[string]bool{}}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", f.authTest)
		c.Handle("/chat.postMessage", f.postMessage)
		c.Handle("/chat.update", f.update)
		c.Handle("/chat.delete", f.delete)
		c.Handle("/chat.postEphemeral", f.postEphemeral)
		c.Handle("/chat.getPermalink", f.permalink)
		c.Handle("/reactions.add", f.reactionsAdd)
		c.Handle("/users.info", f.usersInfo)
		c.Handle("/apps.connections.open", f.connectionsOpen)
		c.Handle("/socket", f.socket)
		c.Handle("/files-pri/", f.file)
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	t.Cleanup(f.closeSocket)
	return f
}

// URL is the Web API base URL, for Config.APIURL.
func (f *fakeSlack) URL() string { return f.srv.GetAPIURL() }

func (f *fakeSlack) nextTS() string {
	f.seq++
	return fmt.Sprintf("%d.%06d", f.base, f.seq)
}

func (f *fakeSlack) record(c call) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

// Calls returns the calls of method ("" for all), in order.
func (f *fakeSlack) Calls(method string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Throttle answers the next n calls with 429 and Retry-After: after.
func (f *fakeSlack) Throttle(n, after int) {
	f.mu.Lock()
	f.throttle, f.retryAfter = n, after
	f.mu.Unlock()
}

// FailPosts makes chat.postMessage answer ok:false with code ("" stops it).
func (f *fakeSlack) FailPosts(code string) {
	f.mu.Lock()
	f.failPost = code
	f.mu.Unlock()
}

// throttled answers 429 when asked to and reports whether it did.
func (f *fakeSlack) throttled(w http.ResponseWriter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.throttle == 0 {
		return false
	}
	f.throttle--
	w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	w.WriteHeader(http.StatusTooManyRequests)
	return true
}

func (f *fakeSlack) form(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	if got := r.Form.Get("token") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); !strings.Contains(got, testBotTok) && !strings.Contains(got, testAppTok) {
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return false
	}
	return !f.throttled(w)
}

// unescaped is JSON without the \u003c escapes of '<', '>' and '&', for
// reading blocks in tests.
func unescaped(s string) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(s)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeSlack) authTest(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	reply(w, map[string]any{"ok": true, "url": "https://test.slack.com/", "team": "Test", "user": "omnigate",
		"team_id": "T0TEST", "user_id": botUser, "bot_id": botID})
}

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	ch := r.Form.Get("channel")
	f.mu.Lock()
	fail := f.failPost
	ts := f.nextTS()
	f.mu.Unlock()
	if fail != "" {
		reply(w, map[string]any{"ok": false, "error": fail})
		return
	}
	f.record(call{Method: "chat.postMessage", Channel: ch, TS: ts, ThreadTS: r.Form.Get("thread_ts"), Text: r.Form.Get("text"),
		Blocks: unescaped(r.Form.Get("blocks")), Username: r.Form.Get("username"), Icon: r.Form.Get("icon_emoji")})
	reply(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "message": map[string]any{"text": r.Form.Get("text"), "ts": ts}})
}

func (f *fakeSlack) update(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	c := call{Method: "chat.update", Channel: r.Form.Get("channel"), TS: r.Form.Get("ts"), Text: r.Form.Get("text"), Blocks: unescaped(r.Form.Get("blocks"))}
	f.record(c)
	reply(w, map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS, "text": c.Text})
}

func (f *fakeSlack) delete(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	c := call{Method: "chat.delete", Channel: r.Form.Get("channel"), TS: r.Form.Get("ts")}
	f.record(c)
	reply(w, map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS})
}

func (f *fakeSlack) postEphemeral(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	f.mu.Lock()
	ts := f.nextTS()
	f.mu.Unlock()
	f.record(call{Method: "chat.postEphemeral", Channel: r.Form.Get("channel"), User: r.Form.Get("user"), Text: r.Form.Get("text"), ThreadTS: r.Form.Get("thread_ts")})
	reply(w, map[string]any{"ok": true, "message_ts": ts})
}

func (f *fakeSlack) permalink(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	ch, ts := r.Form.Get("channel"), r.Form.Get("message_ts")
	reply(w, map[string]any{"ok": true, "channel": ch, "permalink": permalinkOf(ch, ts)})
}

// permalinkOf is the link Slack gives a message.
func permalinkOf(channel, ts string) string {
	return "https://test.slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

func (f *fakeSlack) reactionsAdd(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	c := call{Method: "reactions.add", Channel: r.Form.Get("channel"), TS: r.Form.Get("timestamp"), Name: r.Form.Get("name")}
	key := c.Channel + c.TS + c.Name
	f.mu.Lock()
	dup := f.reactions[key]
	f.reactions[key] = true
	f.mu.Unlock()
	if dup {
		reply(w, map[string]any{"ok": false, "error": "already_reacted"})
		return
	}
	f.record(c)
	reply(w, map[string]any{"ok": true})
}

func (f *fakeSlack) usersInfo(w http.ResponseWriter, r *http.Request) {
	if !f.form(w, r) {
		return
	}
	id := r.Form.Get("user")
	names := map[string]string{agentUser: "Alice Agent", agent2User: "Bob Agent", "UCUST0001": "Carol"}
	name, ok := names[id]
	if !ok {
		reply(w, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	reply(w, map[string]any{"ok": true, "user": map[string]any{"id": id, "name": strings.ToLower(strings.Fields(name)[0]),
		"real_name": name, "profile": map[string]any{"display_name": name, "real_name": name}}})
}

// file serves an agent's file at url_private, for the bot token only.
func (f *fakeSlack) file(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testBotTok {
		http.Error(w, "not authed", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("file contents of " + r.URL.Path))
}

// FileURL is the url_private of a fake file.
func (f *fakeSlack) FileURL(name string) string { return f.URL() + "files-pri/" + name }

// Socket Mode: apps.connections.open hands out ws://.../socket, where the
// fake says hello, sends what Push gives it, pings, and records acks.

func (f *fakeSlack) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testAppTok {
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	reply(w, map[string]any{"ok": true, "url": strings.Replace(f.URL(), "http://", "ws://", 1) + "socket"})
}

func (f *fakeSlack) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.sockMu.Lock()
	f.sock = conn
	f.sockets++
	f.sockMu.Unlock()
	if err := f.write(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": "A0TEST"}}); err != nil {
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				f.sockMu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				f.sockMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		f.sockMu.Lock()
		f.acks = append(f.acks, data)
		f.sockMu.Unlock()
	}
}

func (f *fakeSlack) write(v any) error {
	f.sockMu.Lock()
	defer f.sockMu.Unlock()
	if f.sock == nil {
		return fmt.Errorf("no socket connected")
	}
	return f.sock.WriteJSON(v)
}

// Connected reports whether the adapter's socket is open.
func (f *fakeSlack) Connected() bool {
	f.sockMu.Lock()
	defer f.sockMu.Unlock()
	return f.sock != nil
}

// Push sends a Socket Mode request of type typ with payload and envelope id.
func (f *fakeSlack) Push(t *testing.T, typ, envelopeID string, payload any) {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"type": typ, "envelope_id": envelopeID, "payload": json.RawMessage(raw), "accepts_response_payload": typ == "slash_commands"}
	if err := f.write(req); err != nil {
		t.Fatal(err)
	}
}

// Ack returns the acknowledgement of envelope id, if it came.
func (f *fakeSlack) Ack(id string) (json.RawMessage, bool) {
	f.sockMu.Lock()
	defer f.sockMu.Unlock()
	for _, a := range f.acks {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(a, &ack) == nil && ack.EnvelopeID == id {
			return ack.Payload, true
		}
	}
	return nil, false
}

func (f *fakeSlack) closeSocket() {
	f.sockMu.Lock()
	defer f.sockMu.Unlock()
	if f.sock != nil {
		_ = f.sock.Close()
	}
}
