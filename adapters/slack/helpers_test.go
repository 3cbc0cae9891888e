package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/routing"
)

// wait bounds every polling wait of these tests.
const wait = 10 * time.Second

// desk is the world of one test: a real JetStream (adaptertest.NewEnv), the
// pipeline running on it, the fake Slack, and the adapter in a runtime as a
// desk.
type desk struct {
	t    *testing.T
	env  *adaptertest.Env
	fake *fakeSlack
	cfg  slack.Config
	a    *slack.Adapter
	stop func()
}

// testConfig is the config of an http-mode desk on fake.
func testConfig(fake *fakeSlack) slack.Config {
	return slack.Config{
		Mode:           slack.ModeHTTP,
		BotToken:       config.Secret(testBotTok),
		SigningSecret:  config.Secret(testSecret),
		DefaultChannel: chSupport,
		ChannelRate:    1000,
		ChannelBurst:   1000,
		TicketURL:      "https://tracker.example.com/t/{id}",
		APIURL:         fake.URL(),
	}
}

// newDesk starts everything; edit changes the config first.
func newDesk(t *testing.T, edit func(*slack.Config)) *desk {
	t.Helper()
	env := adaptertest.NewEnv(t, slack.Name)
	d := &desk{t: t, env: env, fake: newFakeSlack(t)}
	d.cfg = testConfig(d.fake)
	if edit != nil {
		edit(&d.cfg)
	}
	runPipeline(t, env)
	d.start()
	return d
}

// start builds a fresh adapter on the same bus and store and runs it, as a
// restarted process would.
func (d *desk) start() {
	t := d.t
	t.Helper()
	mux := http.NewServeMux()
	deps := d.env.Deps
	deps.Routes = adapters.NewRoutes(mux, slack.Name)
	deps.Queues = queues
	deps.TranscriptURL = func(conv string) string { return deps.PublicURL + "/conversations/" + conv + "?exp=1&sig=s" }
	a, err := slack.New(d.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	d.a = a
	d.env.Mux = mux
	d.stop = runDesk(t, d.env, a)
}

// restart stops the adapter and starts a new one.
func (d *desk) restart() {
	d.stop()
	d.start()
}

// runDesk runs a in a runtime as a desk until the returned stop or the end of
// the test, and waits until it is ready.
func runDesk(t *testing.T, env *adaptertest.Env, a adapters.Adapter) (stop func()) {
	t.Helper()
	rt, err := adapters.NewRuntime(adapters.RuntimeConfig{}, adapters.RuntimeDeps{Bus: env.Bus, Store: env.Store, Logger: env.Logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Add(a, adapters.Desk); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("runtime: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("runtime did not stop")
			}
		})
	}
	t.Cleanup(stop)
	bustest.Eventually(t, wait, func() error {
		for _, s := range rt.Ready(ctx) {
			if s.Error != "" {
				return errors.New(s.Error)
			}
		}
		return nil
	})
	return stop
}

// runPipeline runs core's pipeline on env until the test ends.
func runPipeline(t *testing.T, env *adaptertest.Env) {
	t.Helper()
	p, err := pipeline.New(pipeline.Config{Desks: []string{slack.Name}}, pipeline.Deps{Bus: env.Bus, Store: env.Store, Logger: env.Logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("pipeline: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// customer publishes what a customer wrote on channel from address, as that
// channel's adapter does, and returns the envelope.
func (d *desk) customer(from core.Identity, text string, meta map[string]string) *core.Message {
	d.t.Helper()
	m := core.NewMessage(core.KindMessage, core.Inbound, from.Channel())
	m.From, m.Text, m.Meta = from, text, meta
	m.External.Message = "p-" + m.ID
	if _, err := d.env.Bus.PublishMessage(d.t.Context(), bus.SubjectIn(m.Channel, string(from)), m); err != nil {
		d.t.Fatal(err)
	}
	return m
}

// posts waits until the fake Slack holds n chat.postMessage calls and
// returns them.
func (d *desk) posts(n int) []call {
	d.t.Helper()
	var got []call
	bustest.Eventually(d.t, wait, func() error {
		if got = d.fake.Calls("chat.postMessage"); len(got) < n {
			return fmt.Errorf("%d messages posted, want %d", len(got), n)
		}
		return nil
	})
	return got
}

// conversationOf waits until identity's contact has an open conversation
// with a Slack thread, and returns it.
func (d *desk) conversationOf(id core.Identity) *store.Conversation {
	d.t.Helper()
	var conv *store.Conversation
	bustest.Eventually(d.t, wait, func() error {
		c, err := d.env.Store.ContactByIdentity(d.t.Context(), id)
		if err != nil {
			return err
		}
		conv, err = d.env.Store.OpenConversation(d.t.Context(), c.ID)
		if err != nil {
			return err
		}
		if _, _, ok := thread(d.t, d.env.Store, conv.ID); !ok {
			return errors.New("no thread yet")
		}
		return nil
	})
	return conv
}

// conversation reads conversation id.
func (d *desk) conversation(id string) *store.Conversation {
	d.t.Helper()
	c, err := d.env.Store.Conversation(d.t.Context(), id)
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

// root returns the channel and ts of conv's thread.
func root(t *testing.T, st *store.Store, conv *store.Conversation) (channel, ts string) {
	t.Helper()
	ch, ts, ok := thread(t, st, conv.ID)
	if !ok {
		t.Fatalf("conversation %s has no slack thread", conv.ID)
	}
	return ch, ts
}

// thread reads where the desk's own records say conversation id lives.
func thread(t *testing.T, st *store.Store, id string) (channel, ts string, ok bool) {
	t.Helper()
	var r struct {
		Thread string `json:"thread"`
	}
	if _, err := st.Records("slack_conversations").Get(t.Context(), id, &r); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	channel, ts, ok = strings.Cut(r.Thread, ":")
	return channel, ts, ok
}

// queues are routing's queues in these tests: billing has its own channel.
var queues = []adapters.Queue{
	{Name: "default", Desk: slack.Name, Channel: chSupport, Default: true},
	{Name: "billing", Desk: slack.Name, Channel: chBilling},
	{Name: "vip", Desk: slack.Name, Channel: chSupport},
}

// routingConfig is the routing section matching queues.
func routingConfig() routing.Config {
	cfg := routing.Config{DefaultQueue: "default", Queues: map[string]routing.Queue{}}
	for _, q := range queues {
		cfg.Queues[q.Name] = routing.Queue{Desk: q.Desk, Channel: q.Channel}
	}
	cfg.SetDefaults()
	return cfg
}

// runRouting runs routing on the desk's bus and store until the test ends:
// the owner of queues and assignees, which answers Claim and Transfer.
func (d *desk) runRouting() {
	d.t.Helper()
	d.runRoutingWith(routingConfig())
}

// runRoutingWith runs routing with cfg.
func (d *desk) runRoutingWith(cfg routing.Config) {
	d.t.Helper()
	d.runRoutingDeps(cfg, routing.Deps{})
}

// runRoutingDeps runs routing with cfg and deps, whose Bus, Store and Logger
// are the desk's.
func (d *desk) runRoutingDeps(cfg routing.Config, deps routing.Deps) {
	d.t.Helper()
	cfg.SetDefaults()
	deps.Bus, deps.Store, deps.Logger = d.env.Bus, d.env.Store, d.env.Logger
	r, err := routing.New(cfg, deps)
	if err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	d.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			d.t.Errorf("routing: %v", err)
		}
	})
	// Routing starts at new messages: wait for its consumers.
	bustest.Eventually(d.t, wait, func() error {
		for stream, durable := range map[string]string{bus.StreamConv: routing.DurableTranscript, bus.StreamEvt: routing.DurableEvents} {
			if _, err := d.env.Bus.JetStream().Consumer(d.t.Context(), stream, durable); err != nil {
				return fmt.Errorf("routing consumer %s: %w", durable, err)
			}
		}
		return nil
	})
}

// serve serves r on the adapter's routes and returns the status and body.
func (d *desk) serve(r *http.Request) (int, string) {
	d.t.Helper()
	rec := httptest.NewRecorder()
	d.env.Mux.ServeHTTP(rec, r.WithContext(d.t.Context()))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// postEvent POSTs a signed Events API payload; retry > 0 sets
// X-Slack-Retry-Num.
func (d *desk) postEvent(body []byte, retry int) (int, string) {
	d.t.Helper()
	r := slackfake.Signed("events", slackfake.JSON, body, testSecret, time.Now())
	if retry > 0 {
		r.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		r.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return d.serve(r)
}

// postClick POSTs a signed interactivity payload.
func (d *desk) postClick(payload []byte) (int, string) {
	d.t.Helper()
	return d.serve(slackfake.Signed("interactivity", slackfake.Form, slackfake.InteractionForm(payload), testSecret, time.Now()))
}

// command POSTs a signed /omni command from user in channel.
func (d *desk) command(user, channel, text string) (int, string) {
	d.t.Helper()
	body := []byte(slackfake.Command(user, channel, text).Encode())
	code, resp := d.serve(slackfake.Signed("commands", slackfake.Form, body, testSecret, time.Now()))
	var cr struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(resp), &cr); err != nil {
			d.t.Fatalf("command answer %q: %v", resp, err)
		}
		if cr.ResponseType != "ephemeral" {
			d.t.Errorf("command answered %q, want ephemeral", cr.ResponseType)
		}
		return code, cr.Text
	}
	return code, resp
}

// stored returns the envelopes of stream whose subject starts with prefix.
func (d *desk) stored(stream, prefix string) []*core.Message {
	d.t.Helper()
	var out []*core.Message
	for _, s := range d.env.Stored(d.t, stream) {
		if strings.HasPrefix(s.Subject, prefix) && s.Message != nil {
			out = append(out, s.Message)
		}
	}
	return out
}

// waitStored waits until stream holds n envelopes under prefix and returns
// them.
func (d *desk) waitStored(stream, prefix string, n int) []*core.Message {
	d.t.Helper()
	var got []*core.Message
	bustest.Eventually(d.t, wait, func() error {
		if got = d.stored(stream, prefix); len(got) < n {
			return fmt.Errorf("%d on %s, want %d", len(got), prefix, n)
		}
		return nil
	})
	return got
}

// updatesOf returns the chat.update calls of channel/ts.
func (d *desk) updatesOf(channel, ts string) []call {
	var out []call
	for _, c := range d.fake.Calls("chat.update") {
		if c.Channel == channel && c.TS == ts {
			out = append(out, c)
		}
	}
	return out
}

// waitCard waits until the last chat.update of the card at channel/ts
// contains every one of want.
func (d *desk) waitCard(channel, ts string, want ...string) call {
	d.t.Helper()
	var last call
	bustest.Eventually(d.t, wait, func() error {
		ups := d.updatesOf(channel, ts)
		if len(ups) == 0 {
			return errors.New("card not updated")
		}
		last = ups[len(ups)-1]
		for _, w := range want {
			if !strings.Contains(last.Blocks, w) {
				return fmt.Errorf("card has no %q: %s", w, last.Blocks)
			}
		}
		return nil
	})
	return last
}

// inThread returns the chat.postMessage calls in thread ts.
func inThread(calls []call, ts string) []call {
	var out []call
	for _, c := range calls {
		if c.ThreadTS == ts {
			out = append(out, c)
		}
	}
	return out
}

// newID is a fresh envelope id.
func newID() string { return core.NewID() }
