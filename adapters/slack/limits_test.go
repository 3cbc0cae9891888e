package slack_test

import (
	"testing"
	"time"

	"github.com/omnigate/omnigate/adapters/adaptertest"
	"github.com/omnigate/omnigate/adapters/slack"
	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/store"
)

// TestDesk_ChannelRate keeps to channel_rate per channel: with the bucket of
// the support channel empty, the next message there is handed back to the bus
// (RetryAfter) instead of waiting, while another channel still gets its own.
func TestDesk_ChannelRate(t *testing.T) {
	env := adaptertest.NewEnv(t, slack.Name)
	fake := newFakeSlack(t)
	cfg := testConfig(fake)
	cfg.ChannelRate, cfg.ChannelBurst = 0.1, 2 // a token every 10s
	deps := env.Deps
	deps.Queues = queues
	a, err := slack.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	newConv := func(id core.Identity, queue string) *core.Message {
		c := &store.Contact{Identities: []core.Identity{id}}
		if err := env.Store.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		conv := &store.Conversation{ContactID: c.ID, Channel: id.Channel(), LastChannel: id.Channel(), LastIdentity: id, Queue: queue}
		if err := env.Store.CreateConversation(ctx, conv); err != nil {
			t.Fatal(err)
		}
		m := core.NewMessage(core.KindMessage, core.Inbound, id.Channel())
		m.From, m.Text, m.ConversationID = id, "hi", conv.ID
		return m
	}
	support := newConv(ann, "")
	if _, err := a.Send(ctx, support); err != nil { // card + message: the burst
		t.Fatal(err)
	}
	again := support.Clone()
	again.ID = core.NewID()
	start := time.Now()
	_, err = a.Send(ctx, again)
	if d, ok := bus.RetryDelay(err); !ok || d < 5*time.Second {
		t.Fatalf("Send over the channel's rate = %v, want RetryAfter about 10s", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Send waited %s for the bucket, want it handed back at once", time.Since(start))
	}
	billing := newConv("sms:+15550002222", "billing")
	if _, err := a.Send(ctx, billing); err != nil {
		t.Fatalf("Send to another channel = %v, want its own bucket", err)
	}
	if n := len(fake.Calls("chat.postMessage")); n != 4 {
		t.Errorf("%d messages posted, want 4", n)
	}
}
