// Package suggest suggests replies to agents: for each customer message it
// searches the knowledge base (insight/kb) and publishes the best answers to
// the desks as a "suggestions" event, which the Slack desk shows in the
// conversation's thread with Send and Edit. It learns from resolved
// conversations: the customer questions of a closed conversation and the
// agent replies that answered them become answers it suggests too. It also
// publishes the knowledge base's canned answers in the store
// (canned.Records), where desks read them by name.
//
// The suggester owns the knowledge base index and its store records
// (insight_answers, insight_conv, insight_learned); nothing else writes them.
package suggest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/canned"
	"github.com/omnigate/omnigate/core/event"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/insight/kb"
)

// Deps are what a Suggester runs on besides its Config.
type Deps struct {
	// Bus and Store are required.
	Bus   *bus.Bus
	Store *store.Store
	// Desks are the desks suggestions go to. Default: slack.
	Desks []string
	// Logger receives the suggester's logs; no message text above debug.
	// Default: discard.
	Logger *slog.Logger
}

// Durable consumer names and the stage of the suggester's dead letters.
const (
	// DurableTranscript consumes the transcripts (stream OMNI_CONV).
	DurableTranscript = "insight-suggest"
	// DurableEvents consumes conversation.closed (stream OMNI_EVT).
	DurableEvents = "insight-suggest-events"
	// Stage names the dead letters: omni.dlq.insight.
	Stage = "insight"
)

// Record buckets of the suggester.
const (
	// recordsConv holds, per open conversation, the customer questions not
	// answered yet and the question-answer pairs so far.
	recordsConv = "insight_conv"
	// recordsLearned holds the learned answers, one kb.Article under
	// "<closed at, 20 digits>:<conversation>:<n>", oldest first by key.
	recordsLearned = "insight_learned"
)

// Bounds on what is learned from one conversation.
const (
	maxPairsPerConversation = 20
	maxQuestionBytes        = 2000
	// minAnswerRunes: shorter agent replies ("ok", "one moment") teach
	// nothing.
	minAnswerRunes = 20
	// convTTL is how long a conversation's pending pairs are kept when it
	// never closes.
	convTTL = 30 * 24 * time.Hour
)

// Suggester is the suggested-replies component. Build it with New.
type Suggester struct {
	cfg   Config
	bus   *bus.Bus
	log   *slog.Logger
	desks []string
	kb    *kb.KB

	answers, convs, learned *store.Records

	mu          sync.Mutex // guards learnedKeys
	learnedKeys string     // the learned keys last read, joined
}

// New builds a Suggester and reads the knowledge base of cfg (which must be
// set: cfg.Enabled). Articles it cannot read are logged and skipped; a path
// that cannot be read is an error.
func New(cfg Config, deps Deps) (*Suggester, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("suggest: no knowledge_base configured")
	}
	if deps.Bus == nil || deps.Store == nil {
		return nil, errors.New("suggest: deps: Bus and Store are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, problems, err := kb.Open(cfg.KnowledgeBase)
	if err != nil {
		return nil, fmt.Errorf("suggest: knowledge_base: %w", err)
	}
	logProblems(log, problems)
	s := &Suggester{
		cfg: cfg, bus: deps.Bus, log: log, desks: slices.Clone(deps.Desks), kb: k,
		answers: deps.Store.Records(canned.Records),
		convs:   deps.Store.Records(recordsConv),
		learned: deps.Store.Records(recordsLearned),
	}
	if len(s.desks) == 0 {
		s.desks = []string{"slack"}
	}
	return s, nil
}

// logProblems warns of each article the knowledge base skipped.
func logProblems(log *slog.Logger, problems []error) {
	for _, p := range problems {
		log.Warn("knowledge base article skipped: fix it, it is read again when it changes", "err", p)
	}
}

// Index is the knowledge base's current index.
func (s *Suggester) Index() *kb.Index { return s.kb.Index() }

// Run publishes the canned answers, then suggests replies for the customer
// messages of the transcripts, learns from closed conversations and reloads
// the knowledge base when it changes, until ctx is done; then it stops its
// consumers and returns nil. It returns an error, having started nothing,
// when a consumer cannot be created. Call it once.
func (s *Suggester) Run(ctx context.Context) error {
	if err := s.publishAnswers(ctx); err != nil {
		s.log.Warn("canned answers not published; retried on the next reload", "err", err)
	}
	if err := s.loadLearned(ctx); err != nil {
		s.log.Warn("learned answers not read; retried on the next reload", "err", err)
	}
	g := bus.NewGroup(s.bus, s.log)
	g.Handle(bus.ConsumerSpec{
		Stream:     bus.StreamConv,
		Durable:    DurableTranscript,
		Filters:    []string{bus.RootConv + ".>"},
		Stage:      Stage,
		DeliverNew: true,
	}, s.handleTranscript)
	if *s.cfg.Learn {
		g.Handle(bus.ConsumerSpec{
			Stream:     bus.StreamEvt,
			Durable:    DurableEvents,
			Filters:    []string{bus.SubjectEvt(event.ConversationClosed)},
			Stage:      Stage,
			DeliverNew: true,
		}, s.handleClosed)
	}
	g.Go(s.reloadLoop)
	s.log.Info("suggestions running", "knowledge_base", s.cfg.KnowledgeBase, "articles", s.kb.Index().Len(), "learn", *s.cfg.Learn)
	if err := g.Run(ctx); err != nil {
		return fmt.Errorf("suggest: %w", err)
	}
	s.log.Info("suggestions stopped")
	return nil
}

// reloadLoop reads the knowledge base again when its files change, and the
// answers learned (by any replica), every cfg.Reload.
func (s *Suggester) reloadLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed, problems, err := s.kb.Reload()
		switch {
		case err != nil:
			s.log.Warn("knowledge base not read again; the articles read before stay in use", "err", err)
		case changed:
			logProblems(s.log, problems)
			s.log.Info("knowledge base read again", "articles", s.kb.Index().Len())
			if err := s.publishAnswers(ctx); err != nil {
				s.log.Warn("canned answers not published", "err", err)
			}
		}
		if *s.cfg.Learn {
			if err := s.loadLearned(ctx); err != nil {
				s.log.Warn("learned answers not read", "err", err)
			}
		}
	}
}

// publishAnswers writes every canned answer of the knowledge base to
// canned.Records and removes the names it no longer has.
func (s *Suggester) publishAnswers(ctx context.Context) error {
	want := map[string]canned.Answer{}
	for _, a := range s.kb.Index().Articles() {
		if a.Name != "" && !a.Learned {
			want[a.Name] = canned.Answer{Name: a.Name, Title: a.Title, Lang: a.Lang, Article: a.ID, Text: a.Answer}
		}
	}
	var errs []error
	for name, ans := range want {
		var cur canned.Answer
		if _, err := s.answers.Update(ctx, name, &cur, 0, func(bool) error {
			if cur == ans {
				return store.ErrSkip
			}
			cur = ans
			return nil
		}); err != nil {
			errs = append(errs, err)
		}
	}
	keys, err := s.answers.Keys(ctx, "")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, k := range keys {
		if _, ok := want[k]; !ok {
			if err := s.answers.Delete(ctx, k, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// handleTranscript handles one transcript entry: a customer message gets
// suggestions and waits for its answer; an agent's reply answers the
// customer's questions before it.
func (s *Suggester) handleTranscript(ctx context.Context, d *bus.Delivery) error {
	m, err := d.Message()
	if err != nil {
		return err
	}
	if m.Kind != core.KindMessage || m.ConversationID == "" || strings.TrimSpace(m.Text) == "" {
		return nil
	}
	switch {
	case m.Direction == core.Inbound:
		if err := s.suggest(ctx, m); err != nil {
			return err
		}
		return s.remember(ctx, m, func(c *convRecord) { c.question(m.Text) })
	case m.Meta[event.MetaAuto] == "" && slices.Contains(s.desks, m.From.Channel()):
		if m.Meta[event.MetaArticle] != "" {
			// Sent from the knowledge base: answered, nothing new to learn.
			return s.remember(ctx, m, func(c *convRecord) { c.Pending = nil })
		}
		return s.remember(ctx, m, func(c *convRecord) { c.answer(m.Text) })
	}
	return nil
}

// suggest publishes the suggestions for customer message m to every desk;
// none when the knowledge base has nothing for it.
func (s *Suggester) suggest(ctx context.Context, m *core.Message) error {
	var out []canned.Suggestion
	for _, h := range s.kb.Index().Search(m.Text, 3*s.cfg.Suggestions) {
		a := h.Article
		if m.Language != "" && a.Lang != "" && !sameLanguage(a.Lang, m.Language) {
			continue
		}
		if slices.ContainsFunc(out, func(s canned.Suggestion) bool { return s.Text == a.Answer }) {
			continue // learned twice, or an article and an agent's copy of it
		}
		out = append(out, canned.Suggestion{Article: a.ID, Title: a.Title, Name: a.Name, Text: a.Answer, Learned: a.Learned})
		if len(out) == s.cfg.Suggestions {
			break
		}
	}
	if len(out) == 0 {
		s.log.Debug("nothing to suggest", "msg_id", m.ID, "conversation", m.ConversationID)
		return nil
	}
	for _, desk := range s.desks {
		ev := core.NewMessage(core.KindEvent, core.Inbound, desk)
		ev.ID = core.NewID()
		ev.Type = event.Suggestions
		ev.ConversationID, ev.ContactID = m.ConversationID, m.ContactID
		ev.ReplyTo = m.ID
		ev.Meta = map[string]string{event.MetaSuggestions: canned.EncodeSuggestions(out)}
		if _, err := s.bus.PublishMessage(ctx, bus.SubjectDesk(desk), ev, bus.WithMsgID("desk:"+desk+":suggestions:"+m.ID)); err != nil {
			return fmt.Errorf("suggest: publish suggestions for %s: %w", m.ID, err)
		}
	}
	s.log.Debug("suggested", "msg_id", m.ID, "conversation", m.ConversationID, "suggestions", len(out))
	return nil
}

// sameLanguage reports whether language tags a and b have the same base
// (zh-CN and zh).
func sameLanguage(a, b string) bool {
	base := func(s string) string {
		s, _, _ = strings.Cut(strings.ToLower(s), "-")
		return s
	}
	return base(a) == base(b)
}
