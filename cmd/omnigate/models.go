package main

import (
	"log/slog"

	"github.com/omnigate/omnigate/insight/models"
	"github.com/omnigate/omnigate/routing"
)

// loadModels loads the models routing.models names (insight/models.Load).
func loadModels(mc routing.Models, log *slog.Logger) *models.Set {
	return models.Load(models.Config{Intent: mc.Intent, IntentThreshold: mc.IntentThreshold, Sentiment: mc.Sentiment, Reload: mc.Reload}, log)
}

// withModels gives routing the models: the intent model, and the sentiment
// models with the lexicon's cues (the lexicon alone when none loads); with
// an escalation hook configured, the models answer when it fails.
func withModels(ms *models.Set, rc routing.Config, d routing.Deps) routing.Deps {
	if ms.HasIntent() {
		d.Intent = ms
	}
	if !ms.HasSentiment() || d.Classifier != nil {
		return d
	}
	d.Classifier = routing.NewModelScorer(ms)
	if c := rc.Escalation.Classifier; c.URL != "" {
		d.Classifier = &routing.HTTPClassifier{URL: c.URL, Token: c.Token.Value(), Timeout: c.Timeout, Logger: d.Logger, Fallback: d.Classifier}
	}
	return d
}

// explainWith sets what route --explain scores and classifies s with, as
// serve would.
func explainWith(ms *models.Set, s *routing.Sample) {
	if ms.HasIntent() {
		s.Intent = ms
	}
	if ms.HasSentiment() {
		s.Classifier = routing.NewModelScorer(ms)
	}
}
