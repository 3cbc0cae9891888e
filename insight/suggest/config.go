package suggest

import (
	"time"

	"github.com/omnigate/omnigate/config"
	"github.com/omnigate/omnigate/core/canned"
)

// Config is the suggestions part of the insight section. Without a
// knowledge base nothing is suggested and no canned answer exists.
type Config struct {
	KnowledgeBase string `yaml:"knowledge_base" doc:"The knowledge base: a folder of Markdown articles (front matter title, name, lang, questions; the answer below) or a CSV file question,answer[,name]. Named articles are canned answers (/omni answer <name>). Empty: no suggestions. See docs/models.md."`
	Suggestions   int    `yaml:"suggestions" doc:"How many replies to suggest for each customer message, 1 to 3."`
	// Reload is how often the files are looked at.
	Reload time.Duration `yaml:"reload" doc:"How often the knowledge base's files are checked for changes (and the answers other replicas learned read)."`
	Learn  *bool         `yaml:"learn" doc:"Learn from resolved conversations: when one closes, its customer questions and the agent replies that answered them are suggested too."`
	// MaxLearned bounds the learned answers kept in the store.
	MaxLearned int `yaml:"max_learned" doc:"The most learned answers kept; the oldest go first."`
}

// SetDefaults fills unset keys.
func (c *Config) SetDefaults() {
	if c.Suggestions == 0 {
		c.Suggestions = canned.MaxSuggestions
	}
	if c.Reload == 0 {
		c.Reload = 10 * time.Second
	}
	if c.Learn == nil {
		on := true
		c.Learn = &on
	}
	if c.MaxLearned == 0 {
		c.MaxLearned = 5000
	}
}

// Validate checks the values.
func (c *Config) Validate() error {
	var p config.Problems
	if c.Suggestions < 1 || c.Suggestions > canned.MaxSuggestions {
		p.Add("suggestions", "want 1 to %d, got %d", canned.MaxSuggestions, c.Suggestions)
	}
	if c.Reload < 100*time.Millisecond {
		p.Add("reload", "want at least 100ms, got %s", c.Reload)
	}
	if c.MaxLearned < 0 || c.MaxLearned > 100000 {
		p.Add("max_learned", "want 0 to 100000, got %d", c.MaxLearned)
	}
	return p.Err()
}

// Enabled reports whether a knowledge base is configured.
func (c *Config) Enabled() bool { return c.KnowledgeBase != "" }
