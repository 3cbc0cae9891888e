package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// runSocket receives over Socket Mode until ctx is done. The socketmode
// client reconnects by itself when Slack asks it to; when it gives up (the
// app token refused), runSocket returns its error and the runtime starts it
// again with backoff.
func (a *Adapter) runSocket(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	smc := socketmode.New(a.api, socketmode.OptionLog(slogLogger{a.log}))
	done := make(chan error, 1)
	go func() { done <- smc.RunContext(ctx) }()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("socket mode connection ended")
			}
			err = fmt.Errorf("slack: socket mode: %w", err)
			a.setState(err)
			return err
		case evt := <-smc.Events:
			a.socketEvent(ctx, smc, evt)
		}
	}
}

// socketEvent handles one Socket Mode event. Events API requests are
// acknowledged once handled (unacknowledged, Slack sends them again);
// interactions and commands once what must be stored is, with the follow-up
// run after the acknowledgement.
func (a *Adapter) socketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		a.setState(nil)
		a.log.Info("slack socket mode connected")
		return
	case socketmode.EventTypeConnecting:
		a.log.Debug("slack socket mode connecting")
		return
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
		err := fmt.Errorf("socket mode: %s", evt.Type)
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			err = fmt.Errorf("socket mode: %w", ce.ErrorObj)
		}
		a.setState(err)
		a.log.Warn("slack socket mode not connected", "err", err)
		return
	case socketmode.EventTypeDisconnect:
		a.log.Info("slack asked to reconnect")
		return
	}
	req := evt.Request
	if req == nil || req.EnvelopeID == "" {
		return
	}
	var ack any
	var after followUp
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		if _, err := a.handleEvents(ctx, req.Payload, req.RetryAttempt > 0); err != nil && !errors.Is(err, errMalformed) {
			a.log.Warn("event not handled, Slack will send it again", "err", err)
			return
		} else if err != nil {
			a.log.Warn("malformed event dropped", "err", err)
		}
	case socketmode.EventTypeInteractive:
		cb, err := parseInteraction(req.Payload)
		if err == nil {
			after, err = a.handleInteraction(ctx, cb)
		}
		if err != nil {
			a.log.Warn("interaction not handled", "err", err)
		}
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			break
		}
		res, err := a.handleCommand(ctx, cmd)
		if err != nil {
			a.log.Warn("command not handled", "err", err)
			res.say = ":warning: That did not work, please try again in a moment."
		}
		after = res.after
		ack = commandResponse{ResponseType: "ephemeral", Text: res.say}
	}
	if err := smc.AckCtx(ctx, req.EnvelopeID, ack); err != nil {
		a.log.Warn("socket mode ack", "err", err)
	}
	if after != nil {
		a.later(ctx, "slack not updated after an action", after)
	}
}

// slogLogger is the socketmode client's logger, at debug level.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Output(_ int, s string) error {
	l.log.Debug("socketmode: " + s)
	return nil
}
