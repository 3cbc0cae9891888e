package pipeline_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
)

const (
	ann      = core.Identity("email:ann@example.com")
	annPhone = core.Identity("sms:+15551234567")
	annWeb   = core.Identity("web:v1")
)

// TestPipeline_SessionContinuity: a customer on web chat, then SMS, then email
// stays in one conversation of one contact, and replies go where she wrote last
// unless the agent picks a channel.
func TestPipeline_SessionContinuity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, pipeline.Config{})

		e.publishIn(customer(annWeb, "hi from the web", event.MetaVerifiedEmail, "ann@Example.com", event.MetaVerifiedPhone, "+15551234567"))
		e.desk(1)
		e.publishIn(customer(annPhone, "texting now"))
		e.desk(2)
		e.publishIn(customer(ann, "and an email"))
		desk := e.desk(3)

		conv := desk[0].ConversationID
		contact := desk[0].ContactID
		for i, m := range desk {
			if m.ConversationID != conv || m.ContactID != contact {
				t.Errorf("desk message %d in conversation %s of contact %s, want %s of %s", i, m.ConversationID, m.ContactID, conv, contact)
			}
			if got, want := m.Meta[event.MetaConversationOpened] == "true", i == 0; got != want {
				t.Errorf("desk message %d: conversation_opened %v, want %v", i, got, want)
			}
		}
		if got, want := texts(desk), []string{"hi from the web", "texting now", "and an email"}; !slices.Equal(got, want) {
			t.Errorf("desk texts = %q, want %q", got, want)
		}
		for _, id := range []core.Identity{annWeb, annPhone, ann, "whatsapp:+15551234567"} {
			if c := e.contactOf(id); c.ID != contact {
				t.Errorf("%s belongs to contact %s, want %s", id, c.ID, contact)
			}
		}
		open := e.openOf(contact)
		if open.ID != conv || open.LastChannel != "email" || open.LastIdentity != ann || open.Channel != "web" {
			t.Errorf("open conversation = %s last %s/%s started on %s, want %s last email/%s started on web",
				open.ID, open.LastChannel, open.LastIdentity, open.Channel, conv, ann)
		}

		// The agent answers: by default where Ann wrote last.
		e.publishDesk(reply(conv, "thanks Ann"))
		out := e.waitMessages(bus.StreamOut, bus.SubjectOut("email"), 1)[0]
		if out.To != ann || out.Channel != "email" || out.ContactID != contact || out.ConversationID != conv ||
			out.Meta[event.MetaDesk] != "slack" || out.Text != "thanks Ann" {
			t.Errorf("reply = channel %s to %s contact %s conversation %s desk %q text %q", out.Channel, out.To,
				out.ContactID, out.ConversationID, out.Meta[event.MetaDesk], out.Text)
		}
		// Or by SMS when asked.
		e.publishDesk(reply(conv, "texting you back", event.MetaReplyVia, "sms"))
		out = e.waitMessages(bus.StreamOut, bus.SubjectOut("sms"), 1)[0]
		if out.To != annPhone || out.Channel != "sms" {
			t.Errorf("reply via sms = channel %s to %s, want sms to %s", out.Channel, out.To, annPhone)
		}

		tr := e.transcript(conv)
		if got, want := texts(tr), []string{"hi from the web", "texting now", "and an email", "thanks Ann", "texting you back"}; !slices.Equal(got, want) {
			t.Errorf("transcript = %q, want %q", got, want)
		}
		e.wantNoDeadLetters()
	})
}

// TestPipeline_OneContactConcurrentIdentities: one contact writing from four
// identities at once ends in one conversation with every message once.
func TestPipeline_OneContactConcurrentIdentities(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	ids := []core.Identity{"sms:+15557654321", "whatsapp:+15557654321", "email:bob@example.com", "web:bob"}
	if err := e.st.CreateContact(e.ctx, &store.Contact{Identities: ids}); err != nil {
		t.Fatal(err)
	}
	const perIdentity = 50
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			for i := range perIdentity {
				m := customer(id, fmt.Sprintf("%s %02d", id, i))
				if _, err := e.bus.PublishMessage(e.ctx, bus.SubjectIn(m.Channel, string(m.From)), m); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	desk := e.desk(len(ids) * perIdentity)
	conv := desk[0].ConversationID
	for _, m := range desk {
		if m.ConversationID != conv {
			t.Fatalf("message %q in conversation %s, want %s", m.Text, m.ConversationID, conv)
		}
	}
	tr := e.transcript(conv)
	if len(tr) != len(ids)*perIdentity {
		t.Fatalf("transcript holds %d entries, want %d", len(tr), len(ids)*perIdentity)
	}
	// Each identity's messages are in the order it sent them, each once.
	for _, id := range ids {
		var got []string
		for _, m := range tr {
			if m.From == id {
				got = append(got, m.Text)
			}
		}
		want := make([]string, perIdentity)
		for i := range want {
			want[i] = fmt.Sprintf("%s %02d", id, i)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s in transcript: %q, want %q", id, got, want)
		}
	}
	e.wantNoDeadLetters()
}

// rawEnvelope is an envelope as JSON, for inputs Encode would refuse.
func rawEnvelope(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	env := map[string]any{
		"v": 1, "id": core.NewID(), "kind": "message", "direction": "inbound", "channel": "sms",
		"from": "sms:+15550001111", "text": "hello",
	}
	for k, v := range fields {
		if v == nil {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipeline_DeadLetters: what cannot be handled goes to the DLQ with its reason,
// and the partition carries on with the next message.
func TestPipeline_DeadLetters(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{Channels: []string{"web", "sms", "email"}})
	good := core.Identity("sms:+15550001111")
	part := strconv.Itoa(bus.PartitionOf(string(good)))
	sms := "omni.in.sms." + part

	unknown := customer("fax:+15550001111", "a fax")
	unknownData, _ := unknown.Encode()
	spoof := customer("email:ceo@example.com", "hi")
	spoof.Channel = "sms"
	spoofData, _ := spoof.Encode()
	badEvent := deskEvent("conversation.teleport", core.NewID())
	badEventData, _ := badEvent.Encode()
	outbound := customer(good, "outbound on a customer channel")
	outbound.Direction, outbound.To = core.Outbound, good
	outboundData, _ := outbound.Encode()

	cases := []struct {
		name, subject string
		data          []byte
		reason        string
	}{
		{"no sender", sms, rawEnvelope(t, map[string]any{"from": nil}), "no sender identity"},
		{"unknown channel", "omni.in.fax." + part, unknownData, `unknown channel "fax"`},
		{"oversized text", sms, rawEnvelope(t, map[string]any{"text": strings.Repeat("x", core.MaxTextBytes+1)}), "text: 65537 bytes"},
		{"invalid field", sms, rawEnvelope(t, map[string]any{"kind": "telegram"}), "kind"},
		{"newer version", sms, rawEnvelope(t, map[string]any{"v": 2}), "unsupported envelope version"},
		{"garbage", sms, []byte("\x00\xff not json at all"), "invalid envelope"},
		{"sender on another channel", sms, spoofData, `sender identity is on channel "email"`},
		{"outbound on customer channel", sms, outboundData, "replies come from a desk"},
		{"unknown desk event", "omni.in.slack." + part, badEventData, `unknown desk command "conversation.teleport"`},
	}
	for i, c := range cases {
		e.publishRaw(c.subject, c.data, fmt.Sprintf("bad-%d", i))
	}
	e.publishIn(customer(good, "still here"))
	if desk := e.desk(1); desk[0].Text != "still here" {
		t.Fatalf("desk got %q", desk[0].Text)
	}

	var dls []bus.DeadLetter
	bustest.Eventually(t, 10*time.Second, func() error {
		if dls = e.deadLetters(); len(dls) != len(cases) {
			return fmt.Errorf("%d dead letters, want %d", len(dls), len(cases))
		}
		return nil
	})
	// Different senders' messages are handled concurrently, so dead letters
	// come in any order: match them by their data.
	for _, c := range cases {
		i := slices.IndexFunc(dls, func(dl bus.DeadLetter) bool { return string(dl.Data) == string(c.data) })
		if i < 0 {
			t.Errorf("%s: no dead letter holds what was published", c.name)
			continue
		}
		dl := dls[i]
		if dl.Subject != c.subject || !strings.Contains(dl.Error, c.reason) || dl.Stage != pipeline.Stage {
			t.Errorf("%s: dead letter on %s stage %s reason %q, want on %s reason containing %q", c.name, dl.Subject, dl.Stage, dl.Error, c.subject, c.reason)
		}
	}
}

// TestPipeline_Redelivery: the same envelope delivered twice (past the bus's
// deduplication) is appended and shown once.
func TestPipeline_Redelivery(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	from := core.Identity("telegram:42")
	m := customer(from, "once")
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	subj := bus.SubjectIn("telegram", string(from))
	e.publishRaw(subj, data, "first")
	e.publishRaw(subj, data, "second") // a replay with another dedup id
	e.publishIn(customer(from, "after"))
	desk := e.desk(2)
	if got, want := texts(desk), []string{"once", "after"}; !slices.Equal(got, want) {
		t.Fatalf("desk = %q, want %q", got, want)
	}
	if got := texts(e.transcript(desk[0].ConversationID)); !slices.Equal(got, []string{"once", "after"}) {
		t.Fatalf("transcript = %q", got)
	}
	e.wantNoDeadLetters()
}

// TestPipeline_Reopen: a message within the reopen window reopens the closed
// conversation; after it, a new conversation points back to the old one.
func TestPipeline_Reopen(t *testing.T) {
	clk := newClock()
	e := newEnv(t, kvBackend(), pipeline.Config{ReopenWindow: 24 * time.Hour}, clk.Now)
	from := core.Identity("sms:+15550002222")

	e.publishIn(customer(from, "first"))
	first := e.desk(1)[0]
	a := first.ConversationID
	if first.Meta[event.MetaConversationOpened] != "true" || first.Meta[event.MetaPreviousConversation] != "" {
		t.Fatalf("first message meta = %v", first.Meta)
	}

	e.publishDesk(deskEvent(event.ConversationClose, a))
	closed := e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationClosed), 1)[0]
	if closed.ConversationID != a || closed.ContactID != first.ContactID {
		t.Fatalf("closed event for %s of %s, want %s of %s", closed.ConversationID, closed.ContactID, a, first.ContactID)
	}
	if c, err := e.st.Conversation(e.ctx, a); err != nil || c.State != store.StateClosed {
		t.Fatalf("conversation after close: %+v, %v", c, err)
	}

	clk.Advance(time.Hour)
	e.publishIn(customer(from, "back again"))
	again := e.desk(2)[1]
	if again.ConversationID != a || again.Meta[event.MetaConversationOpened] != "true" {
		t.Fatalf("message within the window: conversation %s opened %q, want %s reopened", again.ConversationID, again.Meta[event.MetaConversationOpened], a)
	}

	e.publishDesk(deskEvent(event.ConversationClose, a))
	e.waitMessages(bus.StreamEvt, bus.SubjectEvt(event.ConversationClosed), 2)
	clk.Advance(25 * time.Hour)
	e.publishIn(customer(from, "much later"))
	later := e.desk(3)[2]
	b := later.ConversationID
	if b == a || later.Meta[event.MetaConversationOpened] != "true" || later.Meta[event.MetaPreviousConversation] != a {
		t.Fatalf("message after the window: conversation %s meta %v, want a new one after %s", b, later.Meta, a)
	}
	conv, err := e.st.Conversation(e.ctx, b)
	if err != nil || conv.Previous != a || conv.State != store.StateOpen {
		t.Fatalf("new conversation = %+v, %v", conv, err)
	}
	if got := texts(e.transcript(a)); !slices.Equal(got, []string{"first", "back again"}) {
		t.Errorf("transcript of %s = %q", a, got)
	}
	if got := texts(e.transcript(b)); !slices.Equal(got, []string{"much later"}) {
		t.Errorf("transcript of %s = %q", b, got)
	}
	e.wantNoDeadLetters()
}

// TestPipeline_ThreadKeys: a reply in a known email thread from another address
// joins the thread's contact and conversation; a sender who had a contact of its
// own is merged into it.
func TestPipeline_ThreadKeys(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	first := customer("email:ann@example.com", "new thread")
	first.External.Thread = "<root@mail.example.com>"
	e.publishIn(first)
	conv := e.desk(1)[0].ConversationID

	// A colleague answers in the thread: In-Reply-To/References as thread keys.
	cc := customer("email:bea@example.com", "reply all", event.MetaThreadKeys, "<other@x>, <root@mail.example.com>")
	e.publishIn(cc)
	if got := e.desk(2)[1]; got.ConversationID != conv {
		t.Fatalf("thread reply in conversation %s, want %s", got.ConversationID, conv)
	}
	if e.contactOf("email:bea@example.com").ID != e.contactOf("email:ann@example.com").ID {
		t.Fatal("thread reply did not join the thread's contact")
	}

	// Someone with a contact of their own replies with the plus-address token.
	e.publishIn(customer("email:cy@example.com", "my own question"))
	cyConv := e.desk(3)[2].ConversationID
	e.publishIn(customer("email:cy@example.com", "about that thread", event.MetaThreadKeys, "<root@mail.example.com>"))
	got := e.desk(5) // the merge event and the message
	var merged, msg *core.Message
	for _, m := range got[3:] {
		if m.Kind == core.KindEvent {
			merged = m
		} else {
			msg = m
		}
	}
	if merged == nil || msg == nil {
		t.Fatalf("desk got %d more envelopes, want a merge event and a message", len(got)-3)
	}
	annContact := e.contactOf("email:ann@example.com").ID
	if merged.Type != event.ContactMerged || merged.Meta[event.MetaContact] != annContact ||
		merged.Meta[event.MetaReason] != "thread" || merged.Meta[event.MetaClosedConversation] != cyConv ||
		merged.Meta[event.MetaConversation] != conv {
		t.Errorf("merge event = %s %v", merged.Type, merged.Meta)
	}
	if msg.ConversationID != conv || e.contactOf("email:cy@example.com").ID != annContact {
		t.Errorf("merged sender's message in %s, want %s", msg.ConversationID, conv)
	}

	// An agent's reply goes out by email; an answer citing it (a plus-addressed
	// reply token made from the envelope id) from a new address joins Ann.
	r := reply(conv, "we are on it")
	e.publishDesk(r)
	e.waitMessages(bus.StreamOut, bus.SubjectOut("email"), 1)
	e.publishIn(customer("email:dee@example.com", "answering the agent", event.MetaThreadKeys, r.ID))
	if got := e.desk(6)[5]; got.ConversationID != conv || got.ContactID != annContact {
		t.Errorf("answer to the reply in %s of %s, want %s of %s", got.ConversationID, got.ContactID, conv, annContact)
	}
	e.wantNoDeadLetters()
}

// TestPipeline_PhoneSiblings: the same number on SMS and WhatsApp is one contact,
// joined when it first appears and merged when both had contacts.
func TestPipeline_PhoneSiblings(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	e.publishIn(customer("sms:+15550003333", "by sms"))
	e.desk(1)
	e.publishIn(customer("whatsapp:+15550003333", "by whatsapp"))
	desk := e.desk(2)
	if desk[0].ConversationID != desk[1].ConversationID || desk[0].ContactID != desk[1].ContactID {
		t.Fatalf("sms and whatsapp of one number in %s/%s and %s/%s", desk[0].ContactID, desk[0].ConversationID, desk[1].ContactID, desk[1].ConversationID)
	}

	// Two contacts made before the rule (imported): the next message merges them.
	ctx := e.ctx
	older := &store.Contact{Identities: []core.Identity{"whatsapp:+15550004444"}}
	if err := e.st.CreateContact(ctx, older); err != nil {
		t.Fatal(err)
	}
	newer := &store.Contact{Identities: []core.Identity{"sms:+15550004444"}, CreatedAt: older.CreatedAt.Add(time.Second)}
	if err := e.st.CreateContact(ctx, newer); err != nil {
		t.Fatal(err)
	}
	e.publishIn(customer("sms:+15550004444", "merge us"))
	got := e.desk(4)[2:]
	if got[0].Type != event.ContactMerged || got[0].Meta[event.MetaContact] != older.ID ||
		got[0].Meta[event.MetaMergedContact] != newer.ID || got[0].Meta[event.MetaReason] != "phone" {
		t.Errorf("merge event = %s %v, want %s merged into %s", got[0].Type, got[0].Meta, newer.ID, older.ID)
	}
	if got[1].ContactID != older.ID {
		t.Errorf("message of contact %s, want the survivor %s", got[1].ContactID, older.ID)
	}
	if e.contactOf("sms:+15550004444").ID != older.ID {
		t.Error("sms identity not on the survivor")
	}
	e.wantNoDeadLetters()
}

// TestPipeline_VerifiedUser: a signed-in account id joins web and app visitors.
func TestPipeline_VerifiedUser(t *testing.T) {
	e := newEnv(t, kvBackend(), pipeline.Config{})
	e.publishIn(customer("web:visitor-1", "from the site", event.MetaVerifiedUser, "acct-77"))
	e.desk(1)
	e.publishIn(customer("app:device-9", "from the app", event.MetaVerifiedUser, "acct-77", event.MetaVerifiedEmail, "not an address"))
	desk := e.desk(2)
	if desk[0].ContactID != desk[1].ContactID || desk[0].ConversationID != desk[1].ConversationID {
		t.Fatal("web and app of one account are not one contact and conversation")
	}
	if c := e.contactOf("user:acct-77"); c.ID != desk[0].ContactID {
		t.Errorf("user identity on %s", c.ID)
	}
	e.wantNoDeadLetters()
}
