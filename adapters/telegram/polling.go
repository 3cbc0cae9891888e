package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// offsetRecord is the stored getUpdates offset: the id of the first update
// not yet stored on the bus.
type offsetRecord struct {
	Offset int `json:"offset"`
}

// offsetKey names the offset record; per bot, so a new token starts afresh.
func (a *Adapter) offsetKey() string { return "offset_" + a.botID }

// The polling lease: Telegram allows one getUpdates caller per bot, so of
// all replicas only the one holding the store lease "telegram-poll-<bot id>"
// polls, and the others wait to take it over.
const (
	// pollLeaseTTL is how long the lease outlives its holder's last renewal
	// (renewed every third of it): a crashed poller is replaced within about
	// pollLeaseTTL + pollLeaseRetry.
	pollLeaseTTL = 10 * time.Second
	// pollLeaseRetry is how often a waiting replica tries to take the lease.
	pollLeaseRetry = 2 * time.Second
)

// pollLease returns the polling lease of the bot for this process.
func pollLease(st *store.Store, botID string) *store.Lease {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return st.Lease("telegram-poll-"+botID, fmt.Sprintf("%s/%d", host, os.Getpid()), pollLeaseTTL)
}

// poll receives updates with getUpdates until ctx is done, while this replica
// holds the polling lease; without it, it tries to take it every
// pollLeaseRetry. A lost lease stops polling at once (the getUpdates in flight
// is cancelled) and the replica waits again: nothing is lost, since the offset
// only moves past an update once it is on the bus. A store error ends Run.
func (a *Adapter) poll(ctx context.Context) error {
	for {
		held, err := a.lease.Acquire(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			err = fmt.Errorf("telegram: polling lease: %w", err)
			a.setState(err)
			return err
		case !held:
			// Standing by is healthy: another replica polls.
			a.setState(nil)
			if a.log.Enabled(ctx, slog.LevelDebug) {
				holder, _, _ := a.lease.Holder(ctx)
				a.log.Debug("telegram long polling: another replica polls; waiting for the lease", "holder", holder)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pollLeaseRetry):
			}
			continue
		}
		a.log.Info("telegram long polling: this replica polls")
		err = a.lease.Hold(ctx, a.pollHeld)
		if errors.Is(err, store.ErrLeaseLost) {
			a.log.Warn("telegram long polling: lease lost; this replica stops polling", "err", err)
			continue
		}
		return err
	}
}

// pollHeld receives updates with getUpdates until ctx is done. Each update is
// stored on the bus before the offset moves past it, and the offset is
// stored before the next getUpdates confirms it to Telegram, so a restart or
// a new poller neither skips an update nor fetches a stored one again (a
// crash between the two stores one again, which the bus deduplicates).
func (a *Adapter) pollHeld(ctx context.Context) error {
	// getUpdates fails while a webhook is set.
	if err := a.deleteWebhook(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		a.setState(err)
		return err
	}
	offset, err := a.loadOffset(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		a.setState(err)
		return err
	}
	a.log.Info("telegram long polling", "offset", offset)
	for {
		raws, err := a.getUpdates(ctx, offset)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.setState(err)
			return err
		}
		a.setState(nil)
		for _, raw := range raws {
			next, err := a.pollOne(ctx, raw)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				a.setState(err)
				return err
			}
			if next <= offset {
				continue
			}
			if err := a.saveOffset(ctx, next); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.setState(err)
				return err
			}
			offset = next
		}
	}
}

// pollOne stores one update of getUpdates' result and returns the offset
// after it. An update that cannot be read or stored for its own fault is
// logged and skipped: retrying cannot help it and would stall every later one.
func (a *Adapter) pollOne(ctx context.Context, raw json.RawMessage) (next int, err error) {
	var id struct {
		UpdateID int `json:"update_id"`
	}
	if err := json.Unmarshal(raw, &id); err != nil || id.UpdateID <= 0 {
		a.log.Warn("getUpdates returned an update without update_id; skipped")
		return 0, nil
	}
	u, err := parseUpdate(raw)
	if err == nil {
		err = a.handle(ctx, u)
	}
	if errors.Is(err, errMalformed) || errors.Is(err, core.ErrInvalid) {
		a.log.Warn("update skipped", "update_id", id.UpdateID, "err", err)
		err = nil
	}
	if err != nil {
		return 0, fmt.Errorf("telegram: update %d: %w", id.UpdateID, err)
	}
	return id.UpdateID + 1, nil
}

func (a *Adapter) loadOffset(ctx context.Context) (int, error) {
	var rec offsetRecord
	if _, err := a.records.Get(ctx, a.offsetKey(), &rec); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("telegram: load offset: %w", err)
	}
	return rec.Offset, nil
}

// saveOffset stores offset unless a higher one is stored already.
func (a *Adapter) saveOffset(ctx context.Context, offset int) error {
	var rec offsetRecord
	_, err := a.records.Update(ctx, a.offsetKey(), &rec, 0, func(bool) error {
		if rec.Offset >= offset {
			return store.ErrSkip
		}
		rec.Offset = offset
		return nil
	})
	if err != nil {
		return fmt.Errorf("telegram: save offset: %w", err)
	}
	return nil
}

// getUpdates long-polls for updates from offset on. The result is decoded
// update by update, so one this library cannot read does not block the rest.
func (a *Adapter) getUpdates(ctx context.Context, offset int) ([]json.RawMessage, error) {
	timeout := int(a.cfg.PollTimeout / time.Second)
	ctx, cancel := context.WithTimeout(ctx, a.cfg.PollTimeout+callTimeout)
	defer cancel()
	p := tgbotapi.Params{}
	p.AddNonZero("offset", offset)
	p.AddNonZero("timeout", timeout)
	if err := p.AddInterface("allowed_updates", allowedUpdates); err != nil {
		return nil, err
	}
	resp, err := a.client(ctx).MakeRequest("getUpdates", p)
	if err != nil {
		return nil, a.errorf("getUpdates", err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(resp.Result, &raws); err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: result: %w", err)
	}
	return raws, nil
}

func (a *Adapter) deleteWebhook(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := a.client(ctx).Request(tgbotapi.DeleteWebhookConfig{}); err != nil {
		return a.errorf("deleteWebhook", err)
	}
	return nil
}
