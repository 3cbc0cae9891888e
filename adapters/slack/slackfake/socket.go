package slackfake

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode: apps.connections.open hands out ws://.../socket, where the
// fake says hello, sends what Push gives it, pings, records what the adapter
// sends back (its acknowledgements), and asks it to disconnect (Disconnect)
// with the reasons Slack gives.

// Envelope types of Socket Mode requests, for Push.
const (
	// EventsAPI carries an Events API event_callback (EventPayload).
	EventsAPI = "events_api"
	// Interactive carries an interaction payload such as block_actions (Click).
	Interactive = "interactive"
	// SlashCommands carries a slash command's fields (Command) and takes a
	// response payload in its acknowledgement.
	SlashCommands = "slash_commands"
)

// errNoSocket is Push's error before the adapter connected.
var errNoSocket = errors.New("slackfake: no socket connected")

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+AppToken {
		reply(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	s.sockMu.Lock()
	s.opens++
	s.sockMu.Unlock()
	reply(w, map[string]any{"ok": true, "url": strings.Replace(s.URL(), "http://", "ws://", 1) + "socket"})
}

// Opens returns how many times apps.connections.open handed out a Socket
// Mode URL: the adapter's connections, reconnections included.
func (s *Server) Opens() int {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	return s.opens
}

// Disconnect reasons of Socket Mode's disconnect message, for Disconnect.
const (
	// RefreshRequested: Slack is about to refresh the connection; the client
	// opens a new one.
	RefreshRequested = "refresh_requested"
	// Warning: the connection closes in a few seconds; the client opens a
	// new one.
	Warning = "warning"
	// LinkDisabled: Socket Mode was turned off for the app; reconnecting is
	// futile.
	LinkDisabled = "link_disabled"
)

// Disconnect sends Socket Mode's disconnect message with reason
// (RefreshRequested, Warning, LinkDisabled) on the newest connection, as
// Slack does, then closes that connection; the test fails when none is open.
func (s *Server) Disconnect(t testing.TB, reason string) {
	t.Helper()
	msg := map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-fake"}}
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.sock == nil {
		t.Fatalf("slackfake: disconnect %s: %v", reason, errNoSocket)
	}
	if err := s.sock.WriteJSON(msg); err != nil {
		t.Fatalf("slackfake: disconnect %s: %v", reason, err)
	}
	_ = s.sock.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason), time.Now().Add(time.Second))
	_ = s.sock.Close()
	s.sock = nil
}

// socket serves one Socket Mode connection; the newest one is where Push
// writes.
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.sockMu.Lock()
	s.sock = conn
	s.sockMu.Unlock()
	defer func() {
		s.sockMu.Lock()
		if s.sock == conn {
			s.sock = nil
		}
		s.sockMu.Unlock()
		_ = conn.Close()
	}()
	if err := s.write(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": AppID}}); err != nil {
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s.sockMu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				s.sockMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		s.sockMu.Lock()
		s.acks = append(s.acks, data)
		s.sockMu.Unlock()
	}
}

// write sends v on the newest socket.
func (s *Server) write(v any) error {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.sock == nil {
		return errNoSocket
	}
	return s.sock.WriteJSON(v)
}

// Connected reports whether the adapter has a Socket Mode connection open.
func (s *Server) Connected() bool {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	return s.sock != nil
}

// Push sends a Socket Mode request of envelope type typ (EventsAPI,
// Interactive, SlashCommands) with envelopeID and payload on the newest
// connection; the test fails when none is open. A payload of type []byte or
// json.RawMessage is sent as the JSON it holds; anything else is marshalled.
func (s *Server) Push(t testing.TB, typ, envelopeID string, payload any) {
	t.Helper()
	s.push(t, typ, envelopeID, payload, 0)
}

// PushEvent sends an events_api request carrying body, an event_callback
// (EventPayload), with retry_attempt retryAttempt (0 for Slack's first
// delivery).
func (s *Server) PushEvent(t testing.TB, envelopeID string, body []byte, retryAttempt int) {
	t.Helper()
	s.push(t, EventsAPI, envelopeID, body, retryAttempt)
}

// PushInteraction sends an interactive request carrying payload, e.g. a
// Click.
func (s *Server) PushInteraction(t testing.TB, envelopeID string, payload []byte) {
	t.Helper()
	s.push(t, Interactive, envelopeID, payload, 0)
}

// PushCommand sends a slash_commands request carrying form (Command) as
// Socket Mode does: a JSON object of its first values. The command's answer
// comes back in the acknowledgement (Ack).
func (s *Server) PushCommand(t testing.TB, envelopeID string, form url.Values) {
	t.Helper()
	fields := make(map[string]string, len(form))
	for k := range form {
		fields[k] = form.Get(k)
	}
	s.push(t, SlashCommands, envelopeID, fields, 0)
}

func (s *Server) push(t testing.TB, typ, envelopeID string, payload any, retryAttempt int) {
	t.Helper()
	var raw json.RawMessage
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			t.Fatalf("slackfake: push %s: %v", typ, err)
		}
	}
	req := map[string]any{"type": typ, "envelope_id": envelopeID, "payload": raw,
		"accepts_response_payload": typ == SlashCommands, "retry_attempt": retryAttempt, "retry_reason": ""}
	if retryAttempt > 0 {
		req["retry_reason"] = "timeout"
	}
	if err := s.write(req); err != nil {
		t.Fatalf("slackfake: push %s %s: %v", typ, envelopeID, err)
	}
}

// Ack returns the payload of the acknowledgement of envelopeID (null or
// absent when it carried none) and whether it came.
func (s *Server) Ack(envelopeID string) (json.RawMessage, bool) {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	for _, a := range s.acks {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(a, &ack) == nil && ack.EnvelopeID == envelopeID {
			return ack.Payload, true
		}
	}
	return nil, false
}

func (s *Server) closeSocket() {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if s.sock != nil {
		_ = s.sock.Close()
	}
}
