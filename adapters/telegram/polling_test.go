package telegram_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/telegram"
	"github.com/omnigate/omnigate/adapters/telegram/telegramtest"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/store"
)

// process is one omnigate process on a JetStream server: its bus, store and
// a polling adapter.
type process struct {
	bus   *bus.Bus
	store *store.Store
	a     *telegram.Adapter
	stop  func()
}

// startProcess opens a bus and store on srv and runs a polling adapter on fake.
func startProcess(t *testing.T, srv *bustest.Server, fake *telegramtest.Server) *process {
	t.Helper()
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Options{URL: srv.URL(), Name: "telegram-test"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.NewJetStream(ctx, b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(kv, store.Options{})
	deps := adapters.Deps{
		Publisher: adapters.NewPublisher(b, "telegram"),
		Routes:    adapters.NewRoutes(http.NewServeMux(), "telegram"),
		Store:     st,
	}
	a := build(t, deps, pollingConfig(fake))
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	p := &process{bus: b, store: st, a: a}
	var stopped bool
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
		_ = st.Close()
		_ = b.Close(context.WithoutCancel(ctx))
	}
	t.Cleanup(p.stop)
	return p
}

// inbound returns the texts stored on OMNI_IN, oldest first.
func inbound(t *testing.T, b *bus.Bus) []string {
	t.Helper()
	st, err := b.JetStream().Stream(t.Context(), bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		m, err := decode(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func waitInbound(t *testing.T, b *bus.Bus, want ...string) {
	t.Helper()
	bustest.Eventually(t, waitFor, func() error {
		if got := inbound(t, b); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("stored %q, want %q", got, want)
		}
		return nil
	})
}

// storedOffset reads the offset the adapter keeps in the store.
func storedOffset(t *testing.T, st *store.Store, token string) int {
	t.Helper()
	var rec struct {
		Offset int `json:"offset"`
	}
	id, _, _ := strings.Cut(token, ":")
	if _, err := st.Records("telegram").Get(t.Context(), "offset_"+id, &rec); err != nil {
		return 0
	}
	return rec.Offset
}

// TestPolling_OffsetSurvivesRestart: updates are fetched with getUpdates and
// stored; after the process and the JetStream server restart, polling goes on
// from the stored offset: nothing skipped, nothing stored twice.
func TestPolling_OffsetSurvivesRestart(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	var last int
	for i := 1; i <= 3; i++ {
		last = fake.AddUpdate(t, map[string]any{"message": message(i, map[string]any{"text": "before " + strconv.Itoa(i)})})
	}

	p1 := startProcess(t, srv, fake)
	waitInbound(t, p1.bus, "before 1", "before 2", "before 3")
	bustest.Eventually(t, waitFor, func() error {
		if got := storedOffset(t, p1.store, fake.Token); got != last+1 {
			return fmt.Errorf("stored offset %d, want %d", got, last+1)
		}
		return nil
	})
	p1.stop()

	// While omnigate is down, the customer writes again.
	fake.AddUpdate(t, map[string]any{"message": message(4, map[string]any{"text": "while down"})})
	srv.Restart(t)
	before := len(fake.Requests("getUpdates"))

	p2 := startProcess(t, srv, fake)
	waitInbound(t, p2.bus, "before 1", "before 2", "before 3", "while down")
	calls := fake.Requests("getUpdates")[before:]
	if len(calls) == 0 || calls[0].Params["offset"] != strconv.Itoa(last+1) {
		t.Fatalf("first getUpdates after the restart asked for offset %v, want %d", calls, last+1)
	}
	fake.AddUpdate(t, map[string]any{"message": message(5, map[string]any{"text": "after"})})
	waitInbound(t, p2.bus, "before 1", "before 2", "before 3", "while down", "after")
	if n := len(inbound(t, p2.bus)); n != 5 {
		t.Fatalf("%d stored, want 5", n)
	}
}

// TestPolling_Details: polling removes a webhook first (getUpdates fails
// while one is set), asks only for the update kinds it handles, long-polls
// with poll_timeout, skips updates it cannot read without stalling, and is
// ready once getUpdates answers.
func TestPolling_Details(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	// A webhook left over from webhook mode.
	resp, err := http.PostForm(fmt.Sprintf(fake.Endpoint(), fake.Token, "setWebhook"), map[string][]string{"url": {"https://old.example.com/hook"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	bad := fake.AddUpdate(t, map[string]any{"message": map[string]any{"message_id": 1, "date": 1, "text": "no chat"}})
	fake.AddUpdate(t, map[string]any{"message": message(2, map[string]any{"text": "good"})})

	p := startProcess(t, srv, fake)
	waitInbound(t, p.bus, "good")
	bustest.Eventually(t, waitFor, func() error { return p.a.Ready(t.Context()) })
	// The offset is saved just after the publish that waitInbound saw.
	bustest.Eventually(t, waitFor, func() error {
		if got := storedOffset(t, p.store, fake.Token); got != bad+2 {
			return fmt.Errorf("offset %d, want %d: the unreadable update is skipped", got, bad+2)
		}
		return nil
	})
	if fake.Webhook().URL != "" || len(fake.Requests("deleteWebhook")) == 0 {
		t.Error("the old webhook was not deleted")
	}
	calls := fake.Requests("getUpdates")
	if len(calls) == 0 || calls[0].Params["timeout"] != "1" || calls[0].Params["allowed_updates"] != `["message","edited_message"]` {
		t.Errorf("getUpdates %+v", calls)
	}
}

// TestPolling_ErrorEndsRun: a getUpdates failure ends Run with an error, so
// the runtime restarts it with backoff and /readyz shows it.
func TestPolling_ErrorEndsRun(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	fake.Fail(telegramtest.Failure{Methods: []string{"getUpdates"}, Code: 409,
		Description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"})
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.WithoutCancel(ctx)) })
	kv, err := store.NewJetStream(ctx, b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := build(t, adapters.Deps{Publisher: adapters.NewPublisher(b, "telegram"), Store: store.New(kv, store.Options{})}, pollingConfig(fake))
	err = a.Run(ctx)
	if err == nil || !containsAll(err.Error(), "getUpdates", "Conflict") {
		t.Fatalf("Run: %v, want the getUpdates conflict", err)
	}
	if a.Ready(ctx) == nil {
		t.Error("ready after a failed Run")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// decode returns the text of a stored envelope.
func decode(data []byte) (string, error) {
	m, err := core.Decode(data)
	if err != nil {
		return "", err
	}
	return m.Text, nil
}
