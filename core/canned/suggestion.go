package canned

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/omnigate/omnigate/core"
)

// Suggestion is one reply the knowledge base suggests to an agent, as it
// travels in meta suggestions of an event.Suggestions.
type Suggestion struct {
	// Article is the knowledge base's id of the article.
	Article string `json:"article"`
	// Title is the article's title, if it has one.
	Title string `json:"title,omitempty"`
	// Name is set for a canned answer.
	Name string `json:"name,omitempty"`
	// Text is the reply, in CommonMark, variables not filled: the desk fills
	// them when the agent sends it.
	Text string `json:"text"`
	// Learned marks an agent's answer learned from a resolved conversation.
	Learned bool `json:"learned,omitempty"`
}

// MaxSuggestions is the most suggestions one event carries, and
// MaxSuggestionBytes the longest text of one.
const (
	MaxSuggestions     = 3
	MaxSuggestionBytes = 2800
)

// EncodeSuggestions writes ss as the value of meta suggestions, keeping at
// most MaxSuggestions, each cut to MaxSuggestionBytes.
func EncodeSuggestions(ss []Suggestion) string {
	ss = ss[:min(len(ss), MaxSuggestions)]
	out := make([]Suggestion, len(ss))
	for i, s := range ss {
		s.Text = core.Truncate(s.Text, MaxSuggestionBytes)
		s.Title = core.Truncate(s.Title, 200)
		out[i] = s
	}
	b, _ := json.Marshal(out) // strings and a bool: cannot fail
	return string(b)
}

// DecodeSuggestions reads meta suggestions; suggestions without text are
// dropped.
func DecodeSuggestions(v string) ([]Suggestion, error) {
	var ss []Suggestion
	if err := json.Unmarshal([]byte(v), &ss); err != nil {
		return nil, fmt.Errorf("canned: meta suggestions: %w", err)
	}
	out := ss[:0]
	for _, s := range ss {
		if strings.TrimSpace(s.Text) != "" && len(out) < MaxSuggestions {
			out = append(out, s)
		}
	}
	return out, nil
}

// Records is the store bucket (store.Records) where insight keeps the
// canned answers of its knowledge base by name, for desks to read: an
// Answer under each name.
const Records = "insight_answers"

// Answer is a canned answer as insight publishes it in Records.
type Answer struct {
	Name    string `json:"name"`
	Title   string `json:"title,omitempty"`
	Lang    string `json:"lang,omitempty"`
	Article string `json:"article"`
	// Text is the answer in CommonMark, variables not filled.
	Text string `json:"text"`
}
