package slackfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What Slack sends the adapter: bodies for http mode's routes
// (/channels/slack/events, /interactivity, /commands) and for Socket Mode's
// envelopes, in the shapes of Slack's documentation.

// Content types of what Slack POSTs.
const (
	// JSON is the Content-Type of Events API requests (path "events").
	JSON = "application/json"
	// Form is the Content-Type of interactions and slash commands (paths
	// "interactivity" and "commands").
	Form = "application/x-www-form-urlencoded"
)

// Sign sets the headers Slack signs a request with body with:
// X-Slack-Request-Timestamp at, and X-Slack-Signature
// v0=hex(HMAC-SHA256(secret, "v0:<timestamp>:<body>")).
func Sign(r *http.Request, body []byte, secret string, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
}

// Signed is an incoming server request (for a handler's ServeHTTP) POSTing
// body to path under /channels/slack/ ("events", "interactivity" or
// "commands") with contentType (JSON or Form), signed with secret at at as
// Sign does.
func Signed(path, contentType string, body []byte, secret string, at time.Time) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/channels/slack/"+path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	Sign(r, body, secret, at)
	return r
}

// Post POSTs body with contentType to baseURL/channels/slack/path over HTTP,
// as Slack does to a running omnigate at baseURL (e.g.
// "http://127.0.0.1:8080"), signed with SigningSecret now, and returns the
// status and body of the answer. The test fails if no answer comes.
func Post(t testing.TB, baseURL, path, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/channels/slack/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("slackfake: post %s: %v", path, err)
	}
	req.Header.Set("Content-Type", contentType)
	Sign(req, body, SigningSecret, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("slackfake: post %s: %v", path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("slackfake: post %s: %v", path, err)
	}
	return resp.StatusCode, string(answer)
}

// EventPayload is an Events API event_callback with eventID carrying event
// (e.g. AgentReply): the body of a POST to "events" (JSON), or the payload of
// PushEvent.
func EventPayload(eventID string, event map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"token": "legacy", "team_id": TeamID, "api_app_id": AppID, "type": "event_callback",
		"event_id": eventID, "event_time": time.Now().Unix(), "event": event,
	})
	return b
}

// AgentReply is the message event of user writing text as message ts in the
// thread threadTS (the root's ts, see Server.Roots) of channel.
func AgentReply(user, channel, threadTS, ts, text string) map[string]any {
	return map[string]any{
		"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": threadTS,
		"channel": channel, "channel_type": "channel", "event_ts": ts, "client_msg_id": "c-" + ts,
	}
}

// AgentEdit is the message_changed event of user editing their message ts
// in the thread threadTS of channel from oldText to newText, at editTS (the
// event's own ts and the message's edited.ts), as Slack sends it: the new
// message under "message", the old under "previous_message".
func AgentEdit(user, channel, threadTS, ts, editTS, oldText, newText string) map[string]any {
	return map[string]any{
		"type": "message", "subtype": "message_changed", "hidden": true, "channel": channel, "channel_type": "channel",
		"ts": editTS, "event_ts": editTS,
		"message": map[string]any{
			"type": "message", "user": user, "text": newText, "ts": ts, "thread_ts": threadTS, "client_msg_id": "c-" + ts,
			"edited": map[string]any{"user": user, "ts": editTS},
		},
		"previous_message": map[string]any{
			"type": "message", "user": user, "text": oldText, "ts": ts, "thread_ts": threadTS, "client_msg_id": "c-" + ts,
		},
	}
}

// AgentDelete is the message_deleted event of the message ts by user in the
// thread threadTS of channel, which said text, deleted at deleteTS (the
// event's ts), as Slack sends it: deleted_ts, and the message under
// "previous_message".
func AgentDelete(user, channel, threadTS, ts, deleteTS, text string) map[string]any {
	return map[string]any{
		"type": "message", "subtype": "message_deleted", "hidden": true, "channel": channel, "channel_type": "channel",
		"ts": deleteTS, "event_ts": deleteTS, "deleted_ts": ts,
		"previous_message": map[string]any{
			"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": threadTS, "client_msg_id": "c-" + ts,
		},
	}
}

// Click is the block_actions payload of user clicking actionID with value
// on the card at channel/ts; for "omni_transfer", a static_select, value is
// the selected option. Send it with InteractionForm over HTTP or
// PushInteraction over the socket.
func Click(user, channel, ts, actionID, value string) []byte {
	act := map[string]any{"action_id": actionID, "block_id": "omni_actions", "type": "button", "value": value,
		"action_ts": strconv.FormatInt(time.Now().UnixNano(), 10)}
	if actionID == "omni_transfer" {
		act = map[string]any{"action_id": actionID, "block_id": "omni_actions", "type": "static_select",
			"selected_option": map[string]any{"value": value, "text": map[string]any{"type": "plain_text", "text": value}},
			"action_ts":       strconv.FormatInt(time.Now().UnixNano(), 10)}
	}
	b, _ := json.Marshal(map[string]any{
		"type": "block_actions", "trigger_id": "trig-" + strconv.FormatInt(time.Now().UnixNano(), 10),
		"user":       map[string]any{"id": user, "username": "alice", "name": "alice", "team_id": TeamID},
		"api_app_id": AppID, "team": map[string]any{"id": TeamID, "domain": "test"},
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"channel":      map[string]any{"id": channel, "name": "support"},
		"message":      map[string]any{"type": "message", "ts": ts, "bot_id": BotID, "text": "card"},
		"response_url": "https://hooks.slack.com/actions/" + TeamID + "/1/x",
		"actions":      []any{act},
	})
	return b
}

// ViewSubmission is the view_submission payload of user submitting the
// modal of callbackID with privateMetadata, whose plain text input
// blockID/actionID holds value. Send it with InteractionForm over HTTP or
// PushInteraction over the socket.
func ViewSubmission(user, callbackID, privateMetadata, blockID, actionID, value string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "view_submission", "trigger_id": "trig-" + strconv.FormatInt(time.Now().UnixNano(), 10),
		"user":       map[string]any{"id": user, "username": "alice", "name": "alice", "team_id": TeamID},
		"api_app_id": AppID, "team": map[string]any{"id": TeamID, "domain": "test"},
		"view": map[string]any{
			"id": "V" + strconv.FormatInt(time.Now().UnixNano(), 10), "type": "modal", "callback_id": callbackID,
			"private_metadata": privateMetadata,
			"state": map[string]any{"values": map[string]any{
				blockID: map[string]any{actionID: map[string]any{"type": "plain_text_input", "value": value}},
			}},
		},
	})
	return b
}

// InteractionForm is the body of a POST to "interactivity" (Form) carrying
// payload, e.g. a Click: payload=<JSON>.
func InteractionForm(payload []byte) []byte {
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

// Command is the slash command /omni with text that user typed in channel:
// its Encode is the body of a POST to "commands" (Form), and PushCommand
// sends it over the socket.
func Command(user, channel, text string) url.Values {
	return url.Values{
		"token": {"legacy"}, "team_id": {TeamID}, "team_domain": {"test"}, "channel_id": {channel}, "channel_name": {"support"},
		"user_id": {user}, "user_name": {"alice"}, "command": {"/omni"}, "text": {text},
		"response_url": {"https://hooks.slack.com/commands/1"}, "trigger_id": {"trig-" + strconv.FormatInt(time.Now().UnixNano(), 10)},
		"api_app_id": {AppID},
	}
}

// ButtonValue returns the value of the first button actionID in blocks (a
// Call's Blocks), as a click on it would carry it.
func ButtonValue(blocks, actionID string) (string, bool) {
	var bs []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(blocks), &bs); err != nil {
		return "", false
	}
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value, true
			}
		}
	}
	return "", false
}
