package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/slack-go/slack"

	"github.com/omnigate/omnigate/core/edge"
)

// maxBodyBytes bounds a request from Slack; its payloads are a few KB.
const maxBodyBytes = 1 << 20

// verified reads r's body and checks Slack's v0 signature over it with the
// signing secret, rejecting timestamps more than five minutes off. On failure
// it has answered (401; 413 for a huge body, 408 for a slow one) and returns
// ok false.
func (a *Adapter) verified(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := edge.ReadBody(w, r, maxBodyBytes)
	if err != nil {
		http.Error(w, "request not read: "+err.Error(), edge.Status(err))
		return nil, false
	}
	sv, err := slack.NewSecretsVerifier(r.Header, a.cfg.SigningSecret.Value())
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		edge.Reject(r, a.log, Name, edge.Signature, "request with a bad or stale signature rejected", "path", r.URL.Path, "err", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// serveEvents serves POST /channels/slack/events: url_verification is
// answered with its challenge, a message event is published before the 200.
// Slack's retries (X-Slack-Retry-Num) of an event already handled get a 200
// at once.
func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	challenge, err := a.handleEvents(r.Context(), body, retryNum(r.Header) > 0)
	switch {
	case errors.Is(err, errMalformed):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case err != nil:
		a.log.Warn("event not handled, Slack will retry", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusInternalServerError)
	case challenge != "":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": challenge})
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// serveInteractivity serves POST /channels/slack/interactivity (the form
// value "payload"): a click on a card is handled before the 200, Slack is
// updated after it.
func (a *Adapter) serveInteractivity(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "no payload", http.StatusBadRequest)
		return
	}
	cb, err := parseInteraction([]byte(form.Get("payload")))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	after, err := a.handleInteraction(r.Context(), cb)
	switch {
	case errors.Is(err, errMalformed):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		a.log.Warn("interaction not handled", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	if after != nil {
		a.later(r.Context(), "slack not updated after a click", after)
	}
}

// commandResponse is the answer to a slash command, shown to the agent only.
type commandResponse struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

// serveCommands serves POST /channels/slack/commands, /omni.
func (a *Adapter) serveCommands(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	cmd, err := parseCommand(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res, err := a.handleCommand(r.Context(), cmd)
	if err != nil {
		a.log.Warn("command not handled", "err", err)
		res.say = ":warning: That did not work, please try again in a moment."
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(commandResponse{ResponseType: "ephemeral", Text: res.say})
	if res.after != nil {
		a.later(r.Context(), "slack not updated after a command", res.after)
	}
}

// parseCommand reads a slash command's form body.
func parseCommand(body []byte) (slack.SlashCommand, error) {
	r, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return slack.SlashCommand{}, err
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cmd, err := slack.SlashCommandParse(r)
	if err != nil {
		return cmd, errors.Join(errMalformed, err)
	}
	if cmd.UserID == "" || cmd.ChannelID == "" {
		return cmd, errors.Join(errMalformed, errors.New("command without user_id or channel_id"))
	}
	return cmd, nil
}

// retryNum is Slack's X-Slack-Retry-Num, 0 on a first delivery.
func retryNum(h http.Header) int {
	n, _ := strconv.Atoi(h.Get("X-Slack-Retry-Num"))
	return n
}
