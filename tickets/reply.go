package tickets

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/omnigate/omnigate/core"
	"github.com/omnigate/omnigate/core/bus"
)

// handleTranscript looks at every message appended to a transcript; a
// customer's message may answer the survey, reopen a solved ticket or set a
// pending one open. Messages are looked up by conversation first; a
// conversation without tickets falls back to the contact's tickets, so a reply
// that opened a new conversation still finds the ticket it answers.
func (s *Service) handleTranscript(ctx context.Context, d *bus.Delivery) error {
	m, err := d.Message()
	if err != nil {
		return err
	}
	if m.Kind != core.KindMessage || m.Direction != core.Inbound || m.ConversationID == "" {
		return nil
	}
	ns, err := s.repo.numbers(ctx, convKey(m.ConversationID))
	if err != nil {
		return err
	}
	viaContact := false
	if len(ns) == 0 && m.ContactID != "" {
		if ns, err = s.repo.numbers(ctx, contactKey(m.ContactID)); err != nil {
			return err
		}
		viaContact = true
	}
	for _, n := range ns {
		if err := s.customerReply(ctx, n, m, viaContact); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// customerReply applies customer message m to ticket n: a survey score is
// recorded; a solved ticket is reopened (within the reopen window); a pending
// one is set open (with open_on_reply). A reply found through the contact
// links its conversation to the ticket when it changes it.
func (s *Service) customerReply(ctx context.Context, n int64, m *core.Message, viaContact bool) error {
	// Most messages are about tickets being worked on: a read tells, without the
	// writes of a change.
	cur, err := s.repo.get(ctx, n)
	if err != nil {
		return err
	}
	switch {
	case cur.Status == StatusSolved:
	case cur.Status == StatusPending && *s.cfg.OpenOnReply:
	default:
		return nil
	}
	_, _, err = s.mutate(ctx, n, func(t *Ticket, now time.Time) ([]Event, error) {
		if t.hasRef(m.ID) {
			return nil, nil
		}
		actor := string(m.From)
		if actor == "" {
			actor = "customer"
		}
		base := Event{Actor: actor, Ref: m.ID}
		var evs []Event
		link := func() {
			if !slices.Contains(t.Conversations, m.ConversationID) {
				t.Conversations = append(t.Conversations, m.ConversationID)
				ev := base
				ev.Action = ActionLinked
				ev.Changes = []Change{{Field: "conversations", To: m.ConversationID}}
				evs = append(evs, ev)
			}
		}
		if l := s.language(m); l != "" {
			t.Language = l
		}
		switch t.Status {
		case StatusSolved:
			if sv := t.Survey; sv != nil && t.Satisfaction == nil && !now.After(sv.Until) {
				if score, ok := parseScore(m.Text); ok {
					t.Satisfaction = &Satisfaction{Score: score, Text: core.Truncate(m.Text, 500), Channel: m.Channel, At: now}
					ev := base
					ev.Action = ActionSatisfaction
					ev.Changes = []Change{{Field: "satisfaction", To: strconv.Itoa(score)}}
					return append(evs, ev), nil
				}
			}
			if now.After(t.SolvedAt.Add(s.cfg.ReopenWindow)) {
				return nil, nil
			}
			if viaContact {
				link()
			}
			s.setStatus(t, StatusOpen, now)
			ev := base
			ev.Action = ActionReopened
			ev.Changes = []Change{{Field: "status", From: string(StatusSolved), To: string(StatusOpen)}}
			return append(evs, ev), nil
		case StatusPending:
			if !*s.cfg.OpenOnReply {
				return nil, nil
			}
			if viaContact {
				link()
			}
			s.setStatus(t, StatusOpen, now)
			ev := base
			ev.Action = ActionStatus
			ev.Changes = []Change{{Field: "status", From: string(StatusPending), To: string(StatusOpen)}}
			return append(evs, ev), nil
		}
		return nil, nil
	})
	return err
}

// scoreWords are the words (after normalizing) a survey answer may be. "ok" and
// "thanks" are not among them: customers write them to acknowledge, not to rate.
var scoreWords = map[string]int{
	"excellent": 5, "great": 5, "very good": 5, "very satisfied": 5, "amazing": 5,
	"good": 4, "satisfied": 4,
	"average": 3, "neutral": 3,
	"bad": 2, "poor": 2, "dissatisfied": 2, "unsatisfied": 2,
	"terrible": 1, "awful": 1, "very bad": 1, "very dissatisfied": 1,
	"非常满意": 5, "很满意": 5, "满意": 4, "一般": 3, "不满意": 2, "很不满意": 1, "非常不满意": 1,
	"非常好": 5, "很好": 5, "好": 4, "还行": 3, "差": 2, "很差": 1, "非常差": 1,
}

// parseScore reads a survey answer: a digit 1-5 (also full-width, "4/5",
// "4 stars", "4分", "4星") or one of a few words in English or Chinese.
func parseScore(text string) (int, bool) {
	s := strings.ToLower(strings.TrimSpace(text))
	s = strings.Map(func(r rune) rune {
		if r >= '０' && r <= '９' {
			return '0' + (r - '０')
		}
		return r
	}, s)
	s = strings.TrimFunc(s, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) || unicode.IsSymbol(r) })
	s = strings.Join(strings.Fields(s), " ")
	for _, suffix := range []string{"/5", " / 5", " stars", " star", "stars", "star", "分", "星"} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s = strings.TrimSpace(v)
			break
		}
	}
	if len(s) == 1 && s[0] >= '1' && s[0] <= '5' {
		return int(s[0] - '0'), true
	}
	n, ok := scoreWords[s]
	return n, ok
}
