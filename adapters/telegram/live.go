package telegram

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/store"
)

// A live location is one message that Telegram edits every few seconds while
// the customer moves. Each update is published as an edit of that message
// (meta edit_of), so a desk shows one location that moves; to keep a
// conversation from filling with positions, at most one update per liveEvery
// is published, and always the last one (sharing stopped).
const (
	// liveEvery is the least time, by Telegram's edit_date, between two
	// published positions of one live location.
	liveEvery = time.Minute
	// liveTTL is how long the last published position is remembered: longer
	// than the longest live period Telegram offers that ends (24 hours).
	liveTTL = 48 * time.Hour
)

// liveRecord is the date (Unix seconds, edit_date for updates) of the last
// published position of a live location.
type liveRecord struct {
	At int `json:"at"`
}

// throttleLive decides whether m, a live location of update u or one of its
// updates, is published: the first position and the last (sharing stopped)
// always, others when liveEvery has passed since the last one published. An
// update older than the one published is dropped. A repeat of the update
// published last is published again (the bus deduplicates it), so that an
// update refused for a store or bus error is not lost on Telegram's retry.
// Without a store every update is published.
func (a *Adapter) throttleLive(ctx context.Context, u *update, m *core.Message) (*core.Message, string, error) {
	if a.records == nil {
		return m, "", nil
	}
	msg, edited := u.Message, false
	if msg == nil {
		msg, edited = u.EditedMessage, true
	}
	at, final := msg.Date, m.Meta[metaLiveLocation] == "stopped"
	if edited {
		at = msg.EditDate
	}
	key := "live_" + strconv.FormatInt(msg.Chat.ID, 10) + "_" + strconv.Itoa(msg.MessageID)
	var rec liveRecord
	var publish bool
	_, err := a.records.Update(ctx, key, &rec, liveTTL, func(exists bool) error {
		publish = true
		switch {
		case !exists, final && at >= rec.At:
		case at == rec.At:
			return store.ErrSkip
		case at < rec.At || time.Duration(at-rec.At)*time.Second < liveEvery:
			publish = false
			return store.ErrSkip
		}
		rec.At = at
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("telegram: live location: %w", err)
	}
	if !publish {
		return nil, "live location update within " + liveEvery.String() + " of the last one published", nil
	}
	return m, "", nil
}
