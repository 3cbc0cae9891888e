package telegram_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
	logs  *logBook
	// stop cancels Run and expects it to return nil, as on SIGTERM.
	stop func()
	// crash cuts the process off from NATS and ends it without a clean stop,
	// as kill -9 would: what it holds in the store is left to expire.
	crash func()
}

// startProcess opens a bus and store on srv and runs a polling adapter on fake.
func startProcess(t *testing.T, srv *bustest.Server, fake *telegramtest.Server) *process {
	t.Helper()
	return startReplica(t, srv, fake, pollingConfig(fake))
}

// startReplica is startProcess with the channels.telegram section given.
func startReplica(t *testing.T, srv *bustest.Server, fake *telegramtest.Server, section string) *process {
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
	logs := &logBook{}
	deps := adapters.Deps{
		Publisher: adapters.NewPublisher(b, "telegram"),
		Routes:    adapters.NewRoutes(http.NewServeMux(), "telegram"),
		Store:     st,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	a := build(t, deps, section)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	p := &process{bus: b, store: st, a: a, logs: logs}
	var stopped bool
	end := func(clean bool) {
		if stopped {
			return
		}
		stopped = true
		if !clean {
			b.Conn().Close()
		}
		cancel()
		select {
		case err := <-done:
			if err != nil && clean {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
		_ = st.Close()
		_ = b.Close(context.WithoutCancel(ctx))
	}
	p.stop = func() { end(true) }
	p.crash = func() { end(false) }
	t.Cleanup(p.stop)
	return p
}

// logBook collects a process's log lines.
type logBook struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBook) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns how many lines contain s.
func (l *logBook) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
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
	if len(calls) == 0 || calls[0].Params["timeout"] != "1" || calls[0].Params["allowed_updates"] != `["message","edited_message","callback_query","my_chat_member"]` {
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

// Log lines of the polling lease.
const (
	logPolls   = "telegram long polling: this replica polls"
	logWaiting = "telegram long polling: another replica polls; waiting for the lease"
	logLost    = "telegram long polling: lease lost; this replica stops polling"
)

// replicaConfig is pollingConfig for the replica called name: its Bot API
// calls carry replica=<name> in the query, so the fake tells them apart.
func replicaConfig(fake *telegramtest.Server, name string, pollTimeout time.Duration) string {
	return fmt.Sprintf("token: %q\nmode: polling\npoll_timeout: %s\napi_endpoint: %q\n",
		fake.Token, pollTimeout, fake.Endpoint()+"?replica="+name)
}

// getUpdatesBy returns the getUpdates calls replica name made.
func getUpdatesBy(fake *telegramtest.Server, name string) []telegramtest.Request {
	var out []telegramtest.Request
	for _, r := range fake.Requests("getUpdates") {
		if r.Params["replica"] == name {
			out = append(out, r)
		}
	}
	return out
}

// addTexts queues messages from..to as updates, with texts "u<n>".
func addTexts(t *testing.T, fake *telegramtest.Server, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		fake.AddUpdate(t, map[string]any{"message": message(i, map[string]any{"text": "u" + strconv.Itoa(i)})})
	}
}

// texts returns "u1".."u<n>".
func texts(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, "u"+strconv.Itoa(i))
	}
	return out
}

// twoReplicas starts replicas a and b on the same bus server, store and bot,
// waits until one of them polls and the other has been refused the lease
// twice, and returns them poller first, with their names.
func twoReplicas(t *testing.T, srv *bustest.Server, fake *telegramtest.Server) (poller, waiter *process, pollerName, waiterName string) {
	t.Helper()
	ps := map[string]*process{
		"a": startReplica(t, srv, fake, replicaConfig(fake, "a", time.Second)),
		"b": startReplica(t, srv, fake, replicaConfig(fake, "b", time.Second)),
	}
	bustest.Eventually(t, waitFor, func() error {
		var polls []string
		for name := range ps {
			if len(getUpdatesBy(fake, name)) > 0 {
				polls = append(polls, name)
			}
		}
		if len(polls) != 1 {
			return fmt.Errorf("replicas %q called getUpdates, want exactly one", polls)
		}
		pollerName, waiterName = polls[0], map[string]string{"a": "b", "b": "a"}[polls[0]]
		if n := ps[waiterName].logs.count(logWaiting); n < 2 {
			return fmt.Errorf("the waiting replica tried %d times to take the lease, want 2", n)
		}
		return nil
	})
	return ps[pollerName], ps[waiterName], pollerName, waiterName
}

// TestPolling_OneReplicaPolls: of two replicas on the same bus and store,
// only the one holding the polling lease calls getUpdates; the other tries
// to take the lease and is refused. A clean stop releases the lease, so the
// other takes over within its retry interval, not the lease's ttl; every
// update is stored once across the handover.
func TestPolling_OneReplicaPolls(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	addTexts(t, fake, 1, 3)
	poller, waiter, _, waiterName := twoReplicas(t, srv, fake)
	waitInbound(t, waiter.bus, texts(3)...)
	addTexts(t, fake, 4, 6)
	waitInbound(t, waiter.bus, texts(6)...)
	if n := len(getUpdatesBy(fake, waiterName)); n != 0 {
		t.Fatalf("the waiting replica called getUpdates %d times", n)
	}
	if poller.logs.count(logPolls) != 1 || waiter.logs.count(logPolls) != 0 {
		t.Errorf("%q logged by the poller %d times, by the waiter %d times; want 1, 0",
			logPolls, poller.logs.count(logPolls), waiter.logs.count(logPolls))
	}

	stopped := time.Now()
	poller.stop()
	addTexts(t, fake, 7, 9)
	waitInbound(t, waiter.bus, texts(9)...)
	calls := getUpdatesBy(fake, waiterName)
	took := calls[0].At.Sub(stopped)
	t.Logf("takeover %s after a clean stop", took.Round(10*time.Millisecond))
	if took > 2*time.Second+time.Second {
		t.Errorf("takeover after a clean stop took %s, want within the 2s retry", took)
	}
	if waiter.logs.count(logPolls) != 1 {
		t.Errorf("the new poller did not log %q", logPolls)
	}
	if n := fake.Conflicts(); n != 0 {
		t.Errorf("%d getUpdates calls overlapped", n)
	}
}

// TestPolling_TakeoverAfterCrash: when the polling replica dies without
// releasing the lease, the other takes over once the lease expires (about
// 10 s) and receives the updates sent meanwhile: updates 1..6 are stored once
// each, and no two getUpdates calls ever overlapped.
func TestPolling_TakeoverAfterCrash(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	addTexts(t, fake, 1, 3)
	poller, waiter, _, waiterName := twoReplicas(t, srv, fake)
	waitInbound(t, waiter.bus, texts(3)...)

	crashed := time.Now()
	poller.crash()
	addTexts(t, fake, 4, 6)
	bustest.Eventually(t, 20*time.Second, func() error {
		if len(getUpdatesBy(fake, waiterName)) == 0 {
			return fmt.Errorf("no getUpdates from the waiting replica %s after the crash", time.Since(crashed).Round(time.Second))
		}
		return nil
	})
	took := getUpdatesBy(fake, waiterName)[0].At.Sub(crashed)
	t.Logf("takeover %s after the crash", took.Round(10*time.Millisecond))
	if took > 10*time.Second+2*time.Second+time.Second {
		t.Errorf("takeover after a crash took %s, want within the lease ttl and one retry", took)
	}
	waitInbound(t, waiter.bus, texts(6)...)
	if n := fake.Conflicts(); n != 0 {
		t.Errorf("%d getUpdates calls overlapped", n)
	}
}

// TestPolling_LostLeaseStopsPolling: when the lease is taken from the
// polling replica (here: its key deleted and taken by another holder, as if
// it had expired unseen), the replica's next renewal notices, the getUpdates
// in flight is cancelled and polling stops until the lease is free again;
// then it polls again and nothing sent meanwhile is lost.
func TestPolling_LostLeaseStopsPolling(t *testing.T) {
	srv := bustest.RunServer(t)
	fake := telegramtest.NewServer(t, "")
	addTexts(t, fake, 1, 1)
	p := startReplica(t, srv, fake, replicaConfig(fake, "a", 30*time.Second))
	waitInbound(t, p.bus, texts(1)...)
	bustest.Eventually(t, waitFor, func() error {
		if !fake.Polling() {
			return fmt.Errorf("no getUpdates long poll in flight")
		}
		return nil
	})

	id, _, _ := strings.Cut(fake.Token, ":")
	name := "telegram-poll-" + id
	if err := p.store.KV().Delete(t.Context(), "leases", name, 0); err != nil {
		t.Fatal(err)
	}
	thief := p.store.Lease(name, "thief", time.Minute)
	if ok, err := thief.Acquire(t.Context()); !ok || err != nil {
		t.Fatalf("thief: acquire %v, %v", ok, err)
	}
	taken := time.Now()
	bustest.Eventually(t, waitFor, func() error {
		if fake.Polling() {
			return fmt.Errorf("getUpdates still in flight %s after the lease was taken", time.Since(taken).Round(time.Second))
		}
		return nil
	})
	stopped := time.Since(taken)
	t.Logf("polling stopped %s after the lease was taken", stopped.Round(10*time.Millisecond))
	if stopped > 10*time.Second/3+time.Second {
		t.Errorf("polling stopped %s after the lease was taken, want within a renewal (10s/3)", stopped)
	}
	bustest.Eventually(t, waitFor, func() error {
		if p.logs.count(logLost) != 1 {
			return fmt.Errorf("%q not logged", logLost)
		}
		return nil
	})
	before := len(getUpdatesBy(fake, "a"))
	addTexts(t, fake, 2, 3)
	bustest.Eventually(t, waitFor, func() error {
		if n := p.logs.count(logWaiting); n == 0 {
			return fmt.Errorf("the replica did not try to take the lease back")
		}
		return nil
	})
	if n := len(getUpdatesBy(fake, "a")); n != before {
		t.Fatalf("%d getUpdates calls while another replica held the lease", n-before)
	}
	if err := thief.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitInbound(t, p.bus, texts(3)...)
	if p.logs.count(logPolls) != 2 {
		t.Errorf("%q logged %d times, want 2 (start, then after the thief released)", logPolls, p.logs.count(logPolls))
	}
}
