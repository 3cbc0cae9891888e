package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/omnigate/omnigate/insight/models"
	"github.com/omnigate/omnigate/insight/sentiment"
)

const sentimentUsage = `usage:
  omnigate sentiment train FILE -o MODEL [--lang en|zh] [--data TEXT] [--c C] [--min-df N]
  omnigate sentiment eval [--model MODEL | --lang en|zh] [--threshold T] FILE
FILE is a CSV with a header row: text,label; the label "negative" against anything else.`

// cmdSentiment runs the sentiment model commands.
func cmdSentiment(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, sentimentUsage)
		return exitError{2}
	}
	switch args[0] {
	case "train":
		return sentimentTrain(args[1:], stdout, stderr)
	case "eval":
		return sentimentEval(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "omnigate sentiment: unknown command %q\n%s\n", args[0], sentimentUsage)
		return exitError{2}
	}
}

func sentimentTrain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sentiment train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf trainFlags
	tf.register(fs)
	lang := fs.String("lang", "", "the `LANGUAGE` the model is for (en, zh; kept in the file)")
	threshold := fs.Float64("threshold", 0, "probability `P` at which the model calls a text negative (default 0.5)")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return exitError{2}
	}
	if len(pos) != 1 || tf.out == "" {
		fmt.Fprintln(stderr, "usage: omnigate sentiment train FILE -o MODEL [--lang en|zh]")
		return exitError{2}
	}
	rows, err := readCorpus(pos[0], stderr)
	if err != nil {
		return err
	}
	neg := 0
	for _, r := range rows {
		if sentiment.IsNegative(r.Label) {
			neg++
		}
	}
	if neg == 0 || neg == len(rows) {
		return fmt.Errorf("%s: %d of %d rows are negative: the model needs both negative rows and others", pos[0], neg, len(rows))
	}
	start := time.Now()
	m, err := sentiment.Train(rows, *lang, tf.data, tf.options())
	if err != nil {
		return err
	}
	took := time.Since(start)
	if *threshold > 0 {
		m.SetThreshold(*threshold)
	}
	if err := m.Classifier().Save(tf.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trained %s: %d rows (%d negative), %d features in %s\n", tf.out, len(rows), neg, m.Classifier().Features(), took.Round(time.Millisecond))
	return nil
}

// sentimentThresholds are the operating points eval prints.
var sentimentThresholds = []float64{0.3, 0.4, 0.5, 0.6, 0.7, 0.8}

func sentimentEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sentiment eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "the model `FILE` (default: the shipped model of --lang)")
	lang := fs.String("lang", "en", "`LANGUAGE` of the shipped model to use: en or zh")
	threshold := fs.Float64("threshold", 0, "probability `P` counted as negative (default: the model's)")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return exitError{2}
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: omnigate sentiment eval [--model MODEL | --lang en|zh] FILE")
		return exitError{2}
	}
	var m *sentiment.Model
	if *modelPath != "" {
		m, err = sentiment.Load(*modelPath)
	} else {
		m, err = models.Sentiment(*lang)
	}
	if err != nil {
		return err
	}
	rows, err := readCorpus(pos[0], stderr)
	if err != nil {
		return err
	}
	probs := make([]float64, len(rows))
	neg := make([]bool, len(rows))
	for i, r := range rows {
		probs[i] = m.Negative(r.Text)
		neg[i] = sentiment.IsNegative(r.Label)
	}
	th := *threshold
	if th <= 0 {
		th = m.Threshold()
	}
	fmt.Fprintf(stdout, "model %s (%s), %d rows\n", cmp.Or(*modelPath, "(shipped "+*lang+")"), m.Language(), len(rows))
	fmt.Fprintln(stdout, "threshold precision recall f1 flagged")
	for _, t := range sentimentThresholds {
		s := sentiment.Measure(probs, neg, t)
		fmt.Fprintf(stdout, "  %.2f  %.3f  %.3f  %.3f  %d\n", t, s.Precision, s.Recall, s.F1, s.Flagged)
	}
	s := sentiment.Measure(probs, neg, th)
	fmt.Fprintf(stdout, "at threshold %.2f:\n", th)
	fmt.Fprintf(stdout, "precision=%.3f recall=%.3f f1=%.3f n=%d\n", s.Precision, s.Recall, s.F1, len(rows))
	return nil
}
