package slack_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

// TestDesk_Restart keeps the thread: a new adapter (as after a restart) posts
// the next customer message in the same thread and routes replies in it.
func TestDesk_Restart(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Before the restart", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)

	d.restart()
	d.customer(ann, "After the restart", nil)
	posts := d.posts(3)
	if p := posts[2]; p.ThreadTS != ts || p.Text != "After the restart" {
		t.Fatalf("after a restart the message went to thread %q (%q), want %s", p.ThreadTS, p.Text, ts)
	}
	d.postEvent(slackfake.EventPayload("EvR1", slackfake.AgentReply(agentUser, ch, ts, "1700000002.000100", "Still here")), 0)
	if outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1); outs[0].Text != "Still here" {
		t.Errorf("reply after restart sent as %q", outs[0].Text)
	}
}

// TestDesk_ReplicasOneThread has two replicas handle the first message of a
// conversation at once: one thread is kept, the other root is deleted, and
// both post in the kept thread.
func TestDesk_ReplicasOneThread(t *testing.T) {
	env := adaptertest.NewEnv(t, slack.Name)
	fake := newFakeSlack(t)
	cfg := testConfig(fake)
	cfg.Mode = slack.ModeSocket
	cfg.AppToken = testAppTok
	var replicas []*slack.Adapter
	for range 2 {
		deps := env.Deps
		deps.Routes = nil
		a, err := slack.New(cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, a)
	}
	ctx := t.Context()
	c := &store.Contact{Identities: []core.Identity{ann}}
	if err := env.Store.CreateContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	conv := &store.Conversation{ContactID: c.ID, Channel: "sms", LastChannel: "sms", LastIdentity: ann}
	if err := env.Store.CreateConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		m := core.NewMessage(core.KindMessage, core.Inbound, "sms")
		m.From, m.Text, m.ConversationID, m.ContactID = ann, fmt.Sprintf("round %d", round), conv.ID, c.ID
		var wg sync.WaitGroup
		errs := make([]error, len(replicas))
		for i, a := range replicas {
			wg.Go(func() { _, errs[i] = a.Send(ctx, m.Clone()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	stored := env.Store
	got, err := stored.Conversation(ctx, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	ch, ts := root(t, env.Store, got)
	deleted := map[string]bool{}
	for _, del := range fake.Calls("chat.delete") {
		deleted[del.TS] = true
	}
	var roots []string
	for _, p := range fake.Calls("chat.postMessage") {
		switch {
		case p.ThreadTS == "" && !deleted[p.TS]:
			roots = append(roots, p.TS)
		case p.ThreadTS != "" && p.ThreadTS != ts:
			t.Errorf("message %q posted in thread %s, not the conversation's %s", p.Text, p.ThreadTS, ts)
		}
	}
	if len(roots) != 1 || roots[0] != ts || ch != chSupport {
		t.Errorf("roots left %v, want only the conversation's %s", roots, ts)
	}
	if deleted[ts] {
		t.Errorf("the kept root %s was deleted", ts)
	}
}

// TestDesk_ReturningCustomer: a customer who writes after the conversation
// closed gets a new conversation (no reopen window) in a new thread, whose
// card links the previous one, which gets a pointer to the new one.
func TestDesk_ReturningCustomer(t *testing.T) {
	env := adaptertest.NewEnv(t, slack.Name)
	d := &desk{t: t, env: env, fake: newFakeSlack(t)}
	d.cfg = testConfig(d.fake)
	p, err := pipeline.New(pipeline.Config{Desks: []string{slack.Name}, ReopenWindow: -1}, pipeline.Deps{
		Bus:    env.Bus,
		Store:  env.Store,
		Logger: env.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	d.start()

	d.customer(ann, "First time", map[string]string{"name": "Ann Lee"})
	posts := d.posts(2)
	if !strings.Contains(posts[0].Blocks, "Ann Lee") || posts[1].Username != "Ann Lee (SMS)" {
		t.Errorf("card %s / username %q, want the name the channel gave", posts[0].Blocks, posts[1].Username)
	}
	first := d.conversationOf(ann)
	ch1, ts1 := root(t, d.env.Store, first)
	if code, _ := d.postClick(slackfake.Click(agentUser, ch1, ts1, "omni_close", first.ID)); code != 200 {
		t.Fatal("close failed")
	}
	bustest.Eventually(t, wait, func() error {
		if s := d.conversation(first.ID).State; s != store.StateClosed {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})

	d.customer(ann, "Me again", nil)
	var second *store.Conversation
	bustest.Eventually(t, wait, func() error {
		second = d.conversationOf(ann)
		if second.ID == first.ID {
			return fmt.Errorf("still the first conversation")
		}
		return nil
	})
	if second.Previous != first.ID {
		t.Fatalf("new conversation's previous %q, want %s", second.Previous, first.ID)
	}
	_, ts2 := root(t, d.env.Store, second)
	if ts2 == ts1 {
		t.Fatal("a new conversation reused the old thread")
	}
	var card2 call
	for _, p := range d.fake.Calls("chat.postMessage") {
		if p.TS == ts2 {
			card2 = p
		}
	}
	if !strings.Contains(card2.Blocks, slackfake.Permalink(ch1, ts1)+"|Previous conversation") || !strings.Contains(card2.Blocks, "Ann Lee") {
		t.Errorf("new card does not link the previous thread: %s", card2.Blocks)
	}
	d.waitNote(ts1, "The customer is back")
	d.waitNote(ts2, "Me again")
}

// TestDesk_Reopened: within the reopen window the conversation reopens in
// its thread, which says so, and the card shows it open.
func TestDesk_Reopened(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "One", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	d.postClick(slackfake.Click(agentUser, ch, ts, "omni_close", conv.ID))
	d.waitCard(ch, ts, "Closed")
	d.customer(ann, "Two", nil)
	d.waitNote(ts, "conversation reopened")
	d.waitNote(ts, "Two")
	d.waitCard(ch, ts, "Open", "omni_close")
	if got := d.conversationOf(ann); got.ID != conv.ID {
		t.Errorf("reopened as %s, want %s", got.ID, conv.ID)
	}
}

// TestDesk_RateLimited: Slack's 429 becomes RetryAfter with its Retry-After,
// and the runtime tries again: the message arrives once.
func TestDesk_RateLimited(t *testing.T) {
	env := adaptertest.NewEnv(t, slack.Name)
	fake := newFakeSlack(t)
	a, err := slack.New(testConfig(fake), env.Deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := &store.Contact{Identities: []core.Identity{ann}}
	if err := env.Store.CreateContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	conv := &store.Conversation{ContactID: c.ID, Channel: "sms", LastChannel: "sms", LastIdentity: ann}
	if err := env.Store.CreateConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	m := core.NewMessage(core.KindMessage, core.Inbound, "sms")
	m.From, m.Text, m.ConversationID = ann, "hello", conv.ID
	fake.Throttle(1, 7)
	_, err = a.Send(ctx, m)
	if d, ok := bus.RetryDelay(err); !ok || d != 7*time.Second {
		t.Fatalf("Send = %v, want RetryAfter 7s", err)
	}
	if _, err := a.Send(ctx, m); err != nil {
		t.Fatalf("Send after the limit = %v", err)
	}
	posts := fake.Calls("chat.postMessage")
	if len(posts) != 2 || posts[1].Text != "hello" {
		t.Errorf("posted %d messages, want the card and the message", len(posts))
	}

	fake.FailPosts("not_in_channel")
	m2 := m.Clone()
	m2.ID = core.NewID()
	if _, err := a.Send(ctx, m2); !bus.IsPermanent(err) {
		t.Errorf("Send to a channel without the bot = %v, want Permanent", err)
	}
}

// TestDesk_LongText splits a long customer message into thread messages of
// at most 3,000 characters, in order.
func TestDesk_LongText(t *testing.T) {
	d := newDesk(t, nil)
	para := strings.Repeat("word ", 500) // 2,500 characters
	text := strings.TrimSpace(para + "\n\n" + para + "\n\n" + para)
	d.customer(ann, text, nil)
	posts := d.posts(4)
	var got []string
	for _, p := range posts[1:] {
		if n := len([]rune(p.Text)); n > 3000 {
			t.Errorf("posted %d characters in one message", n)
		}
		got = append(got, p.Text)
	}
	if strings.Join(strings.Fields(strings.Join(got, " ")), " ") != strings.Join(strings.Fields(text), " ") {
		t.Errorf("the pieces do not add up to the message")
	}
}

// TestDesk_EchoAndMerge shows a reply written on another desk and notes a
// contact merge.
func TestDesk_EchoAndMerge(t *testing.T) {
	d := newDesk(t, nil)
	d.customer(ann, "Hi", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	_, ts := root(t, d.env.Store, conv)
	echo := core.NewMessage(core.KindMessage, core.Outbound, "sms")
	echo.To, echo.ConversationID, echo.Text = ann, conv.ID, "Answered from the API"
	echo.Meta = map[string]string{event.MetaDesk: "api"}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk(slack.Name), echo); err != nil {
		t.Fatal(err)
	}
	d.waitNote(ts, "Answered from the API")
	d.waitNote(ts, "written on api")

	merged := core.NewMessage(core.KindEvent, core.Inbound, "sms")
	merged.Type, merged.ConversationID, merged.ContactID = event.ContactMerged, conv.ID, conv.ContactID
	merged.Meta = map[string]string{
		event.MetaConversation:  conv.ID,
		event.MetaReason:        "phone",
		event.MetaContact:       conv.ContactID,
		event.MetaMergedContact: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
	}
	if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectDesk(slack.Name), merged); err != nil {
		t.Fatal(err)
	}
	d.waitNote(ts, "was merged into this one (matched by phone number)")
}
