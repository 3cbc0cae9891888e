package model_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnigate/omnigate/insight/corpus"
	"github.com/omnigate/omnigate/insight/model"
)

// sample makes n rows of each of three intents from templates, English and
// Chinese.
func sample(n int) ([]corpus.Row, []string) {
	tmpl := map[string][]string{
		"card_arrival": {"my card has not arrived after %d days", "where is my new card, ordered %d days ago", "我的卡%d天了还没到"},
		"refund":       {"I want a refund for order %d", "please refund the %d dollars you charged", "订单%d要退款"},
		"password":     {"I forgot my password, tried %d times", "reset my password please, attempt %d", "密码忘了，试了%d次"},
	}
	labels := []string{"card_arrival", "password", "refund"}
	var rows []corpus.Row
	for i := range n {
		for _, l := range labels {
			ts := tmpl[l]
			rows = append(rows, corpus.Row{Text: fmt.Sprintf(ts[i%len(ts)], i+2), Label: l})
		}
	}
	return rows, labels
}

func TestTrain_PredictsAndCalibrates(t *testing.T) {
	rows, labels := sample(30)
	c, err := model.Train(rows, labels, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]int{"my card still has not arrived": 0, "can you refund me": 2, "密码忘了": 1} {
		p := c.Probabilities(text)
		sum := 0.0
		best := 0
		for i, v := range p {
			sum += float64(v)
			if v > p[best] {
				best = i
			}
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("%q: probabilities sum to %v", text, sum)
		}
		if best != want {
			t.Errorf("%q: best %s (%v), want %s", text, labels[best], p, labels[want])
		}
	}
	if c.Header.Temperature <= 0 {
		t.Errorf("temperature %v", c.Header.Temperature)
	}
}

func TestCrossValidate(t *testing.T) {
	rows, labels := sample(20)
	pred, probs, err := model.CrossValidate(rows, labels, 5, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	truth, err := model.Truth(rows, labels)
	if err != nil {
		t.Fatal(err)
	}
	r := model.Score(labels, truth, pred)
	if r.N != len(rows) || len(probs) != len(rows) {
		t.Fatalf("n=%d of %d rows", r.N, len(rows))
	}
	if r.Accuracy < 0.9 || r.MacroF1 < 0.9 {
		t.Errorf("accuracy %.3f macro-F1 %.3f on separable data", r.Accuracy, r.MacroF1)
	}
}

func TestScore(t *testing.T) {
	labels := []string{"a", "b"}
	r := model.Score(labels, []int{0, 0, 1, 1}, []int{0, 1, 1, 1})
	if r.Accuracy != 0.75 {
		t.Errorf("accuracy %v", r.Accuracy)
	}
	// a: p 1 r .5 f1 .667; b: p .667 r 1 f1 .8.
	if math.Abs(r.MacroF1-(2.0/3+0.8)/2) > 1e-9 {
		t.Errorf("macro-F1 %v", r.MacroF1)
	}
	if len(r.Confusions) != 1 || r.Confusions[0] != (model.Confusion{True: "a", Predicted: "b", Count: 1}) {
		t.Errorf("confusions %+v", r.Confusions)
	}
}

func TestFolds_Stratified(t *testing.T) {
	ys := make([]int, 100)
	for i := range ys {
		ys[i] = i % 4
	}
	folds := model.Folds(ys, 4, 5, 1)
	count := map[[2]int]int{}
	for i, f := range folds {
		count[[2]int{f, ys[i]}]++
	}
	for f := range 5 {
		for y := range 4 {
			if c := count[[2]int{f, y}]; c != 5 {
				t.Errorf("fold %d label %d: %d rows, want 5", f, y, c)
			}
		}
	}
}

func TestFile_RoundTrip(t *testing.T) {
	rows, labels := sample(30)
	c, err := model.Train(rows, labels, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Header.Kind, c.Header.Data = model.KindIntent, "generated"
	path := filepath.Join(t.TempDir(), "m.omm")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	d, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Header.Kind != model.KindIntent || d.Header.Data != "generated" || len(d.Header.Labels) != 3 || d.Features() != c.Features() {
		t.Errorf("header %+v", d.Header)
	}
	for _, r := range rows[:15] {
		a, b := c.Probabilities(r.Text), d.Probabilities(r.Text)
		for i := range a {
			// Weights are kept in 8 bits per feature row.
			if math.Abs(float64(a[i]-b[i])) > 0.02 {
				t.Errorf("%q: %v before saving, %v after", r.Text, a, b)
				break
			}
		}
	}
}

func TestDecode_Rejects(t *testing.T) {
	rows, labels := sample(5)
	c, err := model.Train(rows, labels, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"foreign":   []byte("PK\x03\x04 a zip file"),
		"truncated": good[:len(good)-9],
		"header":    good[:20],
	} {
		if _, err := model.Decode(bytes.NewReader(b)); !errors.Is(err, model.ErrFormat) {
			t.Errorf("%s: err %v, want ErrFormat", name, err)
		}
	}
}

func TestLive_Reloads(t *testing.T) {
	rows, labels := sample(10)
	c, err := model.Train(rows, labels, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.omm")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	rows2 := append(rows, corpus.Row{Text: "close my account", Label: "close"}, corpus.Row{Text: "close the account now", Label: "close"})
	live, err := model.OpenLive(path, func(c *model.Classifier) (int, error) { return len(c.Header.Labels), nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if live.Get() != 3 || live.Check() {
		t.Fatalf("labels %d before any change", live.Get())
	}
	os.WriteFile(path, []byte("damaged"), 0o644)
	if live.Check() || live.Get() != 3 {
		t.Fatalf("a damaged file replaced the model: %d labels", live.Get())
	}
	c2, err := model.Train(rows2, append(labels, "close"), model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a distinct modification time on coarse file systems
	if err := c2.Save(path); err != nil {
		t.Fatal(err)
	}
	if !live.Check() || live.Get() != 4 {
		t.Fatalf("after retraining: %d labels, want 4", live.Get())
	}
}
