package telegram_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core/bus"
)

// liveUpdate is live location message 9 as Telegram sends it: the first
// position as a message, later ones as edited_message with edit_date;
// livePeriod 0 is the update that ends the sharing.
func liveUpdate(updateID, editDate int, lat float64, livePeriod int) map[string]any {
	loc := map[string]any{"latitude": lat, "longitude": 13.4, "horizontal_accuracy": 20}
	if livePeriod > 0 {
		loc["live_period"], loc["heading"] = livePeriod, 90
	}
	msg := message(9, map[string]any{"location": loc})
	if editDate == 0 {
		return map[string]any{"update_id": updateID, "message": msg}
	}
	msg["edit_date"] = editDate
	return map[string]any{"update_id": updateID, "edited_message": msg}
}

// TestWebhook_LiveLocation: a live location is one location that moves: each
// update is an edit of the first message (meta edit_of), at most one a
// minute, and always the last; accuracy and heading are kept; a retry of a
// published update is stored once, and one older than the last published
// is dropped.
func TestWebhook_LiveLocation(t *testing.T) {
	env, _, _ := webhookEnv(t)
	const start = 1700000009 // date of message 9
	updates := []map[string]any{
		liveUpdate(500, 0, 52.50, 3600),
		liveUpdate(501, start+20, 52.51, 3600), // within a minute of the first: dropped
		liveUpdate(502, start+65, 52.52, 3600),
		liveUpdate(502, start+65, 52.52, 3600),  // Telegram's retry
		liveUpdate(503, start+90, 52.53, 3600),  // within a minute: dropped
		liveUpdate(504, start+30, 52.515, 3600), // late and old: dropped
		liveUpdate(505, start+100, 52.54, 0),    // sharing stopped: always
	}
	for _, u := range updates {
		if resp := env.Serve(t, telegramtest.WebhookRequest(t, webhookPath, secret, u)); resp.StatusCode != http.StatusOK {
			t.Fatalf("update %v: %d", u["update_id"], resp.StatusCode)
		}
	}
	got := env.Stored(t, bus.StreamIn)
	var ids []string
	for _, s := range got {
		ids = append(ids, s.MsgID)
	}
	want := []string{"telegram:4242:9", fmt.Sprintf("telegram:4242:9:edit:%d", start+65), fmt.Sprintf("telegram:4242:9:edit:%d", start+100)}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("stored %q, want %q", ids, want)
	}
	first, moved, stopped := got[0].Message, got[1].Message, got[2].Message
	wantMeta(t, first, map[string]string{"lat": "52.5", "horizontal_accuracy": "20", "heading": "90", "live_location": "active",
		"live_period": "3600", "live_until": "2023-11-14T23:13:29Z", "edit_of": ""})
	wantMeta(t, moved, map[string]string{"lat": "52.52", "edited": "true", "edit_of": "4242:9", "live_location": "active", "live_until": "2023-11-14T23:13:29Z"})
	wantMeta(t, stopped, map[string]string{"lat": "52.54", "edited": "true", "edit_of": "4242:9", "live_location": "stopped", "heading": ""})
}
