// Package sentiment tells how likely a customer message is negative (angry,
// disappointed, complaining): a binary classifier trained on labelled text
// (CSV text,label; "negative" against anything else), one model per language.
// The default English and Chinese models ship in the binary
// (insight/models). Routing adds its lexicon's churn, legal and urgency cues,
// which a sentiment model does not learn.
package sentiment

import (
	"cmp"
	"fmt"

	"github.com/omnigate/omnigate/insight/corpus"
	"github.com/omnigate/omnigate/insight/model"
)

// Negative is the label of negative rows; every other label is not negative.
const Negative = "negative"

// labels of a sentiment model's classes, in weight order.
var labels = []string{"other", Negative}

// DefaultThreshold is the probability at which a message counts as
// negative, when the model file sets none.
const DefaultThreshold = 0.5

// Model is a trained sentiment classifier. Read-only, safe for concurrent use.
type Model struct {
	c *model.Classifier
}

// Binary maps rows' labels to "negative" or "other".
func Binary(rows []corpus.Row) []corpus.Row {
	out := make([]corpus.Row, len(rows))
	for i, r := range rows {
		out[i] = corpus.Row{Text: r.Text, Label: labels[0]}
		if IsNegative(r.Label) {
			out[i].Label = Negative
		}
	}
	return out
}

// IsNegative reports whether a corpus label means negative: "negative"
// (any case), "neg" or "0" are; "positive", "neutral", "1", "2" are not.
func IsNegative(label string) bool {
	switch label {
	case Negative, "Negative", "NEGATIVE", "neg":
		return true
	}
	return false
}

// Train trains a model on rows (any label but "negative" is other) for
// language (e.g. "en", "zh", or "" for any). data names the training data
// and its licence, kept in the file.
func Train(rows []corpus.Row, language, data string, o model.Options) (*Model, error) {
	c, err := model.Train(Binary(rows), labels, o)
	if err != nil {
		return nil, fmt.Errorf("sentiment: %w", err)
	}
	c.Header.Kind = model.KindSentiment
	c.Header.Language = language
	c.Header.Data = data
	c.Header.Threshold = DefaultThreshold
	return &Model{c: c}, nil
}

// FromClassifier wraps a classifier read from a file; it must be a
// sentiment model.
func FromClassifier(c *model.Classifier) (*Model, error) {
	if c.Header.Kind != model.KindSentiment || len(c.Header.Labels) != 2 || c.Header.Labels[1] != Negative {
		return nil, fmt.Errorf("sentiment: the file holds a %q model with labels %v, not a sentiment model", c.Header.Kind, c.Header.Labels)
	}
	return &Model{c: c}, nil
}

// Load reads a sentiment model file.
func Load(path string) (*Model, error) {
	c, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	return FromClassifier(c)
}

// Classifier is the model underneath, for saving and its header.
func (m *Model) Classifier() *model.Classifier { return m.c }

// Language is what the model was trained for.
func (m *Model) Language() string { return m.c.Header.Language }

// Threshold is the probability at which the model calls a text negative.
func (m *Model) Threshold() float64 { return cmp.Or(m.c.Header.Threshold, DefaultThreshold) }

// SetThreshold changes the operating point kept in the model's file.
func (m *Model) SetThreshold(t float64) { m.c.Header.Threshold = t }

// Negative returns the calibrated probability that text is negative.
func (m *Model) Negative(text string) float64 {
	return float64(m.c.Probabilities(text)[1])
}

// Centred returns Negative(text) mapped so that the model's threshold is
// 0.5 (linearly on each side), for callers that compare models of several
// languages against one threshold.
func (m *Model) Centred(text string) float64 {
	p, t := m.Negative(text), m.Threshold()
	if t <= 0 || t >= 1 || t == 0.5 {
		return p
	}
	if p < t {
		return p / (2 * t)
	}
	return 0.5 + (p-t)/(2*(1-t))
}

// Scores are how well flagging probabilities at a threshold finds the
// negative texts.
type Scores struct {
	Precision, Recall, F1 float64
	// Flagged counts the texts at or above the threshold.
	Flagged int
}

// Measure scores probabilities probs against the truth negative at
// threshold t.
func Measure(probs []float64, negative []bool, t float64) Scores {
	tp, fp, fn := 0, 0, 0
	for i, p := range probs {
		switch flag := p >= t; {
		case flag && negative[i]:
			tp++
		case flag:
			fp++
		case negative[i]:
			fn++
		}
	}
	var s Scores
	s.Flagged = tp + fp
	if tp+fp > 0 {
		s.Precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		s.Recall = float64(tp) / float64(tp+fn)
	}
	if s.Precision+s.Recall > 0 {
		s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
	}
	return s
}
