package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/slack/slackfake"
	"github.com/omnigate/omnigate/core/bus/bustest"
)

// TestSuggestions_Slack is issue 18's agent side through a running omnigate:
// a web visitor's question gets the knowledge base's suggestions in its
// Slack thread; Send on the first one reaches the visitor as the agent's
// reply; Edit opens a modal with the text, and what the agent submits
// reaches the visitor; /omni answer fills {{ticket.number}} once a ticket
// exists, and refuses an unknown name or a variable without a value with a
// clear answer to the agent only; /omni tag tags the conversation, which the
// card shows.
func TestSuggestions_Slack(t *testing.T) {
	kbDir := t.TempDir()
	for name, text := range map[string]string{
		"card.md":   "---\ntitle: Card delivery\nquestions: [my card has not arrived, where is my new card]\n---\nCards arrive within **5 working days** of the order.",
		"pin.md":    "---\ntitle: Reset your PIN\nquestions: [I forgot my PIN]\n---\nOpen the app, then Card > PIN.",
		"ticket.md": "---\nname: ticket-ack\n---\nWe opened ticket {{ticket.number}} for you.",
		"hello.md":  "---\nname: hello\n---\nHello {{contact.name}}!",
	} {
		if err := os.WriteFile(filepath.Join(kbDir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := startLoop(t, "http", []string{"web"}, "insight:\n  knowledge_base: "+kbDir+"\n")
	cust := g.chatCustomer(t, "web")
	cust.write(t, "Hello, my new card has still not arrived")
	root := g.waitRoot(t, slackfake.ChannelSupport)
	conv := regexp.MustCompile("`([0-9A-HJKMNP-TV-Z]{26})`").FindStringSubmatch(root.Blocks)[1]

	// The suggestions, in the thread.
	sugg := g.waitPost(t, root.TS, "Suggested replies")
	if !strings.Contains(sugg.Blocks, "Card delivery") || !strings.Contains(sugg.Blocks, "*5 working days*") {
		t.Fatalf("suggestions %s", sugg.Blocks)
	}
	value := firstSuggestion(t, sugg.Blocks)
	g.click(t, sugg.Channel, sugg.TS, "omni_suggest_send", value)
	if got := cust.waitReply(t); got != "Cards arrive within 5 working days of the order." {
		t.Errorf("the visitor received %q", got)
	}
	g.waitInThread(t, root.TS, "sent a suggested reply")

	// Edit: a modal with the text; what the agent submits is sent.
	cust.write(t, "I forgot my PIN too")
	var pinSugg slackfake.Call
	bustest.Eventually(t, 20*time.Second, func() error {
		for _, p := range g.slack.Calls("chat.postMessage") {
			if p.ThreadTS == root.TS && strings.Contains(p.Text, "1. Reset your PIN") {
				pinSugg = p
				return nil
			}
		}
		return fmt.Errorf("no PIN suggestion")
	})
	pinValue := firstSuggestion(t, pinSugg.Blocks)
	g.click(t, pinSugg.Channel, pinSugg.TS, "omni_suggest_edit", pinValue)
	bustest.Eventually(t, 20*time.Second, func() error {
		for _, v := range g.slack.Calls("views.open") {
			if strings.Contains(v.Blocks, "Open the app, then Card > PIN.") && strings.Contains(v.Blocks, pinValue) {
				return nil
			}
		}
		return fmt.Errorf("no Edit modal: %v", g.slack.Calls("views.open"))
	})
	sub := slackfake.ViewSubmission(slackfake.AgentUser, "omni_suggest_edit", pinValue, "omni_suggest_text", "text", "Open the app, then Card > PIN. It takes a minute.")
	if code, body := slackfake.Post(t, g.base, "interactivity", slackfake.Form, slackfake.InteractionForm(sub)); code != http.StatusOK {
		t.Fatalf("view submission answered %d %s", code, body)
	}
	bustest.Eventually(t, 20*time.Second, func() error {
		if got := cust.received(); len(got) < 2 || got[1] != "Open the app, then Card > PIN. It takes a minute." {
			return fmt.Errorf("the visitor received %q", got)
		}
		return nil
	})

	// /omni answer: unknown names and values are told the agent only.
	if say := g.command(t, root.Channel, "answer nope"); !strings.Contains(say, "no canned answer `nope`") || !strings.Contains(say, "hello, ticket-ack") {
		t.Errorf("/omni answer nope: %q", say)
	}
	if say := g.command(t, root.Channel, "answer hello "+conv); !strings.Contains(say, "no value for {{contact.name}}") {
		t.Errorf("/omni answer hello without a name: %q", say)
	}
	if say := g.command(t, root.Channel, "answer ticket-ack"); !strings.Contains(say, "no value for {{ticket.number}}") {
		t.Errorf("/omni answer ticket-ack without a ticket: %q", say)
	}
	g.click(t, root.Channel, root.TS, "omni_ticket", conv)
	g.waitCard(t, root.TS, "Tickets")
	if say := g.command(t, root.Channel, "answer ticket-ack"); !strings.Contains(say, "is in the thread") {
		t.Fatalf("/omni answer ticket-ack: %q", say)
	}
	canned := g.waitPost(t, root.TS, "Canned answer")
	ticket := regexp.MustCompile(`We opened ticket (\S+) for you\.`).FindStringSubmatch(canned.Blocks)
	if ticket == nil || strings.Contains(ticket[1], "{{") {
		t.Fatalf("canned answer not filled: %s", canned.Blocks)
	}
	g.click(t, canned.Channel, canned.TS, "omni_suggest_send", firstSuggestion(t, canned.Blocks))
	bustest.Eventually(t, 20*time.Second, func() error {
		got := cust.received()
		if !slices.Contains(got, "We opened ticket "+ticket[1]+" for you.") {
			return fmt.Errorf("the visitor received %q", got)
		}
		return nil
	})

	// /omni tag: the conversation's tags, on the card.
	if say := g.command(t, root.Channel, "tag VIP,refund"); !strings.Contains(say, "`refund` `vip`") {
		t.Errorf("/omni tag: %q", say)
	}
	g.waitCard(t, root.TS, "*Tags*", "`refund` `vip`")
	g.waitInThread(t, root.TS, "changed the tags: added `refund` `vip`")
	g.command(t, root.Channel, "untag refund")
	g.waitCard(t, root.TS, "*Tags*\\n`vip`")
}

// waitPost waits for a post in thread ts whose text contains text.
func (g *loop) waitPost(t *testing.T, ts, text string) slackfake.Call {
	t.Helper()
	var got slackfake.Call
	bustest.Eventually(t, 20*time.Second, func() error {
		for _, p := range g.slack.Calls("chat.postMessage") {
			if p.ThreadTS == ts && strings.Contains(p.Text, text) {
				got = p
				return nil
			}
		}
		return fmt.Errorf("nothing with %q in thread %s", text, ts)
	})
	return got
}

// firstSuggestion is the value of the first Send button in blocks.
func firstSuggestion(t *testing.T, blocks string) string {
	t.Helper()
	v, ok := slackfake.ButtonValue(blocks, "omni_suggest_send")
	if !ok {
		t.Fatalf("no Send button in %s", blocks)
	}
	return v
}

// command runs /omni text as the agent in channel and returns the answer
// shown to them only.
func (g *loop) command(t *testing.T, channel, text string) string {
	t.Helper()
	code, body := slackfake.Post(t, g.base, "commands", slackfake.Form, []byte(slackfake.Command(slackfake.AgentUser, channel, text).Encode()))
	var cr struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal([]byte(body), &cr); code != http.StatusOK || err != nil || cr.ResponseType != "ephemeral" {
		t.Fatalf("/omni %s answered %d %s", text, code, body)
	}
	return cr.Text
}
