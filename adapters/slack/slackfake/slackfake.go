// Package slackfake is a fake Slack workspace for tests of the Slack desk:
// slack-go's slacktest server with the Web API methods the desk calls
// answered the way Slack documents them (auth.test, chat.postMessage,
// chat.update, chat.delete, chat.postEphemeral, chat.getPermalink, views.open,
// reactions.add, users.info, apps.connections.open, files at url_private,
// and files upload v2: files.getUploadURLExternal, the upload URL it hands
// out and files.completeUploadExternal), every call recorded, and a Socket
// Mode WebSocket that says hello, sends what Push gives it, records the
// acknowledgements and can ask the adapter to disconnect.
//
// It also builds what Slack sends the adapter: Events API payloads
// (EventPayload, AgentReply, AgentEdit, AgentDelete), block_actions
// interactions (Click), slash commands (Command), signed the way Slack signs
// them (Signed, Sign, Post) for http mode, or pushed over the socket
// (PushEvent, PushInteraction, PushCommand) for socket mode.
//
// Point the adapter at it with api_url: Server.URL, bot_token: BotToken and
// either mode: socket with app_token: AppToken, or mode: http with
// signing_secret: SigningSecret.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// Credentials of the fake app.
const (
	// BotToken is the Bot User OAuth Token the Web API accepts: the adapter's
	// bot_token. Files at url_private are served for it only.
	BotToken = "xoxb-1-test"
	// AppToken is the app-level token apps.connections.open accepts: the
	// adapter's app_token in socket mode.
	AppToken = "xapp-1-test"
	// SigningSecret is the app's Signing Secret: the adapter's signing_secret
	// in http mode. Post signs with it.
	SigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"
)

// Ids of the fake workspace.
const (
	// TeamID is the workspace's id.
	TeamID = "T0TEST"
	// AppID is the app's id.
	AppID = "A0TEST"
	// BotUser is the bot's user id, as auth.test reports it.
	BotUser = "UBOT0001"
	// BotID is the bot's bot id, as auth.test reports it; the bot's own
	// messages carry it.
	BotID = "BBOT0001"
	// AgentUser is an agent; users.info calls them AgentName.
	AgentUser = "UAGENT001"
	// AgentName is AgentUser's real and display name.
	AgentName = "Alice Agent"
	// Agent2User is a second agent; users.info calls them Agent2Name.
	Agent2User = "UAGENT002"
	// Agent2Name is Agent2User's real and display name.
	Agent2Name = "Bob Agent"
	// ChannelSupport is a channel the bot is in, for the default queue.
	ChannelSupport = "CSUPPORT1"
	// ChannelBilling is another channel the bot is in, for a second queue.
	ChannelBilling = "CBILLING1"
)

// AvatarURL is the profile picture users.info gives user id.
func AvatarURL(id string) string { return "https://avatars.slack-edge.com/" + id + "_72.png" }

// users are the people users.info knows, by id.
var users = map[string]string{AgentUser: AgentName, Agent2User: Agent2Name, "UCUST0001": "Carol"}

// Call is one Web API call the fake answered with ok:true.
type Call struct {
	// Method is the Web API method, e.g. "chat.postMessage".
	Method string
	// Channel is the channel parameter.
	Channel string
	// TS is the ts of the message posted (as the fake gave it), updated,
	// deleted or reacted to.
	TS string
	// ThreadTS is thread_ts: the root of the thread posted in, "" for a
	// message that opens a thread.
	ThreadTS string
	// Text is the text parameter.
	Text string
	// Blocks is the blocks parameter, JSON with '<', '>' and '&' unescaped.
	Blocks string
	// Username and Icon are chat.postMessage's username and icon_emoji.
	Username, Icon string
	// User is chat.postEphemeral's user.
	User string
	// Name is reactions.add's emoji name, files.getUploadURLExternal's
	// filename, and files.completeUploadExternal's (first) file id.
	Name string
}

// Server is the fake Slack. Its methods are safe for concurrent use.
type Server struct {
	srv *slacktest.Server

	mu         sync.Mutex
	calls      []Call
	seq        int
	base       int64
	throttle   int // answer this many more calls with 429
	retryAfter int
	failPost   string     // chat.postMessage answers this error
	onPost     func(Call) // called with each post before it is answered
	failUpload string     // files.completeUploadExternal answers this error
	reactions  map[string]bool
	uploads    []*Upload
	requests   map[string]int // by method, answered ok or not

	sockMu sync.Mutex // guards sock, acks and opens, and serialises writes to sock
	sock   *websocket.Conn
	acks   []json.RawMessage
	opens  int
}

// New starts a fake Slack, stopped when the test ends.
//
// slacktest's own chat.postMessage gives whole-second timestamps that
// collide, and it has no chat.update, chat.delete, chat.getPermalink or
// Socket Mode endpoint: the fake answers those itself.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{base: time.Now().Unix(), reactions: map[string]bool{}, requests: map[string]int{}}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		handle := func(path string, h http.HandlerFunc) { c.Handle(path, s.count(strings.Trim(path, "/"), h)) }
		handle("/auth.test", s.authTest)
		handle("/chat.postMessage", s.postMessage)
		handle("/chat.update", s.update)
		handle("/chat.delete", s.delete)
		handle("/chat.postEphemeral", s.postEphemeral)
		handle("/chat.getPermalink", s.permalink)
		handle("/views.open", s.viewsOpen)
		handle("/reactions.add", s.reactionsAdd)
		handle("/users.info", s.usersInfo)
		handle("/apps.connections.open", s.connectionsOpen)
		handle("/socket", s.socket)
		handle("/files-pri/", s.file)
		handle("/files.getUploadURLExternal", s.getUploadURL)
		handle("/upload/v1/", s.uploadFile)
		handle("/files.completeUploadExternal", s.completeUpload)
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	t.Cleanup(s.closeSocket)
	return s
}

// URL is the Web API base URL, ending in /: the adapter's api_url.
func (s *Server) URL() string { return s.srv.GetAPIURL() }

// FileURL is the url_private of a file named name (e.g.
// "T0TEST-F0FORM001/form.pdf"); the fake serves "file contents of
// /files-pri/<name>" there, as text/plain, to BotToken only.
func (s *Server) FileURL(name string) string { return s.URL() + "files-pri/" + name }

// Permalink is the link Slack gives the message ts of channel, as
// chat.getPermalink answers it.
func Permalink(channel, ts string) string {
	return "https://test.slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// Calls returns the calls of method ("" for all) answered so far, in order.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Requests returns how many requests reached method (e.g. "reactions.add"),
// whatever the fake answered: with Calls, it tells calls Slack refused
// (already_reacted, 429) from calls never made.
func (s *Server) Requests(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method]
}

// count counts the requests to method before h answers them.
func (s *Server) count(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[method]++
		s.mu.Unlock()
		h(w, r)
	}
}

// Roots returns the chat.postMessage calls that opened a thread (no
// thread_ts), in order: the desk's card of each conversation. A thread's
// replies are the chat.postMessage calls whose ThreadTS is its root's TS.
func (s *Server) Roots() []Call {
	return slices.DeleteFunc(s.Calls("chat.postMessage"), func(c Call) bool { return c.ThreadTS != "" })
}

// Throttle answers the next n Web API calls with 429 and Retry-After: after
// (seconds).
func (s *Server) Throttle(n, after int) {
	s.mu.Lock()
	s.throttle, s.retryAfter = n, after
	s.mu.Unlock()
}

// FailPosts makes chat.postMessage answer ok:false with error code, e.g.
// "channel_not_found", until FailPosts("").
func (s *Server) FailPosts(code string) {
	s.mu.Lock()
	s.failPost = code
	s.mu.Unlock()
}

// OnPost calls f with each chat.postMessage after it is recorded (Calls
// shows it) and before it is answered, as a Slack client sees a message
// before the poster has its ts. f runs on the request's goroutine.
func (s *Server) OnPost(f func(Call)) {
	s.mu.Lock()
	s.onPost = f
	s.mu.Unlock()
}

// nextTS is a fresh message ts. s.mu must be held.
func (s *Server) nextTS() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", s.base, s.seq)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

// throttled answers 429 when asked to and reports whether it did.
func (s *Server) throttled(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttle == 0 {
		return false
	}
	s.throttle--
	w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter))
	w.WriteHeader(http.StatusTooManyRequests)
	return true
}

// form parses a Web API call and checks its token; false means it answered.
func (s *Server) form(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	if got := r.Form.Get("token") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); !strings.Contains(got, BotToken) && !strings.Contains(got, AppToken) {
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return false
	}
	return !s.throttled(w)
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

func (s *Server) authTest(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	reply(w, map[string]any{"ok": true, "url": "https://test.slack.com/", "team": "Test", "user": "omnigate",
		"team_id": TeamID, "user_id": BotUser, "bot_id": BotID})
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	ch := r.Form.Get("channel")
	s.mu.Lock()
	fail, onPost := s.failPost, s.onPost
	ts := s.nextTS()
	s.mu.Unlock()
	if fail != "" {
		reply(w, map[string]any{"ok": false, "error": fail})
		return
	}
	c := Call{Method: "chat.postMessage", Channel: ch, TS: ts, ThreadTS: r.Form.Get("thread_ts"), Text: r.Form.Get("text"),
		Blocks: unescaped(r.Form.Get("blocks")), Username: r.Form.Get("username"), Icon: r.Form.Get("icon_emoji")}
	s.record(c)
	if onPost != nil {
		onPost(c)
	}
	reply(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "message": map[string]any{"text": r.Form.Get("text"), "ts": ts}})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	c := Call{Method: "chat.update", Channel: r.Form.Get("channel"), TS: r.Form.Get("ts"), Text: r.Form.Get("text"), Blocks: unescaped(r.Form.Get("blocks"))}
	s.record(c)
	reply(w, map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS, "text": c.Text})
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	c := Call{Method: "chat.delete", Channel: r.Form.Get("channel"), TS: r.Form.Get("ts")}
	s.record(c)
	reply(w, map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS})
}

func (s *Server) postEphemeral(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	s.mu.Lock()
	ts := s.nextTS()
	s.mu.Unlock()
	s.record(Call{Method: "chat.postEphemeral", Channel: r.Form.Get("channel"), User: r.Form.Get("user"), Text: r.Form.Get("text"), ThreadTS: r.Form.Get("thread_ts")})
	reply(w, map[string]any{"ok": true, "message_ts": ts})
}

// viewsOpen answers views.open (a JSON body: trigger_id and view) with the
// view, as Slack does; the call's Text is the trigger id, Blocks the view.
func (s *Server) viewsOpen(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TriggerID string          `json:"trigger_id"`
		View      json.RawMessage `json:"view"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TriggerID == "" || len(req.View) == 0 {
		reply(w, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	s.mu.Lock()
	id := "V" + strconv.Itoa(s.seq+1000)
	s.mu.Unlock()
	s.record(Call{Method: "views.open", Text: req.TriggerID, Blocks: unescaped(string(req.View))})
	var view map[string]any
	_ = json.Unmarshal(req.View, &view)
	view["id"] = id
	reply(w, map[string]any{"ok": true, "view": view})
}

func (s *Server) permalink(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	ch, ts := r.Form.Get("channel"), r.Form.Get("message_ts")
	reply(w, map[string]any{"ok": true, "channel": ch, "permalink": Permalink(ch, ts)})
}

// reactionsAdd answers already_reacted to the same reaction twice, as Slack
// does, and records only the first.
func (s *Server) reactionsAdd(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	c := Call{Method: "reactions.add", Channel: r.Form.Get("channel"), TS: r.Form.Get("timestamp"), Name: r.Form.Get("name")}
	key := c.Channel + c.TS + c.Name
	s.mu.Lock()
	dup := s.reactions[key]
	s.reactions[key] = true
	s.mu.Unlock()
	if dup {
		reply(w, map[string]any{"ok": false, "error": "already_reacted"})
		return
	}
	s.record(c)
	reply(w, map[string]any{"ok": true})
}

func (s *Server) usersInfo(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	id := r.Form.Get("user")
	name, ok := users[id]
	if !ok {
		reply(w, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	reply(w, map[string]any{"ok": true, "user": map[string]any{"id": id, "name": strings.ToLower(strings.Fields(name)[0]),
		"real_name": name, "profile": map[string]any{"display_name": name, "real_name": name, "image_72": AvatarURL(id)}}})
}

// file serves an agent's file at url_private, for the bot token only.
func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+BotToken {
		http.Error(w, "not authed", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("file contents of " + r.URL.Path))
}

// Upload is a file uploaded with files upload v2: files.getUploadURLExternal
// gave it an id and an upload URL, the bytes were POSTed there, and
// files.completeUploadExternal shared it.
type Upload struct {
	// ID is the file id the fake gave it (F...).
	ID string
	// Name and Length are getUploadURLExternal's filename and length.
	Name   string
	Length int
	// Data is what was POSTed to the upload URL (the file part of a
	// multipart form, or the raw body).
	Data []byte
	// Title, Channel, ThreadTS and Comment are completeUploadExternal's
	// title of the file, channel_id, thread_ts and initial_comment; Shared
	// says it was called.
	Title, Channel, ThreadTS, Comment string
	Shared                            bool
}

// Uploads returns the files uploaded so far, shared or not, in the order
// their upload URLs were asked for.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Upload, 0, len(s.uploads))
	for _, u := range s.uploads {
		u.Data = slices.Clone(u.Data)
		out = append(out, *u)
	}
	return out
}

// FailUploads makes files.completeUploadExternal answer ok:false with error
// code, e.g. "file_uploads_disabled", until FailUploads("").
func (s *Server) FailUploads(code string) {
	s.mu.Lock()
	s.failUpload = code
	s.mu.Unlock()
}

// getUploadURL answers files.getUploadURLExternal: filename and a positive
// length are required (invalid_arguments otherwise, as Slack answers); the
// upload URL is under the fake's API URL.
func (s *Server) getUploadURL(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	name := r.Form.Get("filename")
	length, err := strconv.Atoi(r.Form.Get("length"))
	if name == "" || err != nil || length <= 0 {
		reply(w, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("F0UPLOAD%04d", s.seq)
	s.uploads = append(s.uploads, &Upload{ID: id, Name: name, Length: length})
	s.mu.Unlock()
	s.record(Call{Method: "files.getUploadURLExternal", Name: name})
	reply(w, map[string]any{"ok": true, "upload_url": s.URL() + "upload/v1/" + id, "file_id": id})
}

// uploadFile takes the bytes of a file at its upload URL, raw or as the
// file part of a multipart form, and answers "OK - <length>" as Slack does.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/upload/v1/")
	var data []byte
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		var f multipart.File
		if f, _, err = r.FormFile("file"); err == nil {
			data, err = io.ReadAll(f)
			_ = f.Close()
		}
	} else {
		data, err = io.ReadAll(r.Body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	u := s.upload(id)
	if u != nil {
		u.Data = data
	}
	s.mu.Unlock()
	if u == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = fmt.Fprintf(w, "OK - %d", len(data))
}

// completeUpload answers files.completeUploadExternal: every file must have
// been uploaded (file_not_found otherwise); it is shared in channel_id, in
// the thread thread_ts, with initial_comment.
func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(r.Form.Get("files")), &files); err != nil || len(files) == 0 {
		reply(w, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	ch, thread, comment := r.Form.Get("channel_id"), r.Form.Get("thread_ts"), r.Form.Get("initial_comment")
	s.mu.Lock()
	fail := s.failUpload
	var out []map[string]any
	for _, f := range files {
		u := s.upload(f.ID)
		if u == nil || u.Data == nil {
			s.mu.Unlock()
			reply(w, map[string]any{"ok": false, "error": "file_not_found"})
			return
		}
		if fail == "" {
			u.Title, u.Channel, u.ThreadTS, u.Comment, u.Shared = f.Title, ch, thread, comment, true
		}
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	s.mu.Unlock()
	if fail != "" {
		reply(w, map[string]any{"ok": false, "error": fail})
		return
	}
	s.record(Call{Method: "files.completeUploadExternal", Channel: ch, ThreadTS: thread, Text: comment, Name: files[0].ID})
	reply(w, map[string]any{"ok": true, "files": out})
}

// upload returns the upload of file id, nil if there is none. s.mu must be
// held.
func (s *Server) upload(id string) *Upload {
	for _, u := range s.uploads {
		if u.ID == id {
			return u
		}
	}
	return nil
}
