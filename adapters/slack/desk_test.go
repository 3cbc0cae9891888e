package slack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/adapters"
	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
)

const ann = core.Identity("sms:+15550001111")

// TestDesk_ThreadAndReply walks a conversation through Slack: the first
// customer message opens a thread with the card, the next lands in it, an
// agent's reply goes through the pipeline to omni.out.sms, a Slack retry of it
// is processed once, a note is not sent, and delivery reports show on it.
func TestDesk_ThreadAndReply(t *testing.T) {
	d := newDesk(t, nil)

	d.customer(ann, "Hello, my order <is> late & broken", nil)
	posts := d.posts(2)
	card, first := posts[0], posts[1]
	if card.Channel != chSupport || card.ThreadTS != "" {
		t.Fatalf("root posted to %s in thread %q, want a new message in %s", card.Channel, card.ThreadTS, chSupport)
	}
	for _, want := range []string{`"type":"header"`, "+15550001111", "SMS", "Open", "_unassigned_", "omni_claim", "omni_close", "omni_ticket", "omni_transfer", "?exp=1\u0026amp;sig=s|Transcript\u003e"} {
		if !strings.Contains(card.Blocks, want) {
			t.Errorf("card lacks %q: %s", want, card.Blocks)
		}
	}
	if first.ThreadTS != card.TS || first.Channel != chSupport {
		t.Fatalf("first message posted in %s/%q, want the card's thread %s", first.Channel, first.ThreadTS, card.TS)
	}
	if want := "Hello, my order &lt;is&gt; late &amp; broken"; first.Text != want {
		t.Errorf("customer text posted as %q, want %q (escaped)", first.Text, want)
	}
	if first.Username != "+15550001111 (SMS)" || first.Icon != ":speech_balloon:" {
		t.Errorf("customer message posted as %q %q, want the customer and the channel", first.Username, first.Icon)
	}
	conv := d.conversationOf(ann)
	ch, ts := root(t, d.env.Store, conv)
	if ch != card.Channel || ts != card.TS {
		t.Fatalf("conversation thread %s:%s, want the card %s:%s", ch, ts, card.Channel, card.TS)
	}

	d.customer(ann, "Are you there?", nil)
	posts = d.posts(3)
	if p := posts[2]; p.ThreadTS != ts || p.Text != "Are you there?" {
		t.Fatalf("follow-up posted in %q as %q, want in thread %s", p.ThreadTS, p.Text, ts)
	}
	if roots := len(posts) - len(inThread(posts, ts)); roots != 1 {
		t.Errorf("%d roots for one conversation, want 1", roots)
	}

	// The agent answers in the thread.
	body := slackfake.EventPayload("Ev0001", slackfake.AgentReply(agentUser, ch, ts, "1700000000.000100",
		"Hi *Ann*, see <https://example.com/track|tracking> &amp; thanks <@"+agent2User+">"))
	if code, resp := d.postEvent(body, 0); code != http.StatusOK {
		t.Fatalf("event answered %d %s", code, resp)
	}
	replies := d.stored(bus.StreamIn, "omni.in.slack.")
	if len(replies) != 1 {
		t.Fatalf("%d replies published, want 1 before the 200", len(replies))
	}
	r := replies[0]
	if r.Direction != core.Outbound || r.From != "slack:"+agentUser || r.ConversationID != conv.ID || r.External.Message != "Ev0001" {
		t.Errorf("reply published as %s from %s in %s (external %q), want outbound from slack:%s in %s", r.Direction, r.From, r.ConversationID, r.External.Message, agentUser, conv.ID)
	}
	if sub := d.env.Stored(t, bus.StreamIn); !containsSubject(sub, bus.SubjectIn(slack.Name, conv.ID)) {
		t.Errorf("reply not on %s, the partition of its conversation", bus.SubjectIn(slack.Name, conv.ID))
	}
	outs := d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 1)
	out := outs[0]
	if want := "Hi **Ann**, see [tracking](https://example.com/track) & thanks @Bob Agent"; out.Text != want || out.Meta[event.MetaFormat] != event.FormatMarkdown {
		t.Errorf("reply is %q (format %q), want %q in markdown", out.Text, out.Meta[event.MetaFormat], want)
	}
	// SMS shows it as plain text.
	sms := out.Clone()
	adapters.Render(sms, adapters.FormatPlain)
	if want := "Hi Ann, see tracking (https://example.com/track) & thanks @Bob Agent"; sms.Text != want {
		t.Errorf("customer gets %q, want %q", sms.Text, want)
	}
	if out.To != ann || out.ID != r.ID || out.Meta[event.MetaAgentName] != "Alice Agent" || out.Meta[event.MetaDesk] != slack.Name ||
		out.Meta[event.MetaAgentAvatar] != slackfake.AvatarURL(agentUser) {
		t.Errorf("reply to %s id %s meta %v, want to %s id %s from Alice Agent", out.To, out.ID, out.Meta, ann, r.ID)
	}

	// Slack delivers the event again: it is processed once.
	if code, _ := d.postEvent(body, 1); code != http.StatusOK {
		t.Fatalf("retry answered %d", code)
	}
	// A note is not sent; a bot's message is ignored; the next reply is.
	d.postEvent(slackfake.EventPayload("Ev0002", slackfake.AgentReply(agentUser, ch, ts, "1700000000.000200", "// VIP, be nice")), 0)
	bot := slackfake.AgentReply(botUser, ch, ts, "1700000000.000300", "card update")
	bot["bot_id"] = botID
	d.postEvent(slackfake.EventPayload("Ev0003", bot), 0)
	d.postEvent(slackfake.EventPayload("Ev0004", slackfake.AgentReply(agent2User, ch, ts, "1700000000.000400", "Your parcel ships today.")), 0)
	// Replies of one conversation share a partition, handled in order: once
	// the last one is out, whatever came before it is too.
	d.waitStored(bus.StreamOut, bus.SubjectOut("sms"), 2)
	outs = d.stored(bus.StreamOut, bus.SubjectOut("sms"))
	if len(outs) != 2 || outs[1].Text != "Your parcel ships today." {
		var texts []string
		for _, o := range outs {
			texts = append(texts, o.Text)
		}
		t.Fatalf("customer gets %q, want the two replies once each, no note, no bot message", texts)
	}

	// Delivery reports: a reaction on the agent's message, a note on failure.
	deliver := func(typ string, reply *core.Message, meta map[string]string) {
		ev := adapters.DeliveryEvent(reply, typ)
		ev.Meta = meta
		if _, err := d.env.Bus.PublishMessage(t.Context(), bus.SubjectEvt(typ), ev); err != nil {
			t.Fatal(err)
		}
	}
	deliver(event.DeliveryDelivered, outs[0], nil)
	deliver(event.DeliveryFailed, outs[1], map[string]string{"error": "21610: unsubscribed recipient"})
	bustest.Eventually(t, wait, func() error {
		got := map[string]string{}
		for _, c := range d.fake.Calls("reactions.add") {
			got[c.TS] = c.Name
		}
		if got["1700000000.000100"] != "white_check_mark" || got["1700000000.000400"] != "x" {
			return fmt.Errorf("reactions %v, want white_check_mark on the first reply, x on the second", got)
		}
		return nil
	})
	bustest.Eventually(t, wait, func() error {
		for _, p := range inThread(d.fake.Calls("chat.postMessage"), ts) {
			if strings.Contains(p.Text, "could not be delivered") && strings.Contains(p.Text, "21610: unsubscribed recipient") {
				return nil
			}
		}
		return fmt.Errorf("no failure note in the thread")
	})
}

func containsSubject(ss []adaptertest.Stored, subject string) bool {
	for _, s := range ss {
		if s.Subject == subject {
			return true
		}
	}
	return false
}

// TestDesk_NoInjection: what a customer controls (name, text) cannot mention,
// ping or link in Slack: mrkdwn carries it escaped (plain_text shows as is).
func TestDesk_NoInjection(t *testing.T) {
	d := newDesk(t, nil)
	d.customer("telegram:666", "<!here> click <https://evil.example|here>", map[string]string{"name": "<!channel> Eve"})
	for _, p := range d.posts(2) {
		for _, s := range append(mrkdwnTexts(t, p.Blocks), p.Text) {
			if strings.Contains(s, "<!") || strings.Contains(s, "<https://evil") {
				t.Errorf("customer input reached Slack's mrkdwn unescaped: %s", s)
			}
		}
	}
}

// mrkdwnTexts returns the texts of the mrkdwn objects in blocks.
func mrkdwnTexts(t *testing.T, blocks string) []string {
	t.Helper()
	if blocks == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(blocks), &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				if s, ok := x["text"].(string); ok {
					out = append(out, s)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}
