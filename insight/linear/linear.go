// Package linear is insight's classifier: one-vs-rest linear support vector
// machines (L2-regularized squared hinge loss, trained by dual coordinate
// descent) over textfeat vectors, with a softmax of the margins whose
// temperature is fitted on held-out data, so that scores read as
// probabilities. A trained Model is read-only and safe for concurrent use.
package linear

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/omnigate/omnigate/insight/textfeat"
)

// Params tune training. Zero fields take the defaults.
type Params struct {
	// C is the cost of a margin violation: higher fits the training data
	// closer. Default 0.5.
	C float64
	// Epochs bounds the passes over the data per class. Default 30.
	Epochs int
	// Tolerance stops a class's training when no coordinate moves more than
	// this. Default 0.05.
	Tolerance float64
	// Seed makes training repeatable. Default 1.
	Seed uint64
	// Workers train classes in parallel. Default GOMAXPROCS.
	Workers int
	// Balanced weighs each class's rows so that a class and the rest count
	// the same in its training (for a rare class, as negative sentiment is).
	Balanced bool
}

func (p *Params) setDefaults() {
	if p.C <= 0 {
		p.C = 0.5
	}
	if p.Epochs <= 0 {
		p.Epochs = 30
	}
	if p.Tolerance <= 0 {
		p.Tolerance = 0.05
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Workers <= 0 {
		p.Workers = runtime.GOMAXPROCS(0)
	}
}

// Model holds K classes' weights over Dim features. Weights are feature-major
// (W[f*K+k]) so that scoring a sparse vector reads contiguous memory.
type Model struct {
	K, Dim int
	W      []float32
	B      []float32
	// Temperature scales the margins before the softmax; 1 when not fitted.
	Temperature float32
}

// ErrNoData is returned by Train for an empty training set.
var ErrNoData = errors.New("linear: no training data")

// Train fits a model on xs labelled ys (0 <= ys[i] < k) over dim features.
func Train(xs []textfeat.Vector, ys []int, k, dim int, p Params) (*Model, error) {
	p.setDefaults()
	if len(xs) == 0 {
		return nil, ErrNoData
	}
	if len(xs) != len(ys) {
		return nil, fmt.Errorf("linear: %d vectors but %d labels", len(xs), len(ys))
	}
	if k < 2 {
		return nil, fmt.Errorf("linear: %d classes: want at least 2", k)
	}
	for i, y := range ys {
		if y < 0 || y >= k {
			return nil, fmt.Errorf("linear: label %d of row %d outside 0..%d", y, i, k-1)
		}
	}
	m := &Model{K: k, Dim: dim, W: make([]float32, dim*k), B: make([]float32, k), Temperature: 1}
	// ||x||² + 1 for the bias feature; vectors are usually unit length.
	sq := make([]float64, len(xs))
	for i, x := range xs {
		s := 1.0
		for _, v := range x.Value {
			s += float64(v) * float64(v)
		}
		sq[i] = s
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(p.Workers, k) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := make([]float64, dim)
			for c := range jobs {
				clear(w)
				b := trainBinary(xs, ys, c, sq, w, p)
				for f, v := range w {
					m.W[f*k+c] = float32(v)
				}
				m.B[c] = float32(b)
			}
		}()
	}
	for c := range k {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	return m, nil
}

// trainBinary trains class c against the rest into w and returns the bias:
// dual coordinate descent for the L2-loss SVM (Hsieh et al., ICML 2008) with
// a constant feature 1 for the bias.
func trainBinary(xs []textfeat.Vector, ys []int, c int, sq []float64, w []float64, p Params) float64 {
	n := len(xs)
	alpha := make([]float64, n)
	diagPos, diagNeg := 1/(2*p.C), 1/(2*p.C)
	if p.Balanced {
		pos := 0
		for _, y := range ys {
			if y == c {
				pos++
			}
		}
		if pos > 0 && pos < n {
			diagPos = 1 / (2 * p.C * float64(n-pos) / float64(pos))
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(p.Seed, uint64(c)+1))
	b := 0.0
	for range p.Epochs {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		maxPG, minPG := math.Inf(-1), math.Inf(1)
		for _, i := range order {
			y, diag := -1.0, diagNeg
			if ys[i] == c {
				y, diag = 1, diagPos
			}
			x := xs[i]
			dot := b
			for j, f := range x.Index {
				dot += w[f] * float64(x.Value[j])
			}
			g := y*dot - 1 + diag*alpha[i]
			pg := g
			if alpha[i] == 0 && g > 0 {
				pg = 0
			}
			maxPG, minPG = max(maxPG, pg), min(minPG, pg)
			if pg == 0 {
				continue
			}
			old := alpha[i]
			alpha[i] = max(old-g/(sq[i]+diag), 0)
			d := (alpha[i] - old) * y
			for j, f := range x.Index {
				w[f] += d * float64(x.Value[j])
			}
			b += d
		}
		if maxPG-minPG < p.Tolerance {
			break
		}
	}
	return b
}

// Margins writes the K margins of x to out (allocated when too short) and
// returns it.
func (m *Model) Margins(x textfeat.Vector, out []float32) []float32 {
	if cap(out) < m.K {
		out = make([]float32, m.K)
	}
	out = out[:m.K]
	copy(out, m.B)
	for j, f := range x.Index {
		if int(f) >= m.Dim {
			continue
		}
		v := x.Value[j]
		row := m.W[int(f)*m.K : int(f)*m.K+m.K]
		for k, w := range row {
			out[k] += w * v
		}
	}
	return out
}

// Probabilities turns margins into probabilities in place (a softmax at the
// model's temperature) and returns them.
func (m *Model) Probabilities(margins []float32) []float32 {
	softmax(margins, m.Temperature)
	return margins
}

func softmax(s []float32, t float32) {
	mx := float32(math.Inf(-1))
	for _, v := range s {
		mx = max(mx, v)
	}
	sum := 0.0
	for i, v := range s {
		e := math.Exp(float64((v - mx) * t))
		s[i] = float32(e)
		sum += e
	}
	for i := range s {
		s[i] = float32(float64(s[i]) / sum)
	}
}

// FitTemperature sets the temperature that best explains held-out data (the
// lowest mean negative log-likelihood of ys given the margins of xs) and
// returns it. Margins of a model trained without xs are what make it honest.
func FitTemperature(margins [][]float32, ys []int) float32 {
	nll := func(t float64) float64 {
		s := 0.0
		buf := make([]float32, 0, 128)
		for i, m := range margins {
			buf = append(buf[:0], m...)
			softmax(buf, float32(t))
			s -= math.Log(max(float64(buf[ys[i]]), 1e-12))
		}
		return s
	}
	// Golden-section search on log t in [log 0.1, log 100].
	lo, hi := math.Log(0.1), math.Log(100)
	phi := (math.Sqrt(5) - 1) / 2
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := nll(math.Exp(a)), nll(math.Exp(b))
	for range 40 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = nll(math.Exp(a))
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = nll(math.Exp(b))
		}
	}
	return float32(math.Exp((lo + hi) / 2))
}
