package models

import (
	"cmp"
	"context"
	"github.com/omnigate/omnigate/core/lang"
	"log/slog"
	"strings"
	"time"

	"github.com/omnigate/omnigate/insight/intent"
	"github.com/omnigate/omnigate/insight/model"
	"github.com/omnigate/omnigate/insight/sentiment"
	"github.com/omnigate/omnigate/insight/textfeat"
)

// Off is the file name that turns a model off.
const Off = "off"

// Config names the model files a Set loads; "" is the shipped model, Off
// none.
type Config struct {
	// Intent is the intent model's file.
	Intent string
	// IntentThreshold, when set, replaces the intent model's own threshold.
	IntentThreshold float64
	// Sentiment are the sentiment models' files by language (en, zh).
	Sentiment map[string]string
	// Reload is how often Run checks the files for a change; 0 never.
	Reload time.Duration
}

// Set is the intent and sentiment models a process uses: files (reloaded
// when they change) or the shipped models. Its methods are safe for
// concurrent use; Intent and Negative are routing's IntentModel and
// SentimentModel.
type Set struct {
	intent    *source[*intent.Model] // nil: no intent
	threshold float64
	sentiment map[string]*source[*sentiment.Model]
	reload    time.Duration
}

// source is a model from a file (reloaded) or shipped in the binary, which
// is decoded on first use: a process that never classifies a Chinese message
// never spends the zh model's memory and load time.
type source[T any] struct {
	live    *model.Live[T]
	shipped func() (T, error)
}

func (s *source[T]) get() (T, bool) {
	if s.live != nil {
		return s.live.Get(), true
	}
	m, err := s.shipped()
	return m, err == nil
}

func (s *source[T]) check() {
	if s.live != nil {
		s.live.Check()
	}
}

// Load loads what c names. A file that does not load is a warning: the
// intent is then the shipped model's, and a language without a sentiment
// model is left to the caller's fallback (routing's lexicon).
func Load(c Config, log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{threshold: c.IntentThreshold, sentiment: map[string]*source[*sentiment.Model]{}, reload: c.Reload}
	shippedIntent := func() { s.intent = &source[*intent.Model]{shipped: Intent} }
	switch c.Intent {
	case Off:
	case "":
		shippedIntent()
	default:
		l, err := model.OpenLive(c.Intent, intent.FromClassifier, log)
		if err != nil {
			log.Warn("intent model does not load, using the shipped model: fix the path or retrain with omnigate intent train", "path", c.Intent, "err", err)
			shippedIntent()
		} else {
			s.intent = &source[*intent.Model]{live: l}
		}
	}
	for _, lang := range Languages {
		if c.Sentiment[lang] != "" {
			continue
		}
		s.sentiment[lang] = &source[*sentiment.Model]{shipped: sentimentOnce[lang]}
	}
	for lang, path := range c.Sentiment {
		if path == "" || path == Off {
			continue
		}
		l, err := model.OpenLive(path, sentiment.FromClassifier, log)
		if err != nil {
			log.Warn("sentiment model does not load; escalation uses the lexicon for this language: fix the path or retrain with omnigate sentiment train", "language", lang, "path", path, "err", err)
			continue
		}
		s.sentiment[lang] = &source[*sentiment.Model]{live: l}
	}
	return s
}

// HasIntent reports whether s has an intent model; HasSentiment whether it
// has a sentiment model for any language.
func (s *Set) HasIntent() bool    { return s.intent != nil }
func (s *Set) HasSentiment() bool { return len(s.sentiment) > 0 }

// Run checks the model files every Config.Reload until ctx is done, and
// reloads those that changed. It returns nil.
func (s *Set) Run(ctx context.Context) error {
	if s.reload <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if s.intent != nil {
			s.intent.check()
		}
		for _, m := range s.sentiment {
			m.check()
		}
	}
}

// Intent returns the intent of text and the model's confidence, "" without
// an intent model and intent.Unknown below the threshold.
func (s *Set) Intent(text, _ string) (string, float64) {
	if s.intent == nil {
		return "", 0
	}
	m, ok := s.intent.get()
	if !ok {
		return "", 0
	}
	p := m.Predict(lang.Head(text, MaxIntentBytes), 1)
	if p.Confidence < cmp.Or(s.threshold, m.Threshold()) {
		return intent.Unknown, p.Confidence
	}
	return p.Top[0].Intent, p.Confidence
}

// Negative returns the probability that text is negative, centred on its
// model's threshold (sentiment.Model.Centred): Chinese text (by language or
// by its characters) goes to the zh model, the rest to the en model; ok is
// false for another language or one without a model.
func (s *Set) Negative(text, language string) (float64, bool) {
	lang := "en"
	base, _, _ := strings.Cut(strings.ToLower(language), "-")
	switch {
	case base == "zh" || strings.ContainsFunc(text, textfeat.IsCJK):
		lang = "zh"
	case base != "" && base != "en":
		return 0, false
	}
	src, ok := s.sentiment[lang]
	if !ok {
		return 0, false
	}
	m, ok := src.get()
	if !ok {
		return 0, false
	}
	return m.Centred(text), true
}

// MaxIntentBytes is how much of a message Intent reads: customers say what
// they want in their first sentences, and the model's cost grows with the
// text (on 1 KiB messages, 8% of serve's CPU).
const MaxIntentBytes = 600
