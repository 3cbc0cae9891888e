package model

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/omnigate/omnigate/insight/corpus"
)

// Report is how well predictions match the truth.
type Report struct {
	N        int
	Accuracy float64
	// MacroF1 is the mean over labels of each label's F1.
	MacroF1 float64
	// PerLabel has each label's figures, in the order of the labels.
	PerLabel []LabelScore
	// Confusions are the pairs most often mistaken, worst first.
	Confusions []Confusion
}

// LabelScore is one label's precision, recall and F1.
type LabelScore struct {
	Label                 string
	Support               int
	Precision, Recall, F1 float64
}

// Confusion counts rows of label True predicted as Predicted.
type Confusion struct {
	True, Predicted string
	Count           int
}

// Score compares predicted with truth (label indexes into labels).
func Score(labels []string, truth, predicted []int) Report {
	k := len(labels)
	conf := make([]int, k*k)
	for i, t := range truth {
		conf[t*k+predicted[i]]++
	}
	r := Report{N: len(truth)}
	correct := 0
	for c := range k {
		tp := conf[c*k+c]
		correct += tp
		rowSum, colSum := 0, 0
		for j := range k {
			rowSum += conf[c*k+j]
			colSum += conf[j*k+c]
		}
		ls := LabelScore{Label: labels[c], Support: rowSum}
		if colSum > 0 {
			ls.Precision = float64(tp) / float64(colSum)
		}
		if rowSum > 0 {
			ls.Recall = float64(tp) / float64(rowSum)
		}
		if ls.Precision+ls.Recall > 0 {
			ls.F1 = 2 * ls.Precision * ls.Recall / (ls.Precision + ls.Recall)
		}
		r.PerLabel = append(r.PerLabel, ls)
	}
	present := 0
	for _, ls := range r.PerLabel {
		if ls.Support > 0 {
			r.MacroF1 += ls.F1
			present++
		}
	}
	if present > 0 {
		r.MacroF1 /= float64(present)
	}
	if r.N > 0 {
		r.Accuracy = float64(correct) / float64(r.N)
	}
	for t := range k {
		for p := range k {
			if t != p && conf[t*k+p] > 0 {
				r.Confusions = append(r.Confusions, Confusion{True: labels[t], Predicted: labels[p], Count: conf[t*k+p]})
			}
		}
	}
	slices.SortStableFunc(r.Confusions, func(a, b Confusion) int { return cmp.Compare(b.Count, a.Count) })
	return r
}

// CrossValidate trains on all folds but one and predicts the one left out,
// for each of n stratified folds, and returns each row's predicted label
// index and probabilities (of the model that did not see it).
func CrossValidate(rows []corpus.Row, labels []string, n int, o Options) (predicted []int, probs [][]float32, err error) {
	o.setDefaults()
	if n < 2 {
		return nil, nil, fmt.Errorf("model: %d folds: want at least 2", n)
	}
	ys, err := labelIndexes(rows, labels)
	if err != nil {
		return nil, nil, err
	}
	folds := Folds(ys, len(labels), n, o.Seed)
	predicted = make([]int, len(rows))
	probs = make([][]float32, len(rows))
	for f := range n {
		var train, test []int
		for i, fi := range folds {
			if fi == f {
				test = append(test, i)
			} else {
				train = append(train, i)
			}
		}
		c, err := Train(pick(rows, train), labels, o)
		if err != nil {
			return nil, nil, fmt.Errorf("fold %d: %w", f+1, err)
		}
		for _, i := range test {
			p := c.Probabilities(rows[i].Text)
			probs[i] = p
			predicted[i] = argmax(p)
		}
	}
	return predicted, probs, nil
}

// Truth returns the label index of each row.
func Truth(rows []corpus.Row, labels []string) ([]int, error) { return labelIndexes(rows, labels) }

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
