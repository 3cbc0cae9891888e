// Package model is what insight's intent and sentiment models have in
// common: a text classifier (textfeat features, a linear model with a
// calibrated softmax), its training with held-out calibration, and its
// versioned file.
//
// The models are owned by insight: they are written by the train commands
// and read by everyone else.
package model

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/omnigate/omnigate/insight/corpus"
	"github.com/omnigate/omnigate/insight/linear"
	"github.com/omnigate/omnigate/insight/textfeat"
)

// Header describes a model file: the first thing in it, readable JSON.
type Header struct {
	// Format is the file format's version, FormatVersion when written.
	Format int `json:"format"`
	// Kind is what the model is for: KindIntent or KindSentiment.
	Kind string `json:"kind"`
	// Language is the language the model was trained for, if one.
	Language string `json:"language,omitempty"`
	// Trained is when it was trained.
	Trained time.Time `json:"trained"`
	// Labels are the classes, in the order of the weights.
	Labels []string `json:"labels"`
	// Rows is how many rows it was trained on.
	Rows int `json:"rows"`
	// Data names the training data and its licence (the attribution).
	Data string `json:"data,omitempty"`
	// Features are the feature options the vocabulary was built with.
	Features textfeat.Options `json:"features"`
	// C is the linear model's cost parameter.
	C float64 `json:"c"`
	// Balanced says classes were weighed as if equally frequent.
	Balanced bool `json:"balanced,omitempty"`
	// MinDF is the least number of training texts a feature was found in.
	MinDF int `json:"min_df"`
	// Temperature is the calibrated softmax's.
	Temperature float32 `json:"temperature"`
	// Threshold is the model's operating point: below it an intent is
	// unknown; at or above it a sentiment model calls a message negative.
	Threshold float64 `json:"threshold,omitempty"`
	// Notes are free-form figures measured at training (e.g. the
	// threshold's precision and recall).
	Notes map[string]string `json:"notes,omitempty"`
}

// Model kinds.
const (
	KindIntent    = "intent"
	KindSentiment = "sentiment"
)

// FormatVersion is the version of the file format this package writes and
// reads.
const FormatVersion = 1

// Classifier is a trained text classifier. It is read-only and safe for
// concurrent use.
type Classifier struct {
	Header Header
	vocab  *textfeat.Vocabulary
	lin    *linear.Model
}

// Options tune Train. Zero fields take the defaults.
type Options struct {
	// Features default to textfeat.DefaultOptions().
	Features *textfeat.Options
	// MinDF drops features found in fewer training texts. Default 2.
	MinDF int
	// C is the linear model's cost. Default 0.5.
	C float64
	// Holdout is the share of rows kept out to fit the softmax temperature
	// (then the model is trained again on every row). Default 0.15; 0 < x < 1.
	Holdout float64
	// Seed makes training repeatable. Default 1.
	Seed uint64
	// Balanced weighs classes as if they had as many rows each.
	Balanced bool
}

func (o *Options) setDefaults() {
	if o.Features == nil {
		f := textfeat.DefaultOptions()
		o.Features = &f
	}
	if o.MinDF <= 0 {
		o.MinDF = 2
	}
	if o.C <= 0 {
		o.C = 0.5
	}
	if o.Holdout <= 0 || o.Holdout >= 1 {
		o.Holdout = 0.15
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// ErrTooFew is returned when the rows have fewer than two labels.
var ErrTooFew = errors.New("model: the training data has fewer than two labels")

// Train trains a classifier on rows, labels in the order given (every
// row's label must be among them). It fits the temperature on a stratified
// held-out share first, then trains on every row.
func Train(rows []corpus.Row, labels []string, o Options) (*Classifier, error) {
	o.setDefaults()
	if len(labels) < 2 {
		return nil, ErrTooFew
	}
	ys, err := labelIndexes(rows, labels)
	if err != nil {
		return nil, err
	}
	fit, held := StratifiedSplit(ys, len(labels), o.Holdout, o.Seed)
	temp := float32(1)
	if len(held) > 0 && len(fit) > 0 {
		c, err := trainOn(pick(rows, fit), pickInts(ys, fit), labels, o)
		if err != nil {
			return nil, err
		}
		margins := make([][]float32, len(held))
		var scratch []uint64
		for j, i := range held {
			margins[j] = c.lin.Margins(c.vocab.Vector(rows[i].Text, &scratch), nil)
		}
		temp = linear.FitTemperature(margins, pickInts(ys, held))
	}
	c, err := trainOn(rows, ys, labels, o)
	if err != nil {
		return nil, err
	}
	c.lin.Temperature = temp
	c.Header.Temperature = temp
	return c, nil
}

// trainOn trains without calibration.
func trainOn(rows []corpus.Row, ys []int, labels []string, o Options) (*Classifier, error) {
	texts := make([]string, len(rows))
	for i, r := range rows {
		texts[i] = r.Text
	}
	v, err := textfeat.Fit(*o.Features, texts, o.MinDF)
	if err != nil {
		return nil, err
	}
	xs := make([]textfeat.Vector, len(rows))
	var scratch []uint64
	for i, t := range texts {
		xs[i] = v.Vector(t, &scratch)
	}
	lin, err := linear.Train(xs, ys, len(labels), v.Len(), linear.Params{C: o.C, Seed: o.Seed, Balanced: o.Balanced})
	if err != nil {
		return nil, err
	}
	return &Classifier{
		Header: Header{
			Format: FormatVersion, Trained: time.Now().UTC().Truncate(time.Second),
			Labels: slices.Clone(labels), Rows: len(rows), Features: *o.Features,
			C: o.C, MinDF: o.MinDF, Temperature: 1, Balanced: o.Balanced,
		},
		vocab: v, lin: lin,
	}, nil
}

func labelIndexes(rows []corpus.Row, labels []string) ([]int, error) {
	idx := make(map[string]int, len(labels))
	for i, l := range labels {
		idx[l] = i
	}
	ys := make([]int, len(rows))
	for i, r := range rows {
		y, ok := idx[r.Label]
		if !ok {
			return nil, fmt.Errorf("model: row %d: label %q is not among the labels", i+1, r.Label)
		}
		ys[i] = y
	}
	return ys, nil
}

// Probabilities returns the calibrated probability of each label for text,
// in the order of Header.Labels.
func (c *Classifier) Probabilities(text string) []float32 {
	var scratch []uint64
	return c.lin.Probabilities(c.lin.Margins(c.vocab.Vector(text, &scratch), nil))
}

// Features is the number of features the model knows.
func (c *Classifier) Features() int { return c.vocab.Len() }

// StratifiedSplit splits the row indexes 0..len(ys)-1 into a share and the
// rest, taking about share of each label (at least one of a label with two
// rows or more) into held, shuffled by seed.
func StratifiedSplit(ys []int, k int, share float64, seed uint64) (rest, held []int) {
	by := make([][]int, k)
	for i, y := range ys {
		by[y] = append(by[y], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, is := range by {
		rng.Shuffle(len(is), func(a, b int) { is[a], is[b] = is[b], is[a] })
		n := int(float64(len(is))*share + 0.5)
		if n == 0 && len(is) >= 2 {
			n = 1
		}
		held = append(held, is[:n]...)
		rest = append(rest, is[n:]...)
	}
	slices.Sort(held)
	slices.Sort(rest)
	return rest, held
}

// Folds assigns each row a fold 0..n-1 so that every label is spread
// evenly over the folds (stratified), shuffled by seed. n <= 1 gives every
// row fold 0.
func Folds(ys []int, k, n int, seed uint64) []int {
	out := make([]int, len(ys))
	if n <= 1 {
		return out
	}
	by := make([][]int, k)
	for i, y := range ys {
		by[y] = append(by[y], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0xf01d))
	next := 0
	for _, is := range by {
		rng.Shuffle(len(is), func(a, b int) { is[a], is[b] = is[b], is[a] })
		for _, i := range is {
			out[i] = next % n
			next++
		}
	}
	return out
}

func pick(rows []corpus.Row, is []int) []corpus.Row {
	out := make([]corpus.Row, len(is))
	for j, i := range is {
		out[j] = rows[i]
	}
	return out
}

func pickInts(ys []int, is []int) []int {
	out := make([]int, len(is))
	for j, i := range is {
		out[j] = ys[i]
	}
	return out
}
