package corrections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/insight/corrections"
)

// TestService_KeepsCorrections: intent.correct commands on a real embedded
// JetStream become stored rows, a redelivered command (the same Nats-Msg-Id)
// is kept once, and the export is CSV text,intent with the latest intent of
// each text.
func TestService_KeepsCorrections(t *testing.T) {
	srv := bustest.RunServer(t)
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	})
	kv, err := store.NewJetStream(ctx, b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(kv, store.Options{})
	s, err := corrections.New(corrections.Deps{Bus: b, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	correct := func(dedup, text, intent, previous string) {
		t.Helper()
		ev := core.NewMessage(core.KindEvent, core.Inbound, "slack")
		ev.Type, ev.Text, ev.From, ev.ConversationID = event.IntentCorrect, text, "slack:U1", "conv1"
		ev.External.Message = dedup
		ev.Meta = map[string]string{event.MetaIntent: intent, event.MetaPreviousIntent: previous}
		if _, err := b.PublishMessage(ctx, bus.SubjectEvt(event.IntentCorrect), ev, bus.WithMsgID("slack:"+dedup)); err != nil {
			t.Fatal(err)
		}
	}
	correct("a", "my card never came", "card_arrival", "unknown")
	correct("a", "my card never came", "card_arrival", "unknown") // Slack delivered the command twice
	correct("b", "where is my refund, \"order 7\"", "refund_not_showing_up", "request_refund")
	correct("c", "my card never came", "lost_or_stolen_card", "card_arrival")
	correct("d", "", "card_arrival", "unknown") // nothing to learn from

	var got []corrections.Correction
	bustest.Eventually(t, 10*time.Second, func() error {
		got, err = corrections.List(ctx, st)
		if err != nil {
			return err
		}
		if len(got) != 3 {
			return fmt.Errorf("%d corrections stored, want 3", len(got))
		}
		return nil
	})
	if c := got[0]; c.Agent != "slack:U1" || c.Conversation != "conv1" || c.Previous == "" || c.At.IsZero() {
		t.Errorf("correction %+v", c)
	}
	var csv bytes.Buffer
	if err := corrections.WriteCSV(&csv, got); err != nil {
		t.Fatal(err)
	}
	want := "text,intent\n\"where is my refund, \"\"order 7\"\"\",refund_not_showing_up\nmy card never came,lost_or_stolen_card\n"
	if csv.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", csv.String(), want)
	}
	if _, err := corrections.New(corrections.Deps{}); err == nil || errors.Is(err, nil) {
		t.Error("New without deps: no error")
	}
}
