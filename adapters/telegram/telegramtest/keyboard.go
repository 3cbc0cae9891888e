package telegramtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"
)

// Button is one button of an inline keyboard the bot sent.
type Button struct {
	// Text is the label the customer sees.
	Text string
	// CallbackData is what a press sends back in callback_query.data; empty
	// for a URL button.
	CallbackData string
	// URL is where a URL button leads.
	URL string
}

// Answer is an answerCallbackQuery call the fake accepted.
type Answer struct {
	// QueryID is callback_query_id.
	QueryID string
	// Text is the notification shown to the customer; often empty.
	Text string
	// ShowAlert is set when the text is an alert rather than a toast.
	ShowAlert bool
}

// Limits of inline keyboards and callback answers (Bot API,
// InlineKeyboardButton and answerCallbackQuery).
const (
	maxCallbackData   = 64
	maxButtons        = 100
	maxCallbackAnswer = 200
)

// parseReplyMarkup reads reply_markup as Telegram does for an inline
// keyboard: the keyboard, the markup as the sent message echoes it, or the
// error answer. Other markups (reply keyboards, force_reply) are accepted and
// not echoed, as Telegram does not return them either.
func parseReplyMarkup(raw string) ([][]Button, map[string]any, result, bool) {
	bad := func(desc string) ([][]Button, map[string]any, result, bool) {
		return nil, nil, fail(400, "Bad Request: "+desc), true
	}
	var markup struct {
		InlineKeyboard *[][]map[string]json.RawMessage `json:"inline_keyboard"`
	}
	if err := json.Unmarshal([]byte(raw), &markup); err != nil {
		return bad("can't parse reply keyboard markup JSON object")
	}
	if markup.InlineKeyboard == nil {
		return nil, nil, result{}, false
	}
	var kb [][]Button
	var echo [][]map[string]any
	n := 0
	for _, row := range *markup.InlineKeyboard {
		var buttons []Button
		var echoRow []map[string]any
		for _, fields := range row {
			if n++; n > maxButtons {
				return bad("BUTTONS_TOO_MUCH")
			}
			var b Button
			if err := json.Unmarshal(fields["text"], &b.Text); err != nil || b.Text == "" {
				return bad("can't parse inline keyboard button: Text must be non-empty")
			}
			e := map[string]any{"text": b.Text}
			_ = json.Unmarshal(fields["url"], &b.URL)
			if raw, found := fields["callback_data"]; found {
				if err := json.Unmarshal(raw, &b.CallbackData); err != nil || b.CallbackData == "" || len(b.CallbackData) > maxCallbackData {
					return bad("BUTTON_DATA_INVALID")
				}
				e["callback_data"] = b.CallbackData
			}
			switch {
			case b.URL != "":
				e["url"] = b.URL
			case b.CallbackData == "":
				return bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
			}
			buttons = append(buttons, b)
			echoRow = append(echoRow, e)
		}
		kb = append(kb, buttons)
		echo = append(echo, echoRow)
	}
	return kb, map[string]any{"inline_keyboard": echo}, result{}, false
}

// Press returns the update Telegram sends when user (a User object, e.g.
// {"id": 42, "is_bot": false, "first_name": "Ann"}) presses the button
// labelled label on message m: a callback_query with a fresh id, the
// message with its inline keyboard, chat_instance and the button's
// callback_data, without update_id. Feed it to the webhook or to AddUpdate;
// the bot must then answer the query once with answerCallbackQuery (see
// Answers).
func (s *Server) Press(t testing.TB, m Sent, label string, user map[string]any) map[string]any {
	t.Helper()
	return s.press(t, m, label, user, false)
}

// PressOld is Press on a message Telegram no longer shows the bot: the
// callback_query's message is an InaccessibleMessage (chat, message_id and
// date 0), as for old messages.
func (s *Server) PressOld(t testing.TB, m Sent, label string, user map[string]any) map[string]any {
	t.Helper()
	return s.press(t, m, label, user, true)
}

func (s *Server) press(t testing.TB, m Sent, label string, user map[string]any, old bool) map[string]any {
	t.Helper()
	var data string
	for _, row := range m.Keyboard {
		for _, b := range row {
			if b.Text == label && b.CallbackData != "" && data == "" {
				data = b.CallbackData
			}
		}
	}
	if data == "" {
		t.Fatalf("telegramtest: message %d has no callback button %q (keyboard %v)", m.MessageID, label, m.Keyboard)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, found := s.messages[m.MessageID]
	if !found {
		t.Fatalf("telegramtest: no message %d was sent", m.MessageID)
	}
	if old {
		msg = map[string]any{"chat": msg["chat"], "message_id": m.MessageID, "date": 0}
	} else {
		msg = cloneMap(msg)
	}
	id := strconv.FormatInt(s.BotID, 10) + "-" + strconv.Itoa(len(s.queries)+1)
	s.queries[id] = false
	return map[string]any{"callback_query": map[string]any{
		"id":            id,
		"from":          user,
		"message":       msg,
		"chat_instance": fmt.Sprintf("-%d", 7000000000000000000+m.ChatID),
		"data":          data,
	}}
}

// Answers returns the answerCallbackQuery calls accepted so far, in order.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.answers)
}

// answerCallbackQuery accepts one answer per query that Press made, as
// Telegram accepts one per query it sent.
func (s *Server) answerCallbackQuery(p map[string]string) result {
	id := p["callback_query_id"]
	a := Answer{QueryID: id, Text: p["text"], ShowAlert: p["show_alert"] == "true"}
	if utf8.RuneCountInString(a.Text) > maxCallbackAnswer {
		return fail(400, "Bad Request: MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if answered, found := s.queries[id]; !found || answered {
		return fail(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
	}
	s.queries[id] = true
	s.answers = append(s.answers, a)
	return ok(true)
}

// defaultExcluded are the update kinds Telegram leaves out when no
// allowed_updates were given.
var defaultExcluded = []string{"chat_member", "message_reaction", "message_reaction_count"}

// dropNotAllowed removes queued updates that the last allowed_updates leave
// out: Telegram does not keep them for the bot. s.mu is held.
func (s *Server) dropNotAllowed() {
	keep := func(kind string) bool {
		if len(s.allowed) == 0 {
			return !slices.Contains(defaultExcluded, kind)
		}
		return slices.Contains(s.allowed, kind)
	}
	n := 0
	for i := range s.updates {
		if keep(s.kinds[i]) {
			s.updates[n], s.ids[n], s.kinds[n] = s.updates[i], s.ids[i], s.kinds[i]
			n++
		}
	}
	s.updates, s.ids, s.kinds = s.updates[:n], s.ids[:n], s.kinds[:n]
}
