package slack_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/canned"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/routing"
)

// TestDesk_Suggestions: suggestions published for a customer message (as
// insight publishes them) are posted in its thread; Send replies as the
// agent, once however often it is clicked, and counts suggestion.used;
// suggestions the agent answers past in their own words count
// suggestion.ignored.
func TestDesk_Suggestions(t *testing.T) {
	d := newDesk(t, nil)
	m := d.customer(ann, "Where is my card?", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)

	d.suggest(m, conv.ID, canned.Suggestion{Article: "card.md", Title: "Card delivery", Text: "Cards take **5 days**."},
		canned.Suggestion{Article: "pin.md", Text: "Reset it in the app."})
	sugg := d.waitPost(ts, "Suggested replies")
	if !strings.Contains(sugg.Blocks, "*5 days*") || !strings.Contains(sugg.Blocks, "Reset it in the app.") {
		t.Fatalf("suggestions %s", sugg.Blocks)
	}
	value := sendValue(t, sugg.Blocks)
	for range 2 {
		if code, body := d.postClick(slackfake.Click(agentUser, ch, sugg.TS, "omni_suggest_send", value)); code != http.StatusOK {
			t.Fatalf("Send answered %d %s", code, body)
		}
	}
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)
	if o := outs[0]; o.Text != "Cards take **5 days**." || o.Meta[event.MetaFormat] != event.FormatMarkdown || o.Meta[event.MetaArticle] != "card.md" || o.ConversationID != conv.ID || o.From != core.Identity("slack:"+agentUser) {
		t.Errorf("reply %+v", o)
	}
	used := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.SuggestionUsed), 1)
	if u := used[0]; u.Meta[event.MetaArticle] != "card.md" || u.Meta[event.MetaRank] != "1" || u.ReplyTo != m.ID || u.ConversationID != conv.ID {
		t.Errorf("suggestion.used %+v", u)
	}
	d.waitEphemeral("sent one of these already")
	d.waitNote(ts, "sent a suggested reply")
	if n := len(d.stored(bus.StreamOut, bus.SubjectOut("sms"))); n != 1 {
		t.Errorf("%d replies sent for two clicks", n)
	}

	m2 := d.customer(ann, "And my PIN?", nil)
	d.suggest(m2, conv.ID, canned.Suggestion{Article: "pin.md", Text: "Reset it in the app."})
	bustest.Eventually(t, wait, func() error {
		if n := len(inThread(d.fake.Calls("chat.postMessage"), ts)); n < 5 {
			return fmt.Errorf("%d posts in the thread", n)
		}
		return nil
	})
	d.waitPostN(ts, "Suggested replies", 2)
	d.postEvent(slackfake.EventPayload("EvSugg1", slackfake.AgentReply(agentUser, ch, ts, "1700000009.000100", "Your PIN is in the app under Card.")), 0)
	ign := d.waitStored(bus.StreamEvt, bus.SubjectEvt(event.SuggestionIgnored), 1)
	if i := ign[0]; i.Meta[event.MetaArticle] != "pin.md" || i.ReplyTo != m2.ID {
		t.Errorf("suggestion.ignored %+v", i)
	}
}

// TestDesk_SuggestionClickedAtOnce: an agent who clicks Send the moment
// the suggestions show, before the desk has Slack's answer to its post,
// sends the reply (it used to be told the suggestions were too old).
func TestDesk_SuggestionClickedAtOnce(t *testing.T) {
	d := newDesk(t, nil)
	m := d.customer(ann, "Where is my card?", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, _ := root(t, d.env.Store, conv)

	clicked := make(chan int, 1)
	d.fake.OnPost(func(c slackfake.Call) {
		if !strings.Contains(c.Text, "Suggested replies") {
			return
		}
		code, _ := d.postClick(slackfake.Click(agentUser, ch, c.TS, "omni_suggest_send", sendValue(t, c.Blocks)))
		clicked <- code
	})
	d.suggest(m, conv.ID, canned.Suggestion{Article: "card.md", Title: "Card delivery", Text: "Cards take **5 days**."})
	if code := <-clicked; code != http.StatusOK {
		t.Fatalf("Send answered %d", code)
	}
	if o := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)[0]; o.Text != "Cards take **5 days**." {
		t.Errorf("reply %+v", o)
	}
	for _, c := range d.fake.Calls("chat.postEphemeral") {
		if strings.Contains(c.Text, "too old") {
			t.Errorf("the agent was told %q", c.Text)
		}
	}
}

// suggest publishes suggestions for customer message m on the desk, as
// insight does.
func (d *desk) suggest(m *core.Message, conv string, ss ...canned.Suggestion) {
	d.t.Helper()
	ev := core.NewMessage(core.KindEvent, core.Inbound, "slack")
	ev.Type, ev.ConversationID, ev.ReplyTo = event.Suggestions, conv, m.ID
	ev.Meta = map[string]string{event.MetaSuggestions: canned.EncodeSuggestions(ss)}
	if _, err := d.env.Bus.PublishMessage(d.t.Context(), bus.SubjectDesk("slack"), ev); err != nil {
		d.t.Fatal(err)
	}
}

// waitPost waits for a post in thread ts whose text has text.
func (d *desk) waitPost(ts, text string) call { return d.waitPostN(ts, text, 1) }

// waitPostN waits for the n-th post in thread ts whose text has text.
func (d *desk) waitPostN(ts, text string, n int) call {
	d.t.Helper()
	var got call
	bustest.Eventually(d.t, wait, func() error {
		k := 0
		for _, p := range inThread(d.fake.Calls("chat.postMessage"), ts) {
			if strings.Contains(p.Text, text) {
				if k++; k == n {
					got = p
					return nil
				}
			}
		}
		return fmt.Errorf("%d posts with %q in thread %s, want %d", k, text, ts, n)
	})
	return got
}

// waitEphemeral waits for an ephemeral message with text.
func (d *desk) waitEphemeral(text string) {
	d.t.Helper()
	bustest.Eventually(d.t, wait, func() error {
		for _, c := range d.fake.Calls("chat.postEphemeral") {
			if strings.Contains(c.Text, text) {
				return nil
			}
		}
		return fmt.Errorf("no ephemeral %q", text)
	})
}

// sendValue is the value of the first Send button in blocks.
func sendValue(t *testing.T, blocks string) string {
	t.Helper()
	v, ok := slackfake.ButtonValue(blocks, "omni_suggest_send")
	if !ok {
		t.Fatalf("no Send button in %s", blocks)
	}
	return v
}

// TestDesk_Tags: a rule's tags and an agent's /omni tag become the
// conversation's tags (the pipeline writes them), the card shows them, and a
// rule matching conversation tags routes the reopened conversation by them.
func TestDesk_Tags(t *testing.T) {
	d := newDesk(t, nil)
	cfg := routingConfig()
	cfg.Rules = []routing.Rule{
		{Name: "refund-tag", Continue: true, When: routing.Match{Keywords: []string{"refund"}}, Then: routing.Action{Tags: []string{"refund"}}},
		{Name: "vip-again", When: routing.Match{ConversationTags: []string{"vip"}}, Then: routing.Action{Queue: "vip"}},
	}
	d.runRoutingWith(cfg)
	d.customer(ann, "I want a refund", nil)
	d.posts(2)
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	waitTags := func(want ...string) {
		t.Helper()
		bustest.Eventually(t, wait, func() error {
			if c := d.conversation(conv.ID); !slices.Equal(c.Tags, want) {
				return fmt.Errorf("tags %q, want %q", c.Tags, want)
			}
			return nil
		})
	}
	waitTags("refund")
	d.waitCard(ch, ts, "*Tags*", "`refund`")

	if code, say := d.command(agentUser, ch, "tag VIP "+conv.ID); code != http.StatusOK || !strings.Contains(say, "`vip`") {
		t.Fatalf("/omni tag: %d %q", code, say)
	}
	waitTags("refund", "vip")
	d.waitCard(ch, ts, "`refund` `vip`")
	d.waitNote(ts, "<@"+agentUser+"> changed the tags: added `vip`")
	if c := d.conversation(conv.ID); c.Queue == "vip" {
		t.Fatalf("routed to vip before the rule could see the tag")
	}

	if code, say := d.command(agentUser, ch, "close "+conv.ID); code != http.StatusOK {
		t.Fatalf("/omni close: %d %q", code, say)
	}
	bustest.Eventually(t, wait, func() error {
		if c := d.conversation(conv.ID); c.State != store.StateClosed {
			return fmt.Errorf("state %s", c.State)
		}
		return nil
	})
	d.customer(ann, "Hello again", nil)
	bustest.Eventually(t, wait, func() error {
		if c := d.conversation(conv.ID); c.Queue != "vip" || c.Opens != 2 {
			return fmt.Errorf("reopened conversation in queue %q, opens %d", c.Queue, c.Opens)
		}
		return nil
	})
	if code, say := d.command(agentUser, ch, "untag refund,vip "+conv.ID); code != http.StatusOK || !strings.Contains(say, "Removing") {
		t.Fatalf("/omni untag: %d %q", code, say)
	}
	waitTags()
}
