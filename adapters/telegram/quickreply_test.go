package telegram_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// ann is the customer as a Telegram User object.
var ann = map[string]any{"id": customer, "is_bot": false, "first_name": "Ann", "last_name": "Lee", "username": "annlee", "language_code": "en"}

// offer is a reply offering quick replies.
func offer(text string, choices ...string) *core.Message {
	m := reply(text)
	m.QuickReplies = choices
	return m
}

// labels returns the labels of an inline keyboard, row by row, and checks
// each button's callback_data against Telegram's limit.
func labels(t *testing.T, kb [][]telegramtest.Button) []string {
	t.Helper()
	var out []string
	for _, row := range kb {
		var r []string
		for _, b := range row {
			if n := len(b.CallbackData); n == 0 || n > 64 {
				t.Errorf("button %q: callback_data %q is %d bytes, Telegram takes 1-64", b.Text, b.CallbackData, n)
			}
			r = append(r, b.Text)
		}
		out = append(out, strings.Join(r, "|"))
	}
	return out
}

// TestSend_QuickRepliesInlineKeyboard: quick replies go out as an inline
// keyboard (reply_markup), one button per row, each with a short
// callback_data naming the reply and the choice; a reply in several parts
// carries it on its last part only.
func TestSend_QuickRepliesInlineKeyboard(t *testing.T) {
	_, fake, a := sendEnv(t)
	m := offer("How can we help?", "Track my order", " Talk to an agent ", "Ya está, gracias 🙏")
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %+v", sent)
	}
	if got := labels(t, sent[0].Keyboard); fmt.Sprint(got) != "[Track my order Talk to an agent Ya está, gracias 🙏]" {
		t.Errorf("keyboard rows %q, want one button per quick reply, trimmed", got)
	}
	for i, row := range sent[0].Keyboard {
		if want := telegram.ChoiceData(m.ID, i); row[0].CallbackData != want {
			t.Errorf("button %d: callback_data %q, want %q", i, row[0].CallbackData, want)
		}
	}

	long := offer(strings.Repeat("word ", 1200), "Yes", "No")
	long.Attachments = []core.Attachment{{Name: "terms.pdf", ContentType: "application/pdf", URL: "https://files.example.com/terms.pdf"}}
	if _, err := a.Send(t.Context(), long); err != nil {
		t.Fatal(err)
	}
	parts := fake.Sent()[1:]
	if len(parts) != 3 {
		t.Fatalf("%d parts, want two text chunks and the document", len(parts))
	}
	for i, p := range parts {
		if last := i == len(parts)-1; (p.Keyboard != nil) != last {
			t.Errorf("part %d (%s): keyboard %v, want it on the last part only", i, p.Method, p.Keyboard)
		}
	}
	if p := parts[2]; p.Method != "sendDocument" || fmt.Sprint(labels(t, p.Keyboard)) != "[Yes No]" {
		t.Errorf("last part %s with keyboard %v", p.Method, p.Keyboard)
	}

	if _, err := a.Send(t.Context(), reply("No buttons")); err != nil {
		t.Fatal(err)
	}
	if r := fake.Requests("sendMessage"); r[len(r)-1].Params["reply_markup"] != "" {
		t.Errorf("reply_markup %q on a reply without quick replies", r[len(r)-1].Params["reply_markup"])
	}
}

func TestSend_BlankQuickReplyIsPermanent(t *testing.T) {
	_, fake, a := sendEnv(t)
	_, err := a.Send(t.Context(), offer("Pick one", "Yes", "  "))
	if !bus.IsPermanent(err) || !strings.Contains(err.Error(), "quick reply 1 is blank") {
		t.Fatalf("Send: %v, want a permanent error naming the blank quick reply", err)
	}
	if n := len(fake.Sent()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

// TestWebhook_QuickReplyChoice: the customer presses a button of a reply;
// the callback_query Telegram posts to the webhook is answered with
// answerCallbackQuery and stored as the customer's message: the button's
// label as text, ReplyTo the reply, meta saying which quick reply of which
// Telegram message. Telegram's retry of the update is stored once.
func TestWebhook_QuickReplyChoice(t *testing.T) {
	env, fake, a := webhookEnv(t)
	m := offer("How can we help?", "Track my order", "Talk to an agent")
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()[0]
	u := fake.Press(t, sent, "Talk to an agent", ann)
	u["update_id"] = 300
	for i := range 2 {
		if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, u)); resp.StatusCode != http.StatusOK {
			t.Fatalf("delivery %d: %d", i+1, resp.StatusCode)
		}
	}
	got := env.Stored(t, bus.StreamIn)
	if len(got) != 1 || got[0].Message == nil {
		t.Fatalf("%d stored, want the choice once", len(got))
	}
	query := u["callback_query"].(map[string]any)["id"].(string)
	c := got[0].Message
	if c.Kind != core.KindMessage || c.From != "telegram:4242" || c.Text != "Talk to an agent" || c.ReplyTo != m.ID || c.Language != "en" {
		t.Errorf("choice stored as kind %q from %q text %q reply_to %q (want %s)", c.Kind, c.From, c.Text, c.ReplyTo, m.ID)
	}
	wantMeta(t, c, map[string]string{"quick_reply": "true", "quick_reply_index": "1",
		"reply_to_external": fmt.Sprintf("4242:%d", sent.MessageID), "name": "Ann Lee", "username": "annlee"})
	if got[0].MsgID != "telegram:4242:callback:"+query || got[0].Subject != bus.SubjectIn("telegram", "telegram:4242") {
		t.Errorf("Nats-Msg-Id %q subject %q", got[0].MsgID, got[0].Subject)
	}
	// Both deliveries answered; Telegram took the first answer only.
	if answers := fake.Answers(); len(answers) != 1 || answers[0].QueryID != query || answers[0].Text != "" {
		t.Errorf("answers %+v, want one, without text, to %s", answers, query)
	}
	if n := len(fake.Requests("answerCallbackQuery")); n != 2 {
		t.Errorf("%d answerCallbackQuery calls, want one per delivery", n)
	}
}

// TestPolling_QuickReplyChoice: the same through getUpdates, which asks for
// callback_query (the fake, as Telegram, leaves out kinds not asked for); a
// press on a message too old for Telegram to include is understood from what
// Send recorded, and one the adapter cannot match is answered with a notice
// and not stored.
func TestPolling_QuickReplyChoice(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	p := startProcess(t, srv, fake)
	m := offer("Was this helpful?", "Yes", "No")
	if _, err := p.a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()[0]

	fake.AddUpdate(t, fake.Press(t, sent, "Yes", ann))
	old := fake.PressOld(t, sent, "No", ann)
	if _, found := old["callback_query"].(map[string]any)["message"].(map[string]any)["reply_markup"]; found {
		t.Fatal("PressOld included the keyboard")
	}
	fake.AddUpdate(t, old)
	waitInbound(t, p.bus, "Yes", "No")
	for i, c := range storedIn(t, p.bus) {
		if c.ReplyTo != m.ID || c.Meta["quick_reply"] != "true" || c.Meta["quick_reply_index"] != fmt.Sprint(i) {
			t.Errorf("choice %d: reply_to %q meta %v", i, c.ReplyTo, c.Meta)
		}
	}

	// Once the record is gone too, the choice cannot be told.
	if err := p.store.Records("telegram").Delete(t.Context(), "qr_"+m.ID, 0); err != nil {
		t.Fatal(err)
	}
	fake.AddUpdate(t, fake.PressOld(t, sent, "Yes", ann))
	bustest.Eventually(t, waitFor, func() error {
		if n := len(fake.Answers()); n != 3 {
			return fmt.Errorf("%d answers, want 3", n)
		}
		return nil
	})
	answers := fake.Answers()
	if answers[0].Text != "" || answers[1].Text != "" || !strings.Contains(answers[2].Text, "no longer available") {
		t.Errorf("answers %+v, want the last with a notice", answers)
	}
	// The offset moved past it: stored or not, it was handled.
	bustest.Eventually(t, waitFor, func() error {
		if n := fake.Pending(); n != 0 {
			return fmt.Errorf("%d updates not confirmed", n)
		}
		return nil
	})
	if got := inbound(t, p.bus); len(got) != 2 {
		t.Errorf("stored %q, want the two choices only", got)
	}
	if calls := fake.Requests("getUpdates"); !strings.Contains(calls[0].Params["allowed_updates"], `"callback_query"`) {
		t.Errorf("getUpdates allowed_updates %s", calls[0].Params["allowed_updates"])
	}
}

// TestWebhook_ChoiceNotStoredStillAnswered: when the choice cannot be stored
// the webhook answers 5xx, so that Telegram sends it again, and the query is
// answered all the same: the customer's button stops spinning now.
func TestWebhook_ChoiceNotStoredStillAnswered(t *testing.T) {
	env, fake, a := webhookEnv(t)
	if _, err := a.Send(t.Context(), offer("Pick one", "A", "B")); err != nil {
		t.Fatal(err)
	}
	u := fake.Press(t, fake.Sent()[0], "B", ann)
	u["update_id"] = 302
	if err := env.Bus.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, u)); resp.StatusCode < 500 {
		t.Fatalf("%d with the bus down, want 5xx", resp.StatusCode)
	}
	if n := len(fake.Answers()); n != 1 {
		t.Errorf("%d answers, want 1", n)
	}
}

// TestWebhook_ForeignCallbackAnswered: a press on a button that is not a
// quick reply (another bot's, an old menu) is answered, so the spinner
// stops, and stored nowhere.
func TestWebhook_ForeignCallbackAnswered(t *testing.T) {
	env, fake, _ := webhookEnv(t)
	cq := map[string]any{"update_id": 301, "callback_query": map[string]any{
		"id": "998877", "from": ann, "chat_instance": "-42", "data": "menu:prices",
		"message": map[string]any{"message_id": 5, "date": 1700000000, "chat": map[string]any{"id": customer, "type": "private"}, "text": "Menu",
			"reply_markup": map[string]any{"inline_keyboard": [][]map[string]any{{{"text": "Prices", "callback_data": "menu:prices"}}}}},
	}}
	if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, cq)); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d", resp.StatusCode)
	}
	if n := env.Count(t, bus.StreamIn); n != 0 {
		t.Errorf("%d stored", n)
	}
	r := fake.Requests("answerCallbackQuery")
	if len(r) != 1 || r[0].Params["callback_query_id"] != "998877" || r[0].Params["text"] != "" {
		t.Errorf("answerCallbackQuery %+v", r)
	}
}

// TestSend_QuickRepliesThroughRuntime: an outbound envelope on omni.out with
// quick_replies, as the pipeline publishes it, reaches Telegram with its
// keyboard.
func TestSend_QuickRepliesThroughRuntime(t *testing.T) {
	env, fake, a := sendEnv(t)
	env.Start(t, a)
	m := offer("Rate us", "⭐", "⭐⭐", "⭐⭐⭐")
	env.WaitSent(t, env.PublishOutbound(t, m, ""))
	sent := fake.Sent()
	if len(sent) != 1 || fmt.Sprint(labels(t, sent[0].Keyboard)) != "[⭐ ⭐⭐ ⭐⭐⭐]" {
		t.Fatalf("sent %+v", sent)
	}
	bustest.Eventually(t, waitFor, func() error {
		if evs := env.Events(t, event.DeliverySent, m.ID); len(evs) != 1 {
			return fmt.Errorf("%d delivery.sent events", len(evs))
		}
		return nil
	})
}

// storedIn returns the envelopes stored on OMNI_IN, oldest first.
func storedIn(t *testing.T, b *bus.Bus) []*core.Message {
	t.Helper()
	st, err := b.JetStream().Stream(t.Context(), bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*core.Message
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		m, err := core.Decode(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
