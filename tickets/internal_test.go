package tickets

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
)

func TestParseScore(t *testing.T) {
	for in, want := range map[string]int{
		"5": 5, " 1 ": 1, "４": 4, "3/5": 3, "4 stars": 4, "5分": 5, "2星": 2, "5!": 5, "满意": 4, "非常满意！": 5,
		"不满意": 2, "一般": 3, "Great": 5, "good.": 4, "neutral": 3, "terrible": 1, "⭐5": 5,
	} {
		if got, ok := parseScore(in); !ok || got != want {
			t.Errorf("parseScore(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "0", "6", "10", "55", "it was good but slow", "5 minutes later it broke", "thanks", "ok", "谢谢"} {
		if got, ok := parseScore(in); ok {
			t.Errorf("parseScore(%q) = %d, want none", in, got)
		}
	}
}

func TestPickLanguage(t *testing.T) {
	tpl := map[string]Templates{"en": {}, "zh": {}, "pt-br": {}}
	for in, want := range map[string]string{
		"zh-CN": "zh", "zh_Hant_TW": "zh", "ZH": "zh", "pt-BR": "pt-br", "pt": "en", "fr": "en", "": "en",
	} {
		if got := pickLanguage(tpl, in, "en"); got != want {
			t.Errorf("pickLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSweep_PublishesWhatACrashLeft stores a change the way mutate does but
// stops before publishing, as a crashed replica would; the sweep of another
// service publishes it, once the marker is old enough.
func TestSweep_PublishesWhatACrashLeft(t *testing.T) {
	srv := bustest.RunServer(t)
	b, err := bus.Open(context.Background(), bus.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	kv, err := store.NewJetStream(context.Background(), b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(kv, store.Options{})
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	s, err := New(Config{}, Deps{Bus: b, Store: st, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tk, err := s.Create(ctx, CreateRequest{Subject: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Conn().SubscribeSync(bus.SubjectEvt(event.TicketUpdated))
	if err != nil {
		t.Fatal(err)
	}
	// The crashed change: marker, then the ticket, then nothing.
	if _, err := s.repo.mark(ctx, tk.Number, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.repo.update(ctx, tk.Number, func(t *Ticket) error {
		t.Status = StatusOpen
		t.record(Event{At: now, Actor: "slack:U1", Action: ActionStatus, Changes: []Change{{Field: "status", From: "new", To: "open"}}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.sweep(ctx) // too fresh: an in-flight change is not the sweep's
	if _, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatal("a fresh marker was swept")
	}
	now = now.Add(time.Minute)
	s.sweep(ctx)
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("not published by the sweep: %v", err)
	}
	m, err := core.Decode(msg.Data)
	if err != nil || m.Meta[event.MetaTicket] != tk.Key() || m.Meta[event.MetaSeq] != "2" || m.Meta[event.MetaStatus] != "open" {
		t.Fatalf("published %v, %v", m, err)
	}
	if ms, _ := s.repo.markers(ctx); len(ms) != 0 {
		t.Fatalf("markers left: %v", ms)
	}
	if !strings.Contains(m.Text, "open (was new)") {
		t.Fatalf("text %q", m.Text)
	}
}
