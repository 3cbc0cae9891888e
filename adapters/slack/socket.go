package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// Socket Mode (docs.slack.dev/apis/events-api/using-socket-mode):
// apps.connections.open, called with the app-level token, gives a WebSocket
// URL; Slack says hello there, sends envelopes (events_api, interactive,
// slash_commands) that are acknowledged by envelope_id, pings, and asks for a
// new connection with a disconnect message whose reason is warning or
// refresh_requested, or link_disabled when Socket Mode was turned off for the
// app, after which reconnecting is futile.
//
// The adapter speaks it itself rather than through slack-go's socketmode
// client, which reconnects on every disconnect without telling why: it would
// keep reconnecting after link_disabled instead of saying what is wrong.

// Timing of the Socket Mode connection.
const (
	// socketSilence is the longest the connection may be silent (no message,
	// no ping) before it counts as dead; Slack pings every few seconds.
	socketSilence = 30 * time.Second
	// socketWriteTimeout bounds writing one acknowledgement or pong.
	socketWriteTimeout = 10 * time.Second
	// socketMinLife is how long a connection must have lived for a
	// disconnect request to be answered by reconnecting at once; a shorter
	// one ends Run, so that the runtime's backoff applies.
	socketMinLife = 2 * time.Second
	// maxFrameBytes bounds one Socket Mode message.
	maxFrameBytes = 4 << 20
)

// Socket Mode message types and disconnect reasons.
const (
	frameHello      = "hello"
	frameDisconnect = "disconnect"
	frameEventsAPI  = "events_api"
	frameInteract   = "interactive"
	frameCommand    = "slash_commands"
	// reasonLinkDisabled: Socket Mode was turned off for the app.
	reasonLinkDisabled = "link_disabled"
)

// ErrLinkDisabled is the adapter's readiness after Slack closed its Socket
// Mode connection with reason link_disabled: Socket Mode is off for the app.
// The adapter does not reconnect; /readyz shows it until an operator turns
// Socket Mode on again (or sets mode: http) and restarts omnigate.
var ErrLinkDisabled = errors.New("socket mode: Slack disabled the app's Socket Mode connection (disconnect reason link_disabled), not reconnecting: turn Socket Mode on in the app's settings (Settings > Socket Mode) or use mode: http, then restart omnigate")

// socketFrame is one message Slack sends over Socket Mode.
type socketFrame struct {
	Type         string          `json:"type"`
	Reason       string          `json:"reason"`
	EnvelopeID   string          `json:"envelope_id"`
	Payload      json.RawMessage `json:"payload"`
	RetryAttempt int             `json:"retry_attempt"`
}

// parseSocketFrame reads one Socket Mode message. A message that is not a
// JSON object with a type matches errMalformed.
func parseSocketFrame(raw []byte) (socketFrame, error) {
	var f socketFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		return socketFrame{}, fmt.Errorf("%w: socket mode message: %v", errMalformed, err)
	}
	if f.Type == "" {
		return socketFrame{}, fmt.Errorf("%w: socket mode message without type", errMalformed)
	}
	switch f.Type {
	case frameEventsAPI, frameInteract, frameCommand:
		if f.EnvelopeID == "" {
			return socketFrame{}, fmt.Errorf("%w: %s without envelope_id", errMalformed, f.Type)
		}
	}
	return f, nil
}

// socketAck is the acknowledgement of an envelope, with a slash command's
// answer as payload.
type socketAck struct {
	EnvelopeID string `json:"envelope_id"`
	Payload    any    `json:"payload,omitempty"`
}

// runSocket receives over Socket Mode until ctx is done. When Slack asks for
// a new connection (refresh_requested, warning) it opens one at once; with
// link_disabled it stops, sets its readiness to ErrLinkDisabled and waits for
// ctx. Anything else that ends the connection (the app token refused, the
// network, a silent socket) is returned, and the runtime starts Run again
// with backoff.
func (a *Adapter) runSocket(ctx context.Context) error {
	for {
		start := time.Now()
		reason, err := a.socketOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			err = fmt.Errorf("socket mode: %w", err)
			a.setState(err)
			return err
		case reason == reasonLinkDisabled:
			a.setState(ErrLinkDisabled)
			a.log.Error("slack socket mode disabled for the app; not reconnecting", "reason", reason, "err", ErrLinkDisabled)
			<-ctx.Done()
			return nil
		case time.Since(start) < socketMinLife:
			err := fmt.Errorf("socket mode: Slack closed the connection at once (disconnect reason %q)", reason)
			a.setState(err)
			return err
		}
		a.log.Info("slack asked for a new socket mode connection", "reason", reason)
	}
}

// socketOnce opens one Socket Mode connection and handles what comes on it
// until Slack asks to disconnect (it returns the reason), the connection
// fails or ctx is done. Envelopes are handled one at a time, in order, while
// another goroutine reads and answers pings, so a slow handler does not make
// the connection look dead.
func (a *Adapter) socketOnce(ctx context.Context) (reason string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	octx, ocancel := context.WithTimeout(ctx, callTimeout)
	_, wsURL, err := a.api.StartSocketModeContext(octx)
	ocancel()
	if err != nil {
		return "", apiError("apps.connections.open", err)
	}
	dialer := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: callTimeout}
	conn, resp, err := dialer.DialContext(ctx, wsURL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	conn.SetReadLimit(maxFrameBytes)
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(socketSilence)) }
	alive()
	conn.SetPingHandler(func(data string) error {
		alive()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(socketWriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil
		}
		return err
	})

	frames := make(chan socketFrame)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer func() {
		// The reader ends once the connection is closed (a read) or ctx is
		// done (a handoff): both, then wait for it.
		cancel()
		_ = conn.Close()
		wg.Wait()
	}()
	wg.Go(func() {
		defer close(frames)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			alive()
			f, err := parseSocketFrame(data)
			if err != nil {
				a.log.Warn("malformed socket mode message dropped", "err", err)
				continue
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	})

	for {
		select {
		case <-ctx.Done():
			return "", nil
		case f, ok := <-frames:
			if !ok {
				if ctx.Err() != nil {
					return "", nil
				}
				return "", fmt.Errorf("connection lost: %w", <-readErr)
			}
			switch f.Type {
			case frameHello:
				a.setState(nil)
				a.log.Info("slack socket mode connected")
			case frameDisconnect:
				return f.Reason, nil
			default:
				if err := a.socketEnvelope(ctx, conn, f); err != nil {
					return "", err
				}
			}
		}
	}
}

// socketEnvelope handles one Socket Mode envelope. Events API requests are
// acknowledged once handled (unacknowledged, Slack sends them again);
// interactions and commands once what must be stored is, with the follow-up
// run after the acknowledgement. An error is the connection's.
func (a *Adapter) socketEnvelope(ctx context.Context, conn *websocket.Conn, f socketFrame) error {
	var ack any
	var after followUp
	switch f.Type {
	case frameEventsAPI:
		if _, err := a.handleEvents(ctx, f.Payload, f.RetryAttempt > 0); err != nil && !errors.Is(err, errMalformed) {
			a.log.Warn("event not handled, Slack will send it again", "err", err)
			return nil
		} else if err != nil {
			a.log.Warn("malformed event dropped", "err", err)
		}
	case frameInteract:
		cb, err := parseInteraction(f.Payload)
		if err == nil {
			after, err = a.handleInteraction(ctx, cb)
		}
		if err != nil {
			a.log.Warn("interaction not handled", "err", err)
		}
	case frameCommand:
		var cmd slack.SlashCommand
		if err := json.Unmarshal(f.Payload, &cmd); err != nil {
			a.log.Warn("malformed slash command dropped", "err", err)
			break
		}
		res, err := a.handleCommand(ctx, cmd)
		if err != nil {
			a.log.Warn("command not handled", "err", err)
			res.say = ":warning: That did not work, please try again in a moment."
		}
		after = res.after
		ack = commandResponse{ResponseType: "ephemeral", Text: res.say}
	default:
		a.log.Debug("socket mode message ignored", "type", f.Type)
		return nil
	}
	_ = conn.SetWriteDeadline(time.Now().Add(socketWriteTimeout))
	if err := conn.WriteJSON(socketAck{EnvelopeID: f.EnvelopeID, Payload: ack}); err != nil {
		return fmt.Errorf("acknowledge %s: %w", f.Type, err)
	}
	if after != nil {
		a.later(ctx, "slack not updated after an action", after)
	}
	return nil
}
