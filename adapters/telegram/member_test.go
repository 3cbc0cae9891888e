package telegram_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// bot is the bot as a Telegram User object.
var bot = map[string]any{"id": 123456789, "is_bot": true, "first_name": "Omnigate Test", "username": "omnigate_test_bot"}

// memberUpdate is the my_chat_member update Telegram sends when the customer
// blocks (old "member", new "kicked") or unblocks the bot, in their private chat.
// With updateID 0 the update has none (AddUpdate numbers it).
func memberUpdate(updateID int, old, new string) map[string]any {
	u := map[string]any{"my_chat_member": map[string]any{
		"chat":            map[string]any{"id": customer, "first_name": "Ann", "username": "annlee", "type": "private"},
		"from":            ann,
		"date":            1700000900,
		"old_chat_member": map[string]any{"user": bot, "status": old},
		"new_chat_member": map[string]any{"user": bot, "status": new, "until_date": 0},
	}}
	if updateID != 0 {
		u["update_id"] = updateID
	}
	return u
}

// TestWebhook_BlockedAndUnblocked: the customer's blocking the bot is a
// contact.unreachable event (reason blocked) of telegram:<user id> on the
// customer's inbound subject, in order with their messages; unblocking is
// contact.reachable. Retries are stored once; the bot's membership of a
// group concerns no customer.
func TestWebhook_BlockedAndUnblocked(t *testing.T) {
	env, _, _ := webhookEnv(t)
	updates := []map[string]any{
		textUpdate(400, 1, "bye"),
		memberUpdate(401, "member", "kicked"),
		memberUpdate(401, "member", "kicked"), // Telegram's retry
		memberUpdate(402, "kicked", "member"),
		{"update_id": 403, "my_chat_member": map[string]any{
			"chat": map[string]any{"id": -1001, "type": "supergroup", "title": "Fans"}, "from": ann, "date": 1700000950,
			"old_chat_member": map[string]any{"user": bot, "status": "member"}, "new_chat_member": map[string]any{"user": bot, "status": "left"},
		}},
	}
	for _, u := range updates {
		if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, u)); resp.StatusCode != http.StatusOK {
			t.Fatalf("update %v: %d", u["update_id"], resp.StatusCode)
		}
	}
	got := env.Stored(t, bus.StreamIn)
	if len(got) != 3 {
		t.Fatalf("%d stored, want the message, the block and the unblock", len(got))
	}
	for _, s := range got {
		if s.Subject != bus.SubjectIn("telegram", "telegram:4242") {
			t.Errorf("%s on %s, want the customer's partition", s.MsgID, s.Subject)
		}
	}
	blocked, unblocked := got[1].Message, got[2].Message
	if blocked.Kind != core.KindEvent || blocked.Type != event.ContactUnreachable || blocked.From != "telegram:4242" ||
		blocked.Meta[event.MetaReason] != event.ReasonBlocked || blocked.Meta[event.MetaError] == "" {
		t.Errorf("block stored as %+v", blocked)
	}
	if got[1].MsgID != "telegram:4242:my_chat_member:401" {
		t.Errorf("Nats-Msg-Id %q", got[1].MsgID)
	}
	if unblocked.Type != event.ContactReachable || unblocked.From != "telegram:4242" || unblocked.Meta[event.MetaReason] != "unblocked" {
		t.Errorf("unblock stored as %+v", unblocked)
	}
}

// TestPolling_EveryUpdateKind: getUpdates asks for every kind the adapter
// handles, so that a message, its edit, a block and an unblock all arrive;
// a kind it does not ask for (chat_member) never comes.
func TestPolling_EveryUpdateKind(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	fake.AddUpdate(t, map[string]any{"message": message(1, map[string]any{"text": "hello"})})
	fake.AddUpdate(t, map[string]any{"edited_message": message(1, map[string]any{"text": "hello!", "edit_date": 1700000100})})
	fake.AddUpdate(t, map[string]any{"chat_member": map[string]any{"chat": map[string]any{"id": -5, "type": "group"}, "from": ann, "date": 1,
		"old_chat_member": map[string]any{"user": ann, "status": "left"}, "new_chat_member": map[string]any{"user": ann, "status": "member"}}})
	fake.AddUpdate(t, memberUpdate(0, "member", "kicked"))
	fake.AddUpdate(t, memberUpdate(0, "kicked", "member"))

	p := startProcess(t, srv, fake)
	want := []string{"message 4242:1", "message 4242:1:edit:1700000100", "contact.unreachable", "contact.reachable"}
	bustest.Eventually(t, waitFor, func() error {
		var got []string
		for _, m := range storedIn(t, p.bus) {
			if m.Kind == core.KindEvent {
				got = append(got, m.Type)
			} else {
				got = append(got, "message "+m.External.Message)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("stored %q, want %q", got, want)
		}
		return nil
	})
	// chat_member was not asked for: dropped, so nothing is left to confirm.
	bustest.Eventually(t, waitFor, func() error {
		if n := fake.Pending(); n != 0 {
			return fmt.Errorf("%d updates left unconfirmed", n)
		}
		return nil
	})
}
