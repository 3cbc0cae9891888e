// Package intent tells what a customer wants from what they wrote: a
// classifier over labelled examples (CSV text,intent), with a calibrated
// confidence and Unknown below a threshold. The default model, trained on
// Banking77, ships in the binary (insight/models); a business trains its own
// with omnigate intent train.
package intent

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/omnigate/omnigate/insight/corpus"
	"github.com/omnigate/omnigate/insight/model"
)

// Unknown is the intent of a message no intent fits with enough confidence.
const Unknown = "unknown"

// DefaultThreshold is the confidence below which a prediction is Unknown,
// when the model file sets none.
const DefaultThreshold = 0.2

// Model is a trained intent classifier. Read-only, safe for concurrent use.
type Model struct {
	c *model.Classifier
}

// Prediction is what a Model says about one text.
type Prediction struct {
	// Intent is the best intent, or Unknown when its confidence is below the
	// model's threshold.
	Intent string `json:"intent"`
	// Confidence is the calibrated probability of the best intent (also
	// when Intent is Unknown).
	Confidence float64 `json:"confidence"`
	// Top are the best intents, most likely first.
	Top []Scored `json:"top"`
}

// Scored is one intent with its probability.
type Scored struct {
	Intent      string  `json:"intent"`
	Probability float64 `json:"probability"`
}

// Train trains a model on rows (text, intent). data names the training data
// and its licence, kept in the file.
func Train(rows []corpus.Row, data string, o model.Options) (*Model, error) {
	labels := corpus.Labels(rows)
	slices.Sort(labels)
	if slices.Contains(labels, Unknown) {
		return nil, fmt.Errorf("intent: %q is reserved for predictions below the threshold: rename that intent", Unknown)
	}
	c, err := model.Train(rows, labels, o)
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	c.Header.Kind = model.KindIntent
	c.Header.Data = data
	c.Header.Threshold = DefaultThreshold
	return &Model{c: c}, nil
}

// FromClassifier wraps a classifier read from a file; it must be an intent
// model.
func FromClassifier(c *model.Classifier) (*Model, error) {
	if c.Header.Kind != model.KindIntent {
		return nil, fmt.Errorf("intent: the file holds a %q model, not an intent model", c.Header.Kind)
	}
	return &Model{c: c}, nil
}

// ErrNotIntent is returned by Load for a model of another kind.
var ErrNotIntent = errors.New("intent: not an intent model")

// Load reads an intent model file.
func Load(path string) (*Model, error) {
	c, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	return FromClassifier(c)
}

// Classifier is the model underneath, for saving and its header.
func (m *Model) Classifier() *model.Classifier { return m.c }

// Labels are the intents the model knows.
func (m *Model) Labels() []string { return m.c.Header.Labels }

// Threshold is the confidence below which Predict answers Unknown.
func (m *Model) Threshold() float64 { return cmp.Or(m.c.Header.Threshold, DefaultThreshold) }

// Predict classifies text, keeping the top n intents (at least 1).
func (m *Model) Predict(text string, n int) Prediction {
	p := m.c.Probabilities(text)
	labels := m.c.Header.Labels
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(p[b], p[a]) })
	n = min(max(n, 1), len(idx))
	out := Prediction{Confidence: float64(p[idx[0]]), Intent: labels[idx[0]]}
	for _, i := range idx[:n] {
		out.Top = append(out.Top, Scored{Intent: labels[i], Probability: float64(p[i])})
	}
	if out.Confidence < m.Threshold() {
		out.Intent = Unknown
	}
	return out
}
