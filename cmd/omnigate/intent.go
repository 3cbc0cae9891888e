package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/insight/corrections"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/insight/corpus"
	"github.com/omnigate/omnigate/insight/intent"
	"github.com/omnigate/omnigate/insight/model"
	"github.com/omnigate/omnigate/insight/models"
	"github.com/omnigate/omnigate/insight/textfeat"
)

const intentUsage = `usage:
  omnigate intent train FILE -o MODEL [--data TEXT] [--c C] [--min-df N]
  omnigate intent eval --folds N FILE          (stratified cross-validation)
  omnigate intent eval [--model MODEL] FILE    (held-out; default the shipped model)
  omnigate intent predict [--model MODEL] [--top N] [--json] TEXT
  omnigate intent export-corrections [--config FILE] [-o FILE]
FILE is a CSV with a header row: text,intent (the second column's name is free).`

// cmdIntent runs the intent model commands.
func cmdIntent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, intentUsage)
		return exitError{2}
	}
	switch args[0] {
	case "train":
		return intentTrain(args[1:], stdout, stderr)
	case "eval":
		return intentEval(args[1:], stdout, stderr)
	case "predict":
		return intentPredict(args[1:], stdout, stderr)
	case "export-corrections":
		return intentExportCorrections(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "omnigate intent: unknown command %q\n%s\n", args[0], intentUsage)
		return exitError{2}
	}
}

// parseMixed parses flags wherever they are among the positional arguments
// (train FILE -o MODEL) and returns the positional ones.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// trainFlags are the training options both train commands take.
type trainFlags struct {
	out, data string
	c         float64
	minDF     int
	noChars   bool
	balanced  bool
}

func (t *trainFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.out, "o", "", "write the model to `FILE` (required)")
	fs.StringVar(&t.data, "data", "", "`TEXT` naming the training data and its licence, kept in the model file")
	fs.Float64Var(&t.c, "c", 0, "the linear model's cost `C` (default 0.5): higher fits the training data closer")
	fs.IntVar(&t.minDF, "min-df", 0, "drop features found in fewer than `N` texts (default 2)")
	fs.BoolVar(&t.noChars, "no-chars", false, "leave out the character n-grams of words (words and bigrams only)")
	fs.BoolVar(&t.balanced, "balanced", false, "weigh labels as if they had as many rows each")
}

func (t *trainFlags) options() model.Options {
	o := model.Options{C: t.c, MinDF: t.minDF, Balanced: t.balanced}
	if t.noChars {
		f := textfeat.DefaultOptions()
		f.CharMin, f.CharMax = 0, 0
		o.Features = &f
	}
	return o
}

// readCorpus reads a training or evaluation CSV and says how many rows it
// skipped.
func readCorpus(path string, stderr io.Writer) ([]corpus.Row, error) {
	res, err := corpus.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if res.Skipped > 0 {
		fmt.Fprintf(stderr, "%s: skipped %d unreadable rows\n", path, res.Skipped)
	}
	if len(res.Rows) == 0 {
		return nil, fmt.Errorf("%s: no rows to read: want a header and rows of text,%s", path, "label")
	}
	return res.Rows, nil
}

func intentTrain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intent train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf trainFlags
	tf.register(fs)
	pos, err := parseMixed(fs, args)
	if err != nil {
		return exitError{2}
	}
	if len(pos) != 1 || tf.out == "" {
		fmt.Fprintln(stderr, "usage: omnigate intent train FILE -o MODEL")
		return exitError{2}
	}
	rows, err := readCorpus(pos[0], stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := intent.Train(rows, tf.data, tf.options())
	if err != nil {
		return err
	}
	took := time.Since(start)
	if err := m.Classifier().Save(tf.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained %s: %d rows, %d intents, %d features in %s\n", tf.out, len(rows), len(m.Labels()), m.Classifier().Features(), took.Round(time.Millisecond))
	return nil
}

// loadIntent reads the model at path, or the shipped one when path is "".
func loadIntent(path string) (*intent.Model, error) {
	if path == "" {
		return models.Intent()
	}
	return intent.Load(path)
}

func intentEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intent eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	folds := fs.Int("folds", 0, "cross-validate with `N` stratified folds instead of scoring a model")
	modelPath := fs.String("model", "", "score the model in `FILE` (default: the shipped model)")
	worst := fs.Int("worst", 10, "print the `N` most confused intent pairs")
	var tf trainFlags
	tf.register(fs)
	pos, err := parseMixed(fs, args)
	if err != nil {
		return exitError{2}
	}
	if len(pos) != 1 || (*folds > 0 && *modelPath != "") || *folds == 1 {
		fmt.Fprintln(stderr, "usage: omnigate intent eval (--folds N | [--model MODEL]) FILE")
		return exitError{2}
	}
	rows, err := readCorpus(pos[0], stderr)
	if err != nil {
		return err
	}
	var labels []string
	var truth, pred []int
	if *folds > 0 {
		labels = corpus.Labels(rows)
		start := time.Now()
		pred, _, err = model.CrossValidate(rows, labels, *folds, tf.options())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d-fold cross-validation of %d rows, %d intents in %s\n", *folds, len(rows), len(labels), time.Since(start).Round(time.Millisecond))
		truth, _ = model.Truth(rows, labels)
	} else {
		m, err := loadIntent(*modelPath)
		if err != nil {
			return err
		}
		labels = append(labels, m.Labels()...)
		index := map[string]int{}
		for i, l := range labels {
			index[l] = i
		}
		unseen := 0
		for _, r := range rows {
			t, ok := index[r.Label]
			if !ok {
				// An intent the model does not know counts as a miss, under its own name.
				t, ok = len(labels), true
				index[r.Label] = t
				labels = append(labels, r.Label)
				unseen++
			}
			truth = append(truth, t)
			p := m.Predict(r.Text, 1)
			pred = append(pred, index[p.Top[0].Intent])
		}
		if unseen > 0 {
			fmt.Fprintf(stderr, "%d intents of the file are unknown to the model; their rows count as errors\n", unseen)
		}
		fmt.Fprintf(stdout, "model %s: %d rows\n", cmp.Or(*modelPath, "(shipped)"), len(rows))
	}
	rep := model.Score(labels, truth, pred)
	printIntentReport(stdout, rep, *worst)
	return nil
}

// printIntentReport prints the weakest intents, the most confused pairs and
// the summary line, last.
func printIntentReport(w io.Writer, r model.Report, worst int) {
	weak := make([]model.LabelScore, 0, len(r.PerLabel))
	for _, ls := range r.PerLabel {
		if ls.Support > 0 {
			weak = append(weak, ls)
		}
	}
	slices.SortStableFunc(weak, func(a, b model.LabelScore) int { return cmp.Compare(a.F1, b.F1) })
	if len(weak) > 0 {
		fmt.Fprintln(w, "weakest intents (f1 precision recall support):")
		for _, ls := range weak[:min(worst, len(weak))] {
			fmt.Fprintf(w, "  %-40s %.3f %.3f %.3f %d\n", ls.Label, ls.F1, ls.Precision, ls.Recall, ls.Support)
		}
	}
	if len(r.Confusions) > 0 {
		fmt.Fprintln(w, "most confused (true -> predicted: rows):")
		for _, c := range r.Confusions[:min(worst, len(r.Confusions))] {
			fmt.Fprintf(w, "  %s -> %s: %d\n", c.True, c.Predicted, c.Count)
		}
	}
	fmt.Fprintf(w, "accuracy=%.4f macro_f1=%.4f n=%d\n", r.Accuracy, r.MacroF1, r.N)
}

func intentPredict(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intent predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "the model `FILE` (default: the shipped model)")
	top := fs.Int("top", 3, "show the `N` best intents")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return exitError{2}
	}
	text := strings.TrimSpace(strings.Join(pos, " "))
	if text == "" {
		fmt.Fprintln(stderr, "usage: omnigate intent predict [--model MODEL] TEXT")
		return exitError{2}
	}
	m, err := loadIntent(*modelPath)
	if err != nil {
		return err
	}
	p := m.Predict(text, *top)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	fmt.Fprintf(stdout, "intent=%s confidence=%.3f\n", p.Intent, p.Confidence)
	for _, s := range p.Top {
		fmt.Fprintf(stdout, "  %-40s %.3f\n", s.Intent, s.Probability)
	}
	return nil
}

func intentExportCorrections(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intent export-corrections", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	out := fs.String("o", "", "write the CSV to `FILE` (default: standard output)")
	if _, err := parseMixed(fs, args); err != nil {
		return exitError{2}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	b, closeBus, err := cf.openTool(ctx, "omnigate-export-corrections", stderr)
	if err != nil {
		return err
	}
	defer closeBus()
	st, err := openStore(ctx, cfg, b, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := corrections.List(ctx, st)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := corrections.WriteCSV(w, cs); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d intent corrections exported\n", len(cs))
	return nil
}
