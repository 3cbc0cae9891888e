package suggest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
	"github.com/omnigate/omnigate/core/store"
	"github.com/omnigate/omnigate/insight/kb"
)

// convRecord is what the suggester keeps of an open conversation for
// learning: the customer's questions not answered yet, and the pairs of
// questions and the agent reply that answered them.
type convRecord struct {
	// Seen are the envelope ids handled, so a redelivery changes nothing.
	Seen    []string `json:"seen,omitempty"`
	Pending []string `json:"pending,omitempty"`
	Pairs   []pair   `json:"pairs,omitempty"`
}

// pair is one customer question (their messages since the last agent reply,
// joined) and the agent reply that answered it.
type pair struct {
	Question string `json:"q"`
	Answer   string `json:"a"`
}

// maxSeen bounds convRecord.Seen.
const maxSeen = 50

// question adds a customer message to the pending question.
func (c *convRecord) question(text string) {
	if len(strings.Join(c.Pending, "\n")) < maxQuestionBytes {
		c.Pending = append(c.Pending, core.Truncate(strings.TrimSpace(text), maxQuestionBytes))
	}
}

// answer pairs an agent's reply with the pending question, if there is one.
func (c *convRecord) answer(text string) {
	text = strings.TrimSpace(text)
	if len(c.Pending) == 0 || utf8.RuneCountInString(text) < minAnswerRunes || len(c.Pairs) >= maxPairsPerConversation {
		return
	}
	c.Pairs = append(c.Pairs, pair{Question: strings.Join(c.Pending, "\n"), Answer: text})
	c.Pending = nil
}

// remember applies fn to the record of m's conversation, once per message.
func (s *Suggester) remember(ctx context.Context, m *core.Message, fn func(c *convRecord)) error {
	if !*s.cfg.Learn {
		return nil
	}
	var c convRecord
	if _, err := s.convs.Update(ctx, m.ConversationID, &c, convTTL, func(bool) error {
		if slices.Contains(c.Seen, m.ID) {
			return store.ErrSkip
		}
		fn(&c)
		c.Seen = append(c.Seen, m.ID)
		if len(c.Seen) > maxSeen {
			c.Seen = c.Seen[len(c.Seen)-maxSeen:]
		}
		return nil
	}); err != nil {
		return fmt.Errorf("suggest: conversation %s: %w", m.ConversationID, err)
	}
	return nil
}

// handleClosed learns the pairs of a closed conversation: each becomes a
// learned answer in the store, and the oldest beyond cfg.MaxLearned are
// dropped.
func (s *Suggester) handleClosed(ctx context.Context, d *bus.Delivery) error {
	m, err := d.Message()
	if err != nil {
		return err
	}
	if m.ConversationID == "" || !bus.ValidToken(m.ConversationID) {
		return nil
	}
	var c convRecord
	rev, err := s.convs.Get(ctx, m.ConversationID, &c)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("suggest: conversation %s: %w", m.ConversationID, err)
	}
	at := m.ReceivedAt
	if at.IsZero() {
		at = d.Published
	}
	for i, p := range c.Pairs {
		key := fmt.Sprintf("%020d:%s:%d", at.UnixNano(), m.ConversationID, i)
		a := kb.Article{ID: "learned:" + m.ConversationID + ":" + strconv.Itoa(i), Questions: []string{p.Question}, Answer: p.Answer, Learned: true}
		if _, err := s.learned.Create(ctx, key, a, 0); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("suggest: learn from %s: %w", m.ConversationID, err)
		}
	}
	if err := s.convs.Delete(ctx, m.ConversationID, rev); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("suggest: conversation %s: %w", m.ConversationID, err)
	}
	if len(c.Pairs) > 0 {
		s.log.Debug("learned from a resolved conversation", "conversation", m.ConversationID, "pairs", len(c.Pairs))
		return s.loadLearned(ctx)
	}
	return nil
}

// loadLearned reads the learned answers into the index when they changed,
// dropping the oldest beyond cfg.MaxLearned.
func (s *Suggester) loadLearned(ctx context.Context) error {
	keys, err := s.learned.Keys(ctx, "")
	if err != nil {
		return fmt.Errorf("suggest: learned answers: %w", err)
	}
	slices.Sort(keys)
	for len(keys) > s.cfg.MaxLearned {
		if err := s.learned.Delete(ctx, keys[0], 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("suggest: drop a learned answer: %w", err)
		}
		keys = keys[1:]
	}
	joined := strings.Join(keys, "\n")
	s.mu.Lock()
	same := joined == s.learnedKeys
	s.mu.Unlock()
	if same {
		return nil
	}
	arts := make([]kb.Article, 0, len(keys))
	for _, k := range keys {
		var a kb.Article
		if _, err := s.learned.Get(ctx, k, &a); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return fmt.Errorf("suggest: learned answer %s: %w", k, err)
		}
		arts = append(arts, a)
	}
	s.kb.SetLearned(arts)
	s.mu.Lock()
	s.learnedKeys = joined
	s.mu.Unlock()
	return nil
}
