// Package telegramtest is a fake Telegram Bot API for tests: an httptest
// server that answers getMe, setWebhook, deleteWebhook, getWebhookInfo,
// getUpdates (with long polling, offset confirmation, allowed_updates, and
// the 409 Conflict Telegram answers a call that a second caller's call ended),
// sendMessage (with MarkdownV2 checked as Telegram parses it, and the
// 4,096-character limit), sendPhoto, sendDocument (each with an optional
// inline keyboard), answerCallbackQuery and getFile, and serves file
// downloads, all in the Bot API's documented JSON shapes:
//
//	{"ok":true,"result":...}
//	{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}
//
// It records every request, and can be told to fail calls the way Telegram
// does (Fail with TooManyRequests, Blocked, ChatNotFound, ...). Press builds
// the callback_query update of a customer pressing a button the bot sent.
//
// Point the adapter at it with api_endpoint: Server.Endpoint.
package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// Token is a well-formed bot token the fake accepts by default.
const Token = "123456789:AAHfake-Token_for-tests-0123456789abcdef"

// MaxMessageLength is Telegram's limit on a message text after entity
// parsing, counted in UTF-16 code units.
const MaxMessageLength = 4096

// Request is one Bot API call the fake received.
type Request struct {
	// Method is the Bot API method, e.g. "sendMessage".
	Method string
	// Params are its parameters as Telegram reads them: form fields, JSON
	// members (objects and arrays as JSON text) or multipart fields.
	Params map[string]string
	// At is when it arrived.
	At time.Time
}

// Sent is a message the fake accepted from the bot.
type Sent struct {
	// Method is sendMessage, sendPhoto or sendDocument.
	Method string
	// ChatID is the chat it went to.
	ChatID int64
	// MessageID is the id the fake gave it.
	MessageID int
	// Text is what the customer sees: the text after MarkdownV2 parsing, or
	// the caption.
	Text string
	// Raw is the text or caption as the bot sent it; ParseMode its parse_mode.
	Raw, ParseMode string
	// File is the photo or document parameter: a URL or a file id.
	File string
	// Keyboard is the inline keyboard of reply_markup, row by row; nil
	// without one.
	Keyboard [][]Button
}

// Failure makes matching calls fail as Telegram fails them.
type Failure struct {
	// Methods the failure applies to; empty means the send methods
	// (sendMessage, sendPhoto, sendDocument).
	Methods []string
	// ChatID limits it to one chat_id; empty means any.
	ChatID string
	// Code is error_code and the HTTP status; Description the description.
	Code        int
	Description string
	// RetryAfter, when set, is parameters.retry_after.
	RetryAfter int
	// Times is how many calls fail; 0 means all from now on.
	Times int
}

// TooManyRequests is Telegram's flood-control answer.
func TooManyRequests(retryAfter int) Failure {
	return Failure{Code: 429, Description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), RetryAfter: retryAfter}
}

// Blocked is the answer to a send to a user who blocked the bot.
func Blocked() Failure {
	return Failure{Code: 403, Description: "Forbidden: bot was blocked by the user"}
}

// ChatNotFound is the answer to a send to a chat Telegram does not know.
func ChatNotFound() Failure { return Failure{Code: 400, Description: "Bad Request: chat not found"} }

// InternalError is a 5xx answer, as Telegram gives during outages.
func InternalError() Failure { return Failure{Code: 502, Description: "Bad Gateway"} }

// Webhook is what the last setWebhook registered.
type Webhook struct {
	URL            string
	SecretToken    string
	AllowedUpdates []string
}

// Server is the fake Bot API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the fake, like http://127.0.0.1:1234.
	URL string
	// Token is the bot token it accepts; other tokens get 401.
	Token string
	// BotID and BotUserName describe the bot in getMe.
	BotID       int64
	BotUserName string

	srv *httptest.Server

	mu       sync.Mutex
	requests []Request
	sent     []Sent
	failures []*Failure
	updates  []json.RawMessage // not yet confirmed, in update_id order
	ids      []int             // update_id of updates[i]
	kinds    []string          // the kind of updates[i], e.g. "message"
	allowed  []string          // the last allowed_updates; nil for Telegram's default
	nextUpd  int
	nextMsg  int
	webhook  Webhook
	files    map[string]file
	messages map[int]map[string]any // sent messages as Telegram returned them, by message_id
	queries  map[string]bool        // callback query ids from Press: answered or not
	answers  []Answer
	wake     chan struct{} // closed and replaced when an update arrives

	polling   chan struct{} // the getUpdates call in flight, closed to end it; nil when none
	conflicts int           // getUpdates calls ended by a later one
}

type file struct {
	path    string
	content []byte
}

// NewServer starts a fake Bot API for token (Token when empty), closed when
// the test ends.
func NewServer(t testing.TB, token string) *Server {
	t.Helper()
	if token == "" {
		token = Token
	}
	id, _, _ := strings.Cut(token, ":")
	botID, _ := strconv.ParseInt(id, 10, 64)
	s := &Server{
		Token:       token,
		BotID:       botID,
		BotUserName: "omnigate_test_bot",
		nextUpd:     100000,
		nextMsg:     1,
		files:       map[string]file{},
		messages:    map[int]map[string]any{},
		queries:     map[string]bool{},
		wake:        make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Close stops the server, as if Telegram were unreachable.
func (s *Server) Close() { s.srv.Close() }

// Endpoint is the api_endpoint pattern for the adapter: URL + "/bot%s/%s".
func (s *Server) Endpoint() string { return s.URL + "/bot%s/%s" }

// Requests returns the calls of method received so far, all when method is "".
func (s *Server) Requests(method string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if method == "" || r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// Sent returns the messages accepted so far, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// SentTexts returns the Text of every accepted message, in order.
func (s *Server) SentTexts() []string {
	var out []string
	for _, m := range s.Sent() {
		out = append(out, m.Text)
	}
	return out
}

// Fail makes matching calls fail from now on (or the next f.Times ones).
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &f)
}

// Heal removes every failure set with Fail.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// Webhook returns what the last setWebhook registered (zero after deleteWebhook).
func (s *Server) Webhook() Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook
}

// AddUpdate queues an update for getUpdates and returns its update_id. u is
// an update as Telegram documents it, e.g. {"message": {...}}; without an
// "update_id" the next id is used, and ids must increase. As on Telegram, an
// update of a kind the last allowed_updates (of getUpdates or setWebhook)
// left out is never delivered; without one, chat_member, message_reaction
// and message_reaction_count are left out. Telegram applies the setting as it
// creates updates, the fake as it delivers them, so that updates queued
// before the first getUpdates show what that call asked for.
func (s *Server) AddUpdate(t testing.TB, u map[string]any) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextUpd
	if v, ok := u["update_id"]; ok {
		switch n := v.(type) {
		case int:
			id = n
		case float64:
			id = int(n)
		default:
			t.Fatalf("telegramtest: update_id %v is not a number", v)
		}
	}
	if len(s.ids) > 0 && id <= s.ids[len(s.ids)-1] {
		t.Fatalf("telegramtest: update_id %d does not increase", id)
	}
	u = cloneMap(u)
	u["update_id"] = id
	raw, err := json.Marshal(u)
	if err != nil {
		t.Fatalf("telegramtest: update: %v", err)
	}
	kind := ""
	for k := range u {
		if k != "update_id" {
			kind = k
		}
	}
	s.updates = append(s.updates, raw)
	s.ids = append(s.ids, id)
	s.kinds = append(s.kinds, kind)
	s.nextUpd = id + 1
	close(s.wake)
	s.wake = make(chan struct{})
	return id
}

// Polling reports whether a getUpdates call is in flight.
func (s *Server) Polling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling != nil
}

// Conflicts returns how many getUpdates calls were ended by another caller's
// getUpdates, each answered 409 Conflict as Telegram does when two bot
// instances poll at once.
func (s *Server) Conflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

// Pending returns how many queued updates getUpdates has not seen confirmed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// AddFile makes getFile know fileID, stored at filePath with content, and
// serves it at URL/file/bot<token>/<filePath>.
func (s *Server) AddFile(fileID, filePath string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[fileID] = file{path: filePath, content: slices.Clone(content)}
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// WebhookRequest builds the request Telegram makes to deliver update u to a
// webhook at target (a URL or a path) with the given secret token ("" for
// none): POST, Content-Type application/json, X-Telegram-Bot-Api-Secret-Token.
func WebhookRequest(t testing.TB, target, secret string, u any) *http.Request {
	t.Helper()
	body, err := json.Marshal(u)
	if err != nil {
		t.Fatalf("telegramtest: update: %v", err)
	}
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	if secret != "" {
		r.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	return r
}

// result is the Bot API's answer envelope.
type result struct {
	OK          bool            `json:"ok"`
	Result      any             `json:"result,omitempty"`
	ErrorCode   int             `json:"error_code,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  *responseParams `json:"parameters,omitempty"`
	status      int             // the HTTP status, error_code for errors
}

type responseParams struct {
	RetryAfter      int   `json:"retry_after,omitempty"`
	MigrateToChatID int64 `json:"migrate_to_chat_id,omitempty"`
}

func ok(v any) result                  { return result{OK: true, Result: v, status: http.StatusOK} }
func okDesc(v any, desc string) result { r := ok(v); r.Description = desc; return r }
func fail(code int, desc string) result {
	return result{ErrorCode: code, Description: desc, status: code}
}

var pathRE = regexp.MustCompile(`^/bot([^/]+)/([A-Za-z]+)$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if rest, found := strings.CutPrefix(r.URL.Path, "/file/bot"); found {
		s.serveFile(w, rest)
		return
	}
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		write(w, fail(404, "Not Found"))
		return
	}
	token, method := m[1], m[2]
	if token != s.Token {
		write(w, fail(401, "Unauthorized"))
		return
	}
	params, err := readParams(r)
	if err != nil {
		write(w, fail(400, "Bad Request: "+err.Error()))
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: method, Params: params, At: time.Now()})
	res, injected := s.injected(method, params)
	s.mu.Unlock()
	if injected {
		write(w, res)
		return
	}
	switch method {
	case "getMe":
		res = ok(map[string]any{"id": s.BotID, "is_bot": true, "first_name": "Omnigate Test", "username": s.BotUserName,
			"can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false})
	case "setWebhook":
		res = s.setWebhook(params)
	case "deleteWebhook":
		s.mu.Lock()
		had := s.webhook.URL != ""
		s.webhook = Webhook{}
		s.mu.Unlock()
		res = okDesc(true, map[bool]string{true: "Webhook was deleted", false: "Webhook is already deleted"}[had])
	case "getWebhookInfo":
		s.mu.Lock()
		res = ok(map[string]any{"url": s.webhook.URL, "has_custom_certificate": false, "pending_update_count": len(s.updates)})
		s.mu.Unlock()
	case "getUpdates":
		res = s.getUpdates(r, params)
	case "sendMessage", "sendPhoto", "sendDocument":
		res = s.send(method, params)
	case "answerCallbackQuery":
		res = s.answerCallbackQuery(params)
	case "editMessageText", "deleteMessage":
		res = s.change(method, params)
	case "getFile":
		s.mu.Lock()
		f, found := s.files[params["file_id"]]
		s.mu.Unlock()
		if !found {
			res = fail(400, "Bad Request: invalid file_id")
			break
		}
		res = ok(map[string]any{"file_id": params["file_id"], "file_unique_id": "u" + params["file_id"],
			"file_size": len(f.content), "file_path": f.path})
	default:
		res = fail(404, "Not Found")
	}
	write(w, res)
}

// injected applies the first matching Failure. s.mu is held.
func (s *Server) injected(method string, params map[string]string) (result, bool) {
	for i, f := range s.failures {
		methods := f.Methods
		if len(methods) == 0 {
			methods = []string{"sendMessage", "sendPhoto", "sendDocument"}
		}
		if !slices.Contains(methods, method) || (f.ChatID != "" && f.ChatID != params["chat_id"]) {
			continue
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
		}
		res := fail(f.Code, f.Description)
		if f.RetryAfter > 0 {
			res.Parameters = &responseParams{RetryAfter: f.RetryAfter}
		}
		return res, true
	}
	return result{}, false
}

var secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (s *Server) setWebhook(p map[string]string) result {
	hook := Webhook{URL: p["url"], SecretToken: p["secret_token"]}
	if hook.URL == "" {
		s.mu.Lock()
		s.webhook = Webhook{}
		s.mu.Unlock()
		return okDesc(true, "Webhook was deleted")
	}
	u, err := url.Parse(hook.URL)
	switch {
	case err != nil || u.Host == "":
		return fail(400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known")
	case u.Scheme != "https":
		return fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
	}
	if hook.SecretToken != "" && !secretRE.MatchString(hook.SecretToken) {
		return fail(400, "Bad Request: secret token contains unallowed characters")
	}
	if a := p["allowed_updates"]; a != "" {
		if err := json.Unmarshal([]byte(a), &hook.AllowedUpdates); err != nil {
			return fail(400, "Bad Request: can't parse allowed updates JSON object")
		}
	}
	s.mu.Lock()
	s.webhook = hook
	if p["allowed_updates"] != "" {
		s.allowed = hook.AllowedUpdates
	}
	s.mu.Unlock()
	return okDesc(true, "Webhook was set")
}

// getUpdates confirms the updates before offset, then returns those from
// offset on, waiting up to timeout seconds for one when there are none. A
// call in flight when another arrives ends with 409 Conflict, as on Telegram.
func (s *Server) getUpdates(r *http.Request, p map[string]string) result {
	offset, _ := strconv.Atoi(p["offset"])
	timeout, _ := strconv.Atoi(p["timeout"])
	limit, _ := strconv.Atoi(p["limit"])
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	var allowed []string
	if a := p["allowed_updates"]; a != "" {
		if err := json.Unmarshal([]byte(a), &allowed); err != nil {
			return fail(400, "Bad Request: can't parse allowed updates JSON object")
		}
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	ended := make(chan struct{})
	s.mu.Lock()
	if s.polling != nil {
		close(s.polling)
		s.conflicts++
	}
	s.polling = ended
	if p["allowed_updates"] != "" {
		s.allowed = allowed
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.polling == ended {
			s.polling = nil
		}
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		select {
		case <-ended:
			s.mu.Unlock()
			return fail(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
		default:
		}
		if s.webhook.URL != "" {
			s.mu.Unlock()
			return fail(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
		}
		if offset > 0 {
			n := 0
			for n < len(s.ids) && s.ids[n] < offset {
				n++
			}
			s.ids, s.updates, s.kinds = s.ids[n:], s.updates[n:], s.kinds[n:]
		}
		s.dropNotAllowed()
		var out []json.RawMessage
		for i := range s.updates {
			if len(out) == limit {
				break
			}
			out = append(out, s.updates[i])
		}
		wake := s.wake
		s.mu.Unlock()
		if len(out) > 0 || timeout <= 0 {
			if out == nil {
				out = []json.RawMessage{}
			}
			return ok(out)
		}
		select {
		case <-wake:
		case <-ended:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			return ok([]json.RawMessage{})
		}
	}
}

// send answers sendMessage, sendPhoto and sendDocument as Telegram does.
func (s *Server) send(method string, p map[string]string) result {
	chat := p["chat_id"]
	if chat == "" {
		return fail(400, "Bad Request: chat_id is empty")
	}
	chatID, err := strconv.ParseInt(chat, 10, 64)
	if err != nil || chatID == 0 {
		return fail(400, "Bad Request: chat not found")
	}
	sent := Sent{Method: method, ChatID: chatID, ParseMode: p["parse_mode"]}
	msg := map[string]any{}
	if rm := p["reply_markup"]; rm != "" {
		kb, markup, res, bad := parseReplyMarkup(rm)
		if bad {
			return res
		}
		sent.Keyboard = kb
		if markup != nil {
			msg["reply_markup"] = markup
		}
	}
	switch method {
	case "sendMessage":
		sent.Raw = p["text"]
		if strings.TrimSpace(sent.Raw) == "" {
			return fail(400, "Bad Request: message text is empty")
		}
		text, res, bad := parse(sent.Raw, sent.ParseMode)
		if bad {
			return res
		}
		if strings.TrimSpace(text) == "" {
			return fail(400, "Bad Request: message text is empty")
		}
		if len(utf16.Encode([]rune(text))) > MaxMessageLength {
			return fail(400, "Bad Request: message is too long")
		}
		sent.Text = text
		msg["text"] = text
	case "sendPhoto", "sendDocument":
		field := map[string]string{"sendPhoto": "photo", "sendDocument": "document"}[method]
		sent.File = p[field]
		if sent.File == "" {
			return fail(400, "Bad Request: there is no "+field+" in the request")
		}
		if strings.Contains(sent.File, "://") && !strings.HasPrefix(sent.File, "http://") && !strings.HasPrefix(sent.File, "https://") {
			return fail(400, "Bad Request: wrong HTTP URL specified")
		}
		sent.Raw = p["caption"]
		caption, res, bad := parse(sent.Raw, sent.ParseMode)
		if bad {
			return res
		}
		sent.Text = caption
		if caption != "" {
			msg["caption"] = caption
		}
		if method == "sendPhoto" {
			msg["photo"] = []map[string]any{
				{"file_id": "AgACfake-small", "file_unique_id": "AQADs", "width": 90, "height": 60, "file_size": 1500},
				{"file_id": "AgACfake-large", "file_unique_id": "AQADl", "width": 1280, "height": 853, "file_size": 98000},
			}
		} else {
			name := "document"
			if u, err := url.Parse(sent.File); err == nil && u.Path != "" {
				name = u.Path[strings.LastIndex(u.Path, "/")+1:]
			}
			msg["document"] = map[string]any{"file_id": "BQACfake-doc", "file_unique_id": "AgADd", "file_name": name}
		}
	}
	s.mu.Lock()
	sent.MessageID = s.nextMsg
	s.nextMsg++
	s.sent = append(s.sent, sent)
	s.mu.Unlock()
	chatType := "private"
	if chatID < 0 {
		chatType = "supergroup"
	}
	msg["message_id"] = sent.MessageID
	msg["from"] = map[string]any{"id": s.BotID, "is_bot": true, "first_name": "Omnigate Test", "username": s.BotUserName}
	msg["chat"] = map[string]any{"id": chatID, "type": chatType}
	msg["date"] = time.Now().Unix()
	s.mu.Lock()
	s.messages[sent.MessageID] = msg
	s.mu.Unlock()
	return ok(msg)
}

// change answers editMessageText and deleteMessage as Telegram does for a
// message the bot sent: the customer sees the new text, or the message goes.
func (s *Server) change(method string, p map[string]string) result {
	id, err := strconv.Atoi(p["message_id"])
	s.mu.Lock()
	msg, found := s.messages[id]
	s.mu.Unlock()
	if err != nil || !found {
		return fail(400, "Bad Request: message to "+map[string]string{"editMessageText": "edit", "deleteMessage": "delete"}[method]+" not found")
	}
	if chat, _ := msg["chat"].(map[string]any); fmt.Sprint(chat["id"]) != p["chat_id"] {
		return fail(400, "Bad Request: message to edit not found")
	}
	if method == "deleteMessage" {
		s.mu.Lock()
		delete(s.messages, id)
		s.mu.Unlock()
		return ok(true)
	}
	text, res, bad := parse(p["text"], p["parse_mode"])
	if bad {
		return res
	}
	if strings.TrimSpace(text) == "" {
		return fail(400, "Bad Request: message text is empty")
	}
	s.mu.Lock()
	msg["text"], msg["edit_date"] = text, time.Now().Unix()
	s.mu.Unlock()
	return ok(msg)
}

// parse returns the text a customer sees for raw in parse mode mode, or the
// error answer.
func parse(raw, mode string) (string, result, bool) {
	switch mode {
	case "":
		return raw, result{}, false
	case "MarkdownV2":
		text, err := ParseMarkdownV2(raw)
		if err != nil {
			return "", fail(400, "Bad Request: can't parse entities: "+err.Error()), true
		}
		return text, result{}, false
	}
	return "", fail(400, "Bad Request: unsupported parse_mode"), true
}

func (s *Server) serveFile(w http.ResponseWriter, rest string) {
	token, filePath, _ := strings.Cut(rest, "/")
	if token != s.Token {
		http.Error(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f.path == filePath {
			_, _ = w.Write(f.content)
			return
		}
	}
	http.Error(w, `{"ok":false,"error_code":404,"description":"Not Found"}`, http.StatusNotFound)
}

func write(w http.ResponseWriter, res result) {
	w.Header().Set("Content-Type", "application/json")
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(res)
}

// readParams reads a Bot API call's parameters from the query string and a
// form, multipart or JSON body, the ways Telegram accepts them.
func readParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]json.RawMessage
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &body); err != nil {
				return nil, fmt.Errorf("can't parse JSON encoded request: %v", err)
			}
		}
		for k, v := range body {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			} else {
				out[k] = string(v)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			out[k] = v[0]
		}
		for k, fhs := range r.MultipartForm.File {
			out[k] = "upload:" + fhs[0].Filename
		}
	default:
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			out[k] = v[0]
		}
	}
	return out, nil
}
