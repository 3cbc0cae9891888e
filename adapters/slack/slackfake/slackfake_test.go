package slackfake_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
)

// eventually polls f until it returns nil, failing the test after 10s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify checks r's signature as slack-go's SecretsVerifier does and returns
// the body.
func verify(t *testing.T, r *http.Request, secret string) ([]byte, error) {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := slack.NewSecretsVerifier(r.Header, secret)
	if err != nil {
		return body, err
	}
	_, _ = sv.Write(body)
	return body, sv.Ensure()
}

// TestSigned_SlackGoVerifies: Signed signs as Slack does, so slack-go's
// verifier accepts it with the secret and refuses it with another.
func TestSigned_SlackGoVerifies(t *testing.T) {
	body := slackfake.EventPayload("Ev1", slackfake.AgentReply(slackfake.AgentUser, slackfake.ChannelSupport, "1.000001", "1.000002", "hi"))
	r := slackfake.Signed("events", slackfake.JSON, body, slackfake.SigningSecret, time.Now())
	if r.URL.Path != "/channels/slack/events" || r.Header.Get("Content-Type") != slackfake.JSON {
		t.Errorf("request to %s as %s", r.URL.Path, r.Header.Get("Content-Type"))
	}
	if got, err := verify(t, r, slackfake.SigningSecret); err != nil || !bytes.Equal(got, body) {
		t.Errorf("slack-go refused the signature: %v", err)
	}
	r = slackfake.Signed("events", slackfake.JSON, body, slackfake.SigningSecret, time.Now())
	if _, err := verify(t, r, "another-secret"); err == nil {
		t.Error("slack-go accepted the signature with another secret")
	}
}

// TestPost sends a signed request over HTTP to a running server.
func TestPost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := verify(t, r, slackfake.SigningSecret); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.Header.Get("Content-Type"))
	}))
	defer srv.Close()
	form := slackfake.Command(slackfake.AgentUser, slackfake.ChannelSupport, "help")
	code, body := slackfake.Post(t, srv.URL, "commands", slackfake.Form, []byte(form.Encode()))
	if code != http.StatusOK || body != "/channels/slack/commands "+slackfake.Form {
		t.Errorf("answered %d %q", code, body)
	}
}

// TestBuilders_SlackGoParses: what the builders make parses with slack-go's
// own parsers into what they were asked for.
func TestBuilders_SlackGoParses(t *testing.T) {
	ev, err := slackevents.ParseEvent(slackfake.EventPayload("Ev1",
		slackfake.AgentReply(slackfake.AgentUser, slackfake.ChannelSupport, "1.000001", "1.000002", "hi")), slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	msg, ok2 := ev.InnerEvent.Data.(*slackevents.MessageEvent)
	if ev.Type != slackevents.CallbackEvent || !ok || cb.EventID != "Ev1" || !ok2 {
		t.Fatalf("event parsed as %+v", ev)
	}
	if msg.User != slackfake.AgentUser || msg.Channel != slackfake.ChannelSupport || msg.ThreadTimeStamp != "1.000001" || msg.TimeStamp != "1.000002" || msg.Text != "hi" {
		t.Errorf("message parsed as %+v", msg)
	}

	for _, tt := range []struct{ action, value, want string }{
		{"omni_claim", "conv-1", "conv-1"},
		{"omni_transfer", "billing", "billing"},
	} {
		var ic slack.InteractionCallback
		if err := json.Unmarshal(slackfake.Click(slackfake.Agent2User, slackfake.ChannelBilling, "1.000003", tt.action, tt.value), &ic); err != nil {
			t.Fatal(err)
		}
		acts := ic.ActionCallback.BlockActions
		if ic.Type != slack.InteractionTypeBlockActions || ic.User.ID != slackfake.Agent2User || ic.Channel.ID != slackfake.ChannelBilling ||
			ic.Container.MessageTs != "1.000003" || len(acts) != 1 || acts[0].ActionID != tt.action {
			t.Fatalf("%s parsed as %+v", tt.action, ic)
		}
		if got := cmp.Or(acts[0].Value, acts[0].SelectedOption.Value); got != tt.want {
			t.Errorf("%s carries %q, want %q", tt.action, got, tt.want)
		}
	}

	r := slackfake.Signed("commands", slackfake.Form, []byte(slackfake.Command(slackfake.AgentUser, slackfake.ChannelSupport, "whois x").Encode()), slackfake.SigningSecret, time.Now())
	cmd, err := slack.SlashCommandParse(r)
	if err != nil || cmd.Command != "/omni" || cmd.Text != "whois x" || cmd.UserID != slackfake.AgentUser || cmd.ChannelID != slackfake.ChannelSupport {
		t.Errorf("command parsed as %+v, %v", cmd, err)
	}
}

// TestServer_WebAPI drives the fake with slack-go's client, as the adapter
// does.
func TestServer_WebAPI(t *testing.T) {
	s := slackfake.New(t)
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(s.URL()))
	ctx := t.Context()

	at, err := api.AuthTestContext(ctx)
	if err != nil || at.UserID != slackfake.BotUser || at.BotID != slackfake.BotID || at.TeamID != slackfake.TeamID {
		t.Fatalf("auth.test = %+v, %v", at, err)
	}
	if _, err := slack.New("xoxb-wrong", slack.OptionAPIURL(s.URL())).AuthTestContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("auth.test with another token = %v, want invalid_auth", err)
	}

	_, root, err := api.PostMessageContext(ctx, slackfake.ChannelSupport, slack.MsgOptionText("card", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "<@U1> & co", false, false), nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessageContext(ctx, slackfake.ChannelSupport, slack.MsgOptionText("in thread", false), slack.MsgOptionTS(root),
		slack.MsgOptionUsername("Ann (SMS)"), slack.MsgOptionIconEmoji(":speech_balloon:"))
	if err != nil {
		t.Fatal(err)
	}
	if root == reply || root == "" {
		t.Errorf("timestamps %q and %q, want distinct", root, reply)
	}
	roots := s.Roots()
	if len(roots) != 1 || roots[0].TS != root || roots[0].Channel != slackfake.ChannelSupport || !strings.Contains(roots[0].Blocks, "<@U1> & co") {
		t.Errorf("roots = %+v", roots)
	}
	posts := s.Calls("chat.postMessage")
	if len(posts) != 2 || posts[1].ThreadTS != root || posts[1].Username != "Ann (SMS)" || posts[1].Icon != ":speech_balloon:" {
		t.Errorf("posts = %+v", posts)
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, slackfake.ChannelSupport, root, slack.MsgOptionText("card 2", false)); err != nil {
		t.Fatal(err)
	}
	if ups := s.Calls("chat.update"); len(ups) != 1 || ups[0].TS != root || ups[0].Text != "card 2" {
		t.Errorf("updates = %+v", ups)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: slackfake.ChannelSupport, Ts: root})
	if err != nil || link != slackfake.Permalink(slackfake.ChannelSupport, root) {
		t.Errorf("permalink = %q, %v", link, err)
	}
	ref := slack.NewRefToMessage(slackfake.ChannelSupport, reply)
	if err := api.AddReactionContext(ctx, "eyes", ref); err != nil {
		t.Fatal(err)
	}
	if err := api.AddReactionContext(ctx, "eyes", ref); err == nil || err.Error() != "already_reacted" {
		t.Errorf("the same reaction again = %v, want already_reacted", err)
	}
	if rs := s.Calls("reactions.add"); len(rs) != 1 || rs[0].Name != "eyes" || rs[0].TS != reply {
		t.Errorf("reactions = %+v", rs)
	}
	u, err := api.GetUserInfoContext(ctx, slackfake.AgentUser)
	if err != nil || u.RealName != slackfake.AgentName || u.Profile.DisplayName != slackfake.AgentName {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	var file bytes.Buffer
	if err := api.GetFileContext(ctx, s.FileURL("T0TEST-F1/a.txt"), &file); err != nil || file.String() != "file contents of /files-pri/T0TEST-F1/a.txt" {
		t.Errorf("file = %q, %v", file.String(), err)
	}

	s.Throttle(1, 7)
	_, _, err = api.PostMessageContext(ctx, slackfake.ChannelSupport, slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Errorf("throttled post = %v, want rate limited 7s", err)
	}
	s.FailPosts("channel_not_found")
	if _, _, err := api.PostMessageContext(ctx, slackfake.ChannelSupport, slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("failing post = %v, want channel_not_found", err)
	}
	s.FailPosts("")
	if _, _, err := api.PostMessageContext(ctx, slackfake.ChannelSupport, slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("post after FailPosts(\"\") = %v", err)
	}
}

// TestServer_SocketMode connects slack-go's socketmode client, as the
// adapter does, and delivers an event (and Slack's retry of it), a click and
// a command, whose answer comes back in the acknowledgement.
func TestServer_SocketMode(t *testing.T) {
	s := slackfake.New(t)
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(s.URL()), slack.OptionAppLevelToken(slackfake.AppToken))
	smc := socketmode.New(api)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- smc.RunContext(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	got := make(chan socketmode.Event, 10)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-smc.Events:
				if evt.Request == nil || evt.Request.EnvelopeID == "" {
					continue // hello, connecting, connected
				}
				var ack any
				if evt.Type == socketmode.EventTypeSlashCommand {
					ack = map[string]string{"response_type": "ephemeral", "text": "answered"}
				}
				_ = smc.AckCtx(ctx, evt.Request.EnvelopeID, ack)
				got <- evt
			}
		}
	}()
	eventually(t, func() error {
		if !s.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
	next := func() socketmode.Event {
		t.Helper()
		select {
		case evt := <-got:
			return evt
		case <-time.After(10 * time.Second):
			t.Fatal("nothing received over the socket")
			return socketmode.Event{}
		}
	}

	event := slackfake.EventPayload("Ev1", slackfake.AgentReply(slackfake.AgentUser, slackfake.ChannelSupport, "1.000001", "1.000002", "hi"))
	s.PushEvent(t, "env-1", event, 0)
	s.PushEvent(t, "env-2", event, 1)
	for i, want := range []int{0, 1} {
		evt := next()
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if evt.Type != socketmode.EventTypeEventsAPI || !ok || ev.InnerEvent.Type != "message" || evt.Request.RetryAttempt != want {
			t.Errorf("event %d received as %s %+v (retry %d)", i, evt.Type, evt.Data, evt.Request.RetryAttempt)
		}
	}

	s.PushInteraction(t, "env-3", slackfake.Click(slackfake.AgentUser, slackfake.ChannelSupport, "1.000001", "omni_claim", "conv-1"))
	evt := next()
	if ic, ok := evt.Data.(slack.InteractionCallback); evt.Type != socketmode.EventTypeInteractive || !ok || ic.ActionCallback.BlockActions[0].Value != "conv-1" {
		t.Errorf("click received as %s %+v", evt.Type, evt.Data)
	}

	s.PushCommand(t, "env-4", slackfake.Command(slackfake.AgentUser, slackfake.ChannelSupport, "help"))
	evt = next()
	if cmd, ok := evt.Data.(slack.SlashCommand); evt.Type != socketmode.EventTypeSlashCommand || !ok || cmd.Command != "/omni" || cmd.Text != "help" || cmd.UserID != slackfake.AgentUser {
		t.Errorf("command received as %s %+v", evt.Type, evt.Data)
	}

	for _, id := range []string{"env-1", "env-2", "env-3", "env-4"} {
		eventually(t, func() error {
			if _, ok := s.Ack(id); !ok {
				return fmt.Errorf("%s not acknowledged", id)
			}
			return nil
		})
	}
	if p, _ := s.Ack("env-4"); !strings.Contains(string(p), `"text":"answered"`) {
		t.Errorf("command acknowledged with %s, want its answer", p)
	}
	if _, ok := s.Ack("env-none"); ok {
		t.Error("Ack of an envelope never sent")
	}
}

// TestServer_UploadV2: slack-go's files upload v2 (UploadFileContext: the
// upload URL, the bytes, the completion in a thread) works against the fake,
// which keeps the file; the documented errors come back as Slack's.
func TestServer_UploadV2(t *testing.T) {
	s := slackfake.New(t)
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(s.URL()))
	ctx := t.Context()
	f, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: strings.NewReader("hello file"), FileSize: 10, Filename: "a.txt", Title: "A",
		Channel: slackfake.ChannelSupport, ThreadTimestamp: "1.000001", InitialComment: "from Ann",
	})
	if err != nil {
		t.Fatal(err)
	}
	ups := s.Uploads()
	if len(ups) != 1 || ups[0].ID != f.ID || string(ups[0].Data) != "hello file" || ups[0].Length != 10 || ups[0].Name != "a.txt" {
		t.Fatalf("uploads %+v, want a.txt with its bytes, id %s", ups, f.ID)
	}
	if u := ups[0]; !u.Shared || u.Title != "A" || u.Channel != slackfake.ChannelSupport || u.ThreadTS != "1.000001" || u.Comment != "from Ann" {
		t.Errorf("shared as %+v", u)
	}
	if c := s.Calls("files.completeUploadExternal"); len(c) != 1 || c[0].ThreadTS != "1.000001" || c[0].Name != f.ID {
		t.Errorf("completeUploadExternal calls %+v", c)
	}

	// A completion of a file never uploaded, and one Slack refuses.
	if _, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: "F0NOPE"}}, Channel: slackfake.ChannelSupport}); err == nil || !strings.Contains(err.Error(), "file_not_found") {
		t.Errorf("completing an unknown file: %v, want file_not_found", err)
	}
	s.FailUploads("file_uploads_disabled")
	_, err = api.UploadFileContext(ctx, slack.UploadFileParameters{Reader: strings.NewReader("x"), FileSize: 1, Filename: "b.txt", Channel: slackfake.ChannelSupport})
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != "file_uploads_disabled" {
		t.Errorf("refused upload: %v, want file_uploads_disabled", err)
	}
}

// TestServer_Disconnect: slack-go's socketmode client, told to disconnect
// (refresh_requested), connects again: Opens counts both.
func TestServer_Disconnect(t *testing.T) {
	s := slackfake.New(t)
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(s.URL()), slack.OptionAppLevelToken(slackfake.AppToken))
	smc := socketmode.New(api)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = smc.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-smc.Events:
			case <-ctx.Done():
				return
			}
		}
	}()
	eventually(t, func() error {
		if !s.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
	s.Disconnect(t, slackfake.RefreshRequested)
	eventually(t, func() error {
		if n := s.Opens(); n != 2 || !s.Connected() {
			return fmt.Errorf("%d connections opened, connected %v; want a second one", n, s.Connected())
		}
		return nil
	})
}
