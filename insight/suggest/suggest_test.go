package suggest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/bus/bustest"
	"github.com/omnigate/omnigate/core/canned"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/pipeline"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/insight/suggest"
)

const wait = 10 * time.Second

// world is a real JetStream, the store on it, the pipeline and a suggester.
type world struct {
	t   *testing.T
	bus *bus.Bus
	st  *store.Store
	dir string
	s   *suggest.Suggester
}

func newWorld(t *testing.T, files map[string]string) *world {
	t.Helper()
	srv := bustest.RunServer(t)
	b, err := bus.Open(t.Context(), bus.Options{URL: srv.URL(), Consumer: bus.ConsumerDefaults{Backoff: []time.Duration{50 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = b.Close(ctx)
	})
	kv, err := store.NewJetStream(t.Context(), b.JetStream(), store.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(kv, store.Options{})
	t.Cleanup(func() { _ = st.Close() })
	w := &world{t: t, bus: b, st: st, dir: t.TempDir()}
	for name, text := range files {
		w.write(name, text)
	}
	p, err := pipeline.New(pipeline.Config{Desks: []string{"slack"}}, pipeline.Deps{Bus: b, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	w.run(p.Run)
	w.s, err = suggest.New(suggest.Config{KnowledgeBase: w.dir, Reload: 100 * time.Millisecond}, suggest.Deps{Bus: b, Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w.run(w.s.Run)
	bustest.Eventually(t, wait, func() error {
		_, err := b.JetStream().Consumer(t.Context(), bus.StreamConv, suggest.DurableTranscript)
		return err
	})
	return w
}

// run runs fn until the test ends.
func (w *world) run(fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("run: %v", err)
		}
	})
}

func (w *world) write(name, text string) {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		w.t.Fatal(err)
	}
	later := time.Now().Add(time.Duration(len(text)) * time.Second)
	_ = os.Chtimes(p, later, later)
}

// customer publishes what a web visitor wrote.
func (w *world) customer(from core.Identity, text string) *core.Message {
	w.t.Helper()
	m := core.NewMessage(core.KindMessage, core.Inbound, from.Channel())
	m.From, m.Text = from, text
	m.External.Message = "p-" + m.ID
	if _, err := w.bus.PublishMessage(w.t.Context(), bus.SubjectIn(m.Channel, string(from)), m); err != nil {
		w.t.Fatal(err)
	}
	return m
}

// desk publishes what an agent did in Slack for the pipeline.
func (w *world) desk(m *core.Message) {
	w.t.Helper()
	if _, err := w.bus.PublishMessage(w.t.Context(), bus.SubjectIn("slack", m.ConversationID), m); err != nil {
		w.t.Fatal(err)
	}
}

// suggestions waits for the suggestions for customer message m on the
// slack desk.
func (w *world) suggestions(m *core.Message) []canned.Suggestion {
	w.t.Helper()
	var out []canned.Suggestion
	bustest.Eventually(w.t, wait, func() error {
		for _, ev := range w.onDesk() {
			if ev.Type == event.Suggestions && ev.ReplyTo == m.ID {
				var err error
				out, err = canned.DecodeSuggestions(ev.Meta[event.MetaSuggestions])
				return err
			}
		}
		return fmt.Errorf("no suggestions for %q", m.Text)
	})
	return out
}

// onDesk is everything on omni.desk.slack.
func (w *world) onDesk() []*core.Message {
	w.t.Helper()
	ctx := w.t.Context()
	s, err := w.bus.JetStream().Stream(ctx, bus.StreamDesk)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []*core.Message
	info, err := s.Info(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m, err := core.Decode(raw.Data); err == nil && raw.Subject == bus.SubjectDesk("slack") {
			out = append(out, m)
		}
	}
	return out
}

// TestSuggester: a customer's question gets the knowledge base's best
// answers, canned answers are published by name and follow the files, and
// an agent's answer in a conversation that closes is suggested for the next
// customer who asks the same.
func TestSuggester(t *testing.T) {
	w := newWorld(t, map[string]string{
		"card.md":   "---\ntitle: Card delivery\nname: card-arrival\nquestions: [my card has not arrived, when will my card come]\n---\nHi {{contact.name}}, cards arrive within 5 working days.",
		"pin.md":    "---\nname: pin\nquestions: [I forgot my PIN, reset my pin]\n---\nOpen the app: Card, then PIN.",
		"refund.md": "---\nlang: zh\nquestions: [我要退款]\n---\n退款会在3个工作日内到账。",
	})
	ann := core.Identity("web:v-ann")
	m := w.customer(ann, "My card still has not arrived, where is it?")
	got := w.suggestions(m)
	if len(got) == 0 || got[0].Article != "card.md" || got[0].Name != "card-arrival" || !strings.Contains(got[0].Text, "{{contact.name}}") {
		t.Fatalf("suggestions %+v", got)
	}
	zh := w.customer(core.Identity("web:v-li"), "退款什么时候到账")
	if got := w.suggestions(zh); got[0].Article != "refund.md" {
		t.Errorf("Chinese suggestions %+v", got)
	}

	answers := w.st.Records(canned.Records)
	var a canned.Answer
	if _, err := answers.Get(t.Context(), "card-arrival", &a); err != nil || a.Article != "card.md" || a.Title != "Card delivery" {
		t.Fatalf("canned answer %+v %v", a, err)
	}
	w.write("pin.md", "---\nname: pin-reset\n---\nOpen the app: Card, then PIN. Done.")
	bustest.Eventually(t, wait, func() error {
		if _, err := answers.Get(t.Context(), "pin", &a); err == nil {
			return fmt.Errorf("pin still published")
		}
		_, err := answers.Get(t.Context(), "pin-reset", &a)
		return err
	})

	// Ann's conversation: she asks about paying by cheque, an agent answers,
	// the conversation closes.
	cheque := w.customer(ann, "Can I pay my bill with a paper cheque?")
	w.suggestions(cheque) // the knowledge base knows nothing better; the card answer may come
	conv := m.ConversationID
	bustest.Eventually(t, wait, func() error {
		c, err := w.st.ContactByIdentity(t.Context(), ann)
		if err != nil {
			return err
		}
		open, err := w.st.OpenConversation(t.Context(), c.ID)
		if err != nil {
			return err
		}
		conv = open.ID
		return nil
	})
	reply := core.NewMessage(core.KindMessage, core.Outbound, "slack")
	reply.From, reply.ConversationID = "slack:U1", conv
	reply.Text = "We do not take cheques, sorry: pay by card or bank transfer."
	w.desk(reply)
	closeCmd := core.NewMessage(core.KindEvent, core.Inbound, "slack")
	closeCmd.Type, closeCmd.From, closeCmd.ConversationID = event.ConversationClose, "slack:U1", conv
	w.desk(closeCmd)

	// Learned once the close came through; then the next customer who asks
	// gets the agent's answer.
	bustest.Eventually(t, wait, func() error {
		for _, h := range w.s.Index().Search("do you accept a cheque?", 3) {
			if h.Article.Learned && h.Article.Answer == reply.Text {
				return nil
			}
		}
		return fmt.Errorf("not learned yet")
	})
	bob := w.customer(core.Identity("web:v-bob"), "do you accept a cheque?")
	got = w.suggestions(bob)
	if got[0].Text != reply.Text || !got[0].Learned || !strings.HasPrefix(got[0].Article, "learned:"+conv+":") {
		t.Errorf("suggestions after learning %+v", got)
	}
}
