package telegram_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// update wraps msg in an update, as "message" or "edited_message".
func update(kind string, msg map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"update_id": 500, kind: msg})
	if err != nil {
		panic(err)
	}
	return b
}

func TestNormalize(t *testing.T) {
	group := func(typ string) map[string]any {
		return message(7, map[string]any{"text": "hi all", "chat": map[string]any{"id": -100123, "type": typ, "title": "Support fans"}})
	}
	tests := []struct {
		name   string
		body   []byte
		groups bool
		check  func(t *testing.T, m *core.Message)
	}{
		{name: "text", body: update("message", message(7, map[string]any{"text": "Hello, I need help"})), check: func(t *testing.T, m *core.Message) {
			want := &core.Message{From: "telegram:4242", Text: "Hello, I need help",
				External: core.External{Chat: "4242", Message: "4242:7"}, Language: "en"}
			if m.From != want.From || m.Text != want.Text || m.External != want.External || m.Language != want.Language {
				t.Errorf("got from %q text %q external %+v language %q, want %q %q %+v %q", m.From, m.Text, m.External, m.Language, want.From, want.Text, want.External, want.Language)
			}
			if m.Meta["username"] != "annlee" || m.Meta["name"] != "Ann Lee" || m.Meta["edited"] != "" {
				t.Errorf("meta %v", m.Meta)
			}
			if !m.SentAt.Equal(time.Unix(1700000007, 0)) {
				t.Errorf("sent_at %s", m.SentAt)
			}
		}},
		{name: "photo: largest size, caption as text", body: update("message", message(8, map[string]any{
			"caption": "my receipt",
			"photo": []map[string]any{
				{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 51, "file_size": 1101},
				{"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 720, "file_size": 90412},
				{"file_id": "medium", "file_unique_id": "m", "width": 320, "height": 180, "file_size": 14001},
			},
		})), check: func(t *testing.T, m *core.Message) {
			want := []core.Attachment{{Name: "photo.jpg", ContentType: "image/jpeg", Size: 90412, Key: "telegram:file:large"}}
			checkAttachments(t, m, want)
			if m.Text != "my receipt" {
				t.Errorf("text %q", m.Text)
			}
		}},
		{name: "document", body: update("message", message(9, map[string]any{
			"document": map[string]any{"file_id": "doc1", "file_unique_id": "d", "file_name": "invoice.pdf", "mime_type": "application/pdf", "file_size": 5000},
		})), check: func(t *testing.T, m *core.Message) {
			checkAttachments(t, m, []core.Attachment{{Name: "invoice.pdf", ContentType: "application/pdf", Size: 5000, Key: "telegram:file:doc1"}})
		}},
		{name: "voice", body: update("message", message(10, map[string]any{
			"voice": map[string]any{"file_id": "v1", "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg", "file_size": 7000},
		})), check: func(t *testing.T, m *core.Message) {
			checkAttachments(t, m, []core.Attachment{{Name: "voice.ogg", ContentType: "audio/ogg", Size: 7000, Key: "telegram:file:v1"}})
		}},
		{name: "video", body: update("message", message(11, map[string]any{
			"video": map[string]any{"file_id": "vid", "file_unique_id": "v", "width": 640, "height": 480, "duration": 5, "mime_type": "video/mp4", "file_size": 900000},
		})), check: func(t *testing.T, m *core.Message) {
			checkAttachments(t, m, []core.Attachment{{Name: "video.mp4", ContentType: "video/mp4", Size: 900000, Key: "telegram:file:vid"}})
		}},
		{name: "location", body: update("message", message(12, map[string]any{
			"location": map[string]any{"latitude": 52.520008, "longitude": 13.404954},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["lat"] != "52.520008" || m.Meta["lon"] != "13.404954" {
				t.Errorf("meta %v", m.Meta)
			}
			if !strings.Contains(m.Text, "Location: 52.520008, 13.404954") || !strings.Contains(m.Text, "openstreetmap.org") {
				t.Errorf("text %q", m.Text)
			}
		}},
		{name: "venue", body: update("message", message(13, map[string]any{
			"location": map[string]any{"latitude": 48.8584, "longitude": 2.2945},
			"venue":    map[string]any{"location": map[string]any{"latitude": 48.8584, "longitude": 2.2945}, "title": "Eiffel Tower", "address": "Champ de Mars"},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["venue_title"] != "Eiffel Tower" || m.Meta["lat"] != "48.8584" || !strings.Contains(m.Text, "Eiffel Tower, Champ de Mars") {
				t.Errorf("meta %v text %q", m.Meta, m.Text)
			}
		}},
		{name: "location keeps its accuracy", body: update("message", message(30, map[string]any{
			"location": map[string]any{"latitude": 52.520008, "longitude": 13.404954, "horizontal_accuracy": 12.5},
		})), check: func(t *testing.T, m *core.Message) {
			wantMeta(t, m, map[string]string{"lat": "52.520008", "lon": "13.404954", "horizontal_accuracy": "12.5", "live_location": "", "edit_of": ""})
			if !strings.HasPrefix(m.Text, "Location: 52.520008, 13.404954 (±13 m)\n") {
				t.Errorf("text %q", m.Text)
			}
		}},
		{name: "live location", body: update("message", message(31, map[string]any{
			"location": map[string]any{"latitude": 52.52, "longitude": 13.4, "horizontal_accuracy": 8, "live_period": 900, "heading": 270},
		})), check: func(t *testing.T, m *core.Message) {
			wantMeta(t, m, map[string]string{"lat": "52.52", "lon": "13.4", "horizontal_accuracy": "8", "heading": "270",
				"live_location": "active", "live_period": "900", "live_until": "2023-11-14T22:28:51Z", "edited": ""})
			if m.External.Message != "4242:31" || !strings.HasPrefix(m.Text, "Live location: 52.52, 13.4 (±8 m)\n") {
				t.Errorf("external %+v text %q", m.External, m.Text)
			}
		}},
		{name: "live location shared until stopped", body: update("message", message(32, map[string]any{
			"location": map[string]any{"latitude": 52.52, "longitude": 13.4, "live_period": 0x7FFFFFFF},
		})), check: func(t *testing.T, m *core.Message) {
			wantMeta(t, m, map[string]string{"live_location": "active", "live_period": "2147483647", "live_until": ""})
		}},
		{name: "live location update is an edit of it", body: update("edited_message", message(31, map[string]any{
			"location":  map[string]any{"latitude": 52.53, "longitude": 13.41, "horizontal_accuracy": 5, "live_period": 900, "heading": 12},
			"edit_date": 1700000120,
		})), check: func(t *testing.T, m *core.Message) {
			wantMeta(t, m, map[string]string{"edited": "true", "edit_of": "4242:31", "lat": "52.53", "lon": "13.41", "heading": "12",
				"live_location": "active", "live_until": "2023-11-14T22:28:51Z"})
			if m.External.Message != "4242:31:edit:1700000120" || !m.SentAt.Equal(time.Unix(1700000120, 0)) {
				t.Errorf("external %+v sent_at %s", m.External, m.SentAt)
			}
		}},
		{name: "live location stopped", body: update("edited_message", message(31, map[string]any{
			"location":  map[string]any{"latitude": 52.54, "longitude": 13.42},
			"edit_date": 1700000300,
		})), check: func(t *testing.T, m *core.Message) {
			wantMeta(t, m, map[string]string{"edit_of": "4242:31", "live_location": "stopped", "live_period": ""})
			if !strings.HasPrefix(m.Text, "Live location (sharing ended): 52.54, 13.42\n") {
				t.Errorf("text %q", m.Text)
			}
		}},
		{name: "own contact: verified phone", body: update("message", message(14, map[string]any{
			"contact": map[string]any{"phone_number": "15551234567", "first_name": "Ann", "last_name": "Lee", "user_id": customer},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["verified_phone"] != "+15551234567" || m.Meta["shared_phone"] != "" {
				t.Errorf("meta %v", m.Meta)
			}
			if !strings.Contains(m.Text, "+15551234567") {
				t.Errorf("text %q", m.Text)
			}
		}},
		{name: "someone else's contact: shared phone", body: update("message", message(15, map[string]any{
			"contact": map[string]any{"phone_number": "+44 20 7946 0958", "first_name": "Bob", "user_id": 777},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["shared_phone"] != "+442079460958" || m.Meta["verified_phone"] != "" || m.Meta["shared_name"] != "Bob" {
				t.Errorf("meta %v", m.Meta)
			}
		}},
		{name: "contact without user id is not verified", body: update("message", message(16, map[string]any{
			"contact": map[string]any{"phone_number": "+15551234567", "first_name": "Ann"},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["verified_phone"] != "" || m.Meta["shared_phone"] != "+15551234567" {
				t.Errorf("meta %v", m.Meta)
			}
		}},
		{name: "forwarded own contact is not verified", body: update("message", message(17, map[string]any{
			"forward_date": 1690000000,
			"contact":      map[string]any{"phone_number": "+15551234567", "first_name": "Ann", "user_id": customer},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["verified_phone"] != "" || m.Meta["forwarded"] != "true" {
				t.Errorf("meta %v", m.Meta)
			}
		}},
		{name: "start deep link", body: update("message", message(18, map[string]any{"text": "/start wl_01HZX3-abc"})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["link_token"] != "wl_01HZX3-abc" || m.Meta["command"] != "start" || m.Text != "" {
				t.Errorf("meta %v text %q", m.Meta, m.Text)
			}
		}},
		{name: "start without payload", body: update("message", message(19, map[string]any{"text": "/start"})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["command"] != "start" || m.Meta["link_token"] != "" || m.Text != "" {
				t.Errorf("meta %v text %q", m.Meta, m.Text)
			}
		}},
		{name: "start@bot in a group", groups: true, body: update("message", message(20, map[string]any{
			"text": "/start@omnigate_test_bot tok_1", "chat": map[string]any{"id": -5, "type": "group", "title": "G"},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["link_token"] != "tok_1" || m.Meta["chat_type"] != "group" || m.External.Chat != "-5" {
				t.Errorf("meta %v external %+v", m.Meta, m.External)
			}
		}},
		{name: "start with words is text", body: update("message", message(21, map[string]any{"text": "/start hello there"})), check: func(t *testing.T, m *core.Message) {
			if m.Text != "hello there" || m.Meta["link_token"] != "" {
				t.Errorf("meta %v text %q", m.Meta, m.Text)
			}
		}},
		{name: "edited message", body: update("edited_message", message(7, map[string]any{"text": "Hello, I need help!", "edit_date": 1700000100})), check: func(t *testing.T, m *core.Message) {
			if m.External.Message != "4242:7:edit:1700000100" || m.Meta["edited"] != "true" || m.Meta["edit_of"] != "4242:7" || m.Text != "Hello, I need help!" {
				t.Errorf("external %+v meta %v text %q", m.External, m.Meta, m.Text)
			}
		}},
		{name: "reply", body: update("message", message(22, map[string]any{"text": "this one", "reply_to_message": message(3, map[string]any{"text": "old"})})), check: func(t *testing.T, m *core.Message) {
			if m.Meta["reply_to_external"] != "4242:3" {
				t.Errorf("meta %v", m.Meta)
			}
		}},
		{name: "sticker", body: update("message", message(23, map[string]any{
			"sticker": map[string]any{"file_id": "st", "file_unique_id": "s", "width": 512, "height": 512, "emoji": "👍"},
		})), check: func(t *testing.T, m *core.Message) {
			if m.Text != "👍" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "image/webp" {
				t.Errorf("text %q attachments %+v", m.Text, m.Attachments)
			}
		}},
		{name: "group ignored", body: update("message", group("group"))},
		{name: "supergroup ignored", body: update("message", group("supergroup"))},
		{name: "group allowed", groups: true, body: update("message", group("supergroup")), check: func(t *testing.T, m *core.Message) {
			if m.External.Chat != "-100123" || m.From != "telegram:4242" || m.Meta["chat_title"] != "Support fans" {
				t.Errorf("external %+v from %q meta %v", m.External, m.From, m.Meta)
			}
		}},
		{name: "channel post ignored", groups: true, body: update("channel_post", map[string]any{"message_id": 1, "date": 1, "text": "news", "chat": map[string]any{"id": -1001, "type": "channel"}})},
		{name: "channel chat ignored", groups: true, body: update("message", message(24, map[string]any{"text": "x", "chat": map[string]any{"id": -1001, "type": "channel"}}))},
		{name: "bot sender ignored", body: update("message", message(25, map[string]any{"text": "x", "from": map[string]any{"id": 99, "is_bot": true, "first_name": "B"}}))},
		{name: "anonymous sender ignored", body: update("message", map[string]any{"message_id": 26, "date": 1, "text": "x", "chat": map[string]any{"id": 4242, "type": "private"}})},
		{name: "callback query of an inline message ignored", body: []byte(`{"update_id":501,"callback_query":{"id":"1","from":{"id":4242,"is_bot":false,"first_name":"Ann"},"inline_message_id":"AAA","chat_instance":"-1","data":"x"}}`)},
		{name: "callback query that is no quick reply ignored", body: []byte(`{"update_id":502,"callback_query":{"id":"2","from":{"id":4242,"is_bot":false,"first_name":"Ann"},"chat_instance":"-1","data":"menu:3",` +
			`"message":{"message_id":3,"date":1,"chat":{"id":4242,"type":"private"},"text":"Menu","reply_markup":{"inline_keyboard":[[{"text":"Three","callback_data":"menu:3"}]]}}}}`)},
		{name: "bot added to a group ignored", body: []byte(`{"update_id":503,"my_chat_member":{"chat":{"id":-100,"type":"supergroup","title":"T"},"from":{"id":4242,"is_bot":false,"first_name":"Ann"},"date":1,` +
			`"old_chat_member":{"user":{"id":123456789,"is_bot":true,"first_name":"B"},"status":"left"},"new_chat_member":{"user":{"id":123456789,"is_bot":true,"first_name":"B"},"status":"member"}}}`)},
		{name: "chat_member update ignored", body: []byte(`{"update_id":504,"chat_member":{"chat":{"id":-100,"type":"supergroup"},"from":{"id":1,"first_name":"A"},"date":1,"old_chat_member":{"status":"left"},"new_chat_member":{"status":"member"}}}`)},
		{name: "service message ignored", body: update("message", message(28, map[string]any{"new_chat_title": "x"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := telegram.Normalize(tt.body, tt.groups)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if tt.check == nil {
				if m != nil {
					t.Fatalf("published %+v, want the update ignored", m)
				}
				return
			}
			if m == nil {
				t.Fatal("ignored, want a message")
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("invalid envelope: %v", err)
			}
			if m.Channel != "telegram" || m.Kind != core.KindMessage || m.Direction != core.Inbound {
				t.Errorf("channel %q kind %q direction %q", m.Channel, m.Kind, m.Direction)
			}
			tt.check(t, m)
		})
	}
}

func TestNormalize_Malformed(t *testing.T) {
	for _, body := range []string{
		``, `not json`, `[]`, `"x"`, `null`, `{}`, `{"update_id":0}`, `{"update_id":"7"}`,
		`{"update_id":1,"message":{"message_id":1,"date":1,"text":"no chat"}}`,
		`{"update_id":1,"message":{"message_id":0,"chat":{"id":1,"type":"private"},"from":{"id":1,"first_name":"a"}}}`,
		`{"update_id":1,"message":{"message_id":1,"chat":{"id":1,"type":"private"},"from":{"id":0,"first_name":"a"},"text":"x"}}`,
		`{"update_id":1,"message":{"message_id":"one"}}`,
	} {
		if m, err := telegram.Normalize([]byte(body), false); !errors.Is(err, telegram.ErrMalformed) {
			t.Errorf("Normalize(%s) = %v, %v; want ErrMalformed", body, m, err)
		}
	}
}

// wantMeta checks m's meta has want's values; "" means the key is absent.
func wantMeta(t *testing.T, m *core.Message, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, found := m.Meta[k]
		if got != v || (v == "" && found) {
			t.Errorf("meta[%q] = %q, want %q (meta %v)", k, got, v, m.Meta)
		}
	}
}

func checkAttachments(t *testing.T, m *core.Message, want []core.Attachment) {
	t.Helper()
	if fmt.Sprint(m.Attachments) != fmt.Sprint(want) {
		t.Errorf("attachments %+v, want %+v", m.Attachments, want)
	}
}

// webhookEnv starts a webhook-mode adapter on a real JetStream, running.
func webhookEnv(t *testing.T) (*adaptertest.Env, *telegramtest.Server, *telegram.Adapter) {
	t.Helper()
	env := adaptertest.NewEnv(t, "telegram")
	fake := telegramtest.NewServer(t, "")
	a := build(t, env.Deps, webhookConfig(fake))
	env.Start(t, a)
	return env, fake, a
}

func TestWebhook_ForgedSecret(t *testing.T) {
	env, _, _ := webhookEnv(t)
	for name, secret := range map[string]string{"missing": "", "wrong": "hook-Secret_43", "prefix": "hook-Secret_4", "longer": secret + "x"} {
		resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, textUpdate(1, 1, "forged "+name)))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s secret: %d, want 401", name, resp.StatusCode)
		}
	}
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Fatalf("%d messages published by forged webhooks", n)
	}
}

func TestWebhook_Malformed(t *testing.T) {
	env, _, _ := webhookEnv(t)
	for _, body := range []string{"{", `{"message":{"text":"no update id"}}`, `[1,2]`} {
		r := httptest.NewRequest(http.MethodPost, webhookPath, strings.NewReader(body))
		r.Header.Set(telegram.SecretHeader, secret)
		if resp := env.Serve(t, r); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", body, resp.StatusCode)
		}
	}
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Fatalf("%d messages published by malformed webhooks", n)
	}
}

// TestWebhook_TelegramRetriesStoredOnce: Telegram repeats an update until it
// gets a 2xx; every repeat is answered 200 and stored once, while an edit of
// the message is a message of its own.
func TestWebhook_TelegramRetriesStoredOnce(t *testing.T) {
	env, _, _ := webhookEnv(t)
	u := textUpdate(77, 7, "where is my order?")
	for i := range 3 {
		resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, u))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delivery %d: %d, want 200", i+1, resp.StatusCode)
		}
		// 200 only once JetStream holds it.
		if n := env.Count(t, bus.StreamIn); n != 1 {
			t.Fatalf("after delivery %d, %d messages stored, want 1", i+1, n)
		}
	}
	edit := map[string]any{"update_id": 78, "edited_message": message(7, map[string]any{"text": "where is my order #12?", "edit_date": 1700000500})}
	for range 2 {
		if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, edit)); resp.StatusCode != http.StatusOK {
			t.Fatalf("edit: %d", resp.StatusCode)
		}
	}
	got := env.Stored(t, bus.StreamIn)
	if len(got) != 2 {
		t.Fatalf("%d messages stored, want the message and its edit", len(got))
	}
	if got[0].MsgID != "telegram:4242:7" || got[1].MsgID != "telegram:4242:7:edit:1700000500" {
		t.Errorf("Nats-Msg-Id %q, %q", got[0].MsgID, got[1].MsgID)
	}
	if m := got[1].Message; m == nil || m.Meta["edited"] != "true" || m.Meta["edit_of"] != "4242:7" || m.Text != "where is my order #12?" ||
		!m.SentAt.Equal(time.Unix(1700000500, 0)) {
		t.Errorf("edit stored as %+v", m)
	}
}

func TestWebhook_IgnoredUpdatesAnswered200(t *testing.T) {
	env, _, _ := webhookEnv(t)
	groupMsg := map[string]any{"update_id": 90, "message": message(1, map[string]any{"text": "hi", "chat": map[string]any{"id": -7, "type": "group"}})}
	if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, groupMsg)); resp.StatusCode != http.StatusOK {
		t.Fatalf("group message: %d, want 200 (Telegram must not retry it)", resp.StatusCode)
	}
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Fatalf("group message published with allow_groups off")
	}
}

func TestWebhook_DeepLinkAndContact(t *testing.T) {
	env, _, _ := webhookEnv(t)
	start := map[string]any{"update_id": 1, "message": message(1, map[string]any{"text": "/start lnk_abc123",
		"entities": []map[string]any{{"type": "bot_command", "offset": 0, "length": 6}}})}
	contact := map[string]any{"update_id": 2, "message": message(2, map[string]any{
		"contact": map[string]any{"phone_number": "15551234567", "first_name": "Ann", "user_id": customer}})}
	for _, u := range []map[string]any{start, contact} {
		if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, u)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	got := env.Stored(t, bus.StreamIn)
	if len(got) != 2 || got[0].Message == nil || got[1].Message == nil {
		t.Fatalf("%d stored", len(got))
	}
	if m := got[0].Message; m.Meta["link_token"] != "lnk_abc123" || m.Text != "" || m.From != "telegram:4242" {
		t.Errorf("deep link stored as text %q meta %v", m.Text, m.Meta)
	}
	if m := got[1].Message; m.Meta["verified_phone"] != "+15551234567" {
		t.Errorf("contact stored with meta %v", m.Meta)
	}
	if got[0].Subject != bus.SubjectIn("telegram", "telegram:4242") {
		t.Errorf("subject %s", got[0].Subject)
	}
}

// TestWebhook_NotStoredIsRetried: when JetStream cannot store the update the
// webhook answers 5xx, so that Telegram delivers it again.
func TestWebhook_NotStoredIsRetried(t *testing.T) {
	env, _, _ := webhookEnv(t)
	if err := env.Bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, textUpdate(1, 1, "hello")))
	if resp.StatusCode < 500 {
		t.Fatalf("%d with the bus down, want 5xx", resp.StatusCode)
	}
}

func TestRun_RegistersWebhook(t *testing.T) {
	_, fake, a := webhookEnv(t)
	bustest.Eventually(t, waitFor, func() error { return a.Ready(t.Context()) })
	hook := fake.Webhook()
	if hook.URL != publicURL+webhookPath || hook.SecretToken != secret {
		t.Errorf("webhook %+v, want %s with the secret", hook, publicURL+webhookPath)
	}
	if fmt.Sprint(hook.AllowedUpdates) != "[message edited_message callback_query my_chat_member]" {
		t.Errorf("allowed_updates %v", hook.AllowedUpdates)
	}
}

// TestRun_WebhookURLFromHTTPPublicURL: without channels.telegram.public_url
// the webhook goes to http.public_url when that is HTTPS; otherwise it is
// left to the operator and the adapter still serves it.
func TestRun_WebhookURLFromHTTPPublicURL(t *testing.T) {
	for base, want := range map[string]string{"https://desk.example.com/": "https://desk.example.com" + webhookPath, "http://127.0.0.1:8080": ""} {
		env := adaptertest.NewEnv(t, "telegram")
		env.Deps.PublicURL = base
		fake := telegramtest.NewServer(t, "")
		a := build(t, env.Deps, fmt.Sprintf("token: %q\nmode: webhook\nwebhook_secret: %q\napi_endpoint: %q\n", fake.Token, secret, fake.Endpoint()))
		env.Start(t, a)
		bustest.Eventually(t, waitFor, func() error { return a.Ready(t.Context()) })
		if got := fake.Webhook().URL; got != want {
			t.Errorf("http.public_url %s: webhook %q, want %q", base, got, want)
		}
		if want == "" && len(fake.Requests("setWebhook")) != 0 {
			t.Errorf("http.public_url %s: setWebhook called", base)
		}
	}
}
