package telegramtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
)

// call makes a Bot API call as a form POST and returns the status and body.
func call(t *testing.T, s *telegramtest.Server, token, method string, params url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/bot"+token+"/"+method, params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("%s: not JSON: %s", method, data)
	}
	return resp.StatusCode, body
}

// TestServer_DocumentedShapes checks answers against the Bot API
// documentation ("Making requests"): {"ok":true,"result":...} on success,
// ok false with error_code, description and parameters on failure.
func TestServer_DocumentedShapes(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	code, body := call(t, s, s.Token, "getMe", nil)
	if code != 200 || body["ok"] != true {
		t.Fatalf("getMe: %d %v", code, body)
	}
	me := body["result"].(map[string]any)
	if me["id"] != float64(123456789) || me["is_bot"] != true || me["username"] != "omnigate_test_bot" {
		t.Errorf("getMe result %v", me)
	}

	s.Fail(telegramtest.TooManyRequests(3))
	code, body = call(t, s, s.Token, "sendMessage", url.Values{"chat_id": {"1"}, "text": {"x"}})
	raw, _ := json.Marshal(body)
	if want := `{"description":"Too Many Requests: retry after 3","error_code":429,"ok":false,"parameters":{"retry_after":3}}`; code != 429 || string(raw) != want {
		t.Errorf("throttled: %d %s, want 429 %s", code, raw, want)
	}
	s.Heal()

	code, body = call(t, s, "1:wrong", "getMe", nil)
	if code != 401 || body["ok"] != false || body["description"] != "Unauthorized" {
		t.Errorf("wrong token: %d %v", code, body)
	}
	code, body = call(t, s, s.Token, "noSuchMethod", nil)
	if code != 404 || body["description"] != "Not Found" {
		t.Errorf("unknown method: %d %v", code, body)
	}
}

func TestServer_SendMessage(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	code, body := call(t, s, s.Token, "sendMessage", url.Values{"chat_id": {"42"}, "text": {`*Hi* there\!`}, "parse_mode": {"MarkdownV2"}})
	if code != 200 {
		t.Fatalf("%d %v", code, body)
	}
	msg := body["result"].(map[string]any)
	if msg["message_id"] != float64(1) || msg["text"] != "Hi there!" || msg["chat"].(map[string]any)["id"] != float64(42) {
		t.Errorf("result %v", msg)
	}
	for _, tt := range []struct {
		params url.Values
		code   int
		desc   string
	}{
		{url.Values{"chat_id": {"42"}, "text": {"5.00"}, "parse_mode": {"MarkdownV2"}}, 400, `Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\'`},
		{url.Values{"chat_id": {"42"}, "text": {"*open"}, "parse_mode": {"MarkdownV2"}}, 400, "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0"},
		{url.Values{"chat_id": {"42"}, "text": {strings.Repeat("a", 4097)}}, 400, "Bad Request: message is too long"},
		{url.Values{"chat_id": {"42"}, "text": {strings.Repeat("😀", 2049)}}, 400, "Bad Request: message is too long"},
		{url.Values{"chat_id": {"42"}, "text": {" "}}, 400, "Bad Request: message text is empty"},
		{url.Values{"text": {"x"}}, 400, "Bad Request: chat_id is empty"},
		{url.Values{"chat_id": {"x"}, "text": {"x"}}, 400, "Bad Request: chat not found"},
	} {
		code, body := call(t, s, s.Token, "sendMessage", tt.params)
		if code != tt.code || body["description"] != tt.desc {
			t.Errorf("%v: %d %q, want %d %q", tt.params, code, body["description"], tt.code, tt.desc)
		}
	}
	if n := len(s.Sent()); n != 1 {
		t.Errorf("%d sent, want only the valid one", n)
	}
	if n := len(s.Requests("sendMessage")); n != 8 {
		t.Errorf("%d requests recorded, want 8", n)
	}
}

// TestServer_GetUpdates: updates before offset are confirmed and gone; with a
// timeout the call waits for the next update.
func TestServer_GetUpdates(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	id := s.AddUpdate(t, map[string]any{"message": map[string]any{"message_id": 1, "text": "a"}})
	s.AddUpdate(t, map[string]any{"message": map[string]any{"message_id": 2, "text": "b"}})
	_, body := call(t, s, s.Token, "getUpdates", url.Values{"offset": {"0"}})
	if n := len(body["result"].([]any)); n != 2 {
		t.Fatalf("%d updates, want 2", n)
	}
	_, body = call(t, s, s.Token, "getUpdates", url.Values{"offset": {itoa(id + 1)}})
	if res := body["result"].([]any); len(res) != 1 || res[0].(map[string]any)["update_id"] != float64(id+1) {
		t.Fatalf("after confirming %d: %v", id, res)
	}
	if s.Pending() != 1 {
		t.Errorf("pending %d, want 1", s.Pending())
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.AddUpdate(t, map[string]any{"message": map[string]any{"message_id": 3, "text": "c"}})
	}()
	start := time.Now()
	_, body = call(t, s, s.Token, "getUpdates", url.Values{"offset": {itoa(id + 2)}, "timeout": {"10"}})
	if res := body["result"].([]any); len(res) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("long poll: %v after %s", res, time.Since(start))
	}

	call(t, s, s.Token, "setWebhook", url.Values{"url": {"https://example.com/hook"}, "secret_token": {"abc"}})
	code, body := call(t, s, s.Token, "getUpdates", nil)
	if code != 409 || !strings.HasPrefix(body["description"].(string), "Conflict: can't use getUpdates method while webhook is active") {
		t.Errorf("getUpdates with a webhook: %d %v", code, body)
	}
}

// TestServer_GetUpdatesConflict: a getUpdates call in flight when another
// arrives is ended with 409 Conflict, as Telegram ends it when a second bot
// instance polls; the later call is answered as usual.
func TestServer_GetUpdatesConflict(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	type answer struct {
		code int
		body map[string]any
	}
	first := make(chan answer, 1)
	go func() {
		resp, err := http.PostForm(s.URL+"/bot"+s.Token+"/getUpdates", url.Values{"timeout": {"10"}})
		if err != nil {
			first <- answer{}
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		first <- answer{resp.StatusCode, body}
	}()
	for !s.Polling() {
		time.Sleep(10 * time.Millisecond)
	}
	code, body := call(t, s, s.Token, "getUpdates", nil)
	if code != 200 || body["ok"] != true {
		t.Fatalf("second getUpdates: %d %v", code, body)
	}
	a := <-first
	if a.code != 409 || a.body["description"] != "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running" {
		t.Fatalf("first getUpdates: %d %v, want 409 terminated by other getUpdates request", a.code, a.body)
	}
	if s.Conflicts() != 1 || s.Polling() {
		t.Errorf("conflicts %d, polling %v; want 1, false", s.Conflicts(), s.Polling())
	}
}

func TestServer_SetWebhook(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	code, body := call(t, s, s.Token, "setWebhook", url.Values{"url": {"http://example.com/hook"}})
	if code != 400 || body["description"] != "Bad Request: bad webhook: An HTTPS URL must be provided for webhook" {
		t.Errorf("http webhook: %d %v", code, body)
	}
	code, body = call(t, s, s.Token, "setWebhook", url.Values{"url": {"https://example.com/hook"}, "secret_token": {"no spaces allowed"}})
	if code != 400 {
		t.Errorf("bad secret: %d %v", code, body)
	}
	code, body = call(t, s, s.Token, "setWebhook", url.Values{"url": {"https://example.com/hook"}, "secret_token": {"ok_1-A"}, "allowed_updates": {`["message"]`}})
	if code != 200 || body["result"] != true || body["description"] != "Webhook was set" {
		t.Errorf("setWebhook: %d %v", code, body)
	}
	if h := s.Webhook(); h.URL != "https://example.com/hook" || h.SecretToken != "ok_1-A" || len(h.AllowedUpdates) != 1 {
		t.Errorf("webhook %+v", h)
	}
	call(t, s, s.Token, "deleteWebhook", nil)
	if h := s.Webhook(); h.URL != "" {
		t.Errorf("after deleteWebhook: %+v", h)
	}
}

// TestParseMarkdownV2_DocumentedExample parses the example of the Bot API
// documentation's "MarkdownV2 style" section.
func TestParseMarkdownV2_DocumentedExample(t *testing.T) {
	doc := "*bold \\*text*\n" +
		"_italic \\*text_\n" +
		"__underline__\n" +
		"~strikethrough~\n" +
		"||spoiler||\n" +
		"*bold _italic bold ~italic bold strikethrough ||italic bold strikethrough spoiler||~ __underline italic bold___ bold*\n" +
		"[inline URL](http://www.example.com/)\n" +
		"[inline mention of a user](tg://user?id=123456789)\n" +
		"![👍](tg://emoji?id=5368324170671202286)\n" +
		"`inline fixed-width code`\n" +
		"```\npre-formatted fixed-width code block\n```\n" +
		"```python\npre-formatted fixed-width code block written in the Python programming language\n```\n" +
		">Block quotation started\n>Block quotation continued"
	want := "bold *text\n" +
		"italic *text\n" +
		"underline\n" +
		"strikethrough\n" +
		"spoiler\n" +
		"bold italic bold italic bold strikethrough italic bold strikethrough spoiler underline italic bold bold\n" +
		"inline URL\n" +
		"inline mention of a user\n" +
		"👍\n" +
		"inline fixed-width code\n" +
		"pre-formatted fixed-width code block\n\n" +
		"pre-formatted fixed-width code block written in the Python programming language\n\n" +
		"Block quotation started\nBlock quotation continued"
	got, err := telegramtest.ParseMarkdownV2(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestParseMarkdownV2_Refused(t *testing.T) {
	for in, want := range map[string]string{
		"a.b":          `Character '.' is reserved and must be escaped with the preceding '\'`,
		"1+1":          `Character '+' is reserved and must be escaped with the preceding '\'`,
		"a|b":          `Character '|' is reserved and must be escaped with the preceding '\'`,
		"x > y":        `Character '>' is reserved and must be escaped with the preceding '\'`,
		"*a _b* c_":    "Can't find end of Italic entity at byte offset 8", // "*" inside _ opens, not closes
		"`code":        "Can't find end of Code entity at byte offset 0",
		"```\ncode":    "Can't find end of Pre entity at byte offset 0",
		"[a](http://x": "Can't find end of a URL at byte offset 4",
	} {
		if _, err := telegramtest.ParseMarkdownV2(in); err == nil || err.Error() != want {
			t.Errorf("ParseMarkdownV2(%q) = %v, want %q", in, err, want)
		}
	}
	for in, want := range map[string]string{
		"`a.b*c`":           "a.b*c",
		"`a\\`b`":           "a`b",
		"\\\\":              "\\",
		"[t](http://a\\)b)": "t",
		"[http://x\\.y]":    "http://x.y",
		"**":                "",
	} {
		if got, err := telegramtest.ParseMarkdownV2(in); err != nil || got != want {
			t.Errorf("ParseMarkdownV2(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
