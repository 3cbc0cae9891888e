package telegram_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

// reply is an outbound message to the customer.
func reply(text string) *core.Message {
	m := core.NewMessage(core.KindMessage, core.Outbound, "telegram")
	m.To = "telegram:4242"
	m.ConversationID = "conv1"
	m.Text = text
	return m
}

// sendEnv is a webhook-mode adapter on a real JetStream, not running: tests
// call Send directly, or Start the runtime themselves.
func sendEnv(t *testing.T) (*adaptertest.Env, *telegramtest.Server, *telegram.Adapter) {
	t.Helper()
	env := adaptertest.NewEnv(t, "telegram")
	fake := telegramtest.NewServer(t, "")
	return env, fake, build(t, env.Deps, webhookConfig(fake))
}

func TestSend_PlainText(t *testing.T) {
	_, fake, a := sendEnv(t)
	rc, err := a.Send(t.Context(), reply("Your order ships *today*. Thanks!"))
	if err != nil {
		t.Fatal(err)
	}
	if rc.ProviderID != "4242:1" || rc.Status != "sent" {
		t.Errorf("receipt %+v", rc)
	}
	req := fake.Requests("sendMessage")
	if len(req) != 1 || req[0].Params["chat_id"] != "4242" || req[0].Params["text"] != "Your order ships *today*. Thanks!" || req[0].Params["parse_mode"] != "" {
		t.Errorf("sendMessage %+v, want the text as is, no parse_mode", req)
	}
}

func TestSend_Markdown(t *testing.T) {
	_, fake, a := sendEnv(t)
	m := reply("Your order **#1234** ships _today_. See [tracking](https://example.com/t?id=1_2) (ETA: 2-3 days)!")
	m.Meta = map[string]string{event.MetaFormat: event.FormatMarkdown}
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 1 || sent[0].ParseMode != "MarkdownV2" {
		t.Fatalf("sent %+v", sent)
	}
	if want := "Your order #1234 ships today. See tracking (ETA: 2-3 days)!"; sent[0].Text != want {
		t.Errorf("customer sees %q, want %q", sent[0].Text, want)
	}
	if want := `Your order *\#1234* ships _today_\. See [tracking](https://example.com/t?id=1_2) \(ETA: 2\-3 days\)\!`; sent[0].Raw != want {
		t.Errorf("sent %q, want %q", sent[0].Raw, want)
	}
}

// TestSend_MarkdownRefused: should Telegram refuse the markup, the text goes
// again as the plain text it would have shown.
func TestSend_MarkdownRefused(t *testing.T) {
	_, fake, a := sendEnv(t)
	fake.Fail(telegramtest.Failure{Methods: []string{"sendMessage"}, Code: 400, Times: 1,
		Description: "Bad Request: can't parse entities: Can't find end of Bold entity at byte offset 0"})
	m := reply("*bold* move")
	m.Meta = map[string]string{"format": "markdown"}
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if sent := fake.Sent(); len(sent) != 1 || sent[0].Text != "bold move" || sent[0].ParseMode != "" {
		t.Errorf("sent %+v, want the plain text once", sent)
	}
}

func TestSend_LongTextSplitInOrder(t *testing.T) {
	_, fake, a := sendEnv(t)
	var paras []string
	for i := range 12 {
		paras = append(paras, fmt.Sprintf("Paragraph %d. ", i)+strings.Repeat("lorem ipsum ", 80))
	}
	if _, err := a.Send(t.Context(), reply(strings.Join(paras, "\n\n"))); err != nil {
		t.Fatal(err)
	}
	texts := fake.SentTexts()
	if len(texts) < 3 {
		t.Fatalf("%d messages, want the text split", len(texts))
	}
	joined := strings.Join(texts, "\n\n")
	for i := range paras {
		if !strings.Contains(joined, fmt.Sprintf("Paragraph %d.", i)) {
			t.Errorf("paragraph %d lost", i)
		}
	}
	for i, s := range texts {
		if units(s) > telegram.MaxMessageLength || !strings.HasPrefix(s, "Paragraph") {
			t.Errorf("message %d: %d units, starts %q; want whole paragraphs", i, units(s), head(s))
		}
	}
}

func TestSend_Attachments(t *testing.T) {
	_, fake, a := sendEnv(t)
	m := reply("Here you go")
	m.Attachments = []core.Attachment{
		{Name: "label.png", ContentType: "image/png", URL: "https://files.example.com/label.png"},
		{Name: "invoice.pdf", ContentType: "application/pdf", URL: "https://files.example.com/invoice.pdf"},
		{URL: "https://files.example.com/photo.JPG?sig=1"},
		{Name: "from customer", ContentType: "application/pdf", Key: telegram.FileKey("BQACAgIAAxk")},
		{Name: "huge.png", ContentType: "image/png", Size: 8 << 20, URL: "https://files.example.com/huge.png"},
	}
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range fake.Sent() {
		got = append(got, s.Method+" "+firstNonEmpty(s.File, s.Text))
	}
	want := []string{
		"sendMessage Here you go",
		"sendPhoto https://files.example.com/label.png",
		"sendDocument https://files.example.com/invoice.pdf",
		"sendPhoto https://files.example.com/photo.JPG?sig=1",
		"sendDocument BQACAgIAAxk",
		"sendDocument https://files.example.com/huge.png", // over sendPhoto's 5 MB
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSend_UnsendableAttachmentIsPermanent(t *testing.T) {
	_, fake, a := sendEnv(t)
	for _, att := range []core.Attachment{
		{Name: "x", Key: "s3://bucket/x"},
		{Name: "x", URL: "ftp://files.example.com/x"},
		{Name: "x", URL: "https://files.example.com/x", Size: 50 << 20},
	} {
		m := reply("see attached")
		m.Attachments = []core.Attachment{att}
		if _, err := a.Send(t.Context(), m); !bus.IsPermanent(err) {
			t.Errorf("attachment %+v: %v, want Permanent", att, err)
		}
	}
	if n := len(fake.Sent()); n != 0 {
		t.Errorf("%d messages sent; a message that cannot be sent whole is not started", n)
	}
}

func TestSend_RateLimited(t *testing.T) {
	_, fake, a := sendEnv(t)
	fake.Fail(telegramtest.TooManyRequests(3))
	_, err := a.Send(t.Context(), reply("hi"))
	if d, ok := bus.RetryDelay(err); !ok || d != 3*time.Second {
		t.Fatalf("Send: %v; want RetryAfter 3s (parameters.retry_after)", err)
	}
	if bus.IsPermanent(err) {
		t.Error("429 is Permanent")
	}
}

// TestSend_RateLimitHonoured: through the runtime, a reply throttled once is
// sent once, no sooner than retry_after later.
func TestSend_RateLimitHonoured(t *testing.T) {
	env, fake, a := sendEnv(t)
	env.Start(t, a)
	fake.Fail(telegramtest.Failure{Code: 429, Description: "Too Many Requests: retry after 1", RetryAfter: 1, Times: 1})
	m := reply("throttled once")
	env.PublishOutbound(t, m, "")
	bustest.Eventually(t, waitFor, func() error {
		if n := len(fake.Sent()); n != 1 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	calls := fake.Requests("sendMessage")
	if len(calls) != 2 {
		t.Fatalf("%d sendMessage calls, want the throttled one and the retry", len(calls))
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < 900*time.Millisecond {
		t.Errorf("retried after %s, Telegram asked for 1s", gap)
	}
	bustest.Eventually(t, waitFor, func() error {
		if n := len(env.Events(t, event.DeliverySent, m.ID)); n != 1 {
			return fmt.Errorf("%d delivery.sent events after the retry, want 1", n)
		}
		return nil
	})
}

// TestSend_Blocked: a 403 is Unreachable (Permanent) with the reason the agent
// reads; through the runtime, the desk gets delivery.failed with reason
// blocked, and the pipeline gets contact.unreachable on the customer's inbound
// subject, carrying the reply to send on another channel.
func TestSend_Blocked(t *testing.T) {
	env, fake, a := sendEnv(t)
	fake.Fail(telegramtest.Blocked())
	m := reply("are you there?")
	_, err := a.Send(t.Context(), m)
	if reason, _ := adapters.UnreachableReason(err); !bus.IsPermanent(err) || !errors.Is(err, telegram.ErrBlocked) || reason != event.ReasonBlocked || !strings.Contains(err.Error(), "user blocked the bot") {
		t.Fatalf("Send: %v; want Permanent ErrBlocked, unreachable for reason blocked", err)
	}

	env.Start(t, a)
	m2 := reply("hello again?")
	env.PublishOutbound(t, m2, "")
	bustest.Eventually(t, waitFor, func() error {
		evs := env.Events(t, event.DeliveryFailed, m2.ID)
		if len(evs) != 1 {
			return fmt.Errorf("%d delivery.failed events", len(evs))
		}
		if !strings.Contains(evs[0].Meta["error"], "user blocked the bot") || evs[0].Meta[event.MetaReason] != event.ReasonBlocked {
			return fmt.Errorf("delivery.failed meta %v does not say why", evs[0].Meta)
		}
		return nil
	})
	bustest.Eventually(t, waitFor, func() error {
		var got []*core.Message
		for _, s := range env.Stored(t, bus.StreamIn) {
			if s.Message != nil && s.Message.Type == event.ContactUnreachable && s.Message.ReplyTo == m2.ID {
				got = append(got, s.Message)
			}
		}
		if len(got) != 1 {
			return fmt.Errorf("%d contact.unreachable events for the reply on omni.in", len(got))
		}
		if ev := got[0]; ev.From != "telegram:4242" || ev.Text != m2.Text || ev.Meta[event.MetaReason] != event.ReasonBlocked || ev.ConversationID != "conv1" {
			return fmt.Errorf("contact.unreachable %+v", ev)
		}
		return nil
	})
	if dls, err := env.Bus.DeadLetters(t.Context(), "", 0); err != nil || len(dls) != 0 {
		t.Errorf("%d dead letters (%v): an unreachable recipient is the pipeline's to handle", len(dls), err)
	}
}

func TestSend_Errors(t *testing.T) {
	tests := []struct {
		name      string
		failure   telegramtest.Failure
		permanent bool
		is        error
	}{
		{"chat not found", telegramtest.ChatNotFound(), true, telegram.ErrChatNotFound},
		{"other bad request", telegramtest.Failure{Code: 400, Description: "Bad Request: wrong file identifier/HTTP URL specified"}, true, nil},
		{"bad gateway", telegramtest.InternalError(), false, nil},
		{"token revoked", telegramtest.Failure{Code: 401, Description: "Unauthorized"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fake, a := sendEnv(t)
			fake.Fail(tt.failure)
			_, err := a.Send(t.Context(), reply("hi"))
			if err == nil {
				t.Fatal("no error")
			}
			if bus.IsPermanent(err) != tt.permanent {
				t.Errorf("%v: permanent %v, want %v", err, bus.IsPermanent(err), tt.permanent)
			}
			if _, retry := bus.RetryDelay(err); retry {
				t.Errorf("%v asks for a retry delay", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
		})
	}
}

func TestSend_BadRecipient(t *testing.T) {
	_, fake, a := sendEnv(t)
	for _, m := range []*core.Message{
		{V: 1, ID: core.NewID(), Kind: core.KindMessage, Direction: core.Outbound, Channel: "telegram", ConversationID: "c", Text: "x"},
		{
			V:         1,
			ID:        core.NewID(),
			Kind:      core.KindMessage,
			Direction: core.Outbound,
			Channel:   "telegram",
			To:        "sms:+15551234567",
			Text:      "x",
		},
		{
			V:         1,
			ID:        core.NewID(),
			Kind:      core.KindMessage,
			Direction: core.Outbound,
			Channel:   "telegram",
			To:        "telegram:annlee",
			Text:      "x",
		},
		reply(""),
	} {
		if _, err := a.Send(t.Context(), m); !bus.IsPermanent(err) {
			t.Errorf("to %q: %v, want Permanent", m.To, err)
		}
	}
	if len(fake.Requests("")) != 0 {
		t.Error("the Bot API was called")
	}
}

// TestSend_GroupChatFromExternal: a reply carrying the group's chat id goes
// to the group, not to the user privately.
func TestSend_GroupChatFromExternal(t *testing.T) {
	_, fake, a := sendEnv(t)
	m := reply("hi group")
	m.External.Chat = "-100123"
	if _, err := a.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if s := fake.Sent(); len(s) != 1 || s[0].ChatID != -100123 {
		t.Errorf("sent %+v", s)
	}
}

// TestSend_PartsNotRepeated: when a later part fails, the retry sends only
// what is missing.
func TestSend_PartsNotRepeated(t *testing.T) {
	_, fake, a := sendEnv(t)
	fake.Fail(telegramtest.Failure{Methods: []string{"sendPhoto"}, Code: 502, Description: "Bad Gateway", Times: 1})
	m := reply("Photo below")
	m.Attachments = []core.Attachment{{ContentType: "image/jpeg", URL: "https://files.example.com/a.jpg"}}
	if _, err := a.Send(t.Context(), m); err == nil || bus.IsPermanent(err) {
		t.Fatalf("first attempt: %v, want a retryable error", err)
	}
	rc, err := a.Send(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Requests("sendMessage")); n != 1 {
		t.Errorf("text sent %d times, want once", n)
	}
	if n := len(fake.Sent()); n != 2 {
		t.Errorf("%d parts delivered, want 2", n)
	}
	if rc.ProviderID != "4242:1" {
		t.Errorf("receipt %+v, want the first part's id", rc)
	}
}

func TestFileURL(t *testing.T) {
	_, fake, a := sendEnv(t)
	fake.AddFile("AgACAgIAAxk", "photos/file_0.jpg", []byte("jpeg bytes"))
	u, err := a.FileURL(t.Context(), telegram.FileKey("AgACAgIAAxk"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fake.URL + "/file/bot" + fake.Token + "/photos/file_0.jpg"; u != want {
		t.Errorf("FileURL = %q, want %q", u, want)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "jpeg bytes" {
		t.Errorf("downloaded %q", body)
	}
	if _, err := a.FileURL(t.Context(), "unknown"); err == nil || strings.Contains(err.Error(), secretPart(fake.Token)) {
		t.Errorf("unknown file: %v", err)
	}
}

func TestFileKey(t *testing.T) {
	if k := telegram.FileKey("abc"); k != "telegram:file:abc" {
		t.Errorf("FileKey = %q", k)
	}
	for key, want := range map[string]string{"telegram:file:abc": "abc", "telegram:file:": "", "s3://x": ""} {
		if id, ok := telegram.FileID(key); id != want || ok != (want != "") {
			t.Errorf("FileID(%q) = %q, %v", key, id, ok)
		}
	}
}

// TestToken_NeverLeaks: errors and logs of failed calls never show the token,
// which the library puts in every URL and net/http repeats in its errors.
func TestToken_NeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	env := adaptertest.NewEnv(t, "telegram")
	env.Deps.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gone := telegramtest.NewServer(t, "")
	gone.Close()
	a := build(t, env.Deps, pollingConfig(gone))

	_, sendErr := a.Send(t.Context(), reply("hi"))
	_, fileErr := a.FileURL(t.Context(), "x")
	runErr := a.Run(t.Context())
	errs := map[string]error{"Send": sendErr, "FileURL": fileErr, "Run": runErr, "Ready": a.Ready(t.Context())}

	secret := secretPart(gone.Token)
	for call, err := range errs {
		if err == nil {
			t.Errorf("%s: no error from a server that is gone", call)
			continue
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), secret) {
				t.Errorf("%s: error shows the token: %v", call, e)
			}
		}
	}
	if !strings.Contains(sendErr.Error(), "<token>") {
		t.Errorf("Send: %v; want the URL with the token scrubbed", sendErr)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs show the token:\n%s", logs.String())
	}
}

func secretPart(token string) string {
	_, s, _ := strings.Cut(token, ":")
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSend_AgentEditsAndDeletesReply: an agent's edit of a reply (meta
// edit_of = its envelope id) becomes editMessageText of the reply's message,
// and a deletion (delete_of) deleteMessage of each of its messages; an edit
// of a reply the adapter never sent is Permanent.
func TestSend_AgentEditsAndDeletesReply(t *testing.T) {
	_, fake, a := sendEnv(t)
	orig := reply("Your order ships today.")
	orig.Attachments = []core.Attachment{{Name: "label.pdf", ContentType: "application/pdf", URL: "https://files.example.com/label.pdf"}}
	if _, err := a.Send(t.Context(), orig); err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()
	if len(sent) != 2 {
		t.Fatalf("reply sent as %d messages, want text and document", len(sent))
	}

	ed := reply("Your order ships *tomorrow*.")
	ed.Meta = map[string]string{event.MetaEditOf: orig.ID, event.MetaFormat: event.FormatMarkdown}
	if _, err := a.Send(t.Context(), ed); err != nil {
		t.Fatalf("edit: %v", err)
	}
	edits := fake.Requests("editMessageText")
	if len(edits) != 1 || edits[0].Params["message_id"] != strconv.Itoa(sent[0].MessageID) || edits[0].Params["chat_id"] != "4242" ||
		!strings.Contains(edits[0].Params["text"], "tomorrow") || edits[0].Params["parse_mode"] != "MarkdownV2" {
		t.Fatalf("editMessageText calls %+v, want one of message %d", edits, sent[0].MessageID)
	}

	del := reply("")
	del.Meta = map[string]string{event.MetaDeleteOf: orig.ID}
	if _, err := a.Send(t.Context(), del); err != nil {
		t.Fatalf("delete: %v", err)
	}
	var gone []string
	for _, r := range fake.Requests("deleteMessage") {
		gone = append(gone, r.Params["message_id"])
	}
	if want := []string{strconv.Itoa(sent[0].MessageID), strconv.Itoa(sent[1].MessageID)}; !slices.Equal(gone, want) {
		t.Errorf("deleteMessage of %v, want %v", gone, want)
	}
	// Deleting again (a retry) finds them gone and succeeds.
	if _, err := a.Send(t.Context(), del); err != nil {
		t.Errorf("delete again: %v", err)
	}

	stranger := reply("edited")
	stranger.Meta = map[string]string{event.MetaEditOf: core.NewID()}
	if _, err := a.Send(t.Context(), stranger); !bus.IsPermanent(err) {
		t.Errorf("edit of a reply never sent: %v, want Permanent", err)
	}
}
