package routing

import (
	"context"
	"math"
	"time"
)

// SentimentModel is a trained sentiment classifier (omnigate's is in
// insight/sentiment). Negative is called once per customer message, from
// several goroutines at once; it must not block.
type SentimentModel interface {
	// Negative returns the probability that text, written in language ("en",
	// "zh", or "" when unknown), is negative, 0.5 being the model's threshold;
	// ok is false when no model covers the language, and the lexicon answers
	// instead.
	Negative(text, language string) (p float64, ok bool)
}

// IntentModel tells what a customer wants (omnigate's is in insight/intent).
// Intent is called once per conversation opening, on its first customer
// message, from several goroutines at once; it must not block.
type IntentModel interface {
	// Intent returns the intent of text and the model's calibrated confidence
	// in it, 0 to 1; the intent is "unknown" when none is confident enough.
	Intent(text, language string) (name string, confidence float64)
}

// Models configures the trained models routing uses (routing.models). The
// files are read by omnigate serve, which passes the models in Deps; the
// router itself reads no file.
type Models struct {
	Intent          string            `yaml:"intent" default:"the model shipped in the binary (Banking77's 77 banking intents)" doc:"Intent model file, made by omnigate intent train. off: no intent, and rules with intent never match."`
	IntentThreshold float64           `yaml:"intent_threshold" default:"the model's (0.2)" doc:"Confidence below which a message's intent is unknown (0 to 1)."`
	Sentiment       map[string]string `yaml:"sentiment" default:"the models shipped in the binary for en and zh" doc:"Sentiment model files by language, made by omnigate sentiment train, e.g. {en: /etc/omnigate/sentiment_en.omm}. off for a language scores it with the lexicon only; a file that is missing or does not load falls back to the lexicon, with a warning."`
	Reload          time.Duration     `yaml:"reload" doc:"How often model files are checked for a change (a retrained model is picked up without a restart). 0: never."`
}

// maxIntentText bounds the text a routed event carries for the desk.
const maxIntentText = 2 << 10

// modelNegativeLabelAt is the model's probability from which ModelScorer
// labels a message negative.
const modelNegativeLabelAt = 0.5

// ModelScorer is the escalation Classifier with a trained sentiment model:
// its score is the model's calibrated probability that the message is
// negative, raised by the lexicon's churn, legal, urgency and shouting cues
// and lowered by its thanks, each capped as in Scorer, clamped to [0, 1]. A
// message in a language the model does not cover is scored by the lexicon
// alone. Safe for concurrent use.
type ModelScorer struct {
	model SentimentModel
	lex   *Scorer
}

// NewModelScorer returns a ModelScorer over m.
func NewModelScorer(m SentimentModel) *ModelScorer {
	return &ModelScorer{model: m, lex: defaultScorer}
}

// Classify implements Classifier; it never returns an error.
func (s *ModelScorer) Classify(_ context.Context, text, language string) (Classification, error) {
	return s.Score(text, language), nil
}

// Score scores text.
func (s *ModelScorer) Score(text, language string) Classification {
	p, ok := s.model.Negative(text, language)
	if !ok || math.IsNaN(p) {
		return s.lex.Score(text, language)
	}
	sums := s.lex.sums(text, language)
	delete(sums, LabelNegative)
	total, labels := capped(sums)
	total += p
	if p >= modelNegativeLabelAt {
		labels = append(labels, LabelNegative)
	}
	return Classification{Score: math.Round(math.Min(math.Max(total, 0), 1)*100) / 100, Labels: sortedLabels(labels), Source: "model"}
}

var _ Classifier = (*ModelScorer)(nil)
