package telegram_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/event"
)

// FuzzNormalize feeds webhook bodies to the update parser and normalizer: it
// never panics, refuses only with ErrMalformed, and whatever it publishes is
// a valid inbound envelope from a telegram: identity whose External.Message
// deduplicates per chat and message: a message, an edit naming what it
// edits, a quick-reply choice naming its reply, or a reachability event.
// Seeds beyond these are in testdata/fuzz/FuzzNormalize (callback queries,
// my_chat_member, live locations).
func FuzzNormalize(f *testing.F) {
	seeds := []string{
		`{"update_id":10000,"message":{"date":1441645532,"chat":{"last_name":"Test Lastname","id":1111111,"first_name":"Test","username":"Test","type":"private"},"message_id":1365,"from":{"last_name":"Test Lastname","id":1111111,"first_name":"Test","username":"Test"},"text":"/start"}}`,
		`{"update_id":10001,"edited_message":{"date":1441645532,"chat":{"id":1111111,"type":"private"},"message_id":1365,"from":{"id":1111111,"first_name":"Test"},"text":"Edited text","edit_date":1441646600}}`,
		`{"update_id":10002,"message":{"message_id":2,"date":1,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A","language_code":"pt-br"},"photo":[{"file_id":"a","file_unique_id":"a","width":1,"height":1},{"file_id":"b","file_unique_id":"b","width":800,"height":600,"file_size":5000}],"caption":"pic"}}`,
		`{"update_id":10003,"message":{"message_id":3,"date":1,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A"},"document":{"file_id":"d","file_unique_id":"d","file_name":"a/b\u0000.pdf","mime_type":"not a type","file_size":-1}}}`,
		`{"update_id":10004,"message":{"message_id":4,"date":1,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A"},"location":{"latitude":-33.86,"longitude":151.2}}}`,
		`{"update_id":10005,"message":{"message_id":5,"date":1,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A"},"contact":{"phone_number":"+1 (555) 123-4567","first_name":"A","user_id":5}}}`,
		`{"update_id":10006,"message":{"message_id":6,"date":1,"chat":{"id":-100,"type":"supergroup","title":"T"},"from":{"id":5,"first_name":"A"},"text":"group"}}`,
		`{"update_id":10007,"message":{"message_id":7,"date":1,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A"},"voice":{"file_id":"v","file_unique_id":"v","duration":1},"video":{"file_id":"w","file_unique_id":"w","width":1,"height":1,"duration":1},"venue":{"location":{"latitude":1,"longitude":2},"title":"V","address":"Ad"}}}`,
		`{"update_id":10008,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":1111111,"first_name":"Test"},"data":"Data from button callback","inline_message_id":"1234csdbsk4839"}}`,
		`{"update_id":10009,"message":{"message_id":9,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A"},"text":"/start@bot tok-EN_1 extra"}}`,
		`{"update_id":1}`, `[]`, `{`, `null`, `{"update_id":1,"message":null}`, `{"update_id":1,"message":{"chat":{}}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, groups bool) {
		m, err := telegram.Normalize(body, groups)
		if err != nil {
			if !errors.Is(err, telegram.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if m != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		if m == nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("invalid envelope: %v\n%+v", err, m)
		}
		if m.Direction != core.Inbound || m.Channel != "telegram" || m.From.Channel() != "telegram" {
			t.Fatalf("not inbound from telegram: %+v", m)
		}
		switch {
		case m.Kind == core.KindEvent && (m.Type == event.ContactUnreachable || m.Type == event.ContactReachable):
			if !strings.Contains(m.External.Message, ":my_chat_member:") || m.Meta[event.MetaReason] == "" {
				t.Fatalf("reachability event %+v", m)
			}
		case m.Kind != core.KindMessage:
			t.Fatalf("not a message: %+v", m)
		}
		if !strings.HasPrefix(m.External.Message, m.External.Chat+":") || m.External.Chat == "" {
			t.Fatalf("external %+v", m.External)
		}
		if (m.Meta["edited"] == "true") != strings.Contains(m.External.Message, ":edit:") {
			t.Fatalf("edit without its own id: %+v", m)
		}
		if of := m.Meta["edit_of"]; (of != "") != (m.Meta["edited"] == "true") || of != "" && !strings.HasPrefix(m.External.Message, of+":edit:") {
			t.Fatalf("edit_of %q of %+v", of, m.External)
		}
		if m.Meta["quick_reply"] == "true" && (!core.ValidID(m.ReplyTo) || m.Text == "" || !strings.Contains(m.External.Message, ":callback:")) {
			t.Fatalf("quick reply %+v", m)
		}
		if l := m.Meta["live_location"]; l != "" && l != "active" && l != "stopped" {
			t.Fatalf("live_location %q", l)
		}
		if !groups && m.Meta["chat_type"] != "" {
			t.Fatalf("a %s message with allow_groups off", m.Meta["chat_type"])
		}
		if p := m.Meta["verified_phone"]; p != "" && (p[0] != '+' || len(p) < 8 || len(p) > 16) {
			t.Fatalf("verified_phone %q is not E.164", p)
		}
	})
}

// FuzzRender: any text, plain or markdown, becomes messages within the limit
// that Telegram accepts and that together carry the whole text.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"hello", "*bold* _it_ ~s~ `c` ```go\nx\n``` [a](https://b.c) <https://x.y|z>", "a.b!c(d)e[f]g{h}i|j#k+l-m=n>o~p", `\*\_\\`,
		"😀👨‍👩‍👧🇩🇪e\u0301中文", "**a*b**c__d__", "```\n\n```", "[](https://x)", "*\n*", "_a_ _b_", "\\", "\xff\xfe",
	} {
		f.Add(s, true, 50)
		f.Add(s, false, 7)
	}
	f.Fuzz(func(t *testing.T, text string, markdown bool, limit int) {
		if !utf8.ValidString(text) {
			return // envelopes hold valid UTF-8 only
		}
		limit = 40 + abs(limit)%4096
		checkMessages(t, text, markdown, limit, telegram.RenderLimit(text, markdown, limit))
	})
}

// FuzzEscapeMarkdownV2: Telegram shows an escaped string as it is.
func FuzzEscapeMarkdownV2(f *testing.F) {
	for _, s := range []string{"", "a_b*c", "\\", "5.00!", "😀", "`x`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		got, err := telegramtest.ParseMarkdownV2(telegram.EscapeMarkdownV2(s))
		if err != nil || got != s {
			t.Fatalf("ParseMarkdownV2(EscapeMarkdownV2(%q)) = %q, %v", s, got, err)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
