package telegramtest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
)

// TestServer_InlineKeyboard: sendMessage takes an inline keyboard in
// reply_markup (InlineKeyboardMarkup), returns it with the message as
// Telegram does, and refuses buttons Telegram refuses.
func TestServer_InlineKeyboard(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	kb := `{"inline_keyboard":[[{"text":"Yes","callback_data":"q:1"},{"text":"Site","url":"https://example.com"}],[{"text":"No","callback_data":"q:2"}]]}`
	code, body := call(t, s, s.Token, "sendMessage", url.Values{"chat_id": {"42"}, "text": {"Pick one"}, "reply_markup": {kb}})
	if code != 200 {
		t.Fatalf("%d %v", code, body)
	}
	echo := body["result"].(map[string]any)["reply_markup"].(map[string]any)["inline_keyboard"].([]any)
	if len(echo) != 2 || echo[0].([]any)[0].(map[string]any)["callback_data"] != "q:1" {
		t.Errorf("reply_markup in the result %v", echo)
	}
	want := [][]telegramtest.Button{{{Text: "Yes", CallbackData: "q:1"}, {Text: "Site", URL: "https://example.com"}}, {{Text: "No", CallbackData: "q:2"}}}
	if got := s.Sent()[0].Keyboard; len(got) != 2 || len(got[0]) != 2 || got[0][0] != want[0][0] || got[0][1] != want[0][1] || got[1][0] != want[1][0] {
		t.Errorf("keyboard %+v, want %+v", got, want)
	}
	for markup, desc := range map[string]string{
		`{"inline_keyboard":[[{"text":"Long","callback_data":"` + strings.Repeat("d", 65) + `"}]]}`: "Bad Request: BUTTON_DATA_INVALID",
		`{"inline_keyboard":[[{"text":"Plain"}]]}`:                                                  "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
		`{"inline_keyboard":[[{"text":"","callback_data":"x"}]]}`:                                   "Bad Request: can't parse inline keyboard button: Text must be non-empty",
		`{"inline_keyboard":`: "Bad Request: can't parse reply keyboard markup JSON object",
	} {
		code, body := call(t, s, s.Token, "sendMessage", url.Values{"chat_id": {"42"}, "text": {"x"}, "reply_markup": {markup}})
		if code != 400 || body["description"] != desc {
			t.Errorf("%s: %d %v, want 400 %q", markup, code, body, desc)
		}
	}
	if n := len(s.Sent()); n != 1 {
		t.Errorf("%d messages accepted, want the valid one only", n)
	}
}

// TestServer_PressAndAnswer: Press builds the documented callback_query of
// a button press; answerCallbackQuery is accepted once per query.
func TestServer_PressAndAnswer(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	call(t, s, s.Token, "sendMessage", url.Values{"chat_id": {"42"}, "text": {"Pick one"},
		"reply_markup": {`{"inline_keyboard":[[{"text":"Yes","callback_data":"q:1"}]]}`}})
	user := map[string]any{"id": 42, "is_bot": false, "first_name": "Ann"}
	u := s.Press(t, s.Sent()[0], "Yes", user)
	cq := u["callback_query"].(map[string]any)
	msg := cq["message"].(map[string]any)
	if cq["data"] != "q:1" || cq["id"] == "" || cq["chat_instance"] == "" || msg["message_id"] != 1 || msg["reply_markup"] == nil {
		t.Errorf("callback_query %v", cq)
	}
	if old := s.PressOld(t, s.Sent()[0], "Yes", user)["callback_query"].(map[string]any)["message"].(map[string]any); old["date"] != 0 || old["text"] != nil {
		t.Errorf("inaccessible message %v", old)
	}
	id := cq["id"].(string)
	code, body := call(t, s, s.Token, "answerCallbackQuery", url.Values{"callback_query_id": {id}, "text": {"Thanks"}})
	if code != 200 || body["result"] != true {
		t.Fatalf("answer: %d %v", code, body)
	}
	const refused = "Bad Request: query is too old and response timeout expired or query ID is invalid"
	for _, qid := range []string{id, "unknown"} {
		if code, body := call(t, s, s.Token, "answerCallbackQuery", url.Values{"callback_query_id": {qid}}); code != 400 || body["description"] != refused {
			t.Errorf("answer %s: %d %v", qid, code, body)
		}
	}
	if a := s.Answers(); len(a) != 1 || a[0].QueryID != id || a[0].Text != "Thanks" {
		t.Errorf("answers %+v", a)
	}
}

// TestServer_AllowedUpdates: as on Telegram, getUpdates delivers only the
// kinds of the last allowed_updates, and by default leaves out chat_member.
func TestServer_AllowedUpdates(t *testing.T) {
	s := telegramtest.NewServer(t, "")
	s.AddUpdate(t, map[string]any{"message": map[string]any{"message_id": 1}})
	s.AddUpdate(t, map[string]any{"callback_query": map[string]any{"id": "1"}})
	s.AddUpdate(t, map[string]any{"chat_member": map[string]any{}})
	kinds := func(params url.Values) []string {
		_, body := call(t, s, s.Token, "getUpdates", params)
		var out []string
		for _, u := range body["result"].([]any) {
			for k := range u.(map[string]any) {
				if k != "update_id" {
					out = append(out, k)
				}
			}
		}
		return out
	}
	if got := strings.Join(kinds(nil), ","); got != "message,callback_query" {
		t.Errorf("default: %s", got)
	}
	if got := strings.Join(kinds(url.Values{"allowed_updates": {`["message"]`}}), ","); got != "message" {
		t.Errorf(`allowed_updates ["message"]: %s`, got)
	}
	if got := strings.Join(kinds(nil), ","); got != "message" {
		t.Errorf("the setting is kept: %s", got)
	}
}
